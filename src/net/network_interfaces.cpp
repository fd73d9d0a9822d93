#include "net/network_interfaces.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace exo::net {
namespace {

std::uint32_t host_order(const sockaddr* address) {
  sockaddr_in ipv4{};
  std::memcpy(&ipv4, address, sizeof ipv4);  // sockaddr is not suitably aligned for a direct cast
  return ntohl(ipv4.sin_addr.s_addr);
}

}  // namespace

std::optional<std::uint32_t> subnet_broadcast_address(std::uint32_t address, std::uint32_t netmask) noexcept {
  if ((~netmask) <= 1U) return std::nullopt;  // /31 or /32
  return address | ~netmask;
}

std::optional<int> netmask_prefix_length(std::uint32_t netmask) noexcept {
  const std::uint32_t host_bits = ~netmask;
  if ((host_bits & (host_bits + 1U)) != 0U) return std::nullopt;  // host part must be 0...01...1
  int length = 0;
  for (std::uint32_t bit = 0x80000000U; bit != 0U && (netmask & bit) != 0U; bit >>= 1U) ++length;
  return length;
}

std::string format_ipv4(std::uint32_t address) {
  return std::to_string(address >> 24U) + "." + std::to_string((address >> 16U) & 0xFFU) + "." +
         std::to_string((address >> 8U) & 0xFFU) + "." + std::to_string(address & 0xFFU);
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) noexcept {
  std::uint32_t address = 0;
  const char* cursor = text.data();
  const char* const end = text.data() + text.size();
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (cursor == end || *cursor != '.') return std::nullopt;
      ++cursor;
    }
    if (cursor == end || *cursor < '0' || *cursor > '9') return std::nullopt;
    unsigned value = 0;
    const auto [next, error] = std::from_chars(cursor, end, value);
    if (error != std::errc{} || value > 255U || next - cursor > 3) return std::nullopt;
    cursor = next;
    address = (address << 8U) | value;
  }
  if (cursor != end) return std::nullopt;
  return address;
}

std::vector<std::uint32_t> discovery_destinations(const Ipv4Interface& interface) {
  std::vector<std::uint32_t> destinations;
  if (!interface.broadcast) return destinations;
  destinations.push_back(*interface.broadcast);
  if (*interface.broadcast != 0xFFFFFFFFU) destinations.push_back(0xFFFFFFFFU);
  return destinations;
}

Result<std::vector<Ipv4Interface>> list_ipv4_interfaces() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return Error{"getifaddrs failed: " + std::error_code(errno, std::generic_category()).message()};
  }
  std::vector<Ipv4Interface> interfaces;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET || entry->ifa_name == nullptr)
      continue;
    if ((entry->ifa_flags & IFF_UP) == 0U) continue;
    Ipv4Interface interface;
    interface.name = entry->ifa_name;
    interface.address = host_order(entry->ifa_addr);
    if ((interface.address >> 16U) == 0U) continue;  // 0.0.x.x
    interface.netmask = entry->ifa_netmask != nullptr ? host_order(entry->ifa_netmask) : 0xFFFFFFFFU;
    interface.is_loopback = (entry->ifa_flags & IFF_LOOPBACK) != 0U;
    interface.is_point_to_point = (entry->ifa_flags & IFF_POINTOPOINT) != 0U;
    if (!interface.is_point_to_point)
      interface.broadcast = subnet_broadcast_address(interface.address, interface.netmask);
    const bool duplicate = std::any_of(interfaces.begin(), interfaces.end(), [&](const Ipv4Interface& known) {
      return known.name == interface.name && known.address == interface.address;
    });
    if (!duplicate) interfaces.push_back(std::move(interface));
  }
  freeifaddrs(list);
  return interfaces;
}

}  // namespace exo::net
