// AMX kernels: matmul_amx_kernels.h with the native tile instructions, and the AVX512-VNNI 8-row
// kernels for what AMX does not take (tokens after the last whole 16, generation).
// This file alone is compiled with -mamx-tile -mamx-int8 and the AVX512-VNNI flags; matmul.cpp
// calls it only on CPUs that have them, after Linux has granted the process the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM).
#include "inference/matmul_amx_kernels.h"
#include "inference/matmul_vnni_dot.h"

namespace exo::inference::kernels {

namespace {

struct EvexDpbusd {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_epi32(acc, u8, s8); }
};

// The intrinsics are macros that paste the tile number into the instruction's text, so each number
// the kernels use is spelled out. TILELOADD's asm does not tell the compiler it reads memory: the
// barrier makes every store before it (an unpacked B tile) happen first.
struct NativeTiles {
  static void configure(const TileConfig& config) { _tile_loadconfig(&config); }
  static void release() { _tile_release(); }

  template <int T>
  static void zero() {
    static_assert(T >= 0 && T < 4, "the kernels zero only the accumulator tiles");
    if constexpr (T == 0) _tile_zero(0);
    if constexpr (T == 1) _tile_zero(1);
    if constexpr (T == 2) _tile_zero(2);
    if constexpr (T == 3) _tile_zero(3);
  }
  template <int T>
  static void load(const void* base, std::size_t stride) {
    static_assert(T >= 4 && T < 8, "the kernels load only the operand tiles");
    __asm__ volatile("" ::: "memory");
    if constexpr (T == 4) _tile_loadd(4, base, stride);
    if constexpr (T == 5) _tile_loadd(5, base, stride);
    if constexpr (T == 6) _tile_loadd(6, base, stride);
    if constexpr (T == 7) _tile_loadd(7, base, stride);
  }
  template <int T>
  static void store(void* base, std::size_t stride) {
    static_assert(T >= 0 && T < 4, "the kernels store only the accumulator tiles");
    if constexpr (T == 0) _tile_stored(0, base, stride);
    if constexpr (T == 1) _tile_stored(1, base, stride);
    if constexpr (T == 2) _tile_stored(2, base, stride);
    if constexpr (T == 3) _tile_stored(3, base, stride);
  }
  template <int C, int A, int B>
  static void dpbssd() {
    if constexpr (C == 0 && A == 4 && B == 6) {
      _tile_dpbssd(0, 4, 6);
    } else if constexpr (C == 1 && A == 4 && B == 7) {
      _tile_dpbssd(1, 4, 7);
    } else if constexpr (C == 2 && A == 5 && B == 6) {
      _tile_dpbssd(2, 5, 6);
    } else {
      static_assert(C == 3 && A == 5 && B == 7, "not one of the kernels' tile products");
      _tile_dpbssd(3, 5, 7);
    }
  }
  template <int C, int A, int B>
  static void dpbsud() {
    if constexpr (C == 0 && A == 4 && B == 6) {
      _tile_dpbsud(0, 4, 6);
    } else if constexpr (C == 1 && A == 4 && B == 7) {
      _tile_dpbsud(1, 4, 7);
    } else if constexpr (C == 2 && A == 5 && B == 6) {
      _tile_dpbsud(2, 5, 6);
    } else {
      static_assert(C == 3 && A == 5 && B == 7, "not one of the kernels' tile products");
      _tile_dpbsud(3, 5, 7);
    }
  }
};

}  // namespace

RowKernel amx_x8_kernel(WeightLayout layout) noexcept {
  return amx_x8_kernel_of<NativeTiles, VnniDot<EvexDpbusd>>(layout);
}

}  // namespace exo::inference::kernels
