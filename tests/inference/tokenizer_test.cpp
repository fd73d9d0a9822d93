// Tokenizer behaviour beyond the upstream vectors: special tokens, BOS/EOS, decoding and round trips,
// metadata validation, and the streaming detokenizer.
#include "inference/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "gguf_builder.h"
#include "inference/gguf_file.h"
#include "inference/streaming_detokenizer.h"
#include "inference/unicode.h"
#include "test_support.h"

namespace exo::inference {
namespace {

using ::testing::HasSubstr;
using Ids = std::vector<TokenId>;

constexpr std::string_view separator = "\n__ggml_vocab_test__\n";

std::vector<std::string> vector_strings(const std::filesystem::path& vocab) {
  const std::string text = test::read_text_file(vocab.string() + ".inp");
  std::vector<std::string> strings;
  for (std::size_t offset = 0; offset < text.size();) {
    const std::size_t hit = text.find(separator, offset);
    strings.push_back(text.substr(offset, hit == std::string::npos ? std::string::npos : hit - offset));
    if (hit == std::string::npos) break;
    offset = hit + separator.size();
  }
  return strings;
}

Tokenizer load(const std::filesystem::path& path) {
  return Tokenizer::from_gguf(GgufFile::open(path.string()));
}

// ---------------------------------------------------------------- SPM

TEST(SpmTokenizer, DummyPrefixBosAndSpecialParsing) {
  const auto path = test::model_path("ggml-vocab-llama-spm.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  const Vocabulary& vocab = tokenizer.vocabulary();
  EXPECT_EQ(vocab.model(), TokenizerModel::SPM);
  EXPECT_EQ(vocab.size(), 32000u);
  EXPECT_EQ(vocab.bos(), 1);
  EXPECT_EQ(vocab.eos(), 2);
  EXPECT_EQ(vocab.unknown(), 0);
  EXPECT_TRUE(vocab.add_bos());
  EXPECT_FALSE(vocab.add_eos());
  EXPECT_TRUE(vocab.add_space_prefix());
  EXPECT_EQ(vocab.type(1), TokenType::CONTROL);
  EXPECT_EQ(vocab.type(3), TokenType::BYTE);

  EXPECT_EQ(tokenizer.encode("Hello world", false, false), (Ids{15043, 3186}));
  EXPECT_EQ(tokenizer.encode("\n\n\n", false, false), (Ids{29871, 13, 13, 13}));
  EXPECT_EQ(tokenizer.encode("Hello world", true, false), (Ids{1, 15043, 3186}));
  EXPECT_TRUE(tokenizer.encode("", false, false).empty());
  EXPECT_EQ(tokenizer.encode("", true, false), (Ids{1}));
  // "<s>" is the BOS text: a special token only when parsing specials; a space prefix follows it.
  EXPECT_EQ(tokenizer.encode("<s>Hello", false, true), (Ids{1, 15043}));
  const Ids plain = tokenizer.encode("<s>Hello", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tokenizer.decode(plain), "<s>Hello");
}

TEST(SpmTokenizer, PiecesAndDecodeOptions) {
  const auto path = test::model_path("ggml-vocab-llama-spm.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  EXPECT_EQ(tokenizer.token_to_piece(15043, false), " Hello");
  EXPECT_EQ(tokenizer.token_to_piece(13, false), "\n");  // <0x0A>
  EXPECT_EQ(tokenizer.token_to_piece(1, false), "");
  EXPECT_EQ(tokenizer.token_to_piece(1, true), "<s>");
  EXPECT_EQ(tokenizer.decode(Ids{1, 15043, 3186, 2}), "Hello world");
  EXPECT_EQ(tokenizer.decode(Ids{1, 15043, 3186, 2}, {.render_special = true}), "<s>Hello world</s>");
  EXPECT_EQ(tokenizer.decode(Ids{15043, 3186}, {.strip_space_prefix = false}), " Hello world");
  try {
    tokenizer.decode(Ids{15043, 32000});
    FAIL() << "expected TokenizerError";
  } catch (const TokenizerError& error) {
    EXPECT_THAT(error.what(), HasSubstr("token id 32000 is out of range"));
  }
  EXPECT_THROW(tokenizer.token_to_piece(-1, false), TokenizerError);
}

TEST(SpmTokenizer, UserDefinedTokensAreAlwaysMatched) {
  const auto path = test::model_path("ggml-vocab-phi-3.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  const Vocabulary& vocab = tokenizer.vocabulary();
  ASSERT_EQ(vocab.type(2), TokenType::USER_DEFINED);  // "</s>" in this vocabulary
  const Ids expected{vocab.find("▁a").value(), 2, vocab.find("▁b").value()};
  EXPECT_EQ(tokenizer.encode("a</s>b", false, false), expected);
  // Control tokens stay plain text unless specials are parsed.
  const TokenId end = vocab.find("<|end|>").value();
  const Ids plain = tokenizer.encode("x<|end|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), end), 0);
  const Ids parsed = tokenizer.encode("x<|end|>", false, true);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed.back(), end);
}

TEST(SpmTokenizer, DecodeInvertsEncodeOnEveryVectorString) {
  for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"}) {
    const auto path = test::model_path(name);
    EXO_SKIP_IF_MISSING(path);
    const Tokenizer tokenizer = load(path);
    for (const std::string& text : vector_strings(path)) {
      EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false, false)), text) << name;
      EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, true, false)), text) << name << " with BOS";
    }
  }
}

TEST(SpmTokenizer, SmallModelVocabularyFallsBackToBytes) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  EXPECT_EQ(tokenizer.vocabulary().size(), 512u);
  // (This 512-token vocabulary has no "▁" token: a space not followed by a letter piece would come
  // out as the three bytes of "▁", exactly as in the reference tokenizers, so the text avoids that.)
  const std::string text = "Hello wonderful wörld!🦙";
  const Ids ids = tokenizer.encode(text, true, false);
  EXPECT_EQ(ids.front(), 1);
  for (const TokenId id : ids) EXPECT_LT(id, 512);
  // 🦙 is not a token: its four bytes come out as <0xF0> <0x9F> <0xA6> <0x99> (ids 3 + byte).
  const Ids llama{3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99};
  EXPECT_NE(std::search(ids.begin(), ids.end(), llama.begin(), llama.end()), ids.end());
  EXPECT_EQ(tokenizer.decode(ids), text);
}

TEST(SpmTokenizer, Stories260KTreatsOutOfRangeSpecialIdsAsAbsent) {
  const auto path = test::model_path("stories260K.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  EXPECT_FALSE(tokenizer.vocabulary().separator().has_value());
  EXPECT_FALSE(tokenizer.vocabulary().padding().has_value());
  EXPECT_EQ(tokenizer.vocabulary().bos(), 1);
  EXPECT_EQ(tokenizer.vocabulary().pre_name(), "default");
}

// ---------------------------------------------------------------- BPE

TEST(BpeTokenizer, Llama3SpecialsBosAndRoundTrips) {
  const auto path = test::model_path("vocab-llama3-bpe.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  const Vocabulary& vocab = tokenizer.vocabulary();
  EXPECT_EQ(vocab.model(), TokenizerModel::BPE);
  EXPECT_EQ(vocab.pre_tokenizer(), PreTokenizerKind::LLAMA3);
  EXPECT_TRUE(vocab.ignore_merges());
  EXPECT_FALSE(vocab.add_space_prefix());
  EXPECT_EQ(tokenizer.encode("Hello world", false, false), (Ids{9906, 1917}));
  EXPECT_EQ(tokenizer.encode("Hello world", true, false), (Ids{128000, 9906, 1917}));
  EXPECT_EQ(tokenizer.encode("<|begin_of_text|>Hello", false, true), (Ids{128000, 9906}));
  const Ids plain = tokenizer.encode("<|begin_of_text|>Hello", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 128000), 0);
  EXPECT_EQ(tokenizer.decode(plain), "<|begin_of_text|>Hello");
  EXPECT_EQ(tokenizer.decode(Ids{128000, 9906, 1917, 128001}), "Hello world");
  EXPECT_EQ(tokenizer.decode(Ids{128000, 9906, 128001}, {.render_special = true}),
            "<|begin_of_text|>Hello<|end_of_text|>");
  EXPECT_TRUE(tokenizer.is_end_of_generation(128001));
  for (const std::string& text : vector_strings(path)) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false, false)), text);
  }
}

TEST(BpeTokenizer, Gpt2RoundTripsAndDefaults) {
  const auto path = test::model_path("ggml-vocab-gpt-2.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  EXPECT_EQ(tokenizer.vocabulary().pre_tokenizer(), PreTokenizerKind::GPT2);
  EXPECT_FALSE(tokenizer.vocabulary().ignore_merges());
  EXPECT_FALSE(tokenizer.vocabulary().add_bos());
  EXPECT_EQ(tokenizer.encode("Hello", true, false).size(), 1u);  // no BOS for GPT-2
  for (const std::string& text : vector_strings(path)) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false, false)), text);
  }
}

TEST(BpeTokenizer, SmallLlama3VocabularyMergesWithinItsSubset) {
  const auto path = test::model_path("small-llama3.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  EXPECT_EQ(tokenizer.vocabulary().bos(), 510);
  EXPECT_EQ(tokenizer.vocabulary().eos(), 511);
  const std::string text = "Hello, wonderful world! 🦙 in 2024\n\ttabs";
  const Ids ids = tokenizer.encode(text, true, false);
  EXPECT_EQ(ids.front(), 510);
  for (const TokenId id : ids) EXPECT_LT(id, 512);
  EXPECT_LT(ids.size(), text.size());  // some merges applied
  EXPECT_EQ(tokenizer.decode(ids), text);
}

// ---------------------------------------------------------------- metadata validation

std::vector<std::uint8_t> vocab_file(std::string model, std::string pre, std::size_t score_count) {
  test::GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", std::move(model));
  b.kv_string("tokenizer.ggml.pre", std::move(pre));
  b.kv("tokenizer.ggml.tokens",
       [](test::ByteWriter& w) { w.u32(9).u32(8).u64(3).string("a").string("b").string("ab"); });
  b.kv("tokenizer.ggml.scores", [score_count](test::ByteWriter& w) {
    w.u32(9).u32(6).u64(score_count);
    for (std::size_t i = 0; i < score_count; ++i) w.put(static_cast<float>(i));
  });
  b.kv("tokenizer.ggml.merges", [](test::ByteWriter& w) { w.u32(9).u32(8).u64(1).string("a b"); });
  return b.build();
}

void expect_vocab_error(std::vector<std::uint8_t> bytes, const std::string& fragment) {
  const GgufFile file = GgufFile::from_bytes(std::move(bytes), "vocab.gguf");
  try {
    (void)Vocabulary::from_gguf(file);
    ADD_FAILURE() << "expected TokenizerError mentioning " << fragment;
  } catch (const TokenizerError& error) {
    EXPECT_THAT(error.what(), HasSubstr(fragment));
  }
}

TEST(VocabularyMetadata, InvalidDescriptionsAreRejectedWithTheReason) {
  expect_vocab_error(vocab_file("bert", "default", 3), "tokenizer model 'bert' is not supported");
  expect_vocab_error(vocab_file("gpt2", "made-up", 3), "pre-tokenizer 'made-up' is not supported");
  expect_vocab_error(vocab_file("llama", "default", 2),
                     "tokenizer.ggml.scores has 2 entries but there are 3 tokens");
  test::GgufBuilder no_model;
  no_model.kv_u32("x", 1);
  expect_vocab_error(no_model.build(), "has no tokenizer");
  test::GgufBuilder wrong_type;
  wrong_type.kv_string("tokenizer.ggml.model", "gpt2").kv_u32("tokenizer.ggml.tokens", 5);
  expect_vocab_error(wrong_type.build(), "invalid tokenizer metadata");
}

TEST(VocabularyMetadata, TinySyntheticBpeVocabularyMerges) {
  const GgufFile file = GgufFile::from_bytes(vocab_file("gpt2", "gpt-2", 3), "vocab.gguf");
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  EXPECT_EQ(tokenizer.vocabulary().merge_rank("a", "b"), 0u);
  EXPECT_EQ(tokenizer.encode("ab", false, false), (Ids{2}));
  EXPECT_EQ(tokenizer.encode("ba", false, false), (Ids{1, 0}));
  // "c" has no byte-level token and there is no unknown token.
  EXPECT_THROW(tokenizer.encode("c", false, false), TokenizerError);
}

// ---------------------------------------------------------------- streaming

void expect_streaming_matches_decode(const Tokenizer& tokenizer, const Ids& ids, DecodeOptions options,
                                     bool expect_hold_back) {
  StreamingDetokenizer stream(tokenizer, options);
  std::string joined;
  bool held_back = false;
  for (const TokenId id : ids) {
    const std::string chunk = stream.push(id);
    EXPECT_TRUE(is_valid_utf8(chunk)) << "chunk splits a character";
    held_back = held_back || stream.pending_bytes() > 0;
    joined += chunk;
  }
  joined += stream.finish();
  EXPECT_EQ(joined, tokenizer.decode(ids, options));
  EXPECT_EQ(held_back, expect_hold_back);
  EXPECT_EQ(stream.pending_bytes(), 0u);
}

TEST(StreamingDetokenizer, SpmByteTokensAreHeldBackUntilTheCharacterIsComplete) {
  const auto path = test::model_path("ggml-vocab-llama-spm.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  const std::string text = "Hello 🦙 wörld 你好 ünïcödé";
  const Ids ids = tokenizer.encode(text, true, false);
  expect_streaming_matches_decode(tokenizer, ids, {}, true);
  expect_streaming_matches_decode(tokenizer, ids, {.render_special = true, .strip_space_prefix = false},
                                  true);

  StreamingDetokenizer stream(tokenizer);
  EXPECT_EQ(stream.push(3 + 0xF0), "");
  EXPECT_EQ(stream.push(3 + 0x9F), "");
  EXPECT_EQ(stream.push(3 + 0xA6), "");
  EXPECT_EQ(stream.push(3 + 0x99), "🦙");
  // A byte that can never start a character is passed through at once; a cut one comes out at finish.
  EXPECT_EQ(stream.push(3 + 0xFF), "\xFF");
  EXPECT_EQ(stream.push(3 + 0xE2), "");
  EXPECT_EQ(stream.finish(), "\xE2");
}

TEST(StreamingDetokenizer, ByteLevelTokensSplittingCharactersAreReassembled) {
  const auto path = test::model_path("small-llama3.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = load(path);
  const Ids ids = tokenizer.encode("a 🦙 and 中文 text", true, false);
  expect_streaming_matches_decode(tokenizer, ids, {}, true);
  const Ids ascii = tokenizer.encode("plain ascii", false, false);
  expect_streaming_matches_decode(tokenizer, ascii, {}, false);
}

}  // namespace
}  // namespace exo::inference
