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
//   accumulation. matmul is the fast path chosen at run time from the CPU's features; for quantized
//   weights it quantizes the activations once per call as ggml does (Q8_0-style 32-value blocks for
//   the 32-value formats, 256-value Q8_K-style blocks for the k-quants) and uses integer dot
//   products, so it agrees with the oracle to that quantization's tolerance, not bit for bit.
//   F32/F16/BF16 weights use F32 activations and F32 fused multiply-adds. Results are deterministic
//   for a given input, variant and thread count (each output element is computed by one thread in a
//   fixed order, so they do not even depend on the thread count).
// - matmul_with runs one explicit kernel variant (tests and benchmarks); it throws
//   std::invalid_argument when the CPU does not support it. supported_variants() lists the variants
//   this CPU can run, portable first; best_variant() is the one matmul uses.
// - Thread-safety: pure functions of their inputs; matmul runs on `pool` (see ComputePool's rules).
//   Scratch memory for the quantized activations is per calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "inference/compute_pool.h"
#include "inference/gguf_tensor.h"
#include "inference/tensor_types.h"

namespace exo::inference {

// How a WeightMatrix's bytes are arranged.
enum class WeightLayout : std::uint8_t {
  ROWS,     // ggml's: row after row, row_bytes each
  Q4_0_X8,  // Q4_0 in groups of 8 rows (pack_x8), the same size as ROWS
  Q8_0_X8,  // Q8_0 in groups of 8 rows (pack_x8), the same size as ROWS
  Q4_K_X8,  // Q4_K in groups of 8 rows (pack_x8), the same size as ROWS
  Q5_K_X8,  // Q5_K in groups of 8 rows (pack_x8), the same size as ROWS
  Q6_K_X8,  // Q6_K in groups of 8 rows (pack_x8), the same size as ROWS
};

struct WeightMatrix {
  TensorType type = TensorType::F32;
  const std::uint8_t* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t row_bytes = 0;
  WeightLayout layout = WeightLayout::ROWS;

  // A 1- or 2-dimensional GGUF tensor as a matrix (a 1-D tensor is one row).
  static WeightMatrix of(const GgufTensor& tensor);
  // Row r's bytes (ROWS layout only).
  const std::uint8_t* row(std::int64_t r) const noexcept {
    return data + static_cast<std::size_t>(r) * row_bytes;
  }
};

// Kernel families. Every variant computes the same integer dot products; the float summation order
// differs only between PORTABLE and the others, which share theirs (bit-identical results).
enum class KernelVariant : std::uint8_t {
  PORTABLE,       // plain C++ (any x86-64 or other CPU)
  AVX2,           // AVX2 + FMA + F16C
  AVX_VNNI,       // AVX2 variant whose 8-row kernels multiply bytes with the VEX vpdpbusd (AVX-VNNI)
  AVX512_VNNI,    // the same with the EVEX vpdpbusd (AVX512F + AVX512VL + AVX512-VNNI)
  VNNI_EMULATED,  // the VNNI kernels with vpdpbusd emulated on AVX2: for testing them on any AVX2
                  // CPU; slower than AVX2, never chosen by best_variant()
  AMX,            // AVX512_VNNI, with whole tiles of 16 tokens of the 8-row layouts on AMX tiles
                  // (AMX-TILE + AMX-INT8, the tile data granted by Linux to the process)
  AMX_EMULATED,   // the AMX kernels with the tile instructions (and vpdpbusd) emulated: for testing
                  // them on any AVX2 CPU; much slower, never chosen by best_variant()
};

// Every variant, slowest first (supported_variants() keeps this order).
inline constexpr KernelVariant kernel_variants_slowest_first[] = {
    KernelVariant::PORTABLE, KernelVariant::AMX_EMULATED, KernelVariant::VNNI_EMULATED,
    KernelVariant::AVX2,     KernelVariant::AVX_VNNI,     KernelVariant::AVX512_VNNI,
    KernelVariant::AMX};

// "portable", "avx2", "avx-vnni", "avx512-vnni", "vnni-emulated", "amx", "amx-emulated";
// parse_kernel_variant is the inverse (nullopt for any other name).
std::string_view kernel_variant_name(KernelVariant variant) noexcept;
std::optional<KernelVariant> parse_kernel_variant(std::string_view name) noexcept;
// Whether the variant emulates instructions for testing (VNNI_EMULATED, AMX_EMULATED): never a default.
bool is_emulation(KernelVariant variant) noexcept;
// The variants this CPU (and operating system) can run, slowest first.
std::vector<KernelVariant> supported_variants();
// The variant matmul and the other entry points without a variant use: the one chosen with
// select_kernel_variant, else the last of supported_variants() that is not an emulation and passes
// agrees_with_avx2 where that check applies. Fixed at its first call.
KernelVariant best_variant();
// Whether `variant` computes what AVX2 computes, bit for bit, on small products of every 8-row layout
// (1 and 35 tokens: the matrix-vector, 8-row and AMX tile paths); false also when it cannot run here.
// best_variant() runs it on each variant this project could not run where it was developed
// (AVX_VNNI, AVX512_VNNI, AMX) before choosing it, and sets aside any that fails, so a broken fast
// path costs speed, not wrong answers. Runs on the calling thread (about a millisecond).
bool agrees_with_avx2(KernelVariant variant);
// The variants best_variant() set aside because agrees_with_avx2 failed on this CPU (normally none;
// the engine reports them, `kernels_set_aside`).
std::vector<KernelVariant> variants_set_aside();
// Chooses the variant best_variant() returns for the rest of the process (the `--kernels` flag: a
// way around a misbehaving variant, and to compare variants end to end). Call it before any kernel
// runs. Throws std::invalid_argument when this CPU cannot run the variant, std::logic_error when
// best_variant() is already fixed to another one; choosing the same one again is allowed.
void select_kernel_variant(KernelVariant variant);
// Whether the variant's kernels read the 8-row layouts (RepackedWeights packs for it).
bool uses_x8_layouts(KernelVariant variant) noexcept;
// Whether the fast kernels handle this weight type (the types of tensor_types.h that quants.h can
// dequantize: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).
bool matmul_supported(TensorType type) noexcept;

void matmul_reference(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                      std::span<float> y);

void matmul(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens, std::span<float> y,
            ComputePool& pool);

void matmul_with(KernelVariant variant, const WeightMatrix& w, std::span<const float> x,
                 std::int64_t n_tokens, std::span<float> y, ComputePool& pool);

// Float vector helpers, on the calling thread, with the best variant's instructions. silu_mul:
// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i], for i < n. Summation order
// and the exponential's last bit (libm's or a 2-ulp polynomial) depend on the variant, so the last
// bits do too, as for matmul.
void silu_mul_f32(float* gate, const float* up, std::int64_t n) noexcept;
void silu_mul_f32_with(KernelVariant variant, float* gate, const float* up, std::int64_t n) noexcept;

// Attention rows that share one key/value head (the query heads of a GQA group, at one or more
// positions): row r computes out[r] = softmax(scale * K q[r]) V over the first visible[r] cached
// positions. K and V hold elements of kv_type (F32 or F16, a KV cache's types); row p of each starts
// p * stride elements after `keys` / `values` and holds head_dim values (stride >= head_dim: one
// head's part of a cache row). Rows read each block of keys and
// values while it is in cache, so a group costs about one row's memory traffic. The maximum score
// is subtracted before exponentiating, so large scores cannot overflow. `scratch` holds at least
// q.size() * max(visible) floats; every visible[r] >= 1 and the keys and values of
// max(visible) positions exist. The variants differ in summation order and in the exponential's
// last bits (as for silu_mul_f32).
struct AttentionRows {
  TensorType kv_type = TensorType::F32;
  const void* keys = nullptr;
  const void* values = nullptr;
  std::int64_t stride = 0;
  std::int64_t head_dim = 0;
  float scale = 1.0F;
  std::span<const float* const> q;
  std::span<const std::int64_t> visible;
  std::span<float* const> out;
};
void attend_f32(const AttentionRows& rows, float* scratch) noexcept;
void attend_f32_with(KernelVariant variant, const AttentionRows& rows, float* scratch) noexcept;

// Several products of one input, e.g. a layer's Q, K and V projections: y_i = W_i x for every
// output. The input is quantized once per activation format the matrices need and all their rows
// run in one parallel pass (one wake-up of the pool instead of one per matrix). Each y_i equals what
// matmul(W_i, x, ...) computes, bit for bit. The matrices must have the same column count.
struct MatmulOutput {
  WeightMatrix w;
  std::span<float> y;
};
void matmul_group(std::span<const MatmulOutput> outputs, std::span<const float> x, std::int64_t n_tokens,
                  ComputePool& pool);
void matmul_group_with(KernelVariant variant, std::span<const MatmulOutput> outputs, std::span<const float> x,
                       std::int64_t n_tokens, ComputePool& pool);

// Where the group blocks of every X8 layout lie (kernels::x8_group_run): the groups of 8 rows are
// paired (0 and 1, 2 and 3, ...) and a pair's group blocks alternate: block b of group 2p at
// (2p * nb + 2b) * group_bytes, of group 2p + 1 right after it, so a pair's matrix-vector product
// reads one run of memory. A last, unpaired group (an odd number of groups) has its nb blocks in a
// row at (group * nb + b) * group_bytes. nb is cols / 32 (Q4_0_X8, Q8_0_X8) or cols / 256.
//
// The Q4_0_X8 layout: per group of 8 rows and per 32-value block (144 bytes), the 8 rows' f16 scales, then 4
// chunks of 32 bytes; byte 4 * r + m of chunk j holds row r's level of value 8j + m in its low nibble and of
// value 8j + 4 + m in its high nibble. Masking a chunk's low or high nibbles gives 4 consecutive levels of
// each of the 8 rows side by side, so the kernels multiply one broadcast group of 4 activation levels with
// all 8 rows and the rows' dot products end up in the lanes of one vector (no horizontal sums).
//
// The Q8_0_X8 layout, on the same plan: per group of 8 rows and per 32-value block (272 bytes), the
// 8 rows' f16 scales, then 8 chunks of 32 bytes; byte 4 * r + m of chunk k holds row r's (signed)
// level of value 4k + m.
//
// The Q4_K_X8 layout, on the same plan: per group of 8 rows and per 256-value super-block (1152
// bytes): the 8 rows' f16 d, their 8 f16 dmin, then the 64 sub-block scales and 64 mins (index 8 * j + r for
// sub-block j of row r) in 96 bytes: bytes 32..63 hold the scales' low 4 bits (byte k: index k low, index k +
// 32 high nibble), 64..95 the mins' low 4 bits likewise, 96..127 the high 2 bits (byte k, from bit 0: scale
// k, scale k + 32, min k, min k + 32); then per sub-block j (32 values) 128 bytes of levels arranged as one
// Q4_0_X8 block's. The kernels unpack scales and mins once per 8 rows with a few vector instructions.
//
// The Q5_K_X8 layout: Q4_K_X8's, with 1408-byte group blocks whose sub-blocks are 160 bytes: the low 4 bits
// of the 32 levels as in Q4_K_X8, then 32 bytes of fifth bits, byte 4 * r + m holding in bit k that of row
// r's level 4k + m (bit k of a byte belongs to the byte of the k-th 4-level vector the 128 bytes unpack
// into).
//
// The Q6_K_X8 layout: per group of 8 rows and per 256-value super-block (1680 bytes): the 8
// rows' f16 d, their 16 int8 scales per row (index 8 * j + r for the 16-value sub-block j of row r, 128
// bytes), then per 32-value sub-block 192 bytes: two runs of 3 x 32 bytes, run h for the levels 16h .. 16h
// + 15. In vector g (0..2) of a run, byte 4 * r + m holds row r's level 16h + 4g + m in bits 0-5 and bits 2g,
// 2g + 1 of its level 16h + 12 + m in bits 6-7: one mask gives each of the first three level vectors, three
// shifts, masks and two ORs the fourth.
//
// can_pack_x8: Q4_0, Q8_0, Q4_K, Q5_K or Q6_K in the ROWS layout with a row count that is a multiple of 8.
// pack_x8 writes `w` in its 8-row layout into `out` (exactly rows * row_bytes bytes) and returns the
// view of it; std::invalid_argument otherwise. With a pool, the row groups are packed on it (the
// caller's rules for the pool apply). matmul gives the same results for both layouts up to float
// summation order; dequantize_matrix_row reads either.
bool can_pack_x8(const WeightMatrix& w) noexcept;
WeightMatrix pack_x8(const WeightMatrix& w, std::span<std::uint8_t> out, ComputePool* pool = nullptr);

// Copies row `r` of `w` (e.g. a token's embedding) into `out` as floats (out.size() == cols).
void dequantize_matrix_row(const WeightMatrix& w, std::int64_t r, std::span<float> out);

}  // namespace exo::inference
