// The kernels of the 8-row layouts on AMX tiles, for batches of tokens (prompts), written once for
// the native instructions (matmul_amx_x8.cpp) and for an emulation of them
// (matmul_amx_emulated_x8.cpp, which the tests run on any AVX2 CPU).
//
// Why the layouts fit: an X8 group block's 8 chunks of 32 bytes (Q8_0_X8), byte 4r + m of chunk k
// holding row r's level 4k + m, are exactly the "VNNI-packed" B operand of TDPBSSD for 8 rows and 32
// values (8 tile rows of 32 bytes, row k holding each weight row's levels 4k .. 4k + 3). Q4_0_X8's
// chunks, and each 32-value sub-block of Q4_K_X8, Q5_K_X8 and Q6_K_X8, unpack into that form with the
// 8-row kernels' own masks and shifts (once per pair of row groups, then reused by every token tile).
// The A operand is 16 tokens' activation levels, read straight from the activation blocks with a
// stride. One tile product gives the 16 x 8 integer dot products of a block (TDPBSSD: signed weights),
// a sub-block (TDPBSUD: unsigned k-quant levels) or, for Q6_K, the 16 values of one scale; they are
// stored and then scaled exactly as the 8-row kernels scale theirs (same integers, same float
// operations in the same order), so the AMX variants agree with AVX2 bit for bit.
//
// A kernel call works in tiles of 32 tokens x 16 rows (4 accumulator tiles), smaller at the edges;
// the tokens after the last whole 16 run through the 8-row kernels of the fallback Dot policy. Each
// call loads its tile configuration and releases the tiles at the end, so a compute thread holds no
// AMX state between calls.
//
// The `Tiles` policy names the tile instructions (tile numbers are template arguments):
//   Tiles::configure(config)            LDTILECFG
//   Tiles::release()                    TILERELEASE
//   Tiles::zero<T>()                    TILEZERO
//   Tiles::load<T>(base, stride)        TILELOADD: rows(T) rows of colsb(T) bytes, stride bytes apart
//   Tiles::store<T>(base, stride)       TILESTORED
//   Tiles::dpbssd<C, A, B>()            TDPBSSD: C[m][n] += sum over k, i < 4 of A[m][4k + i] * B[k][4n + i]
//                                       (signed bytes, 32-bit wrapping sums)
//   Tiles::dpbsud<C, A, B>()            TDPBSUD: the same with B's bytes unsigned
// Include only from kernel files compiled with at least -mavx2 -mfma -mf16c; internal linkage, as
// matmul_x8_kernels.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
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
// (16 tokens x 8 int32), activations A(i) = 4 + i (16 tokens x k_bytes levels), weights B(j) = 6 + j
// (k_bytes / 4 rows of 32 bytes: 4 levels of each of 8 rows per tile row). One tile product covers
// k_bytes values: 32 (a block or k-quant sub-block), or 16 (a Q6_K scale's values).
constexpr TileConfig amx_kernel_tile_config(int k_bytes) {
  TileConfig config;
  config.palette = 1;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = static_cast<std::uint8_t>(t < 6 ? 16 : k_bytes / 4);
    config.colsb[t] = static_cast<std::uint16_t>(t == 4 || t == 5 ? k_bytes : 32);
  }
  return config;
}
// In static storage, so the whole configuration is in memory when LDTILECFG reads it.
alignas(64) constexpr TileConfig amx_tile_config_32 = amx_kernel_tile_config(32);
alignas(64) constexpr TileConfig amx_tile_config_16 = amx_kernel_tile_config(16);

constexpr int amx_tile_tokens = 16;
constexpr int amx_b_tile_bytes = 256;

// One unpacked B tile. A type of this file's own, so the scratch vector's members have internal
// linkage too (std::vector<std::uint8_t>'s would be weak symbols compiled for this instruction set).
struct alignas(32) BTile {
  std::uint8_t bytes[amx_b_tile_bytes];
};

inline void store_b_tile(const __m256i (&levels)[8], BTile& tile) {
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile.bytes + 32 * k), levels[k]);
}

// The tile products of one step: dots[i][j] = A(i) . B(j) for token tiles i < TT (16 tokens'
// activation levels from `a`, rows `a_stride` bytes apart) and row groups j < GG (B tiles at b[j]);
// signed weights (TDPBSSD) or, with UnsignedB, unsigned ones (TDPBSUD).
template <class Tiles, bool UnsignedB, int TT, int GG>
void tile_products(const std::int8_t* a, std::size_t a_stride, const std::uint8_t* const (&b)[GG],
                   std::int32_t (&dots)[TT][GG][amx_tile_tokens][8]) {
  const auto multiply = [](auto c, auto a_tile, auto b_tile) {
    if constexpr (UnsignedB) {
      Tiles::template dpbsud<decltype(c)::value, decltype(a_tile)::value, decltype(b_tile)::value>();
    } else {
      Tiles::template dpbssd<decltype(c)::value, decltype(a_tile)::value, decltype(b_tile)::value>();
    }
  };
  using C0 = std::integral_constant<int, 0>;
  using C1 = std::integral_constant<int, 1>;
  using C2 = std::integral_constant<int, 2>;
  using C3 = std::integral_constant<int, 3>;
  using A0 = std::integral_constant<int, 4>;
  using A1 = std::integral_constant<int, 5>;
  using B0 = std::integral_constant<int, 6>;
  using B1 = std::integral_constant<int, 7>;
  Tiles::template zero<0>();
  Tiles::template load<4>(a, a_stride);
  Tiles::template load<6>(b[0], 32);
  multiply(C0{}, A0{}, B0{});
  if constexpr (GG == 2) {
    Tiles::template zero<1>();
    Tiles::template load<7>(b[GG - 1], 32);
    multiply(C1{}, A0{}, B1{});
  }
  if constexpr (TT == 2) {
    Tiles::template zero<2>();
    Tiles::template load<5>(a + amx_tile_tokens * a_stride, a_stride);
    multiply(C2{}, A1{}, B0{});
    if constexpr (GG == 2) {
      Tiles::template zero<3>();
      multiply(C3{}, A1{}, B1{});
    }
  }
  Tiles::template store<0>(dots[0][0], 32);
  if constexpr (GG == 2) Tiles::template store<1>(dots[0][GG - 1], 32);
  if constexpr (TT == 2) {
    Tiles::template store<2>(dots[TT - 1][0], 32);
    if constexpr (GG == 2) Tiles::template store<3>(dots[TT - 1][GG - 1], 32);
  }
}

// The B tiles of a pair of row groups (or one group), unpacked once for every token tile: block b
// (BlockValues values, GroupBytes bytes per group), sub-block s < SubBlocks, group j at
// (b * SubBlocks + s) * groups + j. levels_of(group block, s, levels) gives a sub-block's level vectors.
template <int GroupBytes, int BlockValues, int SubBlocks, class LevelsOf>
void unpack_b_tiles(const WeightMatrix& w, I64 r0, int groups, std::vector<BTile>& b_tiles,
                    LevelsOf levels_of) {
  const I64 nb = w.cols / BlockValues;
  b_tiles.resize(static_cast<std::size_t>(nb * SubBlocks * groups));
  for (I64 b = 0; b < nb; ++b) {
    for (int sub = 0; sub < SubBlocks; ++sub) {
      for (int j = 0; j < groups; ++j) {
        __m256i levels[8];
        levels_of(group_block(w, r0 + 8 * j, nb, GroupBytes, b), sub, levels);
        store_b_tile(levels, b_tiles[static_cast<std::size_t>((b * SubBlocks + sub) * groups + j)]);
      }
    }
  }
}

// The float results of a tile: TT * 16 tokens x GG groups of 8 rows, accumulated over the blocks.
template <int TT, int GG>
struct FloatTile {
  __m256 acc[TT * amx_tile_tokens][GG];

  FloatTile() {
    for (auto& token : acc)
      for (__m256& lanes : token) lanes = _mm256_setzero_ps();
  }
  void store(const WeightMatrix& w, float* y, I64 r0, I64 t0) const {
    for (int t = 0; t < TT * amx_tile_tokens; ++t)
      for (int j = 0; j < GG; ++j) _mm256_storeu_ps(y + (t0 + t) * w.rows + r0 + 8 * j, acc[t][j]);
  }
};

// Q8_0_X8 (Q4_0 = false: the chunks are the B tiles as they are) and Q4_0_X8 (Q4_0 = true: each
// chunk's low and high nibbles are two B tile rows, unpacked once per row pair, the zero point 8 taken
// off there so TDPBSSD gives Block32X8Kernel's dot - 8 * sum directly). The float step per block is
// Block32X8Kernel's: acc += float(dot) * (row scales * token scale).
template <class Tiles, bool Q4_0>
struct AmxBlock32 {
  using X8Levels = std::conditional_t<Q4_0, Q4_0X8Levels, Q8_0X8Levels>;
  static constexpr int group_bytes = X8Levels::group_bytes;
  static constexpr const TileConfig* tile_config = &amx_tile_config_32;

  // B tile of block b, group j at b * groups + j.
  static void unpack(const WeightMatrix& w, I64 r0, int groups, std::vector<BTile>& b_tiles) {
    if constexpr (Q4_0) {
      unpack_b_tiles<group_bytes, q8_block, 1>(
          w, r0, groups, b_tiles, [](const std::uint8_t* block, int /*sub*/, __m256i(&levels)[8]) {
            unpack_levels(block + 16, levels);
            for (__m256i& v : levels) v = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
          });
    }
  }

  template <int TT, int GG>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0,
                   const BTile* b_tiles) {
    const I64 nb = w.cols / q8_block;
    const std::size_t a_stride = static_cast<std::size_t>(nb) * sizeof(ActQ8);
    FloatTile<TT, GG> out;
    alignas(64) std::int32_t dots[TT][GG][amx_tile_tokens][8];
    for (I64 b = 0; b < nb; ++b) {
      __m256 scales[GG];
      const std::uint8_t* b_tile[GG];
      for (int j = 0; j < GG; ++j) {
        const std::uint8_t* block = group_block(w, r0 + 8 * j, nb, group_bytes, b);
        scales[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
        b_tile[j] = Q4_0 ? b_tiles[b * GG + j].bytes : block + 16;
      }
      const ActQ8* first = x.q8 + t0 * nb + b;
      tile_products<Tiles, false, TT, GG>(first->qs, a_stride, b_tile, dots);
      for (int t = 0; t < TT * amx_tile_tokens; ++t) {
        const __m256 d = _mm256_set1_ps(first[t * nb].d);
#pragma GCC unroll 2
        for (int j = 0; j < GG; ++j) {
          const __m256i dot = load256(dots[t / amx_tile_tokens][j][t % amx_tile_tokens]);
          out.acc[t][j] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(scales[j], d), out.acc[t][j]);
        }
      }
    }
    out.store(w, y, r0, t0);
  }
};

// How AmxKQuant reads one k-quant layout (Format):
//   X8                                   the layout's 8-row kernel (the fallback)
//   products                             tile products per 32-value sub-block (1, or 2 of 16 values)
//   levels(group block, s, levels)       sub-block s's level vectors, as the 8-row kernel unpacks them
//   BlockScales, scales(group block)     a super-block's scales of 8 rows, unpacked once
//   scale(scales, s, p)                  the rows' scales (32-bit lanes) of product p of sub-block s
//   finish(acc, scaled, group block, scales, activation)
//                                        the 8-row kernel's float step of a super-block for one token
//
// Q4_K_X8 (Bits 4) and Q5_K_X8 (Bits 5): one product per sub-block, 6-bit scales, the mins term.
template <class Dot, int Bits>
struct AmxQ45KFormat {
  using X8 = KQuantX8Kernel<Dot, Bits>;
  static_assert(Dot::scales_in_32_bit_lanes, "the AMX step multiplies int32 dots by the scales");
  static constexpr int products = 1;
  static void levels(const std::uint8_t* block, int sub, __m256i (&levels)[8]) {
    X8::sub_block_levels(block + 128 + X8::sub_block_bytes * sub, levels);
  }
  using BlockScales = typename X8::Scales;
  static BlockScales scales(const std::uint8_t* block) { return X8::unpack_scales(block); }
  static __m256i scale(const BlockScales& s, int sub, int /*product*/) { return s.scale[sub]; }
  static __m256 finish(__m256 acc, __m256i scaled, const std::uint8_t* block, const BlockScales& s,
                       const ActQ8K& a) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16)));
    const __m256 a_d = _mm256_set1_ps(a.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(scaled), _mm256_mul_ps(d, a_d), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(X8::min_sum(s, a)), _mm256_mul_ps(dmin, a_d), acc);
  }
};

// Q6_K_X8: two products of 16 values per sub-block (a scale each), signed scales, the zero point 32.
template <class Dot>
struct AmxQ6KFormat {
  using X8 = Q6KX8Kernel<Dot>;
  static_assert(Dot::scales_in_32_bit_lanes, "the AMX step multiplies int32 dots by the scales");
  static constexpr int products = 2;
  static void levels(const std::uint8_t* block, int sub, __m256i (&levels)[8]) {
    X8::sub_block_levels(block + 144 + 192 * sub, levels);
  }
  struct BlockScales {
    typename Dot::Scale scale[16];
  };
  static BlockScales scales(const std::uint8_t* block) {
    BlockScales s;
    X8::unpack_scales(block + 16, s.scale);
    return s;
  }
  static __m256i scale(const BlockScales& s, int sub, int product) { return s.scale[2 * sub + product]; }
  static __m256 finish(__m256 acc, __m256i scaled, const std::uint8_t* block, const BlockScales& /*s*/,
                       const ActQ8K& a) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
    const __m256i integer = _mm256_sub_epi32(scaled, _mm256_slli_epi32(X8::offset(block + 16, a), 5));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(integer), _mm256_mul_ps(d, _mm256_set1_ps(a.d)), acc);
  }
};

// The k-quants (Q4_K_X8, Q5_K_X8, Q6_K_X8): each super-block's 8 sub-blocks are B tiles of unsigned
// levels, unpacked once per row pair (TDPBSUD; a Q6_K sub-block's BTile holds two 4-row tiles of 16
// values, in bytes 0-127 and 128-255, for the K = 16 configuration). Per product the integer dots
// are multiplied by the rows' scales and summed; per super-block the float step is the 8-row
// kernel's (through a VNNI Dot, whose scales are 32-bit lanes), so the integers and the float
// operations are the same.
template <class Tiles, class Format>
struct AmxKQuant {
  using X8 = typename Format::X8;
  static constexpr int group_bytes = X8::group_bytes;
  static constexpr int product_values = q8_block / Format::products;
  static constexpr const TileConfig* tile_config =
      Format::products == 1 ? &amx_tile_config_32 : &amx_tile_config_16;

  // Super-block b, sub-block s, group j at (b * 8 + s) * groups + j.
  static void unpack(const WeightMatrix& w, I64 r0, int groups, std::vector<BTile>& b_tiles) {
    unpack_b_tiles<group_bytes, q8k_block, 8>(w, r0, groups, b_tiles, Format::levels);
  }

  template <int TT, int GG>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0,
                   const BTile* b_tiles) {
    const I64 nb = w.cols / q8k_block;
    const std::size_t a_stride = static_cast<std::size_t>(nb) * sizeof(ActQ8K);
    FloatTile<TT, GG> out;
    alignas(64) std::int32_t dots[TT][GG][amx_tile_tokens][8];
    __m256i scaled[TT * amx_tile_tokens][GG];
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* block[GG];
      typename Format::BlockScales scales[GG];
      for (int j = 0; j < GG; ++j) {
        block[j] = group_block(w, r0 + 8 * j, nb, group_bytes, b);
        scales[j] = Format::scales(block[j]);
      }
      for (auto& token : scaled)
        for (__m256i& lanes : token) lanes = _mm256_setzero_si256();
      const ActQ8K* first = x.q8k + t0 * nb + b;
      for (int sub = 0; sub < 8; ++sub) {
        for (int p = 0; p < Format::products; ++p) {
          const std::uint8_t* b_tile[GG];
          __m256i scale[GG];
          for (int j = 0; j < GG; ++j) {
            b_tile[j] = b_tiles[(b * 8 + sub) * GG + j].bytes + 8 * product_values * p;
            scale[j] = Format::scale(scales[j], sub, p);
          }
          tile_products<Tiles, true, TT, GG>(first->qs + 32 * sub + product_values * p, a_stride, b_tile,
                                             dots);
          for (int t = 0; t < TT * amx_tile_tokens; ++t) {
#pragma GCC unroll 2
            for (int j = 0; j < GG; ++j) {
              const __m256i dot = load256(dots[t / amx_tile_tokens][j][t % amx_tile_tokens]);
              scaled[t][j] = _mm256_add_epi32(scaled[t][j], _mm256_mullo_epi32(dot, scale[j]));
            }
          }
        }
      }
      for (int j = 0; j < GG; ++j)
        for (int t = 0; t < TT * amx_tile_tokens; ++t)
          out.acc[t][j] = Format::finish(out.acc[t][j], scaled[t][j], block[j], scales[j], first[t * nb]);
    }
    out.store(w, y, r0, t0);
  }
};

// Rows [row_begin, row_end) x the first `tokens` tokens (a multiple of 16), in tiles of 32 tokens x
// 16 rows, smaller at the edges. Weights that need unpacking are unpacked once per row pair.
template <class Tiles, class Kernel>
void amx_run(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end, I64 tokens) {
  thread_local std::vector<BTile> b_tiles;
  Tiles::configure(*Kernel::tile_config);
  for (I64 r = row_begin; r < row_end; r += 16) {
    const bool two_groups = row_end - r >= 16;
    Kernel::unpack(w, r, two_groups ? 2 : 1, b_tiles);
    for (I64 t = 0; t < tokens; t += 2 * amx_tile_tokens) {
      const bool two_token_tiles = tokens - t >= 2 * amx_tile_tokens;
      if (two_token_tiles && two_groups) {
        Kernel::template tile<2, 2>(w, x, y, r, t, b_tiles.data());
      } else if (two_token_tiles) {
        Kernel::template tile<2, 1>(w, x, y, r, t, b_tiles.data());
      } else if (two_groups) {
        Kernel::template tile<1, 2>(w, x, y, r, t, b_tiles.data());
      } else {
        Kernel::template tile<1, 1>(w, x, y, r, t, b_tiles.data());
      }
    }
  }
  Tiles::release();
}

// The row kernel: whole tiles of 16 tokens on AMX, the other tokens (all of them below 16) with the
// 8-row kernel `Fallback`.
template <class Tiles, class Kernel, class Fallback>
void amx_entry(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end) {
  const I64 tiled = x.n_tokens / amx_tile_tokens * amx_tile_tokens;
  if (tiled > 0) amx_run<Tiles, Kernel>(w, x, y, row_begin, row_end, tiled);
  if (tiled == x.n_tokens) return;
  Activations rest;
  rest.format = x.format;
  rest.n_tokens = x.n_tokens - tiled;
  if (x.q8 != nullptr) rest.q8 = x.q8 + tiled * (w.cols / q8_block);
  if (x.q8k != nullptr) rest.q8k = x.q8k + tiled * (w.cols / q8k_block);
  x8_entry<Fallback>(w, rest, y + tiled * w.rows, row_begin, row_end);
}

// The row kernel of each 8-row layout: AMX tiles for prompt batches, the 8-row kernels of
// VnniFallbackDot for the rest.
template <class Tiles, class VnniFallbackDot>
RowKernel amx_x8_kernel_of(WeightLayout layout) noexcept {
  switch (layout) {
    case WeightLayout::Q8_0_X8:
      return amx_entry<Tiles, AmxBlock32<Tiles, false>, Block32X8Kernel<VnniFallbackDot, Q8_0X8Levels>>;
    case WeightLayout::Q4_0_X8:
      return amx_entry<Tiles, AmxBlock32<Tiles, true>, Block32X8Kernel<VnniFallbackDot, Q4_0X8Levels>>;
    case WeightLayout::Q4_K_X8:
      return amx_entry<Tiles, AmxKQuant<Tiles, AmxQ45KFormat<VnniFallbackDot, 4>>,
                       KQuantX8Kernel<VnniFallbackDot, 4>>;
    case WeightLayout::Q5_K_X8:
      return amx_entry<Tiles, AmxKQuant<Tiles, AmxQ45KFormat<VnniFallbackDot, 5>>,
                       KQuantX8Kernel<VnniFallbackDot, 5>>;
    case WeightLayout::Q6_K_X8:
      return amx_entry<Tiles, AmxKQuant<Tiles, AmxQ6KFormat<VnniFallbackDot>>, Q6KX8Kernel<VnniFallbackDot>>;
    case WeightLayout::ROWS:
      break;
  }
  return nullptr;
}

}  // namespace

}  // namespace exo::inference::kernels
