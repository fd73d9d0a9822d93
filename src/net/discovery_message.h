// The UDP discovery datagram of legacy exo: a JSON object a node broadcasts every 2.5 s on each
// of its interfaces to announce its id, gRPC port and hardware.
//
// Contract: stateless functions, thread-safe. parse_discovery_message takes arbitrary bytes from
// the network and returns Result: garbage, oversize input, deep nesting, missing keys, wrong types
// and out-of-range values all yield an Error, never an exception (std::bad_alloc aside) or a
// crash. encode_discovery_message requires a valid message (validate_discovery_message) and
// throws std::invalid_argument otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "topology/device_capabilities.h"
#include "topology/result.h"

namespace exo::net {

struct DiscoveryMessage {
  std::string node_id;
  std::uint16_t grpc_port = 0;  // the peer's address is "<UDP source IP>:<grpc_port>"
  topology::DeviceCapabilities device_capabilities;
  std::int32_t priority = 0;   // sender's priority of the interface it sent on (interface_priority.h)
  std::string interface_name;  // sender's interface, e.g. "en7"
  std::string interface_type;  // sender's label, e.g. "Ethernet"; used by interface-type filters

  bool operator==(const DiscoveryMessage&) const = default;
};

// Largest datagram accepted: the largest UDP payload over IPv4. A real one is about 300 bytes.
inline constexpr std::size_t kMaxDiscoveryDatagramBytes = 65507;
// Objects nest 3 deep in a real datagram.
inline constexpr std::size_t kMaxDiscoveryJsonDepth = 8;
// Limits on string fields (bytes). Legacy node ids are UUIDs (36 bytes) unless set by --node-id.
inline constexpr std::size_t kMaxNodeIdBytes = 256;
inline constexpr std::size_t kMaxInterfaceFieldBytes = 256;
// Legacy priorities are 1..7; ours are 0..7.
inline constexpr std::int32_t kMinInterfacePriority = 0;
inline constexpr std::int32_t kMaxInterfacePriority = 100;

// Empty string when `message` can be encoded, otherwise the reason it cannot: empty node id,
// port 0, strings over their limits, priority out of range, negative memory, FLOPS not finite.
std::string validate_discovery_message(const DiscoveryMessage& message);

// Byte-for-byte what legacy's json.dumps produces: keys in the order type, node_id, grpc_port,
// device_capabilities, priority, interface_name, interface_type; ", " and ": " separators;
// non-ASCII characters escaped as \uXXXX; FLOPS always written as floats.
std::string encode_discovery_message(const DiscoveryMessage& message);

// Accepts any JSON formatting and ignores unknown keys (legacy HEAD adds timestamp,
// broadcast_count and auth). Requires "type" == "discovery" and every field of DiscoveryMessage
// with the right JSON type: node_id a non-empty string; grpc_port an integer in 1..65535;
// priority an integer in [kMinInterfacePriority, kMaxInterfacePriority]; capabilities as
// topology::device_capabilities_from_json. Leading/trailing whitespace is allowed; the text
// must be valid UTF-8 JSON.
Result<DiscoveryMessage> parse_discovery_message(std::string_view datagram);

}  // namespace exo::net
