// The VNNI kernels of the 8-row layouts with vpdpbusd emulated on AVX2 by SIMDe (bit-exact, slower
// than the AVX2 kernels). It exists so that the VNNI kernels' arithmetic, shared with
// matmul_avx512_vnni_x8.cpp and matmul_avx_vnni_x8.cpp through matmul_vnni_dot.h, is tested on every
// AVX2 machine (KernelVariant::VNNI_EMULATED); it is never chosen to run a model. Compiled with the
// AVX2 flags only.
#include <simde/x86/avx512/dpbusd.h>

#include "inference/matmul_vnni_dot.h"

namespace exo::inference::kernels {

namespace {

struct EmulatedDpbusd {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return simde_mm256_dpbusd_epi32(acc, u8, s8); }
};

}  // namespace

RowKernel vnni_emulated_x8_kernel(WeightLayout layout) noexcept {
  return x8_kernel_of<VnniDot<EmulatedDpbusd>>(layout);
}

}  // namespace exo::inference::kernels
