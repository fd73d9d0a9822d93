#include "net/proto_convert.h"

#include <cmath>
#include <string>

#include "topology/json_fields.h"

namespace exo::net {
namespace {

bool is_valid_tflops(double value) {
  return std::isfinite(value) && value >= 0.0 && value <= topology::kMaxPlausibleTflops;
}

bool is_valid_id(const std::string& id) {
  return !id.empty() && id.size() <= topology::kMaxJsonStringBytes;
}

}  // namespace

node_service::Shard shard_to_proto(const topology::Shard& shard) {
  node_service::Shard message;
  message.set_model_id(shard.model_id);
  message.set_start_layer(shard.start_layer);
  message.set_end_layer(shard.end_layer);
  message.set_n_layers(shard.n_layers);
  return message;
}

Result<topology::Shard> shard_from_proto(const node_service::Shard& message) {
  if (message.model_id().size() > topology::kMaxJsonStringBytes) return Error{"shard: model_id too long"};
  topology::Shard shard{message.model_id(), message.start_layer(), message.end_layer(), message.n_layers()};
  if (!shard.is_well_formed()) {
    return Error{
        "shard: not a valid layer range (need a model id and 0 <= start_layer <= end_layer < n_layers)"};
  }
  return shard;
}

node_service::DeviceCapabilities device_capabilities_to_proto(
    const topology::DeviceCapabilities& capabilities) {
  node_service::DeviceCapabilities message;
  message.set_model(capabilities.model);
  message.set_chip(capabilities.chip);
  message.set_memory(capabilities.memory_mb);
  auto* flops = message.mutable_flops();
  flops->set_fp32(capabilities.flops.fp32);
  flops->set_fp16(capabilities.flops.fp16);
  flops->set_int8(capabilities.flops.int8);
  return message;
}

Result<topology::DeviceCapabilities> device_capabilities_from_proto(
    const node_service::DeviceCapabilities& message) {
  if (message.model().size() > topology::kMaxJsonStringBytes ||
      message.chip().size() > topology::kMaxJsonStringBytes) {
    return Error{"device_capabilities: model or chip too long"};
  }
  if (message.memory() < 0) return Error{"device_capabilities: negative memory"};
  const auto& flops = message.flops();
  if (!is_valid_tflops(flops.fp32()) || !is_valid_tflops(flops.fp16()) || !is_valid_tflops(flops.int8())) {
    return Error{"device_capabilities: flops must be finite numbers in range"};
  }
  return topology::DeviceCapabilities{message.model(), message.chip(), message.memory(),
                                      topology::DeviceFlops{flops.fp32(), flops.fp16(), flops.int8()}};
}

node_service::Topology topology_to_proto(const topology::Topology& topology) {
  node_service::Topology message;
  auto& nodes = *message.mutable_nodes();
  for (const auto& [node_id, capabilities] : topology.nodes())
    nodes[node_id] = device_capabilities_to_proto(capabilities);
  auto& graph = *message.mutable_peer_graph();
  for (const auto& [from_id, outgoing] : topology.peer_graph()) {
    auto& connections = graph[from_id];
    for (const auto& [to_id, connection] : outgoing) {
      auto* encoded = connections.add_connections();
      encoded->set_to_id(to_id);
      if (connection.description) encoded->set_description(*connection.description);
    }
  }
  return message;
}

Result<topology::Topology> topology_from_proto(const node_service::Topology& message) {
  if (static_cast<std::size_t>(message.nodes_size()) > topology::kMaxTopologyNodes) {
    return Error{"topology: too many nodes"};
  }
  topology::Topology topology;
  for (const auto& [node_id, encoded] : message.nodes()) {
    if (!is_valid_id(node_id)) return Error{"topology: invalid node id"};
    auto capabilities = device_capabilities_from_proto(encoded);
    if (!capabilities) return Error{"topology: node '" + node_id + "': " + capabilities.error().message};
    topology.update_node(node_id, std::move(capabilities).value());
  }
  std::size_t edge_count = 0;
  for (const auto& [from_id, connections] : message.peer_graph()) {
    if (!is_valid_id(from_id)) return Error{"topology: invalid peer_graph key"};
    edge_count += static_cast<std::size_t>(connections.connections_size());
    if (edge_count > topology::kMaxTopologyEdges) return Error{"topology: too many edges"};
    for (const auto& connection : connections.connections()) {
      if (!is_valid_id(connection.to_id())) return Error{"topology: invalid to_id"};
      if (connection.description().size() > topology::kMaxJsonStringBytes) {
        return Error{"topology: description too long"};
      }
      std::optional<std::string> description;
      if (connection.has_description()) description = connection.description();
      topology.add_edge(from_id, connection.to_id(), std::move(description));
    }
  }
  return topology;
}

}  // namespace exo::net
