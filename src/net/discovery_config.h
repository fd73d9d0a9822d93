// The manual discovery file (wire spec §4): {"peers": {"<node id>": {"address": str, "port": int,
// "device_capabilities": {...}}}}, legacy exo's NetworkTopology.
//
// Contract: stateless functions, thread-safe. Every problem with the file is an Error whose message
// names the offending field ("peers.node2.port: must be between 1 and 65535"); nothing throws for bad
// input (std::bad_alloc aside). Unknown keys are ignored, as pydantic does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "topology/device_capabilities.h"
#include "topology/result.h"

namespace exo::net {

struct ManualPeerConfig {
  std::string node_id;
  std::string address;  // IPv4 address or host name, as written
  std::uint16_t port = 0;
  topology::DeviceCapabilities device_capabilities;

  bool operator==(const ManualPeerConfig&) const = default;
};

struct ManualDiscoveryConfig {
  std::map<std::string, ManualPeerConfig> peers;  // by node id; may include the local node

  bool operator==(const ManualDiscoveryConfig&) const = default;
};

// Files larger than this are refused (a real one is a few hundred bytes per peer).
inline constexpr std::size_t kMaxDiscoveryConfigBytes = 1024 * 1024;
inline constexpr std::size_t kMaxPeerAddressBytes = 253;  // the longest DNS name

// Validates and parses the text of a file. Requirements: a JSON object with an object "peers"; each
// key a non-empty node id of at most kMaxNodeIdBytes; each value an object with "address" (non-empty
// string without whitespace or control characters, at most kMaxPeerAddressBytes), "port" (integer
// 1..65535) and "device_capabilities" (as topology::device_capabilities_from_json).
Result<ManualDiscoveryConfig> parse_discovery_config(std::string_view text);

// The bytes of `path` (at most kMaxDiscoveryConfigBytes); errors name the path and the reason.
Result<std::string> read_discovery_config_text(const std::string& path);

// Reads `path` and parses it; errors start with "discovery config '<path>': ".
Result<ManualDiscoveryConfig> load_discovery_config(const std::string& path);

}  // namespace exo::net
