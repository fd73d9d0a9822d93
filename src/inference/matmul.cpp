#include "inference/matmul.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "inference/quants.h"

namespace exo::inference {

namespace {

void check_shapes(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                  std::span<float> y) {
  if (w.data == nullptr || w.rows <= 0 || w.cols <= 0 || n_tokens < 0)
    throw std::invalid_argument("matmul: empty or negative shape");
  if (x.size() != static_cast<std::size_t>(n_tokens * w.cols) ||
      y.size() != static_cast<std::size_t>(n_tokens * w.rows))
    throw std::invalid_argument("matmul: activation sizes do not match the matrix (" +
                                std::to_string(w.rows) + "x" + std::to_string(w.cols) + ", " +
                                std::to_string(n_tokens) + " tokens)");
}

// Rows [row_begin, row_end) of y for every token, through dequantized weight rows.
void reference_rows(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                    std::span<float> y, std::int64_t row_begin, std::int64_t row_end) {
  std::vector<float> weights(static_cast<std::size_t>(w.cols));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    dequantize_matrix_row(w, r, weights);
    for (std::int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x.data() + t * w.cols;
      double sum = 0;
      for (std::int64_t c = 0; c < w.cols; ++c)
        sum += static_cast<double>(weights[static_cast<std::size_t>(c)]) * xt[c];
      y[static_cast<std::size_t>(t * w.rows + r)] = static_cast<float>(sum);
    }
  }
}

}  // namespace

WeightMatrix WeightMatrix::of(const GgufTensor& tensor) {
  if (tensor.shape.empty() || tensor.shape.size() > 2)
    throw std::invalid_argument("tensor " + std::string(tensor.name) + " is not a matrix");
  WeightMatrix w;
  w.type = tensor.type();
  w.data = tensor.data.data();
  w.cols = static_cast<std::int64_t>(tensor.row_length());
  w.rows = static_cast<std::int64_t>(tensor.row_count());
  w.row_bytes = static_cast<std::size_t>(tensor.row_byte_size());
  return w;
}

void dequantize_matrix_row(const WeightMatrix& w, std::int64_t r, std::span<float> out) {
  if (r < 0 || r >= w.rows || out.size() != static_cast<std::size_t>(w.cols))
    throw std::out_of_range("dequantize_matrix_row: row " + std::to_string(r) + " out of range");
  dequantize_row(w.type, std::span<const std::uint8_t>(w.row(r), w.row_bytes), out);
}

void matmul_reference(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                      std::span<float> y) {
  check_shapes(w, x, n_tokens, y);
  reference_rows(w, x, n_tokens, y, 0, w.rows);
}

void matmul(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens, std::span<float> y,
            ComputePool& pool) {
  check_shapes(w, x, n_tokens, y);
  pool.parallel_for(
      w.rows, [&](std::int64_t begin, std::int64_t end) { reference_rows(w, x, n_tokens, y, begin, end); },
      16);
}

}  // namespace exo::inference
