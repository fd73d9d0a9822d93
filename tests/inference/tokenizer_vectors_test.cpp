// The upstream tokenizer test vectors (<vocab>.gguf.inp / .out): encode(text, add_special=false,
// parse_special=false) must give exactly the expected ids for every string.
#include <gtest/gtest.h>

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include "inference/gguf_file.h"
#include "inference/tokenizer.h"
#include "test_support.h"

namespace exo::inference {
namespace {

constexpr std::string_view separator = "\n__ggml_vocab_test__\n";

std::vector<std::string> read_test_strings(const std::string& text) {
  std::vector<std::string> strings;
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t hit = text.find(separator, offset);
    if (hit == std::string::npos) {
      strings.push_back(text.substr(offset));
      break;
    }
    strings.push_back(text.substr(offset, hit - offset));
    offset = hit + separator.size();
  }
  return strings;
}

std::vector<std::vector<TokenId>> read_expected_ids(const std::string& text) {
  std::vector<std::vector<TokenId>> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream numbers(line);
    std::vector<TokenId> ids;
    TokenId id = 0;
    while (numbers >> id) ids.push_back(id);
    lines.push_back(ids);
  }
  return lines;
}

std::string printable(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  return out;
}

class TokenizerVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectors, EncodeMatchesEveryExpectedIdSequence) {
  const auto vocab_path = test::model_path(GetParam());
  EXO_SKIP_IF_MISSING(vocab_path);
  const auto strings = read_test_strings(test::read_text_file(vocab_path.string() + ".inp"));
  const auto expected = read_expected_ids(test::read_text_file(vocab_path.string() + ".out"));
  ASSERT_EQ(strings.size(), expected.size()) << "the .inp and .out files disagree on the number of tests";
  ASSERT_GT(strings.size(), 30u);

  const GgufFile file = GgufFile::open(vocab_path.string());
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  int failures = 0;
  for (std::size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tokenizer.encode(strings[i], /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, expected[i]) << "test string " << i << ": \"" << printable(strings[i]) << "\"";
    if (ids != expected[i]) ++failures;
  }
  EXPECT_EQ(failures, 0) << failures << " of " << strings.size() << " strings mis-tokenized";
}

INSTANTIATE_TEST_SUITE_P(SharedModels, TokenizerVectors,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                           "ggml-vocab-gpt-2.gguf", "vocab-llama3-bpe.gguf"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name;
                           for (const char c : param_info.param)
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace exo::inference
