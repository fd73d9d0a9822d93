#include "topology/partitioning.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace exo::topology {
namespace {

Topology topology_with_memory(const std::vector<std::pair<std::string, std::int32_t>>& nodes) {
  Topology topology;
  for (const auto& [id, memory] : nodes) topology.update_node(id, DeviceCapabilities{"m", "c", memory, {}});
  return topology;
}

Topology worked_example() {  // docs/wire-formats.md §5.4, worked example
  return topology_with_memory({{"node-a", 16384}, {"node-b", 24576}, {"node-c", 8192}});
}

struct LayerRange {
  std::int32_t start;
  std::int32_t end;
};

TEST(RoundTo5Decimals, MatchesPythonRound) {
  // Values from Python: round(x, 5).
  EXPECT_EQ(round_to_5_decimals(0.5), 0.5);
  EXPECT_EQ(round_to_5_decimals(0.5 + 1.0 / 3.0), 0.83333);
  EXPECT_EQ(round_to_5_decimals(0.83333 + 1.0 / 6.0), 1.0);
  EXPECT_EQ(round_to_5_decimals(128.0 / 448.0), 0.28571);
  EXPECT_EQ(round_to_5_decimals(2.0 / 7.0 + 1.0 / 7.0), 0.42857);
  // Halfway in decimal but not in binary: the double nearest 0.000015 lies slightly above the tie,
  // the one nearest 0.000035 slightly below (Python: round(1.5e-05, 5) == 2e-05, round(3.5e-05, 5) == 3e-05).
  EXPECT_EQ(round_to_5_decimals(0.000015), 0.00002);
  EXPECT_EQ(round_to_5_decimals(0.000035), 0.00003);
  // Exact binary ties round half to even: 2^-6 = 0.015625 -> 0.01562.
  EXPECT_EQ(round_to_5_decimals(0.015625), 0.01562);
  EXPECT_EQ(round_to_5_decimals(0.046875), 0.04688);  // 3 * 2^-6: tie, to even
}

TEST(PartitionByMemory, WorkedExampleOrderAndBounds) {
  const auto partitions = partition_by_memory(worked_example());
  ASSERT_EQ(partitions.size(), 3U);
  EXPECT_EQ(partitions[0], (Partition{"node-b", 0.0, 0.5}));
  EXPECT_EQ(partitions[1], (Partition{"node-a", 0.5, 0.83333}));
  EXPECT_EQ(partitions[2], (Partition{"node-c", 0.83333, 1.0}));
}

TEST(PartitionByMemory, EqualMemoryTiesBreakByLargerNodeIdFirst) {
  const auto partitions = partition_by_memory(topology_with_memory({{"a", 100}, {"c", 100}, {"b", 100}}));
  ASSERT_EQ(partitions.size(), 3U);
  EXPECT_EQ(partitions[0].node_id, "c");
  EXPECT_EQ(partitions[1].node_id, "b");
  EXPECT_EQ(partitions[2].node_id, "a");
  EXPECT_EQ(partitions[0].end, 0.33333);
  EXPECT_EQ(partitions[1].end, 0.66666);  // round(0.33333 + 0.333333..., 5) = round(0.6666633..., 5)
  EXPECT_EQ(partitions[2].end, 0.99999);  // round(0.66666 + 0.333333..., 5) = round(0.9999933..., 5)
}

TEST(PartitionByMemory, LegacyRoundingTestCase) {
  // test_ring_memory_weighted_partitioning_strategy.py: 128/192/128 GiB.
  const auto partitions = partition_by_memory(
      topology_with_memory({{"node1", 128 * 1024}, {"node2", 192 * 1024}, {"node3", 128 * 1024}}));
  ASSERT_EQ(partitions.size(), 3U);
  EXPECT_EQ(partitions[0], (Partition{"node2", 0.0, 0.42857}));
  EXPECT_EQ(partitions[1], (Partition{"node3", 0.42857, 0.71428}));
  EXPECT_EQ(partitions[2], (Partition{"node1", 0.71428, 0.99999}));
}

TEST(PartitionByMemory, ZeroTotalMemorySplitsEqually) {
  const auto partitions = partition_by_memory(topology_with_memory({{"x", 0}, {"y", 0}}));
  ASSERT_EQ(partitions.size(), 2U);
  EXPECT_EQ(partitions[0], (Partition{"y", 0.0, 0.5}));
  EXPECT_EQ(partitions[1], (Partition{"x", 0.5, 1.0}));
}

TEST(PartitionByMemory, EmptyTopologyGivesNoPartitions) {
  EXPECT_TRUE(partition_by_memory(Topology{}).empty());
}

class WorkedExampleShards
    : public ::testing::TestWithParam<std::tuple<int, LayerRange, LayerRange, LayerRange>> {};

TEST_P(WorkedExampleShards, MatchTheDocumentedTable) {
  const auto& [n_layers, b, a, c] = GetParam();
  const auto partitions = partition_by_memory(worked_example());
  const auto shards = map_partitions_to_shards(partitions, n_layers, "llama");
  ASSERT_EQ(shards.size(), 3U);
  EXPECT_EQ(shards[0], (Shard{"llama", b.start, b.end, n_layers}));
  EXPECT_EQ(shards[1], (Shard{"llama", a.start, a.end, n_layers}));
  EXPECT_EQ(shards[2], (Shard{"llama", c.start, c.end, n_layers}));
  const auto ring = assign_shards(partitions, n_layers, "llama");
  ASSERT_EQ(ring.size(), 3U);
  EXPECT_EQ(ring[0], (NodeShard{"node-b", shards[0]}));
  EXPECT_EQ(ring[1], (NodeShard{"node-a", shards[1]}));
  EXPECT_EQ(ring[2], (NodeShard{"node-c", shards[2]}));
  EXPECT_TRUE(shards[0].is_first_layer());
  EXPECT_TRUE(shards[2].is_last_layer());
}

INSTANTIATE_TEST_SUITE_P(
    WorkedExample, WorkedExampleShards,
    ::testing::Values(std::make_tuple(16, LayerRange{0, 7}, LayerRange{8, 12}, LayerRange{13, 15}),
                      std::make_tuple(28, LayerRange{0, 13}, LayerRange{14, 22}, LayerRange{23, 27}),
                      std::make_tuple(32, LayerRange{0, 15}, LayerRange{16, 25}, LayerRange{26, 31}),
                      std::make_tuple(80, LayerRange{0, 39}, LayerRange{40, 65}, LayerRange{66, 79})),
    [](const auto& test_info) { return std::to_string(std::get<0>(test_info.param)) + "Layers"; });

TEST(MapPartitionsToShards, LegacyRoundingCaseExtendsLastShard) {
  const auto partitions = partition_by_memory(
      topology_with_memory({{"node1", 128 * 1024}, {"node2", 192 * 1024}, {"node3", 128 * 1024}}));
  const auto shards = map_partitions_to_shards(partitions, 32, "m");
  ASSERT_EQ(shards.size(), 3U);
  EXPECT_EQ(shards[0], (Shard{"m", 0, 12, 32}));   // int(0.42857*32)-1 = 13-1
  EXPECT_EQ(shards[1], (Shard{"m", 13, 21, 32}));  // int(0.71428*32)-1 = 22-1
  EXPECT_EQ(shards[2], (Shard{"m", 22, 31, 32}));  // last partition ends at 0.99999 -> n_layers-1
}

TEST(MapPartitionsToShards, SubLayerShareIsDroppedLikeLegacy) {
  // docs/wire-formats.md §5.5: memory {a: 100000, b: 100, c: 100}, 16 layers.
  const auto partitions = partition_by_memory(topology_with_memory({{"a", 100000}, {"b", 100}, {"c", 100}}));
  ASSERT_EQ(partitions.size(), 3U);
  EXPECT_EQ(partitions[0], (Partition{"a", 0.0, 0.998}));
  EXPECT_EQ(partitions[1], (Partition{"c", 0.998, 0.999}));
  EXPECT_EQ(partitions[2], (Partition{"b", 0.999, 1.0}));
  const auto shards = map_partitions_to_shards(partitions, 16, "m");
  ASSERT_EQ(shards.size(), 2U);  // legacy list: c's range [15, 14] is empty and dropped
  EXPECT_EQ(shards[0], (Shard{"m", 0, 14, 16}));
  EXPECT_EQ(shards[1], (Shard{"m", 15, 15, 16}));
}

TEST(AssignShards, NodeWithSubLayerShareIsLeftOutOfTheRing) {
  const auto partitions = partition_by_memory(topology_with_memory({{"a", 100000}, {"b", 100}, {"c", 100}}));
  const auto ring = assign_shards(partitions, 16, "m");
  ASSERT_EQ(ring.size(), 2U);
  EXPECT_EQ(ring[0], (NodeShard{"a", Shard{"m", 0, 14, 16}}));
  EXPECT_EQ(ring[1],
            (NodeShard{"b", Shard{"m", 15, 15, 16}}));  // b keeps its own layers, not a shifted index
  EXPECT_EQ(find_shard(ring, "a"), (Shard{"m", 0, 14, 16}));
  EXPECT_EQ(find_shard(ring, "b"), (Shard{"m", 15, 15, 16}));
  EXPECT_EQ(find_shard(ring, "c"), std::nullopt);
}

TEST(AssignShards, EveryLayerIsCoveredExactlyOnceWhenNodesOutnumberLayers) {
  // 5 equal nodes, 2 layers: partitions end at .2 .4 .6 .8 1.0 -> layer ranges [0,-1] [0,-1]... computed:
  // e (0,0.2): 0..-1 empty; d (0.2,0.4): 0..-1 empty; c (0.4,0.6): 0..0; b (0.6,0.8): 1..0 empty;
  // a (0.8,1.0, last): 1..1.
  const auto partitions =
      partition_by_memory(topology_with_memory({{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}));
  const auto ring = assign_shards(partitions, 2, "m");
  ASSERT_EQ(ring.size(), 2U);
  EXPECT_EQ(ring[0], (NodeShard{"c", Shard{"m", 0, 0, 2}}));
  EXPECT_EQ(ring[1], (NodeShard{"a", Shard{"m", 1, 1, 2}}));
}

TEST(AssignShards, LastPartitionDroppedExtendsThePreviousShard) {
  // Hand-built partitions: the last one starts at 1.0, so its range [n, n-1] is empty and dropped;
  // the previous shard (ending at int(0.99*10)-1 = 8) is extended to 9.
  const std::vector<Partition> partitions{{"x", 0.0, 0.5}, {"y", 0.5, 0.99}, {"z", 1.0, 1.0}};
  const auto ring = assign_shards(partitions, 10, "m");
  ASSERT_EQ(ring.size(), 2U);
  EXPECT_EQ(ring[0], (NodeShard{"x", Shard{"m", 0, 4, 10}}));
  EXPECT_EQ(ring[1], (NodeShard{"y", Shard{"m", 5, 9, 10}}));
}

TEST(AssignShards, BoundsPastOneAreClampedInsideTheModel) {
  const std::vector<Partition> partitions{
      {"x", 0.0, 1.00001}, {"y", 1.00001, 1.00002}, {"z", 1.00002, 1.00002}};
  const auto ring = assign_shards(partitions, 100000, "m");
  ASSERT_EQ(ring.size(), 1U);
  EXPECT_EQ(ring[0], (NodeShard{"x", Shard{"m", 0, 99999, 100000}}));
}

TEST(AssignShards, RejectsBadArguments) {
  const std::vector<Partition> good{{"x", 0.0, 1.0}};
  EXPECT_THROW((void)assign_shards(good, 0, "m"), std::invalid_argument);
  EXPECT_THROW((void)assign_shards(good, 4, ""), std::invalid_argument);
  EXPECT_THROW((void)assign_shards({{"x", 0.5, 0.25}}, 4, "m"), std::invalid_argument);
  EXPECT_THROW((void)assign_shards({{"x", -0.1, 1.0}}, 4, "m"), std::invalid_argument);
  EXPECT_THROW((void)assign_shards({{"x", 0.0, 1e300}}, 4, "m"), std::invalid_argument);
  EXPECT_THROW((void)map_partitions_to_shards({{"x", 0.0, std::nan("")}}, 4, "m"), std::invalid_argument);
}

TEST(AssignShards, SingleNodeGetsTheWholeModel) {
  const auto ring = assign_shards(partition_by_memory(topology_with_memory({{"solo", 8192}})), 32, "m");
  ASSERT_EQ(ring.size(), 1U);
  EXPECT_EQ(ring[0], (NodeShard{"solo", Shard{"m", 0, 31, 32}}));
}

}  // namespace
}  // namespace exo::topology
