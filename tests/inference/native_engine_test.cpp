// NativeEngine: lifecycle (initialize, infer, release_request, cleanup), errors, and the same model run
// whole and as 2 and 3 in-process shards (hidden states through the wire codec) giving the same
// greedy output as the golden file.
#include <gtest/gtest.h>
#include <algorithm>

#include <cstring>
#include <sstream>

#include "../resource/test_support.h"
#include "inference/matmul.h"
#include "inference/native_engine.h"
#include "net/tensor_codec.h"
#include "test_support.h"

namespace exo::inference {
namespace {

using resource::testing::run_sync;

std::vector<std::int32_t> golden_greedy(const std::string& model) {
  std::istringstream in(test::read_text_file(test::model_path(model + ".greedy.txt")));
  std::vector<std::int32_t> ids;
  for (std::int32_t id = 0; in >> id;) ids.push_back(id);
  return ids;
}

const std::vector<std::int64_t> kPrompt{1, 15, 27, 300, 42, 7, 99, 128, 250, 3, 64, 200};

class NativeEngineTest : public ::testing::Test {
 protected:
  asio::io_context context;

  std::shared_ptr<NativeEngine> make(const std::string& model,
                                     std::optional<topology::Shard> shard = std::nullopt,
                                     std::uint64_t kv_budget = std::uint64_t{1} << 28,
                                     TensorType kv_type = TensorType::F16) {
    NativeEngineOptions options;
    options.model_path = test::model_path(model + ".gguf").string();
    options.shard = std::move(shard);
    options.threads = 2;
    options.kv_budget_bytes = kv_budget;
    options.kv_type = kv_type;
    return resource::make_resource<NativeEngine>(context.get_executor(), "engine-" + model, options);
  }

  // Runs a request through a chain of engines (one per shard), passing the hidden state through the
  // wire encoding as nodes do; returns the last shard's logits.
  std::vector<float> run_chain(const std::vector<std::shared_ptr<NativeEngine>>& chain,
                               const std::string& request, net::Tensor input) {
    net::Tensor state = std::move(input);
    for (const auto& engine : chain) {
      state = run_sync(context, engine->infer_tensor(request, engine->loaded_shard(), std::move(state)));
      auto decoded = net::decode_tensor(net::encode_tensor(state));
      EXPECT_TRUE(decoded.ok());
      state = std::move(decoded).value();
    }
    return state.values<float>();
  }

  std::vector<std::int32_t> greedy(const std::vector<std::shared_ptr<NativeEngine>>& chain,
                                   const std::string& request, int steps) {
    std::vector<std::int32_t> out;
    net::Tensor input =
        net::Tensor::from_values<std::int64_t>({1, static_cast<std::int64_t>(kPrompt.size())}, kPrompt);
    for (int i = 0; i < steps; ++i) {
      const std::vector<float> logits = run_chain(chain, request, std::move(input));
      const std::int32_t next = run_sync(
          context, chain.back()->sample(
                       net::Tensor::from_values<float>({1, static_cast<std::int64_t>(logits.size())}, logits),
                       SamplingParams{}));
      out.push_back(next);
      input = net::Tensor::from_values<std::int64_t>({1, 1}, std::vector<std::int64_t>{next});
    }
    return out;
  }
};

TEST_F(NativeEngineTest, LifecycleInferReleaseCleanup) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  auto engine = make("small-f16");
  EXPECT_EQ(engine->model().model_id, "small-f16");
  EXPECT_EQ(engine->model().n_layers, 0);  // not loaded yet
  run_sync(context, engine->initialize());
  EXPECT_EQ(engine->state(), resource::ResourceState::READY);
  const ModelDescription m = engine->model();
  EXPECT_EQ(m.n_layers, 4);
  EXPECT_EQ(m.vocab_size, 512);
  EXPECT_EQ(m.eos_token_id, 2);
  EXPECT_EQ(engine->whole_model(), engine->loaded_shard());

  const std::vector<float> logits =
      run_chain({engine}, "r1", net::Tensor::from_values<std::int64_t>({1, 12}, kPrompt));
  EXPECT_EQ(logits.size(), 512U);
  EXPECT_EQ(engine->active_requests(), 1U);
  EXPECT_GT(engine->kv_bytes_in_use(), 0U);
  const auto health = run_sync(context, engine->check_health());
  EXPECT_TRUE(health.healthy) << health.detail;
  EXPECT_NE(health.detail.find("layers 0..3 of 4"), std::string::npos) << health.detail;
  EXPECT_EQ(engine->info().details.at("model"), "small-f16");

  // The same prompt under another request id gives the same logits (independent caches).
  const std::vector<float> again =
      run_chain({engine}, "r2", net::Tensor::from_values<std::int64_t>({1, 12}, kPrompt));
  EXPECT_EQ(again, logits);
  engine->release_request("r1");
  engine->release_request("r2");
  engine->release_request("never-seen");
  EXPECT_EQ(engine->active_requests(), 0U);
  EXPECT_EQ(engine->kv_bytes_in_use(), 0U);

  const auto ids = run_sync(context, engine->encode("Hello world"));
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);  // BOS
  // decode() reads ids as generated text continuing a prompt: the dummy-prefix space stays.
  EXPECT_EQ(run_sync(context, engine->decode(ids)), " Hello world");

  run_sync(context, engine->cleanup());
  EXPECT_EQ(engine->state(), resource::ResourceState::CLOSED);
  EXPECT_EQ(engine->kv_bytes_in_use(), 0U);
  EXPECT_THROW(run_sync(context, engine->infer_tensor("r3", topology::Shard{"small-f16", 0, 3, 4},
                                                      net::Tensor::from_values<std::int64_t>(
                                                          {1, 1}, std::vector<std::int64_t>{1}))),
               resource::ClosedError);
}

TEST_F(NativeEngineTest, WholeTwoAndThreeShardsGiveTheGoldenGreedyIds) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const std::vector<std::int32_t> expected = golden_greedy("small-f16");
  auto whole = make("small-f16");
  run_sync(context, whole->initialize());
  EXPECT_EQ(greedy({whole}, "whole", 32), expected);

  for (const auto& split :
       std::vector<std::vector<std::pair<int, int>>>{{{0, 1}, {2, 3}}, {{0, 0}, {1, 2}, {3, 3}}}) {
    std::vector<std::shared_ptr<NativeEngine>> chain;
    for (const auto& [start, end] : split) {
      chain.push_back(make("small-f16", topology::Shard{"small-f16", start, end, 4}));
      run_sync(context, chain.back()->initialize());
    }
    EXPECT_EQ(greedy(chain, "split", 32), expected) << split.size() << " shards";
    EXPECT_EQ(chain[1]->model().note.find("shard") != std::string::npos, true);
    for (auto& engine : chain) run_sync(context, engine->cleanup());
  }
  run_sync(context, whole->cleanup());
}

TEST_F(NativeEngineTest, OneEngineServesAnyLayerRangeOfItsModel) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const std::vector<std::int32_t> expected = golden_greedy("small-f16");
  // Loaded for layers 2..3 only, then asked for 0..1 as well: it builds that range on first use.
  auto engine = make("small-f16", topology::Shard{"small-f16", 2, 3, 4});
  run_sync(context, engine->initialize());
  std::vector<std::int32_t> ids;
  auto input = net::Tensor::from_values<std::int64_t>({1, 12}, kPrompt);
  for (int step = 0; step < 32; ++step) {
    auto hidden =
        run_sync(context, engine->infer_tensor("front", topology::Shard{"small-f16", 0, 1, 4}, input));
    auto logits =
        run_sync(context, engine->infer_tensor("back", topology::Shard{"small-f16", 2, 3, 4}, hidden));
    const auto values = logits.values<float>();
    const auto token =
        static_cast<std::int64_t>(std::max_element(values.begin(), values.end()) - values.begin());
    ids.push_back(static_cast<std::int32_t>(token));
    input = net::Tensor::from_values<std::int64_t>({1, 1}, std::vector<std::int64_t>{token});
  }
  EXPECT_EQ(ids, expected);
  run_sync(context, engine->cleanup());
}

TEST_F(NativeEngineTest, ShardMismatchAndBadInputsAreClearErrors) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  auto engine = make("small-f16", topology::Shard{"small-f16", 2, 3, 4});
  run_sync(context, engine->initialize());
  const auto hidden = net::Tensor::from_values<float>({1, 1, 256}, std::vector<float>(256, 0.5F));
  try {
    run_sync(context, engine->infer_tensor("r", topology::Shard{"other-model", 2, 3, 4}, hidden));
    FAIL() << "expected a model mismatch";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("holds model small-f16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_sync(context, engine->infer_tensor("r", topology::Shard{"small-f16", 2, 4, 4}, hidden)),
               std::invalid_argument);  // past the last layer
  EXPECT_THROW(run_sync(context, engine->infer_tensor("r", topology::Shard{"small-f16", 2, 3, 5}, hidden)),
               std::invalid_argument);  // another layer count
  // A request stays on the shard it started on.
  run_sync(context, engine->infer_tensor("pinned", topology::Shard{"small-f16", 2, 3, 4}, hidden));
  try {
    run_sync(context, engine->infer_tensor("pinned", topology::Shard{"small-f16", 1, 3, 4}, hidden));
    FAIL() << "expected a shard change to be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("this request runs shard small-f16[2..3]"), std::string::npos)
        << e.what();
  }
  const topology::Shard shard{"small-f16", 2, 3, 4};
  const auto ids = net::Tensor::from_values<std::int64_t>({1, 1}, std::vector<std::int64_t>{1});
  EXPECT_THROW(run_sync(context, engine->infer_tensor("r", shard, ids)), std::invalid_argument);
  const auto narrow = net::Tensor::from_values<float>({1, 1, 8}, std::vector<float>(8, 0.5F));
  EXPECT_THROW(run_sync(context, engine->infer_tensor("r", shard, narrow)), std::invalid_argument);
  const auto logits = run_sync(context, engine->infer_tensor("r", shard, hidden));
  EXPECT_EQ(logits.shape(), (std::vector<std::int64_t>{1, 512}));
  run_sync(context, engine->cleanup());
}

TEST_F(NativeEngineTest, KvBudgetExceededIsAnErrorAndTheEngineStaysUsable) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  // The default F16 cache: 4 layers x 16 positions x 128 values x K,V x 2 bytes = 32 KiB for the
  // first 16 positions.
  auto engine = make("small-f16", std::nullopt, 40'000);
  run_sync(context, engine->initialize());
  EXPECT_EQ(engine->info().details.at("kv_type"), "f16");
  EXPECT_EQ(engine->info().details.at("kernels"), kernel_variant_name(best_variant()));
  const topology::Shard shard = engine->loaded_shard();
  const auto prompt = net::Tensor::from_values<std::int64_t>({1, 12}, kPrompt);
  EXPECT_NO_THROW(run_sync(context, engine->infer_tensor("a", shard, prompt)));
  EXPECT_EQ(engine->info().details.at("kv_bytes"), "32768");
  EXPECT_THROW(run_sync(context, engine->infer_tensor("b", shard, prompt)), KvBudgetError);
  engine->release_request("a");
  EXPECT_NO_THROW(run_sync(context, engine->infer_tensor("b", shard, prompt)));
  run_sync(context, engine->cleanup());
  // An F32 cache needs twice as much: 64 KiB do not fit the same budget.
  auto f32 = make("small-f16", std::nullopt, 40'000, TensorType::F32);
  run_sync(context, f32->initialize());
  EXPECT_THROW(run_sync(context, f32->infer_tensor("a", shard, prompt)), KvBudgetError);
  run_sync(context, f32->cleanup());
}

TEST_F(NativeEngineTest, MissingFileFailsInitializationWithoutRetrying) {
  NativeEngineOptions options;
  options.model_path = "/nonexistent/model.gguf";
  resource::ResourceOptions resource_options;
  resource_options.init_retry.max_attempts = 3;
  auto engine = resource::make_resource<NativeEngine>(context.get_executor(), "missing", options, nullptr,
                                                      resource_options);
  try {
    run_sync(context, engine->initialize());
    FAIL() << "expected the initialization to fail";
  } catch (const resource::InitializationError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine->state(), resource::ResourceState::ERROR);
  EXPECT_EQ(engine->info().failure_count, 1U);
  run_sync(context, engine->cleanup());
}

TEST_F(NativeEngineTest, DecodingGeneratedTokensOneAtATimeKeepsTheirSpaces) {
  // An SPM vocabulary: word pieces carry a leading "▁". Generated text continues the prompt, so
  // the node, which decodes one token at a time, must get the same text as one decode of them all.
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  auto engine = make("small-f16");
  run_sync(context, engine->initialize());
  auto ids = run_sync(context, engine->encode("the cat sat on the mat"));
  ASSERT_GT(ids.size(), 3U);
  ids.erase(ids.begin());  // BOS
  std::string one_at_a_time;
  for (const auto id : ids) one_at_a_time += run_sync(context, engine->decode({id}));
  const std::string together = run_sync(context, engine->decode(ids));
  EXPECT_EQ(one_at_a_time, together);
  EXPECT_NE(together.find("cat sat on the mat"), std::string::npos) << together;
  run_sync(context, engine->cleanup());
}

TEST_F(NativeEngineTest, SamplingIsReproducibleAndChatPromptUsesTheFallbackTemplate) {
  const auto path = test::model_path("small-llama3.gguf");
  EXO_SKIP_IF_MISSING(path);
  auto engine = make("small-llama3");
  run_sync(context, engine->initialize());
  const auto logits = run_sync(
      context, engine->infer_tensor(
                   "r", engine->loaded_shard(),
                   net::Tensor::from_values<std::int32_t>({1, 3}, std::vector<std::int32_t>{510, 15, 27})));
  SamplingParams params;
  params.temperature = 5.0F;
  params.seed = 11;
  std::vector<std::int32_t> draws;
  for (int i = 0; i < 2; ++i) draws.push_back(run_sync(context, engine->sample(logits, params)));
  EXPECT_EQ(draws[0], draws[1]);
  std::set<std::int32_t> seen;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    params.seed = seed;
    seen.insert(run_sync(context, engine->sample(logits, params)));
  }
  EXPECT_GT(seen.size(), 1U);  // a hot temperature and different seeds do not always agree
  // The 512-token vocabulary has no chat markers and the file no template: ChatML.
  const std::vector<ChatMessage> messages{{"user", "hi"}};
  EXPECT_EQ(engine->chat_prompt(messages), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  run_sync(context, engine->cleanup());
}

}  // namespace
}  // namespace exo::inference
