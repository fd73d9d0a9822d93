// Inline helpers shared by the x86 kernel files (matmul_avx2.cpp and the 8-row kernel files): loads,
// f16 scalars, horizontal sums and the weight-stream prefetch. Include only from files compiled with
// at least -mavx2 -mfma -mf16c (see CMakeLists.txt). Stateless. Internal linkage: a file compiled
// for a wider instruction set keeps its own copies, which the linker cannot hand to another file.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace exo::inference::kernels::avx2 {

namespace {  // NOLINT(cert-dcl59-cpp,google-build-namespaces): one copy per instruction set, see above

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

}  // namespace

}  // namespace exo::inference::kernels::avx2
