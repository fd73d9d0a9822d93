// Test helper: writes GGUF images byte by byte, so tests can build valid files with every value
// type as well as deliberately broken ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace exo::inference::test {

// Little-endian byte sink.
class ByteWriter {
 public:
  template <typename T>
  ByteWriter& put(T value) {
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
    return *this;
  }
  ByteWriter& u32(std::uint32_t v) { return put(v); }
  ByteWriter& u64(std::uint64_t v) { return put(v); }
  ByteWriter& string(std::string_view text) {
    u64(text.size());
    bytes_.insert(bytes_.end(), text.begin(), text.end());
    return *this;
  }
  ByteWriter& raw(const std::vector<std::uint8_t>& data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return *this;
  }
  ByteWriter& pad_to(std::size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  std::vector<std::uint8_t>& bytes() { return bytes_; }
  std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Builds a well-formed GGUF image: metadata entries are written by callbacks (so any value type can
// be produced), tensors are laid out at aligned offsets.
class GgufBuilder {
 public:
  using ValueWriter = std::function<void(ByteWriter&)>;  // writes type id + payload

  explicit GgufBuilder(std::uint32_t version = 3) : version_(version) {}

  GgufBuilder& kv(std::string key, ValueWriter value) {
    entries_.push_back({std::move(key), std::move(value)});
    return *this;
  }
  GgufBuilder& kv_u32(std::string key, std::uint32_t v) {
    return kv(std::move(key), [v](ByteWriter& w) { w.u32(4).u32(v); });
  }
  GgufBuilder& kv_string(std::string key, std::string v) {
    return kv(std::move(key), [v](ByteWriter& w) { w.u32(8).string(v); });
  }
  GgufBuilder& tensor(std::string name, std::vector<std::uint64_t> shape, std::uint32_t type,
                      std::vector<std::uint8_t> data) {
    tensors_.push_back({std::move(name), std::move(shape), type, std::move(data)});
    return *this;
  }
  GgufBuilder& alignment(std::uint32_t value) {
    alignment_ = value;
    return kv_u32("general.alignment", value);
  }

  std::vector<std::uint8_t> build() const {
    ByteWriter w;
    w.u32(0x46554747).u32(version_).u64(tensors_.size()).u64(entries_.size());
    for (const auto& entry : entries_) {
      w.string(entry.key);
      entry.value(w);
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      w.string(t.name).u32(static_cast<std::uint32_t>(t.shape.size()));
      for (const auto extent : t.shape) w.u64(extent);
      w.u32(t.type).u64(offset);
      offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    w.pad_to(alignment_);
    for (const auto& t : tensors_) {
      w.raw(t.data);
      w.pad_to(alignment_);
    }
    return w.bytes();
  }

 private:
  struct Entry {
    std::string key;
    ValueWriter value;
  };
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    std::uint32_t type;
    std::vector<std::uint8_t> data;
  };
  std::uint32_t version_;
  std::uint32_t alignment_ = 32;
  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
};

}  // namespace exo::inference::test
