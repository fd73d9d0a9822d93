#include "inference/gguf_tensor.h"

#include <stdexcept>

#include <fmt/format.h>

#include "inference/quants.h"

namespace exo::inference {

namespace {

void require_dequantizable(const GgufTensor& tensor) {
  if (!can_dequantize(tensor.type())) {
    throw TensorTypeError(fmt::format("tensor '{}' has type {} (id {}), which cannot be dequantized",
                                      tensor.name, tensor.type_info->name,
                                      static_cast<std::uint32_t>(tensor.type())));
  }
}

}  // namespace

void dequantize_rows(const GgufTensor& tensor, std::uint64_t first_row, std::span<float> out) {
  require_dequantizable(tensor);
  const std::uint64_t row_length = tensor.row_length();
  if (row_length == 0 || out.size() % row_length != 0) {
    throw std::out_of_range(
        fmt::format("tensor '{}': output of {} floats is not a whole number of rows of {}", tensor.name,
                    out.size(), row_length));
  }
  const std::uint64_t rows = out.size() / row_length;
  if (first_row > tensor.row_count() || rows > tensor.row_count() - first_row) {
    throw std::out_of_range(fmt::format("tensor '{}': rows [{}, {}) out of range (has {} rows)", tensor.name,
                                        first_row, first_row + rows, tensor.row_count()));
  }
  const std::uint64_t row_bytes = tensor.row_byte_size();
  const auto bytes = tensor.data.subspan(first_row * row_bytes, rows * row_bytes);
  dequantize_row(tensor.type(), bytes, out);
}

std::vector<float> dequantize_tensor(const GgufTensor& tensor) {
  require_dequantizable(tensor);
  std::vector<float> values(tensor.element_count);
  if (!values.empty()) dequantize_rows(tensor, 0, values);
  return values;
}

}  // namespace exo::inference
