// The byte <-> character mapping of byte-level BPE vocabularies (GPT-2 and its descendants).
//
// Contract: stateless, thread-safe. Each of the 256 byte values maps to one printable code point:
// bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves, the other 68 bytes to U+0100 + n in
// increasing byte order (so the space 0x20 becomes U+0120 'Ġ'). A token's text is the UTF-8 of the
// mapped characters of its bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exo::inference {

char32_t byte_to_byte_level_char(std::uint8_t byte) noexcept;
std::optional<std::uint8_t> byte_level_char_to_byte(char32_t code_point) noexcept;

// Raw bytes -> byte-level text (always valid UTF-8).
std::string byte_level_encode(std::string_view bytes);
// Byte-level text -> raw bytes. Characters outside the mapping are copied as their UTF-8.
std::string byte_level_decode(std::string_view text);

}  // namespace exo::inference
