// Inline helpers shared by the AVX2 kernel files (matmul_avx2.cpp, matmul_avx2_x8.cpp): loads,
// f16 scalars, horizontal sums and the weight-stream prefetch. Include only from files compiled with
// -mavx2 -mfma -mf16c (see CMakeLists.txt). Stateless.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace exo::inference::kernels::avx2 {

using I64 = std::int64_t;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float f16(const std::uint8_t* at) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, at, sizeof bits);
  return _cvtsh_ss(bits);
}

inline std::uint32_t u32(const std::uint8_t* at) {
  std::uint32_t v = 0;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// Software prefetch distance for the weight streams. The out-of-order window alone keeps only a few
// cache lines in flight per row; prefetching a page ahead roughly doubled matrix-vector throughput
// from DRAM on the development machine (measured 512 B .. 8 KiB; 2-8 KiB were best).
constexpr I64 prefetch_bytes = 4096;

inline void prefetch(const std::uint8_t* at) {
  _mm_prefetch(reinterpret_cast<const char*>(at + prefetch_bytes), _MM_HINT_T0);
}

inline __m256i load256(const void* at) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(at));
}

}  // namespace exo::inference::kernels::avx2
