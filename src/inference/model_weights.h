// ModelWeights: one shard's view of a model's tensors (a layer range plus embeddings / output).
//
// Contract
// - load() finds and validates only the tensors the shard needs: token_embd on the first shard (and
//   on the last when the output is tied), output_norm + output on the last, and for every layer of
//   [start_layer, end_layer] (inclusive) attn_norm, attn_q/k/v (+ their biases for qwen2),
//   attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down. A missing tensor, a wrong shape or a type the
//   engine cannot multiply throws ModelError naming the tensor (and its type).
// - Matrices are WeightMatrix views into the GgufFile's mapping, or into a RepackedWeights' copies
//   when load() is given one: both must outlive the ModelWeights. Only the shard's tensors are ever read, so
//   only their pages are touched; fault_in() reads them in ahead of the first request. Norm weights, biases
//   and rope factors are small and copied to float vectors.
// - Immutable after load(); safe to read from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "inference/matmul.h"
#include "inference/model_config.h"

namespace exo::inference {

class GgufFile;
class RepackedWeights;

struct LayerWeights {
  std::vector<float> attn_norm;
  WeightMatrix attn_q, attn_k, attn_v, attn_output;
  std::vector<float> attn_q_bias, attn_k_bias, attn_v_bias;  // empty when the model has none
  std::vector<float> ffn_norm;
  WeightMatrix ffn_gate, ffn_up, ffn_down;
};

// True for the tensor types matmul() and the embedding lookup accept.
bool is_supported_weight_type(TensorType type) noexcept;

class ModelWeights {
 public:
  // Layers [start_layer, end_layer] (inclusive) of config.n_layer. With `repacked`, the matrices the
  // shard multiplies come from it, in the kernels' fastest layout (it must outlive the result); the
  // embedding table stays a view of the file.
  static ModelWeights load(const GgufFile& file, const ModelConfig& config, std::int64_t start_layer,
                           std::int64_t end_layer, RepackedWeights* repacked = nullptr);

  std::int64_t start_layer() const noexcept { return start_layer_; }
  std::int64_t end_layer() const noexcept { return end_layer_; }
  bool is_first() const noexcept { return start_layer_ == 0; }
  bool is_last() const noexcept { return end_layer_ == n_layers_ - 1; }
  std::int64_t layer_count() const noexcept { return end_layer_ - start_layer_ + 1; }
  // Weights of absolute layer `layer` (start_layer <= layer <= end_layer).
  const LayerWeights& layer(std::int64_t layer) const {
    return layers_.at(static_cast<std::size_t>(layer - start_layer_));
  }

  // First shard (and last, when tied): the embedding matrix [n_vocab rows of n_embd].
  const std::optional<WeightMatrix>& token_embd() const noexcept { return token_embd_; }
  // Last shard only: final norm weights and the output matrix (token_embd when tied).
  const std::vector<float>& output_norm() const noexcept { return output_norm_; }
  const std::optional<WeightMatrix>& output() const noexcept { return output_; }
  // Per-pair RoPE frequencies (radians per position), scaling applied.
  const std::vector<double>& rope_frequencies() const noexcept { return rope_frequencies_; }

  // Bytes of the file the shard uses (each tensor counted once).
  std::uint64_t weight_bytes() const noexcept { return weight_bytes_; }
  // Reads one byte of every page of the shard's matrices (where the kernels read them: the file or a
  // repacked copy; vectors were copied to floats at load), in load order, so that all are resident;
  // returns the bytes covered. What a first request would otherwise fault in. Faults (rather than
  // madvise(MADV_WILLNEED)) let the kernel read a mapping advised for huge pages in 2 MiB folios,
  // which are then mapped as huge pages (MappedFile); measured on TinyLlama Q8_0 from a cold cache:
  // 984 of 1,115 MiB in huge pages and 0.8-1.1 s, against 330 MiB and 1.3-1.5 s after WILLNEED.
  std::uint64_t fault_in() const noexcept;

 private:
  struct Span {
    const std::uint8_t* data;
    std::uint64_t size;
  };
  std::int64_t start_layer_ = 0;
  std::int64_t end_layer_ = 0;
  std::int64_t n_layers_ = 0;
  std::vector<LayerWeights> layers_;
  std::optional<WeightMatrix> token_embd_;
  std::vector<float> output_norm_;
  std::optional<WeightMatrix> output_;
  std::vector<double> rope_frequencies_;
  std::vector<Span> spans_;
  std::uint64_t weight_bytes_ = 0;
};

}  // namespace exo::inference
