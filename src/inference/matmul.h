// Matrix products of GGUF weight matrices with float activations: the engine's one hot kernel.
//
// Contract
// - A WeightMatrix is a read-only view of `rows` rows of `cols` values of `type`, each row stored in
//   `row_bytes` contiguous bytes (ggml layout: a GGUF tensor with shape [cols, rows]). The view does
//   not own the bytes (they live in the model file's mapping).
// - matmul computes y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens, with x row-major
//   [n_tokens][cols] and y row-major [n_tokens][rows]. Spans must be exactly that long
//   (std::invalid_argument otherwise); an unsupported type throws TensorTypeError naming it.
// - matmul_reference is the scalar oracle: weights dequantized to float, F32 activations, double
//   accumulation. matmul is the fast path chosen at run time from the CPU's features; it may quantize
//   the activations as ggml does (Q8_0 / Q8_K blocks), so it agrees with the oracle to quantization
//   tolerance, not bit for bit. Both are deterministic for a given input and thread count.
// - Thread-safety: pure functions of their inputs; matmul runs on `pool` (see ComputePool's rules).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "inference/compute_pool.h"
#include "inference/gguf_tensor.h"
#include "inference/tensor_types.h"

namespace exo::inference {

struct WeightMatrix {
  TensorType type = TensorType::F32;
  const std::uint8_t* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;

  // A 1- or 2-dimensional GGUF tensor as a matrix (a 1-D tensor is one row).
  static WeightMatrix of(const GgufTensor& tensor);
  const std::uint8_t* row(std::int64_t r) const noexcept {
    return data + static_cast<std::size_t>(r) * row_bytes;
  }
};

void matmul_reference(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                      std::span<float> y);

void matmul(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens, std::span<float> y,
            ComputePool& pool);

// Copies row `r` of `w` (e.g. a token's embedding) into `out` as floats (out.size() == cols).
void dequantize_matrix_row(const WeightMatrix& w, std::int64_t r, std::span<float> out);

}  // namespace exo::inference
