// NativeEngine: the `native` inference engine: Llama-family GGUF models on the CPU, any layer range
// (shard) of one model file.
//
// Contract
// - Lifecycle (AsyncResource): initialize() maps the GGUF file and builds the config, the shard's
//   weights, the tokenizer and the ComputePool on the engine's own compute thread (never on the
//   caller's event loop) and co_awaits the result; model errors are permanent (not retried).
//   check_health() reports the loaded shard, weight bytes and KV memory (unhealthy when nothing is
//   loaded or the KV budget is overrun). cleanup() waits for the compute thread to drain, then frees
//   every KV cache and unmaps the file.
// - The options' shard (default: the whole model) is built and read into memory at initialize() (unless
//   read_ahead is off). Another
//   layer range of the same model is built on first use (the file is mapped once; only the tensors
//   of the ranges in use are touched); at most 4 ranges are kept, least recently used dropped.
// - infer_tensor(request, shard, input): `shard` must be a well-formed range of this model
//   (std::invalid_argument naming both otherwise), the same for every call of one request. First shard: int64
//   or int32 ids [1, n]; later shards: float32 hidden states [1, n, n_embd]. Non-last shards return float32
//   [1, n, n_embd]; the last returns float32 logits [1, n_vocab] of the newest position. Each request has a
//   KV cache (keyed by request id, positions continue across calls; F16 elements by default) charged
//   to the engine's KV budget
//   (KvBudgetError when exceeded); release_request() frees it, and a failed call leaves the cache as
//   it was. All compute runs serialised on the compute thread.
// - encode(): tokenizer with BOS/EOS as the vocabulary asks and special-token text parsed (matching
//   chat_prompt()'s output); decode(): raw text of the ids, control tokens dropped. sample(): see
//   sampler.h; its generator is seeded from (params.seed, logits), so equal inputs give equal ids.
// - model() describes the loaded file (before initialize: model id only, zero sizes).
// - Thread-safety: every public member may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "inference/chat_template.h"
#include "inference/inference_engine.h"
#include "inference/kv_cache.h"

namespace asio {
class thread_pool;
}

namespace exo::inference {

struct NativeEngineOptions {
  std::string model_path;
  std::string model_id;                  // empty: the file name without ".gguf"
  std::optional<topology::Shard> shard;  // layer range to load; nullopt: the whole model
  unsigned threads = 0;                  // compute threads; 0: one per hardware thread
  std::uint64_t kv_budget_bytes = std::uint64_t{2} << 30;
  std::int64_t max_context = 0;          // positions per request; 0: the model's context length
  TensorType kv_type = TensorType::F16;  // KV cache elements: F16 (half the memory) or F32
  bool read_ahead = true;                // read the loaded shard's weights into memory at initialize()
  std::string note;                      // appended to the model description shown to users
};

class NativeEngine : public InferenceEngine {
 public:
  // `resource_options` defaults to a 10-minute init timeout (large models load slowly).
  NativeEngine(asio::any_io_executor executor, std::string id, NativeEngineOptions options,
               std::shared_ptr<resource::ResourceRegistry> registry = nullptr,
               std::optional<resource::ResourceOptions> resource_options = std::nullopt);
  ~NativeEngine() override;

  ModelDescription model() const override;
  // The loaded layer range (throws std::logic_error before initialize).
  topology::Shard loaded_shard() const;

  asio::awaitable<std::vector<std::int32_t>> encode(std::string text) override;
  asio::awaitable<std::string> decode(std::vector<std::int32_t> tokens) override;
  asio::awaitable<net::Tensor> infer_tensor(std::string request_id, topology::Shard shard,
                                            net::Tensor input) override;
  asio::awaitable<std::int32_t> sample(net::Tensor logits, SamplingParams params) override;
  void release_request(const std::string& request_id) override;

  // The chat prompt for `messages` in the model's template (see chat_template.h).
  std::string chat_prompt(std::span<const ChatMessage> messages) const override;
  std::size_t active_requests() const;
  std::uint64_t kv_bytes_in_use() const;

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;
  bool is_retryable(const std::exception_ptr& error) const override;

 private:
  struct Loaded;
  struct RequestState;
  std::shared_ptr<Loaded> loaded() const;
  std::shared_ptr<asio::thread_pool> compute() const;

  const NativeEngineOptions options_;
  mutable std::mutex mutex_;
  std::shared_ptr<Loaded> loaded_;                                 // guarded by mutex_
  std::shared_ptr<asio::thread_pool> compute_;                     // guarded by mutex_
  std::map<std::string, std::shared_ptr<RequestState>> requests_;  // guarded by mutex_
};

}  // namespace exo::inference
