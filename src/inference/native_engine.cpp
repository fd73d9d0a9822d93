#include "inference/native_engine.h"

#include <fmt/format.h>

#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <functional>
#include <system_error>

#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/matmul.h"
#include "inference/model_config.h"
#include "inference/model_weights.h"
#include "inference/repacked_weights.h"
#include "inference/sampler.h"
#include "inference/tokenizer.h"
#include "resource/errors.h"

namespace exo::inference {

// The weights and forward pass of one layer range. Built and used on the compute thread only.
struct ShardRuntime {
  topology::Shard shard;
  std::optional<ModelWeights> weights;
  std::unique_ptr<ForwardPass> forward;
  std::uint64_t last_used = 0;
};

struct NativeEngine::Loaded {
  explicit Loaded(GgufFile f) : file(std::move(f)) {}
  GgufFile file;
  ModelConfig config;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<ComputePool> pool;
  // The shards' matrices in the kernels' layout, shared by every runtime (declared before them, so
  // destroyed after them).
  RepackedWeights repacked;
  std::shared_ptr<KvBudget> budget;
  // Compute thread only: the shards built so far (the loaded one first), least recently used evicted.
  std::map<std::pair<std::int32_t, std::int32_t>, std::shared_ptr<ShardRuntime>> runtimes;
  std::uint64_t use_counter = 0;
  std::uint64_t loaded_weight_bytes = 0;
  ModelDescription description;
  topology::Shard shard;
  ChatTemplate chat = ChatTemplate::CHATML;
  std::int64_t max_context = 0;
  TensorType kv_type = TensorType::F16;
};

// One request's KV cache and the shard runtime it was started on (compute thread only, after
// creation).
struct NativeEngine::RequestState {
  topology::Shard shard;
  std::shared_ptr<ShardRuntime> runtime;
  std::unique_ptr<KvCache> cache;
};

namespace {

using namespace std::chrono_literals;

std::string default_model_id(const NativeEngineOptions& options) {
  if (!options.model_id.empty()) return options.model_id;
  std::filesystem::path path(options.model_path);
  return path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
}

resource::ResourceOptions engine_resource_options(std::optional<resource::ResourceOptions> options) {
  if (options) return *options;
  resource::ResourceOptions defaults;
  defaults.init_timeout = 10min;
  return defaults;
}

// Runs `work` on `pool`'s thread and resumes the awaiting coroutine on its own executor with the
// result (or the exception). The posted job does not own the pool, so the pool is never destroyed
// on its own thread.
template <typename R>
asio::awaitable<R> run_on(std::shared_ptr<asio::thread_pool> pool, std::function<R()> work) {
  auto initiation = [pool](auto handler, std::function<R()> fn) {
    auto guard = asio::make_work_guard(asio::get_associated_executor(handler));
    asio::post(*pool, [handler = std::move(handler), fn = std::move(fn), guard = std::move(guard)]() mutable {
      std::exception_ptr error;
      R result{};
      try {
        // The job (and whatever it captured) is destroyed before the caller resumes.
        auto job = std::move(fn);
        result = job();
      } catch (...) {
        error = std::current_exception();
      }
      auto executor = guard.get_executor();
      asio::post(executor, [handler = std::move(handler), error, result = std::move(result)]() mutable {
        std::move(handler)(error, std::move(result));
      });
      guard.reset();
    });
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
      initiation, asio::use_awaitable, std::move(work));
}

std::string shard_text(const topology::Shard& s) {
  return fmt::format("{}[{}..{}] of {} layers", s.model_id, s.start_layer, s.end_layer, s.n_layers);
}

constexpr std::size_t kMaxShardRuntimes = 4;

std::shared_ptr<ShardRuntime> build_runtime(const GgufFile& file, const ModelConfig& config,
                                            ComputePool& pool, RepackedWeights& repacked,
                                            const topology::Shard& shard) {
  auto rt = std::make_shared<ShardRuntime>();
  rt->shard = shard;
  rt->weights.emplace(ModelWeights::load(file, config, shard.start_layer, shard.end_layer, &repacked));
  rt->forward = std::make_unique<ForwardPass>(config, *rt->weights, pool);
  return rt;
}

}  // namespace

NativeEngine::NativeEngine(asio::any_io_executor executor, std::string id, NativeEngineOptions options,
                           std::shared_ptr<resource::ResourceRegistry> registry,
                           std::optional<resource::ResourceOptions> resource_options)
    : InferenceEngine(std::move(executor), {std::move(id), "inference_engine", "Native inference engine"},
                      engine_resource_options(std::move(resource_options)), std::move(registry)),
      options_(std::move(options)) {}

NativeEngine::~NativeEngine() = default;

std::shared_ptr<NativeEngine::Loaded> NativeEngine::loaded() const {
  const std::lock_guard lock(mutex_);
  return loaded_;
}

std::shared_ptr<asio::thread_pool> NativeEngine::compute() const {
  const std::lock_guard lock(mutex_);
  return compute_;
}

ModelDescription NativeEngine::model() const {
  if (auto l = loaded()) return l->description;
  return ModelDescription{default_model_id(options_), 0, 0, -1, "native engine (model not loaded)"};
}

topology::Shard NativeEngine::loaded_shard() const {
  auto l = loaded();
  if (!l) throw std::logic_error("native engine: no model loaded");
  return l->shard;
}

asio::awaitable<void> NativeEngine::do_initialize() {
  auto pool = std::make_shared<asio::thread_pool>(1);
  {
    const std::lock_guard lock(mutex_);
    compute_ = pool;
  }
  const NativeEngineOptions options = options_;
  std::function<std::shared_ptr<Loaded>()> job = [options]() {
    auto l = std::make_shared<Loaded>(GgufFile::open(options.model_path));
    l->config = ModelConfig::from_gguf(l->file);
    const ModelConfig& c = l->config;
    const std::string model_id = default_model_id(options);
    const auto n_layers = static_cast<std::int32_t>(c.n_layer);
    topology::Shard shard{model_id, 0, n_layers - 1, n_layers};
    if (options.shard) {
      const topology::Shard& wanted = *options.shard;
      if (wanted.n_layers != n_layers || !wanted.is_well_formed())
        throw ModelError(fmt::format("shard {} does not fit {}, which has {} layers", shard_text(wanted),
                                     options.model_path, n_layers));
      if (!wanted.model_id.empty() && wanted.model_id != model_id)
        throw ModelError(fmt::format("shard {} names another model than '{}'", shard_text(wanted), model_id));
      shard.start_layer = wanted.start_layer;
      shard.end_layer = wanted.end_layer;
    }
    l->shard = shard;
    l->tokenizer.emplace(Tokenizer::from_gguf(l->file));
    l->pool = std::make_unique<ComputePool>(options.threads);
    l->repacked.set_pool(l->pool.get());  // this compute thread owns the pool
    auto runtime = build_runtime(l->file, c, *l->pool, l->repacked, shard);
    if (options.read_ahead) {
      runtime->weights->fault_in();
      l->repacked.release_sources();  // the faults mapped whole 2 MiB pages, released parts included
    }
    l->loaded_weight_bytes = runtime->weights->weight_bytes();
    l->runtimes[{shard.start_layer, shard.end_layer}] = std::move(runtime);
    if (options.kv_type != TensorType::F32 && options.kv_type != TensorType::F16)
      throw ModelError(
          fmt::format("KV cache type must be f32 or f16, not {}", tensor_type_name(options.kv_type)));
    l->budget = std::make_shared<KvBudget>(options.kv_budget_bytes);
    l->max_context = options.max_context > 0 ? options.max_context : c.n_ctx;
    l->kv_type = options.kv_type;
    l->chat =
        choose_chat_template(l->file.find_string("tokenizer.chat_template"), &l->tokenizer->vocabulary());
    const auto eos = l->tokenizer->vocabulary().eos();
    l->description = ModelDescription{
        model_id, n_layers, static_cast<std::int32_t>(c.n_vocab), eos ? *eos : -1,
        fmt::format("{} ({}, {} layers{})", c.name.empty() ? model_id : c.name, c.architecture_name, n_layers,
                    shard.layer_count() == n_layers
                        ? ""
                        : fmt::format(", shard {}..{}", shard.start_layer, shard.end_layer))};
    if (!options.note.empty()) l->description.note += "; " + options.note;
    l->description.context_length = l->max_context;
    return l;
  };
  auto l = co_await run_on<std::shared_ptr<Loaded>>(pool, std::move(job));
  const std::lock_guard lock(mutex_);
  loaded_ = std::move(l);
}

asio::awaitable<void> NativeEngine::do_cleanup() {
  std::shared_ptr<asio::thread_pool> pool;
  std::shared_ptr<Loaded> l;
  {
    const std::lock_guard lock(mutex_);
    pool = std::exchange(compute_, nullptr);
    l = std::exchange(loaded_, nullptr);
    requests_.clear();
  }
  // Everything queued before this point finishes first (the compute thread runs jobs in order).
  if (pool) co_await run_on<bool>(pool, std::function<bool()>([] { return true; }));
  l.reset();
}

asio::awaitable<resource::HealthStatus> NativeEngine::do_health_check() {
  auto l = loaded();
  if (!l) co_return resource::HealthStatus{false, "no model loaded"};
  const std::uint64_t used = l->budget->used();
  const bool ok = used <= l->budget->limit();
  co_return resource::HealthStatus{
      ok, fmt::format("{}: layers {}..{} of {}, weights {:.1f} MiB, KV {:.1f} of {:.1f} MiB, {} requests",
                      l->shard.model_id, l->shard.start_layer, l->shard.end_layer, l->shard.n_layers,
                      static_cast<double>(l->loaded_weight_bytes) / 1048576.0,
                      static_cast<double>(used) / 1048576.0,
                      static_cast<double>(l->budget->limit()) / 1048576.0, active_requests())};
}

std::map<std::string, std::string> NativeEngine::details() const {
  std::map<std::string, std::string> out{{"model_path", options_.model_path}};
  auto l = loaded();
  if (!l) return out;
  out["model"] = l->shard.model_id;
  out["shard"] = fmt::format("{}..{} of {}", l->shard.start_layer, l->shard.end_layer, l->shard.n_layers);
  out["architecture"] = l->config.architecture_name;
  out["weight_bytes"] = std::to_string(l->loaded_weight_bytes);
  out["kv_bytes"] = std::to_string(l->budget->used());
  out["kv_budget_bytes"] = std::to_string(l->budget->limit());
  out["kv_type"] = std::string(tensor_type_name(l->kv_type));
  out["threads"] = std::to_string(l->pool->size());
  out["kernels"] = std::string(kernel_variant_name(best_variant()));
  std::string set_aside;  // variants that failed the start-up self-check (matmul.h)
  for (const KernelVariant v : variants_set_aside())
    set_aside += (set_aside.empty() ? "" : ",") + std::string(kernel_variant_name(v));
  if (!set_aside.empty()) out["kernels_set_aside"] = set_aside;
  out["chat_template"] = std::string(chat_template_name(l->chat));
  out["active_requests"] = std::to_string(active_requests());
  return out;
}

bool NativeEngine::is_retryable(const std::exception_ptr& error) const {
  try {
    std::rethrow_exception(error);
  } catch (const ModelError&) {
    return false;
  } catch (const GgufError&) {
    return false;
  } catch (const TokenizerError&) {
    return false;
  } catch (const TensorTypeError&) {
    return false;
  } catch (const std::system_error& e) {
    if (e.code().category() == std::generic_category()) return false;  // e.g. no such file
  } catch (...) {
  }
  return InferenceEngine::is_retryable(error);
}

std::size_t NativeEngine::active_requests() const {
  const std::lock_guard lock(mutex_);
  return requests_.size();
}

std::uint64_t NativeEngine::kv_bytes_in_use() const {
  auto l = loaded();
  return l ? l->budget->used() : 0;
}

std::string NativeEngine::chat_prompt(std::span<const ChatMessage> messages) const {
  auto l = loaded();
  if (!l) throw std::logic_error("native engine: no model loaded");
  return render_chat(l->chat, messages, true);
}

asio::awaitable<std::vector<std::int32_t>> NativeEngine::encode(std::string text) {
  if (!ready()) co_await ensure_ready();
  auto l = loaded();
  if (!l) throw resource::ClosedError(id(), "native engine: no model loaded");
  co_return l->tokenizer->encode(text, true, true);
}

asio::awaitable<std::string> NativeEngine::decode(std::vector<std::int32_t> tokens) {
  if (!ready()) co_await ensure_ready();
  auto l = loaded();
  if (!l) throw resource::ClosedError(id(), "native engine: no model loaded");
  DecodeOptions continuation;
  continuation.strip_space_prefix = false;  // generated text continues the prompt
  co_return l->tokenizer->decode(tokens, continuation);
}

asio::awaitable<net::Tensor> NativeEngine::infer_tensor(std::string request_id, topology::Shard shard,
                                                        net::Tensor input) {
  if (!ready()) co_await ensure_ready();
  auto l = loaded();
  auto pool = compute();
  if (!l || !pool) throw resource::ClosedError(id(), "native engine: no model loaded");
  if (shard.model_id != l->shard.model_id || shard.n_layers != l->shard.n_layers || !shard.is_well_formed())
    throw std::invalid_argument(fmt::format("native engine holds model {}, cannot run shard {}",
                                            shard_text(l->shard), shard_text(shard)));
  const std::int64_t dim = l->config.n_embd;
  const auto& shape = input.shape();
  std::vector<std::int32_t> ids;
  std::vector<float> hidden;
  if (shard.is_first_layer()) {
    if ((input.dtype() != net::DType::INT64 && input.dtype() != net::DType::INT32) || shape.size() != 2 ||
        shape[0] != 1 || shape[1] < 1)
      throw std::invalid_argument(
          "native engine: the first shard takes int64 or int32 token ids [1, n], n >= 1");
    if (input.dtype() == net::DType::INT32) {
      ids = input.values<std::int32_t>();
    } else {
      for (const std::int64_t v : input.values<std::int64_t>()) {
        if (v < 0 || v >= l->config.n_vocab)
          throw std::invalid_argument(
              fmt::format("token id {} is outside the vocabulary [0, {})", v, l->config.n_vocab));
        ids.push_back(static_cast<std::int32_t>(v));
      }
    }
  } else {
    if (input.dtype() != net::DType::FLOAT32 || shape.size() != 3 || shape[0] != 1 || shape[1] < 1 ||
        shape[2] != dim)
      throw std::invalid_argument(fmt::format(
          "native engine: shard {} takes float32 hidden states [1, n, {}]", shard_text(shard), dim));
    hidden = input.values<float>();
  }
  std::shared_ptr<RequestState> request;
  {
    const std::lock_guard lock(mutex_);
    auto& slot = requests_[request_id];
    if (!slot) slot = std::make_shared<RequestState>();
    request = slot;
  }
  std::function<net::Tensor()> job = [l, request, shard, ids = std::move(ids), hidden = std::move(hidden),
                                      dim]() {
    // On the compute thread: the shard's runtime (built on first use) and the request's cache.
    const std::pair<std::int32_t, std::int32_t> key{shard.start_layer, shard.end_layer};
    auto& runtime = l->runtimes[key];
    if (!runtime) {
      runtime = build_runtime(l->file, l->config, *l->pool, l->repacked, shard);
      while (l->runtimes.size() > kMaxShardRuntimes) {
        auto oldest = l->runtimes.end();
        for (auto it = l->runtimes.begin(); it != l->runtimes.end(); ++it)
          if (it->first != key &&
              (oldest == l->runtimes.end() || it->second->last_used < oldest->second->last_used))
            oldest = it;
        l->runtimes.erase(oldest);  // requests still holding its caches keep working (shared_ptr)
      }
    }
    runtime->last_used = ++l->use_counter;
    if (!request->cache) {
      request->cache = runtime->forward->make_cache(l->budget, l->max_context, l->kv_type);
      request->shard = shard;
      request->runtime = runtime;
    } else if (request->shard != shard) {
      throw std::invalid_argument(
          fmt::format("this request runs shard {}, not {}", shard_text(request->shard), shard_text(shard)));
    }
    ForwardPass& forward = *request->runtime->forward;
    const bool last = request->runtime->weights->is_last();
    if (!ids.empty()) {
      std::vector<float> out = forward.run_tokens(ids, *request->cache);
      if (last) return net::Tensor::from_values<float>({1, l->config.n_vocab}, out);
      const auto n = static_cast<std::int64_t>(ids.size());
      return net::Tensor::from_values<float>({1, n, dim}, out);
    }
    std::vector<float> out = forward.run_hidden(hidden, *request->cache);
    if (last) return net::Tensor::from_values<float>({1, l->config.n_vocab}, out);
    const auto n = static_cast<std::int64_t>(hidden.size()) / dim;
    return net::Tensor::from_values<float>({1, n, dim}, out);
  };
  co_return co_await run_on<net::Tensor>(std::move(pool), std::move(job));
}

asio::awaitable<std::int32_t> NativeEngine::sample(net::Tensor logits, SamplingParams params) {
  if (!ready()) co_await ensure_ready();
  auto pool = compute();
  if (!pool) throw resource::ClosedError(id(), "native engine: no model loaded");
  if (logits.dtype() != net::DType::FLOAT32 || logits.element_count() < 1)
    throw std::invalid_argument("native engine: sample takes float32 logits [1, vocab]");
  std::function<std::int32_t()> job = [values = logits.values<float>(), params = std::move(params)]() {
    std::mt19937_64 rng(derive_sampling_seed(params.seed, values));
    return sample_token(values, params, rng);
  };
  co_return co_await run_on<std::int32_t>(std::move(pool), std::move(job));
}

void NativeEngine::release_request(const std::string& request_id) {
  std::shared_ptr<RequestState> cache;  // freed after the lock is released
  const std::lock_guard lock(mutex_);
  if (auto it = requests_.find(request_id); it != requests_.end()) {
    cache = std::move(it->second);
    requests_.erase(it);
  }
}

}  // namespace exo::inference
