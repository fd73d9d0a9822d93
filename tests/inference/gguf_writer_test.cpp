// GgufWriter: files it writes open with our GgufFile reader, with every metadata type, tensors at
// aligned offsets and their bytes intact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "inference/gguf_file.h"
#include "inference/gguf_writer.h"
#include "inference/quants.h"

namespace exo::inference {
namespace {

TEST(GgufWriter, MetadataOfEveryKindRoundTrips) {
  GgufWriter w;
  w.add_u32("a.u32", 7);
  w.add_i32("a.i32", -3);
  w.add_u64("a.u64", 1ULL << 40);
  w.add_f32("a.f32", 0.5f);
  w.add_bool("a.bool", true);
  w.add_string("a.string", "héllo");
  w.add_string_array("a.strings", {"x", "", "zz"});
  w.add_f32_array("a.floats", {1.0f, -2.5f});
  w.add_i32_array("a.ints", {4, -5, 6});
  EXPECT_THROW(w.add_u32("a.u32", 1), std::invalid_argument);
  const GgufFile f = GgufFile::from_bytes(w.to_bytes());
  EXPECT_EQ(f.version(), 3U);
  EXPECT_EQ(f.get_u32("a.u32"), 7U);
  EXPECT_EQ(f.get_i32("a.i32"), -3);
  EXPECT_EQ(f.get_u64("a.u64"), 1ULL << 40);
  EXPECT_EQ(f.get_f32("a.f32"), 0.5f);
  EXPECT_TRUE(f.get_bool("a.bool"));
  EXPECT_EQ(f.get_string("a.string"), "héllo");
  EXPECT_EQ(f.get_string_array("a.strings"), (std::vector<std::string_view>{"x", "", "zz"}));
  EXPECT_EQ(f.get_f32_array("a.floats"), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(f.get_i32_array("a.ints"), (std::vector<std::int32_t>{4, -5, 6}));
  ASSERT_EQ(f.metadata().size(), 9U);
  EXPECT_EQ(f.metadata()[0].key, "a.u32");  // insertion order
}

TEST(GgufWriter, CopiedValuesKeepTheirTypesAndOutliveTheSource) {
  GgufWriter source;
  source.add_string_array("t.tokens", {"<s>", "a", "b"});
  source.add_i32_array("t.types", {3, 1, 1});
  source.add_f32("t.eps", 1e-6f);
  GgufWriter copy;
  {
    const GgufFile s = GgufFile::from_bytes(source.to_bytes());
    for (const auto& entry : s.metadata()) copy.add_value(std::string(entry.key), entry.value);
  }
  const GgufFile f = GgufFile::from_bytes(copy.to_bytes());
  EXPECT_EQ(f.get_string_array("t.tokens"), (std::vector<std::string_view>{"<s>", "a", "b"}));
  EXPECT_EQ(f.get_i32_array("t.types"), (std::vector<std::int32_t>{3, 1, 1}));
  EXPECT_EQ(f.at("t.types").element_type(), GgufValueType::INT32);
  EXPECT_EQ(f.get_f32("t.eps"), 1e-6f);
}

TEST(GgufWriter, TensorsAreAlignedAndTheirBytesRoundTrip) {
  for (std::uint32_t alignment : {32U, 64U}) {
    GgufWriter w(alignment);
    std::vector<float> values(64 * 3);
    std::iota(values.begin(), values.end(), -50.0f);
    w.add_tensor("f32", TensorType::F32, {5}, [](std::span<std::uint8_t> bytes) {
      ASSERT_EQ(bytes.size(), 20U);
      const float v[5] = {1, 2, 3, 4, 5};
      std::memcpy(bytes.data(), v, sizeof v);
    });
    w.add_tensor("q8", TensorType::Q8_0, {64, 3},
                 [&](std::span<std::uint8_t> bytes) { quantize_row(TensorType::Q8_0, values, bytes); });
    w.add_tensor("q4k", TensorType::Q4_K, {256, 1}, [](std::span<std::uint8_t> bytes) {
      ASSERT_EQ(bytes.size(), 144U);
      std::fill(bytes.begin(), bytes.end(), 0x11);
    });
    EXPECT_THROW(w.add_tensor("bad", TensorType::Q8_0, {48, 1}, nullptr), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("f32", TensorType::F32, {1}, nullptr), std::invalid_argument);
    const auto bytes = w.to_bytes();
    EXPECT_EQ(bytes.size(), w.file_size());
    const GgufFile f = GgufFile::from_bytes(bytes);
    EXPECT_EQ(f.alignment(), alignment);
    ASSERT_EQ(f.tensors().size(), 3U);
    for (const auto& t : f.tensors()) EXPECT_EQ((f.data_offset() + t.offset) % alignment, 0U) << t.name;
    EXPECT_EQ(dequantize_tensor(f.tensor("f32")), (std::vector<float>{1, 2, 3, 4, 5}));
    const auto q8 = dequantize_tensor(f.tensor("q8"));
    ASSERT_EQ(q8.size(), values.size());
    for (std::size_t i = 0; i < q8.size(); ++i) EXPECT_NEAR(q8[i], values[i], 0.6f) << i;
    EXPECT_EQ(f.tensor("q8").shape, (std::vector<std::uint64_t>{64, 3}));
    const auto& q4k = f.tensor("q4k");
    EXPECT_TRUE(std::all_of(q4k.data.begin(), q4k.data.end(), [](std::uint8_t b) { return b == 0x11; }));
  }
}

TEST(GgufWriter, WritesTheSameBytesToAFile) {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_tensor("t", TensorType::F16, {16, 2}, [](std::span<std::uint8_t> bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i);
  });
  const auto path = std::filesystem::temp_directory_path() / "exo_gguf_writer_test.gguf";
  w.write(path.string());
  const GgufFile f = GgufFile::open(path.string());
  EXPECT_EQ(f.file_size(), w.file_size());
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.tensor("t").data[33], 33);
  std::filesystem::remove(path);
  EXPECT_THROW(w.write("/nonexistent-dir/x.gguf"), std::runtime_error);
}

}  // namespace
}  // namespace exo::inference
