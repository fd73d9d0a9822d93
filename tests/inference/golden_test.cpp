// Golden tests: for every model in ../shared/models with a .logits.bin, the prompt logits and the 32
// greedy ids of the forward pass against llama.cpp's outputs, with the tolerances of the models'
// README (F32/F16 weights: tight; quantized weights: looser, since llama.cpp quantizes activations).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/repacked_weights.h"
#include "test_support.h"

namespace exo::inference {
namespace {

struct Golden {
  std::int32_t n_tokens = 0;
  std::int32_t n_vocab = 0;
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;  // [n_tokens][n_vocab]
  std::vector<std::int32_t> greedy;
};

Golden read_golden(const std::string& model) {
  Golden g;
  const auto bytes = test::read_binary_file(test::model_path(model + ".logits.bin"));
  if (bytes.size() < 8) throw std::runtime_error("short logits file");
  std::memcpy(&g.n_tokens, bytes.data(), 4);
  std::memcpy(&g.n_vocab, bytes.data() + 4, 4);
  const std::size_t expected = 8 + 4 * static_cast<std::size_t>(g.n_tokens) +
                               4 * static_cast<std::size_t>(g.n_tokens) * static_cast<std::size_t>(g.n_vocab);
  if (bytes.size() != expected) throw std::runtime_error("logits file has the wrong size");
  g.tokens.resize(static_cast<std::size_t>(g.n_tokens));
  std::memcpy(g.tokens.data(), bytes.data() + 8, g.tokens.size() * 4);
  g.logits.resize(static_cast<std::size_t>(g.n_tokens) * static_cast<std::size_t>(g.n_vocab));
  std::memcpy(g.logits.data(), bytes.data() + 8 + g.tokens.size() * 4, g.logits.size() * 4);
  std::istringstream greedy(test::read_text_file(test::model_path(model + ".greedy.txt")));
  for (std::int32_t id = 0; greedy >> id;) g.greedy.push_back(id);
  return g;
}

struct TopTwo {
  std::int32_t best = 0;
  float margin = 0;
};

TopTwo top_two(std::span<const float> row) {
  std::int32_t best = 0;
  for (std::size_t i = 1; i < row.size(); ++i)
    if (row[i] > row[static_cast<std::size_t>(best)]) best = static_cast<std::int32_t>(i);
  float second = -INFINITY;
  for (std::size_t i = 0; i < row.size(); ++i)
    if (static_cast<std::int32_t>(i) != best) second = std::max(second, row[i]);
  return {best, row[static_cast<std::size_t>(best)] - second};
}

struct GoldenCase {
  std::string model;
  bool quantized;
};

void PrintTo(const GoldenCase& c, std::ostream* os) {
  *os << c.model;
}

// Every model of the shared directory that has golden logits (a test for each, present or not, so
// a missing directory shows up as skips rather than as no tests).
std::vector<GoldenCase> golden_cases() {
  return {{"stories260K", false}, {"tiny-f32", false},  {"small-f16", false},  {"small-llama3", false},
          {"small-q8_0", true},   {"small-q4_0", true}, {"small-q4_k_m", true}};
}

class GoldenModel : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenModel, PromptLogitsAndGreedyContinuationMatchTheReference) {
  const GoldenCase& c = GetParam();
  const auto path = test::model_path(c.model + ".gguf");
  EXO_SKIP_IF_MISSING(path);
  const Golden golden = read_golden(c.model);
  ASSERT_EQ(golden.greedy.size(), 32U);

  const auto started = std::chrono::steady_clock::now();
  const GgufFile file = GgufFile::open(path.string());
  const ModelConfig config = ModelConfig::from_gguf(file);
  ASSERT_EQ(config.n_vocab, golden.n_vocab);
  RepackedWeights repacked;  // the engine's path: matrices in the kernels' layout (X8 groups)
  const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1, &repacked);
  ComputePool pool(2);
  ForwardPass forward(config, weights, pool);
  auto budget = std::make_shared<KvBudget>(std::uint64_t{1} << 30);
  auto cache = forward.make_cache(budget);

  const std::vector<float> logits = forward.run_tokens(golden.tokens, *cache, ForwardPass::Logits::ALL);
  ASSERT_EQ(logits.size(), golden.logits.size());
  double max_abs = 0;
  double sum_abs = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double d = std::fabs(static_cast<double>(logits[i]) - golden.logits[i]);
    max_abs = std::max(max_abs, d);
    sum_abs += d;
  }
  const double mean_abs = sum_abs / static_cast<double>(logits.size());
  const float argmax_margin = c.quantized ? 0.15F : 2e-3F;
  const auto vocab = static_cast<std::size_t>(golden.n_vocab);
  for (std::int32_t t = 0; t < golden.n_tokens; ++t) {
    const auto offset = static_cast<std::size_t>(t) * vocab;
    const TopTwo expected = top_two(std::span<const float>(golden.logits).subspan(offset, vocab));
    const TopTwo actual = top_two(std::span<const float>(logits).subspan(offset, vocab));
    if (expected.margin > argmax_margin) {
      EXPECT_EQ(actual.best, expected.best) << "prompt row " << t;
    }
  }
  if (c.quantized) {
    EXPECT_LE(max_abs, 0.15) << c.model;
    EXPECT_LE(mean_abs, 0.03) << c.model;
  } else {
    EXPECT_LE(max_abs, 1e-3) << c.model;
  }

  // Greedy: feed our own argmax back one token at a time, 32 steps. The ids must equal the golden
  // ones; for quantized weights only up to the first step where our own top-1 margin is below 0.15
  // (after a legitimate near-tie flip the continuations are no longer comparable).
  std::vector<std::int32_t> generated;
  std::vector<float> margins;
  TopTwo next = top_two(std::span<const float>(logits).subspan(logits.size() - vocab, vocab));
  for (int step = 0; step < 32; ++step) {
    generated.push_back(next.best);
    margins.push_back(next.margin);
    if (step == 31) break;
    const std::int32_t id = next.best;
    next = top_two(forward.run_tokens(std::span<const std::int32_t>(&id, 1), *cache));
  }
  std::size_t matched = 0;
  while (matched < generated.size() && generated[matched] == golden.greedy[matched]) ++matched;
  std::size_t comparable = generated.size();
  if (c.quantized) {
    comparable = 0;
    while (comparable < margins.size() && margins[comparable] >= 0.15F) ++comparable;
  }
  EXPECT_GE(matched, comparable) << c.model << ": greedy ids differ at step " << matched;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  RecordProperty("max_abs", std::to_string(max_abs));
  RecordProperty("mean_abs", std::to_string(mean_abs));
  std::cout << "[ golden   ] " << c.model << ": max abs " << max_abs << ", mean abs " << mean_abs
            << ", greedy " << matched << "/32 equal (" << comparable << " required), " << seconds << " s\n";
}

INSTANTIATE_TEST_SUITE_P(SharedModels, GoldenModel, ::testing::ValuesIn(golden_cases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& param) {
                           std::string name = param.param.model;
                           std::replace_if(
                               name.begin(), name.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return name;
                         });

// The shared directory holds exactly the models above (a new golden file needs a new case).
TEST(GoldenModels, EveryGoldenFileHasATest) {
  EXO_SKIP_IF_MISSING(test::models_dir());
  std::vector<std::string> listed;
  for (const auto& c : golden_cases()) listed.push_back(c.model);
  for (const auto& entry : std::filesystem::directory_iterator(test::models_dir())) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = ".logits.bin";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string model = name.substr(0, name.size() - suffix.size());
    EXPECT_NE(std::find(listed.begin(), listed.end(), model), listed.end()) << model << " has no golden test";
  }
}

}  // namespace
}  // namespace exo::inference
