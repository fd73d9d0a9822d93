// Per-format block codecs used by quants.cpp (internal to the inference library).
//
// Contract: each function converts exactly one block; `in`/`out` point to a full block's storage
// (bytes_per_block bytes) and to block_size floats. No bounds checks here: quants.cpp validates
// sizes before calling. Stateless, thread-safe.
#pragma once

#include <cstdint>

namespace exo::inference::blocks {

void dequantize_q4_0(const std::uint8_t* in, float* out);
void dequantize_q4_1(const std::uint8_t* in, float* out);
void dequantize_q5_0(const std::uint8_t* in, float* out);
void dequantize_q5_1(const std::uint8_t* in, float* out);
void dequantize_q8_0(const std::uint8_t* in, float* out);
void dequantize_q4_k(const std::uint8_t* in, float* out);
void dequantize_q5_k(const std::uint8_t* in, float* out);
void dequantize_q6_k(const std::uint8_t* in, float* out);

void quantize_q4_0(const float* in, std::uint8_t* out);
void quantize_q4_1(const float* in, std::uint8_t* out);
void quantize_q5_0(const float* in, std::uint8_t* out);
void quantize_q5_1(const float* in, std::uint8_t* out);
void quantize_q8_0(const float* in, std::uint8_t* out);
void quantize_q4_k(const float* in, std::uint8_t* out);
void quantize_q5_k(const float* in, std::uint8_t* out);
void quantize_q6_k(const float* in, std::uint8_t* out);

// The 8 sub-block scales and mins (6 bits each) of a Q4_K / Q5_K super-block, from or into its
// 12 bytes of packed fields.
void unpack_k4_scales_mins(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins);
void pack_k4_scales_mins(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed);

// Level v (0..255) of a Q6_K super-block (6 bits: 4 in `ql`, 2 in `qh`), and the reverse; the
// setter expects the level's bits still clear. Inline: repacking calls them once per value.
inline int q6_k_level(const std::uint8_t* block, int v) {
  const int n = v / 128;
  const int quarter = (v % 128) / 32;
  const int l = v % 32;
  const std::uint8_t low = block[64 * n + l + 32 * (quarter & 1)];
  const int nibble = quarter < 2 ? low & 0x0F : low >> 4;
  return nibble | (((block[128 + 32 * n + l] >> (2 * quarter)) & 0x03) << 4);
}

// All 256 levels of a Q6_K super-block, in value order (a loop the compiler vectorizes).
inline void q6_k_levels(const std::uint8_t* block, std::uint8_t* levels) {
  for (int n = 0; n < 2; ++n) {
    const std::uint8_t* ql = block + 64 * n;
    const std::uint8_t* qh = block + 128 + 32 * n;
    std::uint8_t* out = levels + 128 * n;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<std::uint8_t>((ql[l] & 0x0F) | ((qh[l] & 0x03) << 4));
      out[l + 32] = static_cast<std::uint8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 0x03) << 4));
      out[l + 64] = static_cast<std::uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 0x03) << 4));
      out[l + 96] = static_cast<std::uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 0x03) << 4));
    }
  }
}

inline void set_q6_k_level(std::uint8_t* block, int v, int level) {
  const int n = v / 128;
  const int quarter = (v % 128) / 32;
  const int l = v % 32;
  block[64 * n + l + 32 * (quarter & 1)] |=
      static_cast<std::uint8_t>((level & 0x0F) << (quarter < 2 ? 0 : 4));
  block[128 + 32 * n + l] |= static_cast<std::uint8_t>(((level >> 4) & 0x03) << (2 * quarter));
}

}  // namespace exo::inference::blocks
