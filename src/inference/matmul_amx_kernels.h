// The kernels of the 32-value 8-row layouts (Q8_0_X8, Q4_0_X8) on AMX tiles, for batches of tokens
// (prompts), written once for the native instructions (matmul_amx_x8.cpp) and for an emulation of
// them (matmul_amx_emulated_x8.cpp, which the tests run on any AVX2 CPU).
//
// Why the layouts fit: an X8 group block's 8 chunks of 32 bytes (Q8_0_X8), byte 4r + m of chunk k
// holding row r's level 4k + m, are exactly the "VNNI-packed" B operand of TDPBSSD for 8 rows
// (8 tile rows of 32 bytes, row k holding each weight row's levels 4k .. 4k + 3); Q4_0_X8's chunks
// unpack into that form with a mask, a shift and a subtraction of the zero point 8. The A operand is
// 16 tokens' activation levels of the same block, read straight from the ActQ8 blocks with a stride.
// One TDPBSSD gives the 16 x 8 integer dot products of a block; they are stored and scaled into
// float accumulators exactly as Block32X8Kernel scales its dot products (same integers, same float
// operations in the same order), so the AMX variants agree with AVX2 bit for bit.
//
// A kernel call works in tiles of 32 tokens x 16 rows (4 accumulator tiles), smaller at the edges;
// the tokens after the last whole 16 run through the 8-row kernels of `FallbackDot`. Each call loads
// its tile configuration and releases the tiles at the end, so a compute thread holds no AMX state
// between calls.
//
// The `Tiles` policy names the tile instructions (tile numbers are template arguments):
//   Tiles::configure(config)            LDTILECFG
//   Tiles::release()                    TILERELEASE
//   Tiles::zero<T>()                    TILEZERO
//   Tiles::load<T>(base, stride)        TILELOADD: rows(T) rows of colsb(T) bytes, stride bytes apart
//   Tiles::store<T>(base, stride)       TILESTORED
//   Tiles::dpbssd<C, A, B>()            TDPBSSD: C[m][n] += sum over k, i < 4 of A[m][4k + i] * B[k][4n + i]
//                                       (signed bytes, 32-bit wrapping sums)
// Include only from kernel files compiled with at least -mavx2 -mfma -mf16c; internal linkage, as
// matmul_x8_kernels.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "inference/matmul_x8_kernels.h"

namespace exo::inference::kernels {

namespace {  // NOLINT(cert-dcl59-cpp,google-build-namespaces): one copy per instruction set

// LDTILECFG's 64-byte operand, palette 1: per tile register, its rows and bytes per row.
struct alignas(64) TileConfig {
  std::uint8_t palette = 0;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// The kernels' tile registers: accumulators C(i, j) = 2i + j for token tile i and row group j
// (16 tokens x 8 int32), activations A(i) = 4 + i (16 tokens x 32 levels), weights B(j) = 6 + j
// (8 x 32 bytes: 4 levels of each of 8 rows per tile row).
constexpr TileConfig amx_kernel_tile_config() {
  TileConfig config;
  config.palette = 1;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = t < 6 ? 16 : 8;
    config.colsb[t] = 32;
  }
  return config;
}
// In static storage, so the whole configuration is in memory when LDTILECFG reads it.
alignas(64) constexpr TileConfig amx_tile_config = amx_kernel_tile_config();

// Q8_0_X8: the chunks are the B tile as they are.
struct AmxQ8_0 {
  using X8Levels = Q8_0X8Levels;
  static constexpr int group_bytes = q8_0_x8_group_bytes;
  static constexpr bool unpacks = false;
};

// Q4_0_X8: each chunk's low and high nibbles are two B tile rows; the zero point 8 comes off here,
// so TDPBSSD gives Block32X8Kernel's dot - 8 * sum directly.
struct AmxQ4_0 {
  using X8Levels = Q4_0X8Levels;
  static constexpr int group_bytes = q4_0_x8_group_bytes;
  static constexpr bool unpacks = true;
  static void unpack(const std::uint8_t* chunks, std::uint8_t* tile) {
    __m256i levels[8];
    unpack_levels(chunks, levels);
    const __m256i zero_point = _mm256_set1_epi8(8);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + 32 * k), _mm256_sub_epi8(levels[k], zero_point));
  }
};

constexpr int amx_tile_tokens = 16;
constexpr int amx_b_tile_bytes = 256;

// One unpacked B tile. A type of this file's own, so the scratch vector's members have internal
// linkage too (std::vector<std::uint8_t>'s would be weak symbols compiled for this instruction set).
struct alignas(32) BTile {
  std::uint8_t bytes[amx_b_tile_bytes];
};

template <class Tiles, class Levels>
struct AmxBlock32Kernel {
  // Rows [r0, r0 + 8 GG) x tokens [t0, t0 + 16 TT). `b_tiles` holds the unpacked B tiles (block b,
  // group j at b * GG + j) when Levels unpacks.
  template <int TT, int GG>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0,
                   const BTile* b_tiles) {
    const I64 nb = w.cols / q8_block;
    const std::size_t a_stride = static_cast<std::size_t>(nb) * sizeof(ActQ8);
    const std::uint8_t* groups = w.data + (r0 / 8) * nb * Levels::group_bytes;
    __m256 acc[TT * amx_tile_tokens][GG];
    for (auto& token : acc)
      for (__m256& lanes : token) lanes = _mm256_setzero_ps();
    alignas(64) std::int32_t dots[TT][GG][amx_tile_tokens][8];
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* block[GG];
      __m256 scales[GG];
      const std::uint8_t* b_tile[GG];
      for (int j = 0; j < GG; ++j) {
        block[j] = groups + (j * nb + b) * Levels::group_bytes;
        scales[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block[j])));
        b_tile[j] = Levels::unpacks ? b_tiles[b * GG + j].bytes : block[j] + 16;
      }
      const ActQ8* a_first = x.q8 + t0 * nb + b;
      Tiles::template zero<0>();
      Tiles::template load<4>(a_first->qs, a_stride);
      Tiles::template load<6>(b_tile[0], 32);
      Tiles::template dpbssd<0, 4, 6>();
      if constexpr (GG == 2) {
        Tiles::template zero<1>();
        Tiles::template load<7>(b_tile[1], 32);
        Tiles::template dpbssd<1, 4, 7>();
      }
      if constexpr (TT == 2) {
        Tiles::template zero<2>();
        Tiles::template load<5>((a_first + amx_tile_tokens * nb)->qs, a_stride);
        Tiles::template dpbssd<2, 5, 6>();
        if constexpr (GG == 2) {
          Tiles::template zero<3>();
          Tiles::template dpbssd<3, 5, 7>();
        }
      }
      Tiles::template store<0>(dots[0][0], 32);
      if constexpr (GG == 2) Tiles::template store<1>(dots[0][GG - 1], 32);
      if constexpr (TT == 2) {
        Tiles::template store<2>(dots[TT - 1][0], 32);
        if constexpr (GG == 2) Tiles::template store<3>(dots[TT - 1][GG - 1], 32);
      }
      // Block32X8Kernel's float step: acc += float(dot) * (row scales * token scale).
      for (int i = 0; i < TT; ++i) {
        for (int m = 0; m < amx_tile_tokens; ++m) {
          const int t = i * amx_tile_tokens + m;
          const __m256 d = _mm256_set1_ps(a_first[t * nb].d);
#pragma GCC unroll 2
          for (int j = 0; j < GG; ++j)
            acc[t][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(load256(dots[i][j][m])),
                                        _mm256_mul_ps(scales[j], d), acc[t][j]);
        }
      }
    }
    for (int t = 0; t < TT * amx_tile_tokens; ++t)
      for (int j = 0; j < GG; ++j) _mm256_storeu_ps(y + (t0 + t) * w.rows + r0 + 8 * j, acc[t][j]);
  }

  // Rows [row_begin, row_end) x the first `tokens` tokens (a multiple of 16).
  static void run(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end,
                  I64 tokens) {
    const I64 nb = w.cols / q8_block;
    thread_local std::vector<BTile> b_tiles;
    Tiles::configure(amx_tile_config);
    for (I64 r = row_begin; r < row_end; r += 16) {
      const bool two_groups = row_end - r >= 16;
      const int groups = two_groups ? 2 : 1;
      if constexpr (Levels::unpacks) {
        // Unpacked once per row pair, for every token tile.
        b_tiles.resize(static_cast<std::size_t>(nb * groups));
        const std::uint8_t* first = w.data + (r / 8) * nb * Levels::group_bytes;
        for (I64 b = 0; b < nb; ++b)
          for (int j = 0; j < groups; ++j)
            Levels::unpack(first + (j * nb + b) * Levels::group_bytes + 16,
                           b_tiles[static_cast<std::size_t>(b * groups + j)].bytes);
      }
      for (I64 t = 0; t < tokens; t += 2 * amx_tile_tokens) {
        const bool two_token_tiles = tokens - t >= 2 * amx_tile_tokens;
        if (two_token_tiles && two_groups) {
          tile<2, 2>(w, x, y, r, t, b_tiles.data());
        } else if (two_token_tiles) {
          tile<2, 1>(w, x, y, r, t, b_tiles.data());
        } else if (two_groups) {
          tile<1, 2>(w, x, y, r, t, b_tiles.data());
        } else {
          tile<1, 1>(w, x, y, r, t, b_tiles.data());
        }
      }
    }
    Tiles::release();
  }
};

// The row kernel: whole tiles of 16 tokens on AMX, the other tokens (all of them below 16) with the
// 8-row kernels of FallbackDot.
template <class Tiles, class Levels, class FallbackDot>
void amx_block32_entry(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end) {
  const I64 tiled = x.n_tokens / amx_tile_tokens * amx_tile_tokens;
  if (tiled > 0) AmxBlock32Kernel<Tiles, Levels>::run(w, x, y, row_begin, row_end, tiled);
  if (tiled == x.n_tokens) return;
  Activations rest;
  rest.format = x.format;
  rest.n_tokens = x.n_tokens - tiled;
  rest.q8 = x.q8 + tiled * (w.cols / q8_block);
  x8_entry<Block32X8Kernel<FallbackDot, typename Levels::X8Levels>>(w, rest, y + tiled * w.rows, row_begin,
                                                                    row_end);
}

// The row kernel of each 8-row layout: AMX for Q8_0_X8 and Q4_0_X8, FallbackDot's for the others.
template <class Tiles, class FallbackDot>
RowKernel amx_x8_kernel_of(WeightLayout layout) noexcept {
  switch (layout) {
    case WeightLayout::Q8_0_X8:
      return amx_block32_entry<Tiles, AmxQ8_0, FallbackDot>;
    case WeightLayout::Q4_0_X8:
      return amx_block32_entry<Tiles, AmxQ4_0, FallbackDot>;
    default:
      return x8_kernel_of<FallbackDot>(layout);
  }
}

}  // namespace

}  // namespace exo::inference::kernels
