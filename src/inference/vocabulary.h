// Vocabulary: the tokenizer description stored in a GGUF file's "tokenizer.ggml.*" metadata.
//
// Contract: an immutable value (copyable, movable) that owns copies of everything it needs, so it
// outlives the GgufFile it was read from; safe to read from any number of threads. from_gguf()
// validates the metadata (supported model, array lengths, merge syntax) and throws TokenizerError
// naming the key or entry at fault. Token ids are dense: 0 <= id < size(). Special ids that the file
// gives but that are out of range (e.g. 0xFFFFFFFF meaning "none") are treated as absent.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inference/pre_tokenizer.h"

namespace exo::inference {

class GgufFile;

using TokenId = std::int32_t;

class TokenizerError : public std::runtime_error {
 public:
  explicit TokenizerError(const std::string& message) : std::runtime_error(message) {}
};

// tokenizer.ggml.token_type values.
enum class TokenType : std::int32_t {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
};

enum class TokenizerModel {
  SPM,  // tokenizer.ggml.model = "llama": SentencePiece-style BPE driven by token scores
  BPE,  // tokenizer.ggml.model = "gpt2":  byte-level BPE driven by a ranked merge list
};

class Vocabulary {
 public:
  struct Token {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::NORMAL;
  };

  // Everything a vocabulary consists of; from_gguf() fills it from metadata, tests may build one.
  struct Description {
    TokenizerModel model = TokenizerModel::SPM;
    std::string pre_name = "default";  // tokenizer.ggml.pre as written in the file
    std::vector<Token> tokens;
    std::vector<std::string> merges;  // "left right", rank = index (BPE only)
    std::optional<TokenId> bos, eos, unknown, padding, separator;
    std::optional<bool> add_bos, add_eos, add_space_prefix;  // nullopt: the model's default
  };

  static Vocabulary from_gguf(const GgufFile& file);
  explicit Vocabulary(Description description);

  TokenizerModel model() const noexcept { return model_; }
  PreTokenizerKind pre_tokenizer() const noexcept { return pre_tokenizer_; }
  const std::string& pre_name() const noexcept { return pre_name_; }
  std::size_t size() const noexcept { return tokens_.size(); }
  bool contains(TokenId id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < tokens_.size();
  }
  // Precondition for these three: contains(id) (std::out_of_range otherwise).
  const std::string& text(TokenId id) const { return tokens_.at(static_cast<std::size_t>(id)).text; }
  float score(TokenId id) const { return tokens_.at(static_cast<std::size_t>(id)).score; }
  TokenType type(TokenId id) const { return tokens_.at(static_cast<std::size_t>(id)).type; }

  // Exact lookup of a token's text (any type).
  std::optional<TokenId> find(std::string_view text) const;
  // Rank of the merge "left right" (lower merges first); BPE only.
  std::optional<std::uint32_t> merge_rank(std::string_view left, std::string_view right) const;
  // SPM: the <0xXX> token of a byte; BPE: the token of the byte's byte-level character. -1 if none.
  TokenId byte_token(std::uint8_t byte) const noexcept { return byte_tokens_[byte]; }

  std::optional<TokenId> bos() const noexcept { return bos_; }
  std::optional<TokenId> eos() const noexcept { return eos_; }
  std::optional<TokenId> unknown() const noexcept { return unknown_; }
  std::optional<TokenId> padding() const noexcept { return padding_; }
  std::optional<TokenId> separator() const noexcept { return separator_; }
  bool add_bos() const noexcept { return add_bos_; }
  bool add_eos() const noexcept { return add_eos_; }
  // SPM: prefix the text with a space ("▁") before encoding (SentencePiece's dummy prefix).
  bool add_space_prefix() const noexcept { return add_space_prefix_; }
  // BPE: a pre-tokenized word that is itself a token is emitted without merging (Llama 3).
  bool ignore_merges() const noexcept { return ignore_merges_; }

  // Tokens that encode() can recognise as specials: USER_DEFINED always; CONTROL and UNKNOWN only
  // when parsing specials. Sorted longest text first (then by id).
  const std::vector<TokenId>& special_candidates() const noexcept { return special_candidates_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  using StringMap = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

  TokenizerModel model_;
  PreTokenizerKind pre_tokenizer_ = PreTokenizerKind::GPT2;
  std::string pre_name_;
  std::vector<Token> tokens_;
  StringMap token_index_;
  StringMap merge_ranks_;  // key: left + '\xff' + right (0xFF never occurs in UTF-8)
  std::array<TokenId, 256> byte_tokens_{};
  std::optional<TokenId> bos_, eos_, unknown_, padding_, separator_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool ignore_merges_ = false;
  std::vector<TokenId> special_candidates_;
};

}  // namespace exo::inference
