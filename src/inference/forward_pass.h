// ForwardPass: runs the transformer layers of one shard over a batch of positions.
//
// Contract
// - Math (Llama family): x = token_embd[id] on the first shard; per layer h = RMSNorm(x)·attn_norm,
//   q/k/v = h·Wᵀ (+ bias for qwen2), RoPE on q and k (adjacent pairs for llama, halves for qwen2),
//   causal softmax(q·kᵀ/√head_dim) over the request's cached and new positions, GQA (query head h
//   reads kv head h / (n_head / n_head_kv)), x += attn·Woᵀ, h = RMSNorm(x)·ffn_norm,
//   x += (silu(h·W_gateᵀ) ⊙ h·W_upᵀ)·W_downᵀ; the last shard returns RMSNorm(x)·output_norm·W_outᵀ.
//   Activations and the KV cache are F32.
// - Prompts run as one batch: every weight matrix is multiplied with all n positions at once
//   (matmul with n_tokens = n); generation is the same code with n = 1. Attention and the larger
//   element-wise steps run on the ComputePool.
// - The positions of a call continue the cache: the first new position is cache.length(start_layer)
//   (all the shard's layers must agree). On an exception the cache is rolled back to where it was.
// - Not thread-safe: one call at a time per object (it owns scratch buffers), on a thread that is
//   not an Asio event-loop thread. config, weights and pool must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "inference/compute_pool.h"
#include "inference/kv_cache.h"
#include "inference/model_config.h"
#include "inference/model_weights.h"

namespace exo::inference {

class ForwardPass {
 public:
  // Which logits the last shard returns.
  enum class Logits { LAST, ALL };

  ForwardPass(const ModelConfig& config, const ModelWeights& weights, ComputePool& pool);

  const ModelConfig& config() const noexcept { return *config_; }
  const ModelWeights& weights() const noexcept { return *weights_; }

  // A cache for this shard's layers (max_positions 0: the model's context length), storing F32 or F16.
  std::unique_ptr<KvCache> make_cache(std::shared_ptr<KvBudget> budget, std::int64_t max_positions = 0,
                                      TensorType type = TensorType::F32) const;

  // First shard: token ids (each in [0, n_vocab); std::invalid_argument otherwise).
  // Returns hidden states [n][n_embd] unless the shard is the last one, then logits
  // [1][n_vocab] (LAST) or [n][n_vocab] (ALL).
  std::vector<float> run_tokens(std::span<const std::int32_t> ids, KvCache& cache,
                                Logits logits = Logits::LAST);
  // Later shards: hidden states [n][n_embd] from the previous shard; same result convention.
  std::vector<float> run_hidden(std::span<const float> hidden, KvCache& cache, Logits logits = Logits::LAST);

 private:
  std::vector<float> run(std::vector<float> x, std::int64_t n, KvCache& cache, Logits logits);
  void layer(std::int64_t index, std::int64_t n, std::int64_t first_position, KvCache& cache);
  void attention(std::int64_t index, std::int64_t n, std::int64_t first_position, const KvCache& cache);
  void rms_norm(std::span<const float> in, std::span<const float> weight, std::span<float> out,
                std::int64_t n);
  void rope(std::span<float> rows, std::int64_t n, std::int64_t heads, std::int64_t first_position) const;

  const ModelConfig* config_;
  const ModelWeights* weights_;
  ComputePool* pool_;
  // Scratch, sized per call.
  std::vector<float> x_, h_, q_, k_, v_, attn_, proj_, gate_, up_;
};

}  // namespace exo::inference
