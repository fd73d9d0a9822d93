// Scalar reference conversions between float and the ggml block formats of tensor_types.h.
//
// Contract: stateless functions, safe from any thread on disjoint outputs. A "row" is any run of
// whole blocks: `values.size()` must be a multiple of the type's block size and the byte span must
// be exactly checked_byte_size(type, values.size()) long, otherwise TensorTypeError is thrown before
// anything is written. Types that are not implemented throw TensorTypeError naming the type.
// These are the readable reference implementations (correctness first); fast kernels, if any, are
// tested against them.
//
// Quantizers are this project's own: they produce valid blocks of the same formats (so any GGUF
// reader can use them) with round-to-nearest scales; for the k-quants they are simple, not the
// error-minimising searches some tools use.
#pragma once

#include <cstdint>
#include <span>

#include "inference/tensor_types.h"

namespace exo::inference {

bool can_dequantize(TensorType type) noexcept;
bool can_quantize(TensorType type) noexcept;

// Decodes values.size() values of `type` from `blocks` into `values`.
void dequantize_row(TensorType type, std::span<const std::uint8_t> blocks, std::span<float> values);

// Encodes `values` into `blocks` (which must be exactly the encoded size).
void quantize_row(TensorType type, std::span<const float> values, std::span<std::uint8_t> blocks);

}  // namespace exo::inference
