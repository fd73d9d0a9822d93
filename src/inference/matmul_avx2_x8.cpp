// AVX2 + FMA + F16C kernels of the 8-row layouts (matmul_x8_kernels.h): byte products with vpmaddubsw,
// summed in 16 bits and widened with vpmaddwd. Compiled with the same flags as matmul_avx2.cpp and
// called only after the same CPU check.
#include "inference/matmul_x8_kernels.h"

namespace exo::inference::kernels {

namespace {

// The Dot policy of matmul_x8_kernels.h on AVX2. Scales are 16-bit, each duplicated over its row's two
// 16-bit lanes, so one vpmaddwd both widens a row's pair of partial sums and scales it.
struct MaddubsDot {
  using Scale = __m256i;

  static Scale unsigned_scales(__m128i bytes) {
    return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(bytes, duplicate()));
  }
  static Scale signed_scales(__m128i bytes) {
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(bytes, duplicate()));
  }

  // The products summed in 16 bits: the callers keep N * 2 * max(level) * 128 below 2^15.
  template <int N>
  static __m256i sums16(const __m256i* levels, const std::uint8_t* qs) {
    __m256i sums = _mm256_maddubs_epi16(levels[0], broadcast4(qs));
#pragma GCC unroll 8
    for (int k = 1; k < N; ++k)
      sums = _mm256_add_epi16(sums, _mm256_maddubs_epi16(levels[k], broadcast4(qs + 4 * k)));
    return sums;
  }
  template <int N>
  static __m256i dots(const __m256i* levels, const std::uint8_t* qs) {
    return _mm256_madd_epi16(sums16<N>(levels, qs), _mm256_set1_epi16(1));
  }
  template <int N>
  static __m256i scaled_dots(const __m256i* levels, const std::uint8_t* qs, Scale scale) {
    return _mm256_madd_epi16(sums16<N>(levels, qs), scale);
  }

  // A high nibble in place (16 x level) would overflow the 16-bit sums: nibbles are unpacked to their
  // levels.
  static constexpr bool high_nibbles_in_place = false;
  static __m256i nibble_dots(const __m256i (&levels)[8], const std::uint8_t* qs) {
    return dots<8>(levels, qs);
  }
  static __m256i scaled_nibble_dots(const __m256i (&levels)[8], const std::uint8_t* qs, Scale scale) {
    return scaled_dots<8>(levels, qs, scale);
  }

  // Signed levels: vpmaddubsw multiplies their magnitudes with the activation levels carrying their
  // signs. A product pair can reach 2 * 128 * 127, so each is widened to 32 bits at once.
  struct SignedLevels {
    __m256i levels;
    __m256i magnitude;
  };
  static SignedLevels signed_levels(__m256i levels) {
    return {levels, _mm256_sign_epi8(levels, levels)};
  }
  static __m256i add_signed_dots(__m256i acc, const SignedLevels& chunk, const std::uint8_t* qs) {
    const __m256i signed_x = _mm256_sign_epi8(broadcast4(qs), chunk.levels);
    return _mm256_add_epi32(
        acc, _mm256_madd_epi16(_mm256_maddubs_epi16(chunk.magnitude, signed_x), _mm256_set1_epi16(1)));
  }
  static __m256i finish_signed(__m256i acc, std::int32_t /*sum*/) {
    return acc;
  }

 private:
  static __m128i duplicate() {
    return _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  }
};

}  // namespace

RowKernel avx2_x8_kernel(WeightLayout layout) noexcept {
  return x8_kernel_of<MaddubsDot>(layout);
}

}  // namespace exo::inference::kernels
