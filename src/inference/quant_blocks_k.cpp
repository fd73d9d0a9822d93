// Block codecs of the k-quant super-block formats (256 values): Q4_K, Q5_K, Q6_K.
//
// Layouts (little-endian, no padding), value v of the super-block:
//   Q4_K (144 B): f16 d | f16 dmin | 12 B packed 6-bit scales sc[8] and mins m[8] | 128 B nibbles.
//       Sub-block s = v / 32 covers 32 values. Chunk c = v / 64 uses bytes qs[32c .. 32c+31]: the
//       low nibble of qs[32c + l] is value 64c + l, the high nibble is value 64c + 32 + l.
//       x = d * sc[s] * q - dmin * m[s].
//   Q5_K (176 B): f16 d | f16 dmin | 12 B scales | 32 B qh | 128 B nibbles. As Q4_K, plus bit 4 of
//       q: bit (2c) of qh[l] for value 64c + l and bit (2c + 1) for value 64c + 32 + l.
//   Q6_K (210 B): 128 B ql | 64 B qh | 16 x int8 scales | f16 d. Half n = v / 128 and, within it,
//       r = v % 128, group g = r / 32, l = r % 32: low 4 bits in ql[64n + l + 32 (g & 1)] (low
//       nibble for g < 2, high nibble otherwise), high 2 bits at bit 2g of qh[32n + l].
//       x = d * scales[v / 16] * (q - 32).
// Packed 6-bit scales (12 bytes b[]): for j < 4, sc[j] = b[j] & 63 and m[j] = b[j+4] & 63; for j >= 4,
// sc[j] = (b[j+4] & 15) | (b[j-4] >> 6) << 4 and m[j] = (b[j+4] >> 4) | (b[j] >> 6) << 4.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "inference/half_float.h"
#include "inference/quant_blocks.h"

namespace exo::inference::blocks {

namespace {

constexpr int super_block = 256;
constexpr int sub_blocks_4k = 8;  // Q4_K / Q5_K: 8 sub-blocks of 32
constexpr int sub_values_4k = 32;
constexpr int sub_blocks_6k = 16;  // Q6_K: 16 sub-blocks of 16
constexpr int sub_values_6k = 16;

float load_fp16(const std::uint8_t* at) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, at, sizeof bits);
  return fp16_to_float(bits);
}

// Stores `value` as f16 and returns the value the decoder will see.
float store_fp16(std::uint8_t* at, float value) {
  const std::uint16_t bits = float_to_fp16(value);
  std::memcpy(at, &bits, sizeof bits);
  return fp16_to_float(bits);
}

struct ScaleAndMin {
  int scale;
  int min;
};

ScaleAndMin unpack_scale_min(const std::uint8_t* packed, int j) {
  if (j < 4) return {packed[j] & 63, packed[j + 4] & 63};
  return {(packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4),
          (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4)};
}

void pack_scales_mins(const std::array<int, 8>& scales, const std::array<int, 8>& mins,
                      std::uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<std::uint8_t>((scales[j] & 63) | ((scales[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<std::uint8_t>((mins[j] & 63) | ((mins[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<std::uint8_t>((scales[j + 4] & 0x0F) | ((mins[j + 4] & 0x0F) << 4));
  }
}

int nearest_int(float value) {
  return static_cast<int>(std::lround(value));
}

// Shared by Q4_K (max_level 15) and Q5_K (max_level 31): chooses per-sub-block affine grids
// x ~ d * sc * q - dmin * m, writes d, dmin and the packed scales, and returns the levels q.
std::array<int, super_block> quantize_affine_super_block(const float* in, int max_level, std::uint8_t* out) {
  std::array<float, sub_blocks_4k> sub_scale{};
  std::array<float, sub_blocks_4k> sub_offset{};  // non-negative: the amount subtracted
  float largest_scale = 0.0f;
  float largest_offset = 0.0f;
  for (int s = 0; s < sub_blocks_4k; ++s) {
    const float* values = in + s * sub_values_4k;
    const auto [low_it, high_it] = std::minmax_element(values, values + sub_values_4k);
    const float low = std::min(0.0f, *low_it);  // the grid starts at or below zero
    const float high = std::max(low, *high_it);
    sub_scale[s] = (high - low) / static_cast<float>(max_level);
    sub_offset[s] = -low;
    largest_scale = std::max(largest_scale, sub_scale[s]);
    largest_offset = std::max(largest_offset, sub_offset[s]);
  }
  const float d = store_fp16(out, largest_scale / 63.0f);
  const float dmin = store_fp16(out + 2, largest_offset / 63.0f);
  std::array<int, 8> scales{};
  std::array<int, 8> mins{};
  for (int s = 0; s < sub_blocks_4k; ++s) {
    scales[s] = d > 0.0f ? std::clamp(nearest_int(sub_scale[s] / d), 0, 63) : 0;
    mins[s] = dmin > 0.0f ? std::clamp(nearest_int(sub_offset[s] / dmin), 0, 63) : 0;
  }
  pack_scales_mins(scales, mins, out + 4);

  std::array<int, super_block> levels{};
  for (int s = 0; s < sub_blocks_4k; ++s) {
    const float step = d * static_cast<float>(scales[s]);
    const float offset = dmin * static_cast<float>(mins[s]);
    for (int i = 0; i < sub_values_4k; ++i) {
      const int v = s * sub_values_4k + i;
      levels[v] = step > 0.0f ? std::clamp(nearest_int((in[v] + offset) / step), 0, max_level) : 0;
    }
  }
  return levels;
}

}  // namespace

void dequantize_q4_k(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const float dmin = load_fp16(in + 2);
  const std::uint8_t* packed = in + 4;
  const std::uint8_t* nibbles = in + 16;
  for (int chunk = 0; chunk < 4; ++chunk) {
    const auto first = unpack_scale_min(packed, 2 * chunk);
    const auto second = unpack_scale_min(packed, 2 * chunk + 1);
    const float scale_low = d * static_cast<float>(first.scale);
    const float min_low = dmin * static_cast<float>(first.min);
    const float scale_high = d * static_cast<float>(second.scale);
    const float min_high = dmin * static_cast<float>(second.min);
    const std::uint8_t* q = nibbles + 32 * chunk;
    float* y = out + 64 * chunk;
    for (int l = 0; l < 32; ++l) {
      y[l] = scale_low * static_cast<float>(q[l] & 0x0F) - min_low;
      y[l + 32] = scale_high * static_cast<float>(q[l] >> 4) - min_high;
    }
  }
}

void quantize_q4_k(const float* in, std::uint8_t* out) {
  const auto levels = quantize_affine_super_block(in, 15, out);
  std::uint8_t* nibbles = out + 16;
  for (int chunk = 0; chunk < 4; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      const int low = levels[64 * chunk + l];
      const int high = levels[64 * chunk + 32 + l];
      nibbles[32 * chunk + l] = static_cast<std::uint8_t>(low | (high << 4));
    }
  }
}

void dequantize_q5_k(const std::uint8_t* in, float* out) {
  const float d = load_fp16(in);
  const float dmin = load_fp16(in + 2);
  const std::uint8_t* packed = in + 4;
  const std::uint8_t* high_bits = in + 16;
  const std::uint8_t* nibbles = in + 48;
  for (int chunk = 0; chunk < 4; ++chunk) {
    const auto first = unpack_scale_min(packed, 2 * chunk);
    const auto second = unpack_scale_min(packed, 2 * chunk + 1);
    const float scale_low = d * static_cast<float>(first.scale);
    const float min_low = dmin * static_cast<float>(first.min);
    const float scale_high = d * static_cast<float>(second.scale);
    const float min_high = dmin * static_cast<float>(second.min);
    const std::uint8_t* q = nibbles + 32 * chunk;
    float* y = out + 64 * chunk;
    for (int l = 0; l < 32; ++l) {
      const int q_low = (q[l] & 0x0F) | (((high_bits[l] >> (2 * chunk)) & 1) << 4);
      const int q_high = (q[l] >> 4) | (((high_bits[l] >> (2 * chunk + 1)) & 1) << 4);
      y[l] = scale_low * static_cast<float>(q_low) - min_low;
      y[l + 32] = scale_high * static_cast<float>(q_high) - min_high;
    }
  }
}

void quantize_q5_k(const float* in, std::uint8_t* out) {
  const auto levels = quantize_affine_super_block(in, 31, out);
  std::uint8_t* high_bits = out + 16;
  std::uint8_t* nibbles = out + 48;
  std::memset(high_bits, 0, 32);
  for (int chunk = 0; chunk < 4; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      const int low = levels[64 * chunk + l];
      const int high = levels[64 * chunk + 32 + l];
      nibbles[32 * chunk + l] = static_cast<std::uint8_t>((low & 0x0F) | ((high & 0x0F) << 4));
      high_bits[l] = static_cast<std::uint8_t>(high_bits[l] | ((low >> 4) << (2 * chunk)) |
                                               ((high >> 4) << (2 * chunk + 1)));
    }
  }
}

void dequantize_q6_k(const std::uint8_t* in, float* out) {
  const std::uint8_t* low_bits = in;
  const std::uint8_t* high_bits = in + 128;
  const auto* scales = in + 192;
  const float d = load_fp16(in + 208);
  for (int half = 0; half < 2; ++half) {
    const std::uint8_t* ql = low_bits + 64 * half;
    const std::uint8_t* qh = high_bits + 32 * half;
    float* y = out + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int q0 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q1 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      const int values[4] = {q0, q1, q2, q3};
      for (int group = 0; group < 4; ++group) {
        const int v = 128 * half + 32 * group + l;
        const auto scale = static_cast<std::int8_t>(scales[v / sub_values_6k]);
        y[32 * group + l] = d * static_cast<float>(scale) * static_cast<float>(values[group]);
      }
    }
  }
}

void quantize_q6_k(const float* in, std::uint8_t* out) {
  // Per sub-block: symmetric grid [-32, 31] * scale with the extreme value on -32. The sub-block
  // scales are then themselves quantized to int8 against d, the largest landing on -128.
  std::array<float, sub_blocks_6k> sub_scale{};
  float extreme_scale = 0.0f;
  for (int s = 0; s < sub_blocks_6k; ++s) {
    float extreme = 0.0f;
    for (int i = 0; i < sub_values_6k; ++i) {
      const float value = in[s * sub_values_6k + i];
      if (std::fabs(value) > std::fabs(extreme)) extreme = value;
    }
    sub_scale[s] = extreme / -32.0f;
    if (std::fabs(sub_scale[s]) > std::fabs(extreme_scale)) extreme_scale = sub_scale[s];
  }
  const float d = store_fp16(out + 208, extreme_scale / -128.0f);
  std::array<int, sub_blocks_6k> scales{};
  for (int s = 0; s < sub_blocks_6k; ++s) {
    scales[s] = d != 0.0f ? std::clamp(nearest_int(sub_scale[s] / d), -128, 127) : 0;
    out[192 + s] = static_cast<std::uint8_t>(static_cast<std::int8_t>(scales[s]));
  }
  std::uint8_t* low_bits = out;
  std::uint8_t* high_bits = out + 128;
  std::memset(low_bits, 0, 192);
  for (int v = 0; v < super_block; ++v) {
    const float step = d * static_cast<float>(scales[v / sub_values_6k]);
    const int q = (step != 0.0f ? std::clamp(nearest_int(in[v] / step), -32, 31) : 0) + 32;
    const int half = v / 128;
    const int group = (v % 128) / 32;
    const int l = v % 32;
    std::uint8_t& low = low_bits[64 * half + l + 32 * (group & 1)];
    low = static_cast<std::uint8_t>(low | ((q & 0x0F) << (group < 2 ? 0 : 4)));
    std::uint8_t& high = high_bits[32 * half + l];
    high = static_cast<std::uint8_t>(high | ((q >> 4) << (2 * group)));
  }
}

// ql: 128 bytes (two halves of 64), qh: 64 bytes (two halves of 32). In half n, position l of
// quarter q is value 128n + 32q + l: its low 4 bits are the low (q < 2) or high nibble of
// ql[64n + l + 32 (q & 1)], its high 2 bits are bits 2q, 2q + 1 of qh[32n + l].
void unpack_k4_scales_mins(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins) {
  for (int j = 0; j < sub_blocks_4k; ++j) {
    const ScaleAndMin sm = unpack_scale_min(packed, j);
    scales[j] = static_cast<std::uint8_t>(sm.scale);
    mins[j] = static_cast<std::uint8_t>(sm.min);
  }
}

void pack_k4_scales_mins(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed) {
  std::array<int, 8> s{};
  std::array<int, 8> m{};
  for (int j = 0; j < sub_blocks_4k; ++j) {
    s[static_cast<std::size_t>(j)] = scales[j];
    m[static_cast<std::size_t>(j)] = mins[j];
  }
  pack_scales_mins(s, m, packed);
}

}  // namespace exo::inference::blocks
