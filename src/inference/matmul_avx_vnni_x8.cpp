// AVX-VNNI kernels of the 8-row layouts (CPUs with VNNI but without AVX-512, such as recent Intel
// client cores): matmul_x8_kernels.h with the VEX vpdpbusd. This file alone is compiled with -mavxvnni
// (plus the AVX2 flags); matmul.cpp calls it only on CPUs that have AVX-VNNI.
#include "inference/matmul_vnni_dot.h"

namespace exo::inference::kernels {

namespace {

struct VexDpbusd {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_avx_epi32(acc, u8, s8); }
};

}  // namespace

RowKernel avx_vnni_x8_kernel(WeightLayout layout) noexcept {
  return x8_kernel_of<VnniDot<VexDpbusd>>(layout);
}

}  // namespace exo::inference::kernels
