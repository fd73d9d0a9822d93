// Unicode categories, White_Space, strict UTF-8 handling and the byte-level BPE alphabet.
#include "inference/unicode.h"

#include <gtest/gtest.h>

#include "inference/byte_level.h"

namespace exo::inference {
namespace {

using C = UnicodeCategory;

TEST(UnicodeCategory, RepresentativeCodePoints) {
  struct Case {
    char32_t cp;
    UnicodeCategory category;
  };
  const Case cases[] = {
      {U'A', C::LETTER},       {U'z', C::LETTER},         {0x00E9, C::LETTER},       // é
      {0x03A9, C::LETTER},     {0x4E2D, C::LETTER},       {0x1780, C::LETTER},       // Ω 中 Khmer KA
      {0x02B0, C::LETTER},                                                           // modifier letter (Lm)
      {U'0', C::NUMBER},       {0x0663, C::NUMBER},       {0x00BD, C::NUMBER},       // Arabic-Indic 3, ½
      {0x216B, C::NUMBER},     {0x00B2, C::NUMBER},                                  // Roman numeral XII, ²
      {U'!', C::PUNCTUATION},  {U'(', C::PUNCTUATION},    {0x3002, C::PUNCTUATION},  // 。
      {U'+', C::SYMBOL},       {0x20AC, C::SYMBOL},       {0x1F999, C::SYMBOL},      // € 🦙
      {0x0301, C::MARK},       {0x17B6, C::MARK},  // combining acute, Khmer vowel
      {U' ', C::SEPARATOR},    {0x00A0, C::SEPARATOR},    {0x2028, C::SEPARATOR},    {U'\n', C::OTHER},
      {0x200D, C::OTHER},      {0xE000, C::OTHER},  // ZWJ (Cf), private use
      {0x0378, C::UNASSIGNED}, {0x10FFFF, C::UNASSIGNED}, {0x110000, C::UNASSIGNED}, {0, C::OTHER},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(unicode_category(c.cp), c.category) << "U+" << std::hex << static_cast<std::uint32_t>(c.cp);
  }
  EXPECT_TRUE(is_letter(0x00E9));
  EXPECT_TRUE(is_number(U'7'));
  EXPECT_FALSE(unicode_database_version().empty());
}

TEST(UnicodeCategory, LetterAndNumberCountsOverThePlanesAreThoseOfTheDatabase) {
  // Unicode 14.0 (as counted by Python's unicodedata): 131,756 letters (L*) and 1,791 numbers (N*).
  int letters = 0;
  int numbers = 0;
  for (char32_t cp = 0; cp <= max_code_point; ++cp) {
    const auto category = unicode_category(cp);
    letters += category == C::LETTER ? 1 : 0;
    numbers += category == C::NUMBER ? 1 : 0;
  }
  if (unicode_database_version() == "14.0.0") {
    EXPECT_EQ(letters, 131756);
    EXPECT_EQ(numbers, 1791);
  } else {
    EXPECT_GT(letters, 130000);
    EXPECT_GT(numbers, 1700);
  }
}

TEST(UnicodeWhitespace, IsTheWhiteSpaceProperty) {
  for (const char32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au,
                            0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(is_unicode_whitespace(cp)) << std::hex << static_cast<std::uint32_t>(cp);
  }
  for (const char32_t cp :
       {U'a', U'0', U'_', char32_t{0x200B}, char32_t{0x180E}, char32_t{0xFEFF}, char32_t{0}}) {
    EXPECT_FALSE(is_unicode_whitespace(cp)) << std::hex << static_cast<std::uint32_t>(cp);
  }
}

TEST(Utf8, StrictDecoding) {
  EXPECT_TRUE(is_valid_utf8("héllo 中文 🦙"));
  EXPECT_EQ(decode_utf8_at("é", 0).code_point, 0xE9u);
  EXPECT_EQ(decode_utf8_at("🦙", 0).length, 4u);
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation
  EXPECT_FALSE(is_valid_utf8("\xE2(\xAC"));         // bad continuation
  EXPECT_EQ(decode_utf8_lenient("a\xFF"
                                "b\xE2\x82"),
            (std::u32string{U'a', 0xFFFD, U'b', 0xFFFD, 0xFFFD}));
}

TEST(Utf8, EncodingRoundTripsAndReplacesInvalidCodePoints) {
  for (const char32_t cp : {char32_t{0}, char32_t{0x7F}, char32_t{0x80}, char32_t{0x7FF}, char32_t{0x800},
                            char32_t{0xFFFF}, char32_t{0x10000}, char32_t{0x10FFFF}}) {
    const std::string encoded = encode_utf8(cp);
    const Utf8Decoded decoded = decode_utf8_at(encoded, 0);
    EXPECT_TRUE(decoded.valid);
    EXPECT_EQ(decoded.code_point, cp);
    EXPECT_EQ(decoded.length, encoded.size());
  }
  EXPECT_EQ(encode_utf8(char32_t{0xD800}), "\xEF\xBF\xBD");
  EXPECT_EQ(encode_utf8(char32_t{0x110000}), "\xEF\xBF\xBD");
  EXPECT_EQ(encode_utf8(U"a€🦙"), "a€🦙");
}

TEST(Utf8, IncompleteSuffixIsOnlyAPrefixThatCanStillBecomeValid) {
  EXPECT_EQ(utf8_incomplete_suffix_length(""), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("abc\xC3"), 1u);
  EXPECT_EQ(utf8_incomplete_suffix_length("abc\xE2\x82"), 2u);
  EXPECT_EQ(utf8_incomplete_suffix_length("abc\xE2\x82\xAC"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("\xF0\x9F\xA6"), 3u);
  EXPECT_EQ(utf8_incomplete_suffix_length("\xF0\x9F\xA6\x99"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("\xED\xA0"), 0u);  // would be a surrogate
  EXPECT_EQ(utf8_incomplete_suffix_length("\xFF"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("\x80\x80\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix_length("\xE2"
                                          "a"),
            0u);
}

TEST(ByteLevel, AlphabetMapsEveryByteToOnePrintableCharacter) {
  EXPECT_EQ(byte_to_byte_level_char(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(byte_to_byte_level_char('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(byte_to_byte_level_char('A'), U'A');
  EXPECT_EQ(byte_to_byte_level_char(0xAD), 0x143u);
  EXPECT_EQ(byte_to_byte_level_char(0xFF), 0xFFu);
  for (unsigned byte = 0; byte < 256; ++byte) {
    const char32_t cp = byte_to_byte_level_char(static_cast<std::uint8_t>(byte));
    EXPECT_FALSE(is_unicode_whitespace(cp));
    EXPECT_EQ(byte_level_char_to_byte(cp), byte);
  }
  EXPECT_EQ(byte_level_char_to_byte(0x144), std::nullopt);
  const std::string all_bytes = [] {
    std::string s;
    for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
    return s;
  }();
  EXPECT_TRUE(is_valid_utf8(byte_level_encode(all_bytes)));
  EXPECT_EQ(byte_level_decode(byte_level_encode(all_bytes)), all_bytes);
  EXPECT_EQ(byte_level_encode("Hi there"), "HiĠthere");
}

}  // namespace
}  // namespace exo::inference
