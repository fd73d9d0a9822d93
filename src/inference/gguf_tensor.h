// GgufTensor: the description of one tensor of a GGUF file plus a view of its bytes.
//
// Contract: a value object produced by GgufFile after full validation: `data` lies inside the file
// and is exactly byte_size bytes; shape has 0..4 dimensions, ggml order (shape[0] is the innermost,
// contiguous dimension, i.e. the row length); shape[0] is a multiple of the type's block size;
// element_count is the (overflow-checked) product of the dimensions. `data` and `name` point into the
// file's mapping: valid only while the GgufFile is alive. `type_info` is never null. Thread-safe to
// read.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "inference/tensor_types.h"

namespace exo::inference {

struct GgufTensor {
  std::string_view name;
  const TensorTypeInfo* type_info = nullptr;
  std::vector<std::uint64_t> shape;  // ne[0], ne[1], ...
  std::uint64_t element_count = 0;
  std::uint64_t offset = 0;  // relative to the start of the data section
  std::uint64_t byte_size = 0;
  std::span<const std::uint8_t> data;

  TensorType type() const noexcept { return type_info->type; }
  // Values per row (shape[0]; 1 for a 0-dimensional tensor) and number of rows.
  std::uint64_t row_length() const noexcept { return shape.empty() ? 1 : shape[0]; }
  std::uint64_t row_count() const noexcept { return row_length() == 0 ? 0 : element_count / row_length(); }
  std::uint64_t row_byte_size() const noexcept { return row_count() == 0 ? 0 : byte_size / row_count(); }
};

// Dequantizes rows [first_row, first_row + out.size() / row_length) of `tensor` into `out`
// (out.size() must be a multiple of the row length and the rows must exist). Throws TensorTypeError
// naming the tensor and its type when the type cannot be dequantized, std::out_of_range on bad rows.
void dequantize_rows(const GgufTensor& tensor, std::uint64_t first_row, std::span<float> out);
// The whole tensor as floats.
std::vector<float> dequantize_tensor(const GgufTensor& tensor);

}  // namespace exo::inference
