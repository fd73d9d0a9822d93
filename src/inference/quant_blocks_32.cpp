// Block codecs of the 32-value formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//
// Layouts (little-endian, no padding), value i of the block is x[i]:
//   Q4_0 (18 B): f16 d | 16 B nibbles. x[j] = d * (lo(qs[j]) - 8), x[j+16] = d * (hi(qs[j]) - 8).
//   Q4_1 (20 B): f16 d | f16 m | 16 B nibbles. x = d * q + m.
//   Q5_0 (22 B): f16 d | u32 qh | 16 B nibbles. Bit j of qh is bit 4 of q[j], bit j+16 of q[j+16];
//                x = d * (q - 16).
//   Q5_1 (24 B): f16 d | f16 m | u32 qh | 16 B nibbles. x = d * q + m.
//   Q8_0 (34 B): f16 d | 32 x int8. x = d * q.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "inference/half_float.h"
#include "inference/quant_blocks.h"

namespace exo::inference::blocks {

namespace {

constexpr int block_values = 32;
constexpr int half_block = block_values / 2;

float load_fp16(const std::uint8_t* at) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, at, sizeof bits);
  return fp16_to_float(bits);
}

void store_fp16(std::uint8_t* at, float value) {
  const std::uint16_t bits = float_to_fp16(value);
  std::memcpy(at, &bits, sizeof bits);
}

std::uint32_t load_u32(const std::uint8_t* at) {
  std::uint32_t value = 0;
  std::memcpy(&value, at, sizeof value);
  return value;
}

void store_u32(std::uint8_t* at, std::uint32_t value) {
  std::memcpy(at, &value, sizeof value);
}

// The value of largest magnitude (keeping its sign); 0 for an all-zero block.
float signed_extreme(const float* in) {
  float extreme = 0.0f;
  float extreme_magnitude = 0.0f;
  for (int i = 0; i < block_values; ++i) {
    if (std::fabs(in[i]) > extreme_magnitude) {
      extreme_magnitude = std::fabs(in[i]);
      extreme = in[i];
    }
  }
  return extreme;
}

struct Range {
  float low = std::numeric_limits<float>::max();
  float high = std::numeric_limits<float>::lowest();
};

Range value_range(const float* in) {
  Range range;
  for (int i = 0; i < block_values; ++i) {
    range.low = std::min(range.low, in[i]);
    range.high = std::max(range.high, in[i]);
  }
  return range;
}

// floor(v + 0.5) limited to [0, max_level]: nearest level of a non-negative grid.
std::uint8_t level(float scaled_plus_half, int max_level) {
  const int truncated = static_cast<int>(std::floor(scaled_plus_half));
  return static_cast<std::uint8_t>(std::clamp(truncated, 0, max_level));
}

}  // namespace

void dequantize_q4_0(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const std::uint8_t* nibbles = in + 2;
  for (int j = 0; j < half_block; ++j) {
    out[j] = d * static_cast<float>((nibbles[j] & 0x0F) - 8);
    out[j + half_block] = d * static_cast<float>((nibbles[j] >> 4) - 8);
  }
}

void quantize_q4_0(const float* in, std::uint8_t* out) {
  // Symmetric grid [-8, 7] * d with the extreme value landing exactly on -8.
  const float d = signed_extreme(in) / -8.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(out, d);
  for (int j = 0; j < half_block; ++j) {
    const std::uint8_t low = level(in[j] * inverse + 8.5f, 15);
    const std::uint8_t high = level(in[j + half_block] * inverse + 8.5f, 15);
    out[2 + j] = static_cast<std::uint8_t>(low | (high << 4));
  }
}

void dequantize_q4_1(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const float m = load_fp16(in + 2);
  const std::uint8_t* nibbles = in + 4;
  for (int j = 0; j < half_block; ++j) {
    out[j] = d * static_cast<float>(nibbles[j] & 0x0F) + m;
    out[j + half_block] = d * static_cast<float>(nibbles[j] >> 4) + m;
  }
}

void quantize_q4_1(const float* in, std::uint8_t* out) {
  const Range range = value_range(in);
  const float d = (range.high - range.low) / 15.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(out, d);
  store_fp16(out + 2, range.low);
  for (int j = 0; j < half_block; ++j) {
    const std::uint8_t low = level((in[j] - range.low) * inverse + 0.5f, 15);
    const std::uint8_t high = level((in[j + half_block] - range.low) * inverse + 0.5f, 15);
    out[4 + j] = static_cast<std::uint8_t>(low | (high << 4));
  }
}

void dequantize_q5_0(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const std::uint32_t high_bits = load_u32(in + 2);
  const std::uint8_t* nibbles = in + 6;
  for (int j = 0; j < half_block; ++j) {
    const int q_low = (nibbles[j] & 0x0F) | static_cast<int>(((high_bits >> j) & 1u) << 4);
    const int q_high = (nibbles[j] >> 4) | static_cast<int>(((high_bits >> (j + half_block)) & 1u) << 4);
    out[j] = d * static_cast<float>(q_low - 16);
    out[j + half_block] = d * static_cast<float>(q_high - 16);
  }
}

void quantize_q5_0(const float* in, std::uint8_t* out) {
  const float d = signed_extreme(in) / -16.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(out, d);
  std::uint32_t high_bits = 0;
  for (int j = 0; j < half_block; ++j) {
    const std::uint8_t low = level(in[j] * inverse + 16.5f, 31);
    const std::uint8_t high = level(in[j + half_block] * inverse + 16.5f, 31);
    out[6 + j] = static_cast<std::uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
    high_bits |= static_cast<std::uint32_t>(low >> 4) << j;
    high_bits |= static_cast<std::uint32_t>(high >> 4) << (j + half_block);
  }
  store_u32(out + 2, high_bits);
}

void dequantize_q5_1(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const float m = load_fp16(in + 2);
  const std::uint32_t high_bits = load_u32(in + 4);
  const std::uint8_t* nibbles = in + 8;
  for (int j = 0; j < half_block; ++j) {
    const int q_low = (nibbles[j] & 0x0F) | static_cast<int>(((high_bits >> j) & 1u) << 4);
    const int q_high = (nibbles[j] >> 4) | static_cast<int>(((high_bits >> (j + half_block)) & 1u) << 4);
    out[j] = d * static_cast<float>(q_low) + m;
    out[j + half_block] = d * static_cast<float>(q_high) + m;
  }
}

void quantize_q5_1(const float* in, std::uint8_t* out) {
  const Range range = value_range(in);
  const float d = (range.high - range.low) / 31.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(out, d);
  store_fp16(out + 2, range.low);
  std::uint32_t high_bits = 0;
  for (int j = 0; j < half_block; ++j) {
    const std::uint8_t low = level((in[j] - range.low) * inverse + 0.5f, 31);
    const std::uint8_t high = level((in[j + half_block] - range.low) * inverse + 0.5f, 31);
    out[8 + j] = static_cast<std::uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
    high_bits |= static_cast<std::uint32_t>(low >> 4) << j;
    high_bits |= static_cast<std::uint32_t>(high >> 4) << (j + half_block);
  }
  store_u32(out + 4, high_bits);
}

void dequantize_q8_0(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  for (int j = 0; j < block_values; ++j) {
    const auto q = static_cast<std::int8_t>(in[2 + j]);
    out[j] = d * static_cast<float>(q);
  }
}

void quantize_q8_0(const float* in, std::uint8_t* out) {
  float magnitude = 0.0f;
  for (int j = 0; j < block_values; ++j) magnitude = std::max(magnitude, std::fabs(in[j]));
  const float d = magnitude / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  store_fp16(out, d);
  for (int j = 0; j < block_values; ++j) {
    const float q = std::clamp(std::round(in[j] * inverse), -127.0f, 127.0f);
    out[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q));
  }
}

}  // namespace exo::inference::blocks
