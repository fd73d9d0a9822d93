#include "inference/model_config.h"

#include <fmt/format.h>

#include <cmath>
#include <numbers>
#include <optional>

#include "inference/gguf_file.h"

namespace exo::inference {

namespace {

// Reads a positive integer `<arch>.<suffix>` (or `fallback` when absent and a fallback is given).
std::int64_t positive(const GgufFile& file, const std::string& key,
                      std::optional<std::int64_t> fallback = {}) {
  std::int64_t value = 0;
  try {
    if (!file.has(key)) {
      if (!fallback) throw ModelError(fmt::format("{}: missing metadata key '{}'", file.name(), key));
      value = *fallback;
    } else {
      value = file.get_i64(key);
    }
  } catch (const GgufError& e) {
    throw ModelError(e.what());
  }
  if (value <= 0 || value > (std::int64_t{1} << 31))
    throw ModelError(fmt::format("{}: metadata '{}' = {} is not a valid size", file.name(), key, value));
  return value;
}

std::optional<float> optional_float(const GgufFile& file, const std::string& key) {
  if (!file.has(key)) return std::nullopt;
  try {
    return file.get_f32(key);
  } catch (const GgufError& e) {
    throw ModelError(e.what());
  }
}

void read_rope_scaling(const GgufFile& file, const std::string& arch, ModelConfig& config) {
  const std::string prefix = arch + ".rope.scaling.";
  std::string type = "none";
  if (file.has(prefix + "type")) type = std::string(file.get_string(prefix + "type"));
  const auto factor = optional_float(file, prefix + "factor");
  RopeScaling& s = config.rope_scaling;
  if (type == "none" || (type == "linear" && (!factor || *factor == 1.0F || *factor == 0.0F))) {
    s.kind = RopeScaling::Kind::NONE;
  } else if (type == "linear") {
    s.kind = RopeScaling::Kind::LINEAR;
  } else if (type == "llama3") {
    s.kind = RopeScaling::Kind::LLAMA3;
  } else {
    throw ModelError(fmt::format("{}: unsupported RoPE scaling type '{}' (supported: none, linear, llama3)",
                                 file.name(), type));
  }
  if (factor) s.factor = *factor;
  if (const auto low = optional_float(file, prefix + "low_freq_factor")) s.low_freq_factor = *low;
  if (const auto high = optional_float(file, prefix + "high_freq_factor")) s.high_freq_factor = *high;
  if (file.has(prefix + "original_context_length"))
    s.original_context = static_cast<std::uint32_t>(positive(file, prefix + "original_context_length"));
  if (s.kind != RopeScaling::Kind::NONE && !(s.factor > 0.0F && std::isfinite(s.factor)))
    throw ModelError(fmt::format("{}: invalid RoPE scaling factor {}", file.name(), s.factor));
  if (s.kind == RopeScaling::Kind::LLAMA3 &&
      !(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0.0F))
    throw ModelError(fmt::format("{}: invalid llama3 RoPE scaling (low_freq_factor {}, high_freq_factor {})",
                                 file.name(), s.low_freq_factor, s.high_freq_factor));
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& file) {
  ModelConfig c;
  std::string arch;
  try {
    arch = std::string(file.get_string("general.architecture"));
  } catch (const GgufError& e) {
    throw ModelError(e.what());
  }
  if (arch == "llama") {
    c.architecture = Architecture::LLAMA;
    c.rope_style = RopeStyle::ADJACENT_PAIRS;
  } else if (arch == "qwen2") {
    c.architecture = Architecture::QWEN2;
    c.rope_style = RopeStyle::HALVES;
    c.attention_bias = true;
  } else {
    throw ModelError(
        fmt::format("{}: unsupported architecture '{}' (supported: llama, qwen2)", file.name(), arch));
  }
  c.architecture_name = arch;
  if (const auto name = file.find_string("general.name")) c.name = std::string(*name);

  c.n_embd = positive(file, arch + ".embedding_length");
  c.n_layer = positive(file, arch + ".block_count");
  c.n_head = positive(file, arch + ".attention.head_count");
  c.n_head_kv = positive(file, arch + ".attention.head_count_kv", c.n_head);
  c.n_ff = positive(file, arch + ".feed_forward_length");
  c.n_ctx = positive(file, arch + ".context_length");
  if (c.n_head % c.n_head_kv != 0)
    throw ModelError(fmt::format("{}: head_count {} is not a multiple of head_count_kv {}", file.name(),
                                 c.n_head, c.n_head_kv));
  if (c.n_embd % c.n_head != 0 && !file.has(arch + ".attention.key_length"))
    throw ModelError(fmt::format("{}: embedding_length {} is not a multiple of head_count {}", file.name(),
                                 c.n_embd, c.n_head));
  c.head_dim = positive(file, arch + ".attention.key_length", c.n_embd / c.n_head);
  const std::int64_t value_length = positive(file, arch + ".attention.value_length", c.head_dim);
  if (value_length != c.head_dim)
    throw ModelError(fmt::format("{}: attention.value_length {} differs from key_length {} (unsupported)",
                                 file.name(), value_length, c.head_dim));
  if (c.head_dim % 2 != 0)
    throw ModelError(fmt::format("{}: head size {} is odd; RoPE needs pairs", file.name(), c.head_dim));
  const std::int64_t n_rot = positive(file, arch + ".rope.dimension_count", c.head_dim);
  if (n_rot != c.head_dim)
    throw ModelError(
        fmt::format("{}: rope.dimension_count {} differs from the head size {} (partial RoPE is "
                    "not supported)",
                    file.name(), n_rot, c.head_dim));

  if (const auto base = optional_float(file, arch + ".rope.freq_base")) c.rope_base = *base;
  if (!(c.rope_base > 1.0F && std::isfinite(c.rope_base)))
    throw ModelError(fmt::format("{}: invalid rope.freq_base {}", file.name(), c.rope_base));
  if (const auto eps = optional_float(file, arch + ".attention.layer_norm_rms_epsilon")) c.rms_eps = *eps;
  if (!(c.rms_eps > 0.0F && c.rms_eps < 1.0F))
    throw ModelError(fmt::format("{}: invalid layer_norm_rms_epsilon {}", file.name(), c.rms_eps));
  read_rope_scaling(file, arch, c);

  const GgufTensor* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr) throw ModelError(fmt::format("{}: missing tensor 'token_embd.weight'", file.name()));
  if (embd->shape.size() != 2 || embd->shape[0] != static_cast<std::uint64_t>(c.n_embd) ||
      embd->shape[1] == 0)
    throw ModelError(
        fmt::format("{}: tensor 'token_embd.weight' must have shape [{}, n_vocab]", file.name(), c.n_embd));
  c.n_vocab = static_cast<std::int64_t>(embd->shape[1]);
  if (file.has(arch + ".vocab_size") && positive(file, arch + ".vocab_size") != c.n_vocab)
    throw ModelError(fmt::format("{}: {}.vocab_size {} differs from token_embd.weight's {} rows", file.name(),
                                 arch, positive(file, arch + ".vocab_size"), c.n_vocab));
  if (file.has("tokenizer.ggml.tokens")) {
    const auto tokens = static_cast<std::int64_t>(file.get_array("tokenizer.ggml.tokens").size());
    if (tokens > c.n_vocab)
      throw ModelError(fmt::format("{}: the tokenizer has {} tokens but token_embd.weight only {} rows",
                                   file.name(), tokens, c.n_vocab));
  }
  c.tied_output = file.find_tensor("output.weight") == nullptr;
  c.has_rope_freqs = file.find_tensor("rope_freqs.weight") != nullptr;
  return c;
}

std::vector<double> rope_inverse_frequencies(const ModelConfig& config, std::span<const float> rope_freqs) {
  const std::int64_t pairs = config.head_dim / 2;
  if (!rope_freqs.empty() && static_cast<std::int64_t>(rope_freqs.size()) != pairs)
    throw ModelError(fmt::format("tensor 'rope_freqs.weight' has {} values, expected head_dim/2 = {}",
                                 rope_freqs.size(), pairs));
  std::vector<double> theta(static_cast<std::size_t>(pairs));
  const RopeScaling& s = config.rope_scaling;
  for (std::int64_t i = 0; i < pairs; ++i) {
    double f = std::pow(static_cast<double>(config.rope_base),
                        -2.0 * static_cast<double>(i) / static_cast<double>(config.head_dim));
    if (!rope_freqs.empty()) {
      f /= static_cast<double>(rope_freqs[static_cast<std::size_t>(i)]);
    } else if (s.kind == RopeScaling::Kind::LINEAR) {
      f /= static_cast<double>(s.factor);
    } else if (s.kind == RopeScaling::Kind::LLAMA3) {
      // Wavelengths longer than original_context / low_freq_factor are slowed down by `factor`,
      // shorter than original_context / high_freq_factor are kept, and the band between is blended.
      const double wavelength = 2.0 * std::numbers::pi / f;
      const double context = s.original_context;
      const double low_wavelength = context / s.low_freq_factor;
      const double high_wavelength = context / s.high_freq_factor;
      if (wavelength > low_wavelength) {
        f /= s.factor;
      } else if (wavelength >= high_wavelength) {
        const double smooth =
            (context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    theta[static_cast<std::size_t>(i)] = f;
  }
  return theta;
}

}  // namespace exo::inference
