#include "net/proto_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace exo::net {
namespace {

TEST(ProtoConvert, ShardRoundTripAndValidation) {
  const topology::Shard shard{"llama-3.1-8b", 16, 25, 32};
  const auto message = shard_to_proto(shard);
  EXPECT_EQ(message.model_id(), "llama-3.1-8b");
  EXPECT_EQ(message.start_layer(), 16);
  EXPECT_EQ(message.end_layer(), 25);
  EXPECT_EQ(message.n_layers(), 32);
  const auto decoded = shard_from_proto(message);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, shard);

  EXPECT_TRUE(shard_from_proto(shard_to_proto({"m", 0, 0, 32})).ok());  // base shard
  EXPECT_FALSE(shard_from_proto(shard_to_proto({"m", 0, 32, 32})).ok());
  EXPECT_FALSE(shard_from_proto(shard_to_proto({"m", 3, 2, 32})).ok());
  EXPECT_FALSE(shard_from_proto(shard_to_proto({"", 0, 0, 32})).ok());
  EXPECT_FALSE(shard_from_proto(node_service::Shard()).ok());  // n_layers 0
}

TEST(ProtoConvert, DeviceCapabilities) {
  const topology::DeviceCapabilities capabilities{"Linux Box (X)", "X", 65536, {1.5, 3.0, 6.0}};
  const auto message = device_capabilities_to_proto(capabilities);
  EXPECT_EQ(message.memory(), 65536);
  EXPECT_EQ(message.flops().fp16(), 3.0);
  const auto decoded = device_capabilities_from_proto(message);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, capabilities);

  auto negative = message;
  negative.set_memory(-1);
  EXPECT_FALSE(device_capabilities_from_proto(negative).ok());
  auto nan = message;
  nan.mutable_flops()->set_int8(std::nan(""));
  EXPECT_FALSE(device_capabilities_from_proto(nan).ok());
  auto infinite = message;
  infinite.mutable_flops()->set_fp32(std::numeric_limits<double>::infinity());
  EXPECT_FALSE(device_capabilities_from_proto(infinite).ok());
  auto long_chip = message;
  long_chip.set_chip(std::string(5000, 'c'));
  EXPECT_FALSE(device_capabilities_from_proto(long_chip).ok());
}

TEST(ProtoConvert, TopologyRoundTripKeepsDescriptionPresence) {
  topology::Topology topology;
  topology.update_node("a", {"A", "a", 100, {1, 2, 3}});
  topology.update_node("b", {"B", "b", 200, {0, 0, 0}});
  topology.add_edge("a", "b", "Ethernet (eth0)");
  topology.add_edge("b", "a");
  topology.add_edge("b", "c", "");
  const auto message = topology_to_proto(topology);
  ASSERT_EQ(message.nodes_size(), 2);
  const auto& from_b = message.peer_graph().at("b").connections();
  ASSERT_EQ(from_b.size(), 2);
  EXPECT_FALSE(from_b[0].has_description());  // "a": description absent
  EXPECT_TRUE(from_b[1].has_description());   // "c": present but empty
  const auto decoded = topology_from_proto(message);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, topology);
}

TEST(ProtoConvert, TopologyFromLegacyBytes) {
  // nodes {"n": {memory 1}}, peer_graph {"n": [{to_id "p", description "MAN"}]}, built by hand.
  const std::string bytes = std::string("\x0a\x07\x0a\x01n\x12\x02\x18\x01", 9) +
                            std::string("\x12\x0f\x0a\x01n\x12\x0a\x0a\x08\x0a\x01p\x12\x03MAN", 17);
  node_service::Topology message;
  ASSERT_TRUE(message.ParseFromString(bytes));
  const auto decoded = topology_from_proto(message);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_NE(decoded->find_node("n"), nullptr);
  EXPECT_EQ(decoded->find_node("n")->memory_mb, 1);
  const auto edges = decoded->edges_from("n");
  ASSERT_EQ(edges.size(), 1U);
  EXPECT_EQ(edges[0], (topology::PeerConnection{"n", "p", std::string("MAN")}));
}

TEST(ProtoConvert, TopologyRejectsBadPeerInput) {
  node_service::Topology empty_key;
  (*empty_key.mutable_nodes())[""];
  EXPECT_FALSE(topology_from_proto(empty_key).ok());

  node_service::Topology bad_node;
  (*bad_node.mutable_nodes())["n"].set_memory(-5);
  EXPECT_FALSE(topology_from_proto(bad_node).ok());

  node_service::Topology empty_to;
  (*empty_to.mutable_peer_graph())["n"].add_connections();
  EXPECT_FALSE(topology_from_proto(empty_to).ok());

  node_service::Topology too_many;
  for (std::size_t i = 0; i <= topology::kMaxTopologyNodes; ++i)
    (*too_many.mutable_nodes())["n" + std::to_string(i)];
  EXPECT_FALSE(topology_from_proto(too_many).ok());
}

}  // namespace
}  // namespace exo::net
