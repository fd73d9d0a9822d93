#include "inference/pre_tokenizer.h"

#include <cstdint>

#include "inference/unicode.h"

namespace exo::inference {

namespace {

// Character classes the rules need, computed once per code point.
struct CharClass {
  bool letter = false;
  bool number = false;
  bool space = false;       // \s
  bool line_break = false;  // \r or \n
  // [^\s\p{L}\p{N}]
  bool other() const { return !letter && !number && !space; }
};

class Splitter {
 public:
  Splitter(PreTokenizerKind kind, std::string_view text) : kind_(kind), text_(decode_utf8_lenient(text)) {
    classes_.reserve(text_.size());
    for (const char32_t cp : text_) {
      CharClass c;
      const UnicodeCategory category = unicode_category(cp);
      c.letter = category == UnicodeCategory::LETTER;
      c.number = category == UnicodeCategory::NUMBER;
      c.space = is_unicode_whitespace(cp);
      c.line_break = cp == U'\r' || cp == U'\n';
      classes_.push_back(c);
    }
  }

  std::vector<std::string> split() {
    std::vector<std::string> words;
    std::size_t position = 0;
    while (position < text_.size()) {
      std::size_t length = kind_ == PreTokenizerKind::GPT2 ? match_gpt2(position) : match_llama3(position);
      if (length == 0) length = 1;  // no rule matched: the character stands alone
      words.push_back(encode_utf8(std::u32string_view(text_).substr(position, length)));
      position += length;
    }
    return words;
  }

 private:
  bool in_range(std::size_t i) const { return i < text_.size(); }
  char32_t at(std::size_t i) const { return in_range(i) ? text_[i] : U'\0'; }
  CharClass cls(std::size_t i) const { return in_range(i) ? classes_[i] : CharClass{}; }

  // Length of the run starting at i whose characters satisfy `predicate`.
  template <typename Predicate>
  std::size_t run(std::size_t i, Predicate predicate) const {
    std::size_t end = i;
    while (in_range(end) && predicate(classes_[end])) ++end;
    return end - i;
  }

  static char32_t ascii_lower(char32_t c) { return (c >= U'A' && c <= U'Z') ? c + 32 : c; }

  // 's 't 're 've 'm 'll 'd (optionally case-insensitive); 0 when none matches.
  std::size_t contraction(std::size_t i, bool ignore_case) const {
    if (at(i) != U'\'') return 0;
    auto fold = [&](char32_t c) { return ignore_case ? ascii_lower(c) : c; };
    const char32_t first = fold(at(i + 1));
    const char32_t second = fold(at(i + 2));
    if (!in_range(i + 1)) return 0;
    if (first == U's' || first == U't' || first == U'm' || first == U'd') return 2;
    if (!in_range(i + 2)) return 0;
    if ((first == U'r' && second == U'e') || (first == U'v' && second == U'e') ||
        (first == U'l' && second == U'l')) {
      return 3;
    }
    return 0;
  }

  // \s+(?!\S) then \s+ : a whitespace run, leaving its last character to the next word when a
  // non-space follows and the run is longer than one.
  std::size_t whitespace(std::size_t i) const {
    const std::size_t n = run(i, [](const CharClass& c) { return c.space; });
    if (n == 0) return 0;
    if (!in_range(i + n) || n == 1) return n;
    return n - 1;
  }

  std::size_t match_gpt2(std::size_t i) const {
    if (const std::size_t n = contraction(i, false)) return n;
    const std::size_t prefix = at(i) == U' ' ? 1 : 0;  // the optional leading space of three rules
    const CharClass next = cls(i + prefix);
    if (in_range(i + prefix)) {
      if (next.letter) return prefix + run(i + prefix, [](const CharClass& c) { return c.letter; });
      if (next.number) return prefix + run(i + prefix, [](const CharClass& c) { return c.number; });
      if (next.other()) return prefix + run(i + prefix, [](const CharClass& c) { return c.other(); });
    }
    return whitespace(i);
  }

  std::size_t match_llama3(std::size_t i) const {
    if (const std::size_t n = contraction(i, true)) return n;
    const CharClass here = cls(i);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (here.letter) return run(i, [](const CharClass& c) { return c.letter; });
    if (!here.line_break && !here.number && cls(i + 1).letter) {
      return 1 + run(i + 1, [](const CharClass& c) { return c.letter; });
    }
    // \p{N}{1,3} (LLAMA3) or \p{N} (QWEN2)
    if (here.number) {
      const std::size_t limit = kind_ == PreTokenizerKind::QWEN2 ? 1 : 3;
      const std::size_t n = run(i, [](const CharClass& c) { return c.number; });
      return n < limit ? n : limit;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    const std::size_t prefix = at(i) == U' ' && in_range(i + 1) && cls(i + 1).other() ? 1 : 0;
    if (cls(i + prefix).other()) {
      std::size_t n = prefix + run(i + prefix, [](const CharClass& c) { return c.other(); });
      n += run(i + n, [](const CharClass& c) { return c.line_break; });
      return n;
    }
    // \s*[\r\n]+ : a whitespace run up to and including its last line break.
    const std::size_t spaces = run(i, [](const CharClass& c) { return c.space; });
    for (std::size_t k = spaces; k > 0; --k) {
      if (classes_[i + k - 1].line_break) return k;
    }
    return whitespace(i);
  }

  PreTokenizerKind kind_;
  std::u32string text_;
  std::vector<CharClass> classes_;
};

}  // namespace

std::string_view pre_tokenizer_name(PreTokenizerKind kind) noexcept {
  switch (kind) {
    case PreTokenizerKind::GPT2:
      return "gpt-2";
    case PreTokenizerKind::LLAMA3:
      return "llama3";
    case PreTokenizerKind::QWEN2:
      return "qwen2";
  }
  return "unknown";
}

std::vector<std::string> pre_tokenize(PreTokenizerKind kind, std::string_view text) {
  return Splitter(kind, text).split();
}

}  // namespace exo::inference
