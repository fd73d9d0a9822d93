#include "net/discovery_config.h"

#include <cerrno>
#include <fstream>
#include <limits>
#include <system_error>

#include <nlohmann/json.hpp>

#include "net/discovery_message.h"
#include "topology/json_fields.h"

namespace exo::net {
namespace {

constexpr std::size_t kMaxConfigJsonDepth = 16;

bool valid_address(const std::string& address) {
  if (address.empty() || address.size() > kMaxPeerAddressBytes) return false;
  for (const char c : address) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F) return false;  // whitespace and control characters
  }
  return true;
}

}  // namespace

Result<ManualDiscoveryConfig> parse_discovery_config(std::string_view text) {
  if (text.size() > kMaxDiscoveryConfigBytes) {
    return Error{"larger than " + std::to_string(kMaxDiscoveryConfigBytes) + " bytes"};
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return Error{"the file is empty"};
  if (!topology::json_nesting_within(text, kMaxConfigJsonDepth)) return Error{"JSON nested too deeply"};
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return Error{std::string("not valid JSON: ") + e.what()};
  }
  if (!json.is_object()) return Error{"the top level must be a JSON object with \"peers\""};
  const auto peers = json.find("peers");
  if (peers == json.end()) return Error{"peers: missing"};
  if (!peers->is_object()) return Error{"peers: expected a JSON object mapping node ids to peers"};

  ManualDiscoveryConfig config;
  for (const auto& [node_id, entry] : peers->items()) {
    const std::string where = "peers." + node_id;
    if (node_id.empty()) return Error{"peers: a node id is empty"};
    if (node_id.size() > kMaxNodeIdBytes) {
      return Error{"peers: node id longer than " + std::to_string(kMaxNodeIdBytes) + " bytes"};
    }
    if (!entry.is_object()) return Error{where + ": expected a JSON object"};
    ManualPeerConfig peer;
    peer.node_id = node_id;
    std::string error;
    if (!topology::read_string_field(entry, "address", kMaxPeerAddressBytes, peer.address, error)) {
      return Error{where + "." + error};
    }
    if (!valid_address(peer.address)) {
      return Error{where + ".address: must be a non-empty host name or IP address without spaces"};
    }
    std::int64_t port = 0;
    if (!topology::read_integer_field(entry, "port", 1, std::numeric_limits<std::uint16_t>::max(), port,
                                      error)) {
      return Error{where + "." + error};
    }
    peer.port = static_cast<std::uint16_t>(port);
    const auto capabilities = entry.find("device_capabilities");
    if (capabilities == entry.end()) return Error{where + ".device_capabilities: missing"};
    auto parsed = topology::device_capabilities_from_json(*capabilities);
    if (!parsed) return Error{where + "." + parsed.error().message};
    peer.device_capabilities = std::move(parsed).value();
    config.peers.emplace(node_id, std::move(peer));
  }
  return config;
}

Result<std::string> read_discovery_config_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return Error{"cannot read discovery config '" + path +
                 "': " + std::error_code(errno, std::generic_category()).message()};
  }
  std::string text;
  char chunk[8192];
  while (file.read(chunk, sizeof chunk) || file.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(file.gcount()));
    if (text.size() > kMaxDiscoveryConfigBytes) {
      return Error{"discovery config '" + path + "': larger than " +
                   std::to_string(kMaxDiscoveryConfigBytes) + " bytes"};
    }
  }
  if (file.bad()) return Error{"cannot read discovery config '" + path + "': read error"};
  return text;
}

Result<ManualDiscoveryConfig> load_discovery_config(const std::string& path) {
  auto text = read_discovery_config_text(path);
  if (!text) return text.error();
  auto config = parse_discovery_config(*text);
  if (!config) return Error{"discovery config '" + path + "': " + config.error().message};
  return config;
}

}  // namespace exo::net
