// Model config, shard weights, KV cache and forward pass: validation errors on hand-built GGUF files,
// shard-by-shard equivalence, batched vs incremental prompts, RoPE scaling and the qwen2 layout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gguf_builder.h"
#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/half_float.h"
#include "inference/repacked_weights.h"
#include "test_support.h"

namespace exo::inference {
namespace {

// A small random F32 model written with GgufBuilder.
struct TinyModelSpec {
  std::string architecture = "llama";
  std::int64_t n_embd = 32, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 24, n_vocab = 10, n_ctx = 64;
  std::map<std::string, std::uint32_t> type_override;  // tensor name -> raw ggml type (data zero-filled)
  std::set<std::string> omit;
  bool qwen_permuted = false;  // write Q/K rows in qwen2's half-split order (+ zero biases)
  std::uint32_t seed = 7;
};

std::vector<std::uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<std::uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::vector<std::uint8_t> build_tiny_model(const TinyModelSpec& s) {
  test::GgufBuilder b;
  const std::string a = s.architecture;
  b.kv_string("general.architecture", a);
  b.kv_u32(a + ".embedding_length", static_cast<std::uint32_t>(s.n_embd));
  b.kv_u32(a + ".block_count", static_cast<std::uint32_t>(s.n_layer));
  b.kv_u32(a + ".attention.head_count", static_cast<std::uint32_t>(s.n_head));
  b.kv_u32(a + ".attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
  b.kv_u32(a + ".feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  b.kv_u32(a + ".context_length", static_cast<std::uint32_t>(s.n_ctx));
  b.kv(a + ".attention.layer_norm_rms_epsilon", [](test::ByteWriter& w) { w.u32(6).put(1e-5F); });
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0F, 0.3F);
  const std::int64_t hd = s.n_embd / s.n_head;
  auto add = [&](const std::string& name, std::int64_t cols, std::int64_t rows, float mean = 0.0F,
                 bool permute_heads = false) {
    if (s.omit.count(name) != 0) return;
    std::vector<float> values(static_cast<std::size_t>(cols * rows));
    for (auto& v : values) v = mean + normal(rng);
    std::vector<std::uint64_t> shape{static_cast<std::uint64_t>(cols)};
    if (rows > 1 || name.find("norm") == std::string::npos) shape.push_back(static_cast<std::uint64_t>(rows));
    if (permute_heads) {
      // Row j of a head in half-split order is row perm(j) of the adjacent-pair order.
      std::vector<float> permuted(values.size());
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t head = r / hd, j = r % hd;
        const std::int64_t source = head * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
        std::memcpy(&permuted[static_cast<std::size_t>(r * cols)],
                    &values[static_cast<std::size_t>(source * cols)], static_cast<std::size_t>(cols) * 4);
      }
      values = permuted;
    }
    if (auto it = s.type_override.find(name); it != s.type_override.end()) {
      const auto* info = find_tensor_type(it->second);
      const std::size_t bytes =
          static_cast<std::size_t>(cols * rows) / info->block_size * info->bytes_per_block;
      b.tensor(name, shape, it->second, std::vector<std::uint8_t>(bytes, 0));
      return;
    }
    b.tensor(name, shape, 0, f32_bytes(values));
  };
  const std::int64_t q_dim = s.n_embd, kv_dim = s.n_head_kv * hd;
  add("token_embd.weight", s.n_embd, s.n_vocab);
  add("output_norm.weight", s.n_embd, 1, 1.0F);
  add("output.weight", s.n_embd, s.n_vocab);
  for (std::int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", s.n_embd, 1, 1.0F);
    add(p + "attn_q.weight", s.n_embd, q_dim, 0.0F, s.qwen_permuted);
    add(p + "attn_k.weight", s.n_embd, kv_dim, 0.0F, s.qwen_permuted);
    add(p + "attn_v.weight", s.n_embd, kv_dim);
    if (s.architecture == "qwen2") {
      b.tensor(p + "attn_q.bias", {static_cast<std::uint64_t>(q_dim)}, 0,
               std::vector<std::uint8_t>(q_dim * 4, 0));
      b.tensor(p + "attn_k.bias", {static_cast<std::uint64_t>(kv_dim)}, 0,
               std::vector<std::uint8_t>(kv_dim * 4, 0));
      b.tensor(p + "attn_v.bias", {static_cast<std::uint64_t>(kv_dim)}, 0,
               std::vector<std::uint8_t>(kv_dim * 4, 0));
    }
    add(p + "attn_output.weight", q_dim, s.n_embd);
    add(p + "ffn_norm.weight", s.n_embd, 1, 1.0F);
    add(p + "ffn_gate.weight", s.n_embd, s.n_ff);
    add(p + "ffn_up.weight", s.n_embd, s.n_ff);
    add(p + "ffn_down.weight", s.n_ff, s.n_embd);
  }
  return b.build();
}

std::string load_error(const TinyModelSpec& spec, std::int64_t start = 0, std::int64_t end = -1) {
  try {
    const GgufFile file = GgufFile::from_bytes(build_tiny_model(spec));
    const ModelConfig config = ModelConfig::from_gguf(file);
    ModelWeights::load(file, config, start, end < 0 ? config.n_layer - 1 : end);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

std::vector<float> run_whole(const GgufFile& file, const std::vector<std::int32_t>& ids,
                             ForwardPass::Logits mode = ForwardPass::Logits::ALL) {
  const ModelConfig config = ModelConfig::from_gguf(file);
  const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1);
  ComputePool pool(2);
  ForwardPass forward(config, weights, pool);
  auto cache = forward.make_cache(std::make_shared<KvBudget>(1U << 26));
  return forward.run_tokens(ids, *cache, mode);
}

TEST(ModelConfig, ReadsTheHyperParametersAndDefaults) {
  const GgufFile file = GgufFile::from_bytes(build_tiny_model({}));
  const ModelConfig c = ModelConfig::from_gguf(file);
  EXPECT_EQ(c.architecture, Architecture::LLAMA);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_ff, 24);
  EXPECT_EQ(c.n_vocab, 10);
  EXPECT_EQ(c.n_ctx, 64);
  EXPECT_EQ(c.rope_base, 10000.0F);  // absent -> 10000
  EXPECT_EQ(c.rope_style, RopeStyle::ADJACENT_PAIRS);
  EXPECT_FALSE(c.tied_output);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5F);
}

TEST(ModelConfig, SharedModelsHaveTheDocumentedShapes) {
  const auto path = test::model_path("small-llama3.gguf");
  EXO_SKIP_IF_MISSING(path);
  const ModelConfig c = ModelConfig::from_gguf(GgufFile::open(path.string()));
  EXPECT_EQ(c.n_embd, 256);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.rope_base, 500000.0F);
  EXPECT_TRUE(c.tied_output);
}

TEST(ModelConfig, UnsupportedArchitectureIsAClearError) {
  TinyModelSpec spec;
  spec.architecture = "gpt2";
  EXPECT_NE(load_error(spec).find("unsupported architecture 'gpt2'"), std::string::npos) << load_error(spec);
}

TEST(ModelConfig, InconsistentHeadCountsAreRejected) {
  TinyModelSpec spec;
  spec.n_head_kv = 3;
  EXPECT_NE(load_error(spec).find("not a multiple of head_count_kv"), std::string::npos) << load_error(spec);
}

TEST(ModelWeights, UnsupportedTensorTypeNamesTheTensorAndType) {
  TinyModelSpec spec;
  spec.type_override["blk.1.ffn_up.weight"] = static_cast<std::uint32_t>(TensorType::IQ4_NL);
  const std::string error = load_error(spec);
  EXPECT_NE(error.find("blk.1.ffn_up.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("iq4_nl"), std::string::npos) << error;
  // A shard that does not hold layer 1 never looks at it.
  EXPECT_EQ(load_error(spec, 0, 0), "");
}

TEST(ModelWeights, AShardFindsOnlyTheTensorsItNeeds) {
  TinyModelSpec spec;
  spec.omit = {"blk.0.ffn_down.weight", "output.weight", "output_norm.weight"};
  // Without output.weight the model is tied: the last shard needs token_embd and output_norm.
  EXPECT_NE(load_error(spec, 1, 1).find("'output_norm.weight'"), std::string::npos);
  spec.omit = {"blk.0.ffn_down.weight"};
  EXPECT_EQ(load_error(spec, 1, 1), "");
  EXPECT_NE(load_error(spec, 0, 1).find("missing tensor 'blk.0.ffn_down.weight'"), std::string::npos);
  const GgufFile file = GgufFile::from_bytes(build_tiny_model(spec));
  const ModelConfig config = ModelConfig::from_gguf(file);
  const ModelWeights middle = ModelWeights::load(file, config, 1, 1);
  EXPECT_FALSE(middle.token_embd().has_value());  // not first, not tied
  EXPECT_TRUE(middle.output().has_value());
  EXPECT_GT(middle.weight_bytes(), 0U);
}

TEST(ModelWeights, WrongShapeNamesTheTensor) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  ModelConfig config = ModelConfig::from_gguf(file);
  config.n_ff = 512;  // the file says 768
  try {
    ModelWeights::load(file, config, 0, 0);
    FAIL() << "expected a shape error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_gate.weight"), std::string::npos) << e.what();
  }
}

TEST(RopeFrequencies, Llama3ScalingKeepsHighSlowsLowAndBlendsBetween) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_base = 500000.0F;
  const std::vector<double> plain = rope_inverse_frequencies(c);
  c.rope_scaling = {RopeScaling::Kind::LLAMA3, 8.0F, 1.0F, 4.0F, 8192};
  const std::vector<double> scaled = rope_inverse_frequencies(c);
  ASSERT_EQ(plain.size(), 64U);
  bool saw_blend = false;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    const double wavelength = 2 * M_PI / plain[i];
    if (wavelength < 8192.0 / 4.0) {
      EXPECT_DOUBLE_EQ(scaled[i], plain[i]);
    } else if (wavelength > 8192.0) {
      EXPECT_NEAR(scaled[i], plain[i] / 8.0, 1e-15);
    } else {
      EXPECT_LT(scaled[i], plain[i]);
      EXPECT_GT(scaled[i], plain[i] / 8.0);
      saw_blend = true;
    }
  }
  EXPECT_TRUE(saw_blend);
  // A rope_freqs tensor divides the frequencies instead.
  std::vector<float> factors(64, 2.0F);
  const std::vector<double> divided = rope_inverse_frequencies(c, factors);
  EXPECT_DOUBLE_EQ(divided[5], plain[5] / 2.0);
  EXPECT_THROW(rope_inverse_frequencies(c, std::vector<float>(3, 1.0F)), ModelError);
}

TEST(ForwardPass, Qwen2HalfSplitRopeOnPermutedWeightsEqualsLlama) {
  TinyModelSpec llama;
  TinyModelSpec qwen = llama;
  qwen.architecture = "qwen2";
  qwen.qwen_permuted = true;
  const std::vector<std::int32_t> ids{1, 5, 3, 9, 0, 2};
  const std::vector<float> a = run_whole(GgufFile::from_bytes(build_tiny_model(llama)), ids);
  const GgufFile qwen_file = GgufFile::from_bytes(build_tiny_model(qwen));
  EXPECT_EQ(ModelConfig::from_gguf(qwen_file).rope_style, RopeStyle::HALVES);
  const std::vector<float> b = run_whole(qwen_file, ids);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << i;
  // The same weights read with the wrong pairing give other logits (the test can fail).
  TinyModelSpec unpermuted = qwen;
  unpermuted.qwen_permuted = false;
  const std::vector<float> c = run_whole(GgufFile::from_bytes(build_tiny_model(unpermuted)), ids);
  double diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - c[i]));
  EXPECT_GT(diff, 1e-3);
}

TEST(ForwardPass, BatchedPromptEqualsTokenByToken) {
  const GgufFile file = GgufFile::from_bytes(build_tiny_model({}));
  const ModelConfig config = ModelConfig::from_gguf(file);
  const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1);
  ComputePool pool(2);
  ForwardPass forward(config, weights, pool);
  const std::vector<std::int32_t> ids{1, 5, 3, 9, 0, 2, 7};
  auto budget = std::make_shared<KvBudget>(1U << 20);
  auto batched_cache = forward.make_cache(budget);
  const std::vector<float> batched = forward.run_tokens(ids, *batched_cache, ForwardPass::Logits::ALL);
  auto single_cache = forward.make_cache(budget);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    const std::vector<float> row =
        forward.run_tokens(std::span<const std::int32_t>(&ids[t], 1), *single_cache);
    for (std::int64_t v = 0; v < config.n_vocab; ++v)
      EXPECT_NEAR(row[static_cast<std::size_t>(v)],
                  batched[t * static_cast<std::size_t>(config.n_vocab) + static_cast<std::size_t>(v)], 1e-4);
  }
  EXPECT_EQ(single_cache->length(0), 7);
  EXPECT_EQ(batched_cache->length(1), 7);
}

// Whole model vs the same layers as 2 and 3 shards, hidden states handed from shard to shard.
TEST(ForwardPass, ShardsChainedGiveTheWholeModelsLogits) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  const ModelConfig config = ModelConfig::from_gguf(file);
  const std::vector<std::int32_t> ids{1, 15, 27, 300, 42, 7};
  const std::vector<float> whole = run_whole(file, ids, ForwardPass::Logits::LAST);
  ComputePool pool(2);
  auto budget = std::make_shared<KvBudget>(1U << 26);
  for (const auto& split :
       std::vector<std::vector<std::pair<int, int>>>{{{0, 1}, {2, 3}}, {{0, 0}, {1, 2}, {3, 3}}}) {
    std::vector<float> state;
    for (const auto& [start, end] : split) {
      const ModelWeights weights = ModelWeights::load(file, config, start, end);
      ForwardPass forward(config, weights, pool);
      auto cache = forward.make_cache(budget);
      state = start == 0 ? forward.run_tokens(ids, *cache) : forward.run_hidden(state, *cache);
      if (end != config.n_layer - 1) {
        EXPECT_EQ(state.size(), ids.size() * static_cast<std::size_t>(config.n_embd));
      }
    }
    EXPECT_EQ(state, whole) << split.size() << " shards";
  }
}

TEST(ForwardPass, RepackedQ4_0ShardsShareOneCopyAndMatchTheFileLayout) {
  const auto path = test::model_path("small-q4_0.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  const ModelConfig config = ModelConfig::from_gguf(file);
  const std::vector<std::int32_t> ids{1, 15, 27, 300, 42, 7, 99, 3, 64};
  const std::vector<float> file_layout = run_whole(file, ids, ForwardPass::Logits::LAST);
  ComputePool pool(2);
  auto budget = std::make_shared<KvBudget>(1U << 26);
  RepackedWeights repacked;
  std::vector<float> whole;
  {
    const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1, &repacked);
    weights.fault_in();          // as the engine reads a shard in,
    repacked.release_sources();  // then releases the source pages the faults mapped again
    ForwardPass forward(config, weights, pool);
    auto cache = forward.make_cache(budget);
    whole = forward.run_tokens(ids, *cache, ForwardPass::Logits::LAST);
  }
  const std::uint64_t copies = repacked.bytes();
  if (uses_x8_layouts(best_variant())) {
    EXPECT_GT(copies, 0U);
  }
  // Same integer arithmetic, another float summation order.
  float largest = 0;
  for (float v : file_layout) largest = std::max(largest, std::fabs(v));
  ASSERT_EQ(whole.size(), file_layout.size());
  for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_NEAR(whole[i], file_layout[i], 1e-4F * largest) << i;
  // Shards loaded with the same RepackedWeights reuse its copies and chain to the same logits.
  const std::int64_t half = config.n_layer / 2;
  std::vector<float> state;
  for (const auto& [start, end] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{0, half - 1}, {half, config.n_layer - 1}}) {
    const ModelWeights weights = ModelWeights::load(file, config, start, end, &repacked);
    ForwardPass forward(config, weights, pool);
    auto cache = forward.make_cache(budget);
    state = start == 0 ? forward.run_tokens(ids, *cache) : forward.run_hidden(state, *cache);
  }
  EXPECT_EQ(state, whole);
  EXPECT_EQ(repacked.bytes(), copies);
  // The file's released pages read again from the file; an in-memory image keeps its bytes.
  EXPECT_EQ(run_whole(file, ids, ForwardPass::Logits::LAST), file_layout);
  std::ifstream in(path, std::ios::binary);
  std::vector<std::uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const GgufFile in_memory = GgufFile::from_bytes(std::move(image));
  RepackedWeights other;
  static_cast<void>(ModelWeights::load(in_memory, config, 0, config.n_layer - 1, &other));
  other.release_sources();  // must not touch memory the process owns
  EXPECT_EQ(run_whole(in_memory, ids, ForwardPass::Logits::LAST), file_layout);
}

TEST(KvCache, F16StoresEachValueRoundedToTheNearestHalfInHalfTheBytes) {
  auto budget = std::make_shared<KvBudget>(1U << 20);
  KvCache half(budget, 3, 1, 4, 32, TensorType::F16);
  KvCache full(budget, 3, 1, 4, 32, TensorType::F32);
  // Two positions of 4 values: exact halves, values between halves, the largest half, a tiny one.
  const std::vector<float> keys{1.0f, 1.0f + 1.0f / 4096, 65504.0f, -3.14159265f, 0.1f, -2e-7f, 0.5f, 1e-3f};
  const std::vector<float> values{-1.0f, 2.0f / 3, 1e4f, 7.0f, -0.25f, 3e-5f, 100.5f, -42.0f};
  half.append(3, keys, values);
  full.append(3, keys, values);
  EXPECT_EQ(2 * half.allocated_bytes(), full.allocated_bytes());
  EXPECT_EQ(budget->used(), half.allocated_bytes() + full.allocated_bytes());
  const KvCache::StoredRows h = half.stored(3);
  const KvCache::StoredRows f = full.stored(3);
  ASSERT_EQ(h.length, 2);
  ASSERT_EQ(f.length, 2);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(static_cast<const std::uint16_t*>(h.keys)[i], float_to_fp16(keys[i])) << i;
    EXPECT_EQ(static_cast<const std::uint16_t*>(h.values)[i], float_to_fp16(values[i])) << i;
    EXPECT_EQ(static_cast<const float*>(f.keys)[i], keys[i]) << i;
    EXPECT_EQ(static_cast<const float*>(f.values)[i], values[i]) << i;
  }
  EXPECT_EQ(fp16_to_float(static_cast<const std::uint16_t*>(h.keys)[1]), 1.0f);  // 1 + 2^-12 rounds to 1
  // Rows of the wrong width and other element types are refused; the cache is unchanged.
  const std::vector<float> three(3, 1.0f);
  EXPECT_THROW(half.append(3, three, three), std::invalid_argument);
  EXPECT_EQ(half.stored(3).length, 2);
  EXPECT_THROW(KvCache(budget, 0, 1, 4, 32, TensorType::Q8_0), std::invalid_argument);
}

TEST(KvCache, BudgetAndContextOverflowAreClearErrorsAndRollBack) {
  const GgufFile file = GgufFile::from_bytes(build_tiny_model({}));
  const ModelConfig config = ModelConfig::from_gguf(file);
  const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1);
  ComputePool pool(1);
  ForwardPass forward(config, weights, pool);
  // 16 positions x 16 floats x K and V x 4 bytes = 2048 bytes per layer; two layers need 4096.
  auto budget = std::make_shared<KvBudget>(3000);
  auto cache = forward.make_cache(budget);
  const std::vector<std::int32_t> ids{1, 2, 3};
  try {
    forward.run_tokens(ids, *cache);
    FAIL() << "expected the budget to be exceeded";
  } catch (const KvBudgetError& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache budget exceeded"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache->length(0), 0);
  EXPECT_EQ(cache->length(1), 0);
  EXPECT_LE(budget->used(), budget->limit());
  cache.reset();
  EXPECT_EQ(budget->used(), 0U);

  auto roomy = std::make_shared<KvBudget>(1U << 20);
  auto short_cache = forward.make_cache(roomy, 4);
  forward.run_tokens(ids, *short_cache);
  EXPECT_THROW(forward.run_tokens(ids, *short_cache), KvBudgetError);  // 6 > 4 positions
  EXPECT_EQ(short_cache->length(0), 3);
  const std::vector<std::int32_t> bad{10};
  EXPECT_THROW(forward.run_tokens(bad, *short_cache), std::invalid_argument);
}

}  // namespace
}  // namespace exo::inference
