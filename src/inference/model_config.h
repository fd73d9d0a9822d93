// ModelConfig: the hyper-parameters of a Llama-family model, read from GGUF metadata.
//
// Contract: ModelConfig::from_gguf() reads `<arch>.*` metadata for the architectures `llama` and
// `qwen2` and validates it (positive sizes, n_head divisible by n_head_kv, RoPE dimension equal to the
// head size, even head size, token_embd present with shape [n_embd, n_vocab]); anything else throws
// ModelError with a message naming the key, the tensor or the architecture ("unsupported architecture
// 'x'"). The result is an immutable value, safe to share between threads. rope_inverse_frequencies()
// is a pure function of a config (and the optional `rope_freqs` factors).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace exo::inference {

class GgufFile;

// A model file the engine cannot run (unsupported architecture, tensor type, inconsistent shapes).
class ModelError : public std::runtime_error {
 public:
  explicit ModelError(const std::string& message) : std::runtime_error(message) {}
};

enum class Architecture { LLAMA, QWEN2 };

// How RoPE pairs the dimensions of a head: (2i, 2i+1) for llama (ggml "normal" mode), (i, i + d/2)
// for qwen2 (ggml "neox" mode).
enum class RopeStyle { ADJACENT_PAIRS, HALVES };

struct RopeScaling {
  enum class Kind { NONE, LINEAR, LLAMA3 };
  Kind kind = Kind::NONE;
  float factor = 1.0F;           // LINEAR: positions are divided by it; LLAMA3: low-frequency divisor
  float low_freq_factor = 1.0F;  // LLAMA3 only
  float high_freq_factor = 4.0F;
  std::uint32_t original_context = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::LLAMA;
  std::string architecture_name;  // "llama" / "qwen2"
  std::string name;               // general.name, may be empty
  std::int64_t n_embd = 0;
  std::int64_t n_layer = 0;
  std::int64_t n_head = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t head_dim = 0;
  std::int64_t n_ff = 0;
  std::int64_t n_vocab = 0;  // rows of token_embd
  std::int64_t n_ctx = 0;    // training context length
  float rope_base = 10000.0F;
  RopeStyle rope_style = RopeStyle::ADJACENT_PAIRS;
  RopeScaling rope_scaling;
  bool has_rope_freqs = false;  // a `rope_freqs.weight` tensor (per-frequency divisors) is present
  float rms_eps = 1e-5F;
  bool tied_output = false;     // no output.weight: logits use token_embd
  bool attention_bias = false;  // qwen2: attn_q/k/v have biases

  std::int64_t q_dim() const noexcept { return n_head * head_dim; }
  std::int64_t kv_dim() const noexcept { return n_head_kv * head_dim; }
  std::int64_t gqa_group() const noexcept { return n_head / n_head_kv; }

  static ModelConfig from_gguf(const GgufFile& file);
};

// The per-pair angular frequencies theta_i (radians per position) for i < head_dim/2, with the
// config's scaling applied: base^(-2i/head_dim), divided by rope_freqs[i] when given (it must then
// hold head_dim/2 values), else adjusted by the llama3 or linear scaling of the metadata.
std::vector<double> rope_inverse_frequencies(const ModelConfig& config,
                                             std::span<const float> rope_freqs = {});

}  // namespace exo::inference
