// Pre-tokenizer splits, each expectation worked out from the rule set's regular expression.
#include "inference/pre_tokenizer.h"

#include <gtest/gtest.h>

namespace exo::inference {
namespace {

using Words = std::vector<std::string>;

TEST(PreTokenizerGpt2, LettersNumbersAndPunctuationWithOptionalLeadingSpace) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "héllo wörld"), (Words{"héllo", " wörld"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "123abc 45"), (Words{"123", "abc", " 45"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "3.14"), (Words{"3", ".", "14"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "!!!? !!"), (Words{"!!!?", " !!"}));
  EXPECT_TRUE(pre_tokenize(PreTokenizerKind::GPT2, "").empty());
}

TEST(PreTokenizerGpt2, ContractionsAreCaseSensitive) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "I'm here"), (Words{"I", "'m", " here"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "don't we'll"), (Words{"don", "'t", " we", "'ll"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "DON'T"), (Words{"DON", "'", "T"}));
}

TEST(PreTokenizerGpt2, WhitespaceRunsLeaveOneSpaceForTheNextWord) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "a  b"), (Words{"a", " ", " b"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "a   "), (Words{"a", "   "}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "x\n\ny"), (Words{"x", "\n", "\n", "y"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::GPT2, "\t\tHello"), (Words{"\t", "\t", "Hello"}));
}

TEST(PreTokenizerLlama3, LetterRunsTakeOneLeadingNonLetter) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "(normal)"), (Words{"(normal", ")"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "\tword"), (Words{"\tword"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, " (x"), (Words{" (", "x"}));
}

TEST(PreTokenizerLlama3, ContractionsIgnoreCase) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "I'M here"), (Words{"I", "'M", " here"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "WE'LL"), (Words{"WE", "'LL"}));
}

TEST(PreTokenizerLlama3, NumbersGoInGroupsOfThree) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "12345"), (Words{"123", "45"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "1234567"), (Words{"123", "456", "7"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "a 12"), (Words{"a", " ", "12"}));
}

TEST(PreTokenizerLlama3, LineBreaksAndPunctuation) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "Hello\n\nworld"), (Words{"Hello", "\n\n", "world"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "a  \n  b"), (Words{"a", "  \n", " ", " b"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "!!\n\nx"), (Words{"!!\n\n", "x"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::LLAMA3, "a   "), (Words{"a", "   "}));
}

TEST(PreTokenizerQwen2, DigitsStandAlone) {
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::QWEN2, "12345"), (Words{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(pre_tokenize(PreTokenizerKind::QWEN2, "(normal)"), (Words{"(normal", ")"}));
}

TEST(PreTokenizer, InvalidUtf8BecomesReplacementCharactersAndWordsConcatenateToTheInput) {
  const auto words = pre_tokenize(PreTokenizerKind::LLAMA3,
                                  "ab\xFF"
                                  "cd");
  std::string joined;
  for (const auto& w : words) joined += w;
  EXPECT_EQ(joined,
            "ab\xEF\xBF\xBD"
            "cd");
  const std::string text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～  \n\t x";
  for (const auto kind : {PreTokenizerKind::GPT2, PreTokenizerKind::LLAMA3, PreTokenizerKind::QWEN2}) {
    std::string concatenated;
    for (const auto& w : pre_tokenize(kind, text)) {
      EXPECT_FALSE(w.empty());
      concatenated += w;
    }
    EXPECT_EQ(concatenated, text) << pre_tokenizer_name(kind);
  }
}

}  // namespace
}  // namespace exo::inference
