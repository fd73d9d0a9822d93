// AVX512-VNNI kernels of the 8-row layouts: matmul_x8_kernels.h with the EVEX vpdpbusd on 256-bit
// vectors (AVX512VL). This file alone is compiled with -mavx512f -mavx512vl -mavx512vnni (plus the
// AVX2 flags); matmul.cpp calls it only on CPUs, and operating systems, that run those instructions.
#include "inference/matmul_vnni_dot.h"

namespace exo::inference::kernels {

namespace {

struct EvexDpbusd {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_epi32(acc, u8, s8); }
};

}  // namespace

RowKernel avx512_vnni_x8_kernel(WeightLayout layout) noexcept {
  return x8_kernel_of<VnniDot<EvexDpbusd>>(layout);
}

}  // namespace exo::inference::kernels
