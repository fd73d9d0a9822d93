#include "inference/model_weights.h"

#include <fmt/format.h>
#include <unistd.h>

#include "inference/gguf_file.h"
#include "inference/repacked_weights.h"

namespace exo::inference {

namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

class Loader {
 public:
  Loader(const GgufFile& file, std::uint64_t& bytes,
         std::vector<std::pair<const std::uint8_t*, std::uint64_t>>& spans, RepackedWeights* repacked)
      : file_(file), bytes_(bytes), spans_(spans), repacked_(repacked) {}

  const GgufTensor& require(const std::string& name) {
    const GgufTensor* tensor = file_.find_tensor(name);
    if (tensor == nullptr) throw ModelError(fmt::format("{}: missing tensor '{}'", file_.name(), name));
    return *tensor;
  }

  // Counts a matrix's bytes once; its span is where they are read from at run time (`data`: the
  // mapping, or a repacked copy).
  void count(const GgufTensor& tensor, const std::uint8_t* data) {
    for (const auto& [at, size] : spans_)
      if (at == data) return;
    spans_.emplace_back(data, tensor.byte_size);
    bytes_ += tensor.byte_size;
  }
  // Counts a vector's bytes; it gets no span: it is read once, into floats, while loading. (Touching
  // it again would map the 2 MiB around it back in, which for a mapping advised for huge pages are
  // the neighbouring matrices' released pages.)
  void count_copied(const GgufTensor& tensor) { bytes_ += tensor.byte_size; }

  // A [cols, rows] matrix of a supported type; `repack`: in the kernels' fastest layout when there is
  // a RepackedWeights (matrices that only serve row lookups, like the embedding table, are not).
  WeightMatrix matrix(const std::string& name, std::int64_t cols, std::int64_t rows, bool repack = true) {
    const GgufTensor& tensor = require(name);
    if (tensor.shape.size() != 2 || tensor.shape[0] != static_cast<std::uint64_t>(cols) ||
        tensor.shape[1] != static_cast<std::uint64_t>(rows))
      throw ModelError(fmt::format("{}: tensor '{}' has shape {}, expected [{}, {}]", file_.name(), name,
                                   shape_text(tensor.shape), cols, rows));
    if (!is_supported_weight_type(tensor.type()))
      throw ModelError(
          fmt::format("{}: tensor '{}' has type {}, which the native engine does not support "
                      "(supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K)",
                      file_.name(), name, tensor.type_info->name));
    WeightMatrix view = WeightMatrix::of(tensor);
    if (repack && repacked_ != nullptr) view = repacked_->matrix(view, file_.is_file_mapping());
    count(tensor, view.data);
    return view;
  }

  // A 1-D tensor of n values, as floats.
  std::vector<float> vector(const std::string& name, std::int64_t n) {
    const GgufTensor& tensor = require(name);
    if (tensor.shape.size() != 1 || tensor.shape[0] != static_cast<std::uint64_t>(n))
      throw ModelError(fmt::format("{}: tensor '{}' has shape {}, expected [{}]", file_.name(), name,
                                   shape_text(tensor.shape), n));
    const TensorType type = tensor.type();
    if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::BF16)
      throw ModelError(fmt::format("{}: tensor '{}' has type {}; vectors must be f32, f16 or bf16",
                                   file_.name(), name, tensor.type_info->name));
    count_copied(tensor);
    return dequantize_tensor(tensor);
  }

 private:
  const GgufFile& file_;
  std::uint64_t& bytes_;
  std::vector<std::pair<const std::uint8_t*, std::uint64_t>>& spans_;
  RepackedWeights* repacked_;
};

}  // namespace

bool is_supported_weight_type(TensorType type) noexcept {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

ModelWeights ModelWeights::load(const GgufFile& file, const ModelConfig& config, std::int64_t start_layer,
                                std::int64_t end_layer, RepackedWeights* repacked) {
  if (start_layer < 0 || end_layer < start_layer || end_layer >= config.n_layer)
    throw ModelError(fmt::format("{}: layer range [{}, {}] is not inside the model's {} layers", file.name(),
                                 start_layer, end_layer, config.n_layer));
  ModelWeights w;
  w.start_layer_ = start_layer;
  w.end_layer_ = end_layer;
  w.n_layers_ = config.n_layer;
  std::vector<std::pair<const std::uint8_t*, std::uint64_t>> spans;
  Loader loader(file, w.weight_bytes_, spans, repacked);

  const bool last = end_layer == config.n_layer - 1;
  if (start_layer == 0 || (last && config.tied_output))
    w.token_embd_ = loader.matrix("token_embd.weight", config.n_embd, config.n_vocab, false);
  if (last) {
    w.output_norm_ = loader.vector("output_norm.weight", config.n_embd);
    w.output_ =
        config.tied_output ? w.token_embd_ : loader.matrix("output.weight", config.n_embd, config.n_vocab);
  }
  std::vector<float> rope_freqs;
  if (config.has_rope_freqs) rope_freqs = loader.vector("rope_freqs.weight", config.head_dim / 2);
  w.rope_frequencies_ = rope_inverse_frequencies(config, rope_freqs);

  for (std::int64_t i = start_layer; i <= end_layer; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights l;
    l.attn_norm = loader.vector(p + "attn_norm.weight", config.n_embd);
    l.attn_q = loader.matrix(p + "attn_q.weight", config.n_embd, config.q_dim());
    l.attn_k = loader.matrix(p + "attn_k.weight", config.n_embd, config.kv_dim());
    l.attn_v = loader.matrix(p + "attn_v.weight", config.n_embd, config.kv_dim());
    if (config.attention_bias) {
      l.attn_q_bias = loader.vector(p + "attn_q.bias", config.q_dim());
      l.attn_k_bias = loader.vector(p + "attn_k.bias", config.kv_dim());
      l.attn_v_bias = loader.vector(p + "attn_v.bias", config.kv_dim());
    }
    l.attn_output = loader.matrix(p + "attn_output.weight", config.q_dim(), config.n_embd);
    l.ffn_norm = loader.vector(p + "ffn_norm.weight", config.n_embd);
    l.ffn_gate = loader.matrix(p + "ffn_gate.weight", config.n_embd, config.n_ff);
    l.ffn_up = loader.matrix(p + "ffn_up.weight", config.n_embd, config.n_ff);
    l.ffn_down = loader.matrix(p + "ffn_down.weight", config.n_ff, config.n_embd);
    w.layers_.push_back(std::move(l));
  }
  for (const auto& [data, size] : spans) w.spans_.push_back({data, size});
  return w;
}

std::uint64_t ModelWeights::fault_in() const noexcept {
  const long page_size = ::sysconf(_SC_PAGESIZE);
  const auto step = page_size > 0 ? static_cast<std::uint64_t>(page_size) : 4096U;
  std::uint64_t covered = 0;
  std::uint8_t sum = 0;
  for (const Span& span : spans_) {
    for (std::uint64_t offset = 0; offset < span.size; offset += step) sum ^= span.data[offset];
    if (span.size > 0) sum ^= span.data[span.size - 1];
    covered += span.size;
  }
  // Keeps the reads: the compiler may not drop a value that leaves through a volatile store.
  volatile std::uint8_t sink = sum;
  static_cast<void>(sink);
  return covered;
}

}  // namespace exo::inference
