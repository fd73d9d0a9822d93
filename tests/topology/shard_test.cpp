#include "topology/shard.h"

#include <gtest/gtest.h>

namespace exo::topology {
namespace {

TEST(Shard, InclusiveEndAndFirstLastFlags) {
  const Shard first{"llama-3.1-8b", 0, 15, 32};
  const Shard last{"llama-3.1-8b", 26, 31, 32};
  EXPECT_TRUE(first.is_first_layer());
  EXPECT_FALSE(first.is_last_layer());
  EXPECT_EQ(first.layer_count(), 16);
  EXPECT_FALSE(last.is_first_layer());
  EXPECT_TRUE(last.is_last_layer());
  EXPECT_EQ(last.layer_count(), 6);
  const Shard whole{"m", 0, 31, 32};
  EXPECT_TRUE(whole.is_first_layer() && whole.is_last_layer());
}

TEST(Shard, WellFormedness) {
  EXPECT_TRUE((Shard{"m", 0, 0, 32}.is_well_formed()));  // the base shard of a request
  EXPECT_TRUE((Shard{"m", 31, 31, 32}.is_well_formed()));
  EXPECT_FALSE((Shard{"", 0, 0, 32}.is_well_formed()));
  EXPECT_FALSE((Shard{"m", 5, 4, 32}.is_well_formed()));
  EXPECT_FALSE((Shard{"m", 0, 32, 32}.is_well_formed()));
  EXPECT_FALSE((Shard{"m", -1, 3, 32}.is_well_formed()));
  EXPECT_FALSE((Shard{"m", 0, 0, 0}.is_well_formed()));
}

TEST(Shard, OverlapRequiresSameModelAndACommonLayer) {
  const Shard a{"m", 0, 10, 32};
  EXPECT_TRUE(a.overlaps(Shard{"m", 10, 20, 32}));
  EXPECT_FALSE(a.overlaps(Shard{"m", 11, 20, 32}));
  EXPECT_FALSE(a.overlaps(Shard{"other", 0, 10, 32}));
}

TEST(Shard, JsonHasLegacyKeys) {
  const auto json = shard_to_json(Shard{"llama-3.1-8b", 16, 25, 32});
  EXPECT_EQ(json, nlohmann::json::parse(
                      R"({"model_id": "llama-3.1-8b", "start_layer": 16, "end_layer": 25, "n_layers": 32})"));
  auto parsed = shard_from_json(json);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, (Shard{"llama-3.1-8b", 16, 25, 32}));
}

TEST(Shard, JsonRejectsMalformedInput) {
  EXPECT_FALSE(shard_from_json(nlohmann::json::array()).ok());
  EXPECT_FALSE(
      shard_from_json(nlohmann::json::parse(R"({"model_id": "m", "start_layer": 0, "end_layer": 1})")).ok());
  EXPECT_FALSE(shard_from_json(nlohmann::json::parse(
                                   R"({"model_id": 7, "start_layer": 0, "end_layer": 1, "n_layers": 2})"))
                   .ok());
  EXPECT_FALSE(shard_from_json(nlohmann::json::parse(
                                   R"({"model_id": "m", "start_layer": 0.5, "end_layer": 1, "n_layers": 2})"))
                   .ok());
  EXPECT_FALSE(
      shard_from_json(nlohmann::json::parse(
                          R"({"model_id": "m", "start_layer": 0, "end_layer": 1, "n_layers": 4294967296})"))
          .ok());
  const auto inverted = shard_from_json(
      nlohmann::json::parse(R"({"model_id": "m", "start_layer": 3, "end_layer": 1, "n_layers": 4})"));
  ASSERT_FALSE(inverted.ok());
  EXPECT_NE(inverted.error().message.find("layer range"), std::string::npos);
}

}  // namespace
}  // namespace exo::topology
