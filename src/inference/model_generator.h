// Random-weight GGUF models of the llama and qwen2 architectures, for tests, benchmarks and the
// node's offline demo: real shapes (TinyLlama-1.1B, Llama-3.2-1B, ...) without downloads.
//
// Contract
// - generate_model writes a GGUF v3 file with the tensor names, shapes and metadata keys the llama
//   family uses (llama.cpp reads it too): token_embd, per layer attn_norm / attn_q / attn_k / attn_v /
//   attn_output / ffn_norm / ffn_gate / ffn_up / ffn_down (+ attn_q/k/v biases for qwen2),
//   output_norm and, unless tied, output. Every 2-D weight is stored as `type` (quantized with
//   quants.h), or with `medium_mix` as llama.cpp's Q4_K_M / Q5_K_M files store them: Q6_K for
//   output, and for attn_v and ffn_down in the layers that recipe gives more bits (the first and
//   last eighth of the layers and every third one between); norms and biases are F32.
// - Weights are N(0, sigma) (sigma = weight_sigma, token_embd uses embedding_sigma); norm weights
//   are 1 and biases N(0, sigma). Values come from a counter-based generator keyed by (seed, tensor
//   index, row), so the file is identical for a given seed and shape whatever the thread count.
// - The vocabulary: every `tokenizer.*` key copied from `vocab_from` (a GGUF, e.g. a vocab-only file),
//   or, when vocab_from is empty, a built-in 259-token SentencePiece-style vocabulary (<unk>, <s>,
//   </s> and the 256 byte tokens: byte fallback encodes any text). n_vocab is the vocabulary's size.
// - Errors (unknown preset or architecture, a shape the type cannot hold, unreadable vocabulary,
//   I/O) throw std::invalid_argument / std::runtime_error / GgufError naming the problem. Work is
//   spread over `threads` threads (0 = all cores). Never prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/tensor_types.h"

namespace exo::inference {

struct ModelShape {
  std::string architecture = "llama";  // "llama" or "qwen2"
  std::string name = "random";
  std::uint32_t n_embd = 256;
  std::uint32_t n_layer = 2;
  std::uint32_t n_head = 4;
  std::uint32_t n_head_kv = 2;
  std::uint32_t n_ff = 768;
  std::uint32_t n_ctx = 2048;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;
  std::uint32_t expected_vocab = 0;  // informational: the vocabulary the preset is meant for
};

// Named presets: "tinyllama-1.1b", "llama-3.2-1b", "qwen2-0.5b", "demo". nullopt when unknown.
std::optional<ModelShape> model_preset(std::string_view name);
std::vector<std::string> model_preset_names();

struct GenerateOptions {
  ModelShape shape;
  TensorType type = TensorType::Q8_0;
  bool medium_mix = false;  // the Q4_K_M / Q5_K_M recipe (type Q4_K or Q5_K only)
  std::string vocab_from;   // empty: built-in byte vocabulary
  std::uint64_t seed = 42;
  float weight_sigma = 0.02f;
  float embedding_sigma = 0.02f;
  unsigned threads = 0;
};

struct GeneratedModel {
  std::uint64_t file_bytes = 0;
  std::uint64_t parameters = 0;
  std::uint32_t n_vocab = 0;
  std::size_t tensors = 0;
};

// Throws std::invalid_argument when the shape is inconsistent (zero sizes, n_embd not a multiple of
// n_head, n_head not a multiple of n_head_kv, row lengths not a multiple of the type's block size).
void validate_shape(const ModelShape& shape, TensorType type);

GeneratedModel generate_model(const GenerateOptions& options, const std::string& out_path);

// Parses "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"
// (case-insensitive); nullopt otherwise.
std::optional<TensorType> parse_weight_type(std::string_view name);

// A --type value: a weight type, or "q4_k_m" / "q5_k_m" (Q4_K / Q5_K with the medium mix).
struct WeightRecipe {
  TensorType type = TensorType::Q8_0;
  bool medium_mix = false;
};
std::optional<WeightRecipe> parse_weight_recipe(std::string_view name);

// Whether the medium mix gives layer `layer` of `layers` more bits (llama.cpp's use_more_bits).
bool medium_mix_more_bits(std::uint32_t layer, std::uint32_t layers) noexcept;

}  // namespace exo::inference
