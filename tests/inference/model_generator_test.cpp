// Random model generation: files open with our reader (and the engine's config/weights loaders),
// carry the llama-family metadata and tensors, are deterministic, and copy the source vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "inference/compute_pool.h"
#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/matmul.h"
#include "inference/model_config.h"
#include "inference/model_generator.h"
#include "inference/model_weights.h"
#include "inference/quants.h"
#include "inference/repacked_weights.h"
#include "inference/tokenizer.h"
#include "test_support.h"

namespace exo::inference {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("exo_model_generator_" + name + ".gguf")).string();
}

ModelShape tiny_shape() {
  ModelShape s = *model_preset("demo");
  s.n_layer = 2;
  return s;
}

TEST(ModelGenerator, DemoPresetIsSmallAndLoadsAsALlamaModel) {
  GenerateOptions o;
  o.shape = *model_preset("demo");
  const auto path = temp_path("demo");
  const GeneratedModel m = generate_model(o, path);
  EXPECT_LT(m.file_bytes, 8U << 20);
  EXPECT_EQ(m.n_vocab, 259U);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count"), o.shape.n_layer);
  EXPECT_EQ(f.get_u32("llama.embedding_length"), 256U);
  EXPECT_EQ(f.get_u32("llama.attention.head_count_kv"), o.shape.n_head_kv);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.tensors().size(), 3U + 9U * o.shape.n_layer);
  EXPECT_EQ(f.tensor("blk.0.attn_k.weight").shape, (std::vector<std::uint64_t>{256, 128}));
  EXPECT_EQ(f.tensor("blk.3.ffn_down.weight").shape, (std::vector<std::uint64_t>{768, 256}));
  EXPECT_EQ(f.tensor("blk.0.ffn_up.weight").type(), TensorType::Q8_0);
  EXPECT_EQ(f.tensor("output_norm.weight").type(), TensorType::F32);
  const ModelConfig config = ModelConfig::from_gguf(f);
  EXPECT_EQ(config.n_vocab, 259);
  EXPECT_FALSE(config.tied_output);
  const ModelWeights weights = ModelWeights::load(f, config, 0, config.n_layer - 1);
  EXPECT_GT(weights.weight_bytes(), 0U);
  // The byte vocabulary encodes any text through byte fallback.
  const Tokenizer tokenizer = Tokenizer::from_gguf(f);
  EXPECT_FALSE(tokenizer.encode("héllo wörld", false, false).empty());
  std::filesystem::remove(path);
}

TEST(ModelGenerator, AShardCountsAndFaultsInOnlyItsOwnTensors) {
  GenerateOptions o;
  o.shape = *model_preset("demo");  // 4 layers, separate output matrix
  const auto path = temp_path("shard");
  generate_model(o, path);
  const GgufFile f = GgufFile::open(path);
  const ModelConfig config = ModelConfig::from_gguf(f);
  // weight_bytes counts every tensor; fault_in touches only the matrices: vectors (norms) are copied
  // to floats at load and their file pages never read again.
  std::uint64_t all = 0;
  std::uint64_t all_matrices = 0;
  std::uint64_t layer_two = 0;
  std::uint64_t layer_two_matrices = 0;
  for (const auto& t : f.tensors()) {
    const bool matrix = t.shape.size() == 2;
    all += t.byte_size;
    all_matrices += matrix ? t.byte_size : 0;
    if (t.name.starts_with("blk.2.")) {
      layer_two += t.byte_size;
      layer_two_matrices += matrix ? t.byte_size : 0;
    }
  }
  ASSERT_LT(all_matrices, all);
  const ModelWeights whole = ModelWeights::load(f, config, 0, config.n_layer - 1);
  EXPECT_EQ(whole.weight_bytes(), all);
  EXPECT_EQ(whole.fault_in(), all_matrices);
  // A middle shard: its layer only, neither the embeddings nor the output.
  const ModelWeights middle = ModelWeights::load(f, config, 2, 2);
  EXPECT_EQ(middle.weight_bytes(), layer_two);
  EXPECT_EQ(middle.fault_in(), layer_two_matrices);
  std::filesystem::remove(path);
}

TEST(ModelGenerator, WeightsHaveTheRequestedDistributionAndAreDeterministic) {
  GenerateOptions o;
  o.shape = tiny_shape();
  o.type = TensorType::F32;
  o.seed = 7;
  const auto a = temp_path("a");
  const auto b = temp_path("b");
  const auto c = temp_path("c");
  generate_model(o, a);
  o.threads = 1;
  generate_model(o, b);
  o.seed = 8;
  generate_model(o, c);
  const auto bytes_a = test::read_binary_file(a);
  EXPECT_EQ(bytes_a, test::read_binary_file(b)) << "same seed, different thread count";
  EXPECT_NE(bytes_a, test::read_binary_file(c)) << "different seed";
  const GgufFile f = GgufFile::open(a);
  const auto w = dequantize_tensor(f.tensor("blk.1.ffn_gate.weight"));
  double sum = 0;
  double sq = 0;
  for (float v : w) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  const double mean = sum / static_cast<double>(w.size());
  const double sigma = std::sqrt(sq / static_cast<double>(w.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(sigma, o.weight_sigma, 0.001);
  for (float v : dequantize_tensor(f.tensor("blk.0.attn_norm.weight"))) ASSERT_EQ(v, 1.0f);
  for (const auto& p : {a, b, c}) std::filesystem::remove(p);
}

TEST(ModelGenerator, EveryWeightTypeProducesALoadableModel) {
  for (const char* name :
       {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"}) {
    GenerateOptions o;
    o.shape = tiny_shape();
    o.type = *parse_weight_type(name);
    const auto path = temp_path(name);
    generate_model(o, path);
    const GgufFile f = GgufFile::open(path);
    EXPECT_EQ(f.tensor("blk.1.attn_q.weight").type(), o.type) << name;
    const auto values = dequantize_tensor(f.tensor("blk.1.attn_q.weight"));
    for (float v : values) ASSERT_TRUE(std::isfinite(v)) << name;
    const ModelConfig config = ModelConfig::from_gguf(f);
    EXPECT_NO_THROW(ModelWeights::load(f, config, 0, config.n_layer - 1)) << name;
    std::filesystem::remove(path);
  }
  EXPECT_FALSE(parse_weight_type("q3_k"));
  EXPECT_EQ(parse_weight_type("Q4_K"), TensorType::Q4_K);
}

TEST(ModelGenerator, MediumMixGivesQ6_KToOutputAndTheRecipesAttnVAndFfnDownLayers) {
  // llama.cpp's Q4_K_M recipe, as its quantizer wrote ../shared/models/small-q4_k_m.gguf (4 layers:
  // layers 2 and 3 get Q6_K) and as it treats TinyLlama's 22 layers.
  std::vector<std::uint32_t> more_bits_of_22;
  for (std::uint32_t l = 0; l < 22; ++l)
    if (medium_mix_more_bits(l, 22)) more_bits_of_22.push_back(l);
  EXPECT_EQ(more_bits_of_22, (std::vector<std::uint32_t>{0, 1, 4, 7, 10, 13, 16, 19, 20, 21}));
  GenerateOptions o;
  o.shape = tiny_shape();
  o.shape.n_layer = 4;
  const auto recipe = parse_weight_recipe("Q4_K_M");
  ASSERT_TRUE(recipe);
  o.type = recipe->type;
  o.medium_mix = recipe->medium_mix;
  const auto path = temp_path("q4_k_m");
  generate_model(o, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.tensor("output.weight").type(), TensorType::Q6_K);
  EXPECT_EQ(f.tensor("token_embd.weight").type(), TensorType::Q4_K);
  for (std::uint32_t l = 0; l < 4; ++l) {
    const TensorType expected = l >= 2 ? TensorType::Q6_K : TensorType::Q4_K;
    const std::string blk = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(f.tensor(blk + "attn_v.weight").type(), expected) << l;
    EXPECT_EQ(f.tensor(blk + "ffn_down.weight").type(), expected) << l;
    EXPECT_EQ(f.tensor(blk + "attn_q.weight").type(), TensorType::Q4_K) << l;
    EXPECT_EQ(f.tensor(blk + "ffn_up.weight").type(), TensorType::Q4_K) << l;
  }
  const ModelConfig config = ModelConfig::from_gguf(f);
  EXPECT_NO_THROW(ModelWeights::load(f, config, 0, config.n_layer - 1));
  std::filesystem::remove(path);
  EXPECT_FALSE(parse_weight_recipe("q4_0_m"));
  EXPECT_EQ(parse_weight_recipe("q8_0")->type, TensorType::Q8_0);
  EXPECT_FALSE(parse_weight_recipe("q8_0")->medium_mix);
  o.type = TensorType::Q8_0;  // the mix is defined for the K types only
  EXPECT_THROW(generate_model(o, path), std::invalid_argument);
}

TEST(ModelGenerator, Qwen2HasBiasesAndTiedOutput) {
  GenerateOptions o;
  o.shape = tiny_shape();
  o.shape.architecture = "qwen2";
  o.shape.tied_embeddings = true;
  const auto path = temp_path("qwen2");
  generate_model(o, path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_string("general.architecture"), "qwen2");
  EXPECT_EQ(f.get_u32("qwen2.block_count"), 2U);
  EXPECT_NE(f.find_tensor("blk.1.attn_k.bias"), nullptr);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const ModelConfig config = ModelConfig::from_gguf(f);
  EXPECT_TRUE(config.attention_bias);
  EXPECT_TRUE(config.tied_output);
  std::filesystem::remove(path);
}

TEST(ModelGenerator, InvalidShapesAndPresetsAreRejected) {
  EXPECT_FALSE(model_preset("gpt-5"));
  for (const auto& name : model_preset_names()) EXPECT_TRUE(model_preset(name)) << name;
  ModelShape s = tiny_shape();
  EXPECT_NO_THROW(validate_shape(s, TensorType::Q4_K)) << "n_embd 256 and n_ff 768 are multiples of 256";
  s.n_head = 3;
  EXPECT_THROW(validate_shape(s, TensorType::F32), std::invalid_argument);
  s = tiny_shape();
  s.architecture = "gpt2";
  EXPECT_THROW(validate_shape(s, TensorType::F32), std::invalid_argument);
  s = tiny_shape();
  s.n_embd = 96;
  s.n_head = 4;
  s.n_head_kv = 2;
  EXPECT_NO_THROW(validate_shape(s, TensorType::Q8_0));
  EXPECT_THROW(validate_shape(s, TensorType::Q6_K), std::invalid_argument);
  const auto tinyllama = *model_preset("tinyllama-1.1b");
  EXPECT_EQ(tinyllama.n_embd, 2048U);
  EXPECT_EQ(tinyllama.n_layer, 22U);
  EXPECT_EQ(tinyllama.n_ff, 5632U);
  const auto llama32 = *model_preset("llama-3.2-1b");
  EXPECT_TRUE(llama32.tied_embeddings);
  EXPECT_EQ(llama32.rope_base, 500000.0f);
}

TEST(ModelGenerator, VocabularyIsCopiedFromTheSourceFile) {
  const auto vocab = test::model_path("ggml-vocab-llama-spm.gguf");
  EXO_SKIP_IF_MISSING(vocab);
  GenerateOptions o;
  o.shape = tiny_shape();
  o.vocab_from = vocab.string();
  const auto path = temp_path("spm");
  const GeneratedModel m = generate_model(o, path);
  EXPECT_EQ(m.n_vocab, 32000U);
  const GgufFile source = GgufFile::open(vocab.string());
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"), source.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(f.get_f32_array("tokenizer.ggml.scores"), source.get_f32_array("tokenizer.ggml.scores"));
  EXPECT_EQ(f.tensor("token_embd.weight").shape, (std::vector<std::uint64_t>{256, 32000}));
  const Tokenizer a = Tokenizer::from_gguf(source);
  const Tokenizer b = Tokenizer::from_gguf(f);
  for (const char* text :
       {"Hello world", " \n\ttabs and  spaces", "héllo wörld 你好 🙂", "<s> not special"}) {
    EXPECT_EQ(a.encode(text, false, false), b.encode(text, false, false)) << text;
  }
  std::filesystem::remove(path);
}

// The medium mixes put Q4_K or Q5_K next to Q6_K matrices: every one of them runs repacked into its 8-row
// layout (when the kernels use those layouts) and the logits match the file layout's, whose row
// kernels share no code with the 8-row ones.
TEST(ModelGenerator, MediumMixModelsRunRepackedAsInTheFileLayout) {
  for (const char* recipe_name : {"q4_k_m", "q5_k_m"}) {
    const auto recipe = parse_weight_recipe(recipe_name);
    ASSERT_TRUE(recipe);
    GenerateOptions o;
    o.shape = tiny_shape();
    o.type = recipe->type;
    o.medium_mix = recipe->medium_mix;
    o.weight_sigma = 0.1f;  // logits well away from zero
    const auto path = temp_path(recipe_name);
    generate_model(o, path);
    const GgufFile file = GgufFile::open(path);
    const ModelConfig config = ModelConfig::from_gguf(file);
    const std::vector<std::int32_t> ids{1, 15, 27, 100, 42, 7, 99, 3, 64};
    ComputePool pool(2);
    const auto run = [&](RepackedWeights* repacked) {
      const ModelWeights weights = ModelWeights::load(file, config, 0, config.n_layer - 1, repacked);
      ForwardPass forward(config, weights, pool);
      auto cache = forward.make_cache(std::make_shared<KvBudget>(1U << 26));
      return forward.run_tokens(ids, *cache, ForwardPass::Logits::ALL);
    };
    const std::vector<float> file_layout = run(nullptr);
    RepackedWeights repacked;
    const std::vector<float> packed = run(&repacked);
    if (uses_x8_layouts(best_variant())) {
      // Every 2-D weight is Q4_K / Q5_K / Q6_K; all but the embeddings (read by row) and the output
      // matrix (259 vocabulary rows: not whole groups of 8) are repacked.
      std::uint64_t repackable = 0;
      for (const auto& t : file.tensors()) {
        if (t.shape.size() == 2 && t.name != "token_embd.weight" && t.row_count() % 8 == 0)
          repackable += t.data.size();
      }
      EXPECT_GT(repackable, 0U);
      EXPECT_EQ(repacked.bytes(), repackable) << recipe_name;
    }
    float largest = 0;
    for (float v : file_layout) largest = std::max(largest, std::fabs(v));
    ASSERT_GT(largest, 0.0f);
    ASSERT_EQ(packed.size(), file_layout.size());
    for (std::size_t i = 0; i < packed.size(); ++i)
      ASSERT_NEAR(packed[i], file_layout[i], 1e-4F * largest) << recipe_name << " logit " << i;
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace exo::inference
