#include "net/interface_priority.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace exo::net {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool starts_with_any(std::string_view name, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view prefix) { return name.starts_with(prefix); });
}

std::optional<InterfaceClass> classify_hardware_port(const HardwarePort& port) {
  const std::string name = lower(port.name);
  const std::string hardware = lower(port.hardware);
  const std::string type = lower(port.type);
  if (name.find("thunderbolt") != std::string::npos) return InterfaceClass{5, "Thunderbolt"};
  if (hardware == "ethernet" || type == "ethernet") {
    if (name.find("usb") != std::string::npos) return InterfaceClass{4, "Ethernet [USB]"};
    return InterfaceClass{4, "Ethernet"};
  }
  if (hardware == "airport" || type == "airport" || name.find("wi-fi") != std::string::npos) {
    return InterfaceClass{3, "WiFi"};
  }
  if (type == "vpn") return InterfaceClass{1, "External Virtual"};
  return std::nullopt;
}

}  // namespace

InterfaceClass classify_interface_legacy(std::string_view interface_name,
                                         const std::optional<HardwarePort>& hardware_port) {
  if (hardware_port) {
    if (auto by_hardware = classify_hardware_port(*hardware_port)) return *by_hardware;
  }
  const std::string_view name = interface_name;
  if (starts_with_any(name, {"docker", "br-", "veth", "cni", "flannel", "calico", "weave"}) ||
      name.find("bridge") != std::string_view::npos) {
    return {7, "Container Virtual"};
  }
  if (name.starts_with("lo")) return {6, "Loopback"};
  if (starts_with_any(name, {"tb", "nx", "ten"})) return {5, "Thunderbolt"};
  // Legacy excludes every name that merely starts with "en0"/"en1" here (so "en10" is not Ethernet),
  // but admits only exactly "en0"/"en1" as WiFi below; "en10" therefore ends up as Other.
  if (starts_with_any(name, {"eth", "en"}) && !starts_with_any(name, {"en0", "en1"})) return {4, "Ethernet"};
  if (starts_with_any(name, {"wlan", "wifi", "wl"}) || name == "en0" || name == "en1") return {3, "WiFi"};
  if (starts_with_any(name, {"tun", "tap", "vtun", "utun", "gif", "stf", "awdl", "llw"})) {
    return {1, "External Virtual"};
  }
  return {2, "Other"};
}

InterfaceClass classify_interface(std::string_view interface_name,
                                  const std::optional<HardwarePort>& hardware_port) {
  InterfaceClass result = classify_interface_legacy(interface_name, hardware_port);
  if (result.type == "Container Virtual") result.priority = 0;
  return result;
}

}  // namespace exo::net
