// Pre-tokenizers of byte-level BPE vocabularies: split text into the "words" that BPE merges work
// inside, following the regular expression each model family was trained with.
//
// Contract: stateless, thread-safe. Input is UTF-8; each invalid byte is first replaced by U+FFFD
// (so every output word is valid UTF-8). Concatenating the output words gives the (repaired) input.
// Each rule set implements the leftmost-first semantics of its regular expression exactly (with
// Unicode categories from unicode.h):
//   GPT2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   LLAMA3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//           \s*[\r\n]+|\s+(?!\S)|\s+
//   QWEN2:  as LLAMA3 but \p{N} (one digit per word) instead of \p{N}{1,3}
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace exo::inference {

enum class PreTokenizerKind { GPT2, LLAMA3, QWEN2 };

std::string_view pre_tokenizer_name(PreTokenizerKind kind) noexcept;

std::vector<std::string> pre_tokenize(PreTokenizerKind kind, std::string_view text);

}  // namespace exo::inference
