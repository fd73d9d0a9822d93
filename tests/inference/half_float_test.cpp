// F16 / BF16 conversions: exhaustive round trips, known encodings, rounding rules, and (where the
// compiler has a native _Float16) agreement with the hardware conversion on many float patterns.
#include "inference/half_float.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace exo::inference {
namespace {

TEST(HalfFloat, EveryNonNanHalfRoundTripsExactly) {
  int checked = 0;
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto half = static_cast<std::uint16_t>(bits);
    const float value = fp16_to_float(half);
    if (std::isnan(value)) {
      EXPECT_EQ(half & 0x7C00, 0x7C00);
      EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(value))));
      continue;
    }
    ASSERT_EQ(float_to_fp16(value), half) << "half 0x" << std::hex << bits;
    ++checked;
  }
  EXPECT_EQ(checked, 65536 - 2046);  // 2 * 1023 NaN encodings
}

TEST(HalfFloat, KnownEncodings) {
  EXPECT_EQ(fp16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_float(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(fp16_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(fp16_to_float(0x8000)));
  EXPECT_EQ(float_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
}

TEST(HalfFloat, RoundsToNearestEvenAndOverflowsToInfinity) {
  EXPECT_EQ(float_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even (down)
  EXPECT_EQ(float_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(float_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  EXPECT_EQ(float_to_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(float_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(float_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 ulp -> 0
  EXPECT_EQ(float_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 -> 2
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -14) * (1.0f - std::ldexp(1.0f, -12))),
            0x0400);  // rounds up to normal
  EXPECT_EQ(float_to_fp16(1e-30f), 0x0000);
}

#if defined(__FLT16_MAX__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
TEST(HalfFloat, AgreesWithTheCompilersFloat16Conversion) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any;
  std::uniform_int_distribution<std::uint32_t> near_half_range(0x33000000u, 0x47800000u);  // 2^-25 .. 2^16
  for (int i = 0; i < 400000; ++i) {
    std::uint32_t bits = (i % 2 == 0) ? any(rng) : near_half_range(rng) | (any(rng) & 0x80000000u);
    const float value = std::bit_cast<float>(bits);
    if (std::isnan(value)) continue;
    const _Float16 native = static_cast<_Float16>(value);
    std::uint16_t expected = 0;
    std::memcpy(&expected, &native, sizeof expected);
    ASSERT_EQ(float_to_fp16(value), expected) << "float bits 0x" << std::hex << bits;
  }
}
#pragma GCC diagnostic pop
#endif

TEST(BFloat16, KnownValuesAndRounding) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC040), -3.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even keeps 1.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const float value = bf16_to_float(static_cast<std::uint16_t>(bits));
    if (std::isnan(value)) continue;
    ASSERT_EQ(float_to_bf16(value), bits);
  }
}

}  // namespace
}  // namespace exo::inference
