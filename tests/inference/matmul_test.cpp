// Fast matmul kernels against the scalar oracle (matmul_reference), for every weight type and every
// kernel variant this CPU supports, on random data of awkward sizes.
//
// Tolerances are derived, not tuned: the fast paths quantize each activation block before the
// integer dot products, so y differs from the oracle by at most sum_i |w_i| * e_i, where e_i bounds
// the activation rounding error of element i:
// - 32-value (Q8) blocks: q = round(x / d), d = amax / 127, and the dot uses d rounded to f16
//   (relative error <= 2^-11): e <= d / 2 + 127 * d * 2^-11 < 0.57 * d.
// - 256-value (Q8K) blocks: q = round(x / d) with d = |extreme| / 128, the positive extreme clamped
//   from 128 to 127: e <= d.
// On top, float accumulation (F32 FMA, lane sums, per-block scales): 1e-4 * sum_i |w_i * x_i|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "inference/half_float.h"
#include "inference/matmul.h"
#include "inference/matmul_kernels.h"
#include "inference/quants.h"

namespace exo::inference {
namespace {

struct RandomMatrix {
  TensorType type;
  std::int64_t rows;
  std::int64_t cols;
  std::vector<std::uint8_t> bytes;
  WeightMatrix view() const {
    WeightMatrix w;
    w.type = type;
    w.data = bytes.data();
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = bytes.size() / static_cast<std::size_t>(rows);
    return w;
  }
};

void put_f16(std::uint8_t* at, float value) {
  const std::uint16_t bits = float_to_fp16(value);
  std::memcpy(at, &bits, sizeof bits);
}

// Byte offsets of the f16 scale fields inside one block of each quantized type.
std::vector<int> f16_fields(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q5_0:
      return {0};
    case TensorType::Q4_1:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
      return {0, 2};
    case TensorType::Q6_K:
      return {208};
    default:
      return {};
  }
}

// Random blocks: every level/scale byte uniformly random (so extreme levels such as -128 for Q8_0 or
// 63 for the 6-bit scales occur), the f16 scale fields set to moderate positive values.
RandomMatrix random_blocks(TensorType type, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
  const TensorTypeInfo& info = tensor_type_info(type);
  const std::size_t row_bytes = *checked_byte_size(type, static_cast<std::uint64_t>(cols));
  RandomMatrix m{type, rows, cols, std::vector<std::uint8_t>(row_bytes * static_cast<std::size_t>(rows))};
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16) {
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = normal(rng);
      quantize_row(type, row, std::span(m.bytes).subspan(static_cast<std::size_t>(r) * row_bytes, row_bytes));
    }
    return m;
  }
  for (auto& b : m.bytes) b = static_cast<std::uint8_t>(byte(rng));
  const auto fields = f16_fields(type);
  for (std::size_t at = 0; at < m.bytes.size(); at += info.bytes_per_block) {
    for (int field : fields) put_f16(m.bytes.data() + at + field, scale(rng));
  }
  return m;
}

// Realistic blocks: random normal weights through our quantizers.
RandomMatrix quantized_normal(TensorType type, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
  const std::size_t row_bytes = *checked_byte_size(type, static_cast<std::uint64_t>(cols));
  RandomMatrix m{type, rows, cols, std::vector<std::uint8_t>(row_bytes * static_cast<std::size_t>(rows))};
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    quantize_row(type, row, std::span(m.bytes).subspan(static_cast<std::size_t>(r) * row_bytes, row_bytes));
  }
  return m;
}

std::vector<float> random_activations(std::int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = normal(rng);
  // A few outliers, as real activations have: they set the block scales.
  for (std::size_t i = 0; i < x.size(); i += 97) x[i] *= 8.0f;
  return x;
}

// sum_c |W[r][c] * x[t][c]|: the scale of float summation-order differences in output (t, r).
double sum_abs_products(const WeightMatrix& w, const std::vector<float>& x, std::int64_t t, std::int64_t r) {
  std::vector<float> row(static_cast<std::size_t>(w.cols));
  dequantize_matrix_row(w, r, row);
  double sum = 1e-6;
  for (std::int64_t c = 0; c < w.cols; ++c)
    sum += std::fabs(static_cast<double>(row[static_cast<std::size_t>(c)]) *
                     x[static_cast<std::size_t>(t * w.cols + c)]);
  return sum;
}

// The bound of the file comment for output (t, r).
double tolerance(const WeightMatrix& w, const std::vector<float>& x, std::int64_t t, std::int64_t r) {
  std::vector<float> row(static_cast<std::size_t>(w.cols));
  dequantize_matrix_row(w, r, row);
  const float* xt = x.data() + t * w.cols;
  const auto format = kernels::activation_format(w.type);
  const std::int64_t block = format == kernels::ActivationFormat::Q8    ? 32
                             : format == kernels::ActivationFormat::Q8K ? 256
                                                                        : w.cols;
  double bound = 1e-6;
  for (std::int64_t b0 = 0; b0 < w.cols; b0 += block) {
    double amax = 0;
    double abs_w = 0;
    double abs_wx = 0;
    for (std::int64_t c = b0; c < b0 + block; ++c) {
      amax = std::max(amax, std::fabs(static_cast<double>(xt[c])));
      abs_w += std::fabs(row[static_cast<std::size_t>(c)]);
      abs_wx += std::fabs(static_cast<double>(row[static_cast<std::size_t>(c)]) * xt[c]);
    }
    if (format == kernels::ActivationFormat::Q8) bound += 0.57 * amax / 127.0 * abs_w;
    if (format == kernels::ActivationFormat::Q8K) bound += amax / 128.0 * abs_w;
    bound += 1e-4 * abs_wx;
  }
  return bound;
}

void expect_close_to_reference(KernelVariant variant, const RandomMatrix& m, std::int64_t n_tokens,
                               ComputePool& pool, std::mt19937& rng) {
  const WeightMatrix w = m.view();
  const auto x = random_activations(n_tokens * w.cols, rng);
  std::vector<float> expected(static_cast<std::size_t>(n_tokens * w.rows));
  // Canaries after the output catch writes past the end.
  constexpr std::size_t canaries = 64;
  std::vector<float> padded(expected.size() + canaries, -12345.0f);
  const std::span<float> actual(padded.data(), expected.size());
  std::fill(actual.begin(), actual.end(), std::nanf(""));
  matmul_reference(w, x, n_tokens, expected);
  matmul_with(variant, w, x, n_tokens, actual, pool);
  for (std::size_t i = expected.size(); i < padded.size(); ++i)
    ASSERT_EQ(padded[i], -12345.0f) << "write past the output, " << tensor_type_name(w.type) << " tokens "
                                    << n_tokens;
  for (std::int64_t t = 0; t < n_tokens; ++t) {
    for (std::int64_t r = 0; r < w.rows; ++r) {
      const auto i = static_cast<std::size_t>(t * w.rows + r);
      ASSERT_LE(std::fabs(static_cast<double>(actual[i]) - expected[i]), tolerance(w, x, t, r))
          << kernel_variant_name(variant) << " " << tensor_type_name(w.type) << " " << w.rows << "x" << w.cols
          << " tokens " << n_tokens << " at token " << t << " row " << r << ": " << actual[i] << " vs "
          << expected[i];
    }
  }
}

const TensorType all_types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

std::vector<std::int64_t> awkward_cols(TensorType type) {
  const auto block = tensor_type_info(type).block_size;
  if (block == 1) return {1, 7, 8, 40, 263};
  if (block == 32) return {32, 96, 288, 736};
  return {256, 768};
}

class MatmulVariantTest : public ::testing::TestWithParam<KernelVariant> {};

TEST_P(MatmulVariantTest, EveryTypeMatchesTheReferenceOnAwkwardShapes) {
  const KernelVariant variant = GetParam();
  ComputePool pool(2);
  std::mt19937 rng(1234);
  for (TensorType type : all_types) {
    for (std::int64_t cols : awkward_cols(type)) {
      for (std::int64_t rows : {1, 3, 7, 37}) {
        const RandomMatrix m = random_blocks(type, rows, cols, rng);
        for (std::int64_t n_tokens : {1, 2, 3, 4, 5, 7, 8, 12, 13, 17}) {
          expect_close_to_reference(variant, m, n_tokens, pool, rng);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST_P(MatmulVariantTest, QuantizedNormalWeightsMatchTheReference) {
  const KernelVariant variant = GetParam();
  ComputePool pool(3);
  std::mt19937 rng(99);
  for (TensorType type : all_types) {
    const std::int64_t cols = tensor_type_info(type).block_size == 256 ? 512 : 160;
    const RandomMatrix m = quantized_normal(type, 67, cols, rng);
    for (std::int64_t n_tokens : {1, 4, 9}) {
      expect_close_to_reference(variant, m, n_tokens, pool, rng);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_P(MatmulVariantTest, AgreesWithThePortableKernelsToRounding) {
  // Every variant computes the same integer dot products, so only float summation order differs.
  const KernelVariant variant = GetParam();
  ComputePool pool(2);
  std::mt19937 rng(7);
  for (TensorType type : all_types) {
    const std::int64_t cols = tensor_type_info(type).block_size == 256 ? 768 : 192;
    const RandomMatrix m = random_blocks(type, 29, cols, rng);
    const WeightMatrix w = m.view();
    for (std::int64_t n_tokens : {1, 6, 17}) {
      const auto x = random_activations(n_tokens * cols, rng);
      std::vector<float> portable(static_cast<std::size_t>(n_tokens * w.rows));
      std::vector<float> fast(portable.size());
      matmul_with(KernelVariant::PORTABLE, w, x, n_tokens, portable, pool);
      matmul_with(variant, w, x, n_tokens, fast, pool);
      for (std::size_t i = 0; i < fast.size(); ++i) {
        const auto t = static_cast<std::int64_t>(i) / w.rows;
        const auto r = static_cast<std::int64_t>(i) % w.rows;
        ASSERT_NEAR(fast[i], portable[i], 2e-5 * sum_abs_products(w, x, t, r))
            << tensor_type_name(type) << " output " << i;
      }
    }
  }
}

TEST_P(MatmulVariantTest, ExtremeLevelsAndActivationsDoNotOverflowTheIntegerSums) {
  // Every level at its largest magnitude (Q8_0: -128; 4- and 5-bit: all bits set) against
  // activations at the largest quantized magnitude of the matching sign, for one token (8 blocks
  // per vector) and batches (8 tokens per vector): the integer partial sums are at their largest,
  // and the exact answer is known.
  const KernelVariant variant = GetParam();
  ComputePool pool(2);
  for (TensorType type :
       {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1}) {
    const TensorTypeInfo& info = tensor_type_info(type);
    const std::int64_t rows = 8;
    const std::int64_t cols = 288;  // 9 blocks: 8 in the lanes of one vector, then one more
    const std::size_t row_bytes = *checked_byte_size(type, static_cast<std::uint64_t>(cols));
    const std::uint8_t level_byte = type == TensorType::Q8_0 ? 0x80 : 0xFF;
    RandomMatrix m{type, rows, cols, std::vector<std::uint8_t>(row_bytes * rows, level_byte)};
    for (std::size_t at = 0; at < m.bytes.size(); at += info.bytes_per_block) {
      const auto fields = f16_fields(type);
      for (std::size_t f = 0; f < fields.size(); ++f)
        put_f16(m.bytes.data() + at + fields[f], f == 0 ? 1.0f : 0.0f);
    }
    const float x_value = type == TensorType::Q8_0 ? -1.0f : 1.0f;
    std::vector<float> row(static_cast<std::size_t>(cols));
    dequantize_matrix_row(m.view(), 0, row);
    const double exact = static_cast<double>(row[0]) * x_value * static_cast<double>(cols);
    for (std::int64_t n_tokens : {1, 8, 16, 19}) {
      const std::vector<float> x(static_cast<std::size_t>(n_tokens * cols), x_value);
      std::vector<float> y(static_cast<std::size_t>(n_tokens * rows));
      matmul_with(variant, m.view(), x, n_tokens, y, pool);
      if (can_pack_x8(m.view())) {  // the packed layouts sum their products in another order
        std::vector<std::uint8_t> packed_bytes(m.bytes.size());
        std::vector<float> packed_y(y.size());
        matmul_with(variant, pack_x8(m.view(), packed_bytes), x, n_tokens, packed_y, pool);
        for (std::size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(packed_y[i], exact, 1e-3 * std::fabs(exact)) << "packed, tokens " << n_tokens;
      }
      for (std::size_t i = 0; i < y.size(); ++i)
        // The only error: the activation scale 1/127 rounded to f16 (relative 2^-11).
        ASSERT_NEAR(y[i], exact, 1e-3 * std::fabs(exact)) << tensor_type_name(type) << " tokens " << n_tokens;
    }
  }
}

TEST_P(MatmulVariantTest, SiluMulMatchesDoublePrecisionIncludingExtremes) {
  const KernelVariant variant = GetParam();
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  // Both ends of the exponential's clamped range and beyond, zero, and a tail shorter than a vector.
  const std::vector<float> extremes{-200.0f, -88.0f, -87.0f, -20.0f, -1e-20f, 0.0f,   1e-20f,
                                    0.5f,    20.0f,  87.0f,  88.0f,  89.0f,   200.0f, -0.75f};
  for (std::int64_t n : {0, 1, 7, 8, 9, 14, 17, 64, 131}) {
    std::vector<float> gate(static_cast<std::size_t>(n));
    std::vector<float> up(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto at = static_cast<std::size_t>(i);
      gate[at] = n == 14 ? extremes[at] : normal(rng);
      up[at] = normal(rng);
    }
    std::vector<float> out = gate;
    silu_mul_f32_with(variant, out.data(), up.data(), n);
    for (std::size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      const double expected = g / (1.0 + std::exp(-g)) * up[i];
      // A few ulp of the result, or a value far below any float that matters (silu(-200) ~ 3e-85).
      EXPECT_NEAR(out[i], expected, 1e-6 * std::fabs(expected) + 1e-30) << "n " << n << " gate " << g;
    }
  }
}

TEST_P(MatmulVariantTest, AttentionMatchesDoublePrecisionOnAwkwardShapes) {
  // Head sizes below, at and above the 64 values kept in registers, and not multiples of 8; context
  // lengths around the 8 keys scored and the 16 positions weighted at a time; rows of one call with
  // different lengths (causal positions of a batch); rows interleaved with other heads; F32 and F16
  // caches.
  const KernelVariant variant = GetParam();
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (TensorType kv_type : {TensorType::F32, TensorType::F16}) {
    for (std::int64_t head_dim : {8, 12, 64, 72, 128}) {
      for (std::int64_t longest : {1, 7, 8, 9, 16, 17, 33, 100}) {
        for (float scale : {0.125f, 40.0f}) {  // 40: scores in the thousands, softmax nearly one-hot
          const std::int64_t stride = 3 * head_dim + 5;
          // The cache in its type, and as floats (the F16 values exactly) for the reference.
          std::vector<float> keys(static_cast<std::size_t>(longest * stride));
          std::vector<float> values(keys.size());
          std::vector<std::uint16_t> keys16(keys.size());
          std::vector<std::uint16_t> values16(keys.size());
          for (std::size_t i = 0; i < keys.size(); ++i) {
            keys16[i] = float_to_fp16(normal(rng));
            values16[i] = float_to_fp16(normal(rng));
            keys[i] = kv_type == TensorType::F16 ? fp16_to_float(keys16[i]) : normal(rng);
            values[i] = kv_type == TensorType::F16 ? fp16_to_float(values16[i]) : normal(rng);
          }
          const bool half = kv_type == TensorType::F16;
          // Rows of lengths longest, longest - 1, ..., 1 (at most 6 rows), two of them sharing a length.
          std::vector<std::int64_t> visible;
          for (std::int64_t v = longest; v >= 1 && visible.size() < 5; --v) visible.push_back(v);
          visible.push_back(longest);
          std::vector<std::vector<float>> queries(visible.size(), std::vector<float>(head_dim));
          std::vector<std::vector<float>> outs(visible.size(), std::vector<float>(head_dim, -1.0f));
          std::vector<const float*> q_rows;
          std::vector<float*> out_rows;
          for (std::size_t r = 0; r < visible.size(); ++r) {
            for (auto& v : queries[r]) v = normal(rng);
            q_rows.push_back(queries[r].data());
            out_rows.push_back(outs[r].data());
          }
          // Each cache row holds 3 heads and 5 more floats; the rows read the second head.
          const AttentionRows rows{.kv_type = kv_type,
                                   .keys = half ? static_cast<const void*>(keys16.data() + head_dim)
                                                : static_cast<const void*>(keys.data() + head_dim),
                                   .values = half ? static_cast<const void*>(values16.data() + head_dim)
                                                  : static_cast<const void*>(values.data() + head_dim),
                                   .stride = stride,
                                   .head_dim = head_dim,
                                   .scale = scale,
                                   .q = q_rows,
                                   .visible = visible,
                                   .out = out_rows};
          std::vector<float> scratch(visible.size() * static_cast<std::size_t>(longest));
          attend_f32_with(variant, rows, scratch.data());
          for (std::size_t r = 0; r < visible.size(); ++r) {
            std::vector<double> weights(static_cast<std::size_t>(visible[r]));
            double best = -1e300;
            for (std::int64_t p = 0; p < visible[r]; ++p) {
              double dot = 0;
              for (std::int64_t d = 0; d < head_dim; ++d)
                dot += static_cast<double>(queries[r][static_cast<std::size_t>(d)]) *
                       keys[static_cast<std::size_t>(p * stride + head_dim + d)];
              weights[static_cast<std::size_t>(p)] = dot * scale;
              best = std::max(best, dot * scale);
            }
            double total = 0;
            for (double& w : weights) total += (w = std::exp(w - best));
            for (std::int64_t d = 0; d < head_dim; ++d) {
              double expected = 0;
              for (std::int64_t p = 0; p < visible[r]; ++p)
                expected += weights[static_cast<std::size_t>(p)] / total *
                            values[static_cast<std::size_t>(p * stride + head_dim + d)];
              // Float scores of magnitude up to ~40 * 30 carry an absolute error of ~1e-4 into the
              // exponent; the values are N(0, 1).
              const double tolerance = scale > 1.0f ? 2e-3 : 2e-5;
              ASSERT_NEAR(outs[r][static_cast<std::size_t>(d)], expected, tolerance)
                  << tensor_type_name(kv_type) << " head " << head_dim << " row " << r << " visible "
                  << visible[r] << " scale " << scale << " value " << d;
            }
          }
        }
      }
    }
  }
}

TEST_P(MatmulVariantTest, AGroupEqualsSeparateProductsBitForBit) {
  // Mixed activation formats (Q8, Q8K, F32) and row counts that are not multiples of the row tile.
  const KernelVariant variant = GetParam();
  ComputePool pool(2);
  std::mt19937 rng(21);
  const std::int64_t cols = 512;
  const std::vector<RandomMatrix> matrices{
      quantized_normal(TensorType::Q4_K, 37, cols, rng), quantized_normal(TensorType::Q8_0, 6, cols, rng),
      quantized_normal(TensorType::Q6_K, 5, cols, rng), quantized_normal(TensorType::F16, 3, cols, rng),
      quantized_normal(TensorType::Q4_0, 41, cols, rng)};
  for (std::int64_t n_tokens : {1, 9}) {
    const auto x = random_activations(n_tokens * cols, rng);
    std::vector<std::vector<float>> grouped;
    std::vector<MatmulOutput> outputs;
    grouped.reserve(matrices.size());
    for (const RandomMatrix& m : matrices)
      grouped.emplace_back(static_cast<std::size_t>(n_tokens * m.rows), -1.0f);
    for (std::size_t i = 0; i < matrices.size(); ++i) outputs.push_back({matrices[i].view(), grouped[i]});
    matmul_group_with(variant, outputs, x, n_tokens, pool);
    for (std::size_t i = 0; i < matrices.size(); ++i) {
      std::vector<float> alone(grouped[i].size());
      matmul_with(variant, matrices[i].view(), x, n_tokens, alone, pool);
      EXPECT_EQ(grouped[i], alone) << tensor_type_name(matrices[i].type) << " tokens " << n_tokens;
    }
  }
  std::vector<float> y1(6);
  std::vector<float> y2(6);
  const RandomMatrix narrow = quantized_normal(TensorType::Q8_0, 6, 256, rng);
  const auto x = random_activations(cols, rng);
  const std::vector<MatmulOutput> mismatched{{matrices[1].view(), y1}, {narrow.view(), y2}};
  EXPECT_THROW(matmul_group_with(variant, mismatched, x, 1, pool), std::invalid_argument);
}

// A 16 x 512 matrix of `type` whose every byte is 0xFF, then `prepare` sets each super-block's
// fields; with activations of 1.0 (which quantize to -128) every output must be `exact`, in the row
// layout and packed, for 1 token and tiles of 4 and 5.
template <class Prepare>
void expect_exact_extremes(KernelVariant variant, TensorType type, Prepare prepare, double exact) {
  ComputePool pool(2);
  const std::int64_t rows = 16;
  const std::int64_t cols = 512;
  const std::size_t row_bytes = *checked_byte_size(type, static_cast<std::uint64_t>(cols));
  RandomMatrix m{type, rows, cols, std::vector<std::uint8_t>(row_bytes * rows, 0xFF)};
  const std::size_t block_bytes = tensor_type_info(type).bytes_per_block;
  for (std::size_t at = 0; at < m.bytes.size(); at += block_bytes) prepare(m.bytes.data() + at);
  std::vector<std::uint8_t> packed_bytes(m.bytes.size());
  const WeightMatrix packed = pack_x8(m.view(), packed_bytes);
  for (std::int64_t n_tokens : {1, 4, 5}) {
    const std::vector<float> x(static_cast<std::size_t>(n_tokens * cols), 1.0f);
    for (const WeightMatrix& w : {m.view(), packed}) {
      std::vector<float> y(static_cast<std::size_t>(n_tokens * rows));
      matmul_with(variant, w, x, n_tokens, y, pool);
      for (std::size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], exact, 1e-6 * std::fabs(exact))
            << tensor_type_name(type) << " layout " << static_cast<int>(w.layout) << " tokens " << n_tokens;
    }
  }
}

TEST_P(MatmulVariantTest, KQuantExtremesDoNotOverflowThePackedSums) {
  const auto unit_d_and_dmin = [](std::uint8_t* block) {
    put_f16(block, 1.0f);
    put_f16(block + 2, 1.0f);
  };
  // Q4_K with every level 15, every scale and min 63 (all bits set), d = dmin = 1: the packed
  // kernel's 16-bit sums are at their most negative (8 steps of 2 * 15 * -128).
  expect_exact_extremes(GetParam(), TensorType::Q4_K, unit_d_and_dmin, (63.0 * 15.0 - 63.0) * 512);
  // Q5_K likewise with every level 31: each half's 16-bit sums of 4 products (4 * 2 * 31 * -128) are
  // at their extreme; sums of all 8 would overflow.
  expect_exact_extremes(GetParam(), TensorType::Q5_K, unit_d_and_dmin, (63.0 * 31.0 - 63.0) * 512);
  // Q6_K with every level 63 and every scale -128, d = 1: the 16-bit sums of two products
  // (2 * 2 * 63 * -128) and the 32-bit sums with the zero point are at their extremes.
  expect_exact_extremes(
      GetParam(), TensorType::Q6_K,
      [](std::uint8_t* block) {
        std::fill(block + 192, block + 208, std::uint8_t{0x80});
        put_f16(block + 208, 1.0f);
      },
      -128.0 * (63 - 32) * 512);
}

TEST_P(MatmulVariantTest, PackedMatricesReadBackExactlyAndMultiplyLikeTheRowLayout) {
  const KernelVariant variant = GetParam();
  ComputePool pool(2);
  std::mt19937 rng(31);
  for (TensorType type :
       {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    for (std::int64_t cols : awkward_cols(type)) {
      for (std::int64_t rows : {8, 16, 40}) {
        const RandomMatrix m = random_blocks(type, rows, cols, rng);
        ASSERT_TRUE(can_pack_x8(m.view()));
        std::vector<std::uint8_t> packed_bytes(m.bytes.size());
        const WeightMatrix packed = pack_x8(m.view(), packed_bytes);
        const WeightLayout expected_layout = type == TensorType::Q4_0   ? WeightLayout::Q4_0_X8
                                             : type == TensorType::Q8_0 ? WeightLayout::Q8_0_X8
                                             : type == TensorType::Q4_K ? WeightLayout::Q4_K_X8
                                             : type == TensorType::Q5_K ? WeightLayout::Q5_K_X8
                                                                        : WeightLayout::Q6_K_X8;
        ASSERT_EQ(packed.layout, expected_layout);
        std::vector<std::uint8_t> packed_on_pool(m.bytes.size());
        pack_x8(m.view(), packed_on_pool, &pool);
        ASSERT_EQ(packed_on_pool, packed_bytes) << "packing on the pool writes the same bytes";
        std::vector<float> original(static_cast<std::size_t>(cols));
        std::vector<float> unpacked(original.size());
        for (std::int64_t r = 0; r < rows; ++r) {
          dequantize_matrix_row(m.view(), r, original);
          dequantize_matrix_row(packed, r, unpacked);
          ASSERT_EQ(original, unpacked) << "row " << r << " of " << rows << "x" << cols;
        }
        for (std::int64_t n_tokens : {1, 2, 3, 4, 5, 8, 9, 17}) {
          const auto x = random_activations(n_tokens * cols, rng);
          std::vector<float> from_rows(static_cast<std::size_t>(n_tokens * rows));
          std::vector<float> from_packed(from_rows.size());
          matmul_with(variant, m.view(), x, n_tokens, from_rows, pool);
          matmul_with(variant, packed, x, n_tokens, from_packed, pool);
          for (std::size_t i = 0; i < from_rows.size(); ++i) {
            const auto t = static_cast<std::int64_t>(i) / rows;
            const auto r = static_cast<std::int64_t>(i) % rows;
            // Same integer dot products; only the float summation order differs.
            ASSERT_NEAR(from_packed[i], from_rows[i], 2e-5 * sum_abs_products(m.view(), x, t, r))
                << tensor_type_name(type) << " " << rows << "x" << cols << " tokens " << n_tokens
                << " output " << i;
          }
        }
      }
    }
  }
}

// The x86 SIMD variants share the 8-row kernels' float arithmetic and differ only in how they multiply
// bytes (vpmaddubsw, vpdpbusd or AMX tiles), so on packed matrices they agree with AVX2 bit for bit:
// any slip in a VNNI policy's integers (a wrong bias, scale form or saturation) or in the AMX tiles
// (a wrong operand layout, stride or edge tile) shows here, not only in a tolerance. On CPUs without
// VNNI or AMX the emulated variants run those kernels. 24 rows are a pair of 8-row groups and a
// single one; from 16 tokens on, the AMX kernels take whole tiles of 16 (35: a pair and 3 left over;
// 48: a pair and a single tile).
TEST(Matmul, VnniAndAmxKernelsAgreeWithAvx2BitForBit) {
  std::vector<KernelVariant> others;
  for (const KernelVariant v : supported_variants())
    if (v != KernelVariant::PORTABLE && v != KernelVariant::AVX2) others.push_back(v);
  if (others.empty())
    GTEST_SKIP() << "this CPU has no AVX2, so it runs no VNNI or AMX variant, not even the emulated ones";
  ComputePool pool(2);
  std::mt19937 rng(37);
  for (TensorType type :
       {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    for (std::int64_t cols : awkward_cols(type)) {
      // Random blocks, and blocks at the extremes (every level and scale byte 0xFF or 0x80) where
      // 16-bit sums and biases are tightest.
      for (const bool extreme : {false, true}) {
        RandomMatrix m = random_blocks(type, 24, cols, rng);
        if (extreme) {
          const std::uint8_t level_byte = type == TensorType::Q8_0 ? 0x80 : 0xFF;
          const auto& info = tensor_type_info(type);
          for (std::size_t at = 0; at < m.bytes.size(); at += info.bytes_per_block)
            std::fill(m.bytes.begin() + static_cast<std::ptrdiff_t>(at) + (type == TensorType::Q6_K ? 0 : 4),
                      m.bytes.begin() + static_cast<std::ptrdiff_t>(at + info.bytes_per_block) -
                          (type == TensorType::Q6_K ? 2 : 0),
                      level_byte);
        }
        std::vector<std::uint8_t> packed_bytes(m.bytes.size());
        const WeightMatrix packed = pack_x8(m.view(), packed_bytes);
        for (std::int64_t n_tokens : {1, 3, 4, 9, 16, 35, 48}) {
          const auto x = random_activations(n_tokens * cols, rng);
          std::vector<float> expected(static_cast<std::size_t>(n_tokens * 24));
          matmul_with(KernelVariant::AVX2, packed, x, n_tokens, expected, pool);
          for (const KernelVariant variant : others) {
            std::vector<float> actual(expected.size());
            matmul_with(variant, packed, x, n_tokens, actual, pool);
            ASSERT_EQ(actual, expected)
                << kernel_variant_name(variant) << " " << tensor_type_name(type) << " cols " << cols
                << (extreme ? " extreme" : "") << " tokens " << n_tokens;
          }
        }
      }
    }
  }
}

TEST(Matmul, PackingAppliesOnlyToQ4_0Q8_0Q4_KQ5_KAndQ6_KMatricesOfWholeRowGroups) {
  std::mt19937 rng(3);
  const RandomMatrix seven_rows = random_blocks(TensorType::Q4_0, 7, 64, rng);
  const RandomMatrix seven_q8_rows = random_blocks(TensorType::Q8_0, 7, 64, rng);
  const RandomMatrix seven_k_rows = random_blocks(TensorType::Q4_K, 7, 256, rng);
  const RandomMatrix q4_1 = random_blocks(TensorType::Q4_1, 8, 64, rng);
  const RandomMatrix seven_q5_k_rows = random_blocks(TensorType::Q5_K, 7, 256, rng);
  const RandomMatrix seven_q6_k_rows = random_blocks(TensorType::Q6_K, 7, 256, rng);
  EXPECT_FALSE(can_pack_x8(seven_rows.view()));
  EXPECT_FALSE(can_pack_x8(seven_q8_rows.view()));
  EXPECT_FALSE(can_pack_x8(seven_k_rows.view()));
  EXPECT_FALSE(can_pack_x8(q4_1.view()));
  EXPECT_FALSE(can_pack_x8(seven_q5_k_rows.view()));
  EXPECT_FALSE(can_pack_x8(seven_q6_k_rows.view()));
  for (TensorType type :
       {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    const RandomMatrix ok = random_blocks(type, 8, 256, rng);
    std::vector<std::uint8_t> out(ok.bytes.size());
    EXPECT_THROW(pack_x8(seven_rows.view(), out), std::invalid_argument);
    std::vector<std::uint8_t> short_out(ok.bytes.size() - 1);
    EXPECT_THROW(pack_x8(ok.view(), short_out), std::invalid_argument);
    const WeightMatrix packed = pack_x8(ok.view(), out);
    EXPECT_FALSE(can_pack_x8(packed));  // already packed
  }
}

TEST_P(MatmulVariantTest, ResultsDoNotDependOnTheThreadCount) {
  const KernelVariant variant = GetParam();
  std::mt19937 rng(5);
  ComputePool one(1);
  ComputePool three(3);
  for (TensorType type : {TensorType::Q8_0, TensorType::Q4_K, TensorType::F16}) {
    const std::int64_t cols = 512;
    const RandomMatrix m = quantized_normal(type, 301, cols, rng);
    const auto x = random_activations(5 * cols, rng);
    std::vector<float> a(5 * 301);
    std::vector<float> b(a.size());
    matmul_with(variant, m.view(), x, 5, a, one);
    matmul_with(variant, m.view(), x, 5, b, three);
    EXPECT_EQ(a, b) << tensor_type_name(type);
  }
}

INSTANTIATE_TEST_SUITE_P(SupportedByThisCpu, MatmulVariantTest, ::testing::ValuesIn(supported_variants()),
                         [](const auto& param_info) {
                           std::string name(kernel_variant_name(param_info.param));
                           std::replace(name.begin(), name.end(), '-', '_');  // gtest names: [A-Za-z0-9_]
                           return name;
                         });

TEST(Matmul, DefaultPathIsTheBestSupportedVariant) {
  const auto variants = supported_variants();
  ASSERT_FALSE(variants.empty());
  EXPECT_EQ(variants.front(), KernelVariant::PORTABLE);
  // The fastest variant that is not an emulation and was not set aside by the self-check.
  const auto set_aside = variants_set_aside();
  KernelVariant expected = KernelVariant::PORTABLE;
  for (const KernelVariant v : variants) {
    if (is_emulation(v)) continue;
    if (std::find(set_aside.begin(), set_aside.end(), v) == set_aside.end()) expected = v;
  }
  EXPECT_EQ(best_variant(), expected);
  EXPECT_NE(best_variant(), KernelVariant::VNNI_EMULATED) << "the emulation is for tests only";
  EXPECT_NE(best_variant(), KernelVariant::AMX_EMULATED) << "the emulation is for tests only";
  ComputePool pool(2);
  std::mt19937 rng(11);
  const RandomMatrix m = quantized_normal(TensorType::Q4_0, 33, 128, rng);
  const auto x = random_activations(3 * 128, rng);
  std::vector<float> a(3 * 33);
  std::vector<float> b(a.size());
  matmul(m.view(), x, 3, a, pool);
  matmul_with(best_variant(), m.view(), x, 3, b, pool);
  EXPECT_EQ(a, b);
}

// The start-up self-check (agrees_with_avx2) passes every x86 SIMD variant this CPU runs, emulated
// ones included, and fails a variant whose results differ in the last bits (the portable kernels sum
// in another order) or that cannot run here.
TEST(Matmul, TheSelfCheckPassesTheSimdVariantsAndFailsOthers) {
  const auto supported = supported_variants();
  if (std::find(supported.begin(), supported.end(), KernelVariant::AVX2) == supported.end())
    GTEST_SKIP() << "this CPU has no AVX2, the self-check's reference";
  for (const KernelVariant v : kernel_variants_slowest_first) {
    const bool runs = std::find(supported.begin(), supported.end(), v) != supported.end();
    EXPECT_EQ(agrees_with_avx2(v), runs && v != KernelVariant::PORTABLE) << kernel_variant_name(v);
  }
  EXPECT_TRUE(variants_set_aside().empty()) << "a variant this CPU runs disagrees with AVX2";
}

TEST(Matmul, KernelVariantsAreNamedAndTheChoiceIsFixedOnce) {
  const auto& all = kernel_variants_slowest_first;
  for (const KernelVariant v : all) EXPECT_EQ(parse_kernel_variant(kernel_variant_name(v)), v);
  EXPECT_FALSE(parse_kernel_variant("fastest"));
  EXPECT_FALSE(parse_kernel_variant("AVX2"));
  // This process runs the default; choosing it again is allowed, another one no longer.
  const KernelVariant best = best_variant();
  EXPECT_NO_THROW(select_kernel_variant(best));
  EXPECT_EQ(best_variant(), best);
  const auto supported = supported_variants();
  for (const KernelVariant v : all) {
    if (v == best) continue;
    if (std::find(supported.begin(), supported.end(), v) == supported.end()) {
      EXPECT_THROW(select_kernel_variant(v), std::invalid_argument) << kernel_variant_name(v);
    } else {
      EXPECT_THROW(select_kernel_variant(v), std::logic_error) << kernel_variant_name(v);
    }
  }
  EXPECT_EQ(best_variant(), best);
}

TEST(Matmul, RejectsMismatchedShapesAndUnsupportedTypes) {
  ComputePool pool(1);
  std::vector<std::uint8_t> bytes(34 * 4);
  WeightMatrix w{TensorType::Q8_0, bytes.data(), 2, 64, 68};
  std::vector<float> x(64);
  std::vector<float> y(2);
  EXPECT_NO_THROW(matmul(w, x, 1, y, pool));
  std::vector<float> short_y(1);
  EXPECT_THROW(matmul(w, x, 1, short_y, pool), std::invalid_argument);
  EXPECT_THROW(matmul(w, x, 2, y, pool), std::invalid_argument);
  WeightMatrix odd = w;
  odd.type = TensorType::Q2_K;
  odd.cols = 256;
  odd.row_bytes = 84;
  std::vector<float> x256(256);
  EXPECT_THROW(matmul(odd, x256, 1, y, pool), TensorTypeError);
  EXPECT_FALSE(matmul_supported(TensorType::Q2_K));
  for (TensorType type : all_types) EXPECT_TRUE(matmul_supported(type)) << tensor_type_name(type);
}

TEST(Matmul, ZeroTokensWritesNothing) {
  ComputePool pool(2);
  std::vector<std::uint8_t> bytes(4 * 8);
  WeightMatrix w{TensorType::F32, bytes.data(), 4, 8, 32};
  std::vector<float> none;
  EXPECT_NO_THROW(matmul(w, none, 0, none, pool));
}

TEST(ActivationQuantization, Q8BlocksRoundTripWithinHalfAStep) {
  std::mt19937 rng(3);
  const auto x = random_activations(32 * 40, rng);
  std::vector<kernels::ActQ8> blocks(40);
  kernels::quantize_activation_q8(x.data(), static_cast<std::int64_t>(x.size()), blocks.data());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    float amax = 0;
    int sum = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    for (int j = 0; j < 32; ++j) {
      sum += blocks[b].qs[j];
      EXPECT_LE(std::fabs(blocks[b].d * blocks[b].qs[j] - x[b * 32 + j]), 0.57f * amax / 127.0f);
    }
    EXPECT_EQ(blocks[b].sum, sum);
    EXPECT_EQ(blocks[b].d, fp16_to_float(float_to_fp16(blocks[b].d))) << "scale must be an f16 value";
  }
}

TEST(ActivationQuantization, Q8RoundsHalfAwayFromZeroAsGgml) {
  // amax 127 makes the scale exactly 1, so every value is its own scaled value: ties included.
  std::vector<float> x(32, 0.0f);
  const float values[] = {127.0f, -126.5f, 2.5f, -2.5f, 0.5f, -0.5f, 0.49999997f, -1.5f, 3.4999998f, 126.5f};
  std::copy(std::begin(values), std::end(values), x.begin());
  kernels::ActQ8 block{};
  kernels::quantize_activation_q8(x.data(), 32, &block);
  ASSERT_EQ(block.d, 1.0f);
  for (std::size_t j = 0; j < std::size(values); ++j)
    EXPECT_EQ(block.qs[j], static_cast<std::int8_t>(std::round(values[j]))) << values[j];
}

TEST(ActivationQuantization, Q8KBlocksRoundTripAndCarryGroupSums) {
  std::mt19937 rng(4);
  auto x = random_activations(256 * 3, rng);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block
  std::vector<kernels::ActQ8K> blocks(3);
  kernels::quantize_activation_q8k(x.data(), static_cast<std::int64_t>(x.size()), blocks.data());
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[b * 256 + j]));
    for (int j = 0; j < 256; ++j)
      EXPECT_LE(std::fabs(blocks[b].d * blocks[b].qs[j] - x[b * 256 + j]), amax / 128.0f * 1.0001f);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += blocks[b].qs[16 * g + j];
      EXPECT_EQ(blocks[b].bsums[g], sum);
    }
  }
  EXPECT_EQ(blocks[1].d, 0.0f);
}

TEST(ActivationQuantization, Q8KRoundsHalfToEvenAsGgmlsNearbyint) {
  // An extreme of -128 makes the scale exactly 1 (inverse = -128 / -128), so every value is its own
  // scaled value: ties go to the even neighbour, and 127.5 (which rounds to 128) is clamped to 127.
  std::vector<float> x(256, 0.0f);
  const float values[] = {-128.0f, 2.5f,        -2.5f,  3.5f,    0.5f,   -0.5f, 1.5f,
                          -1.5f,   0.49999997f, 126.5f, -127.5f, 127.5f, 5.25f, -0.0f};
  std::copy(std::begin(values), std::end(values), x.begin());
  kernels::ActQ8K block{};
  kernels::quantize_activation_q8k(x.data(), 256, &block);
  ASSERT_EQ(block.d, 1.0f);
  for (std::size_t j = 0; j < std::size(values); ++j)
    EXPECT_EQ(block.qs[j], static_cast<std::int8_t>(std::min(127.0f, std::nearbyint(values[j]))))
        << values[j];
  EXPECT_EQ(block.qs[1], 2);
  EXPECT_EQ(block.qs[3], 4);
  EXPECT_EQ(block.qs[11], 127);
}

}  // namespace
}  // namespace exo::inference
