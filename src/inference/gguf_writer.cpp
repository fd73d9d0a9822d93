#include "inference/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace exo::inference {

namespace {

constexpr std::uint32_t gguf_magic = 0x46554747;  // "GGUF" little-endian
constexpr std::uint32_t gguf_version = 3;

class Encoder {
 public:
  template <typename T>
  void put(T value) {
    const std::size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &value, sizeof(T));
  }
  void type(GgufValueType t) { put(static_cast<std::uint32_t>(t)); }
  void string(std::string_view text) {
    put(static_cast<std::uint64_t>(text.size()));
    const std::size_t at = bytes.size();
    bytes.resize(at + text.size());
    if (!text.empty()) std::memcpy(bytes.data() + at, text.data(), text.size());
  }
  std::vector<std::uint8_t> bytes;
};

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Payload (without the type id) of a value of type `type`.
void encode_payload(Encoder& e, GgufValueType type, const GgufValue& value) {
  const auto need = [](bool ok) {
    if (!ok) throw std::invalid_argument("GgufWriter: value does not fit its stored type");
  };
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::UINT16:
    case GgufValueType::UINT32:
    case GgufValueType::UINT64: {
      const auto v = value.to_uint64();
      need(v.has_value());
      if (type == GgufValueType::UINT8) e.put(static_cast<std::uint8_t>(*v));
      if (type == GgufValueType::UINT16) e.put(static_cast<std::uint16_t>(*v));
      if (type == GgufValueType::UINT32) e.put(static_cast<std::uint32_t>(*v));
      if (type == GgufValueType::UINT64) e.put(*v);
      return;
    }
    case GgufValueType::INT8:
    case GgufValueType::INT16:
    case GgufValueType::INT32:
    case GgufValueType::INT64: {
      const auto v = value.to_int64();
      need(v.has_value());
      if (type == GgufValueType::INT8) e.put(static_cast<std::int8_t>(*v));
      if (type == GgufValueType::INT16) e.put(static_cast<std::int16_t>(*v));
      if (type == GgufValueType::INT32) e.put(static_cast<std::int32_t>(*v));
      if (type == GgufValueType::INT64) e.put(*v);
      return;
    }
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: {
      const auto v = value.to_double();
      need(v.has_value());
      if (type == GgufValueType::FLOAT32) {
        e.put(static_cast<float>(*v));
      } else {
        e.put(*v);
      }
      return;
    }
    case GgufValueType::BOOL: {
      const auto v = value.to_bool();
      need(v.has_value());
      e.put(static_cast<std::uint8_t>(*v ? 1 : 0));
      return;
    }
    case GgufValueType::STRING: {
      const auto v = value.to_string();
      need(v.has_value());
      e.string(*v);
      return;
    }
    case GgufValueType::ARRAY: {
      const GgufValue::Array* elements = value.to_array();
      need(elements != nullptr);
      e.type(value.element_type());
      e.put(static_cast<std::uint64_t>(elements->size()));
      for (const GgufValue& element : *elements) encode_payload(e, value.element_type(), element);
      return;
    }
  }
  throw std::invalid_argument("GgufWriter: invalid value type");
}

}  // namespace

GgufWriter::GgufWriter(std::uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("GgufWriter: alignment must be a power of two");
  if (alignment != 32) add_u32("general.alignment", alignment);
}

bool GgufWriter::has_key(std::string_view key) const noexcept {
  for (const auto& entry : entries_) {
    if (entry.key == key) return true;
  }
  return false;
}

void GgufWriter::add_encoded(std::string key, std::vector<std::uint8_t> encoded) {
  if (has_key(key)) throw std::invalid_argument("GgufWriter: duplicate metadata key " + key);
  entries_.push_back({std::move(key), std::move(encoded)});
}

void GgufWriter::add_u32(std::string key, std::uint32_t value) {
  Encoder e;
  e.type(GgufValueType::UINT32);
  e.put(value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_i32(std::string key, std::int32_t value) {
  Encoder e;
  e.type(GgufValueType::INT32);
  e.put(value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_u64(std::string key, std::uint64_t value) {
  Encoder e;
  e.type(GgufValueType::UINT64);
  e.put(value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_f32(std::string key, float value) {
  Encoder e;
  e.type(GgufValueType::FLOAT32);
  e.put(value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_bool(std::string key, bool value) {
  Encoder e;
  e.type(GgufValueType::BOOL);
  e.put(static_cast<std::uint8_t>(value ? 1 : 0));
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_string(std::string key, std::string_view value) {
  Encoder e;
  e.type(GgufValueType::STRING);
  e.string(value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_string_array(std::string key, const std::vector<std::string>& values) {
  Encoder e;
  e.type(GgufValueType::ARRAY);
  e.type(GgufValueType::STRING);
  e.put(static_cast<std::uint64_t>(values.size()));
  for (const auto& v : values) e.string(v);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_f32_array(std::string key, const std::vector<float>& values) {
  Encoder e;
  e.type(GgufValueType::ARRAY);
  e.type(GgufValueType::FLOAT32);
  e.put(static_cast<std::uint64_t>(values.size()));
  for (float v : values) e.put(v);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_i32_array(std::string key, const std::vector<std::int32_t>& values) {
  Encoder e;
  e.type(GgufValueType::ARRAY);
  e.type(GgufValueType::INT32);
  e.put(static_cast<std::uint64_t>(values.size()));
  for (std::int32_t v : values) e.put(v);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_value(std::string key, const GgufValue& value) {
  Encoder e;
  e.type(value.type());
  encode_payload(e, value.type(), value);
  add_encoded(std::move(key), std::move(e.bytes));
}

void GgufWriter::add_tensor(std::string name, TensorType type, std::vector<std::uint64_t> shape, Fill fill) {
  for (const auto& t : tensors_) {
    if (t.name == name) throw std::invalid_argument("GgufWriter: duplicate tensor " + name);
  }
  if (shape.empty() || shape.size() > 4)
    throw std::invalid_argument("GgufWriter: tensor " + name + " needs 1-4 dims");
  std::uint64_t count = 1;
  for (std::uint64_t d : shape) count *= d;
  const TensorTypeInfo& info = tensor_type_info(type);
  if (shape[0] % info.block_size != 0)
    throw std::invalid_argument("GgufWriter: tensor " + name + " row length " + std::to_string(shape[0]) +
                                " is not a multiple of the " + std::string(info.name) + " block size " +
                                std::to_string(info.block_size));
  const std::uint64_t bytes = byte_size_or_throw(type, count, name);
  const std::uint64_t offset = align_up(data_size_, alignment_);
  tensors_.push_back({std::move(name), type, std::move(shape), bytes, offset, std::move(fill)});
  data_size_ = offset + bytes;
}

std::vector<std::uint8_t> GgufWriter::header_bytes() const {
  Encoder e;
  e.put(gguf_magic);
  e.put(gguf_version);
  e.put(static_cast<std::uint64_t>(tensors_.size()));
  e.put(static_cast<std::uint64_t>(entries_.size()));
  for (const auto& entry : entries_) {
    e.string(entry.key);
    e.bytes.insert(e.bytes.end(), entry.encoded.begin(), entry.encoded.end());
  }
  for (const auto& t : tensors_) {
    e.string(t.name);
    e.put(static_cast<std::uint32_t>(t.shape.size()));
    for (std::uint64_t d : t.shape) e.put(d);
    e.put(static_cast<std::uint32_t>(t.type));
    e.put(t.offset);
  }
  e.bytes.resize(align_up(e.bytes.size(), alignment_), 0);
  return std::move(e.bytes);
}

std::uint64_t GgufWriter::file_size() const {
  return header_bytes().size() + align_up(data_size_, alignment_);
}

std::vector<std::uint8_t> GgufWriter::to_bytes() const {
  std::vector<std::uint8_t> out = header_bytes();
  const std::size_t data_start = out.size();
  out.resize(data_start + align_up(data_size_, alignment_), 0);
  for (const auto& t : tensors_) {
    if (t.fill) t.fill(std::span(out).subspan(data_start + t.offset, t.byte_size));
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "wb"));
  if (!file) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  const auto put = [&](const std::uint8_t* data, std::size_t size) {
    if (size != 0 && std::fwrite(data, 1, size, file.get()) != size)
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  };
  const std::vector<std::uint8_t> header = header_bytes();
  put(header.data(), header.size());
  std::uint64_t position = 0;
  std::vector<std::uint8_t> buffer;
  const std::vector<std::uint8_t> zeros(alignment_, 0);
  for (const auto& t : tensors_) {
    put(zeros.data(), static_cast<std::size_t>(t.offset - position));
    buffer.assign(static_cast<std::size_t>(t.byte_size), 0);
    if (t.fill) t.fill(buffer);
    put(buffer.data(), buffer.size());
    position = t.offset + t.byte_size;
  }
  put(zeros.data(), static_cast<std::size_t>(align_up(position, alignment_) - position));
  if (std::fflush(file.get()) != 0)
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  if (std::fclose(file.release()) != 0) throw std::runtime_error("cannot close " + path);
}

}  // namespace exo::inference
