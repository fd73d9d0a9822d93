#include "net/network_interfaces.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace exo::net {
namespace {

std::uint32_t ip(const char* text) {
  return parse_ipv4(text).value();
}

TEST(Ipv4, ParseAndFormat) {
  EXPECT_EQ(parse_ipv4("192.168.1.2"), 0xC0A80102U);
  EXPECT_EQ(parse_ipv4("0.0.0.0"), 0U);
  EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xFFFFFFFFU);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "a.b.c.d", "1.2.3.4 ",
                          " 1.2.3.4", "1..2.3", "0001.2.3.4", "1.2.3.4/24"}) {
    EXPECT_EQ(parse_ipv4(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(format_ipv4(0xC0A80102U), "192.168.1.2");
  EXPECT_EQ(format_ipv4(0U), "0.0.0.0");
}

TEST(Ipv4, BroadcastFromTheRealNetmask) {
  EXPECT_EQ(subnet_broadcast_address(ip("192.168.1.23"), ip("255.255.255.0")), ip("192.168.1.255"));
  EXPECT_EQ(subnet_broadcast_address(ip("10.1.2.3"), ip("255.255.0.0")), ip("10.1.255.255"));
  EXPECT_EQ(subnet_broadcast_address(ip("172.16.5.4"), ip("255.255.240.0")), ip("172.16.15.255"));
  EXPECT_EQ(subnet_broadcast_address(ip("192.168.7.130"), ip("255.255.255.192")), ip("192.168.7.191"));
  EXPECT_EQ(subnet_broadcast_address(ip("127.0.0.1"), ip("255.0.0.0")), ip("127.255.255.255"));
  EXPECT_EQ(subnet_broadcast_address(ip("10.0.0.1"), ip("255.255.255.252")), ip("10.0.0.3"));  // /30
  EXPECT_EQ(subnet_broadcast_address(ip("10.0.0.1"), ip("255.255.255.254")), std::nullopt);    // /31
  EXPECT_EQ(subnet_broadcast_address(ip("10.0.0.1"), ip("255.255.255.255")), std::nullopt);    // /32
}

TEST(Ipv4, PrefixLength) {
  EXPECT_EQ(netmask_prefix_length(ip("255.255.255.0")), 24);
  EXPECT_EQ(netmask_prefix_length(ip("255.255.240.0")), 20);
  EXPECT_EQ(netmask_prefix_length(0U), 0);
  EXPECT_EQ(netmask_prefix_length(0xFFFFFFFFU), 32);
  EXPECT_EQ(netmask_prefix_length(ip("255.0.255.0")), std::nullopt);
}

TEST(Ipv4, DiscoveryDestinations) {
  Ipv4Interface lan{"eth0", ip("10.1.2.3"), ip("255.255.0.0"), false, false, ip("10.1.255.255")};
  EXPECT_EQ(discovery_destinations(lan), (std::vector<std::uint32_t>{ip("10.1.255.255"), 0xFFFFFFFFU}));
  Ipv4Interface point_to_point{"tun0", ip("10.8.0.2"), 0xFFFFFFFFU, false, true, std::nullopt};
  EXPECT_TRUE(discovery_destinations(point_to_point).empty());
  Ipv4Interface everything{"x", 0x01000000U, 0U, false, false, 0xFFFFFFFFU};
  EXPECT_EQ(discovery_destinations(everything), (std::vector<std::uint32_t>{0xFFFFFFFFU}));
}

TEST(ListIpv4Interfaces, ThisHostsInterfacesAreConsistent) {
  const auto interfaces = list_ipv4_interfaces();
  ASSERT_TRUE(interfaces.ok()) << interfaces.error().message;
  for (const auto& interface : *interfaces) {
    EXPECT_FALSE(interface.name.empty());
    EXPECT_NE(interface.address >> 16U, 0U) << interface.name;
    if (interface.broadcast) {
      EXPECT_EQ(*interface.broadcast, interface.address | ~interface.netmask) << interface.name;
      EXPECT_FALSE(interface.is_point_to_point);
    }
  }
  // Every Linux host (and container) has an up loopback interface at 127.0.0.1/8.
  const auto loopback = std::find_if(interfaces->begin(), interfaces->end(),
                                     [](const Ipv4Interface& i) { return i.address == 0x7F000001U; });
  ASSERT_NE(loopback, interfaces->end());
  EXPECT_TRUE(loopback->is_loopback);
  EXPECT_EQ(loopback->broadcast, ip("127.255.255.255"));
}

}  // namespace
}  // namespace exo::net
