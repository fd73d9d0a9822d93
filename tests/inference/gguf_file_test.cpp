// GgufFile: parsing of the shared model files and of synthetic images covering every value type,
// plus the errors for malformed and hostile headers.
#include "inference/gguf_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <limits>
#include <map>

#include "gguf_builder.h"
#include "test_support.h"

namespace exo::inference {
namespace {

using test::ByteWriter;
using test::GgufBuilder;
using ::testing::HasSubstr;

// Expects `statement` to throw an exception of type `Error` whose message contains `fragment`.
template <typename Error, typename Statement>
void expect_error(Statement statement, const std::string& fragment) {
  try {
    statement();
    ADD_FAILURE() << "no exception; expected one mentioning \"" << fragment << "\"";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr(fragment));
  }
}

GgufFile parse(std::vector<std::uint8_t> bytes) {
  return GgufFile::from_bytes(std::move(bytes), "test.gguf");
}

void expect_parse_error(std::vector<std::uint8_t> bytes, const std::string& fragment) {
  expect_error<GgufError>([&] { parse(bytes); }, fragment);
}

// A header with the given counts followed by `rest`.
std::vector<std::uint8_t> header(std::uint64_t tensors, std::uint64_t entries, std::uint32_t version = 3) {
  ByteWriter w;
  w.u32(0x46554747).u32(version).u64(tensors).u64(entries);
  return w.bytes();
}

std::vector<std::uint8_t> concat(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---------------------------------------------------------------- real files

TEST(GgufFileShared, SmallF16HeaderMetadataAndTensors) {
  const auto path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_offset() % 32, 0u);
  EXPECT_EQ(file.file_size(), 6838944u);
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_u32("llama.embedding_length"), 256u);
  EXPECT_EQ(file.get_u32("llama.block_count"), 4u);
  EXPECT_EQ(file.get_u32("llama.feed_forward_length"), 768u);
  EXPECT_EQ(file.get_u32("llama.attention.head_count"), 8u);
  EXPECT_EQ(file.get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_FLOAT_EQ(file.get_f32("llama.rope.freq_base"), 10000.0f);
  EXPECT_FLOAT_EQ(file.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(file.get_string_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(file.get_string_array("tokenizer.ggml.tokens")[1], "<s>");

  std::map<TensorType, int> type_counts;
  for (const auto& tensor : file.tensors()) ++type_counts[tensor.type()];
  EXPECT_EQ(type_counts[TensorType::F16], 30);
  EXPECT_EQ(type_counts[TensorType::F32], 9);
  EXPECT_EQ(file.tensors().size(), 39u);

  const GgufTensor& embedding = file.tensor("token_embd.weight");
  EXPECT_EQ(embedding.type(), TensorType::F16);
  EXPECT_EQ(embedding.shape, (std::vector<std::uint64_t>{256, 512}));
  EXPECT_EQ(embedding.element_count, 256u * 512u);
  EXPECT_EQ(embedding.byte_size, 256u * 512u * 2u);
  EXPECT_EQ(embedding.row_length(), 256u);
  EXPECT_EQ(embedding.row_count(), 512u);
  EXPECT_EQ(embedding.data.size(), embedding.byte_size);
  EXPECT_EQ(embedding.offset % 32, 0u);
  const GgufTensor& norm = file.tensor("blk.0.attn_norm.weight");
  EXPECT_EQ(norm.type(), TensorType::F32);
  EXPECT_EQ(norm.shape, (std::vector<std::uint64_t>{256}));
  EXPECT_EQ(file.find_tensor("no.such.tensor"), nullptr);
  expect_error<GgufError>([&] { (void)file.tensor("no.such.tensor"); }, "no tensor named 'no.such.tensor'");
}

TEST(GgufFileShared, TensorSpansLieInsideTheFileAndDoNotOverlap) {
  for (const char* name : {"small-f16.gguf", "small-q8_0.gguf", "small-q4_0.gguf", "small-q4_k_m.gguf",
                           "small-llama3.gguf", "stories260K.gguf", "tiny-f32.gguf"}) {
    const auto path = test::model_path(name);
    EXO_SKIP_IF_MISSING(path);
    const GgufFile file = GgufFile::open(path.string());
    std::uint64_t total = 0;
    for (const auto& tensor : file.tensors()) {
      EXPECT_GE(tensor.offset + file.data_offset(), file.data_offset());
      EXPECT_LE(file.data_offset() + tensor.offset + tensor.byte_size, file.file_size())
          << name << " " << tensor.name;
      EXPECT_EQ(tensor.byte_size, checked_byte_size(tensor.type(), tensor.element_count).value());
      total += tensor.byte_size;
    }
    EXPECT_LE(file.data_offset() + total, file.file_size()) << name;
  }
}

TEST(GgufFileShared, QuantizedFileLayoutsMatchTheDocumentedTypes) {
  const auto path = test::model_path("small-q4_k_m.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_EQ(file.tensor("token_embd.weight").type(), TensorType::Q4_K);
  EXPECT_EQ(file.tensor("output.weight").type(), TensorType::Q6_K);
  EXPECT_EQ(file.tensor("blk.0.attn_v.weight").type(), TensorType::Q4_K);
  EXPECT_EQ(file.tensor("blk.2.attn_v.weight").type(), TensorType::Q6_K);
  EXPECT_EQ(file.tensor("blk.3.ffn_down.weight").type(), TensorType::Q6_K);
  EXPECT_EQ(file.tensor("output_norm.weight").type(), TensorType::F32);
  // Q4_K: 256 values per 144-byte super-block.
  EXPECT_EQ(file.tensor("token_embd.weight").byte_size, 512u * 144u);
  EXPECT_EQ(file.get_u32("general.file_type"), 15u);
}

TEST(GgufFileShared, Stories260KQuirks) {
  const auto path = test::model_path("stories260K.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_FALSE(file.has("general.file_type"));
  EXPECT_FALSE(file.has("llama.rope.freq_base"));
  EXPECT_FALSE(file.find_f32("llama.rope.freq_base").has_value());
  EXPECT_EQ(file.get_u32("tokenizer.ggml.seperator_token_id"), 0xFFFFFFFFu);
  EXPECT_EQ(file.get_u32("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(file.tensors().size(), 48u);
  for (const auto& tensor : file.tensors()) EXPECT_EQ(tensor.type(), TensorType::F32) << tensor.name;
}

TEST(GgufFileShared, VocabularyOnlyFilesHaveNoTensorsAndFullArrays) {
  const auto path = test::model_path("vocab-llama3-bpe.gguf");
  EXO_SKIP_IF_MISSING(path);
  const GgufFile file = GgufFile::open(path.string());
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_EQ(file.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(file.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(file.get_array("tokenizer.ggml.tokens", GgufValueType::STRING).size(), 128256u);
  EXPECT_EQ(file.get_array("tokenizer.ggml.merges").size(), 280147u);
  EXPECT_EQ(file.get_u32("tokenizer.ggml.bos_token_id"), 128000u);
  EXPECT_TRUE(file.get_bool("tokenizer.ggml.add_bos_token"));
}

TEST(GgufFileShared, MissingFileIsAGgufErrorNamingThePath) {
  expect_error<GgufError>([] { GgufFile::open("/nonexistent/dir/model.gguf"); },
                          "/nonexistent/dir/model.gguf");
}

// ---------------------------------------------------------------- typed metadata accessors

GgufFile every_type_file(std::uint32_t version = 3) {
  GgufBuilder b(version);
  b.kv("u8", [](ByteWriter& w) { w.u32(0).put<std::uint8_t>(200); });
  b.kv("i8", [](ByteWriter& w) { w.u32(1).put<std::int8_t>(-100); });
  b.kv("u16", [](ByteWriter& w) { w.u32(2).put<std::uint16_t>(60000); });
  b.kv("i16", [](ByteWriter& w) { w.u32(3).put<std::int16_t>(-30000); });
  b.kv("u32", [](ByteWriter& w) { w.u32(4).put<std::uint32_t>(4000000000u); });
  b.kv("i32", [](ByteWriter& w) { w.u32(5).put<std::int32_t>(-2000000000); });
  b.kv("f32", [](ByteWriter& w) { w.u32(6).put<float>(1.5f); });
  b.kv("bool", [](ByteWriter& w) { w.u32(7).put<std::uint8_t>(1); });
  b.kv("string", [](ByteWriter& w) { w.u32(8).string("héllo"); });
  b.kv("u64", [](ByteWriter& w) { w.u32(10).put<std::uint64_t>(1ull << 40); });
  b.kv("i64", [](ByteWriter& w) { w.u32(11).put<std::int64_t>(-(1ll << 40)); });
  b.kv("f64", [](ByteWriter& w) { w.u32(12).put<double>(0.25); });
  b.kv("empty_string", [](ByteWriter& w) { w.u32(8).string(""); });
  b.kv("f32_array", [](ByteWriter& w) { w.u32(9).u32(6).u64(3).put(1.0f).put(2.0f).put(-3.0f); });
  b.kv("i32_array", [](ByteWriter& w) { w.u32(9).u32(5).u64(2).put<std::int32_t>(-1).put<std::int32_t>(7); });
  b.kv("string_array", [](ByteWriter& w) { w.u32(9).u32(8).u64(3).string("a").string("").string("ccc"); });
  b.kv("nested", [](ByteWriter& w) {
    // array of 2 arrays of strings: [["x", "yy"], ["zzz"]]
    w.u32(9).u32(9).u64(2);
    w.u32(8).u64(2).string("x").string("yy");
    w.u32(8).u64(1).string("zzz");
  });
  b.kv("empty_array", [](ByteWriter& w) { w.u32(9).u32(4).u64(0); });
  return parse(b.build());
}

TEST(GgufMetadata, EveryValueTypeIsParsedWithItsTypeAndValue) {
  const GgufFile file = every_type_file();
  EXPECT_EQ(file.metadata().size(), 18u);
  EXPECT_EQ(file.at("u8").type(), GgufValueType::UINT8);
  EXPECT_EQ(file.get_u32("u8"), 200u);
  EXPECT_EQ(file.get_i32("i8"), -100);
  EXPECT_EQ(file.get_u32("u16"), 60000u);
  EXPECT_EQ(file.get_i32("i16"), -30000);
  EXPECT_EQ(file.get_u32("u32"), 4000000000u);
  EXPECT_EQ(file.get_i32("i32"), -2000000000);
  EXPECT_EQ(file.get_f32("f32"), 1.5f);
  EXPECT_TRUE(file.get_bool("bool"));
  EXPECT_EQ(file.get_string("string"), "héllo");
  EXPECT_EQ(file.get_u64("u64"), 1ull << 40);
  EXPECT_EQ(file.get_i64("i64"), -(1ll << 40));
  EXPECT_EQ(file.get_f64("f64"), 0.25);
  EXPECT_EQ(file.get_f32("f64"), 0.25f);
  EXPECT_EQ(file.get_string("empty_string"), "");
  EXPECT_EQ(file.get_f32_array("f32_array"), (std::vector<float>{1.0f, 2.0f, -3.0f}));
  EXPECT_EQ(file.get_i32_array("i32_array"), (std::vector<std::int32_t>{-1, 7}));
  EXPECT_EQ(file.get_string_array("string_array"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_TRUE(file.get_array("empty_array").empty());
  EXPECT_EQ(file.at("empty_array").element_type(), GgufValueType::UINT32);

  const auto& nested = file.get_array("nested", GgufValueType::ARRAY);
  ASSERT_EQ(nested.size(), 2u);
  ASSERT_NE(nested[0].to_array(), nullptr);
  EXPECT_EQ(nested[0].element_type(), GgufValueType::STRING);
  ASSERT_EQ(nested[0].to_array()->size(), 2u);
  EXPECT_EQ(nested[0].to_array()->at(1).to_string(), "yy");
  EXPECT_EQ(nested[1].to_array()->at(0).to_string(), "zzz");
}

TEST(GgufMetadata, Version2FilesAreAccepted) {
  const GgufFile file = every_type_file(2);
  EXPECT_EQ(file.version(), 2u);
  EXPECT_EQ(file.get_string("string"), "héllo");
}

TEST(GgufMetadata, MissingKeyErrorNamesTheKey) {
  const GgufFile file = every_type_file();
  expect_error<GgufMetadataError>([&] { file.get_u32("llama.block_count"); },
                                  "missing metadata key 'llama.block_count'");
  EXPECT_FALSE(file.find_u32("llama.block_count").has_value());
  EXPECT_EQ(file.find_u32("u32"), 4000000000u);
}

TEST(GgufMetadata, WrongTypeErrorNamesKeyAndBothTypes) {
  const GgufFile file = every_type_file();
  expect_error<GgufMetadataError>([&] { file.get_u32("string"); },
                                  "'string' has type string, expected an integer");
  expect_error<GgufMetadataError>([&] { file.get_string("u32"); }, "'u32' has type uint32, expected string");
  expect_error<GgufMetadataError>([&] { file.get_f32("u32"); }, "expected a float");
  expect_error<GgufMetadataError>([&] { file.get_bool("u8"); }, "expected bool");
  expect_error<GgufMetadataError>([&] { file.get_string_array("f32_array"); },
                                  "array of float32, expected array of string");
  expect_error<GgufMetadataError>([&] { file.get_array("u32"); }, "expected array");
  expect_error<GgufMetadataError>([&] { file.find_string("u32"); },
                                  "expected string");  // present, wrong type
  expect_error<GgufMetadataError>([&] { file.get_f32_array("string_array"); }, "string_array[0]");
}

TEST(GgufMetadata, IntegerGettersRejectValuesThatDoNotFit) {
  const GgufFile file = every_type_file();
  expect_error<GgufMetadataError>([&] { file.get_u32("i8"); }, "does not fit in uint32");     // negative
  expect_error<GgufMetadataError>([&] { file.get_i32("u32"); }, "does not fit in int32");     // 4e9
  expect_error<GgufMetadataError>([&] { file.get_u32("u64"); }, "does not fit in uint32");    // 2^40
  expect_error<GgufMetadataError>([&] { file.get_u32_array("i32_array"); }, "i32_array[0]");  // -1
  EXPECT_EQ(file.get_i64("u32"), 4000000000);
}

// ---------------------------------------------------------------- tensors and alignment

TEST(GgufTensors, CustomAlignmentAndTensorLookup) {
  std::vector<std::uint8_t> f32_data(4 * 6);
  for (int i = 0; i < 6; ++i) {
    const float value = static_cast<float>(i) - 2.5f;
    std::memcpy(f32_data.data() + 4 * i, &value, 4);
  }
  GgufBuilder b;
  b.alignment(64).kv_string("general.architecture", "llama");
  b.tensor("a", {3, 2}, 0, f32_data);
  b.tensor("b", {32}, 8, std::vector<std::uint8_t>(34, 1));  // one Q8_0 block
  const GgufFile file = parse(b.build());
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.data_offset() % 64, 0u);
  const GgufTensor& a = file.tensor("a");
  EXPECT_EQ(a.shape, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(a.row_count(), 2u);
  const auto values = dequantize_tensor(a);
  EXPECT_EQ(values, (std::vector<float>{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f}));
  const GgufTensor& b_tensor = file.tensor("b");
  EXPECT_EQ(b_tensor.offset, 64u);
  EXPECT_EQ(b_tensor.byte_size, 34u);
  EXPECT_EQ(b_tensor.type(), TensorType::Q8_0);
}

TEST(GgufTensors, KnownButUnconvertibleTypeOpensButDequantizeNamesTensorAndType) {
  GgufBuilder b;
  b.tensor("blk.0.ffn_up.weight", {256}, 16, std::vector<std::uint8_t>(66, 0));  // IQ2_XXS
  const GgufFile file = parse(b.build());
  const GgufTensor& tensor = file.tensor("blk.0.ffn_up.weight");
  EXPECT_EQ(tensor.type(), TensorType::IQ2_XXS);
  expect_error<TensorTypeError>([&] { dequantize_tensor(tensor); },
                                "tensor 'blk.0.ffn_up.weight' has type iq2_xxs");
}

// ---------------------------------------------------------------- malformed and hostile files

TEST(GgufErrors, EmptyAndTruncatedHeaders) {
  expect_parse_error({}, "truncated: magic at offset 0 needs 4 bytes, only 0 remain");
  expect_parse_error({'G', 'G', 'U', 'F', 3, 0}, "truncated: version");
  expect_parse_error({'G', 'G', 'U', 'F', 3, 0, 0, 0, 0}, "truncated: tensor count");
}

TEST(GgufErrors, BadMagicVersionAndEndianness) {
  expect_parse_error({'G', 'G', 'M', 'L', 3, 0, 0, 0}, "not a GGUF file");
  expect_parse_error(header(0, 0, 1), "unsupported GGUF version 1");
  expect_parse_error(header(0, 0, 4), "unsupported GGUF version 4");
  expect_parse_error(header(0, 0, 0x03000000), "big-endian");
}

TEST(GgufErrors, HostileCountsAreRejectedBeforeAllocating) {
  expect_parse_error(header(0, 1ull << 62), "metadata count 4611686018427387904 cannot fit");
  expect_parse_error(header(1ull << 60, 0), "tensor count 1152921504606846976 cannot fit");
  // An array claiming 2^61 uint64 elements.
  ByteWriter array;
  array.string("huge").u32(9).u32(10).u64(1ull << 61);
  expect_parse_error(concat(header(0, 1), array.bytes()),
                     "'huge': array of 2305843009213693952 uint64 elements");
  // A string claiming 2^63 bytes.
  ByteWriter text;
  text.string("key").u32(8).u64(1ull << 63);
  expect_parse_error(concat(header(0, 1), text.bytes()), "string value at offset");
  // A key length larger than the file.
  ByteWriter key;
  key.u64(1000).u32(0).u64(0).u64(0);
  expect_parse_error(concat(header(0, 1), key.bytes()), "key of metadata entry 0");
}

TEST(GgufErrors, InvalidTypesAndValues) {
  ByteWriter bad_type;
  bad_type.string("k").u32(13).u32(0);
  expect_parse_error(concat(header(0, 1), bad_type.bytes()), "metadata key 'k': invalid value type 13");
  ByteWriter bad_element;
  bad_element.string("k").u32(9).u32(99).u64(0);
  expect_parse_error(concat(header(0, 1), bad_element.bytes()), "invalid array element type 99");
  ByteWriter bad_bool;
  bad_bool.string("flag").u32(7).put<std::uint8_t>(2);
  expect_parse_error(concat(header(0, 1), bad_bool.bytes()), "'flag': invalid bool byte 2");
  ByteWriter deep;
  deep.string("deep").u32(9);                       // value type: array
  for (int i = 0; i < 20; ++i) deep.u32(9).u64(1);  // ... of one array, of one array, ...
  deep.u32(4).u64(0);
  deep.pad_to(8).u64(0).u64(0).u64(0);
  expect_parse_error(concat(header(0, 1), deep.bytes()), "nested deeper than");
}

TEST(GgufErrors, DuplicateKeysAndBadAlignment) {
  GgufBuilder duplicate;
  duplicate.kv_u32("x", 1).kv_u32("x", 2);
  expect_parse_error(duplicate.build(), "duplicate metadata key 'x'");
  GgufBuilder not_power_of_two;
  not_power_of_two.kv_u32("general.alignment", 48);
  expect_parse_error(not_power_of_two.build(), "general.alignment must be a power of two");
  GgufBuilder zero;
  zero.kv_u32("general.alignment", 0);
  expect_parse_error(zero.build(), "general.alignment must be a power of two");
  GgufBuilder wrong_type;
  wrong_type.kv_string("general.alignment", "32");
  expect_parse_error(wrong_type.build(), "general.alignment must be a power of two");
}

// One tensor description followed by `data_size` bytes of (aligned) data.
std::vector<std::uint8_t> one_tensor_file(std::string_view name, std::vector<std::uint64_t> shape,
                                          std::uint32_t type, std::uint64_t offset, std::size_t data_size) {
  ByteWriter w;
  w.raw(header(1, 0)).string(name).u32(static_cast<std::uint32_t>(shape.size()));
  for (const auto extent : shape) w.u64(extent);
  w.u32(type).u64(offset).pad_to(32);
  w.raw(std::vector<std::uint8_t>(data_size, 0));
  return w.bytes();
}

TEST(GgufErrors, TensorDescriptionsAreChecked) {
  EXPECT_NO_THROW(parse(one_tensor_file("ok", {8, 2}, 0, 0, 64)));
  expect_parse_error(one_tensor_file("t", {1, 1, 1, 1, 1}, 0, 0, 4), "tensor 't' has 5 dimensions");
  expect_parse_error(one_tensor_file("t", {8}, 77, 0, 64), "tensor 't' has unknown type id 77");
  expect_parse_error(one_tensor_file("t", {8}, 0, 16, 64),
                     "data offset 16 is not a multiple of the alignment 32");
  expect_parse_error(one_tensor_file("t", {8, 2}, 0, 0, 60),
                     "tensor 't' (64 bytes at data offset 0) extends past");
  expect_parse_error(one_tensor_file("t", {8}, 0, 1ull << 62, 64), "extends past the end of the file");
  expect_parse_error(one_tensor_file("t", {31}, 8, 0, 64),
                     "row length 31 is not a multiple of the q8_0 block size 32");
  expect_parse_error(one_tensor_file("t", {1ull << 40, 1ull << 40}, 0, 0, 64), "element count overflows");
  expect_parse_error(one_tensor_file("t", {1ull << 63}, 0, 0, 64), "dimension 0 is 9223372036854775808");
  expect_parse_error(one_tensor_file("t", {1ull << 62}, 0, 0, 64), "byte size overflows");
}

TEST(GgufErrors, DuplicateAndOverlappingTensors) {
  GgufBuilder duplicate;
  duplicate.tensor("w", {8}, 0, std::vector<std::uint8_t>(32))
      .tensor("w", {8}, 0, std::vector<std::uint8_t>(32));
  expect_parse_error(duplicate.build(), "duplicate tensor name 'w'");

  ByteWriter w;
  w.raw(header(2, 0));
  w.string("first").u32(1).u64(16).u32(0).u64(0);   // 64 bytes at 0
  w.string("second").u32(1).u64(8).u32(0).u64(32);  // 32 bytes at 32: overlaps
  w.pad_to(32).raw(std::vector<std::uint8_t>(128, 0));
  expect_parse_error(w.bytes(), "tensors 'first' and 'second' overlap");
}

}  // namespace
}  // namespace exo::inference
