// Ring partitioning of a model's layers across the nodes of a topology (legacy exo's
// RingMemoryWeightedPartitioningStrategy and map_partitions_to_shards), plus the assignment rule
// that keeps a node with a sub-layer share out of the ring instead of breaking the cluster.
//
// Contract: pure functions of their arguments, thread-safe, deterministic: every node that holds the
// same node set and memory figures computes bit-for-bit the same partitions and shards, and those
// equal legacy exo's. Preconditions of our own callers (n_layers >= 1, a non-empty model id,
// partition bounds finite with 0 <= start <= end <= 2) are checked; a violation throws
// std::invalid_argument. partition_by_memory's output always satisfies them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/shard.h"
#include "topology/topology.h"

namespace exo::topology {

// The node's share [start, end) of the unit interval.
struct Partition {
  std::string node_id;
  double start = 0.0;
  double end = 0.0;

  bool operator==(const Partition&) const = default;
};

// Python's round(value, 5) on a double: the decimal nearest to the exact binary value, ties to even.
double round_to_5_decimals(double value);

// Legacy RingMemoryWeightedPartitioningStrategy.partition: nodes sorted by (memory, node_id)
// descending; end = round(start + memory / total, 5); the next start is the previous end.
// Differs from legacy in one case only: when the total memory is 0 (every node reports unknown
// memory) legacy raises ZeroDivisionError; here every node gets weight 1 (an equal split).
// An empty topology yields no partitions.
std::vector<Partition> partition_by_memory(const Topology& topology);

// Legacy map_partitions_to_shards, exactly: start_layer = int(start * n_layers),
// end_layer = int(end * n_layers) - 1 (n_layers - 1 for the last partition), empty ranges DROPPED,
// and the last shard extended to n_layers - 1. Because of the dropping, shards[i] is NOT always the
// shard of partitions[i]; use assign_shards to learn which node holds which shard.
std::vector<Shard> map_partitions_to_shards(const std::vector<Partition>& partitions, std::int32_t n_layers,
                                            const std::string& model_id);

struct NodeShard {
  std::string node_id;
  Shard shard;

  bool operator==(const NodeShard&) const = default;
};

// Our assignment rule (docs/wire-formats.md, "Empty shards"): the ring is the list of
// (node, shard) pairs in partition order, containing only partitions whose layer range is
// non-empty. The shards themselves are exactly map_partitions_to_shards' list, in the same order;
// a node whose share is below one layer is simply not in the ring (it holds no layers, forwards
// prompts to the first ring member and still serves its API). Legacy instead pairs shards[i] with
// partitions[i], so after a dropped shard later nodes take a neighbour's layers and the last one
// crashes with IndexError. When no shard is dropped the two rules give identical pairs.
// One more guard, in both functions: a layer bound past the model (possible only when accumulated
// rounding pushes a partition end above 1.0) is clamped to n_layers - 1, where legacy would emit
// layers that do not exist.
std::vector<NodeShard> assign_shards(const std::vector<Partition>& partitions, std::int32_t n_layers,
                                     const std::string& model_id);

// The shard node_id holds in `ring`, or nullopt when it holds none.
std::optional<Shard> find_shard(const std::vector<NodeShard>& ring, std::string_view node_id);

}  // namespace exo::topology
