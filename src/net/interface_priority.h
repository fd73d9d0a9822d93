// Interface typing and priority for UDP discovery (legacy exo's get_interface_priority_and_type).
// A node puts the priority of the interface a datagram left on into the datagram; a receiver
// moves a known peer to a new address only when that priority is strictly higher.
//
// Contract: pure functions of the interface name (and, on macOS-style input, the hardware port
// description); thread-safe; never throw. Type labels are legacy's exact strings, since peers
// filter on them (--interface-type-filter).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace exo::net {

struct InterfaceClass {
  std::int32_t priority = 2;
  std::string type = "Other";  // "Container Virtual", "Loopback", "Thunderbolt", "Ethernet", ...

  bool operator==(const InterfaceClass&) const = default;
};

// What macOS's `system_profiler SPNetworkDataType` says about a hardware port, when known.
struct HardwarePort {
  std::string name;      // "_name", e.g. "Thunderbolt Bridge", "USB 10/100/1000 LAN"
  std::string hardware;  // e.g. "Ethernet", "AirPort"
  std::string type;      // e.g. "Ethernet", "VPN"
};

// Legacy's rules, exactly. With a hardware port (all three strings compared lower-cased): name
// contains "thunderbolt" -> (5, Thunderbolt); hardware or type is "ethernet" -> (4, "Ethernet [USB]"
// if name contains "usb", else "Ethernet"); hardware or type is "airport", or name contains
// "wi-fi" -> (3, WiFi); type is "vpn" -> (1, External Virtual); otherwise fall through to the name.
// By name (case-sensitive), first match wins:
//   docker*, br-*, veth*, cni*, flannel*, calico*, weave*, or containing "bridge" -> (7, Container Virtual)
//   lo*                                  -> (6, Loopback)
//   tb*, nx*, ten*                       -> (5, Thunderbolt)
//   eth*, en* except en0*/en1*           -> (4, Ethernet)   (so "en10" is not Ethernet...)
//   wlan*, wifi*, wl*, exactly en0/en1   -> (3, WiFi)       (...nor WiFi: it is Other)
//   tun*, tap*, vtun*, utun*, gif*, stf*, awdl*, llw* -> (1, External Virtual)
//   anything else                        -> (2, Other)
InterfaceClass classify_interface_legacy(std::string_view interface_name,
                                         const std::optional<HardwarePort>& hardware_port = std::nullopt);

// Our rule: legacy's, except that container bridges get priority 0 instead of 7. Legacy ranks
// docker0 & co. above real links, so a peer's address flips to a container bridge address that is
// unreachable from other hosts, or that reaches a different host's bridge (exo issues #724, #858).
// Priority 0 is still valid on the wire: legacy receivers only compare priorities.
InterfaceClass classify_interface(std::string_view interface_name,
                                  const std::optional<HardwarePort>& hardware_port = std::nullopt);

}  // namespace exo::net
