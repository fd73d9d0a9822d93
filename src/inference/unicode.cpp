#include "inference/unicode.h"

#include <algorithm>

#include "inference/unicode_tables.h"

namespace exo::inference {

UnicodeCategory unicode_category(char32_t code_point) noexcept {
  if (code_point > max_code_point) return UnicodeCategory::UNASSIGNED;
  const std::uint32_t* begin = unicode_data::category_runs;
  const std::uint32_t* end = begin + unicode_data::category_run_count;
  // Last run whose first code point is <= code_point. Runs are sorted and the first starts at 0.
  const std::uint32_t key = (static_cast<std::uint32_t>(code_point) << 3) | 7u;
  const std::uint32_t* run = std::upper_bound(begin, end, key) - 1;
  return static_cast<UnicodeCategory>(*run & 7u);
}

bool is_unicode_whitespace(char32_t cp) noexcept {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::string_view unicode_database_version() noexcept {
  return unicode_data::unicode_version;
}

std::size_t utf8_sequence_length(std::uint8_t lead) noexcept {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte, or overlong 2-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

namespace {

bool is_continuation(std::uint8_t byte) {
  return (byte & 0xC0) == 0x80;
}

// Allowed range of the second byte for lead bytes with restrictions (no overlongs, no surrogates,
// nothing above U+10FFFF).
bool second_byte_allowed(std::uint8_t lead, std::uint8_t second) {
  switch (lead) {
    case 0xE0:
      return second >= 0xA0 && second <= 0xBF;
    case 0xED:
      return second >= 0x80 && second <= 0x9F;
    case 0xF0:
      return second >= 0x90 && second <= 0xBF;
    case 0xF4:
      return second >= 0x80 && second <= 0x8F;
    default:
      return is_continuation(second);
  }
}

}  // namespace

Utf8Decoded decode_utf8_at(std::string_view text, std::size_t offset) noexcept {
  const Utf8Decoded invalid{replacement_character, 1, false};
  const auto lead = static_cast<std::uint8_t>(text[offset]);
  const std::size_t length = utf8_sequence_length(lead);
  if (length == 0 || length > text.size() - offset) return invalid;
  if (length == 1) return {lead, 1, true};
  const auto second = static_cast<std::uint8_t>(text[offset + 1]);
  if (!second_byte_allowed(lead, second)) return invalid;
  char32_t cp = lead & (0x7Fu >> length);
  for (std::size_t i = 1; i < length; ++i) {
    const auto byte = static_cast<std::uint8_t>(text[offset + i]);
    if (!is_continuation(byte)) return invalid;
    cp = (cp << 6) | (byte & 0x3Fu);
  }
  return {cp, length, true};
}

std::u32string decode_utf8_lenient(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t offset = 0; offset < text.size();) {
    const Utf8Decoded decoded = decode_utf8_at(text, offset);
    out.push_back(decoded.code_point);
    offset += decoded.length;
  }
  return out;
}

bool is_valid_utf8(std::string_view text) noexcept {
  for (std::size_t offset = 0; offset < text.size();) {
    const Utf8Decoded decoded = decode_utf8_at(text, offset);
    if (!decoded.valid) return false;
    offset += decoded.length;
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp > max_code_point || (cp >= 0xD800 && cp <= 0xDFFF)) cp = replacement_character;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(char32_t code_point) {
  std::string out;
  append_utf8(out, code_point);
  return out;
}

std::string encode_utf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (const char32_t cp : code_points) append_utf8(out, cp);
  return out;
}

std::size_t utf8_incomplete_suffix_length(std::string_view text) noexcept {
  // A sequence is at most 4 bytes: look at the last 3 bytes for a lead byte whose sequence is cut.
  const std::size_t look = std::min<std::size_t>(3, text.size());
  for (std::size_t back = 1; back <= look; ++back) {
    const std::size_t start = text.size() - back;
    const auto byte = static_cast<std::uint8_t>(text[start]);
    if (is_continuation(byte)) continue;
    const std::size_t length = utf8_sequence_length(byte);
    if (length <= back) return 0;  // complete (or invalid) sequence: nothing to hold back
    // Hold back only if what is there so far can still become a valid sequence.
    if (back >= 2 && !second_byte_allowed(byte, static_cast<std::uint8_t>(text[start + 1]))) return 0;
    return back;
  }
  return 0;
}

}  // namespace exo::inference
