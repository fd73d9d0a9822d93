// Tensor type catalogue and the reference (de)quantizers: documented block geometry, hand-built
// blocks decoded per the format description, quantize -> dequantize error bounds per type, and
// argument validation.
#include "inference/quants.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "inference/half_float.h"
#include "inference/tensor_types.h"

namespace exo::inference {
namespace {

using ::testing::HasSubstr;

void put_half(std::vector<std::uint8_t>& block, std::size_t at, float value) {
  const std::uint16_t bits = float_to_fp16(value);
  std::memcpy(block.data() + at, &bits, 2);
}

std::vector<float> dequantize(TensorType type, const std::vector<std::uint8_t>& blocks, std::size_t count) {
  std::vector<float> values(count);
  dequantize_row(type, blocks, values);
  return values;
}

// ---------------------------------------------------------------- catalogue

TEST(TensorTypes, BlockGeometryMatchesTheFormats) {
  struct Expected {
    TensorType type;
    std::uint32_t block_size;
    std::uint32_t bytes;
  };
  const std::uint32_t half = 2;
  const Expected expected[] = {
      {TensorType::F32, 1, 4},
      {TensorType::F16, 1, half},
      {TensorType::BF16, 1, half},
      {TensorType::Q8_0, 32, half + 32},
      {TensorType::Q4_0, 32, half + 16},
      {TensorType::Q4_1, 32, 2 * half + 16},
      {TensorType::Q5_0, 32, half + 4 + 16},
      {TensorType::Q5_1, 32, 2 * half + 4 + 16},
      {TensorType::Q4_K, 256, 2 * half + 12 + 128},
      {TensorType::Q5_K, 256, 2 * half + 12 + 32 + 128},
      {TensorType::Q6_K, 256, 128 + 64 + 16 + half},
      {TensorType::Q2_K, 256, 16 + 64 + 2 * half},
      {TensorType::Q3_K, 256, 32 + 64 + 12 + half},
      {TensorType::Q8_K, 256, 4 + 256 + 32},
  };
  for (const auto& e : expected) {
    const TensorTypeInfo& info = tensor_type_info(e.type);
    EXPECT_EQ(info.block_size, e.block_size) << info.name;
    EXPECT_EQ(info.bytes_per_block, e.bytes) << info.name;
  }
  EXPECT_EQ(tensor_type_name(TensorType::Q4_K), "q4_K");
  EXPECT_EQ(static_cast<std::uint32_t>(TensorType::BF16), 30u);
  EXPECT_EQ(find_tensor_type(4), nullptr);  // ids 4 and 5 were removed from ggml
  EXPECT_EQ(find_tensor_type(1000), nullptr);
}

TEST(TensorTypes, CatalogueFlagsAgreeWithTheImplementedCodecs) {
  int dequantizable = 0;
  for (const auto& info : all_tensor_types()) {
    EXPECT_EQ(find_tensor_type(static_cast<std::uint32_t>(info.type)), &info);
    EXPECT_EQ(can_dequantize(info.type), info.dequantize_supported) << info.name;
    EXPECT_EQ(can_quantize(info.type), info.quantize_supported) << info.name;
    dequantizable += info.dequantize_supported ? 1 : 0;
  }
  EXPECT_EQ(dequantizable, 11);
}

TEST(TensorTypes, ByteSizesAreCheckedForBlocksAndOverflow) {
  EXPECT_EQ(checked_byte_size(TensorType::Q4_K, 512), 288u);
  EXPECT_EQ(checked_byte_size(TensorType::Q4_0, 33), std::nullopt);
  EXPECT_EQ(checked_byte_size(TensorType::F32, 1ull << 62), std::nullopt);
  try {
    byte_size_or_throw(TensorType::Q8_0, 40, "tensor 'w'");
    FAIL() << "expected TensorTypeError";
  } catch (const TensorTypeError& error) {
    EXPECT_THAT(error.what(), HasSubstr("tensor 'w': 40 values is not a multiple of the q8_0 block size 32"));
  }
}

// ---------------------------------------------------------------- hand-built blocks

TEST(Dequantize, Q8_0BlockIsScaleTimesSignedBytes) {
  std::vector<std::uint8_t> block(34);
  put_half(block, 0, 0.5f);
  for (int i = 0; i < 32; ++i)
    block[2 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(i * 8 - 128));
  const auto values = dequantize(TensorType::Q8_0, block, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(values[i], 0.5f * static_cast<float>(i * 8 - 128)) << i;
}

TEST(Dequantize, Q4_0LowNibblesAreTheFirstHalf) {
  std::vector<std::uint8_t> block(18);
  put_half(block, 0, 2.0f);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  const auto values = dequantize(TensorType::Q4_0, block, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(values[j], 2.0f * static_cast<float>(j - 8));
    EXPECT_EQ(values[j + 16], 2.0f * static_cast<float>(15 - j - 8));
  }
}

TEST(Dequantize, Q4_1AddsTheMinimum) {
  std::vector<std::uint8_t> block(20);
  put_half(block, 0, 0.25f);
  put_half(block, 2, -4.0f);
  for (int j = 0; j < 16; ++j) block[4 + j] = static_cast<std::uint8_t>(j | (j << 4));
  const auto values = dequantize(TensorType::Q4_1, block, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(values[j], 0.25f * static_cast<float>(j) - 4.0f);
    EXPECT_EQ(values[j + 16], 0.25f * static_cast<float>(j) - 4.0f);
  }
}

TEST(Dequantize, Q5_0And5_1TakeTheFifthBitFromQh) {
  const std::uint32_t high_bits = 0xA5C3F00Fu;  // bit i -> value i
  std::vector<std::uint8_t> q5_0(22);
  put_half(q5_0, 0, 1.0f);
  std::memcpy(q5_0.data() + 2, &high_bits, 4);
  std::vector<std::uint8_t> q5_1(24);
  put_half(q5_1, 0, 0.5f);
  put_half(q5_1, 2, 1.0f);
  std::memcpy(q5_1.data() + 4, &high_bits, 4);
  for (int j = 0; j < 16; ++j) {
    q5_0[6 + j] = static_cast<std::uint8_t>((j % 16) | ((j * 7 % 16) << 4));
    q5_1[8 + j] = q5_0[6 + j];
  }
  const auto a = dequantize(TensorType::Q5_0, q5_0, 32);
  const auto b = dequantize(TensorType::Q5_1, q5_1, 32);
  for (int i = 0; i < 32; ++i) {
    const int nibble = i < 16 ? i % 16 : ((i - 16) * 7 % 16);
    const int q = nibble | static_cast<int>(((high_bits >> i) & 1u) << 4);
    EXPECT_EQ(a[i], static_cast<float>(q - 16)) << i;
    EXPECT_EQ(b[i], 0.5f * static_cast<float>(q) + 1.0f) << i;
  }
}

// Packs 8 six-bit scales and mins as the k-quant format describes (see quant_blocks_k.cpp).
void pack_k_scales(const int (&sc)[8], const int (&m)[8], std::uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<std::uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<std::uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(Dequantize, Q4_KAndQ5_KUsePerSubBlockScalesAndMins) {
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const int m[8] = {0, 5, 10, 15, 20, 40, 60, 63};
  std::vector<std::uint8_t> q4(144);
  std::vector<std::uint8_t> q5(176);
  put_half(q4, 0, 0.5f);
  put_half(q4, 2, 0.25f);
  put_half(q5, 0, 0.5f);
  put_half(q5, 2, 0.25f);
  pack_k_scales(sc, m, q4.data() + 4);
  pack_k_scales(sc, m, q5.data() + 4);
  auto level = [](int v) { return (v * 5 + v / 7) % 32; };  // any 5-bit pattern
  for (int v = 0; v < 256; ++v) {
    const int chunk = v / 64;
    const int l = v % 32;
    const bool high_nibble = (v % 64) >= 32;
    const int q = level(v);
    q4[16 + 32 * chunk + l] =
        static_cast<std::uint8_t>(q4[16 + 32 * chunk + l] | ((q & 15) << (high_nibble ? 4 : 0)));
    q5[48 + 32 * chunk + l] =
        static_cast<std::uint8_t>(q5[48 + 32 * chunk + l] | ((q & 15) << (high_nibble ? 4 : 0)));
    q5[16 + l] = static_cast<std::uint8_t>(q5[16 + l] | ((q >> 4) << (2 * chunk + (high_nibble ? 1 : 0))));
  }
  const auto a = dequantize(TensorType::Q4_K, q4, 256);
  const auto b = dequantize(TensorType::Q5_K, q5, 256);
  for (int v = 0; v < 256; ++v) {
    const int s = v / 32;
    EXPECT_FLOAT_EQ(a[v],
                    0.5f * static_cast<float>(sc[s] * (level(v) & 15)) - 0.25f * static_cast<float>(m[s]))
        << v;
    EXPECT_FLOAT_EQ(b[v], 0.5f * static_cast<float>(sc[s] * level(v)) - 0.25f * static_cast<float>(m[s]))
        << v;
  }
}

TEST(Dequantize, Q6_KUsesSixBitsAndSignedSubBlockScales) {
  std::vector<std::uint8_t> block(210);
  std::int8_t scales[16];
  for (int s = 0; s < 16; ++s) scales[s] = static_cast<std::int8_t>(s * 17 - 128);
  std::memcpy(block.data() + 192, scales, 16);
  put_half(block, 208, 0.125f);
  auto level = [](int v) { return (v * 11 + 3) % 64; };
  for (int v = 0; v < 256; ++v) {
    const int half = v / 128;
    const int group = (v % 128) / 32;
    const int l = v % 32;
    const int q = level(v);
    std::uint8_t& low = block[64 * half + l + 32 * (group & 1)];
    low = static_cast<std::uint8_t>(low | ((q & 15) << (group >= 2 ? 4 : 0)));
    std::uint8_t& high = block[128 + 32 * half + l];
    high = static_cast<std::uint8_t>(high | ((q >> 4) << (2 * group)));
  }
  const auto values = dequantize(TensorType::Q6_K, block, 256);
  for (int v = 0; v < 256; ++v) {
    EXPECT_FLOAT_EQ(values[v],
                    0.125f * static_cast<float>(scales[v / 16]) * static_cast<float>(level(v) - 32))
        << v;
  }
}

// ---------------------------------------------------------------- round trips

struct BlockStats {
  float magnitude = 0;  // largest |x|
  float low = 0;
  float high = 0;
};

BlockStats stats(const float* x, std::size_t n) {
  BlockStats s{0, x[0], x[0]};
  for (std::size_t i = 0; i < n; ++i) {
    s.magnitude = std::max(s.magnitude, std::fabs(x[i]));
    s.low = std::min(s.low, x[i]);
    s.high = std::max(s.high, x[i]);
  }
  return s;
}

// Largest error the format can produce for value i given the data (derived from each format's grid:
// half a step of rounding, one step at the clamped end of symmetric grids, plus the f16 rounding of
// the stored scales).
float error_bound(TensorType type, const std::vector<float>& x, std::size_t i) {
  const float fp16_slack = 1.0f / 1024.0f;
  const std::size_t b32 = i / 32 * 32;
  const BlockStats s32 = stats(&x[b32], 32);
  switch (type) {
    case TensorType::F32:
      return 0.0f;
    case TensorType::F16:
      return std::fabs(x[i]) * std::ldexp(1.0f, -11) + std::ldexp(1.0f, -25);
    case TensorType::BF16:
      return std::fabs(x[i]) * std::ldexp(1.0f, -8);
    case TensorType::Q8_0:
      return s32.magnitude / 254.0f + s32.magnitude * fp16_slack;
    case TensorType::Q4_0:
      return s32.magnitude / 8.0f + s32.magnitude * fp16_slack;
    case TensorType::Q5_0:
      return s32.magnitude / 16.0f + s32.magnitude * fp16_slack;
    case TensorType::Q4_1:
      return (s32.high - s32.low) / 30.0f + (std::fabs(s32.low) + s32.high - s32.low) * fp16_slack;
    case TensorType::Q5_1:
      return (s32.high - s32.low) / 62.0f + (std::fabs(s32.low) + s32.high - s32.low) * fp16_slack;
    default:
      break;
  }
  const std::size_t b256 = i / 256 * 256;
  if (type == TensorType::Q6_K) {
    const BlockStats s16 = stats(&x[i / 16 * 16], 16);
    const BlockStats s256 = stats(&x[b256], 256);
    return s16.magnitude / 32.0f + s256.magnitude / 256.0f + s256.magnitude * fp16_slack;
  }
  // Q4_K / Q5_K: affine grid per 32 values starting at min(0, low); scales and offsets are 6-bit
  // multiples of per-256 super scales (d = largest scale / 63, dmin = largest offset / 63).
  const float levels = type == TensorType::Q4_K ? 15.0f : 31.0f;
  float largest_range = 0;
  float largest_offset = 0;
  for (std::size_t b = b256; b < b256 + 256; b += 32) {
    const BlockStats s = stats(&x[b], 32);
    const float low = std::min(0.0f, s.low);
    largest_range = std::max(largest_range, std::max(s.high, low) - low);
    largest_offset = std::max(largest_offset, -low);
  }
  const float d = largest_range / levels / 63.0f;
  const float dmin = largest_offset / 63.0f;
  const float range = std::max(s32.high, std::min(0.0f, s32.low)) - std::min(0.0f, s32.low);
  return range / levels / 2.0f + levels * d / 2.0f + d + dmin / 2.0f +
         (largest_range + largest_offset) * fp16_slack;
}

struct RoundTripCase {
  TensorType type;
  double max_relative_rms;  // RMS(error) / RMS(signal) on Gaussian data
};

void PrintTo(const RoundTripCase& c, std::ostream* os) {
  *os << tensor_type_name(c.type);
}

class QuantRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

std::vector<float> test_signal() {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 24);
  for (auto& v : x) v = normal(rng);
  // Special super-blocks: zeros, a constant, a lone outlier, all negative, all positive, tiny values.
  std::fill(x.begin(), x.begin() + 256, 0.0f);
  std::fill(x.begin() + 256, x.begin() + 512, 3.0f);
  std::fill(x.begin() + 512, x.begin() + 768, 0.01f);
  x[600] = -50.0f;
  for (std::size_t i = 768; i < 1024; ++i) x[i] = -std::fabs(x[i]) - 1.0f;
  for (std::size_t i = 1024; i < 1280; ++i) x[i] = std::fabs(x[i]) + 1.0f;
  for (std::size_t i = 1280; i < 1536; ++i) x[i] *= 1e-3f;
  return x;
}

TEST_P(QuantRoundTrip, ErrorStaysWithinTheFormatsBounds) {
  const auto [type, max_relative_rms] = GetParam();
  const std::vector<float> x = test_signal();
  std::vector<std::uint8_t> blocks(checked_byte_size(type, x.size()).value());
  quantize_row(type, x, blocks);
  std::vector<float> y(x.size());
  dequantize_row(type, blocks, y);

  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_LE(std::fabs(y[i] - x[i]), error_bound(type, x, i) * 1.0001f + 1e-12f)
        << tensor_type_name(type) << " value " << i << ": " << x[i] << " -> " << y[i];
  }
  for (std::size_t i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.0f) << "an all-zero block must stay zero";
  double error_energy = 0;
  double signal_energy = 0;
  for (std::size_t i = 1536; i < x.size(); ++i) {  // the Gaussian part
    error_energy += (y[i] - x[i]) * static_cast<double>(y[i] - x[i]);
    signal_energy += x[i] * static_cast<double>(x[i]);
  }
  const double relative_rms = std::sqrt(error_energy / signal_energy);
  EXPECT_LE(relative_rms, max_relative_rms) << tensor_type_name(type);
  RecordProperty("relative_rms", std::to_string(relative_rms));

  // Re-quantizing the decoded values must not lose more than the first pass did.
  std::vector<std::uint8_t> again(blocks.size());
  quantize_row(type, y, again);
  std::vector<float> z(x.size());
  dequantize_row(type, again, z);
  double drift = 0;
  for (std::size_t i = 1536; i < x.size(); ++i) drift += (z[i] - y[i]) * static_cast<double>(z[i] - y[i]);
  EXPECT_LE(std::sqrt(drift / signal_energy), max_relative_rms) << tensor_type_name(type);
}

INSTANTIATE_TEST_SUITE_P(
    AllQuantizableTypes, QuantRoundTrip,
    ::testing::Values(RoundTripCase{TensorType::F32, 0.0}, RoundTripCase{TensorType::F16, 3e-4},
                      RoundTripCase{TensorType::BF16, 3e-3}, RoundTripCase{TensorType::Q8_0, 0.008},
                      RoundTripCase{TensorType::Q4_0, 0.12}, RoundTripCase{TensorType::Q4_1, 0.12},
                      RoundTripCase{TensorType::Q5_0, 0.06}, RoundTripCase{TensorType::Q5_1, 0.06},
                      RoundTripCase{TensorType::Q4_K, 0.12}, RoundTripCase{TensorType::Q5_K, 0.06},
                      RoundTripCase{TensorType::Q6_K, 0.03}),
    [](const ::testing::TestParamInfo<RoundTripCase>& param_info) {
      return std::string(tensor_type_name(param_info.param.type));
    });

// ---------------------------------------------------------------- validation

TEST(QuantsValidation, WrongSizesAreRejectedBeforeWriting) {
  std::vector<float> values(32, 1.0f);
  std::vector<std::uint8_t> blocks(33, 0xAB);
  try {
    quantize_row(TensorType::Q8_0, values, blocks);
    FAIL() << "expected TensorTypeError";
  } catch (const TensorTypeError& error) {
    EXPECT_THAT(error.what(), HasSubstr("32 values of q8_0 need 34 bytes, got 33"));
  }
  EXPECT_TRUE(std::all_of(blocks.begin(), blocks.end(), [](std::uint8_t b) { return b == 0xAB; }));
  std::vector<float> odd(31);
  std::vector<std::uint8_t> q4(18);
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, q4, odd), TensorTypeError);
}

TEST(QuantsValidation, UnimplementedTypesNameTheType) {
  std::vector<float> values(256);
  std::vector<std::uint8_t> blocks(84);
  try {
    dequantize_row(TensorType::Q2_K, blocks, values);
    FAIL() << "expected TensorTypeError";
  } catch (const TensorTypeError& error) {
    EXPECT_THAT(error.what(), HasSubstr("q2_K"));
  }
  EXPECT_THROW(quantize_row(TensorType::IQ4_XS, values, blocks), TensorTypeError);
}

}  // namespace
}  // namespace exo::inference
