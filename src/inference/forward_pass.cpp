#include "inference/forward_pass.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "inference/matmul.h"

namespace exo::inference {

namespace {

// Work items per chunk so that a chunk is worth handing to another thread (~64k multiply-adds).
std::int64_t grain_for(std::int64_t cost_per_item) {
  return std::max<std::int64_t>(1, (std::int64_t{1} << 16) / std::max<std::int64_t>(1, cost_per_item));
}

}  // namespace

ForwardPass::ForwardPass(const ModelConfig& config, const ModelWeights& weights, ComputePool& pool)
    : config_(&config), weights_(&weights), pool_(&pool) {}

std::unique_ptr<KvCache> ForwardPass::make_cache(std::shared_ptr<KvBudget> budget, std::int64_t max_positions,
                                                 TensorType type) const {
  if (max_positions <= 0) max_positions = config_->n_ctx;
  return std::make_unique<KvCache>(std::move(budget), weights_->start_layer(), weights_->layer_count(),
                                   config_->kv_dim(), max_positions, type);
}

std::vector<float> ForwardPass::run_tokens(std::span<const std::int32_t> ids, KvCache& cache, Logits logits) {
  if (!weights_->is_first())
    throw std::invalid_argument(fmt::format(
        "the shard starting at layer {} takes hidden states, not token ids", weights_->start_layer()));
  if (ids.empty()) throw std::invalid_argument("no token ids");
  const std::int64_t dim = config_->n_embd;
  const auto n = static_cast<std::int64_t>(ids.size());
  std::vector<float> x(static_cast<std::size_t>(n * dim));
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int32_t id = ids[static_cast<std::size_t>(t)];
    if (id < 0 || id >= config_->n_vocab)
      throw std::invalid_argument(
          fmt::format("token id {} is outside the vocabulary [0, {})", id, config_->n_vocab));
    dequantize_matrix_row(
        *weights_->token_embd(), id,
        std::span<float>(x).subspan(static_cast<std::size_t>(t * dim), static_cast<std::size_t>(dim)));
  }
  return run(std::move(x), n, cache, logits);
}

std::vector<float> ForwardPass::run_hidden(std::span<const float> hidden, KvCache& cache, Logits logits) {
  if (weights_->is_first()) throw std::invalid_argument("the first shard takes token ids, not hidden states");
  const std::int64_t dim = config_->n_embd;
  if (hidden.empty() || hidden.size() % static_cast<std::size_t>(dim) != 0)
    throw std::invalid_argument(fmt::format(
        "hidden state has {} values, not a positive multiple of n_embd = {}", hidden.size(), dim));
  const auto n = static_cast<std::int64_t>(hidden.size()) / dim;
  return run(std::vector<float>(hidden.begin(), hidden.end()), n, cache, logits);
}

std::vector<float> ForwardPass::run(std::vector<float> x, std::int64_t n, KvCache& cache, Logits logits) {
  const std::int64_t start = weights_->start_layer();
  const std::int64_t end = weights_->end_layer();
  if (!cache.covers(start) || !cache.covers(end) || cache.kv_dim() != config_->kv_dim())
    throw std::invalid_argument("the KV cache does not belong to this shard");
  const std::int64_t first_position = cache.length(start);
  for (std::int64_t l = start; l <= end; ++l)
    if (cache.length(l) != first_position)
      throw std::logic_error(
          fmt::format("KV cache out of step: layer {} holds {} positions, layer {} holds {}", start,
                      first_position, l, cache.length(l)));
  x_ = std::move(x);
  try {
    for (std::int64_t l = start; l <= end; ++l) layer(l, n, first_position, cache);
  } catch (...) {
    cache.truncate(first_position);
    throw;
  }
  if (!weights_->is_last()) return std::move(x_);

  const std::int64_t dim = config_->n_embd;
  const std::int64_t rows = logits == Logits::ALL ? n : 1;
  const auto first_row = static_cast<std::size_t>((n - rows) * dim);
  h_.resize(static_cast<std::size_t>(rows * dim));
  rms_norm(std::span<const float>(x_).subspan(first_row), weights_->output_norm(), h_, rows);
  std::vector<float> out(static_cast<std::size_t>(rows * config_->n_vocab));
  matmul(*weights_->output(), h_, rows, out, *pool_);
  return out;
}

void ForwardPass::rms_norm(std::span<const float> in, std::span<const float> weight, std::span<float> out,
                           std::int64_t n) {
  const std::int64_t dim = config_->n_embd;
  const double eps = config_->rms_eps;
  auto rows = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) {
      const float* row = in.data() + t * dim;
      float* dst = out.data() + t * dim;
      double sum = 0;
      for (std::int64_t i = 0; i < dim; ++i) sum += static_cast<double>(row[i]) * row[i];
      const auto scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
      for (std::int64_t i = 0; i < dim; ++i) dst[i] = row[i] * scale * weight[static_cast<std::size_t>(i)];
    }
  };
  pool_->parallel_for(n, rows, grain_for(dim * 4));
}

void ForwardPass::rope(std::span<float> rows, std::int64_t n, std::int64_t heads,
                       std::int64_t first_position) const {
  const std::int64_t hd = config_->head_dim;
  const std::int64_t half = hd / 2;
  const std::vector<double>& theta = weights_->rope_frequencies();
  const bool adjacent = config_->rope_style == RopeStyle::ADJACENT_PAIRS;
  std::vector<float> cosines(static_cast<std::size_t>(half));
  std::vector<float> sines(static_cast<std::size_t>(half));
  for (std::int64_t t = 0; t < n; ++t) {
    const auto position = static_cast<double>(first_position + t);
    for (std::int64_t i = 0; i < half; ++i) {
      const double angle = position * theta[static_cast<std::size_t>(i)];
      cosines[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(angle));
      sines[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(angle));
    }
    for (std::int64_t h = 0; h < heads; ++h) {
      float* v = rows.data() + (t * heads + h) * hd;
      for (std::int64_t i = 0; i < half; ++i) {
        float& a = adjacent ? v[2 * i] : v[i];
        float& b = adjacent ? v[2 * i + 1] : v[i + half];
        const float c = cosines[static_cast<std::size_t>(i)];
        const float s = sines[static_cast<std::size_t>(i)];
        const float a0 = a;
        const float b0 = b;
        a = a0 * c - b0 * s;
        b = a0 * s + b0 * c;
      }
    }
  }
}

void ForwardPass::layer(std::int64_t index, std::int64_t n, std::int64_t first_position, KvCache& cache) {
  const ModelConfig& c = *config_;
  const LayerWeights& w = weights_->layer(index);
  const std::int64_t dim = c.n_embd;
  const auto rows = [n](std::int64_t width) { return static_cast<std::size_t>(n * width); };

  // Attention block.
  h_.resize(rows(dim));
  rms_norm(x_, w.attn_norm, h_, n);
  q_.resize(rows(c.q_dim()));
  k_.resize(rows(c.kv_dim()));
  v_.resize(rows(c.kv_dim()));
  const MatmulOutput qkv[] = {{w.attn_q, q_}, {w.attn_k, k_}, {w.attn_v, v_}};
  matmul_group(qkv, h_, n, *pool_);
  const auto add_bias = [n](std::vector<float>& out, const std::vector<float>& bias) {
    if (bias.empty()) return;
    for (std::int64_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < bias.size(); ++i)
        out[static_cast<std::size_t>(t) * bias.size() + i] += bias[i];
  };
  add_bias(q_, w.attn_q_bias);
  add_bias(k_, w.attn_k_bias);
  add_bias(v_, w.attn_v_bias);
  rope(q_, n, c.n_head, first_position);
  rope(k_, n, c.n_head_kv, first_position);
  cache.append(index, k_, v_);
  attn_.resize(rows(c.q_dim()));
  attention(index, n, first_position, cache);
  proj_.resize(rows(dim));
  matmul(w.attn_output, attn_, n, proj_, *pool_);
  for (std::size_t i = 0; i < proj_.size(); ++i) x_[i] += proj_[i];

  // Feed-forward block (SwiGLU).
  rms_norm(x_, w.ffn_norm, h_, n);
  gate_.resize(rows(c.n_ff));
  up_.resize(rows(c.n_ff));
  const MatmulOutput gate_up[] = {{w.ffn_gate, gate_}, {w.ffn_up, up_}};
  matmul_group(gate_up, h_, n, *pool_);
  pool_->parallel_for(
      static_cast<std::int64_t>(gate_.size()),
      [this](std::int64_t begin, std::int64_t end) {
        silu_mul_f32(gate_.data() + begin, up_.data() + begin, end - begin);
      },
      std::int64_t{1} << 14);
  matmul(w.ffn_down, gate_, n, proj_, *pool_);
  for (std::size_t i = 0; i < proj_.size(); ++i) x_[i] += proj_[i];
}

void ForwardPass::attention(std::int64_t index, std::int64_t n, std::int64_t first_position,
                            const KvCache& cache) {
  const ModelConfig& c = *config_;
  const std::int64_t hd = c.head_dim;
  const std::int64_t q_dim = c.q_dim();
  const std::int64_t kv_dim = c.kv_dim();
  const std::int64_t group = c.gqa_group();
  const KvCache::StoredRows stored = cache.stored(index);
  const std::size_t element_bytes = tensor_type_info(cache.type()).bytes_per_block;  // F32 / F16: 1 value
  const auto* keys = static_cast<const std::uint8_t*>(stored.keys);
  const auto* values = static_cast<const std::uint8_t*>(stored.values);
  const float scale = 1.0F / std::sqrt(static_cast<float>(hd));
  const std::int64_t context = first_position + n;
  // A work item is one key/value head for up to tokens_per_tile positions: its group's query heads
  // at those positions share every block of keys and values the kernel reads.
  constexpr std::int64_t tokens_per_tile = 4;
  const std::int64_t tiles = (n + tokens_per_tile - 1) / tokens_per_tile;
  const std::int64_t items = tiles * c.n_head_kv;

  auto run_items = [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(static_cast<std::size_t>(tokens_per_tile * group * context));
    std::vector<const float*> queries;
    std::vector<std::int64_t> visible;
    std::vector<float*> outputs;
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t first_token = item / c.n_head_kv * tokens_per_tile;
      const std::int64_t kv_head = item % c.n_head_kv;
      queries.clear();
      visible.clear();
      outputs.clear();
      for (std::int64_t t = first_token; t < std::min(n, first_token + tokens_per_tile); ++t) {
        for (std::int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h) {
          queries.push_back(q_.data() + t * q_dim + h * hd);
          visible.push_back(first_position + t + 1);  // causal: positions 0..first_position + t
          outputs.push_back(attn_.data() + t * q_dim + h * hd);
        }
      }
      const auto head_offset = static_cast<std::size_t>(kv_head * hd) * element_bytes;
      const AttentionRows rows{.kv_type = cache.type(),
                               .keys = keys + head_offset,
                               .values = values + head_offset,
                               .stride = kv_dim,
                               .head_dim = hd,
                               .scale = scale,
                               .q = queries,
                               .visible = visible,
                               .out = outputs};
      attend_f32(rows, scratch.data());
    }
  };
  pool_->parallel_for(items, run_items, grain_for(tokens_per_tile * group * context * hd * 2));
}

}  // namespace exo::inference
