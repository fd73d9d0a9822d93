#include "inference/byte_level.h"

#include <array>

#include "inference/unicode.h"

namespace exo::inference {

namespace {

bool maps_to_itself(unsigned byte) {
  return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

constexpr char32_t mapped_limit = 0x100 + 68;  // every mapped character is below this

struct ByteLevelTables {
  std::array<char32_t, 256> to_char{};
  std::array<std::int16_t, mapped_limit> to_byte{};  // -1: not a mapped character
  ByteLevelTables() {
    to_byte.fill(-1);
    char32_t next_extra = 0x100;
    for (unsigned byte = 0; byte < 256; ++byte) {
      to_char[byte] = maps_to_itself(byte) ? byte : next_extra++;
      to_byte[to_char[byte]] = static_cast<std::int16_t>(byte);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables instance;
  return instance;
}

}  // namespace

char32_t byte_to_byte_level_char(std::uint8_t byte) noexcept {
  return tables().to_char[byte];
}

std::optional<std::uint8_t> byte_level_char_to_byte(char32_t cp) noexcept {
  if (cp >= mapped_limit || tables().to_byte[cp] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(tables().to_byte[cp]);
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) append_utf8(out, byte_to_byte_level_char(static_cast<std::uint8_t>(c)));
  return out;
}

std::string byte_level_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t offset = 0; offset < text.size();) {
    const Utf8Decoded decoded = decode_utf8_at(text, offset);
    const auto byte = decoded.valid ? byte_level_char_to_byte(decoded.code_point) : std::nullopt;
    if (byte) {
      out.push_back(static_cast<char>(*byte));
    } else {
      out.append(text.substr(offset, decoded.length));
    }
    offset += decoded.length;
  }
  return out;
}

}  // namespace exo::inference
