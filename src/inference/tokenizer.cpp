#include "inference/tokenizer.h"

#include <list>

#include <fmt/format.h>

#include "inference/byte_level.h"
#include "inference/gguf_file.h"
#include "inference/piece_merger.h"
#include "inference/pre_tokenizer.h"
#include "inference/unicode.h"

namespace exo::inference {

namespace {

constexpr std::string_view spm_space = "\xE2\x96\x81";      // U+2581 LOWER ONE EIGHTH BLOCK "▁"
constexpr std::string_view unknown_piece = "\xEF\xBF\xBD";  // U+FFFD, for UNKNOWN tokens

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t offset = 0;;) {
    const std::size_t hit = text.find(from, offset);
    if (hit == std::string_view::npos) {
      out.append(text.substr(offset));
      return out;
    }
    out.append(text.substr(offset, hit - offset));
    out.append(to);
    offset = hit + from.size();
  }
}

// Parses "<0xXX>" (the text of an SPM byte token).
std::optional<std::uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int high = hex(text[3]);
  const int low = hex(text[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<std::uint8_t>(high * 16 + low);
}

bool is_special_type(TokenType type) {
  return type == TokenType::CONTROL || type == TokenType::USER_DEFINED || type == TokenType::UNKNOWN ||
         type == TokenType::UNUSED;
}

}  // namespace

Tokenizer::Tokenizer(Vocabulary vocabulary) : vocabulary_(std::move(vocabulary)) {}

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  return Tokenizer(Vocabulary::from_gguf(file));
}

std::vector<Tokenizer::Fragment> Tokenizer::split_specials(std::string_view text, bool parse_special) const {
  std::list<Fragment> fragments;
  if (!text.empty()) fragments.push_back({text, -1});
  for (const TokenId id : vocabulary_.special_candidates()) {
    const TokenType type = vocabulary_.type(id);
    if (!parse_special && type != TokenType::USER_DEFINED) continue;
    const std::string& special = vocabulary_.text(id);
    for (auto it = fragments.begin(); it != fragments.end();) {
      const std::size_t hit = it->special >= 0 ? std::string_view::npos : it->text.find(special);
      if (hit == std::string_view::npos) {
        ++it;
        continue;
      }
      // Replace the fragment by [before][special][after]; `after` is searched again next.
      const std::string_view before = it->text.substr(0, hit);
      const std::string_view after = it->text.substr(hit + special.size());
      const auto next = fragments.erase(it);
      if (!before.empty()) fragments.insert(next, Fragment{before, -1});
      fragments.insert(next, Fragment{{}, id});
      it = after.empty() ? next : fragments.insert(next, Fragment{after, -1});
    }
  }
  return {fragments.begin(), fragments.end()};
}

TokenId Tokenizer::byte_fallback(std::uint8_t byte) const {
  const TokenId id = vocabulary_.byte_token(byte);
  if (id >= 0) return id;
  if (vocabulary_.unknown()) return *vocabulary_.unknown();
  throw TokenizerError(
      fmt::format("byte 0x{:02X} has no token and the vocabulary has no unknown token", byte));
}

void Tokenizer::encode_spm_fragment(std::string_view text, bool add_prefix, std::vector<TokenId>& out) const {
  const std::string escaped =
      replace_all(add_prefix ? " " + std::string(text) : std::string(text), " ", spm_space);
  std::string pair;
  const auto pieces =
      merge_pieces(escaped, [&](std::string_view left, std::string_view right) -> std::optional<double> {
        pair.assign(left).append(right);
        const auto id = vocabulary_.find(pair);
        if (!id) return std::nullopt;
        return -static_cast<double>(vocabulary_.score(*id));  // highest score merges first
      });
  for (const std::string_view piece : pieces) {
    if (const auto id = vocabulary_.find(piece)) {
      out.push_back(*id);
      continue;
    }
    for (const char byte : piece) out.push_back(byte_fallback(static_cast<std::uint8_t>(byte)));
  }
}

void Tokenizer::encode_bpe_word(const std::string& word, std::vector<TokenId>& out) const {
  if (vocabulary_.ignore_merges()) {
    if (const auto id = vocabulary_.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  const auto pieces =
      merge_pieces(word, [&](std::string_view left, std::string_view right) -> std::optional<double> {
        const auto rank = vocabulary_.merge_rank(left, right);
        if (!rank) return std::nullopt;
        return static_cast<double>(*rank);
      });
  for (const std::string_view piece : pieces) {
    if (const auto id = vocabulary_.find(piece)) {
      out.push_back(*id);
      continue;
    }
    // Not a token: fall back to one token per original byte (each byte-level character is one byte).
    for (const char byte : byte_level_decode(piece))
      out.push_back(byte_fallback(static_cast<std::uint8_t>(byte)));
  }
}

void Tokenizer::encode_bpe_fragment(std::string_view text, std::vector<TokenId>& out) const {
  for (const std::string& word : pre_tokenize(vocabulary_.pre_tokenizer(), text)) {
    encode_bpe_word(byte_level_encode(word), out);
  }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  if (add_special && vocabulary_.add_bos() && vocabulary_.bos()) out.push_back(*vocabulary_.bos());
  bool after_special = true;  // the start of the text counts as "after a special token"
  for (const Fragment& fragment : split_specials(text, parse_special)) {
    if (fragment.special >= 0) {
      out.push_back(fragment.special);
      after_special = true;
      continue;
    }
    if (vocabulary_.model() == TokenizerModel::SPM) {
      encode_spm_fragment(fragment.text, vocabulary_.add_space_prefix() && after_special, out);
    } else {
      encode_bpe_fragment(fragment.text, out);
    }
    after_special = false;
  }
  if (add_special && vocabulary_.add_eos() && vocabulary_.eos()) out.push_back(*vocabulary_.eos());
  return out;
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (!vocabulary_.contains(id)) {
    throw TokenizerError(
        fmt::format("token id {} is out of range (vocabulary size {})", id, vocabulary_.size()));
  }
  const std::string& text = vocabulary_.text(id);
  switch (vocabulary_.type(id)) {
    case TokenType::CONTROL:
    case TokenType::UNUSED:
      return render_special ? text : std::string();
    case TokenType::UNKNOWN:
      return render_special ? text : std::string(unknown_piece);
    case TokenType::USER_DEFINED:
      return text;
    case TokenType::BYTE:
      if (const auto byte = parse_byte_token(text)) return std::string(1, static_cast<char>(*byte));
      return text;
    case TokenType::NORMAL:
    case TokenType::UNDEFINED:
      break;
  }
  if (vocabulary_.model() == TokenizerModel::SPM) return replace_all(text, spm_space, " ");
  return byte_level_decode(text);
}

void Tokenizer::append_piece(std::string& out, TokenId id, DecodeState& state,
                             const DecodeOptions& options) const {
  std::string piece = token_to_piece(id, options.render_special);
  const TokenType type = vocabulary_.type(id);
  if (is_special_type(type) && type != TokenType::UNKNOWN) {
    out += piece;
    state.at_text_start = true;
    return;
  }
  if (state.at_text_start && options.strip_space_prefix && vocabulary_.add_space_prefix() && !piece.empty() &&
      piece.front() == ' ') {
    piece.erase(0, 1);
  }
  state.at_text_start = false;
  out += piece;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  std::string out;
  DecodeState state;
  for (const TokenId id : ids) append_piece(out, id, state, options);
  return out;
}

}  // namespace exo::inference
