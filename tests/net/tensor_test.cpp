#include "net/tensor.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace exo::net {
namespace {

using namespace std::string_literals;

TEST(DType, NamesAndSizesAreNumpys) {
  struct Expected {
    DType dtype;
    const char* name;
    std::size_t size;
  };
  const Expected table[] = {
      {DType::FLOAT16, "float16", 2}, {DType::BFLOAT16, "bfloat16", 2}, {DType::FLOAT32, "float32", 4},
      {DType::FLOAT64, "float64", 8}, {DType::INT8, "int8", 1},         {DType::INT16, "int16", 2},
      {DType::INT32, "int32", 4},     {DType::INT64, "int64", 8},       {DType::UINT8, "uint8", 1},
      {DType::UINT16, "uint16", 2},   {DType::UINT32, "uint32", 4},     {DType::UINT64, "uint64", 8},
      {DType::BOOL, "bool", 1},
  };
  ASSERT_EQ(std::size(table), std::size(kAllDTypes));
  for (const auto& entry : table) {
    EXPECT_EQ(dtype_name(entry.dtype), entry.name);
    EXPECT_EQ(dtype_size(entry.dtype), entry.size) << entry.name;
    EXPECT_EQ(dtype_from_name(entry.name), entry.dtype);
  }
}

TEST(DType, OnlyExactNumpyNamesAreAccepted) {
  for (const char* name :
       {"", "float", "Float32", "f4", "<f4", "float32 ", "float8", "complex64", "object", "int"}) {
    EXPECT_EQ(dtype_from_name(name), std::nullopt) << name;
  }
}

TEST(ElementCount, ProductScalarsZeroesNegativesAndOverflow) {
  EXPECT_EQ(*checked_element_count(std::vector<std::int64_t>{}), 1);
  EXPECT_EQ(*checked_element_count(std::vector<std::int64_t>{2, 3, 4}), 24);
  EXPECT_EQ(*checked_element_count(std::vector<std::int64_t>{0, std::numeric_limits<std::int64_t>::max(), 5}),
            0);
  EXPECT_FALSE(checked_element_count(std::vector<std::int64_t>{2, -1}).ok());
  EXPECT_FALSE(checked_element_count(std::vector<std::int64_t>{1LL << 32, 1LL << 32}).ok());
  EXPECT_EQ(*checked_element_count(std::vector<std::int64_t>{1LL << 31, 1LL << 31}), 1LL << 62);
}

TEST(Tensor, ConstructorEnforcesTheByteCount) {
  EXPECT_NO_THROW(Tensor(DType::FLOAT32, {2, 2}, std::string(16, '\0')));
  EXPECT_THROW(Tensor(DType::FLOAT32, {2, 2}, std::string(15, '\0')), std::invalid_argument);
  EXPECT_THROW(Tensor(DType::FLOAT32, {2, -2}, ""), std::invalid_argument);
  EXPECT_FALSE(Tensor::create(DType::INT64, {3}, std::string(23, '\0')).ok());
  EXPECT_FALSE(Tensor::create(DType::FLOAT64, {1LL << 31, 1LL << 31}, "").ok());  // bytes overflow int64
  EXPECT_TRUE(Tensor::create(DType::BOOL, {}, "\x01"s).ok());                     // 0-d scalar
}

TEST(Tensor, TypedValuesAreLittleEndianBytes) {
  const auto tensor = Tensor::from_values<std::int32_t>({2}, std::vector<std::int32_t>{1, -2});
  EXPECT_EQ(tensor.dtype(), DType::INT32);
  EXPECT_EQ(tensor.bytes(), "\x01\x00\x00\x00\xfe\xff\xff\xff"s);
  EXPECT_EQ(tensor.values<std::int32_t>(), (std::vector<std::int32_t>{1, -2}));
  EXPECT_EQ(tensor.element_count(), 2);
  EXPECT_THROW((void)tensor.values<float>(), std::logic_error);
  EXPECT_THROW((void)Tensor::from_values<float>({3}, std::vector<float>{1.0F}), std::invalid_argument);
}

TEST(Tensor, ReleaseBytesLeavesTheEmptyTensor) {
  auto tensor = Tensor::from_values<std::uint8_t>({3}, std::vector<std::uint8_t>{7, 8, 9});
  const std::string bytes = std::move(tensor).release_bytes();
  EXPECT_EQ(bytes, "\x07\x08\x09"s);
  EXPECT_EQ(tensor, Tensor());  // NOLINT(bugprone-use-after-move): documented state after release
  EXPECT_EQ(Tensor().shape(), (std::vector<std::int64_t>{0}));
}

}  // namespace
}  // namespace exo::net
