// DummyEngine: a deterministic engine for tests and demos (model id "dummy", 8 layers, as in legacy
// exo). It needs no model file.
//
// Contract
// - Tokens are UTF-8 bytes (ids 0..255) plus EOS (256). The reply to any prompt is kDummyReply,
//   one byte per token, then EOS: the same whether the model runs whole or split into shards.
// - The hidden state is float32 [1, n, 4]; its last row carries (last token, position, layers run so
//   far, prompt length), so any split of the 8 layers gives identical results and a missing or
//   repeated layer range is detected (std::invalid_argument).
// - Thread-safe; per-request state is keyed by request id and freed by release_request().
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "inference/inference_engine.h"

namespace exo::inference {

inline constexpr std::string_view kDummyReply = "This is the exo dummy engine answering. ";

class DummyEngine : public InferenceEngine {
 public:
  DummyEngine(asio::any_io_executor executor, std::string id,
              std::shared_ptr<resource::ResourceRegistry> registry);

  ModelDescription model() const override;
  asio::awaitable<std::vector<std::int32_t>> encode(std::string text) override;
  asio::awaitable<std::string> decode(std::vector<std::int32_t> tokens) override;
  asio::awaitable<net::Tensor> infer_tensor(std::string request_id, topology::Shard shard,
                                            net::Tensor input) override;
  asio::awaitable<std::int32_t> sample(net::Tensor logits, SamplingParams params) override;
  void release_request(const std::string& request_id) override;
  std::size_t active_requests() const;

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  struct RequestState {
    std::int64_t position = 0;
    std::int64_t prompt_length = -1;
  };
  mutable std::mutex mutex_;
  std::map<std::string, RequestState> requests_;
};

}  // namespace exo::inference
