#include "topology/json_fields.h"

#include <gtest/gtest.h>

#include <string>

#include "topology/result.h"

namespace exo::topology {
namespace {

TEST(JsonFields, IntegerRangeAndTypes) {
  const auto json =
      nlohmann::json::parse(R"({"i": 7, "neg": -3, "f": 16384.0, "frac": 1.5, "s": "7", "big": 1e300})");
  std::int64_t out = 0;
  std::string error;
  EXPECT_TRUE(read_integer_field(json, "i", 0, 10, out, error));
  EXPECT_EQ(out, 7);
  EXPECT_FALSE(read_integer_field(json, "i", 0, 6, out, error));
  EXPECT_FALSE(read_integer_field(json, "neg", 0, 10, out, error));
  EXPECT_FALSE(read_integer_field(json, "f", 0, 100000, out, error));  // floats refused by default
  EXPECT_TRUE(read_integer_field(json, "f", 0, 100000, out, error, true));
  EXPECT_EQ(out, 16384);
  EXPECT_FALSE(read_integer_field(json, "frac", 0, 10, out, error, true));
  EXPECT_FALSE(read_integer_field(json, "big", 0, INT64_MAX, out, error, true));
  EXPECT_FALSE(read_integer_field(json, "s", 0, 10, out, error));
  EXPECT_NE(error.find("s: expected an integer"), std::string::npos);
  EXPECT_FALSE(read_integer_field(json, "missing", 0, 10, out, error));
  EXPECT_EQ(error, "missing: missing");
}

TEST(JsonFields, IntegralFloatAtTheInt64EdgeIsRejectedNotOverflowed) {
  const auto json = nlohmann::json::parse(R"({"edge": 9223372036854775808.0})");
  std::int64_t out = 0;
  std::string error;
  EXPECT_FALSE(read_integer_field(json, "edge", INT64_MIN, INT64_MAX, out, error, true));
}

TEST(JsonFields, UnsignedAboveInt64IsRejected) {
  const auto json = nlohmann::json::parse(R"({"u": 18446744073709551615})");
  std::int64_t out = 0;
  std::string error;
  EXPECT_FALSE(read_integer_field(json, "u", 0, INT64_MAX, out, error));
}

TEST(JsonFields, StringLengthLimit) {
  nlohmann::json json;
  json["s"] = std::string(11, 'x');
  std::string out;
  std::string error;
  EXPECT_FALSE(read_string_field(json, "s", 10, out, error));
  EXPECT_TRUE(read_string_field(json, "s", 11, out, error));
  EXPECT_EQ(out, std::string(11, 'x'));
}

TEST(JsonFields, NumberMustBeFiniteAndInRange) {
  const auto json = nlohmann::json::parse(R"({"a": 1, "b": -0.5, "c": "1"})");
  double out = 0;
  std::string error;
  EXPECT_TRUE(read_number_field(json, "a", 0.0, 2.0, out, error));
  EXPECT_EQ(out, 1.0);
  EXPECT_FALSE(read_number_field(json, "b", 0.0, 2.0, out, error));
  EXPECT_FALSE(read_number_field(json, "c", 0.0, 2.0, out, error));
}

TEST(JsonFields, NestingGuardIgnoresBracketsInStrings) {
  EXPECT_TRUE(json_nesting_within(R"({"a": {"b": [1]}})", 3));
  EXPECT_FALSE(json_nesting_within(R"({"a": {"b": [1]}})", 2));
  EXPECT_TRUE(json_nesting_within(R"({"a": "[[[[[[{{{{\"[[["})", 1));
  EXPECT_FALSE(json_nesting_within(std::string(100000, '['), 64));
}

TEST(Result, AccessingTheWrongSideIsALogicError) {
  Result<int> good = 3;
  Result<int> bad = Error{"nope"};
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  EXPECT_THROW((void)good.error(), std::logic_error);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "nope");
  EXPECT_THROW((void)bad.value(), std::logic_error);
}

}  // namespace
}  // namespace exo::topology
