// Tokenizer: text <-> token ids for the vocabularies of vocabulary.h.
//
// Contract: immutable after construction; encode/decode are const and safe to call from many threads
// at once. Errors (an id out of range, a byte that the vocabulary cannot represent) throw
// TokenizerError.
//
// encode(text, add_special, parse_special):
//   * add_special: prepend BOS / append EOS when the vocabulary asks for them (add_bos / add_eos).
//   * parse_special: text equal to a CONTROL (or UNKNOWN) token's text becomes that token; otherwise
//     such text is tokenized as plain text. USER_DEFINED tokens are always matched (as in the
//     reference tokenizers). Longer special texts win over shorter ones.
//   * SPM ("llama"): each plain-text fragment that starts the text or follows a special token gets a
//     leading space when add_space_prefix is set; spaces become "▁" (U+2581); then the highest-scoring
//     adjacent pair that forms a vocabulary token is merged repeatedly (ties: leftmost). Pieces that
//     are not tokens fall back to <0xXX> byte tokens.
//   * BPE ("gpt2"): the pre-tokenizer splits each fragment into words; each word's bytes are mapped to
//     byte-level characters and merged by merge rank (lowest first, ties leftmost). With
//     ignore_merges (Llama 3) a word that is already a token is emitted as is.
// decode(ids, options) concatenates the tokens' pieces (raw bytes; may be invalid UTF-8 if the ids
// cut a character). For SPM vocabularies with add_space_prefix the leading space of the first text
// piece (at the start, or right after a special token) is removed, undoing encode's dummy prefix.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inference/vocabulary.h"

namespace exo::inference {

struct DecodeOptions {
  // Emit CONTROL / UNKNOWN / UNUSED tokens as their text instead of dropping them.
  bool render_special = false;
  // Remove the SPM dummy-prefix space (see above). Set to false when decoding a continuation of
  // earlier text (e.g. generated tokens after a prompt).
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  explicit Tokenizer(Vocabulary vocabulary);
  static Tokenizer from_gguf(const GgufFile& file);

  const Vocabulary& vocabulary() const noexcept { return vocabulary_; }

  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const;
  std::string decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;

  // The bytes one token stands for, without any prefix handling.
  std::string token_to_piece(TokenId id, bool render_special) const;

  // Incremental decoding state: `at_text_start` is true at the beginning and after a special token.
  struct DecodeState {
    bool at_text_start = true;
  };
  // Appends the piece of `id` to `out`, applying the dummy-prefix rule; decode() is a loop over this.
  void append_piece(std::string& out, TokenId id, DecodeState& state, const DecodeOptions& options) const;

  // True for the vocabulary's EOS id.
  bool is_end_of_generation(TokenId id) const noexcept {
    return vocabulary_.eos() && id == *vocabulary_.eos();
  }

 private:
  struct Fragment {
    std::string_view text;  // plain text (when special < 0)
    TokenId special = -1;
  };
  std::vector<Fragment> split_specials(std::string_view text, bool parse_special) const;
  void encode_spm_fragment(std::string_view text, bool add_prefix, std::vector<TokenId>& out) const;
  void encode_bpe_fragment(std::string_view text, std::vector<TokenId>& out) const;
  void encode_bpe_word(const std::string& byte_level_word, std::vector<TokenId>& out) const;
  TokenId byte_fallback(std::uint8_t byte) const;

  Vocabulary vocabulary_;
};

}  // namespace exo::inference
