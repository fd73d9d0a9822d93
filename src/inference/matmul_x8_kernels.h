// The kernels of the 8-row layouts (Q4_0_X8, Q8_0_X8, Q4_K_X8, Q5_K_X8, Q6_K_X8; matmul.h), written once for
// every x86 variant that has them. Each tile is 8 rows x NT tokens: the 8 rows' dot products are the 8
// lanes of one vector, so there are no horizontal sums. The byte products come from a `Dot` policy:
//
//   Dot::Scale                       8 rows' sub-block scales in the form scaled_dots takes
//   Dot::unsigned_scales(v)          from the 8 unsigned bytes in v's low half (Q4_K, Q5_K)
//   Dot::signed_scales(v)            from the 8 signed bytes in v's low half (Q6_K)
//   Dot::dots<N>(levels, qs)         sum over k < N of the products of levels[k] (4 unsigned levels of
//                                    each row per 32-bit lane) with the 4 activation levels at
//                                    qs + 4k; one int32 per row
//   Dot::scaled_dots<N>(l, qs, s)    the same times the rows' scales
//   Dot::high_nibbles_in_place       whether unpack_nibbles leaves the high nibbles as 16 x level
//   Dot::nibble_dots(l, qs)          dots<8> of the 8 vectors unpack_nibbles<Dot> gives (levels of
//                                    the low and high nibbles in turn)
//   Dot::scaled_nibble_dots(l, qs, s)  the same times the rows' scales
//   Dot::signed_levels(v)            a chunk of signed levels (Q8_0), prepared once per tile
//   Dot::add_signed_dots(acc, l, qs) acc + the prepared chunk's products with the 4 levels at qs
//   Dot::finish_signed(acc, sum)     the signed dots, given the sum of the block's activation levels
//
// Callers keep each call's 16-bit partial sums in range (noted at each call), so every policy
// computes the same integers and the float arithmetic is shared: all variants give bit-identical
// results. Include only from kernel files compiled with at least -mavx2 -mfma -mf16c, and call their
// kernels only after matmul.cpp's CPU check. Everything here has internal linkage, so files compiled
// for different instruction sets never share (and the linker never mixes) a copy.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "inference/matmul_avx2_helpers.h"
#include "inference/matmul_kernels.h"

namespace exo::inference::kernels {

namespace {  // NOLINT(cert-dcl59-cpp,google-build-namespaces): one copy per instruction set, see above

using namespace avx2;  // the shared helpers (matmul_avx2_helpers.h)

// An activation block's levels as the bytes the broadcasts read.
inline const std::uint8_t* activation_bytes(const std::int8_t* qs) {
  return reinterpret_cast<const std::uint8_t*>(qs);
}

// The first group block of the 8-row group at row r0 and the step between its blocks (x8_group_run).
inline const std::uint8_t* group_blocks(const WeightMatrix& w, I64 r0, I64 nb, I64 group_bytes, I64& step) {
  const X8GroupRun run = x8_group_run(w.rows / 8, nb, group_bytes, r0 / 8);
  step = run.step;
  return w.data + run.first;
}

// Block b of the 8-row group at row r.
inline const std::uint8_t* group_block(const WeightMatrix& w, I64 r, I64 nb, I64 group_bytes, I64 b) {
  const X8GroupRun run = x8_group_run(w.rows / 8, nb, group_bytes, r / 8);
  return w.data + run.first + b * run.step;
}

// The broadcast of the 4 activation levels at `at` to every 32-bit lane.
inline __m256i broadcast4(const std::uint8_t* at) {
  return _mm256_set1_epi32(static_cast<int>(u32(at)));
}

// A 128-byte level block of an X8 layout (one Q4_0 block or one Q4_K sub-block of 8 rows): the 8
// vectors of 4 consecutive levels of each row, in value order.
inline void unpack_levels(const std::uint8_t* at, __m256i (&levels)[8]) {
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m256i packed = load256(at + 32 * c);
    levels[2 * c] = _mm256_and_si256(packed, low_mask);
    levels[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
  }
}

// The same 128 bytes for a `Dot` that takes the high nibbles in place (Dot::high_nibbles_in_place):
// levels[2c + 1] then holds 16 x the levels, the bytes ANDed with 0xF0. Dot::nibble_dots and
// Dot::scaled_nibble_dots multiply the vectors this gives.
template <class Dot>
inline void unpack_nibbles(const std::uint8_t* at, __m256i (&levels)[8]) {
  if constexpr (Dot::high_nibbles_in_place) {
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i high_mask = _mm256_set1_epi8(static_cast<char>(0xF0));
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      levels[2 * c] = _mm256_and_si256(load256(at + 32 * c), low_mask);
      levels[2 * c + 1] = _mm256_and_si256(load256(at + 32 * c), high_mask);
    }
  } else {
    unpack_levels(at, levels);
  }
}

// Q5_K_X8: ORs the fifth bits (32 bytes at `at`; bit k of byte i belongs to byte i of levels[k]) into
// the 8 level vectors as 16. A 16-bit shift moves bit k of each byte to bit 4 of the same byte.
inline void add_fifth_bits(const std::uint8_t* at, __m256i (&levels)[8]) {
  const __m256i bits = load256(at);
  const __m256i bit_4 = _mm256_set1_epi8(0x10);
  levels[0] = _mm256_or_si256(levels[0], _mm256_and_si256(_mm256_slli_epi16(bits, 4), bit_4));
  levels[1] = _mm256_or_si256(levels[1], _mm256_and_si256(_mm256_slli_epi16(bits, 3), bit_4));
  levels[2] = _mm256_or_si256(levels[2], _mm256_and_si256(_mm256_slli_epi16(bits, 2), bit_4));
  levels[3] = _mm256_or_si256(levels[3], _mm256_and_si256(_mm256_slli_epi16(bits, 1), bit_4));
  levels[4] = _mm256_or_si256(levels[4], _mm256_and_si256(bits, bit_4));
  levels[5] = _mm256_or_si256(levels[5], _mm256_and_si256(_mm256_srli_epi16(bits, 1), bit_4));
  levels[6] = _mm256_or_si256(levels[6], _mm256_and_si256(_mm256_srli_epi16(bits, 2), bit_4));
  levels[7] = _mm256_or_si256(levels[7], _mm256_and_si256(_mm256_srli_epi16(bits, 3), bit_4));
}

// The row kernel of an 8-row layout: each group of 8 rows in tiles of 4 tokens, then the rest. A
// kernel `K` with `K::matvec_pairs` has tile<1, 2>, one token's products over both groups of a pair
// (x8_group_run), for matrix-vector products.
template <class K>
void x8_entry(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end) {
  constexpr bool matvec_pairs = requires {
    requires K::matvec_pairs;
  };
  for (I64 r = row_begin; r < row_end; r += 8) {
    if constexpr (matvec_pairs) {
      if (x.n_tokens == 1 && r % 16 == 0 && r + 16 <= row_end) {
        K::template tile<1, 2>(w, x, y, r, 0);
        r += 8;
        continue;
      }
    }
    I64 t = 0;
    for (; t + 4 <= x.n_tokens; t += 4) K::template tile<4>(w, x, y, r, t);
    switch (x.n_tokens - t) {
      case 3:
        K::template tile<3>(w, x, y, r, t);
        break;
      case 2:
        K::template tile<2>(w, x, y, r, t);
        break;
      case 1:
        K::template tile<1>(w, x, y, r, t);
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The 32-value layouts (Q4_0_X8, Q8_0_X8): 8 rows x NT tokens per tile. Per block, the rows' 8 f16
// scales, then the levels; `Levels` gives the 8 rows' integer dot products with each token's
// activation block as the 8 lanes of one vector, so there are no horizontal sums and the rows'
// scales load as one vector.
template <class Dot, class Levels>
struct Block32X8Kernel {
  // tile<NT, 2> multiplies both groups of a pair (rows r0 .. r0 + 15, r0 a multiple of 16), whose
  // blocks alternate in memory: the two groups share each token's broadcast activation levels.
  static constexpr bool matvec_pairs = true;

  template <int NT, int G = 1>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    static_assert(G == 1 || G == 2);
    const I64 nb = w.cols / q8_block;
    I64 step = 0;
    const std::uint8_t* group = group_blocks(w, r0, nb, Levels::group_bytes, step);
    __m256 acc[G][NT];
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) acc[g][t] = _mm256_setzero_ps();
    }
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* blocks[G];
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g) blocks[g] = group + b * step + g * Levels::group_bytes;
#pragma GCC unroll 5
      for (int line = 0; line < G * Levels::group_bytes; line += 64) prefetch(blocks[0] + line);
      const ActQ8* xs[NT];
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) xs[t] = x.q8 + (t0 + t) * nb + b;
      __m256i dots[G][NT];
      Levels::template dots<Dot, NT, G>(blocks, xs, dots);
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g) {
        const __m256 scales = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[g])));
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
          acc[g][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[g][t]),
                                      _mm256_mul_ps(scales, _mm256_set1_ps(xs[t]->d)), acc[g][t]);
      }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (t0 + t) * w.rows + r0 + 8 * g, acc[g][t]);
    }
  }
};

// Q4_0_X8 levels: the 4 chunks give 8 vectors of 4 consecutive levels of each row (unpack_nibbles);
// each is multiplied with the matching 4 activation levels broadcast to all lanes
// (Dot::nibble_dots); the zero point 8 comes off as 8 * sum(activation levels).
struct Q4_0X8Levels {
  static constexpr int group_bytes = q4_0_x8_group_bytes;
  template <class Dot, int NT, int G>
  static void dots(const std::uint8_t* const (&blocks)[G], const ActQ8* const (&xs)[NT],
                   __m256i (&out)[G][NT]) {
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
      __m256i levels[8];
      unpack_nibbles<Dot>(blocks[g] + 16, levels);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t)
        out[g][t] = _mm256_sub_epi32(Dot::nibble_dots(levels, activation_bytes(xs[t]->qs)),
                                     _mm256_set1_epi32(8 * xs[t]->sum));
    }
  }
};

// Q8_0_X8 levels: each of the 8 chunks holds 4 consecutive signed levels of each row, prepared
// once per tile (Dot::signed_levels) and multiplied with each token's broadcast activation levels
// (Dot::add_signed_dots); Dot::finish_signed removes what the preparation added.
struct Q8_0X8Levels {
  static constexpr int group_bytes = q8_0_x8_group_bytes;
  template <class Dot, int NT, int G>
  static void dots(const std::uint8_t* const (&blocks)[G], const ActQ8* const (&xs)[NT],
                   __m256i (&out)[G][NT]) {
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) out[g][t] = _mm256_setzero_si256();
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g) {
        const auto levels = Dot::signed_levels(load256(blocks[g] + 16 + 32 * k));
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
          out[g][t] = Dot::add_signed_dots(out[g][t], levels, activation_bytes(xs[t]->qs) + 4 * k);
      }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) out[g][t] = Dot::finish_signed(out[g][t], xs[t]->sum);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Q4_K in the Q4_K_X8 layout (Bits 4) and Q5_K in the Q5_K_X8 layout (Bits 5) (matmul.h): 8 rows x NT
// tokens per tile. Per super-block, the 64
// scales and 64 mins of the 8 rows are unpacked once with a few vector operations. Each sub-block's
// 128 bytes of levels are a Q4_0_X8 block's: 8 products of a broadcast group of 4 activation levels,
// multiplied by the rows' scales (Dot::scaled_nibble_dots; |sum| <= 8 * 2 * 15 * 128 before scaling, as the
// AVX2 policy's 16-bit sums need). Q5_K ORs each level vector's fifth bits in (bit k of the 32 bytes
// after the low bits, moved to bit 4) and, with levels to 31, scales two halves of 4 products
// (4 * 2 * 31 * 128 each). The mins term, sum over sub-blocks of
// min * (sum of the sub-block's activations), is 4 multiply-adds of interleaved min pairs with
// broadcast pairs of activation sums.
template <class Dot, int Bits>
struct KQuantX8Kernel {
  static_assert(Bits == 4 || Bits == 5);
  static constexpr int sub_block_bytes = Bits == 4 ? 128 : 160;
  static constexpr int group_bytes = Bits == 4 ? q4_k_x8_group_bytes : q5_k_x8_group_bytes;

  // Per super-block: the 8 rows' scales of sub-block j (in Dot's form) and the interleaved min
  // pairs (2p, 2p + 1).
  struct Scales {
    typename Dot::Scale scale[8];
    __m256i min_pairs[4];
  };

  static Scales unpack_scales(const std::uint8_t* block) {
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i high_mask = _mm256_set1_epi8(0x30);
    const __m256i scale_low = load256(block + 32);
    const __m256i min_low = load256(block + 64);
    const __m256i high = load256(block + 96);
    // Bytes in index order 8 * j + r: `first` holds sub-blocks 0-3, `second` 4-7.
    const __m256i scales_first = _mm256_or_si256(_mm256_and_si256(scale_low, low_mask),
                                                 _mm256_and_si256(_mm256_slli_epi16(high, 4), high_mask));
    const __m256i scales_second = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(scale_low, 4), low_mask),
                                                  _mm256_and_si256(_mm256_slli_epi16(high, 2), high_mask));
    const __m256i mins_first =
        _mm256_or_si256(_mm256_and_si256(min_low, low_mask), _mm256_and_si256(high, high_mask));
    const __m256i mins_second = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(min_low, 4), low_mask),
                                                _mm256_and_si256(_mm256_srli_epi16(high, 2), high_mask));
    const __m128i interleave = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    Scales s;
    const __m128i scale_lanes[4] = {
        _mm256_castsi256_si128(scales_first), _mm256_extracti128_si256(scales_first, 1),
        _mm256_castsi256_si128(scales_second), _mm256_extracti128_si256(scales_second, 1)};
    const __m128i min_lanes[4] = {_mm256_castsi256_si128(mins_first), _mm256_extracti128_si256(mins_first, 1),
                                  _mm256_castsi256_si128(mins_second),
                                  _mm256_extracti128_si256(mins_second, 1)};
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      s.scale[2 * p] = Dot::unsigned_scales(scale_lanes[p]);
      s.scale[2 * p + 1] = Dot::unsigned_scales(_mm_unpackhi_epi64(scale_lanes[p], scale_lanes[p]));
      s.min_pairs[p] = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(min_lanes[p], interleave));
    }
    return s;
  }

  // The mins term of one super-block for one token: per row, sum over sub-blocks of min * (sum of
  // the sub-block's activation levels).
  static __m256i min_sum(const Scales& s, const ActQ8K& a) {
    // The sums of the activations over sub-blocks 2p and 2p + 1 (|sum| <= 32 * 128), side by side
    // in 32 bits: after the pack, 32-bit elements 0, 1, 4 and 5 hold pairs 0 to 3.
    const __m256i sub_block_sums = _mm256_madd_epi16(load256(a.bsums), _mm256_set1_epi16(1));
    const __m256i pairs = _mm256_packs_epi32(sub_block_sums, sub_block_sums);
    __m256i m = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      const __m256i pair = _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(p < 2 ? p : p + 2));
      m = _mm256_add_epi32(m, _mm256_madd_epi16(s.min_pairs[p], pair));
    }
    return m;
  }

  // The level vectors of sub-block j (at `levels_at`): 4 (Q4_K) or 5 (Q5_K) bits, unsigned.
  static void sub_block_levels(const std::uint8_t* levels_at, __m256i (&levels)[8]) {
    unpack_levels(levels_at, levels);
    if constexpr (Bits == 5) add_fifth_bits(levels_at + 128, levels);
  }

  template <int NT>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    const I64 nb = w.cols / q8k_block;
    I64 step = 0;
    const std::uint8_t* group = group_blocks(w, r0, nb, group_bytes, step);
    __m256 acc[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* block = group + b * step;
      prefetch(block);
      prefetch(block + 64);
      const Scales s = unpack_scales(block);
      __m256i dots[NT];
      __m256i min_sums[NT];
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        dots[t] = _mm256_setzero_si256();
        min_sums[t] = min_sum(s, x.q8k[(t0 + t) * nb + b]);
      }
      for (int j = 0; j < 8; ++j) {
        const std::uint8_t* levels_at = block + 128 + sub_block_bytes * j;
        for (I64 line = 0; line < sub_block_bytes; line += 64) prefetch(levels_at + line);
        __m256i levels[8];
        if constexpr (Bits == 4) {
          unpack_nibbles<Dot>(levels_at, levels);
        } else {
          sub_block_levels(levels_at, levels);
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
          const std::uint8_t* qs = activation_bytes(x.q8k[(t0 + t) * nb + b].qs) + 32 * j;
          if constexpr (Bits == 4) {
            dots[t] = _mm256_add_epi32(dots[t], Dot::scaled_nibble_dots(levels, qs, s.scale[j]));
          } else {
            dots[t] = _mm256_add_epi32(dots[t], Dot::template scaled_dots<4>(levels, qs, s.scale[j]));
            dots[t] =
                _mm256_add_epi32(dots[t], Dot::template scaled_dots<4>(levels + 4, qs + 16, s.scale[j]));
          }
        }
      }
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
      const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16)));
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m256 a_d = _mm256_set1_ps(x.q8k[(t0 + t) * nb + b].d);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[t]), _mm256_mul_ps(d, a_d), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(min_sums[t]), _mm256_mul_ps(dmin, a_d), acc[t]);
      }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (t0 + t) * w.rows + r0, acc[t]);
  }
};

// ---------------------------------------------------------------------------------------------
// Q6_K in the Q6_K_X8 layout (matmul.h): 8 rows x NT tokens per tile. Per super-block the rows' 16
// int8 scales are widened once (in Dot's form, and as interleaved 16-bit pairs for the offset term).
// Per 32-value sub-block the 8 level vectors come from 6 loads: a mask each for 6 of them, three
// shifts, masks and two ORs for the other 2. Levels are 0..63; each 8 values' two products of a
// broadcast group of 4 activation levels (at most 2 * 2 * 63 * 128) are multiplied by the 16-value
// sub-block's scales (Dot::scaled_dots). The zero point 32 comes off as
// 32 * sum_j scale_j * (sum of sub-block j's activations), from the activation's bsums.
template <class Dot>
struct Q6KX8Kernel {
  static constexpr int group_bytes = q6_k_x8_group_bytes;

  // The 8 rows' 16 sub-block scales of a super-block (at `scale_bytes`), in Dot's form.
  static void unpack_scales(const std::uint8_t* scale_bytes, typename Dot::Scale (&scale)[16]) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)
      scale[j] = Dot::signed_scales(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scale_bytes + 8 * j)));
  }

  // sum_j scale_j * bsum_j for one token, two sub-blocks per multiply-add (|sum| <= 16 * 128 * 16 * 128);
  // the zero point's term is 32 times it.
  static __m256i offset(const std::uint8_t* scale_bytes, const ActQ8K& a) {
    const __m128i interleave = _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      const __m256i pairs = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(scale_bytes + 16 * p)), interleave));
      std::int32_t bsum_pair = 0;
      std::memcpy(&bsum_pair, a.bsums + 2 * p, sizeof bsum_pair);
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, _mm256_set1_epi32(bsum_pair)));
    }
    return sum;
  }

  // The 8 level vectors (0..63) of the 32-value sub-block at `levels_at`: levels[4h + k] holds levels
  // 16h + 4k .. 16h + 4k + 3 of each row.
  static void sub_block_levels(const std::uint8_t* levels_at, __m256i (&levels)[8]) {
    const __m256i six_bits = _mm256_set1_epi8(0x3F);
    const __m256i bits_0_1 = _mm256_set1_epi8(0x03);
    const __m256i bits_2_3 = _mm256_set1_epi8(0x0C);
    const __m256i bits_4_5 = _mm256_set1_epi8(0x30);
#pragma GCC unroll 2
    for (int run = 0; run < 2; ++run) {
      const __m256i v0 = load256(levels_at + 96 * run);
      const __m256i v1 = load256(levels_at + 96 * run + 32);
      const __m256i v2 = load256(levels_at + 96 * run + 64);
      levels[4 * run] = _mm256_and_si256(v0, six_bits);
      levels[4 * run + 1] = _mm256_and_si256(v1, six_bits);
      levels[4 * run + 2] = _mm256_and_si256(v2, six_bits);
      levels[4 * run + 3] =
          _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 6), bits_0_1),
                                          _mm256_and_si256(_mm256_srli_epi16(v1, 4), bits_2_3)),
                          _mm256_and_si256(_mm256_srli_epi16(v2, 2), bits_4_5));
    }
  }

  template <int NT>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    const I64 nb = w.cols / q8k_block;
    I64 step = 0;
    const std::uint8_t* group = group_blocks(w, r0, nb, q6_k_x8_group_bytes, step);
    __m256 acc[NT];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* block = group + b * step;
      const std::uint8_t* scale_bytes = block + 16;
      prefetch(block);
      prefetch(block + 64);
      prefetch(block + 128);
      typename Dot::Scale scale[16];
      unpack_scales(scale_bytes, scale);
      const ActQ8K* xs[NT];
      __m256i dots[NT];
      __m256i offsets[NT];
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        xs[t] = x.q8k + (t0 + t) * nb + b;
        dots[t] = _mm256_setzero_si256();
        offsets[t] = offset(scale_bytes, *xs[t]);
      }
      for (int sub = 0; sub < 8; ++sub) {
        const std::uint8_t* levels_at = block + 144 + 192 * sub;
        for (I64 line = 64; line < 256; line += 64) prefetch(levels_at + line);
        __m256i levels[8];
        sub_block_levels(levels_at, levels);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
          const std::uint8_t* qs = activation_bytes(xs[t]->qs) + 32 * sub;
#pragma GCC unroll 4
          for (int half = 0; half < 4; ++half)  // values 8 * half .. + 7: half of a 16-value sub-block
            dots[t] = _mm256_add_epi32(dots[t], Dot::template scaled_dots<2>(levels + 2 * half, qs + 8 * half,
                                                                             scale[2 * sub + half / 2]));
        }
      }
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m256i integer = _mm256_sub_epi32(dots[t], _mm256_slli_epi32(offsets[t], 5));
        acc[t] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(integer), _mm256_mul_ps(d, _mm256_set1_ps(xs[t]->d)), acc[t]);
      }
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (t0 + t) * w.rows + r0, acc[t]);
  }
};

// The row kernel of each 8-row layout with the products of `Dot`.
template <class Dot>
RowKernel x8_kernel_of(WeightLayout layout) noexcept {
  switch (layout) {
    case WeightLayout::Q4_0_X8:
      return x8_entry<Block32X8Kernel<Dot, Q4_0X8Levels>>;
    case WeightLayout::Q8_0_X8:
      return x8_entry<Block32X8Kernel<Dot, Q8_0X8Levels>>;
    case WeightLayout::Q4_K_X8:
      return x8_entry<KQuantX8Kernel<Dot, 4>>;
    case WeightLayout::Q5_K_X8:
      return x8_entry<KQuantX8Kernel<Dot, 5>>;
    case WeightLayout::Q6_K_X8:
      return x8_entry<Q6KX8Kernel<Dot>>;
    case WeightLayout::ROWS:
      break;
  }
  return nullptr;
}

}  // namespace

}  // namespace exo::inference::kernels
