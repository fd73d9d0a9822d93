// GgufWriter: builds a GGUF version 3 file (little-endian): header, metadata key/values, tensor
// descriptions and the aligned tensor data section, in the layout GgufFile (and llama.cpp) read.
//
// Contract
// - Collect metadata and tensors, then write() once (to a path) or to_bytes() (small files, tests).
//   Keys and tensor names must be unique (std::invalid_argument otherwise, when added). Metadata is
//   written in insertion order; "general.alignment" is written automatically when the alignment is
//   not the default 32.
// - A tensor is described by name, type and ggml shape (shape[0] = row length, a multiple of the
//   type's block size) and gets its bytes from a fill callback called exactly once, during write, with
//   a zeroed span of exactly the tensor's byte size. Callbacks run in tensor order on the calling
//   thread (a callback may use its own parallelism), so a multi-gigabyte model streams to disk
//   without being held in memory.
// - Values copied from a GgufFile (add_value) own their strings: the source file may be closed after.
// - write() reports I/O failures as std::runtime_error naming the path; nothing is printed.
// - Not thread-safe: one writer per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inference/gguf_value.h"
#include "inference/tensor_types.h"

namespace exo::inference {

class GgufWriter {
 public:
  using Fill = std::function<void(std::span<std::uint8_t> bytes)>;

  explicit GgufWriter(std::uint32_t alignment = 32);

  void add_u32(std::string key, std::uint32_t value);
  void add_i32(std::string key, std::int32_t value);
  void add_u64(std::string key, std::uint64_t value);
  void add_f32(std::string key, float value);
  void add_bool(std::string key, bool value);
  void add_string(std::string key, std::string_view value);
  void add_string_array(std::string key, const std::vector<std::string>& values);
  void add_f32_array(std::string key, const std::vector<float>& values);
  void add_i32_array(std::string key, const std::vector<std::int32_t>& values);
  // Any value read from a GgufFile (scalars, strings, nested arrays), with its stored type.
  void add_value(std::string key, const GgufValue& value);

  void add_tensor(std::string name, TensorType type, std::vector<std::uint64_t> shape, Fill fill);

  bool has_key(std::string_view key) const noexcept;
  // Total file size write() will produce.
  std::uint64_t file_size() const;

  void write(const std::string& path) const;
  std::vector<std::uint8_t> to_bytes() const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<std::uint64_t> shape;
    std::uint64_t byte_size;
    std::uint64_t offset;  // within the data section
    Fill fill;
  };
  struct Entry {
    std::string key;
    std::vector<std::uint8_t> encoded;  // value type id + payload
  };

  void add_encoded(std::string key, std::vector<std::uint8_t> encoded);
  std::vector<std::uint8_t> header_bytes() const;  // everything before the data section, padded

  std::uint32_t alignment_;
  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
  std::uint64_t data_size_ = 0;
};

}  // namespace exo::inference
