// Topology: the cluster as one node sees it (legacy exo's topology.py): the capabilities of every
// known node, the directed "who discovered whom" edges, and the node currently serving a prompt.
//
// Contract: value type, no internal synchronisation (guard it externally when shared). Invariants:
// at most one edge per (from_id, to_id) pair (a second add_edge for the same pair keeps the first
// description, as legacy's set.add does); nodes and edges iterate in node-id order, so two
// topologies with the same contents serialise identically. Edges may name nodes absent from
// nodes() (legacy allows that too). from_json returns Result for peer-supplied JSON.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "topology/device_capabilities.h"
#include "topology/result.h"

namespace exo::topology {

struct PeerConnection {
  std::string from_id;
  std::string to_id;
  std::optional<std::string> description;  // "Ethernet (en7)", "MAN", "TS", ...

  bool operator==(const PeerConnection&) const = default;
};

class Topology {
 public:
  using NodeMap = std::map<std::string, DeviceCapabilities, std::less<>>;
  // from_id -> (to_id -> connection)
  using EdgeMap = std::map<std::string, std::map<std::string, PeerConnection, std::less<>>, std::less<>>;

  // Inserts or replaces the capabilities of node_id.
  void update_node(const std::string& node_id, DeviceCapabilities capabilities);
  // nullptr when the node is unknown.
  const DeviceCapabilities* find_node(std::string_view node_id) const;
  const NodeMap& nodes() const noexcept { return nodes_; }

  // Adds from_id -> to_id; returns false (and changes nothing) if that pair already exists.
  bool add_edge(const std::string& from_id, const std::string& to_id,
                std::optional<std::string> description = std::nullopt);
  const EdgeMap& peer_graph() const noexcept { return edges_; }
  // Edges leaving from_id, in to_id order (empty when none).
  std::vector<PeerConnection> edges_from(std::string_view from_id) const;

  const std::optional<std::string>& active_node_id() const noexcept { return active_node_id_; }
  void set_active_node_id(std::optional<std::string> node_id) { active_node_id_ = std::move(node_id); }

  // Legacy Topology.merge(peer_node_id, other): copies only other's entry for peer_node_id (if any)
  // and other's edges whose from_id is peer_node_id. Peers of peers contribute edges, never nodes.
  // active_node_id is left alone.
  void merge(std::string_view peer_node_id, const Topology& other);

  // {"nodes": {id: capabilities}, "peer_graph": {from: [{"from_id","to_id","description"}]},
  //  "active_node_id": str|null}; description is null when absent.
  nlohmann::json to_json() const;
  // Strict inverse of to_json. Rejects: non-objects, invalid capabilities, empty ids, an edge listed
  // under a key different from its from_id, more than kMaxTopologyNodes nodes or kMaxTopologyEdges edges.
  static Result<Topology> from_json(const nlohmann::json& json);

  bool operator==(const Topology&) const = default;

 private:
  NodeMap nodes_;
  EdgeMap edges_;
  std::optional<std::string> active_node_id_;
};

// Limits applied to topologies received from peers (JSON here, protobuf in net/proto_convert.h).
inline constexpr std::size_t kMaxTopologyNodes = 1024;
inline constexpr std::size_t kMaxTopologyEdges = 65536;

}  // namespace exo::topology
