// The Dot policy of matmul_x8_kernels.h with VNNI: vpdpbusd multiplies 4 unsigned bytes with 4 signed
// bytes and adds the sum to a 32-bit lane in one instruction, with no 16-bit intermediate to saturate.
// `Instruction::dpbusd(acc, u8, s8)` is that instruction in one encoding: AVX512-VNNI (EVEX, with
// AVX512VL for 256-bit vectors), AVX-VNNI (VEX), or SIMDe's emulation on AVX2, which runs the same
// kernels on CPUs without VNNI so the tests can check them. Include only from the VNNI kernel files.
// Internal linkage, as matmul_x8_kernels.h.
#pragma once

#include "inference/matmul_x8_kernels.h"

namespace exo::inference::kernels {

namespace {  // NOLINT(cert-dcl59-cpp,google-build-namespaces): one copy per instruction set

template <class Instruction>
struct VnniDot {
  using Scale = __m256i;  // 32-bit, one lane per row
  static constexpr bool scales_in_32_bit_lanes = true;

  static Scale unsigned_scales(__m128i bytes) { return _mm256_cvtepu8_epi32(bytes); }
  static Scale signed_scales(__m128i bytes) { return _mm256_cvtepi8_epi32(bytes); }

  template <int N>
  static __m256i dots(const __m256i* levels, const std::uint8_t* qs) {
    __m256i sums = Instruction::dpbusd(_mm256_setzero_si256(), levels[0], broadcast4(qs));
#pragma GCC unroll 8
    for (int k = 1; k < N; ++k) sums = Instruction::dpbusd(sums, levels[k], broadcast4(qs + 4 * k));
    return sums;
  }

  // The sums are 32-bit, so a high nibble can stay in place as 16 x its level (at most 4 * 240 * 128
  // per product): one AND unpacks it instead of a shift and an AND. The low and the high nibbles'
  // products form two independent chains (which also halves the dependent vpdpbusd latency of a
  // matrix-vector product); the high chain is an exact multiple of 16.
  static constexpr bool high_nibbles_in_place = true;
  static __m256i nibble_dots(const __m256i (&levels)[8], const std::uint8_t* qs) {
    __m256i low = Instruction::dpbusd(_mm256_setzero_si256(), levels[0], broadcast4(qs));
    __m256i high = Instruction::dpbusd(_mm256_setzero_si256(), levels[1], broadcast4(qs + 4));
#pragma GCC unroll 4
    for (int k = 2; k < 8; k += 2) {
      low = Instruction::dpbusd(low, levels[k], broadcast4(qs + 4 * k));
      high = Instruction::dpbusd(high, levels[k + 1], broadcast4(qs + 4 * k + 4));
    }
    return _mm256_add_epi32(low, _mm256_srai_epi32(high, 4));
  }
  static __m256i scaled_nibble_dots(const __m256i (&levels)[8], const std::uint8_t* qs, Scale scale) {
    return _mm256_mullo_epi32(nibble_dots(levels, qs), scale);
  }

  template <int N>
  static __m256i scaled_dots(const __m256i* levels, const std::uint8_t* qs, Scale scale) {
    return _mm256_mullo_epi32(dots<N>(levels, qs), scale);
  }

  // Signed levels become unsigned by adding 128 (flipping the top bit); finish_signed takes
  // 128 * (sum of the activation levels) back off.
  using SignedLevels = __m256i;
  static SignedLevels signed_levels(__m256i levels) {
    return _mm256_xor_si256(levels, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static __m256i add_signed_dots(__m256i acc, SignedLevels chunk, const std::uint8_t* qs) {
    return Instruction::dpbusd(acc, chunk, broadcast4(qs));
  }
  static __m256i finish_signed(__m256i acc, std::int32_t sum) {
    return _mm256_sub_epi32(acc, _mm256_set1_epi32(128 * sum));
  }
};

}  // namespace

}  // namespace exo::inference::kernels
