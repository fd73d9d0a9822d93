// The host's IPv4 interfaces, with the subnet broadcast address computed from each netmask.
//
// Contract: addresses are uint32_t in host byte order (192.168.1.2 == 0xC0A80102). The pure helpers
// are thread-safe and never throw. list_ipv4_interfaces() reads getifaddrs(); it returns an Error
// when that call fails and never throws otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/result.h"

namespace exo::net {

struct Ipv4Interface {
  std::string name;  // e.g. "eth0"
  std::uint32_t address = 0;
  std::uint32_t netmask = 0;
  bool is_loopback = false;
  bool is_point_to_point = false;
  // address | ~netmask, or nullopt when the link has no broadcast domain (point-to-point, /31, /32).
  std::optional<std::uint32_t> broadcast;

  bool operator==(const Ipv4Interface&) const = default;
};

// address | ~netmask; nullopt for a /31 or /32 netmask (RFC 3021 links and host routes have no
// broadcast address).
std::optional<std::uint32_t> subnet_broadcast_address(std::uint32_t address, std::uint32_t netmask) noexcept;

// Number of leading one bits, or nullopt when the mask is not contiguous (e.g. 255.0.255.0).
std::optional<int> netmask_prefix_length(std::uint32_t netmask) noexcept;

std::string format_ipv4(std::uint32_t address);
// Dotted quad "a.b.c.d" with each part 0..255 and no extra characters; nullopt otherwise.
std::optional<std::uint32_t> parse_ipv4(std::string_view text) noexcept;

// Where a discovery datagram sent on `interface` goes: the subnet broadcast address, then
// 255.255.255.255 if different (legacy sends to a.b.c.255, assuming a /24, and 255.255.255.255).
// Empty for an interface without a broadcast address.
std::vector<std::uint32_t> discovery_destinations(const Ipv4Interface& interface);

// Every interface that is up and has an IPv4 address outside 0.0.0.0/16 (legacy skips "0.0."),
// in getifaddrs order, one entry per (name, address). Loopback is included, as legacy includes it:
// that is how two nodes on one host find each other.
Result<std::vector<Ipv4Interface>> list_ipv4_interfaces();

}  // namespace exo::net
