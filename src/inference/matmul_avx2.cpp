// AVX2 + FMA + F16C kernels. This file alone is compiled with -mavx2 -mfma -mf16c (see
// CMakeLists.txt); matmul.cpp calls into it only after checking the CPU supports those features.
//
// Design: every kernel works on a tile of R weight rows x NT tokens. A weight block is loaded and
// decoded into registers once per tile and then multiplied with NT activation blocks, so prompt
// processing decodes each block once per NT tokens; the accumulators of the whole tile live in
// registers. Integer formats use the u8 x s8 multiply-add (vpmaddubsw) with the activation's sign
// moved onto the weights' magnitudes for signed weights, then widen with vpmaddwd and scale in
// float once per block (32-value formats) or once per super-block (k-quants, whose sub-block scales
// are applied in the integer domain).
//
// The 32-value formats reduce 8 integer dot products into the 8 lanes of one vector before going to
// float (horizontal adds): 8 tokens of one block in a batch, 8 consecutive blocks of one row for a
// single token. The zero point, the conversion and the scaling then cost one instruction per 8 dot
// products instead of one each. For 4-bit levels the reduction runs in 16 bits, which saves the
// widening multiply-add per block (a sum of 16 products of a level <= 15 and |activation| <= 127
// fits in 16 bits).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "inference/matmul_avx2_helpers.h"
#include "inference/matmul_kernels.h"

namespace exo::inference::kernels {

namespace {

using namespace avx2;  // the shared helpers (matmul_avx2_helpers.h)

// 16 packed nibbles -> 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31
// (the 16 bytes loaded into both halves, the upper half shifted right by 4, then masked).
inline __m256i spread_nibbles(const std::uint8_t* at) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
  const __m256i shifted = _mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0F));
}

// Bit j of `bits` -> 0x10 in byte j (bit 4 of a 5-bit level).
inline __m256i spread_bits_to_0x10(std::uint32_t bits) {
  const __m256i select =
      _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), select);
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

inline std::uint16_t u16(const std::uint8_t* at) {
  std::uint16_t v = 0;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// The f16 values at at, at + stride, ..., at + 7 * stride as 8 floats (the lane index of
// _mm_insert_epi16 must be a constant, hence the index pack).
template <std::size_t... J>
inline __m256 f16_strided(const std::uint8_t* at, I64 stride, std::index_sequence<J...> /*lanes*/) {
  __m128i bits = _mm_setzero_si128();
  ((bits = _mm_insert_epi16(bits, u16(at + static_cast<I64>(J) * stride), J)), ...);
  return _mm256_cvtph_ps(bits);
}

inline __m256 f16_strided8(const std::uint8_t* at, I64 stride) {
  return f16_strided(at, stride, std::make_index_sequence<8>{});
}

// Horizontal sums by interleaving: unpacking the low and high parts of two vectors and adding them
// keeps the lanes' sums apart (unpacks and adds were faster than vphaddd / vphaddw here).
inline __m256i interleave_add32(__m256i x, __m256i y) {
  return _mm256_add_epi32(_mm256_unpacklo_epi32(x, y), _mm256_unpackhi_epi32(x, y));
}

inline __m256i interleave_add64(__m256i x, __m256i y) {
  return _mm256_add_epi32(_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y));
}

// 8 vectors of 8 int32 lanes -> one vector whose lane t is the sum of the lanes of v[t].
inline __m256i sum_lanes8(const __m256i v[8]) {
  // Two rounds leave [v0..v3 low-half sums | v0..v3 high-half sums] in a.
  const __m256i a = interleave_add64(interleave_add32(v[0], v[1]), interleave_add32(v[2], v[3]));
  const __m256i b = interleave_add64(interleave_add32(v[4], v[5]), interleave_add32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// 8 vectors of 16 int16 lanes -> 8 int32 lanes, lane t the sum of the lanes of v[t]. Every partial
// sum must fit in 16 bits: the lanes of one 128-bit half of each vector are summed in 16 bits.
inline __m256i sum_lanes8_epi16(const __m256i v[8]) {
  const auto interleave_add16 = [](__m256i x, __m256i y) {
    return _mm256_add_epi16(_mm256_unpacklo_epi16(x, y), _mm256_unpackhi_epi16(x, y));
  };
  const auto interleave_add32_16 = [](__m256i x, __m256i y) {
    return _mm256_add_epi16(_mm256_unpacklo_epi32(x, y), _mm256_unpackhi_epi32(x, y));
  };
  const __m256i a = interleave_add32_16(interleave_add16(v[0], v[1]), interleave_add16(v[2], v[3]));
  const __m256i b = interleave_add32_16(interleave_add16(v[4], v[5]), interleave_add16(v[6], v[7]));
  // [v0..v7 low-half sums | v0..v7 high-half sums]
  const __m256i halves = _mm256_add_epi16(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
  return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(halves)),
                          _mm256_cvtepi16_epi32(_mm256_extracti128_si256(halves, 1)));
}

// ---------------------------------------------------------------------------------------------
// Tile drivers: rows in groups of RB (then singles), tokens in groups of NTB (then the remainder).

template <class K, int R, int NT>
void run_tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
  K::template tile<R, NT>(w, x, y, r0, t0);
}

template <class K, int R, int NTB>
void run_token_tiles(const WeightMatrix& w, const Activations& x, float* y, I64 r0) {
  I64 t = 0;
  for (; t + NTB <= x.n_tokens; t += NTB) run_tile<K, R, NTB>(w, x, y, r0, t);
  if constexpr (NTB > 4) {
    if (x.n_tokens - t >= 4) {
      run_tile<K, R, 4>(w, x, y, r0, t);
      t += 4;
    }
  }
  if constexpr (NTB > 1) {
    switch (x.n_tokens - t) {  // 0..3 tokens left
      case 3:
        run_tile<K, R, 3>(w, x, y, r0, t);
        break;
      case 2:
        run_tile<K, R, 2>(w, x, y, r0, t);
        break;
      case 1:
        run_tile<K, R, 1>(w, x, y, r0, t);
        break;
      default:
        break;
    }
  }
}

template <class K, int RB, int NTB>
void drive(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end) {
  I64 r = row_begin;
  for (; r + RB <= row_end; r += RB) run_token_tiles<K, RB, NTB>(w, x, y, r);
  for (; r < row_end; ++r) run_token_tiles<K, 1, NTB>(w, x, y, r);
}

// Matrix-vector products get more rows per tile (more independent streams, nothing to reuse);
// batches get more tokens per tile.
template <class K>
void kernel_entry(const WeightMatrix& w, const Activations& x, float* y, I64 row_begin, I64 row_end) {
  if (x.n_tokens == 1) {
    drive<K, K::matvec_rows, 1>(w, x, y, row_begin, row_end);
  } else {
    drive<K, K::rows_per_tile, K::tokens_per_tile>(w, x, y, row_begin, row_end);
  }
}

// ---------------------------------------------------------------------------------------------
// F32 / F16 / BF16 weights, F32 activations.

template <TensorType T>
struct FloatKernel {
  static constexpr int rows_per_tile = 2;
  static constexpr int tokens_per_tile = 4;
  static constexpr int matvec_rows = 4;

  static __m256 load8(const std::uint8_t* row, I64 c) {
    if constexpr (T == TensorType::F32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
    } else if constexpr (T == TensorType::F16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
    } else {
      const __m256i wide =
          _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
  }

  static float load1(const std::uint8_t* row, I64 c) {
    if constexpr (T == TensorType::F32) {
      float v = 0;
      std::memcpy(&v, row + 4 * c, sizeof v);
      return v;
    } else if constexpr (T == TensorType::F16) {
      return f16(row + 2 * c);
    } else {
      std::uint16_t bits = 0;
      std::memcpy(&bits, row + 2 * c, sizeof bits);
      const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
      float v = 0;
      std::memcpy(&v, &wide, sizeof v);
      return v;
    }
  }

  template <int R, int NT>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    __m256 acc[R][NT];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    const std::uint8_t* rows[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) rows[r] = w.row(r0 + r);
    const float* xs[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) xs[t] = x.f32 + (t0 + t) * w.cols;
    I64 c = 0;
    for (; c + 8 <= w.cols; c += 8) {
      __m256 wv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        constexpr I64 value_bytes = T == TensorType::F32 ? 4 : 2;
        if ((c * value_bytes) % 64 == 0) prefetch(rows[r] + c * value_bytes);
        wv[r] = load8(rows[r], c);
      }
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m256 xv = _mm256_loadu_ps(xs[t] + c);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        float sum = hsum(acc[r][t]);
        for (I64 k = c; k < w.cols; ++k) sum += load1(rows[r], k) * xs[t][k];
        y[(t0 + t) * w.rows + r0 + r] = sum;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// 32-value formats against Q8 activations.

template <TensorType T>
struct Q8Kernel {
  // Chosen by measurement on the development machine (AVX2): 1 row x 8 tokens for batches, 1 row
  // for matrix-vector (from DRAM, 2 rows per tile ran at half the speed: BM_MatvecFromDram).
  static constexpr int rows_per_tile = 1;
  static constexpr int tokens_per_tile = 8;
  static constexpr int matvec_rows = 1;
  // Q8_0 levels are signed: the activation takes their sign (vpsignb) and vpmaddubsw multiplies
  // their magnitudes. The other formats keep their unsigned levels (0..15 / 0..31); Q4_0 and Q5_0
  // subtract their zero point (8 / 16) as zero_point * sum(activation levels), spread evenly over
  // the 8 lanes of the integer dot product, and Q4_1 / Q5_1 add m * d_x * sum afterwards.
  static constexpr bool is_signed = T == TensorType::Q8_0;
  static constexpr int zero_point_eighths = T == TensorType::Q4_0 ? 1 : T == TensorType::Q5_0 ? 2 : 0;
  static constexpr bool has_offset = T == TensorType::Q4_1 || T == TensorType::Q5_1;
  static constexpr bool four_bit = T == TensorType::Q4_0 || T == TensorType::Q4_1;

  // The levels of one block: signed for Q8_0, else unsigned.
  static __m256i decode_levels(const std::uint8_t* block) {
    if constexpr (T == TensorType::Q8_0) {
      return load256(block + 2);
    } else if constexpr (T == TensorType::Q4_0) {
      return spread_nibbles(block + 2);
    } else if constexpr (T == TensorType::Q4_1) {
      return spread_nibbles(block + 4);
    } else if constexpr (T == TensorType::Q5_0) {
      return _mm256_or_si256(spread_nibbles(block + 6), spread_bits_to_0x10(u32(block + 2)));
    } else {
      return _mm256_or_si256(spread_nibbles(block + 8), spread_bits_to_0x10(u32(block + 4)));
    }
  }

  // Decodes one block: levels, scale d and (Q4_1 / Q5_1) offset m.
  static __m256i decode(const std::uint8_t* block, float& d, float& m) {
    d = f16(block);
    if constexpr (has_offset) m = f16(block + 2);
    return decode_levels(block);
  }

  static constexpr I64 block_bytes = T == TensorType::Q8_0   ? 34
                                     : T == TensorType::Q4_0 ? 18
                                     : T == TensorType::Q4_1 ? 20
                                     : T == TensorType::Q5_0 ? 22
                                                             : 24;

  // Integer dot product of one decoded weight block with one activation block, in 8 lanes.
  static __m256i block_dot(__m256i q, __m256i magnitude, const ActQ8& a) {
    const __m256i xq = load256(a.qs);
    __m256i products;
    if constexpr (is_signed) {
      products = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xq, q));
    } else {
      products = _mm256_maddubs_epi16(q, xq);
    }
    return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
  }

  // R rows x 8 tokens, the tokens in the lanes of one vector per row: per block, the 8 integer dot
  // products are reduced into one vector first, so the zero point, the conversion to float and the
  // scaling cost one instruction per 8 tokens instead of one per token. Each activation block is
  // loaded once for the R rows.
  template <int R>
  static void tile_8_token_lanes(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    const I64 nb = w.cols / q8_block;
    const std::uint8_t* rows[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) rows[r] = w.row(r0 + r);
    const ActQ8* xs = x.q8 + t0 * nb;
    const float* dx_by_block = x.d_by_8 + t0 * nb;
    const std::int32_t* sums_by_block = x.sum_by_8 + t0 * nb;
    __m256 acc[R];
    __m256 offset[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = offset[r] = _mm256_setzero_ps();
    for (I64 b = 0; b < nb; ++b) {
      float d[R];
      float m[R];
      __m256i q[R];
      __m256i magnitude[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        prefetch(rows[r] + b * block_bytes);
        q[r] = decode(rows[r] + b * block_bytes, d[r], m[r]);
        magnitude[r] = q[r];
        if constexpr (is_signed) magnitude[r] = _mm256_sign_epi8(q[r], q[r]);
      }
      __m256i sums[R];
      // 4-bit levels times activations stay below 2^15 / 8 per 16-bit product pair, so their
      // products are summed in 16 bits before widening (half the multiply-adds).
      __m256i dots[R][8];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        const ActQ8& a = xs[t * nb + b];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          if constexpr (four_bit) {
            dots[r][t] = _mm256_maddubs_epi16(q[r], load256(a.qs));
          } else {
            dots[r][t] = block_dot(q[r], magnitude[r], a);
          }
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) sums[r] = four_bit ? sum_lanes8_epi16(dots[r]) : sum_lanes8(dots[r]);
      const __m256 dx = _mm256_loadu_ps(dx_by_block + b * 8);
      if constexpr (zero_point_eighths != 0 || has_offset) {
        const __m256i x_sums = load256(sums_by_block + b * 8);
        const __m256i zero_point = _mm256_slli_epi32(x_sums, zero_point_eighths == 1 ? 3 : 4);
        const __m256 dx_sums = _mm256_mul_ps(dx, _mm256_cvtepi32_ps(x_sums));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          if constexpr (zero_point_eighths != 0) sums[r] = _mm256_sub_epi32(sums[r], zero_point);
          if constexpr (has_offset) offset[r] = _mm256_fmadd_ps(_mm256_set1_ps(m[r]), dx_sums, offset[r]);
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        acc[r] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_mul_ps(_mm256_set1_ps(d[r]), dx), acc[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      alignas(32) float out[8];
      _mm256_store_ps(out, _mm256_add_ps(acc[r], offset[r]));
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) y[(t0 + t) * w.rows + r0 + r] = out[t];
    }
  }

  // One row x one token, 8 consecutive blocks in the lanes of one vector: their integer dot
  // products are reduced into one vector, then the zero point, the conversion to float and the
  // scaling take one instruction per 8 blocks. Blocks past the last multiple of 8 take the
  // one-block path.
  static void matvec_8_block_lanes(const WeightMatrix& w, const Activations& x, float* y, I64 r) {
    const I64 nb = w.cols / q8_block;
    const std::uint8_t* row = w.row(r);
    const ActQ8* xs = x.q8;
    __m256 acc = _mm256_setzero_ps();
    __m256 offset = _mm256_setzero_ps();
    I64 b0 = 0;
    for (; b0 + 8 <= nb; b0 += 8) {
      const std::uint8_t* blocks = row + b0 * block_bytes;
      __m256i dots[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        if (j % 2 == 0) prefetch(blocks + j * block_bytes);
        const __m256i q = decode_levels(blocks + j * block_bytes);
        if constexpr (four_bit) {
          dots[j] = _mm256_maddubs_epi16(q, load256(xs[b0 + j].qs));
        } else {
          __m256i magnitude = q;
          if constexpr (is_signed) magnitude = _mm256_sign_epi8(q, q);
          dots[j] = block_dot(q, magnitude, xs[b0 + j]);
        }
      }
      __m256i sums = four_bit ? sum_lanes8_epi16(dots) : sum_lanes8(dots);
      const __m256 dx = _mm256_loadu_ps(x.d_of_blocks + b0);
      if constexpr (zero_point_eighths != 0 || has_offset) {
        const __m256i x_sums = load256(x.sum_of_blocks + b0);
        if constexpr (zero_point_eighths != 0)
          sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(x_sums, zero_point_eighths == 1 ? 3 : 4));
        if constexpr (has_offset)
          offset = _mm256_fmadd_ps(f16_strided8(blocks + 2, block_bytes),
                                   _mm256_mul_ps(dx, _mm256_cvtepi32_ps(x_sums)), offset);
      }
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(f16_strided8(blocks, block_bytes), dx),
                            acc);
    }
    float sum = hsum(_mm256_add_ps(acc, offset));
    for (I64 b = b0; b < nb; ++b) {
      float d = 0.0f;
      float m = 0.0f;
      const __m256i q = decode(row + b * block_bytes, d, m);
      __m256i magnitude = q;
      if constexpr (is_signed) magnitude = _mm256_sign_epi8(q, q);
      const ActQ8& a = xs[b];
      __m256i dot = block_dot(q, magnitude, a);
      if constexpr (zero_point_eighths != 0)
        dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(zero_point_eighths * a.sum));
      sum += hsum(_mm256_cvtepi32_ps(dot)) * d * a.d;
      if constexpr (has_offset) sum += m * a.d * static_cast<float>(a.sum);
    }
    y[r] = sum;
  }

  template <int R, int NT>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    if constexpr (NT == 1) {
      if (x.n_tokens == 1) {
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) matvec_8_block_lanes(w, x, y, r0 + r);
        return;
      }
    }
    if constexpr (NT == 8) {
      // Tiles of 8 tokens start at multiples of 8 (run_token_tiles), so d_by_8 covers them.
      tile_8_token_lanes<R>(w, x, y, r0, t0);
      return;
    }
    const I64 nb = w.cols / q8_block;
    __m256 acc[R][NT];
    float offset_acc[R][NT];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        acc[r][t] = _mm256_setzero_ps();
        offset_acc[r][t] = 0.0f;
      }
    }
    const std::uint8_t* rows[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) rows[r] = w.row(r0 + r);
    const ActQ8* xs = x.q8 + t0 * nb;
    for (I64 b = 0; b < nb; ++b) {
      // Row-outer order keeps one decoded block live at a time (16 vector registers); the
      // activation blocks are re-read from L1 for each row.
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        float d = 0.0f;
        float m = 0.0f;
        // Weight rows stream from memory once per tile: prefetch ahead so enough cache lines are in
        // flight (the out-of-order window alone covers only a few blocks).
        prefetch(rows[r] + b * block_bytes);
        const __m256i q = decode(rows[r] + b * block_bytes, d, m);
        __m256i magnitude = q;
        if constexpr (is_signed) magnitude = _mm256_sign_epi8(q, q);
        const __m256 dw = _mm256_set1_ps(d);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const ActQ8& a = xs[t * nb + b];
          __m256i dot = block_dot(q, magnitude, a);
          if constexpr (zero_point_eighths != 0)
            dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(zero_point_eighths * a.sum));
          const __m256 sum = _mm256_cvtepi32_ps(dot);
          acc[r][t] = _mm256_fmadd_ps(sum, _mm256_mul_ps(dw, _mm256_broadcast_ss(&a.d)), acc[r][t]);
          if constexpr (has_offset) offset_acc[r][t] += m * a.d * static_cast<float>(a.sum);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) y[(t0 + t) * w.rows + r0 + r] = hsum(acc[r][t]) + offset_acc[r][t];
    }
  }
};

// ---------------------------------------------------------------------------------------------
// k-quants against Q8K activations (one row per tile; the per-super-block state is large).

// The 12 packed bytes of 6-bit scales and mins as vectors: scales as 16-bit values sc0..sc7 in both
// 128-bit lanes, mins as m0,m0,m1,m1,...,m7,m7 (one per 16-value activation group, for the bsums).
struct ScalesMins {
  __m256i scales16;
  __m256i mins16;
};

inline ScalesMins unpack_scales_mins(const std::uint8_t* packed) {
  std::uint32_t w[3];
  std::memcpy(w, packed, sizeof w);
  const std::uint32_t sc_lo = w[0] & 0x3F3F3F3Fu;
  const std::uint32_t sc_hi = (w[2] & 0x0F0F0F0Fu) | ((w[0] >> 2) & 0x30303030u);
  const std::uint32_t m_lo = w[1] & 0x3F3F3F3Fu;
  const std::uint32_t m_hi = ((w[2] >> 4) & 0x0F0F0F0Fu) | ((w[1] >> 2) & 0x30303030u);
  const __m128i sc8 = _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), 0, 0);
  const __m128i m8 = _mm_setr_epi32(static_cast<int>(m_lo), static_cast<int>(m_hi), 0, 0);
  return {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8)),
          _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8))};
}

// Broadcasts 16-bit element k of each 128-bit lane over that lane (shuffle indices 2k, 2k + 1).
inline __m256i lane_broadcast16(__m256i v, int k_low_lane, int k_high_lane) {
  const auto pair = [](int k) {
    return static_cast<long long>(0x0101010101010101ULL * static_cast<unsigned>(2 * k) +
                                  0x0100010001000100ULL);
  };
  return _mm256_shuffle_epi8(
      v, _mm256_setr_epi64x(pair(k_low_lane), pair(k_low_lane), pair(k_high_lane), pair(k_high_lane)));
}

// Tile scaffolding of the k-quant kernels: one row per tile (R = 4 for matrix-vector runs the rows
// one after another: more independent streams), each super-block prefetched and handed to
// K::accumulate_block with the tile's activation blocks (token t at x[t * nb]) and float
// accumulators, lane sums out.
template <class K>
struct KQuantTiles {
  static constexpr int rows_per_tile = 1;
  static constexpr int tokens_per_tile = 4;
  static constexpr int matvec_rows = 4;

  template <int R, int NT>
  static void tile(const WeightMatrix& w, const Activations& x, float* y, I64 r0, I64 t0) {
    static_assert(R == 1 || R == 4);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) one_row<NT>(w, x, y, r0 + r, t0);
  }

  template <int NT>
  static void one_row(const WeightMatrix& w, const Activations& x, float* y, I64 r, I64 t0) {
    const I64 nb = w.cols / q8k_block;
    const std::uint8_t* row = w.row(r);
    const ActQ8K* xs = x.q8k + t0 * nb;
    __m256 acc[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (I64 b = 0; b < nb; ++b) {
      const std::uint8_t* block = row + b * K::block_bytes;
      for (I64 line = 0; line < K::block_bytes; line += 64) prefetch(block + line);
      K::template accumulate_block<NT>(block, xs + b, nb, acc);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) y[(t0 + t) * w.rows + r] = hsum(acc[t]);
  }
};

template <TensorType T>
struct Q45KKernel : KQuantTiles<Q45KKernel<T>> {
  static constexpr bool five_bit = T == TensorType::Q5_K;
  static constexpr I64 block_bytes = five_bit ? 176 : 144;

  template <int NT>
  static void accumulate_block(const std::uint8_t* block, const ActQ8K* x, I64 nb, __m256 (&acc)[NT]) {
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const float d = f16(block);
    const float dmin = f16(block + 2);
    const ScalesMins sm = unpack_scales_mins(block + 4);
    const std::uint8_t* nibbles = block + (five_bit ? 48 : 16);
    __m256i high_bits = _mm256_setzero_si256();
    if constexpr (five_bit) high_bits = load256(block + 16);
    __m256i iacc[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) iacc[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int chunk = 0; chunk < 4; ++chunk) {
      const __m256i raw = load256(nibbles + 32 * chunk);
      __m256i lo = _mm256_and_si256(raw, low_mask);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_mask);
      if constexpr (five_bit) {
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i bit_lo = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * chunk), one);
        const __m256i bit_hi = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * chunk + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(bit_lo, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(bit_hi, 4));
      }
      const __m256i scale_lo = lane_broadcast16(sm.scales16, 2 * chunk, 2 * chunk);
      const __m256i scale_hi = lane_broadcast16(sm.scales16, 2 * chunk + 1, 2 * chunk + 1);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const std::int8_t* xq = x[t * nb].qs + 64 * chunk;
        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(xq)), scale_lo);
        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(xq + 32)), scale_hi);
        iacc[t] = _mm256_add_epi32(iacc[t], _mm256_add_epi32(p_lo, p_hi));
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const ActQ8K& a = x[t * nb];
      const __m256i min_sums = _mm256_madd_epi16(sm.mins16, load256(a.bsums));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[t]), _mm256_set1_ps(d * a.d), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(min_sums), _mm256_set1_ps(dmin * a.d), acc[t]);
    }
  }
};

struct Q6KKernel : KQuantTiles<Q6KKernel> {
  static constexpr I64 block_bytes = 210;

  template <int NT>
  static void accumulate_block(const std::uint8_t* block, const ActQ8K* x, I64 nb, __m256 (&acc)[NT]) {
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(0x03);
    const std::uint8_t* ql = block;
    const std::uint8_t* qh = block + 128;
    const auto* sc = reinterpret_cast<const std::int8_t*>(block + 192);
    const float d = f16(block + 208);
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    __m256i iacc[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      // The -32 level offset: sum over sub-blocks of scale * 32 * (sum of activations).
      const __m256i offsets = _mm256_madd_epi16(scales16, load256(x[t * nb].bsums));
      iacc[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offsets, 5));
    }
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i low0 = load256(ql + 64 * half);
      const __m256i low1 = load256(ql + 64 * half + 32);
      const __m256i high = load256(qh + 32 * half);
      // Both lanes: the 8 sub-block scales of this half (16-bit).
      const __m256i half_scales = half == 0 ? _mm256_permute2x128_si256(scales16, scales16, 0x00)
                                            : _mm256_permute2x128_si256(scales16, scales16, 0x11);
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i low_src = (g & 1) != 0 ? low1 : low0;
        const __m256i low = g < 2 ? _mm256_and_si256(low_src, low_mask)
                                  : _mm256_and_si256(_mm256_srli_epi16(low_src, 4), low_mask);
        const __m256i top = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * g), two_bits), 4);
        const __m256i q = _mm256_or_si256(low, top);
        const __m256i scale = lane_broadcast16(half_scales, 2 * g, 2 * g + 1);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const std::int8_t* xq = x[t * nb].qs + 128 * half + 32 * g;
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, load256(xq)), scale);
          iacc[t] = _mm256_add_epi32(iacc[t], p);
        }
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[t]), _mm256_set1_ps(d * x[t * nb].d), acc[t]);
  }
};

}  // namespace

RowKernel avx2_kernel(TensorType type) noexcept {
  switch (type) {
    case TensorType::F32:
      return kernel_entry<FloatKernel<TensorType::F32>>;
    case TensorType::F16:
      return kernel_entry<FloatKernel<TensorType::F16>>;
    case TensorType::BF16:
      return kernel_entry<FloatKernel<TensorType::BF16>>;
    case TensorType::Q8_0:
      return kernel_entry<Q8Kernel<TensorType::Q8_0>>;
    case TensorType::Q4_0:
      return kernel_entry<Q8Kernel<TensorType::Q4_0>>;
    case TensorType::Q4_1:
      return kernel_entry<Q8Kernel<TensorType::Q4_1>>;
    case TensorType::Q5_0:
      return kernel_entry<Q8Kernel<TensorType::Q5_0>>;
    case TensorType::Q5_1:
      return kernel_entry<Q8Kernel<TensorType::Q5_1>>;
    case TensorType::Q4_K:
      return kernel_entry<Q45KKernel<TensorType::Q4_K>>;
    case TensorType::Q5_K:
      return kernel_entry<Q45KKernel<TensorType::Q5_K>>;
    case TensorType::Q6_K:
      return kernel_entry<Q6KKernel>;
    default:
      return nullptr;
  }
}

namespace {

// e^x of 8 lanes, within 2 ulp for x in [-87.3, 88.3] (Cody-Waite reduction by ln 2 and a degree-6
// polynomial on [-ln 2 / 2, ln 2 / 2]). Inputs are clamped to that range first: below it the result
// is about 1e-38 instead of 0 or a subnormal, above it about 2e38 instead of infinity.
__m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3F)), _mm256_set1_ps(88.3F));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341F)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375F), x);  // ln 2 in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4F), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4F);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3F));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3F));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2F));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1F));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1F));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0F)));
  // 2^n from the exponent field: n is in [-126, 127], so the biased exponent is in [1, 254].
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
}

void silu_mul_avx2(float* gate, const float* up, std::int64_t n) noexcept {
  const __m256 one = _mm256_set1_ps(1.0F);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(gate + i,
                     _mm256_div_ps(_mm256_mul_ps(g, _mm256_loadu_ps(up + i)), _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0F + std::exp(-gate[i])) * up[i];
}

// The lane sums of 8 vectors as the 8 lanes of one: lane j is the sum of v[j]'s lanes.
inline __m256 sum_lanes8_ps(const __m256 (&v)[8]) {
  const __m256 ab = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 cd = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  // ab: the 4-lane sums of v[0..3] from each 128-bit half; cd: those of v[4..7].
  return _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31));
}

// KV-cache elements: floats, or F16 bits converted with F16C.
template <class Element>
__m256 load8_kv(const Element* at) noexcept {
  if constexpr (std::is_same_v<Element, float>) {
    return _mm256_loadu_ps(at);
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
  }
}

template <class Element>
float load1_kv(const Element* at) noexcept {
  if constexpr (std::is_same_v<Element, float>) {
    return *at;
  } else {
    return _cvtsh_ss(*at);
  }
}

template <class Element>
float dot_kv(const float* q, const Element* row, std::int64_t n) noexcept {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_kv(row + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8_kv(row + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_kv(row + i), acc0);
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += q[i] * load1_kv(row + i);
  return sum;
}

// Scores of row r for positions [from, visible), one at a time. Returns their maximum.
template <class Element>
float row_scores(const AttentionRows& rows, std::size_t r, std::int64_t from, float* scores) noexcept {
  const auto* keys = static_cast<const Element*>(rows.keys);
  float best = -INFINITY;
  for (std::int64_t p = from; p < rows.visible[r]; ++p) {
    scores[p] = dot_kv(rows.q[r], keys + p * rows.stride, rows.head_dim) * rows.scale;
    best = std::max(best, scores[p]);
  }
  return best;
}

// Turns scores [0, visible) into softmax weights in place, given their maximum.
void softmax_in_place(float* scores, std::int64_t visible, float best) noexcept {
  const __m256 best_v = _mm256_set1_ps(best);
  __m256 total8 = _mm256_setzero_ps();
  std::int64_t p = 0;
  for (; p + 8 <= visible; p += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + p), best_v));
    _mm256_storeu_ps(scores + p, e);
    total8 = _mm256_add_ps(total8, e);
  }
  float total = hsum(total8);
  for (; p < visible; ++p) {
    scores[p] = std::exp(scores[p] - best);
    total += scores[p];
  }
  const float inverse = 1.0F / total;
  const __m256 inverse_v = _mm256_set1_ps(inverse);
  for (p = 0; p + 8 <= visible; p += 8)
    _mm256_storeu_ps(scores + p, _mm256_mul_ps(_mm256_loadu_ps(scores + p), inverse_v));
  for (; p < visible; ++p) scores[p] *= inverse;
}

// Head sizes that are not a multiple of 8: one row at a time, with scalar tails.
template <class Element>
void attend_rows_one_by_one(const AttentionRows& rows, float* scores) noexcept {
  const auto* values = static_cast<const Element*>(rows.values);
  for (std::size_t r = 0; r < rows.q.size(); ++r) {
    softmax_in_place(scores, rows.visible[r], row_scores<Element>(rows, r, 0, scores));
    float* const out = rows.out[r];
    std::fill(out, out + rows.head_dim, 0.0F);
    for (std::int64_t p = 0; p < rows.visible[r]; ++p) {
      const Element* row = values + p * rows.stride;
      const __m256 w = _mm256_set1_ps(scores[p]);
      std::int64_t i = 0;
      for (; i + 8 <= rows.head_dim; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(w, load8_kv(row + i), _mm256_loadu_ps(out + i)));
      for (; i < rows.head_dim; ++i) out[i] += scores[p] * load1_kv(row + i);
    }
  }
}

// Three passes over the rows that share the keys and values. 1: scores, 8 keys at a time for every
// row (8 dot products side by side, reduced into one vector), so each block of keys is read from
// memory once and from L1 for the other rows. 2: each row's softmax weights. 3: the weighted values,
// 64 output values x 16 positions at a time for every row, with the row's 64 sums in registers, so
// each block of values is likewise read once.
template <class Element>
void attend_avx2_of(const AttentionRows& rows, float* scratch) noexcept {
  const std::int64_t hd = rows.head_dim;
  if (hd % 8 != 0) {
    attend_rows_one_by_one<Element>(rows, scratch);
    return;
  }
  const auto* all_keys = static_cast<const Element*>(rows.keys);
  const auto* all_values = static_cast<const Element*>(rows.values);
  const std::size_t n_rows = rows.q.size();
  std::int64_t longest = 0;
  for (const std::int64_t visible : rows.visible) longest = std::max(longest, visible);
  const auto scores_of = [&](std::size_t r) { return scratch + static_cast<std::int64_t>(r) * longest; };

  const __m256 scale = _mm256_set1_ps(rows.scale);
  std::int64_t p = 0;
  for (; p + 8 <= longest; p += 8) {
    const Element* keys = all_keys + p * rows.stride;
    for (std::size_t r = 0; r < n_rows; ++r) {
      if (p >= rows.visible[r]) continue;
      __m256 acc[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
      for (std::int64_t d = 0; d < hd; d += 8) {
        const __m256 q = _mm256_loadu_ps(rows.q[r] + d);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(q, load8_kv(keys + j * rows.stride + d), acc[j]);
      }
      _mm256_storeu_ps(scores_of(r) + p, _mm256_mul_ps(sum_lanes8_ps(acc), scale));
    }
  }
  const std::int64_t vector_end = p;  // scores before it exist for every row, up to its visible
  for (std::size_t r = 0; r < n_rows; ++r) {
    float* const scores = scores_of(r);
    const std::int64_t visible = rows.visible[r];
    const std::int64_t full = std::min(visible, vector_end);
    float best = row_scores<Element>(rows, r, full, scores);
    for (std::int64_t i = 0; i < full; ++i) best = std::max(best, scores[i]);
    softmax_in_place(scores, visible, best);
  }

  constexpr std::int64_t positions_per_block = 16;
  for (std::int64_t d0 = 0; d0 < hd; d0 += 64) {
    const int vectors = static_cast<int>(std::min<std::int64_t>(8, (hd - d0) / 8));
    const Element* values = all_values + d0;
    for (std::int64_t block = 0; block < longest; block += positions_per_block) {
      for (std::size_t r = 0; r < n_rows; ++r) {
        const std::int64_t end = std::min(block + positions_per_block, rows.visible[r]);
        if (end <= block) continue;
        const float* weights = scores_of(r);
        float* const out = rows.out[r] + d0;
        __m256 acc[8];
        for (int v = 0; v < vectors; ++v)
          acc[v] = block == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + 8 * v);
        if (vectors == 8) {
          for (std::int64_t i = block; i < end; ++i) {
            const __m256 w = _mm256_broadcast_ss(weights + i);
#pragma GCC unroll 8
            for (int v = 0; v < 8; ++v)
              acc[v] = _mm256_fmadd_ps(w, load8_kv(values + i * rows.stride + 8 * v), acc[v]);
          }
        } else {
          for (std::int64_t i = block; i < end; ++i) {
            const __m256 w = _mm256_broadcast_ss(weights + i);
            for (int v = 0; v < vectors; ++v)
              acc[v] = _mm256_fmadd_ps(w, load8_kv(values + i * rows.stride + 8 * v), acc[v]);
          }
        }
        for (int v = 0; v < vectors; ++v) _mm256_storeu_ps(out + 8 * v, acc[v]);
      }
    }
  }
}

void attend_avx2(const AttentionRows& rows, float* scratch) noexcept {
  if (rows.kv_type == TensorType::F16) {
    attend_avx2_of<std::uint16_t>(rows, scratch);
  } else {
    attend_avx2_of<float>(rows, scratch);
  }
}

}  // namespace

VectorOps avx2_vector_ops() noexcept {
  return {silu_mul_avx2, attend_avx2};
}

}  // namespace exo::inference::kernels
