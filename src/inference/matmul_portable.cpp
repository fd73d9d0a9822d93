// Portable kernels (plain C++): each weight row is decoded once into integer levels plus scales, then
// dotted with every token's quantized activation using integer sums. Same arithmetic as the SIMD
// kernels, so they double as a second oracle for them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "inference/half_float.h"
#include "inference/matmul_kernels.h"
#include "inference/quant_blocks.h"
#include "inference/quants.h"

namespace exo::inference::kernels {

namespace {

float load_f16(const std::uint8_t* at) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, at, sizeof bits);
  return fp16_to_float(bits);
}

std::uint32_t load_u32(const std::uint8_t* at) {
  std::uint32_t v = 0;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// ---- float weights ----

void float_rows(const WeightMatrix& w, const Activations& x, float* y, std::int64_t row_begin,
                std::int64_t row_end) {
  thread_local std::vector<float> row;
  row.resize(static_cast<std::size_t>(w.cols));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    dequantize_row(w.type, std::span<const std::uint8_t>(w.row(r), w.row_bytes), row);
    for (std::int64_t t = 0; t < x.n_tokens; ++t) {
      const float* xt = x.f32 + t * w.cols;
      float partial[8] = {};
      std::int64_t c = 0;
      for (; c + 8 <= w.cols; c += 8) {
        for (int k = 0; k < 8; ++k) partial[k] += row[static_cast<std::size_t>(c + k)] * xt[c + k];
      }
      for (; c < w.cols; ++c) partial[c % 8] += row[static_cast<std::size_t>(c)] * xt[c];
      float sum = 0;
      for (float p : partial) sum += p;
      y[t * w.rows + r] = sum;
    }
  }
}

// ---- 32-value formats against ActQ8: value = d * q + m ----

struct Decoded32 {
  std::vector<std::int8_t> q;
  std::vector<float> d;
  std::vector<float> m;
};

void decode_block32(TensorType type, const std::uint8_t* b, std::int8_t* q, float& d, float& m) {
  m = 0.0f;
  d = load_f16(b);
  switch (type) {
    case TensorType::Q8_0:
      std::memcpy(q, b + 2, 32);
      break;
    case TensorType::Q4_0:
      for (int j = 0; j < 16; ++j) {
        q[j] = static_cast<std::int8_t>((b[2 + j] & 0x0F) - 8);
        q[j + 16] = static_cast<std::int8_t>((b[2 + j] >> 4) - 8);
      }
      break;
    case TensorType::Q4_1:
      m = load_f16(b + 2);
      for (int j = 0; j < 16; ++j) {
        q[j] = static_cast<std::int8_t>(b[4 + j] & 0x0F);
        q[j + 16] = static_cast<std::int8_t>(b[4 + j] >> 4);
      }
      break;
    case TensorType::Q5_0:
    case TensorType::Q5_1: {
      const bool offset = type == TensorType::Q5_1;
      if (offset) m = load_f16(b + 2);
      const std::uint32_t qh = load_u32(b + (offset ? 4 : 2));
      const std::uint8_t* nib = b + (offset ? 8 : 6);
      const int bias = offset ? 0 : 16;
      for (int j = 0; j < 16; ++j) {
        const int lo = (nib[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
        const int hi = (nib[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
        q[j] = static_cast<std::int8_t>(lo - bias);
        q[j + 16] = static_cast<std::int8_t>(hi - bias);
      }
      break;
    }
    default:
      break;
  }
}

void q8_rows(const WeightMatrix& w, const Activations& x, float* y, std::int64_t row_begin,
             std::int64_t row_end) {
  const std::int64_t nb = w.cols / q8_block;
  const std::size_t block_bytes = tensor_type_info(w.type).bytes_per_block;
  thread_local Decoded32 dec;
  dec.q.resize(static_cast<std::size_t>(w.cols));
  dec.d.resize(static_cast<std::size_t>(nb));
  dec.m.resize(static_cast<std::size_t>(nb));
  const bool has_offset = w.type == TensorType::Q4_1 || w.type == TensorType::Q5_1;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::uint8_t* row = w.row(r);
    for (std::int64_t b = 0; b < nb; ++b) {
      const auto bi = static_cast<std::size_t>(b);
      decode_block32(w.type, row + bi * block_bytes, dec.q.data() + b * q8_block, dec.d[bi], dec.m[bi]);
    }
    for (std::int64_t t = 0; t < x.n_tokens; ++t) {
      const ActQ8* a = x.q8 + t * nb;
      float sum = 0.0f;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::int8_t* q = dec.q.data() + b * q8_block;
        std::int32_t dot = 0;
        for (int j = 0; j < q8_block; ++j) dot += static_cast<std::int32_t>(q[j]) * a[b].qs[j];
        const auto bi = static_cast<std::size_t>(b);
        sum += dec.d[bi] * a[b].d * static_cast<float>(dot);
        if (has_offset) sum += dec.m[bi] * a[b].d * static_cast<float>(a[b].sum);
      }
      y[t * w.rows + r] = sum;
    }
  }
}

// ---- k-quants against ActQ8K ----

struct ScaleMin {
  int scale;
  int min;
};

ScaleMin unpack_scale_min(const std::uint8_t* packed, int j) {
  if (j < 4) return {packed[j] & 63, packed[j + 4] & 63};
  return {(packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4),
          (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4)};
}

// One super-block of Q4_K / Q5_K against one activation block.
float dot_q45k(const std::uint8_t* b, bool five_bit, const ActQ8K& a) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const std::uint8_t* packed = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* nib = b + (five_bit ? 48 : 16);
  std::int32_t scaled = 0;
  std::int32_t mins = 0;
  for (int chunk = 0; chunk < 4; ++chunk) {
    const ScaleMin lo = unpack_scale_min(packed, 2 * chunk);
    const ScaleMin hi = unpack_scale_min(packed, 2 * chunk + 1);
    std::int32_t dot_lo = 0;
    std::int32_t dot_hi = 0;
    for (int l = 0; l < 32; ++l) {
      int q_lo = nib[32 * chunk + l] & 0x0F;
      int q_hi = nib[32 * chunk + l] >> 4;
      if (five_bit) {
        q_lo |= ((qh[l] >> (2 * chunk)) & 1) << 4;
        q_hi |= ((qh[l] >> (2 * chunk + 1)) & 1) << 4;
      }
      dot_lo += q_lo * a.qs[64 * chunk + l];
      dot_hi += q_hi * a.qs[64 * chunk + 32 + l];
    }
    scaled += lo.scale * dot_lo + hi.scale * dot_hi;
    mins += lo.min * (a.bsums[4 * chunk] + a.bsums[4 * chunk + 1]) +
            hi.min * (a.bsums[4 * chunk + 2] + a.bsums[4 * chunk + 3]);
  }
  return d * a.d * static_cast<float>(scaled) - dmin * a.d * static_cast<float>(mins);
}

float dot_q6k(const std::uint8_t* b, const ActQ8K& a) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  std::int32_t total = 0;
  for (int half = 0; half < 2; ++half) {
    std::int32_t group_dot[8] = {};  // per 16-value sub-block of this half
    for (int l = 0; l < 32; ++l) {
      const std::uint8_t low0 = ql[64 * half + l];
      const std::uint8_t low1 = ql[64 * half + 32 + l];
      const std::uint8_t high = qh[32 * half + l];
      const int q[4] = {(low0 & 0x0F) | ((high & 3) << 4), (low1 & 0x0F) | (((high >> 2) & 3) << 4),
                        (low0 >> 4) | (((high >> 4) & 3) << 4), (low1 >> 4) | (((high >> 6) & 3) << 4)};
      for (int g = 0; g < 4; ++g) {
        const int v = 128 * half + 32 * g + l;
        group_dot[2 * g + l / 16] += (q[g] - 32) * a.qs[v];
      }
    }
    for (int s = 0; s < 8; ++s) total += scales[8 * half + s] * group_dot[s];
  }
  return d * a.d * static_cast<float>(total);
}

void q8k_rows(const WeightMatrix& w, const Activations& x, float* y, std::int64_t row_begin,
              std::int64_t row_end) {
  const std::int64_t nb = w.cols / q8k_block;
  const std::size_t block_bytes = tensor_type_info(w.type).bytes_per_block;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::uint8_t* row = w.row(r);
    for (std::int64_t t = 0; t < x.n_tokens; ++t) {
      const ActQ8K* a = x.q8k + t * nb;
      float sum = 0.0f;
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* block = row + static_cast<std::size_t>(b) * block_bytes;
        switch (w.type) {
          case TensorType::Q4_K:
            sum += dot_q45k(block, false, a[b]);
            break;
          case TensorType::Q5_K:
            sum += dot_q45k(block, true, a[b]);
            break;
          default:
            sum += dot_q6k(block, a[b]);
            break;
        }
      }
      y[t * w.rows + r] = sum;
    }
  }
}

}  // namespace

RowKernel portable_kernel(TensorType type) noexcept {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
      return float_rows;
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
      return q8_rows;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return q8k_rows;
    default:
      return nullptr;
  }
}

namespace {

void silu_mul_portable(float* gate, const float* up, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0F + std::exp(-gate[i])) * up[i];
}

// Element i of a KV row: a float, or F16 bits.
template <class Element>
float kv_value(const Element* row, std::int64_t i) noexcept {
  if constexpr (std::is_same_v<Element, float>) {
    return row[i];
  } else {
    return fp16_to_float(row[i]);
  }
}

// q . row with eight independent partial sums, so the compiler can use vector registers.
template <class Element>
float dot_kv(const float* q, const Element* row, std::int64_t n) noexcept {
  float partial[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) partial[j] += q[i + j] * kv_value(row, i + j);
  }
  float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
              ((partial[2] + partial[6]) + (partial[3] + partial[7]));
  for (; i < n; ++i) sum += q[i] * kv_value(row, i);
  return sum;
}

// One row at a time: scores, their exponentials (summed in double), then the weighted values.
template <class Element>
void attend_portable_of(const AttentionRows& rows, float* scores) noexcept {
  const std::int64_t hd = rows.head_dim;
  const auto* keys = static_cast<const Element*>(rows.keys);
  const auto* values = static_cast<const Element*>(rows.values);
  for (std::size_t r = 0; r < rows.q.size(); ++r) {
    const std::int64_t visible = rows.visible[r];
    float best = -INFINITY;
    for (std::int64_t p = 0; p < visible; ++p) {
      scores[p] = dot_kv(rows.q[r], keys + p * rows.stride, hd) * rows.scale;
      best = std::max(best, scores[p]);
    }
    double total = 0;
    for (std::int64_t p = 0; p < visible; ++p) {
      scores[p] = std::exp(scores[p] - best);
      total += scores[p];
    }
    const auto inverse = static_cast<float>(1.0 / total);
    float* const out = rows.out[r];
    std::fill(out, out + hd, 0.0F);
    for (std::int64_t p = 0; p < visible; ++p) {
      const float weight = scores[p] * inverse;
      const Element* row = values + p * rows.stride;
      for (std::int64_t i = 0; i < hd; ++i) out[i] += weight * kv_value(row, i);
    }
  }
}

void attend_portable(const AttentionRows& rows, float* scratch) noexcept {
  if (rows.kv_type == TensorType::F16) {
    attend_portable_of<std::uint16_t>(rows, scratch);
  } else {
    attend_portable_of<float>(rows, scratch);
  }
}

}  // namespace

VectorOps portable_vector_ops() noexcept {
  return {silu_mul_portable, attend_portable};
}

namespace {

// Level i (0..31) of row `in_group` in a 128-byte X8 level block (a Q4_0_X8 block's levels, or one
// Q4_K_X8 sub-block's).
int x8_level(const std::uint8_t* levels, int in_group, int i) {
  const std::uint8_t byte = levels[32 * (i / 8) + 4 * in_group + i % 4];
  return (i % 8) < 4 ? byte & 0x0F : byte >> 4;
}

void unpack_q4_0_group_block(const std::uint8_t* src, int in_group, std::uint8_t* dst) {
  dst[0] = src[2 * in_group];
  dst[1] = src[2 * in_group + 1];
  const auto level = [&](int i) { return x8_level(src + 16, in_group, i); };
  for (int k = 0; k < 16; ++k) dst[2 + k] = static_cast<std::uint8_t>(level(k) | (level(k + 16) << 4));
}

void unpack_q8_0_group_block(const std::uint8_t* src, int in_group, std::uint8_t* dst) {
  dst[0] = src[2 * in_group];
  dst[1] = src[2 * in_group + 1];
  for (int k = 0; k < 8; ++k) std::memcpy(dst + 2 + 4 * k, src + 16 + 32 * k + 4 * in_group, 4);
}

void unpack_q6_k_group_block(const std::uint8_t* src, int in_group, std::uint8_t* dst) {
  std::memset(dst, 0, q6_k_block_bytes);  // the level bits are OR-ed in
  for (int j = 0; j < 16; ++j) dst[192 + j] = src[16 + 8 * j + in_group];
  std::memcpy(dst + 208, src + 2 * in_group, 2);
  for (int v = 0; v < 256; ++v) {
    const int i = v % 32;
    const std::uint8_t* run = src + 144 + 192 * (v / 32) + 96 * (i / 16);
    const int vector = (i % 16) / 4;
    const int lane = 4 * in_group + i % 4;
    int level = 0;
    if (vector < 3) {
      level = run[32 * vector + lane] & 0x3F;
    } else {
      for (int part = 0; part < 3; ++part) level |= (run[32 * part + lane] >> 6) << (2 * part);
    }
    blocks::set_q6_k_level(dst, v, level);
  }
}

// Q4_K_X8 (Bits 4) and Q5_K_X8 (Bits 5) back into a Q4_K / Q5_K block.
template <int Bits>
void unpack_k_group_block(const std::uint8_t* src, int in_group, std::uint8_t* dst) {
  constexpr int low_bits_at = Bits == 4 ? 16 : 48;
  constexpr int sub_block_bytes = Bits == 4 ? 128 : 160;
  std::memcpy(dst, src + 2 * in_group, 2);           // d
  std::memcpy(dst + 2, src + 16 + 2 * in_group, 2);  // dmin
  std::uint8_t scales[8];
  std::uint8_t mins[8];
  for (int j = 0; j < 8; ++j) {
    const int k = (8 * j + in_group) % 32;
    const int upper = (8 * j + in_group) / 32;  // 0: low nibbles / bits 0-1 and 4-5; 1: the others
    const int high_bits = src[96 + k];
    scales[j] = static_cast<std::uint8_t>(((src[32 + k] >> (4 * upper)) & 0x0F) |
                                          (((high_bits >> (2 * upper)) & 0x03) << 4));
    mins[j] = static_cast<std::uint8_t>(((src[64 + k] >> (4 * upper)) & 0x0F) |
                                        (((high_bits >> (4 + 2 * upper)) & 0x03) << 4));
  }
  blocks::pack_k4_scales_mins(scales, mins, dst + 4);
  // Value v: level v % 32 of sub-block v / 32.
  const auto level = [&](int v) {
    return x8_level(src + 128 + sub_block_bytes * (v / 32), in_group, v % 32);
  };
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      dst[low_bits_at + 32 * c + l] =
          static_cast<std::uint8_t>(level(64 * c + l) | (level(64 * c + 32 + l) << 4));
  if constexpr (Bits == 5) {
    std::memset(dst + 16, 0, 32);
    for (int j = 0; j < 8; ++j) {
      const std::uint8_t* fifth_bits = src + 128 + sub_block_bytes * j + 128 + 4 * in_group;
      for (int i = 0; i < 32; ++i)
        dst[16 + i] |= static_cast<std::uint8_t>(((fifth_bits[i % 4] >> (i / 4)) & 1) << j);
    }
  }
}

}  // namespace

void unpack_x8_row(const WeightMatrix& w, std::int64_t r, std::uint8_t* out) noexcept {
  const X8Block block = x8_block(w.layout);
  const std::int64_t nb = w.cols / block.values;
  const auto in_group = static_cast<int>(r % 8);
  const X8GroupRun run = x8_group_run(w.rows / 8, nb, 8 * block.row_bytes, r / 8);
  for (std::int64_t b = 0; b < nb; ++b) {
    const std::uint8_t* src = w.data + run.first + b * run.step;
    std::uint8_t* dst = out + b * block.row_bytes;
    switch (w.layout) {
      case WeightLayout::Q4_0_X8:
        unpack_q4_0_group_block(src, in_group, dst);
        break;
      case WeightLayout::Q8_0_X8:
        unpack_q8_0_group_block(src, in_group, dst);
        break;
      case WeightLayout::Q6_K_X8:
        unpack_q6_k_group_block(src, in_group, dst);
        break;
      case WeightLayout::Q5_K_X8:
        unpack_k_group_block<5>(src, in_group, dst);
        break;
      default:
        unpack_k_group_block<4>(src, in_group, dst);
        break;
    }
  }
}

namespace {

// Each row back in the ROWS layout, then the type's row kernel.
void x8_rows(const WeightMatrix& w, const Activations& x, float* y, std::int64_t row_begin,
             std::int64_t row_end) {
  thread_local std::vector<std::uint8_t> row;
  thread_local std::vector<float> one_row_y;
  row.resize(w.row_bytes);
  one_row_y.resize(static_cast<std::size_t>(x.n_tokens));
  const RowKernel row_kernel = portable_kernel(w.type);
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    unpack_x8_row(w, r, row.data());
    const WeightMatrix single{w.type, row.data(), 1, w.cols, w.row_bytes, WeightLayout::ROWS};
    row_kernel(single, x, one_row_y.data(), 0, 1);
    for (std::int64_t t = 0; t < x.n_tokens; ++t) y[t * w.rows + r] = one_row_y[static_cast<std::size_t>(t)];
  }
}

}  // namespace

RowKernel portable_x8_kernel(WeightLayout /*layout*/) noexcept {
  return x8_rows;
}

}  // namespace exo::inference::kernels
