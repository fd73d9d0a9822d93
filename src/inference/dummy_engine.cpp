#include "inference/dummy_engine.h"

#include <fmt/format.h>
#include <algorithm>
#include <random>
#include <stdexcept>

namespace exo::inference {
namespace {
constexpr std::int32_t kLayers = 8;
constexpr std::int32_t kEos = 256;
constexpr std::int32_t kVocab = 257;
constexpr std::int64_t kHiddenWidth = 4;
}  // namespace

DummyEngine::DummyEngine(asio::any_io_executor executor, std::string id,
                         std::shared_ptr<resource::ResourceRegistry> registry)
    : InferenceEngine(std::move(executor), {std::move(id), "inference_engine", "Dummy inference engine"}, {},
                      std::move(registry)) {}

ModelDescription DummyEngine::model() const {
  return {"dummy", kLayers, kVocab, kEos, "deterministic dummy engine (no model)"};
}

asio::awaitable<void> DummyEngine::do_initialize() {
  co_return;
}

asio::awaitable<void> DummyEngine::do_cleanup() {
  std::lock_guard lock(mutex_);
  requests_.clear();
  co_return;
}

asio::awaitable<resource::HealthStatus> DummyEngine::do_health_check() {
  co_return resource::HealthStatus{true, fmt::format("{} active requests", active_requests())};
}

std::map<std::string, std::string> DummyEngine::details() const {
  return {{"model", "dummy"}, {"active_requests", std::to_string(active_requests())}};
}

std::size_t DummyEngine::active_requests() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

asio::awaitable<std::vector<std::int32_t>> DummyEngine::encode(std::string text) {
  if (!ready()) co_await ensure_ready();
  std::vector<std::int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  co_return ids;
}

asio::awaitable<std::string> DummyEngine::decode(std::vector<std::int32_t> tokens) {
  if (!ready()) co_await ensure_ready();
  std::string text;
  for (std::int32_t t : tokens) {
    if (t >= 0 && t < 256) text.push_back(static_cast<char>(t));
  }
  co_return text;
}

asio::awaitable<net::Tensor> DummyEngine::infer_tensor(std::string request_id, topology::Shard shard,
                                                       net::Tensor input) {
  if (!ready()) co_await ensure_ready();
  if (shard.model_id != "dummy" || shard.n_layers != kLayers || !shard.is_well_formed()) {
    throw std::invalid_argument(fmt::format("dummy engine cannot run shard {}[{}..{}] of {} layers",
                                            shard.model_id, shard.start_layer, shard.end_layer,
                                            shard.n_layers));
  }
  std::vector<float> row(kHiddenWidth);
  std::int64_t n = 0;
  if (shard.is_first_layer()) {
    if (input.dtype() != net::DType::INT64 || input.shape().size() != 2 || input.shape()[0] != 1 ||
        input.shape()[1] < 1) {
      throw std::invalid_argument("dummy engine: the first shard takes int64 token ids [1, n] with n >= 1");
    }
    const auto ids = input.values<std::int64_t>();
    n = static_cast<std::int64_t>(ids.size());
    std::lock_guard lock(mutex_);
    RequestState& state = requests_[request_id];
    if (state.prompt_length < 0) state.prompt_length = n;
    state.position += n;
    row = {static_cast<float>(ids.back()), static_cast<float>(state.position), 0.0F,
           static_cast<float>(state.prompt_length)};
  } else {
    if (input.dtype() != net::DType::FLOAT32 || input.shape().size() != 3 ||
        input.shape()[2] != kHiddenWidth || input.shape()[1] < 1) {
      throw std::invalid_argument("dummy engine: later shards take float32 hidden states [1, n, 4]");
    }
    const auto values = input.values<float>();
    n = input.shape()[1];
    std::copy(values.end() - kHiddenWidth, values.end(), row.begin());
    if (static_cast<std::int32_t>(row[2]) != shard.start_layer) {
      throw std::invalid_argument(
          fmt::format("dummy engine: hidden state has run {} layers, shard starts at {}",
                      static_cast<std::int32_t>(row[2]), shard.start_layer));
    }
  }
  row[2] += static_cast<float>(shard.layer_count());
  if (!shard.is_last_layer()) {
    std::vector<float> hidden(static_cast<std::size_t>(n * kHiddenWidth), 0.0F);
    std::copy(row.begin(), row.end(), hidden.end() - kHiddenWidth);
    co_return net::Tensor::from_values<float>({1, n, kHiddenWidth}, hidden);
  }
  const auto generated = static_cast<std::int64_t>(row[1]) - static_cast<std::int64_t>(row[3]);
  const std::int32_t next = generated < static_cast<std::int64_t>(kDummyReply.size())
                                ? static_cast<unsigned char>(kDummyReply[static_cast<std::size_t>(generated)])
                                : kEos;
  std::vector<float> logits(kVocab, 0.0F);
  logits[static_cast<std::size_t>(next)] = 10.0F;
  co_return net::Tensor::from_values<float>({1, kVocab}, logits);
}

asio::awaitable<std::int32_t> DummyEngine::sample(net::Tensor logits, SamplingParams params) {
  if (!ready()) co_await ensure_ready();
  const auto values = logits.values<float>();
  if (values.empty()) throw std::invalid_argument("dummy engine: empty logits");
  if (params.temperature <= 0.0F) {
    co_return static_cast<std::int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
  }
  std::vector<double> weights(values.size());
  const float top = *std::max_element(values.begin(), values.end());
  for (std::size_t i = 0; i < values.size(); ++i)
    weights[i] = std::exp((values[i] - top) / params.temperature);
  std::mt19937_64 rng(params.seed);
  std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
  co_return static_cast<std::int32_t>(pick(rng));
}

void DummyEngine::release_request(const std::string& request_id) {
  std::lock_guard lock(mutex_);
  requests_.erase(request_id);
}

}  // namespace exo::inference
