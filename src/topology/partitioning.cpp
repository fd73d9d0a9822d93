#include "topology/partitioning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace exo::topology {

double round_to_5_decimals(double value) {
  // glibc's printf rounds the exact binary value correctly (ties to even), as CPython's round() does;
  // strtod reads the decimal back to the nearest double, as CPython's float() does.
  char text[400];  // enough for "%.5f" of any finite double (at most 309 integer digits)
  if (!std::isfinite(value)) return value;
  std::snprintf(text, sizeof text, "%.5f", value);
  return std::strtod(text, nullptr);
}

std::vector<Partition> partition_by_memory(const Topology& topology) {
  struct Entry {
    std::string node_id;
    std::int64_t memory_mb;
  };
  std::vector<Entry> entries;
  entries.reserve(topology.nodes().size());
  std::int64_t total = 0;
  for (const auto& [node_id, capabilities] : topology.nodes()) {
    const std::int64_t memory = std::max<std::int64_t>(capabilities.memory_mb, 0);
    entries.push_back(Entry{node_id, memory});
    total += memory;
  }
  if (total == 0) {  // legacy: ZeroDivisionError; here: equal weights
    for (auto& entry : entries) entry.memory_mb = 1;
    total = static_cast<std::int64_t>(entries.size());
  }
  // Python sorts by the tuple (memory, node_id) with reverse=True; std::string compares bytes, which
  // for UTF-8 is code-point order, as Python's str comparison is.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.memory_mb != b.memory_mb) return a.memory_mb > b.memory_mb;
    return a.node_id > b.node_id;
  });

  std::vector<Partition> partitions;
  partitions.reserve(entries.size());
  double start = 0.0;
  for (auto& entry : entries) {
    const double end =
        round_to_5_decimals(start + static_cast<double>(entry.memory_mb) / static_cast<double>(total));
    partitions.push_back(Partition{std::move(entry.node_id), start, end});
    start = end;
  }
  return partitions;
}

std::vector<NodeShard> assign_shards(const std::vector<Partition>& partitions, std::int32_t n_layers,
                                     const std::string& model_id) {
  if (n_layers < 1) throw std::invalid_argument("assign_shards: n_layers must be >= 1");
  if (model_id.empty()) throw std::invalid_argument("assign_shards: empty model id");
  for (const auto& partition : partitions) {
    if (!std::isfinite(partition.start) || !std::isfinite(partition.end) || partition.start < 0.0 ||
        partition.end < partition.start || partition.end > 2.0) {
      throw std::invalid_argument("assign_shards: partition of '" + partition.node_id +
                                  "' is not within [0, 2]");
    }
  }

  std::vector<NodeShard> ring;
  const auto layers = static_cast<double>(n_layers);
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    // Python int() of a non-negative double truncates toward zero, as the casts below do.
    const auto start_layer = static_cast<std::int64_t>(partitions[i].start * layers);
    std::int64_t end_layer = static_cast<std::int64_t>(partitions[i].end * layers) - 1;
    if (i + 1 == partitions.size()) end_layer = n_layers - 1;
    // Accumulated rounding can push a bound past 1.0; legacy would then emit layers >= n_layers.
    // Clamping keeps every shard inside the model (a start past the end makes the range empty).
    end_layer = std::min<std::int64_t>(end_layer, n_layers - 1);
    if (start_layer <= end_layer) {
      ring.push_back(NodeShard{partitions[i].node_id, Shard{model_id, static_cast<std::int32_t>(start_layer),
                                                            static_cast<std::int32_t>(end_layer), n_layers}});
    }
  }
  if (!ring.empty() && ring.back().shard.end_layer < n_layers - 1) ring.back().shard.end_layer = n_layers - 1;
  return ring;
}

std::vector<Shard> map_partitions_to_shards(const std::vector<Partition>& partitions, std::int32_t n_layers,
                                            const std::string& model_id) {
  std::vector<Shard> shards;
  for (auto& node_shard : assign_shards(partitions, n_layers, model_id))
    shards.push_back(std::move(node_shard.shard));
  return shards;
}

std::optional<Shard> find_shard(const std::vector<NodeShard>& ring, std::string_view node_id) {
  const auto it = std::find_if(ring.begin(), ring.end(),
                               [&](const NodeShard& entry) { return entry.node_id == node_id; });
  if (it == ring.end()) return std::nullopt;
  return it->shard;
}

}  // namespace exo::topology
