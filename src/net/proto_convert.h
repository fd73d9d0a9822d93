// Conversions between the topology types (Shard, DeviceCapabilities, Topology) and their
// node_service protobuf messages, as legacy exo's gRPC client and server perform them.
//
// Contract: stateless functions, thread-safe. to_proto never fails for values that satisfy the
// types' own invariants. from_proto takes peer-supplied messages and returns Result, applying the
// same validation as the JSON parsers (string lengths, non-negative memory, finite FLOPS, node and
// edge limits, well-formed shards). The proto Topology has no active_node_id; it is not carried.
#pragma once

#include "net/node_service.pb.h"
#include "topology/device_capabilities.h"
#include "topology/result.h"
#include "topology/shard.h"
#include "topology/topology.h"

namespace exo::net {

node_service::Shard shard_to_proto(const topology::Shard& shard);
// Requires a well-formed shard (0 <= start_layer <= end_layer < n_layers, non-empty model id).
Result<topology::Shard> shard_from_proto(const node_service::Shard& message);

node_service::DeviceCapabilities device_capabilities_to_proto(
    const topology::DeviceCapabilities& capabilities);
Result<topology::DeviceCapabilities> device_capabilities_from_proto(
    const node_service::DeviceCapabilities& message);

// nodes -> map nodes; each edge list -> PeerConnections{to_id, description (set only when present)}.
node_service::Topology topology_to_proto(const topology::Topology& topology);
// Legacy's client: every node, then add_edge(from key, to_id, description) for each connection.
Result<topology::Topology> topology_from_proto(const node_service::Topology& message);

}  // namespace exo::net
