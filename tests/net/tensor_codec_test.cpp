#include "net/tensor_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace exo::net {
namespace {

using namespace std::string_literals;

node_service::Tensor message(const std::string& bytes, std::initializer_list<std::int32_t> shape,
                             const std::string& dtype) {
  node_service::Tensor result;
  result.set_tensor_data(bytes);
  for (const auto dimension : shape) result.add_shape(dimension);
  result.set_dtype(dtype);
  return result;
}

// One element of value "one" per dtype, as numpy's tobytes() writes it (little-endian).
struct OneValue {
  const char* dtype;
  std::string bytes;
};
const OneValue kOnes[] = {
    {"float16", "\x00\x3c"s},
    {"bfloat16", "\x80\x3f"s},
    {"float32", "\x00\x00\x80\x3f"s},
    {"float64", "\x00\x00\x00\x00\x00\x00\xf0\x3f"s},
    {"int8", "\x01"s},
    {"int16", "\x01\x00"s},
    {"int32", "\x01\x00\x00\x00"s},
    {"int64", "\x01\x00\x00\x00\x00\x00\x00\x00"s},
    {"uint8", "\x01"s},
    {"uint16", "\x01\x00"s},
    {"uint32", "\x01\x00\x00\x00"s},
    {"uint64", "\x01\x00\x00\x00\x00\x00\x00\x00"s},
    {"bool", "\x01"s},
};

TEST(TensorCodec, EveryDtypeRoundTripsWithShape2x3) {
  for (const auto& one : kOnes) {
    std::string six;
    for (int i = 0; i < 6; ++i) six += one.bytes;
    const auto decoded = decode_tensor(message(six, {2, 3}, one.dtype));
    ASSERT_TRUE(decoded.ok()) << one.dtype << ": " << decoded.error().message;
    EXPECT_EQ(dtype_name(decoded->dtype()), one.dtype);
    EXPECT_EQ(decoded->shape(), (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(decoded->bytes(), six);
    const auto encoded = encode_tensor(*decoded);
    EXPECT_EQ(encoded.SerializeAsString(), message(six, {2, 3}, one.dtype).SerializeAsString()) << one.dtype;
  }
}

TEST(TensorCodec, TypedValuesSurviveEncoding) {
  const auto tokens = Tensor::from_values<std::int64_t>({1, 3}, std::vector<std::int64_t>{128000, 9906, -2});
  const auto encoded = encode_tensor(tokens);
  EXPECT_EQ(encoded.dtype(), "int64");
  ASSERT_EQ(encoded.shape_size(), 2);
  EXPECT_EQ(encoded.shape(0), 1);
  EXPECT_EQ(encoded.shape(1), 3);
  EXPECT_EQ(encoded.tensor_data().substr(16), "\xfe\xff\xff\xff\xff\xff\xff\xff"s);
  const auto decoded = decode_tensor(encoded);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->values<std::int64_t>(), (std::vector<std::int64_t>{128000, 9906, -2}));
}

TEST(TensorCodec, MovingEncodeAndDecodeTransferTheBuffer) {
  auto tensor = Tensor::from_values<float>({2}, std::vector<float>{1.0F, 2.0F});
  auto encoded = encode_tensor(std::move(tensor));
  EXPECT_EQ(encoded.tensor_data(), "\x00\x00\x80\x3f\x00\x00\x00\x40"s);
  auto decoded = decode_tensor(std::move(encoded));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->values<float>(), (std::vector<float>{1.0F, 2.0F}));
  EXPECT_TRUE(encoded.tensor_data().empty());  // NOLINT(bugprone-use-after-move): documented
}

TEST(TensorCodec, ScalarsAndZeroSizeTensors) {
  const auto scalar = decode_tensor(message("\x00\x00\x80\x3f"s, {}, "float32"));
  ASSERT_TRUE(scalar.ok());
  EXPECT_TRUE(scalar->shape().empty());
  EXPECT_EQ(scalar->values<float>(), std::vector<float>{1.0F});
  const auto empty = decode_tensor(message("", {0, 4096}, "float16"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->element_count(), 0);
}

TEST(TensorCodec, MalformedMessagesAreErrors) {
  struct Case {
    node_service::Tensor tensor;
    const char* expect_in_message;
  };
  const Case cases[] = {
      {message("\x01"s, {1}, "float8"), "unknown dtype"},
      {message("\x01"s, {1}, ""), "unknown dtype"},
      {message("\x01"s, {1}, "<i1"), "unknown dtype"},
      {message("\x01\x02"s, {-2}, "int8"), "negative"},
      {message("", {65536, 65536, 65536, 65536}, "int8"), "overflows"},
      {message("", {2147483647, 2147483647, 4}, "float64"), "overflows"},
      {message("\x01\x02\x03"s, {2}, "int16"), "need 4"},
      {message("\x01\x02\x03\x04\x05"s, {2}, "int16"), "need 4"},
      {message("", {1}, "bool"), "need 1"},
      {message("\x00\x00\x00"s, {}, "float32"), "need 4"},
  };
  for (const auto& test_case : cases) {
    const auto decoded = decode_tensor(test_case.tensor);
    ASSERT_FALSE(decoded.ok()) << test_case.expect_in_message;
    EXPECT_NE(decoded.error().message.find(test_case.expect_in_message), std::string::npos)
        << decoded.error().message;
  }
}

TEST(TensorCodec, EncodeRejectsDimensionsBeyondInt32) {
  const Tensor zero_size(DType::INT8, {0, 3000000000LL}, "");
  EXPECT_THROW((void)encode_tensor(zero_size), std::invalid_argument);
}

TEST(TensorCodec, AbsentTensorFollowsTheLegacyClientRule) {
  EXPECT_TRUE(is_absent_tensor(node_service::Tensor()));
  EXPECT_TRUE(is_absent_tensor(message("", {0}, "float32")));
  EXPECT_TRUE(is_absent_tensor(message("\x01"s, {}, "int8")));
  EXPECT_TRUE(is_absent_tensor(message("\x01"s, {1}, "")));
  EXPECT_FALSE(is_absent_tensor(message("\x01"s, {1}, "int8")));
}

TEST(InferenceStateCodec, RoundTrip) {
  InferenceState state;
  state.tensors.emplace("x_t_prev", Tensor::from_values<float>({2}, std::vector<float>{0.5F, -1.0F}));
  state.tensor_lists["residual"] = {Tensor::from_values<std::int8_t>({1}, std::vector<std::int8_t>{3}),
                                    Tensor::from_values<std::int8_t>({2}, std::vector<std::int8_t>{4, 5})};
  state.other_data = {{"step", 3}, {"total_steps", 50}, {"is_finished", false}, {"image", nullptr}};
  const auto encoded = encode_inference_state(state);
  EXPECT_EQ(encoded.tensor_data().at("x_t_prev").dtype(), "float32");
  EXPECT_EQ(encoded.tensor_list_data().at("residual").tensors_size(), 2);
  EXPECT_EQ(nlohmann::json::parse(encoded.other_data_json()), state.other_data);
  const auto decoded = decode_inference_state(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, state);
}

TEST(InferenceStateCodec, EmptyStateOmitsOtherDataAndAbsentEqualsEmpty) {
  const auto encoded = encode_inference_state(InferenceState{});
  EXPECT_EQ(encoded.SerializeAsString(), "");
  const auto decoded = decode_inference_state(node_service::InferenceState());
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
  EXPECT_TRUE(decoded->other_data.is_object());
}

TEST(InferenceStateCodec, NonAsciiOtherDataIsEscapedLikePython) {
  InferenceState state;
  state.other_data = {{"k", "\xc3\xa9"}};  // "é"
  EXPECT_EQ(encode_inference_state(state).other_data_json(), R"({"k":"\u00e9"})");
}

TEST(InferenceStateCodec, MalformedStatesAreErrors) {
  node_service::InferenceState bad_json;
  bad_json.set_other_data_json("{\"step\": ");
  EXPECT_FALSE(decode_inference_state(bad_json).ok());

  node_service::InferenceState not_object;
  not_object.set_other_data_json("[1, 2]");
  EXPECT_FALSE(decode_inference_state(not_object).ok());

  node_service::InferenceState nan;
  nan.set_other_data_json("{\"x\": NaN}");
  EXPECT_FALSE(decode_inference_state(nan).ok());

  node_service::InferenceState deep;
  deep.set_other_data_json("{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  EXPECT_FALSE(decode_inference_state(deep).ok());

  node_service::InferenceState bad_tensor;
  (*bad_tensor.mutable_tensor_data())["mask"] = message("\x01"s, {2}, "int8");
  const auto decoded = decode_inference_state(bad_tensor);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("mask"), std::string::npos);

  node_service::InferenceState bad_list;
  *(*bad_list.mutable_tensor_list_data())["l"].add_tensors() = message("", {1}, "nope");
  EXPECT_FALSE(decode_inference_state(bad_list).ok());
}

TEST(InferenceStateCodec, EncodeRequiresAnObject) {
  InferenceState state;
  state.other_data = nlohmann::json::array();
  EXPECT_THROW((void)encode_inference_state(state), std::invalid_argument);
}

}  // namespace
}  // namespace exo::net
