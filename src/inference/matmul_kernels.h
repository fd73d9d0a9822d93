// Internal interface between matmul.cpp (dispatch, activation quantization, threading) and the
// per-variant kernel files (matmul_portable.cpp, matmul_avx2.cpp, and the 8-row kernels of
// matmul_x8_kernels.h and matmul_amx_kernels.h built per instruction set). Not part of the public API.
//
// Contract
// - Activations arrive in the format the weight type needs (activation_format()):
//   * F32: the caller's float rows as they are (F32 / F16 / BF16 weights);
//   * Q8: per token, cols / 32 blocks ActQ8: d is the block scale rounded through f16 (as ggml's
//     Q8_0 stores it), qs = round(x / (amax / 127)), sum = the sum of qs (for the offset formats);
//     For a single token, the blocks' scales and sums are also given contiguously (d_of_blocks /
//     sum_of_blocks), so kernels can load those of 8 consecutive blocks with one instruction.
//     For batches of 8 tokens or more, the Q8 blocks' scales and sums are also given grouped by 8
//     tokens (d_by_8 / sum_by_8): entry ((g * nb + b) * 8 + j) belongs to token 8g + j, block b,
//     for every complete group g of 8 tokens; kernels that reduce 8 tokens into the lanes of one
//     vector load them with one instruction.
//   * Q8K: per token, cols / 256 blocks ActQ8K: d = 1 / (-128 / signed extreme), qs clamped to
//     [-128, 127], bsums[j] = sum of qs[16j .. 16j + 15].
// - A kernel computes y[t * w.rows + r] for every token t and every row r in [row_begin, row_end).
//   Kernels read only their rows and write only their outputs: disjoint row ranges may run on
//   different threads at once. Every variant evaluates the same integer dot products; only the order
//   of float additions differs.
#pragma once

#include <cstdint>

#include "inference/matmul.h"

namespace exo::inference::kernels {

inline constexpr int q8_block = 32;
inline constexpr int q8k_block = 256;

struct ActQ8 {
  float d;
  std::int32_t sum;
  std::int8_t qs[q8_block];
};
static_assert(sizeof(ActQ8) == 40);

struct ActQ8K {
  float d;
  std::int16_t bsums[q8k_block / 16];
  std::int8_t qs[q8k_block];
};
static_assert(sizeof(ActQ8K) == 292);

enum class ActivationFormat : std::uint8_t { F32, Q8, Q8K };

struct Activations {
  ActivationFormat format = ActivationFormat::F32;
  std::int64_t n_tokens = 0;
  const float* f32 = nullptr;                   // [n_tokens][cols]
  const ActQ8* q8 = nullptr;                    // [n_tokens][cols / 32]
  const float* d_of_blocks = nullptr;           // [cols / 32], Q8 and n_tokens == 1: the blocks' scales
  const std::int32_t* sum_of_blocks = nullptr;  // same layout, the blocks' sums
  const float* d_by_8 = nullptr;                // [n_tokens / 8][cols / 32][8], Q8 and n_tokens >= 8
  const std::int32_t* sum_by_8 = nullptr;       // same layout, the blocks' sums
  const ActQ8K* q8k = nullptr;                  // [n_tokens][cols / 256]
};

// The activation format of a weight type; throws TensorTypeError for unsupported types.
ActivationFormat activation_format(TensorType type);

using RowKernel = void (*)(const WeightMatrix& w, const Activations& x, float* y, std::int64_t row_begin,
                           std::int64_t row_end);

// Quantizes n values (a multiple of the block) into blocks; portable, shared by every variant so the
// activations are identical whatever kernel runs.
void quantize_activation_q8(const float* x, std::int64_t n, ActQ8* out);
void quantize_activation_q8k(const float* x, std::int64_t n, ActQ8K* out);

// Kernel of `type` for each variant; nullptr when the variant has no kernel for the type.
RowKernel portable_kernel(TensorType type) noexcept;
RowKernel avx2_kernel(TensorType type) noexcept;

// The 8-row layouts (matmul.h): one group of 8 rows x one block (Q4_0, Q8_0: 32 values; Q4_K, Q5_K,
// Q6_K: 256).
inline constexpr int q4_0_block_bytes = 18;
inline constexpr int q4_0_x8_group_bytes = 8 * q4_0_block_bytes;
inline constexpr int q8_0_block_bytes = 34;
inline constexpr int q8_0_x8_group_bytes = 8 * q8_0_block_bytes;
inline constexpr int q4_k_block_bytes = 144;
inline constexpr int q4_k_x8_group_bytes = 8 * q4_k_block_bytes;
inline constexpr int q5_k_block_bytes = 176;
inline constexpr int q5_k_x8_group_bytes = 8 * q5_k_block_bytes;
inline constexpr int q6_k_block_bytes = 210;
inline constexpr int q6_k_x8_group_bytes = 8 * q6_k_block_bytes;
// One X8 layout's block: values per row and bytes per row (a group block is 8 of them).
struct X8Block {
  int values = 0;
  int row_bytes = 0;
};
constexpr X8Block x8_block(WeightLayout layout) noexcept {
  switch (layout) {
    case WeightLayout::Q4_0_X8:
      return {q8_block, q4_0_block_bytes};
    case WeightLayout::Q8_0_X8:
      return {q8_block, q8_0_block_bytes};
    case WeightLayout::Q4_K_X8:
      return {q8k_block, q4_k_block_bytes};
    case WeightLayout::Q5_K_X8:
      return {q8k_block, q5_k_block_bytes};
    case WeightLayout::Q6_K_X8:
      return {q8k_block, q6_k_block_bytes};
    case WeightLayout::ROWS:
      break;
  }
  return {};
}
// Where group g's blocks lie in an X8-layout matrix of `groups` groups of 8 rows, `nb` blocks per row
// and `group_bytes` per group block: block b at byte first + b * step. The group blocks of each pair
// of groups (2p, 2p + 1) alternate, so a pair's products read one run of memory; the blocks of a last,
// unpaired group follow each other.
struct X8GroupRun {
  std::int64_t first = 0;
  std::int64_t step = 0;
};
constexpr X8GroupRun x8_group_run(std::int64_t groups, std::int64_t nb, std::int64_t group_bytes,
                                  std::int64_t g) noexcept {
  if ((g | 1) < groups) return {((g & ~std::int64_t{1}) * nb + (g & 1)) * group_bytes, 2 * group_bytes};
  return {g * nb * group_bytes, group_bytes};
}
// Row r of an X8-layout matrix back in ggml's row format of its type (row_bytes bytes at out).
void unpack_x8_row(const WeightMatrix& w, std::int64_t r, std::uint8_t* out) noexcept;
// Kernels of an X8 layout (Q4_0_X8, Q8_0_X8, Q4_K_X8, Q5_K_X8 or Q6_K_X8); row ranges start at a multiple
// of 8.
RowKernel portable_x8_kernel(WeightLayout layout) noexcept;
RowKernel avx2_x8_kernel(WeightLayout layout) noexcept;
RowKernel avx_vnni_x8_kernel(WeightLayout layout) noexcept;
RowKernel avx512_vnni_x8_kernel(WeightLayout layout) noexcept;
RowKernel vnni_emulated_x8_kernel(WeightLayout layout) noexcept;
// The AMX variants' (matmul_amx_kernels.h): tiles for batches of 16 tokens and more, the AVX512-VNNI
// (native) or emulated VNNI (emulated) 8-row kernels for the other tokens.
RowKernel amx_x8_kernel(WeightLayout layout) noexcept;
RowKernel amx_emulated_x8_kernel(WeightLayout layout) noexcept;

// Float vector helpers of each variant: the SwiGLU product and attention (matmul.h).
struct VectorOps {
  void (*silu_mul)(float* gate, const float* up, std::int64_t n) noexcept;
  void (*attend)(const AttentionRows& rows, float* scratch) noexcept;
};
VectorOps portable_vector_ops() noexcept;
VectorOps avx2_vector_ops() noexcept;

}  // namespace exo::inference::kernels
