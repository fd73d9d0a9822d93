#include "topology/topology.h"

#include <gtest/gtest.h>

namespace exo::topology {
namespace {

DeviceCapabilities caps(const std::string& model, std::int32_t memory) {
  return DeviceCapabilities{model, "chip", memory, DeviceFlops{1.0, 2.0, 4.0}};
}

TEST(Topology, UpdateNodeReplacesCapabilities) {
  Topology topology;
  topology.update_node("a", caps("old", 1));
  topology.update_node("a", caps("new", 2));
  ASSERT_NE(topology.find_node("a"), nullptr);
  EXPECT_EQ(topology.find_node("a")->model, "new");
  EXPECT_EQ(topology.find_node("b"), nullptr);
  EXPECT_EQ(topology.nodes().size(), 1U);
}

TEST(Topology, EdgeIdentityIsFromToPairAndFirstDescriptionWins) {
  Topology topology;
  EXPECT_TRUE(topology.add_edge("a", "b", "Ethernet (en7)"));
  EXPECT_FALSE(topology.add_edge("a", "b", "WiFi (en0)"));
  EXPECT_TRUE(topology.add_edge("b", "a"));
  const auto from_a = topology.edges_from("a");
  ASSERT_EQ(from_a.size(), 1U);
  EXPECT_EQ(from_a[0], (PeerConnection{"a", "b", std::string("Ethernet (en7)")}));
  const auto from_b = topology.edges_from("b");
  ASSERT_EQ(from_b.size(), 1U);
  EXPECT_EQ(from_b[0].description, std::nullopt);
  EXPECT_TRUE(topology.edges_from("zzz").empty());
}

TEST(Topology, MergeCopiesOnlyThePeersOwnNodeAndOutgoingEdges) {
  Topology mine;
  mine.update_node("self", caps("self", 1));
  mine.update_node("peer", caps("from discovery", 2));
  mine.add_edge("self", "peer", "Ethernet (eth0)");

  Topology theirs;  // what "peer" reports
  theirs.update_node("peer", caps("self-reported", 3));
  theirs.update_node("far", caps("far", 4));
  theirs.add_edge("peer", "far", "WiFi (wlan0)");
  theirs.add_edge("peer", "self", "Ethernet (eth1)");
  theirs.add_edge("far", "peer", "x");
  theirs.set_active_node_id("far");

  mine.merge("peer", theirs);
  EXPECT_EQ(mine.nodes().size(), 2U);  // "far" contributes no node
  EXPECT_EQ(mine.find_node("far"), nullptr);
  EXPECT_EQ(mine.find_node("peer")->model, "self-reported");  // self-report overwrites discovery
  EXPECT_EQ(mine.edges_from("peer").size(), 2U);
  EXPECT_TRUE(mine.edges_from("far").empty());  // edges of peers of peers are not copied
  EXPECT_EQ(mine.active_node_id(), std::nullopt);
}

TEST(Topology, MergeOfAPeerMissingFromItsOwnTopologyAddsOnlyEdges) {
  Topology mine;
  Topology theirs;
  theirs.add_edge("peer", "x");
  mine.merge("peer", theirs);
  EXPECT_TRUE(mine.nodes().empty());
  EXPECT_EQ(mine.edges_from("peer").size(), 1U);
}

TEST(Topology, JsonMatchesTheLegacyShape) {
  Topology topology;
  topology.update_node("node-a",
                       DeviceCapabilities{"MacBook Pro", "Apple M3 Max", 16384, {14.2, 28.4, 56.8}});
  topology.add_edge("node-a", "node-b", "Ethernet (en7)");
  const auto expected = nlohmann::json::parse(R"json(
    {"nodes": {"node-a": {"model": "MacBook Pro", "chip": "Apple M3 Max", "memory": 16384,
                          "flops": {"fp32": 14.2, "fp16": 28.4, "int8": 56.8}}},
     "peer_graph": {"node-a": [{"from_id": "node-a", "to_id": "node-b", "description": "Ethernet (en7)"}]},
     "active_node_id": null})json");
  EXPECT_EQ(topology.to_json(), expected);

  topology.set_active_node_id("node-a");
  EXPECT_EQ(topology.to_json()["active_node_id"], "node-a");
}

TEST(Topology, JsonRoundTrip) {
  Topology topology;
  topology.update_node("a", caps("A", 100));
  topology.update_node("b", caps("B", 200));
  topology.add_edge("a", "b", "Ethernet (eth0)");
  topology.add_edge("b", "a");
  topology.set_active_node_id("b");
  auto parsed = Topology::from_json(topology.to_json());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, topology);
}

TEST(Topology, FromJsonRejectsMalformedInput) {
  const char* bad_inputs[] = {
      R"([])",
      R"({"nodes": {}})",
      R"({"nodes": [], "peer_graph": {}})",
      R"({"nodes": {"a": {"model": "m"}}, "peer_graph": {}})",
      R"({"nodes": {"": {"model": "m", "chip": "c", "memory": 1, "flops": {"fp32": 0, "fp16": 0, "int8": 0}}},
          "peer_graph": {}})",
      R"({"nodes": {}, "peer_graph": {"a": {}}})",
      R"({"nodes": {}, "peer_graph": {"a": [{"from_id": "b", "to_id": "c"}]}})",
      R"({"nodes": {}, "peer_graph": {"a": [{"from_id": "a", "to_id": ""}]}})",
      R"({"nodes": {}, "peer_graph": {"a": [{"from_id": "a", "to_id": "b", "description": 5}]}})",
      R"({"nodes": {}, "peer_graph": {}, "active_node_id": 5})",
  };
  for (const char* input : bad_inputs) {
    EXPECT_FALSE(Topology::from_json(nlohmann::json::parse(input)).ok()) << input;
  }
}

TEST(Topology, FromJsonEnforcesTheNodeLimit) {
  nlohmann::json json = {{"nodes", nlohmann::json::object()}, {"peer_graph", nlohmann::json::object()}};
  for (std::size_t i = 0; i <= kMaxTopologyNodes; ++i) {
    json["nodes"]["n" + std::to_string(i)] = device_capabilities_to_json(caps("m", 1));
  }
  EXPECT_FALSE(Topology::from_json(json).ok());
}

}  // namespace
}  // namespace exo::topology
