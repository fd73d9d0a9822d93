// GgufFile: a validated, read-only view of a GGUF (version 2 or 3, little-endian) model file.
//
// Contract: open() maps the file and parses the header, every metadata key/value and every tensor
// description up front; any inconsistency (truncation, sizes or counts that do not fit the file,
// arithmetic overflow, invalid types, bad alignment, duplicate keys or tensor names, tensors outside
// or overlapping in the data section) throws GgufError naming the problem and its byte offset. After
// construction every accessor is bounds-safe: tensor data spans lie inside the file.
// The object is move-only and immutable; it owns the mapping, and every string_view, GgufValue and
// tensor span it hands out stays valid until it is destroyed (moving keeps them valid). Const
// accessors are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "inference/gguf_error.h"
#include "inference/gguf_tensor.h"
#include "inference/gguf_value.h"

namespace exo::inference {

class MappedFile;

class GgufFile {
 public:
  static constexpr std::uint32_t default_alignment = 32;

  // Maps and parses the file at `path`.
  static GgufFile open(const std::string& path);
  // Parses an in-memory image (takes ownership). `name` is used in error messages.
  static GgufFile from_bytes(std::vector<std::uint8_t> bytes, std::string name = "<memory>");
  // Parses an image owned by the caller, who must keep `bytes` alive and unchanged for the lifetime
  // of the returned object (no copy is made).
  static GgufFile from_view(std::span<const std::uint8_t> bytes, std::string name = "<memory>");

  ~GgufFile();
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const noexcept { return name_; }
  // True for open(): the bytes are a read-only mapping of the file, whose pages the OS can drop and
  // read again (false for the in-memory images of from_bytes / from_view).
  bool is_file_mapping() const noexcept { return mapping_ != nullptr; }
  std::uint32_t version() const noexcept { return version_; }
  std::uint32_t alignment() const noexcept { return alignment_; }
  // Absolute file offset of the tensor data section.
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  std::uint64_t file_size() const noexcept { return bytes_.size(); }

  // ---- metadata ----
  struct MetadataEntry {
    std::string_view key;
    GgufValue value;
  };
  // All entries in file order.
  const std::vector<MetadataEntry>& metadata() const noexcept { return metadata_; }
  bool has(std::string_view key) const noexcept { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const noexcept;
  // Throws GgufMetadataError("missing metadata key ...") when absent.
  const GgufValue& at(std::string_view key) const;

  // Typed getters: throw GgufMetadataError when the key is missing, has another type, or (integers)
  // holds a value that does not fit. Integer getters accept any stored integer type; get_f32/get_f64
  // accept float32 and float64.
  std::string_view get_string(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::uint32_t get_u32(std::string_view key) const;
  std::int32_t get_i32(std::string_view key) const;
  std::uint64_t get_u64(std::string_view key) const;
  std::int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  // nullopt when the key is absent; a present key of the wrong type still throws.
  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  std::optional<std::uint32_t> find_u32(std::string_view key) const;
  std::optional<std::int32_t> find_i32(std::string_view key) const;
  std::optional<float> find_f32(std::string_view key) const;

  // Arrays: get_array checks the element type when `element_type` is given. The typed helpers
  // convert every element (same rules as the scalar getters; errors name the key and the index).
  const GgufValue::Array& get_array(std::string_view key,
                                    std::optional<GgufValueType> element_type = std::nullopt) const;
  std::vector<std::string_view> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<std::int32_t> get_i32_array(std::string_view key) const;
  std::vector<std::uint32_t> get_u32_array(std::string_view key) const;

  // ---- tensors ----
  const std::vector<GgufTensor>& tensors() const noexcept { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const noexcept;
  // Throws GgufError("no tensor named ...") when absent.
  const GgufTensor& tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  void parse();

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;
  std::vector<std::uint8_t> owned_bytes_;
  std::span<const std::uint8_t> bytes_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = default_alignment;
  std::uint64_t data_offset_ = 0;
  std::vector<MetadataEntry> metadata_;
  std::unordered_map<std::string_view, std::size_t> metadata_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace exo::inference
