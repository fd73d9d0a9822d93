#include "node/request_context.h"

#include <gtest/gtest.h>

namespace exo::node {
namespace {

topology::Topology three_nodes() {
  topology::Topology t;
  topology::DeviceCapabilities caps;
  caps.memory_mb = 16384;
  t.update_node("node-a", caps);
  caps.memory_mb = 24576;
  t.update_node("node-b", caps);
  caps.memory_mb = 8192;
  t.update_node("node-c", caps);
  return t;
}

TEST(RingPlanTest, FollowsTheLegacyWorkedExample) {
  auto plan = RingPlan::from_topology(three_nodes(), "llama-3.1-8b", 32);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->hops.size(), 3U);
  EXPECT_EQ(plan->hops[0].node_id, "node-b");
  EXPECT_EQ(plan->hops[0].shard, (topology::Shard{"llama-3.1-8b", 0, 15, 32}));
  EXPECT_EQ(plan->hops[1].node_id, "node-a");
  EXPECT_EQ(plan->hops[1].shard, (topology::Shard{"llama-3.1-8b", 16, 25, 32}));
  EXPECT_EQ(plan->hops[2].node_id, "node-c");
  EXPECT_EQ(plan->hops[2].shard, (topology::Shard{"llama-3.1-8b", 26, 31, 32}));
  EXPECT_EQ(plan->index_of("node-a"), 1);
  EXPECT_EQ(plan->index_of("node-x"), -1);
  ASSERT_NE(plan->after(0), nullptr);
  EXPECT_EQ(plan->after(0)->node_id, "node-a");
  EXPECT_EQ(plan->after(2), nullptr);
  EXPECT_EQ(plan->describe(), "node-b[0..15] -> node-a[16..25] -> node-c[26..31]");
}

TEST(RingPlanTest, EmptyTopologyIsAnError) {
  EXPECT_FALSE(RingPlan::from_topology(topology::Topology{}, "dummy", 8));
}

TEST(RingPlanTest, ValidationRejectsGapsOverlapsAndRepeats) {
  using H = topology::NodeShard;
  EXPECT_TRUE(RingPlan::validated({H{"a", {"m", 0, 3, 8}}, H{"b", {"m", 4, 7, 8}}}));
  EXPECT_FALSE(RingPlan::validated({}));
  EXPECT_FALSE(RingPlan::validated({H{"a", {"m", 0, 3, 8}}, H{"b", {"m", 5, 7, 8}}}));  // gap
  EXPECT_FALSE(RingPlan::validated({H{"a", {"m", 0, 4, 8}}, H{"b", {"m", 4, 7, 8}}}));  // overlap
  EXPECT_FALSE(RingPlan::validated({H{"a", {"m", 0, 3, 8}}, H{"a", {"m", 4, 7, 8}}}));  // node twice
  EXPECT_FALSE(RingPlan::validated({H{"a", {"m", 0, 3, 8}}}));                          // layers missing
  EXPECT_FALSE(RingPlan::validated({H{"a", {"m", 0, 3, 8}}, H{"b", {"other", 4, 7, 8}}}));
  EXPECT_FALSE(RingPlan::validated({H{"", {"m", 0, 7, 8}}}));
}

// A context with the plan over three_nodes().
RequestContext context_of_node_a() {
  RequestContext c;
  c.origin_node_id = "node-a";
  c.plan = RingPlan::from_topology(three_nodes(), "dummy", 8).value();
  return c;
}

// `state` carries exactly `c`.
void expect_carries(const net::InferenceState& state, const RequestContext& c) {
  auto back = RequestContext::from_state(state);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, c);
}

TEST(RequestContextTest, RoundTripsThroughInferenceStateAndKeepsOtherEntries) {
  RequestContext c = context_of_node_a();
  c.temperature = 0.7F;
  c.top_p = 0.9F;
  c.seed = 12345678901234ULL;
  c.max_tokens = 42;
  net::InferenceState state;
  state.other_data["image"] = nullptr;
  c.store(state);
  EXPECT_TRUE(state.other_data.contains("image"));
  expect_carries(state, c);
}

TEST(RequestContextTest, SamplingExtensionsTravelOnlyWhenSet) {
  RequestContext c = context_of_node_a();
  net::InferenceState plain;
  c.store(plain);
  for (const char* key : {"top_k", "min_p", "repeat_penalty", "prompt_tail"})
    EXPECT_FALSE(plain.other_data["exo"].contains(key)) << key;
  c.top_k = 40;
  c.min_p = 0.05F;
  c.repeat_penalty = 1.3F;
  c.prompt_tail = {1, 15043, 3186};
  net::InferenceState state;
  c.store(state);
  expect_carries(state, c);
}

TEST(RequestContextTest, AbsentContextMeansALegacySender) {
  net::InferenceState state;
  auto back = RequestContext::from_state(state);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->has_value());
}

TEST(RequestContextTest, MalformedContextsAreRejectedWithTheFieldNamed) {
  RequestContext c = context_of_node_a();
  net::InferenceState good;
  c.store(good);
  const auto expect_error = [&](const char* field, const nlohmann::json& value, const char* expected) {
    net::InferenceState state = good;
    state.other_data["exo"][field] = value;
    auto back = RequestContext::from_state(state);
    ASSERT_FALSE(back) << field;
    EXPECT_NE(back.error().message.find(expected), std::string::npos) << back.error().message;
  };
  expect_error("origin", 5, "origin");
  expect_error("temperature", -1, "temperature");
  expect_error("temperature", "hot", "temperature");
  expect_error("top_p", 1.5, "top_p");
  expect_error("max_tokens", 0, "max_tokens");
  expect_error("max_tokens", 2.5, "max_tokens");
  expect_error("seed", -3, "seed");
  expect_error("top_k", -1, "top_k");
  expect_error("top_k", 1.5, "top_k");
  expect_error("min_p", 2, "min_p");
  expect_error("repeat_penalty", 0, "repeat_penalty");
  expect_error("repeat_penalty", 1.2, "prompt_tail");  // a penalty needs the prompt's tail
  {
    net::InferenceState state = good;
    state.other_data["exo"]["repeat_penalty"] = 1.2;
    state.other_data["exo"]["prompt_tail"] = nlohmann::json::array({1, -2});
    auto back = RequestContext::from_state(state);
    ASSERT_FALSE(back);
    EXPECT_NE(back.error().message.find("prompt_tail"), std::string::npos);
    state.other_data["exo"]["prompt_tail"] = std::vector<int>(65, 1);
    EXPECT_FALSE(RequestContext::from_state(state));
  }
  expect_error("plan", "x", "plan");
  expect_error("plan", nlohmann::json::array({{{"node_id", "a"}}}), "plan");
  expect_error("plan", nlohmann::json::array({{{"node_id", "a"}, {"shard", {{"model_id", "dummy"}}}}}),
               "plan");
  net::InferenceState not_object;
  not_object.other_data["exo"] = 3;
  EXPECT_FALSE(RequestContext::from_state(not_object));
}

}  // namespace
}  // namespace exo::node
