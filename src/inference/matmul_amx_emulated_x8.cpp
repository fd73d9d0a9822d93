// The AMX kernels of matmul_amx_kernels.h with the tile instructions emulated in plain C++, and
// SIMDe's vpdpbusd for the VNNI fallback kernels: the same code as matmul_amx_x8.cpp but for the
// instructions, so the tests check the AMX kernels on any AVX2 CPU (KernelVariant::AMX_EMULATED;
// slow, never chosen to run a model). Compiled with the AVX2 flags only.
//
// The emulation follows the instructions' definitions in Intel's architecture manual, faults
// included: a configuration the hardware would refuse (#GP) or a tile operation on unconfigured
// tiles, or on shapes that do not fit together (#UD), throws std::logic_error instead, so a kernel
// that would fault on a real CPU fails its tests here. Tile state is per thread, as on the hardware.
#include <simde/x86/avx512/dpbusd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "inference/matmul_amx_kernels.h"
#include "inference/matmul_vnni_dot.h"

namespace exo::inference::kernels {

namespace {

struct EmulatedDpbusd {
  static __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return simde_mm256_dpbusd_epi32(acc, u8, s8); }
};

constexpr int tile_registers = 8;
constexpr int max_rows = 16;
constexpr int max_colsb = 64;

struct TileState {
  bool configured = false;
  int rows[tile_registers] = {};
  int colsb[tile_registers] = {};
  std::uint8_t data[tile_registers][max_rows][max_colsb] = {};
};

TileState& tile_state() {
  thread_local TileState state;
  return state;
}

// Messages are formatted without std::string, whose inline members this file would otherwise emit
// as weak symbols compiled for AVX2 (the linker may keep any one copy of a weak symbol).
[[noreturn]] void fault(const char* what) {
  char message[160];
  std::snprintf(message, sizeof message, "AMX emulation: %s", what);
  throw std::logic_error(message);
}

[[noreturn]] void tile_fault(int tile, const char* what) {
  char message[160];
  std::snprintf(message, sizeof message, "tile %d %s", tile, what);
  fault(message);
}

// A tile an instruction uses must be configured (#UD otherwise).
void require_configured(const TileState& s, int t, const char* instruction) {
  if (!s.configured || s.rows[t] == 0 || s.colsb[t] == 0) {
    char what[96];
    std::snprintf(what, sizeof what, "is not configured for %s", instruction);
    tile_fault(t, what);
  }
}

struct EmulatedTiles {
  // LDTILECFG: palette 0 releases the tiles; palette 1 needs start_row 0 (a restart point only
  // interrupted loads set), zero reserved bytes, at most 16 rows of at most 64 bytes and nothing for
  // tiles 8-15 (#GP otherwise). Stricter than the hardware: colsb a multiple of 4 (every tile here
  // holds 32-bit sums or groups of 4 bytes) and rows and colsb both set or both 0. Every tile starts
  // zeroed.
  static void configure(const TileConfig& config) {
    if (config.palette == 0) {
      release();
      return;
    }
    if (config.palette != 1) fault("the configuration's palette does not exist");
    if (config.start_row != 0) fault("start_row is not 0");
    for (const std::uint8_t byte : config.reserved)
      if (byte != 0) fault("a reserved byte of the configuration is set");
    TileState& s = tile_state();
    for (int t = 0; t < 16; ++t) {
      const int rows = config.rows[t];
      const int colsb = config.colsb[t];
      if (t >= tile_registers) {
        if (rows != 0 || colsb != 0) tile_fault(t, "is configured, but there is no such tile");
        continue;
      }
      if (rows > max_rows || colsb > max_colsb || colsb % 4 != 0 || (rows == 0) != (colsb == 0))
        tile_fault(t, "is configured with an invalid shape");
      s.rows[t] = rows;
      s.colsb[t] = colsb;
    }
    std::memset(s.data, 0, sizeof s.data);
    s.configured = true;
  }

  static void release() { tile_state() = TileState{}; }

  template <int T>
  static void zero() {
    TileState& s = tile_state();
    require_configured(s, T, "TILEZERO");
    std::memset(s.data[T], 0, sizeof s.data[T]);
  }

  // TILELOADD: row r from base + r * stride, colsb bytes; the rest of the tile is zeroed.
  template <int T>
  static void load(const void* base, std::size_t stride) {
    TileState& s = tile_state();
    require_configured(s, T, "TILELOADD");
    std::memset(s.data[T], 0, sizeof s.data[T]);
    const auto* bytes = static_cast<const std::uint8_t*>(base);
    for (int r = 0; r < s.rows[T]; ++r)
      std::memcpy(s.data[T][r], bytes + static_cast<std::size_t>(r) * stride,
                  static_cast<std::size_t>(s.colsb[T]));
  }

  template <int T>
  static void store(void* base, std::size_t stride) {
    TileState& s = tile_state();
    require_configured(s, T, "TILESTORED");
    auto* bytes = static_cast<std::uint8_t*>(base);
    for (int r = 0; r < s.rows[T]; ++r)
      std::memcpy(bytes + static_cast<std::size_t>(r) * stride, s.data[T][r],
                  static_cast<std::size_t>(s.colsb[T]));
  }

  // TDPBSSD C, A, B: the three tiles distinct, A.rows == C.rows, B.rows == A.colsb / 4 and
  // B.colsb == C.colsb (#UD otherwise); 32-bit sums wrap.
  template <int C, int A, int B>
  static void dpbssd() {
    dot_products<C, A, B, true>("TDPBSSD");
  }
  // TDPBSUD: the same with B's bytes unsigned.
  template <int C, int A, int B>
  static void dpbsud() {
    dot_products<C, A, B, false>("TDPBSUD");
  }

 private:
  template <int C, int A, int B, bool SignedB>
  static void dot_products(const char* instruction) {
    static_assert(C != A && C != B && A != B, "a tile product's tiles must be distinct");
    TileState& s = tile_state();
    require_configured(s, C, instruction);
    require_configured(s, A, instruction);
    require_configured(s, B, instruction);
    if (s.rows[A] != s.rows[C] || s.rows[B] != s.colsb[A] / 4 || s.colsb[B] != s.colsb[C])
      fault("a tile product on tiles whose shapes do not fit together");
    for (int m = 0; m < s.rows[C]; ++m) {
      for (int n = 0; n < s.colsb[C] / 4; ++n) {
        std::uint32_t sum = 0;
        std::memcpy(&sum, s.data[C][m] + 4 * n, 4);
        for (int k = 0; k < s.colsb[A] / 4; ++k) {
          for (int i = 0; i < 4; ++i) {
            const std::uint8_t weight = s.data[B][k][4 * n + i];
            const int b = SignedB ? static_cast<std::int8_t>(weight) : weight;
            sum += static_cast<std::uint32_t>(static_cast<std::int8_t>(s.data[A][m][4 * k + i]) * b);
          }
        }
        std::memcpy(s.data[C][m] + 4 * n, &sum, 4);
      }
    }
  }
};

}  // namespace

RowKernel amx_emulated_x8_kernel(WeightLayout layout) noexcept {
  return amx_x8_kernel_of<EmulatedTiles, VnniDot<EmulatedDpbusd>>(layout);
}

}  // namespace exo::inference::kernels
