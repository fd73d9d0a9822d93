#include "topology/topology.h"

#include <utility>

#include "topology/json_fields.h"

namespace exo::topology {

void Topology::update_node(const std::string& node_id, DeviceCapabilities capabilities) {
  nodes_.insert_or_assign(node_id, std::move(capabilities));
}

const DeviceCapabilities* Topology::find_node(std::string_view node_id) const {
  const auto it = nodes_.find(node_id);
  return it == nodes_.end() ? nullptr : &it->second;
}

bool Topology::add_edge(const std::string& from_id, const std::string& to_id,
                        std::optional<std::string> description) {
  auto& outgoing = edges_[from_id];
  return outgoing.try_emplace(to_id, PeerConnection{from_id, to_id, std::move(description)}).second;
}

std::vector<PeerConnection> Topology::edges_from(std::string_view from_id) const {
  std::vector<PeerConnection> result;
  if (const auto it = edges_.find(from_id); it != edges_.end()) {
    result.reserve(it->second.size());
    for (const auto& [to_id, connection] : it->second) result.push_back(connection);
  }
  return result;
}

void Topology::merge(std::string_view peer_node_id, const Topology& other) {
  if (const auto* capabilities = other.find_node(peer_node_id)) {
    update_node(std::string(peer_node_id), *capabilities);
  }
  // Legacy filters on conn.from_id rather than on the peer_graph key; keys equal from_ids here.
  if (const auto it = other.edges_.find(peer_node_id); it != other.edges_.end()) {
    for (const auto& [to_id, connection] : it->second) {
      add_edge(connection.from_id, connection.to_id, connection.description);
    }
  }
}

nlohmann::json Topology::to_json() const {
  nlohmann::json nodes = nlohmann::json::object();
  for (const auto& [node_id, capabilities] : nodes_)
    nodes[node_id] = device_capabilities_to_json(capabilities);
  nlohmann::json graph = nlohmann::json::object();
  for (const auto& [from_id, outgoing] : edges_) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [to_id, connection] : outgoing) {
      nlohmann::json edge = nlohmann::json::object();
      edge["from_id"] = connection.from_id;
      edge["to_id"] = connection.to_id;
      edge["description"] =
          connection.description ? nlohmann::json(*connection.description) : nlohmann::json();
      list.push_back(std::move(edge));
    }
    graph[from_id] = std::move(list);
  }
  nlohmann::json json = nlohmann::json::object();
  json["nodes"] = std::move(nodes);
  json["peer_graph"] = std::move(graph);
  json["active_node_id"] = active_node_id_ ? nlohmann::json(*active_node_id_) : nlohmann::json();
  return json;
}

Result<Topology> Topology::from_json(const nlohmann::json& json) {
  if (!json.is_object()) return Error{"topology: expected a JSON object"};
  const auto nodes = json.find("nodes");
  const auto graph = json.find("peer_graph");
  if (nodes == json.end() || !nodes->is_object()) return Error{"topology: nodes: expected a JSON object"};
  if (graph == json.end() || !graph->is_object())
    return Error{"topology: peer_graph: expected a JSON object"};
  if (nodes->size() > kMaxTopologyNodes) return Error{"topology: too many nodes"};

  Topology topology;
  for (const auto& [node_id, value] : nodes->items()) {
    if (node_id.empty() || node_id.size() > kMaxJsonStringBytes) return Error{"topology: invalid node id"};
    auto capabilities = device_capabilities_from_json(value);
    if (!capabilities) return Error{"topology: node '" + node_id + "': " + capabilities.error().message};
    topology.update_node(node_id, std::move(capabilities).value());
  }
  std::size_t edge_count = 0;
  for (const auto& [from_key, list] : graph->items()) {
    if (!list.is_array()) return Error{"topology: peer_graph['" + from_key + "']: expected an array"};
    edge_count += list.size();
    if (edge_count > kMaxTopologyEdges) return Error{"topology: too many edges"};
    for (const auto& edge : list) {
      PeerConnection connection;
      std::string error;
      if (!read_string_field(edge, "from_id", kMaxJsonStringBytes, connection.from_id, error) ||
          !read_string_field(edge, "to_id", kMaxJsonStringBytes, connection.to_id, error)) {
        return Error{"topology: edge: " + error};
      }
      if (connection.from_id != from_key || connection.from_id.empty() || connection.to_id.empty()) {
        return Error{"topology: edge listed under '" + from_key + "' has from_id '" + connection.from_id +
                     "'"};
      }
      if (const auto description = edge.find("description");
          description != edge.end() && !description->is_null()) {
        std::string text;
        if (!read_string_field(edge, "description", kMaxJsonStringBytes, text, error)) {
          return Error{"topology: edge: " + error};
        }
        connection.description = std::move(text);
      }
      topology.add_edge(connection.from_id, connection.to_id, std::move(connection.description));
    }
  }
  if (const auto active = json.find("active_node_id"); active != json.end() && !active->is_null()) {
    if (!active->is_string() || active->get_ref<const std::string&>().size() > kMaxJsonStringBytes) {
      return Error{"topology: active_node_id: expected a string or null"};
    }
    topology.set_active_node_id(active->get<std::string>());
  }
  return topology;
}

}  // namespace exo::topology
