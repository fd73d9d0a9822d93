// Unicode support for the tokenizers: strict UTF-8 decoding/encoding and a compact general-category
// lookup (letters, numbers, punctuation, ...) plus the White_Space property.
//
// Contract: stateless functions over immutable tables, safe from any thread. Decoding is strict
// (RFC 3629): overlong forms, surrogates, code points above U+10FFFF, stray continuation bytes and
// truncated sequences are invalid; the lenient helpers replace each invalid byte with U+FFFD.
// Categories come from a table generated from the Unicode Character Database (see unicode_tables.h
// for the version); unassigned code points have category UNASSIGNED.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace exo::inference {

enum class UnicodeCategory : std::uint8_t {
  UNASSIGNED = 0,   // Cn
  LETTER = 1,       // Lu Ll Lt Lm Lo      (regex \p{L})
  NUMBER = 2,       // Nd Nl No            (regex \p{N})
  PUNCTUATION = 3,  // Pc Pd Ps Pe Pi Pf Po (regex \p{P})
  SYMBOL = 4,       // Sm Sc Sk So         (regex \p{S})
  MARK = 5,         // Mn Mc Me            (regex \p{M})
  SEPARATOR = 6,    // Zs Zl Zp            (regex \p{Z})
  OTHER = 7,        // Cc Cf Cs Co
};

inline constexpr char32_t replacement_character = 0xFFFD;
inline constexpr char32_t max_code_point = 0x10FFFF;

UnicodeCategory unicode_category(char32_t code_point) noexcept;
// The White_Space property (what regex \s matches).
bool is_unicode_whitespace(char32_t code_point) noexcept;
inline bool is_letter(char32_t cp) noexcept {
  return unicode_category(cp) == UnicodeCategory::LETTER;
}
inline bool is_number(char32_t cp) noexcept {
  return unicode_category(cp) == UnicodeCategory::NUMBER;
}
std::string_view unicode_database_version() noexcept;

// Length of the sequence announced by a lead byte: 1 for ASCII, 2..4 for valid lead bytes, 0 for a
// byte that cannot start a sequence (continuation bytes, 0xC0, 0xC1, 0xF5..0xFF).
std::size_t utf8_sequence_length(std::uint8_t lead) noexcept;

struct Utf8Decoded {
  char32_t code_point;  // replacement_character when !valid
  std::size_t length;   // bytes consumed: the sequence length, or 1 for an invalid byte
  bool valid;
};
// Decodes the sequence starting at text[offset] (offset < text.size()).
Utf8Decoded decode_utf8_at(std::string_view text, std::size_t offset) noexcept;
// Whole-string decode, each invalid byte becoming U+FFFD.
std::u32string decode_utf8_lenient(std::string_view text);
bool is_valid_utf8(std::string_view text) noexcept;

void append_utf8(std::string& out, char32_t code_point);
std::string encode_utf8(char32_t code_point);
std::string encode_utf8(std::u32string_view code_points);

// Number of bytes at the end of `text` that form the start of a valid but unfinished sequence
// (0..3). Such bytes must be held back by a streaming decoder until more bytes arrive.
std::size_t utf8_incomplete_suffix_length(std::string_view text) noexcept;

}  // namespace exo::inference
