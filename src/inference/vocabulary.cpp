#include "inference/vocabulary.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "inference/byte_level.h"
#include "inference/gguf_file.h"
#include "inference/unicode.h"

namespace exo::inference {

namespace {

constexpr std::string_view key_model = "tokenizer.ggml.model";
constexpr std::string_view key_pre = "tokenizer.ggml.pre";
constexpr std::string_view key_tokens = "tokenizer.ggml.tokens";
constexpr std::string_view key_scores = "tokenizer.ggml.scores";
constexpr std::string_view key_token_type = "tokenizer.ggml.token_type";
constexpr std::string_view key_merges = "tokenizer.ggml.merges";

struct PreAlias {
  std::string_view name;
  PreTokenizerKind kind;
};

// tokenizer.ggml.pre values whose splitting rules are implemented. "default" (and a missing key)
// means the GPT-2 rules, the byte-level BPE original.
constexpr PreAlias pre_aliases[] = {
    {"default", PreTokenizerKind::GPT2},     {"gpt-2", PreTokenizerKind::GPT2},
    {"gpt2", PreTokenizerKind::GPT2},        {"phi-2", PreTokenizerKind::GPT2},
    {"roberta-bpe", PreTokenizerKind::GPT2}, {"llama-bpe", PreTokenizerKind::LLAMA3},
    {"llama3", PreTokenizerKind::LLAMA3},    {"llama-v3", PreTokenizerKind::LLAMA3},
    {"qwen2", PreTokenizerKind::QWEN2},      {"deepseek-r1-qwen", PreTokenizerKind::QWEN2},
};

TokenType token_type_from_raw(std::int32_t raw) {
  if (raw < 0 || raw > static_cast<std::int32_t>(TokenType::BYTE)) return TokenType::UNDEFINED;
  return static_cast<TokenType>(raw);
}

std::optional<TokenId> special_id(const GgufFile& file, std::string_view key) {
  const auto raw = file.find_u32(key);
  if (!raw || *raw > static_cast<std::uint32_t>(std::numeric_limits<TokenId>::max())) return std::nullopt;
  return static_cast<TokenId>(*raw);
}

std::string merge_key(std::string_view left, std::string_view right) {
  std::string key;
  key.reserve(left.size() + 1 + right.size());
  key.append(left);
  key.push_back('\xff');
  key.append(right);
  return key;
}

}  // namespace

Vocabulary Vocabulary::from_gguf(const GgufFile& file) {
  Description description;
  try {
    const auto model_name = file.find_string(key_model);
    if (!model_name)
      throw TokenizerError(fmt::format("'{}' has no tokenizer ({} is missing)", file.name(), key_model));
    if (*model_name == "llama") {
      description.model = TokenizerModel::SPM;
    } else if (*model_name == "gpt2") {
      description.model = TokenizerModel::BPE;
    } else {
      throw TokenizerError(fmt::format("'{}': tokenizer model '{}' is not supported (supported: llama, gpt2)",
                                       file.name(), *model_name));
    }
    if (const auto pre = file.find_string(key_pre)) description.pre_name = std::string(*pre);

    const auto texts = file.get_string_array(key_tokens);
    const std::vector<float> scores =
        file.has(key_scores) ? file.get_f32_array(key_scores) : std::vector<float>{};
    const std::vector<std::int32_t> types =
        file.has(key_token_type) ? file.get_i32_array(key_token_type) : std::vector<std::int32_t>{};
    if (!scores.empty() && scores.size() != texts.size()) {
      throw TokenizerError(fmt::format("'{}': {} has {} entries but there are {} tokens", file.name(),
                                       key_scores, scores.size(), texts.size()));
    }
    if (!types.empty() && types.size() != texts.size()) {
      throw TokenizerError(fmt::format("'{}': {} has {} entries but there are {} tokens", file.name(),
                                       key_token_type, types.size(), texts.size()));
    }
    description.tokens.reserve(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      description.tokens.push_back({std::string(texts[i]), scores.empty() ? 0.0f : scores[i],
                                    types.empty() ? TokenType::NORMAL : token_type_from_raw(types[i])});
    }
    if (file.has(key_merges)) {
      for (const auto merge : file.get_string_array(key_merges)) description.merges.emplace_back(merge);
    }
    description.bos = special_id(file, "tokenizer.ggml.bos_token_id");
    description.eos = special_id(file, "tokenizer.ggml.eos_token_id");
    description.unknown = special_id(file, "tokenizer.ggml.unknown_token_id");
    description.padding = special_id(file, "tokenizer.ggml.padding_token_id");
    description.separator = special_id(file, "tokenizer.ggml.seperator_token_id");  // sic: the GGUF key
    description.add_bos = file.find_bool("tokenizer.ggml.add_bos_token");
    description.add_eos = file.find_bool("tokenizer.ggml.add_eos_token");
    description.add_space_prefix = file.find_bool("tokenizer.ggml.add_space_prefix");
  } catch (const GgufMetadataError& error) {
    throw TokenizerError(fmt::format("'{}': invalid tokenizer metadata: {}", file.name(), error.what()));
  }
  return Vocabulary(std::move(description));
}

Vocabulary::Vocabulary(Description description)
    : model_(description.model),
      pre_name_(std::move(description.pre_name)),
      tokens_(std::move(description.tokens)) {
  if (tokens_.empty()) throw TokenizerError("vocabulary has no tokens");
  if (tokens_.size() > static_cast<std::size_t>(std::numeric_limits<TokenId>::max())) {
    throw TokenizerError(fmt::format("vocabulary has too many tokens ({})", tokens_.size()));
  }
  if (model_ == TokenizerModel::BPE) {
    const auto alias = std::find_if(std::begin(pre_aliases), std::end(pre_aliases),
                                    [&](const PreAlias& a) { return a.name == pre_name_; });
    if (alias == std::end(pre_aliases)) {
      throw TokenizerError(
          fmt::format("pre-tokenizer '{}' is not supported (supported: default, gpt-2, llama-bpe, "
                      "llama3, qwen2, ...)",
                      pre_name_));
    }
    pre_tokenizer_ = alias->kind;
  }

  token_index_.reserve(tokens_.size());
  for (std::size_t id = 0; id < tokens_.size(); ++id) {
    // On duplicate texts the lowest id wins.
    token_index_.emplace(tokens_[id].text, static_cast<std::uint32_t>(id));
  }

  merge_ranks_.reserve(description.merges.size());
  for (std::size_t rank = 0; rank < description.merges.size(); ++rank) {
    const std::string& merge = description.merges[rank];
    const std::size_t split = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (split == std::string::npos) {
      throw TokenizerError(fmt::format("merge {} ('{}') is not of the form 'left right'", rank, merge));
    }
    merge_ranks_.emplace(
        merge_key(std::string_view(merge).substr(0, split), std::string_view(merge).substr(split + 1)),
        static_cast<std::uint32_t>(rank));
  }

  auto valid = [this](std::optional<TokenId> id) { return id && contains(*id) ? id : std::nullopt; };
  const bool spm = model_ == TokenizerModel::SPM;
  // SentencePiece conventions when the file is silent: <unk> = 0, <s> = 1, </s> = 2.
  bos_ = valid(description.bos ? description.bos : (spm ? std::optional<TokenId>(1) : std::nullopt));
  eos_ = valid(description.eos ? description.eos : (spm ? std::optional<TokenId>(2) : std::nullopt));
  unknown_ =
      valid(description.unknown ? description.unknown : (spm ? std::optional<TokenId>(0) : std::nullopt));
  padding_ = valid(description.padding);
  separator_ = valid(description.separator);
  add_bos_ = description.add_bos.value_or(spm || pre_tokenizer_ == PreTokenizerKind::LLAMA3);
  add_eos_ = description.add_eos.value_or(false);
  add_space_prefix_ = spm && description.add_space_prefix.value_or(true);
  ignore_merges_ = !spm && pre_tokenizer_ == PreTokenizerKind::LLAMA3;

  for (unsigned byte = 0; byte < 256; ++byte) {
    std::optional<TokenId> id;
    if (spm) {
      id = find(fmt::format("<0x{:02X}>", byte));
      if (!id) id = find(std::string(1, static_cast<char>(byte)));
    } else {
      id = find(encode_utf8(byte_to_byte_level_char(static_cast<std::uint8_t>(byte))));
    }
    byte_tokens_[byte] = id.value_or(-1);
  }

  for (std::size_t id = 0; id < tokens_.size(); ++id) {
    const TokenType type = tokens_[id].type;
    const bool special =
        type == TokenType::USER_DEFINED || type == TokenType::CONTROL || type == TokenType::UNKNOWN;
    if (special && !tokens_[id].text.empty()) special_candidates_.push_back(static_cast<TokenId>(id));
  }
  std::stable_sort(special_candidates_.begin(), special_candidates_.end(),
                   [this](TokenId a, TokenId b) { return text(a).size() > text(b).size(); });
}

std::optional<TokenId> Vocabulary::find(std::string_view token_text) const {
  const auto it = token_index_.find(token_text);
  if (it == token_index_.end()) return std::nullopt;
  return static_cast<TokenId>(it->second);
}

std::optional<std::uint32_t> Vocabulary::merge_rank(std::string_view left, std::string_view right) const {
  const auto it = merge_ranks_.find(merge_key(left, right));
  if (it == merge_ranks_.end()) return std::nullopt;
  return it->second;
}

}  // namespace exo::inference
