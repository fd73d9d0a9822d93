// InferenceEngine: the interface every engine implements (dummy now, native GGUF later); a resource.
//
// Contract
// - Lifecycle is AsyncResource's: initialize() loads what the engine needs (for a real engine, the
//   shard's weights), cleanup() frees it, check_health() reflects the loaded state. Every public
//   operation begins with the ensure_ready() contract.
// - infer_tensor() runs the layers of `shard` for one request: the first shard takes token ids
//   (int64 [1, n]); later shards take the hidden state the previous shard returned (float32
//   [1, n, dim]); the last shard returns logits (float32 [1, vocab]) for the newest position.
//   Per-request state (e.g. KV caches) is keyed by request id and freed by release_request().
// - Thread-safety: all operations may be called from any thread; engines serialise internally.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include <span>

#include "inference/chat_template.h"
#include "inference/sampler.h"
#include "net/tensor.h"
#include "resource/async_resource.h"
#include "topology/shard.h"

namespace exo::inference {

struct ModelDescription {
  std::string model_id;
  std::int32_t n_layers = 0;
  std::int32_t vocab_size = 0;
  std::int32_t eos_token_id = -1;
  std::string note;                 // shown to users (e.g. "random-weight demo model")
  std::int64_t context_length = 0;  // positions one request may use (prompt + answer); 0: unbounded
};

// SamplingParams (temperature, top_p, seed, top_k, min_p, repetition penalty) lives in sampler.h.

class InferenceEngine : public resource::AsyncResource {
 public:
  using resource::AsyncResource::AsyncResource;

  virtual ModelDescription model() const = 0;
  // The full-model shard of the engine's model.
  topology::Shard whole_model() const {
    const ModelDescription m = model();
    return topology::Shard{m.model_id, 0, m.n_layers - 1, m.n_layers};
  }

  // The prompt text for a chat, in the model's template, ending where the assistant's answer starts.
  // Default: a plain "role: content" transcript (engines without a template, e.g. dummy).
  virtual std::string chat_prompt(std::span<const ChatMessage> messages) const {
    std::string prompt;
    for (const auto& m : messages) prompt += m.role + ": " + m.content + "\n";
    return prompt + "assistant: ";
  }

  virtual asio::awaitable<std::vector<std::int32_t>> encode(std::string text) = 0;
  // Text of generated `tokens`, as a continuation of the prompt: SPM pieces keep their leading space
  // (no dummy-prefix removal), so decoding one token at a time concatenates to the same text as
  // decoding them together. The bytes may end inside a UTF-8 character; streaming callers keep
  // their own state (TextAssembler).
  virtual asio::awaitable<std::string> decode(std::vector<std::int32_t> tokens) = 0;
  virtual asio::awaitable<net::Tensor> infer_tensor(std::string request_id, topology::Shard shard,
                                                    net::Tensor input) = 0;
  virtual asio::awaitable<std::int32_t> sample(net::Tensor logits, SamplingParams params) = 0;
  virtual void release_request(const std::string& request_id) = 0;
};

}  // namespace exo::inference
