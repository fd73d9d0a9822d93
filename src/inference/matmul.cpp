#include "inference/matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "inference/half_float.h"
#include "inference/matmul_kernels.h"
#include "inference/quant_blocks.h"
#include "inference/quants.h"

namespace exo::inference {

namespace kernels {

ActivationFormat activation_format(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
      return ActivationFormat::F32;
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
      return ActivationFormat::Q8;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return ActivationFormat::Q8K;
    default:
      throw TensorTypeError("matmul is not implemented for tensor type " +
                            std::string(tensor_type_name(type)));
  }
}

void quantize_activation_q8(const float* x, std::int64_t n, ActQ8* out) {
  for (std::int64_t b = 0; b < n / q8_block; ++b) {
    const float* v = x + b * q8_block;
    float amax = 0.0f;
    for (int j = 0; j < q8_block; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    ActQ8& block = out[b];
    block.d = fp16_to_float(float_to_fp16(d));
    std::int32_t sum = 0;
    for (int j = 0; j < q8_block; ++j) {
      // std::round (half away from zero) without its library call: |scaled| <= 127, so the
      // truncation and the fraction are exact.
      const float scaled = v[j] * inverse;
      auto q = static_cast<std::int32_t>(scaled);
      const float fraction = scaled - static_cast<float>(q);
      q += static_cast<std::int32_t>(fraction >= 0.5f) - static_cast<std::int32_t>(fraction <= -0.5f);
      block.qs[j] = static_cast<std::int8_t>(q);
      sum += q;
    }
    block.sum = sum;
  }
}

void quantize_activation_q8k(const float* x, std::int64_t n, ActQ8K* out) {
  for (std::int64_t b = 0; b < n / q8k_block; ++b) {
    const float* v = x + b * q8k_block;
    float extreme = 0.0f;
    for (int j = 0; j < q8k_block; ++j) {
      if (std::fabs(v[j]) > std::fabs(extreme)) extreme = v[j];
    }
    ActQ8K& block = out[b];
    if (extreme == 0.0f) {
      block = ActQ8K{};
      continue;
    }
    const float inverse = -128.0f / extreme;
    for (int j = 0; j < q8k_block; ++j) {
      // nearbyint (round half to even) without its library call, so the loop vectorizes: adding and
      // subtracting 1.5 * 2^23 rounds |y| <= 128 to an integer in the current (nearest-even) mode.
      // Checked against std::nearbyint for every float of magnitude <= 129 (only the sign of a zero
      // differs, which the conversion drops).
      constexpr float round_to_integer = 12582912.0f;
      const float scaled = inverse * v[j];
      const float q = std::min(127.0f, (scaled + round_to_integer) - round_to_integer);
      block.qs[j] = static_cast<std::int8_t>(q);
    }
    for (int g = 0; g < q8k_block / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += block.qs[16 * g + j];
      block.bsums[g] = static_cast<std::int16_t>(sum);
    }
    block.d = 1.0f / inverse;
  }
}

}  // namespace kernels

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
  const auto expected_row = checked_byte_size(w.type, static_cast<std::uint64_t>(w.cols));
  if (expected_row && *expected_row != w.row_bytes)
    throw std::invalid_argument("matmul: row_bytes does not match cols of " +
                                std::string(tensor_type_name(w.type)));
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

// Linux enables the AMX tile data state (XCR0 bits 17-18) but faults a process's first use of it
// unless the process asked for it (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16 and later); the
// permission then holds for all its threads. Asked at most once, by cpu_runs's cached check.
#if defined(__x86_64__) || defined(__i386__)
bool process_may_use_amx_tiles() noexcept {
#if defined(__linux__) && defined(__x86_64__)
  constexpr int arch_req_xcomp_perm = 0x1023;
  constexpr int xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
  return false;
#endif
}
#endif

// Whether this CPU, and the operating system's saved register state, run the variant. libgcc's
// __builtin_cpu_supports checks XCR0 (via xgetbv) for the AVX and AVX-512 features.
bool cpu_runs_uncached(KernelVariant variant) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  switch (variant) {
    case KernelVariant::PORTABLE:
      return true;
    case KernelVariant::AVX2:
    case KernelVariant::VNNI_EMULATED:
      return avx2;
    case KernelVariant::AVX_VNNI:
      return avx2 && __builtin_cpu_supports("avxvnni");
    case KernelVariant::AVX512_VNNI:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case KernelVariant::AMX_EMULATED:
      return avx2;
    case KernelVariant::AMX:
      return cpu_runs_uncached(KernelVariant::AVX512_VNNI) && __builtin_cpu_supports("amx-tile") &&
             __builtin_cpu_supports("amx-int8") && process_may_use_amx_tiles();
  }
  return false;
#else
  return variant == KernelVariant::PORTABLE;
#endif
}

// The same, read once per process: every matmul call checks its variant.
bool cpu_runs(KernelVariant variant) noexcept {
  static const unsigned runnable = [] {
    unsigned bits = 0;
    for (const KernelVariant v : kernel_variants_slowest_first)
      if (cpu_runs_uncached(v)) bits |= 1U << static_cast<unsigned>(v);
    return bits;
  }();
  return (runnable >> static_cast<unsigned>(variant) & 1U) != 0;
}

kernels::RowKernel x8_kernel_for(KernelVariant variant, WeightLayout layout) noexcept {
  switch (variant) {
    case KernelVariant::PORTABLE:
      return kernels::portable_x8_kernel(layout);
    case KernelVariant::AVX2:
      return kernels::avx2_x8_kernel(layout);
    case KernelVariant::AVX_VNNI:
      return kernels::avx_vnni_x8_kernel(layout);
    case KernelVariant::AVX512_VNNI:
      return kernels::avx512_vnni_x8_kernel(layout);
    case KernelVariant::VNNI_EMULATED:
      return kernels::vnni_emulated_x8_kernel(layout);
    case KernelVariant::AMX:
      return kernels::amx_x8_kernel(layout);
    case KernelVariant::AMX_EMULATED:
      return kernels::amx_emulated_x8_kernel(layout);
  }
  return nullptr;
}

kernels::RowKernel kernel_for(KernelVariant variant, const WeightMatrix& w) {
  if (w.layout != WeightLayout::ROWS) return x8_kernel_for(variant, w.layout);
  // The row-layout kernels exist in two flavours: every x86 SIMD variant uses the AVX2 ones.
  const TensorType type = w.type;
  kernels::RowKernel kernel = nullptr;
  if (variant != KernelVariant::PORTABLE) kernel = kernels::avx2_kernel(type);
  if (kernel == nullptr) kernel = kernels::portable_kernel(type);
  if (kernel == nullptr)
    throw TensorTypeError("matmul is not implemented for tensor type " + std::string(tensor_type_name(type)));
  return kernel;
}

// Per-thread scratch for quantized activations (grows, never shrinks).
struct ActivationScratch {
  std::vector<kernels::ActQ8> q8;
  std::vector<kernels::ActQ8K> q8k;
  std::vector<float> d_of_blocks;
  std::vector<std::int32_t> sum_of_blocks;
  std::vector<float> d_by_8;
  std::vector<std::int32_t> sum_by_8;
};

// Copies the scales and sums of the Q8 blocks into contiguous arrays (Activations::d_of_blocks).
void gather_block_scales(const kernels::ActQ8* q8, std::int64_t blocks, ActivationScratch& scratch) {
  scratch.d_of_blocks.resize(static_cast<std::size_t>(blocks));
  scratch.sum_of_blocks.resize(static_cast<std::size_t>(blocks));
  for (std::int64_t i = 0; i < blocks; ++i) {
    scratch.d_of_blocks[static_cast<std::size_t>(i)] = q8[i].d;
    scratch.sum_of_blocks[static_cast<std::size_t>(i)] = q8[i].sum;
  }
}

// Regroups the scales and sums of every complete group of 8 tokens (see Activations::d_by_8).
void group_by_8_tokens(const kernels::ActQ8* q8, std::int64_t nb, std::int64_t n_tokens,
                       ActivationScratch& scratch) {
  const std::int64_t groups = n_tokens / 8;
  scratch.d_by_8.resize(static_cast<std::size_t>(groups * nb * 8));
  scratch.sum_by_8.resize(scratch.d_by_8.size());
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t j = 0; j < 8; ++j) {
      const kernels::ActQ8* token = q8 + (g * 8 + j) * nb;
      for (std::int64_t b = 0; b < nb; ++b) {
        const auto at = static_cast<std::size_t>((g * nb + b) * 8 + j);
        scratch.d_by_8[at] = token[b].d;
        scratch.sum_by_8[at] = token[b].sum;
      }
    }
  }
}

}  // namespace

std::string_view kernel_variant_name(KernelVariant variant) noexcept {
  switch (variant) {
    case KernelVariant::PORTABLE:
      return "portable";
    case KernelVariant::AVX2:
      return "avx2";
    case KernelVariant::AVX_VNNI:
      return "avx-vnni";
    case KernelVariant::AVX512_VNNI:
      return "avx512-vnni";
    case KernelVariant::VNNI_EMULATED:
      return "vnni-emulated";
    case KernelVariant::AMX:
      return "amx";
    case KernelVariant::AMX_EMULATED:
      return "amx-emulated";
  }
  return "unknown";
}

std::vector<KernelVariant> supported_variants() {
  std::vector<KernelVariant> variants;
  for (const KernelVariant v : kernel_variants_slowest_first)
    if (cpu_runs(v)) variants.push_back(v);
  return variants;
}

bool is_emulation(KernelVariant variant) noexcept {
  return variant == KernelVariant::VNNI_EMULATED || variant == KernelVariant::AMX_EMULATED;
}

bool uses_x8_layouts(KernelVariant variant) noexcept {
  return variant != KernelVariant::PORTABLE;
}

namespace {

// best_variant()'s answer once fixed; -1 before.
std::atomic<int> chosen_variant{-1};
// Bit v: variant v failed agrees_with_avx2 when best_variant() chose its default.
std::atomic<unsigned> set_aside_bits{0};

// The variants whose kernels were compiled but never run where this project was developed: checked
// against AVX2 before best_variant() picks them by default.
bool needs_self_check(KernelVariant variant) noexcept {
  return variant == KernelVariant::AVX_VNNI || variant == KernelVariant::AVX512_VNNI ||
         variant == KernelVariant::AMX;
}

// The fastest supported variant that is not an emulation and passes its self-check.
int default_variant() {
  const std::vector<KernelVariant> variants = supported_variants();
  for (auto v = variants.rbegin(); v != variants.rend(); ++v) {
    if (is_emulation(*v)) continue;
    if (needs_self_check(*v) && !agrees_with_avx2(*v)) {
      set_aside_bits.fetch_or(1U << static_cast<unsigned>(*v), std::memory_order_relaxed);
      continue;
    }
    return static_cast<int>(*v);
  }
  return static_cast<int>(KernelVariant::PORTABLE);
}

}  // namespace

std::optional<KernelVariant> parse_kernel_variant(std::string_view name) noexcept {
  for (const KernelVariant v : kernel_variants_slowest_first)
    if (kernel_variant_name(v) == name) return v;
  return std::nullopt;
}

KernelVariant best_variant() {
  int chosen = chosen_variant.load(std::memory_order_acquire);
  if (chosen < 0) {
    // Several first callers may race: they all compute the same default, and the first store wins.
    const int fastest = default_variant();
    if (chosen_variant.compare_exchange_strong(chosen, fastest, std::memory_order_acq_rel)) chosen = fastest;
  }
  return static_cast<KernelVariant>(chosen);
}

std::vector<KernelVariant> variants_set_aside() {
  std::vector<KernelVariant> variants;
  const unsigned bits = set_aside_bits.load(std::memory_order_relaxed);
  for (const KernelVariant v : kernel_variants_slowest_first)
    if ((bits >> static_cast<unsigned>(v) & 1U) != 0) variants.push_back(v);
  return variants;
}

void select_kernel_variant(KernelVariant variant) {
  if (!cpu_runs(variant)) {
    std::string runs;
    for (const KernelVariant v : supported_variants())
      runs += (runs.empty() ? "" : ", ") + std::string(kernel_variant_name(v));
    throw std::invalid_argument("this CPU cannot run the " + std::string(kernel_variant_name(variant)) +
                                " kernels (it runs: " + runs + ")");
  }
  int expected = -1;
  if (chosen_variant.compare_exchange_strong(expected, static_cast<int>(variant),
                                             std::memory_order_acq_rel) ||
      expected == static_cast<int>(variant))
    return;
  throw std::logic_error("the kernel variant is already " +
                         std::string(kernel_variant_name(static_cast<KernelVariant>(expected))) +
                         "; choose one before any kernel runs");
}

bool matmul_supported(TensorType type) noexcept {
  return kernels::portable_kernel(type) != nullptr;
}

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

namespace {

// The 8-row layout of a type in the ROWS layout; ROWS when it has none.
WeightLayout x8_layout_of(TensorType type) noexcept {
  switch (type) {
    case TensorType::Q4_0:
      return WeightLayout::Q4_0_X8;
    case TensorType::Q8_0:
      return WeightLayout::Q8_0_X8;
    case TensorType::Q4_K:
      return WeightLayout::Q4_K_X8;
    case TensorType::Q5_K:
      return WeightLayout::Q5_K_X8;
    case TensorType::Q6_K:
      return WeightLayout::Q6_K_X8;
    default:
      return WeightLayout::ROWS;
  }
}

}  // namespace

bool can_pack_x8(const WeightMatrix& w) noexcept {
  const WeightLayout layout = x8_layout_of(w.type);
  return layout != WeightLayout::ROWS && w.layout == WeightLayout::ROWS && w.rows > 0 && w.rows % 8 == 0 &&
         w.cols > 0 && w.cols % kernels::x8_block(layout).values == 0;
}

namespace {

std::uint32_t load_u32(const std::uint8_t* at) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// One row's 4 bytes of an X8 level chunk from 8 consecutive levels stored as nibbles: the low (or, with
// `high`, the high) nibbles of the 4 bytes `first` give levels 0-3 (the chunk's low nibbles), those of
// `second` levels 4-7 (its high nibbles).
std::uint32_t x8_chunk(std::uint32_t first, std::uint32_t second, bool high) noexcept {
  return high ? ((first >> 4) & 0x0F0F0F0FU) | (second & 0xF0F0F0F0U)
              : (first & 0x0F0F0F0FU) | ((second & 0x0F0F0F0FU) << 4);
}

void pack_q4_0_group_block(const WeightMatrix& w, std::int64_t g, std::int64_t b, std::uint8_t* dst) {
  for (int r = 0; r < 8; ++r) {
    const std::uint8_t* src = w.row(g * 8 + r) + b * kernels::q4_0_block_bytes;
    dst[2 * r] = src[0];
    dst[2 * r + 1] = src[1];
    // Levels 0-15 are the low nibbles of qs[0..15], 16-31 the high ones; chunk j holds 8j .. 8j + 7.
    for (int j = 0; j < 4; ++j) {
      const std::uint8_t* q = src + 2 + 8 * (j % 2);
      const std::uint32_t chunk = x8_chunk(load_u32(q), load_u32(q + 4), j >= 2);
      std::memcpy(dst + 16 + 32 * j + 4 * r, &chunk, 4);
    }
  }
}

void pack_q8_0_group_block(const WeightMatrix& w, std::int64_t g, std::int64_t b, std::uint8_t* dst) {
  for (int r = 0; r < 8; ++r) {
    const std::uint8_t* src = w.row(g * 8 + r) + b * kernels::q8_0_block_bytes;
    dst[2 * r] = src[0];
    dst[2 * r + 1] = src[1];
    for (int k = 0; k < 8; ++k) std::memcpy(dst + 16 + 32 * k + 4 * r, src + 2 + 4 * k, 4);
  }
}

void pack_q6_k_group_block(const WeightMatrix& w, std::int64_t g, std::int64_t b, std::uint8_t* dst) {
  for (int r = 0; r < 8; ++r) {
    const std::uint8_t* src = w.row(g * 8 + r) + b * kernels::q6_k_block_bytes;
    std::memcpy(dst + 2 * r, src + 208, 2);                           // d
    for (int j = 0; j < 16; ++j) dst[16 + 8 * j + r] = src[192 + j];  // int8 scales
    std::uint8_t levels[256];
    blocks::q6_k_levels(src, levels);
    // Sub-block s, run h, vector k: lane 4 * r + m holds level 16h + 4k + m of the sub-block in bits
    // 0-5 and bits 2k, 2k + 1 of its level 16h + 12 + m in bits 6-7; 4 lanes at a time.
    for (int s = 0; s < 8; ++s) {
      for (int h = 0; h < 2; ++h) {
        const std::uint8_t* run_levels = levels + 32 * s + 16 * h;
        const std::uint32_t fourth = load_u32(run_levels + 12);
        std::uint8_t* run = dst + 144 + 192 * s + 96 * h + 4 * r;
        for (int vector = 0; vector < 3; ++vector) {
          const std::uint32_t lanes =
              load_u32(run_levels + 4 * vector) | (((fourth >> (2 * vector)) & 0x03030303U) << 6);
          std::memcpy(run + 32 * vector, &lanes, 4);
        }
      }
    }
  }
}

// Q4_K (Bits 4) and Q5_K (Bits 5): the same scales, mins and low 4 bits of the levels; Q5_K's fifth
// bits follow each sub-block's 128 bytes of low bits.
template <int Bits>
void pack_k_group_block(const WeightMatrix& w, std::int64_t g, std::int64_t b, std::uint8_t* dst) {
  constexpr int block_bytes = Bits == 4 ? kernels::q4_k_block_bytes : kernels::q5_k_block_bytes;
  constexpr int low_bits_at = Bits == 4 ? 16 : 48;  // Q5_K: qh (32 bytes) at 16, then qs
  constexpr int sub_block_bytes = Bits == 4 ? 128 : 160;
  std::uint8_t scales[64];  // index 8 * j + r
  std::uint8_t mins[64];
  for (int r = 0; r < 8; ++r) {
    const std::uint8_t* src = w.row(g * 8 + r) + b * block_bytes;
    std::memcpy(dst + 2 * r, src, 2);           // d
    std::memcpy(dst + 16 + 2 * r, src + 2, 2);  // dmin
    std::uint8_t row_scales[8];
    std::uint8_t row_mins[8];
    blocks::unpack_k4_scales_mins(src + 4, row_scales, row_mins);
    for (int j = 0; j < 8; ++j) {
      scales[8 * j + r] = row_scales[j];
      mins[8 * j + r] = row_mins[j];
    }
    // Sub-block j of the row: nibble j % 2 of bytes 32 * (j / 2) .. + 31; its 32 levels go to the
    // sub-block's 128 bytes as a Q4_0_X8 block's (x8_chunk). Q5_K: bit j of qh[i] is the fifth bit
    // of level i; byte m of the 4 fifth-bit bytes holds in bit k that of level 4k + m.
    for (int j = 0; j < 8; ++j) {
      const std::uint8_t* q = src + low_bits_at + 32 * (j / 2);
      std::uint8_t* out = dst + 128 + sub_block_bytes * j + 4 * r;
      for (int c = 0; c < 4; ++c) {
        const std::uint32_t chunk = x8_chunk(load_u32(q + 8 * c), load_u32(q + 8 * c + 4), j % 2 == 1);
        std::memcpy(out + 32 * c, &chunk, 4);
      }
      if constexpr (Bits == 5) {
        std::uint32_t fifth_bits = 0;
        for (int k = 0; k < 8; ++k) fifth_bits |= ((load_u32(src + 16 + 4 * k) >> j) & 0x01010101U) << k;
        std::memcpy(out + 128, &fifth_bits, 4);
      }
    }
  }
  for (int k = 0; k < 32; ++k) {
    dst[32 + k] = static_cast<std::uint8_t>((scales[k] & 0x0F) | ((scales[k + 32] & 0x0F) << 4));
    dst[64 + k] = static_cast<std::uint8_t>((mins[k] & 0x0F) | ((mins[k + 32] & 0x0F) << 4));
    dst[96 + k] = static_cast<std::uint8_t>((scales[k] >> 4) | ((scales[k + 32] >> 4) << 2) |
                                            ((mins[k] >> 4) << 4) | ((mins[k + 32] >> 4) << 6));
  }
}

}  // namespace

WeightMatrix pack_x8(const WeightMatrix& w, std::span<std::uint8_t> out, ComputePool* pool) {
  if (!can_pack_x8(w))
    throw std::invalid_argument("pack_x8: not a Q4_0, Q8_0, Q4_K, Q5_K or Q6_K matrix of 8k rows");
  if (out.size() != static_cast<std::size_t>(w.rows) * w.row_bytes)
    throw std::invalid_argument("pack_x8: the output is not rows * row_bytes bytes");
  const WeightLayout layout = x8_layout_of(w.type);
  const kernels::X8Block block = kernels::x8_block(layout);
  const std::int64_t nb = w.cols / block.values;
  const std::int64_t group_bytes = 8 * block.row_bytes;
  const auto pack_groups = [&](std::int64_t first, std::int64_t end) {
    for (std::int64_t g = first; g < end; ++g) {
      const kernels::X8GroupRun run = kernels::x8_group_run(w.rows / 8, nb, group_bytes, g);
      for (std::int64_t b = 0; b < nb; ++b) {
        std::uint8_t* dst = out.data() + static_cast<std::size_t>(run.first + b * run.step);
        switch (layout) {
          case WeightLayout::Q4_0_X8:
            pack_q4_0_group_block(w, g, b, dst);
            break;
          case WeightLayout::Q8_0_X8:
            pack_q8_0_group_block(w, g, b, dst);
            break;
          case WeightLayout::Q6_K_X8:
            pack_q6_k_group_block(w, g, b, dst);
            break;
          case WeightLayout::Q5_K_X8:
            pack_k_group_block<5>(w, g, b, dst);
            break;
          default:
            pack_k_group_block<4>(w, g, b, dst);
            break;
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(w.rows / 8, pack_groups);
  } else {
    pack_groups(0, w.rows / 8);
  }
  WeightMatrix packed = w;
  packed.data = out.data();
  packed.layout = layout;
  return packed;
}

void dequantize_matrix_row(const WeightMatrix& w, std::int64_t r, std::span<float> out) {
  if (r < 0 || r >= w.rows || out.size() != static_cast<std::size_t>(w.cols))
    throw std::out_of_range("dequantize_matrix_row: row " + std::to_string(r) + " out of range");
  if (w.layout != WeightLayout::ROWS) {
    thread_local std::vector<std::uint8_t> row;
    row.resize(w.row_bytes);
    kernels::unpack_x8_row(w, r, row.data());
    dequantize_row(w.type, row, out);
    return;
  }
  dequantize_row(w.type, std::span<const std::uint8_t>(w.row(r), w.row_bytes), out);
}

void matmul_reference(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens,
                      std::span<float> y) {
  check_shapes(w, x, n_tokens, y);
  reference_rows(w, x, n_tokens, y, 0, w.rows);
}

namespace {

// Quantizes x into `format` once (in the calling thread's scratch, each token on the pool) and
// describes it for the kernels.
kernels::Activations prepare_activations(kernels::ActivationFormat format, std::span<const float> x,
                                         std::int64_t cols, std::int64_t n_tokens, ComputePool& pool,
                                         ActivationScratch& scratch) {
  kernels::Activations act;
  act.format = format;
  act.n_tokens = n_tokens;
  act.f32 = x.data();
  // Tokens are independent, so larger batches quantize on the pool.
  const std::int64_t token_grain = std::max<std::int64_t>(1, 16384 / cols);
  if (format == kernels::ActivationFormat::Q8) {
    const std::int64_t nb = cols / kernels::q8_block;
    if (cols % kernels::q8_block != 0) throw std::invalid_argument("matmul: cols not a block multiple");
    scratch.q8.resize(static_cast<std::size_t>(nb * n_tokens));
    kernels::ActQ8* out = scratch.q8.data();
    pool.parallel_for(
        n_tokens,
        [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t t = begin; t < end; ++t)
            kernels::quantize_activation_q8(x.data() + t * cols, cols, out + t * nb);
        },
        token_grain);
    act.q8 = out;
    if (n_tokens == 1) {  // only the matrix-vector kernels read them
      gather_block_scales(out, nb, scratch);
      act.d_of_blocks = scratch.d_of_blocks.data();
      act.sum_of_blocks = scratch.sum_of_blocks.data();
    }
    if (n_tokens >= 8) {
      group_by_8_tokens(out, nb, n_tokens, scratch);
      act.d_by_8 = scratch.d_by_8.data();
      act.sum_by_8 = scratch.sum_by_8.data();
    }
  } else if (format == kernels::ActivationFormat::Q8K) {
    const std::int64_t nb = cols / kernels::q8k_block;
    if (cols % kernels::q8k_block != 0) throw std::invalid_argument("matmul: cols not a block multiple");
    scratch.q8k.resize(static_cast<std::size_t>(nb * n_tokens));
    kernels::ActQ8K* out = scratch.q8k.data();
    pool.parallel_for(
        n_tokens,
        [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t t = begin; t < end; ++t)
            kernels::quantize_activation_q8k(x.data() + t * cols, cols, out + t * nb);
        },
        token_grain);
    act.q8k = out;
  }
  return act;
}

}  // namespace

void matmul_group_with(KernelVariant variant, std::span<const MatmulOutput> outputs, std::span<const float> x,
                       std::int64_t n_tokens, ComputePool& pool) {
  if (outputs.empty()) return;
  const std::int64_t cols = outputs.front().w.cols;
  for (const MatmulOutput& o : outputs) {
    check_shapes(o.w, x, n_tokens, o.y);
    if (o.w.cols != cols) throw std::invalid_argument("matmul_group: the matrices' column counts differ");
  }
  if (!cpu_runs(variant))
    throw std::invalid_argument("matmul: this CPU cannot run the " +
                                std::string(kernel_variant_name(variant)) + " kernels");
  if (n_tokens == 0) return;

  // Each activation format the group needs is prepared once (the scratch keeps Q8 and Q8K apart).
  thread_local ActivationScratch scratch;
  std::vector<kernels::RowKernel> kernel(outputs.size());
  std::vector<kernels::Activations> act(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    kernel[i] = kernel_for(variant, outputs[i].w);
    const kernels::ActivationFormat format = kernels::activation_format(outputs[i].w.type);
    std::size_t same = 0;
    while (same < i && act[same].format != format) ++same;
    act[i] = same < i ? act[same] : prepare_activations(format, x, cols, n_tokens, pool, scratch);
  }

  // Rows are handed out in tiles of 16 so the kernels' row tiles and the pairs of 8-row groups of the X8
  // layouts (x8_group_run) stay whole; the tiles of all the matrices form one range, so one parallel pass
  // covers the group.
  constexpr std::int64_t tile = 16;
  std::vector<std::int64_t> first_tile(outputs.size() + 1, 0);
  for (std::size_t i = 0; i < outputs.size(); ++i)
    first_tile[i + 1] = first_tile[i] + (outputs[i].w.rows + tile - 1) / tile;
  const std::int64_t work_per_tile = tile * cols * n_tokens;
  const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, work_per_tile));
  pool.parallel_for(
      first_tile.back(),
      [&](std::int64_t begin, std::int64_t end) {
        for (std::size_t i = 0; i < outputs.size(); ++i) {
          const std::int64_t from = std::max(begin, first_tile[i]);
          const std::int64_t to = std::min(end, first_tile[i + 1]);
          if (from >= to) continue;
          const WeightMatrix& w = outputs[i].w;
          const std::int64_t base = first_tile[i];
          kernel[i](w, act[i], outputs[i].y.data(), (from - base) * tile,
                    std::min(w.rows, (to - base) * tile));
        }
      },
      grain);
}

void matmul_group(std::span<const MatmulOutput> outputs, std::span<const float> x, std::int64_t n_tokens,
                  ComputePool& pool) {
  matmul_group_with(best_variant(), outputs, x, n_tokens, pool);
}

void matmul_with(KernelVariant variant, const WeightMatrix& w, std::span<const float> x,
                 std::int64_t n_tokens, std::span<float> y, ComputePool& pool) {
  const MatmulOutput one{w, y};
  matmul_group_with(variant, std::span(&one, 1), x, n_tokens, pool);
}

namespace {

kernels::VectorOps vector_ops(KernelVariant variant) noexcept {
  return variant != KernelVariant::PORTABLE && cpu_runs(variant) ? kernels::avx2_vector_ops()
                                                                 : kernels::portable_vector_ops();
}

const kernels::VectorOps& best_vector_ops() noexcept {
  static const kernels::VectorOps ops = vector_ops(best_variant());
  return ops;
}

}  // namespace

void silu_mul_f32(float* gate, const float* up, std::int64_t n) noexcept {
  best_vector_ops().silu_mul(gate, up, n);
}

void attend_f32(const AttentionRows& rows, float* scratch) noexcept {
  best_vector_ops().attend(rows, scratch);
}

void attend_f32_with(KernelVariant variant, const AttentionRows& rows, float* scratch) noexcept {
  vector_ops(variant).attend(rows, scratch);
}

void silu_mul_f32_with(KernelVariant variant, float* gate, const float* up, std::int64_t n) noexcept {
  vector_ops(variant).silu_mul(gate, up, n);
}

void matmul(const WeightMatrix& w, std::span<const float> x, std::int64_t n_tokens, std::span<float> y,
            ComputePool& pool) {
  matmul_with(best_variant(), w, x, n_tokens, y, pool);
}

}  // namespace exo::inference
