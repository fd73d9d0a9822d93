#include "inference/model_generator.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

#include "inference/compute_pool.h"
#include "inference/gguf_file.h"
#include "inference/gguf_writer.h"
#include "inference/quants.h"

namespace exo::inference {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Deterministic N(0, sigma) values for one row of one tensor (Box-Muller on a splitmix64 stream).
void normal_row(std::uint64_t seed, std::uint64_t tensor_index, std::uint64_t row, float sigma,
                std::span<float> out) {
  std::uint64_t state = seed;
  state ^= splitmix64(state) + tensor_index * 0xD1B54A32D192ED03ULL;
  state ^= splitmix64(state) + row * 0x8CB92BA72F3D8DD7ULL;
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1p-53;  // (0, 1]
    const double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1)) * sigma;
    const double angle = 2.0 * std::numbers::pi * u2;
    out[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
}

std::uint32_t file_type_of(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q4_1:
      return 3;
    case TensorType::Q8_0:
      return 7;
    case TensorType::Q5_0:
      return 8;
    case TensorType::Q5_1:
      return 9;
    case TensorType::Q4_K:
      return 15;
    case TensorType::Q5_K:
      return 17;
    case TensorType::Q6_K:
      return 18;
    case TensorType::BF16:
      return 32;
    default:
      return 0;
  }
}

struct TensorPlan {
  std::string name;
  TensorType type;
  std::uint64_t cols;
  std::uint64_t rows;  // 1 for vectors
  enum class Init { NORMAL, ONES } init;
  float sigma;
};

std::vector<TensorPlan> plan_tensors(const GenerateOptions& o, std::uint32_t n_vocab) {
  const ModelShape& s = o.shape;
  const std::uint64_t head_dim = s.n_embd / s.n_head;
  const std::uint64_t kv_dim = head_dim * s.n_head_kv;
  const bool qwen = s.architecture == "qwen2";
  std::vector<TensorPlan> plan;
  const auto matrix = [&](std::string name, std::uint64_t cols, std::uint64_t rows, float sigma,
                          bool more_bits = false) {
    const TensorType type = o.medium_mix && more_bits ? TensorType::Q6_K : o.type;
    plan.push_back({std::move(name), type, cols, rows, TensorPlan::Init::NORMAL, sigma});
  };
  const auto vector = [&](std::string name, std::uint64_t size, TensorPlan::Init init) {
    plan.push_back({std::move(name), TensorType::F32, size, 1, init, o.weight_sigma});
  };
  matrix("token_embd.weight", s.n_embd, n_vocab, o.embedding_sigma);
  vector("output_norm.weight", s.n_embd, TensorPlan::Init::ONES);
  if (!s.tied_embeddings) matrix("output.weight", s.n_embd, n_vocab, o.weight_sigma, true);
  for (std::uint32_t l = 0; l < s.n_layer; ++l) {
    const std::string blk = fmt::format("blk.{}.", l);
    const bool more_bits = medium_mix_more_bits(l, s.n_layer);
    vector(blk + "attn_norm.weight", s.n_embd, TensorPlan::Init::ONES);
    matrix(blk + "attn_q.weight", s.n_embd, s.n_embd, o.weight_sigma);
    matrix(blk + "attn_k.weight", s.n_embd, kv_dim, o.weight_sigma);
    matrix(blk + "attn_v.weight", s.n_embd, kv_dim, o.weight_sigma, more_bits);
    if (qwen) {
      vector(blk + "attn_q.bias", s.n_embd, TensorPlan::Init::NORMAL);
      vector(blk + "attn_k.bias", kv_dim, TensorPlan::Init::NORMAL);
      vector(blk + "attn_v.bias", kv_dim, TensorPlan::Init::NORMAL);
    }
    matrix(blk + "attn_output.weight", s.n_embd, s.n_embd, o.weight_sigma);
    vector(blk + "ffn_norm.weight", s.n_embd, TensorPlan::Init::ONES);
    matrix(blk + "ffn_gate.weight", s.n_embd, s.n_ff, o.weight_sigma);
    matrix(blk + "ffn_up.weight", s.n_embd, s.n_ff, o.weight_sigma);
    matrix(blk + "ffn_down.weight", s.n_ff, s.n_embd, o.weight_sigma, more_bits);
  }
  return plan;
}

// The built-in vocabulary: <unk>, <s>, </s>, then the 256 byte tokens.
void add_builtin_vocabulary(GgufWriter& writer) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<std::int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);  // byte
  }
  writer.add_string("tokenizer.ggml.model", "llama");
  writer.add_string("tokenizer.ggml.pre", "default");
  writer.add_string_array("tokenizer.ggml.tokens", tokens);
  writer.add_f32_array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  writer.add_i32_array("tokenizer.ggml.token_type", types);
  writer.add_u32("tokenizer.ggml.bos_token_id", 1);
  writer.add_u32("tokenizer.ggml.eos_token_id", 2);
  writer.add_u32("tokenizer.ggml.unknown_token_id", 0);
  writer.add_bool("tokenizer.ggml.add_bos_token", true);
  writer.add_bool("tokenizer.ggml.add_eos_token", false);
}

// Copies every tokenizer.* key; returns the vocabulary size.
std::uint32_t copy_vocabulary(GgufWriter& writer, const std::string& path) {
  const GgufFile vocab = GgufFile::open(path);
  const GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->to_array() == nullptr || tokens->to_array()->empty())
    throw std::invalid_argument(path + " has no tokenizer.ggml.tokens array");
  for (const auto& entry : vocab.metadata()) {
    if (entry.key.starts_with("tokenizer.")) writer.add_value(std::string(entry.key), entry.value);
  }
  return static_cast<std::uint32_t>(tokens->to_array()->size());
}

}  // namespace

std::optional<ModelShape> model_preset(std::string_view name) {
  ModelShape s;
  if (name == "tinyllama-1.1b") {
    s.name = "TinyLlama-1.1B-shaped random";
    s.n_embd = 2048, s.n_layer = 22, s.n_head = 32, s.n_head_kv = 4, s.n_ff = 5632, s.n_ctx = 2048;
    s.expected_vocab = 32000;
    return s;
  }
  if (name == "llama-3.2-1b") {
    s.name = "Llama-3.2-1B-shaped random";
    s.n_embd = 2048, s.n_layer = 16, s.n_head = 32, s.n_head_kv = 8, s.n_ff = 8192, s.n_ctx = 131072;
    s.rope_base = 500000.0f, s.tied_embeddings = true, s.expected_vocab = 128256;
    return s;
  }
  if (name == "qwen2-0.5b") {
    s.architecture = "qwen2", s.name = "Qwen2-0.5B-shaped random";
    s.n_embd = 896, s.n_layer = 24, s.n_head = 14, s.n_head_kv = 2, s.n_ff = 4864, s.n_ctx = 32768;
    s.rope_base = 1000000.0f, s.rms_eps = 1e-6f, s.tied_embeddings = true, s.expected_vocab = 151936;
    return s;
  }
  if (name == "demo") {
    s.name = "exo random-weight demo";
    s.n_embd = 256, s.n_layer = 4, s.n_head = 8, s.n_head_kv = 4, s.n_ff = 768, s.n_ctx = 2048;
    s.expected_vocab = 259;
    return s;
  }
  return std::nullopt;
}

std::vector<std::string> model_preset_names() {
  return {"tinyllama-1.1b", "llama-3.2-1b", "qwen2-0.5b", "demo"};
}

std::optional<TensorType> parse_weight_type(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::pair<std::string_view, TensorType> table[] = {
      {"f32", TensorType::F32},   {"f16", TensorType::F16},   {"bf16", TensorType::BF16},
      {"q8_0", TensorType::Q8_0}, {"q4_0", TensorType::Q4_0}, {"q4_1", TensorType::Q4_1},
      {"q5_0", TensorType::Q5_0}, {"q5_1", TensorType::Q5_1}, {"q4_k", TensorType::Q4_K},
      {"q5_k", TensorType::Q5_K}, {"q6_k", TensorType::Q6_K}};
  for (const auto& [text, type] : table) {
    if (lower == text) return type;
  }
  return std::nullopt;
}

std::optional<WeightRecipe> parse_weight_recipe(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "q4_k_m") return WeightRecipe{TensorType::Q4_K, true};
  if (lower == "q5_k_m") return WeightRecipe{TensorType::Q5_K, true};
  const auto type = parse_weight_type(name);
  if (!type) return std::nullopt;
  return WeightRecipe{*type, false};
}

bool medium_mix_more_bits(std::uint32_t layer, std::uint32_t layers) noexcept {
  const std::uint32_t eighth = layers / 8;
  return layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2;
}

void validate_shape(const ModelShape& s, TensorType type) {
  if (s.architecture != "llama" && s.architecture != "qwen2")
    throw std::invalid_argument("unsupported architecture '" + s.architecture + "' (llama or qwen2)");
  if (s.n_embd == 0 || s.n_layer == 0 || s.n_head == 0 || s.n_head_kv == 0 || s.n_ff == 0 || s.n_ctx == 0)
    throw std::invalid_argument("model shape has a zero dimension");
  if (s.n_embd % s.n_head != 0) throw std::invalid_argument("n_embd must be a multiple of n_head");
  if (s.n_head % s.n_head_kv != 0) throw std::invalid_argument("n_head must be a multiple of n_head_kv");
  if (!can_quantize(type))
    throw std::invalid_argument("cannot write weights of type " + std::string(tensor_type_name(type)));
  const std::uint32_t block = tensor_type_info(type).block_size;
  if (s.n_embd % block != 0 || s.n_ff % block != 0)
    throw std::invalid_argument(fmt::format("{} needs n_embd ({}) and n_ff ({}) to be multiples of {}",
                                            tensor_type_name(type), s.n_embd, s.n_ff, block));
}

GeneratedModel generate_model(const GenerateOptions& o, const std::string& out_path) {
  const ModelShape& s = o.shape;
  validate_shape(s, o.type);
  if (o.medium_mix) {
    if (o.type != TensorType::Q4_K && o.type != TensorType::Q5_K)
      throw std::invalid_argument("the medium mix (q4_k_m / q5_k_m) needs type q4_k or q5_k");
    validate_shape(s, TensorType::Q6_K);
  }
  GgufWriter writer;
  const std::string arch = s.architecture;
  writer.add_string("general.architecture", arch);
  writer.add_string("general.name", s.name);
  writer.add_u32("general.file_type", file_type_of(o.type));
  writer.add_u32("general.quantization_version", 2);
  writer.add_u32(arch + ".context_length", s.n_ctx);
  writer.add_u32(arch + ".embedding_length", s.n_embd);
  writer.add_u32(arch + ".block_count", s.n_layer);
  writer.add_u32(arch + ".feed_forward_length", s.n_ff);
  writer.add_u32(arch + ".attention.head_count", s.n_head);
  writer.add_u32(arch + ".attention.head_count_kv", s.n_head_kv);
  writer.add_f32(arch + ".rope.freq_base", s.rope_base);
  writer.add_f32(arch + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  writer.add_u32(arch + ".rope.dimension_count", s.n_embd / s.n_head);
  std::uint32_t n_vocab = 0;
  if (o.vocab_from.empty()) {
    add_builtin_vocabulary(writer);
    n_vocab = 259;
  } else {
    n_vocab = copy_vocabulary(writer, o.vocab_from);
  }
  writer.add_u32(arch + ".vocab_size", n_vocab);

  ComputePool pool(o.threads);
  const std::vector<TensorPlan> plan = plan_tensors(o, n_vocab);
  GeneratedModel result;
  result.n_vocab = n_vocab;
  result.tensors = plan.size();
  for (std::size_t index = 0; index < plan.size(); ++index) {
    const TensorPlan& t = plan[index];
    result.parameters += t.cols * t.rows;
    std::vector<std::uint64_t> shape = {t.cols};
    if (t.rows > 1 || t.type != TensorType::F32) shape.push_back(t.rows);
    writer.add_tensor(t.name, t.type, shape, [&o, &pool, t, index](std::span<std::uint8_t> bytes) {
      const std::size_t row_bytes = bytes.size() / t.rows;
      pool.parallel_for(
          static_cast<std::int64_t>(t.rows),
          [&](std::int64_t begin, std::int64_t end) {
            std::vector<float> values(t.cols);
            for (std::int64_t r = begin; r < end; ++r) {
              if (t.init == TensorPlan::Init::ONES) {
                std::fill(values.begin(), values.end(), 1.0f);
              } else {
                normal_row(o.seed, index, static_cast<std::uint64_t>(r), t.sigma, values);
              }
              quantize_row(t.type, values, bytes.subspan(static_cast<std::size_t>(r) * row_bytes, row_bytes));
            }
          },
          8);
    });
  }
  writer.write(out_path);
  result.file_bytes = writer.file_size();
  return result;
}

}  // namespace exo::inference
