#include "net/interface_priority.h"

#include <gtest/gtest.h>

namespace exo::net {
namespace {

struct NameCase {
  const char* name;
  std::int32_t priority;
  const char* type;
};

TEST(InterfacePriority, LegacyNameRules) {
  const NameCase cases[] = {
      {"docker0", 7, "Container Virtual"},
      {"br-1a2b3c", 7, "Container Virtual"},
      {"veth12ab", 7, "Container Virtual"},
      {"cni0", 7, "Container Virtual"},
      {"flannel.1", 7, "Container Virtual"},
      {"calico123", 7, "Container Virtual"},
      {"weave", 7, "Container Virtual"},
      {"virbridge0", 7, "Container Virtual"},
      {"lo", 6, "Loopback"},
      {"lo0", 6, "Loopback"},
      {"tb0", 5, "Thunderbolt"},
      {"nx0", 5, "Thunderbolt"},
      {"ten1", 5, "Thunderbolt"},
      {"eth0", 4, "Ethernet"},
      {"enp3s0", 4, "Ethernet"},
      {"eno1", 4, "Ethernet"},
      {"en7", 4, "Ethernet"},
      {"en2", 4, "Ethernet"},
      {"en0", 3, "WiFi"},
      {"en1", 3, "WiFi"},
      {"wlan0", 3, "WiFi"},
      {"wlp2s0", 3, "WiFi"},
      {"wifi0", 3, "WiFi"},
      {"tun0", 1, "External Virtual"},
      {"tap1", 1, "External Virtual"},
      {"vtun0", 1, "External Virtual"},
      {"utun3", 1, "External Virtual"},
      {"gif0", 1, "External Virtual"},
      {"stf0", 1, "External Virtual"},
      {"awdl0", 1, "External Virtual"},
      {"llw0", 1, "External Virtual"},
      {"tailscale0", 2, "Other"},
      {"wg0", 2, "Other"},
      {"", 2, "Other"},
      {"Docker0", 2, "Other"},  // name rules are case-sensitive
      {"en10", 2, "Other"},     // starts with "en1": excluded from Ethernet, not exactly "en1": not WiFi
      {"en00", 2, "Other"},
      {"bridge100", 7, "Container Virtual"},
      {"lobridge", 7, "Container Virtual"},  // container rule is checked before loopback
  };
  for (const auto& test_case : cases) {
    EXPECT_EQ(classify_interface_legacy(test_case.name), (InterfaceClass{test_case.priority, test_case.type}))
        << test_case.name;
  }
}

TEST(InterfacePriority, OurRuleOnlyDemotesContainerBridges) {
  EXPECT_EQ(classify_interface("docker0"), (InterfaceClass{0, "Container Virtual"}));
  EXPECT_EQ(classify_interface("veth9"), (InterfaceClass{0, "Container Virtual"}));
  for (const char* name : {"lo", "tb0", "eth0", "en0", "wlan0", "tun0", "tailscale0", "en10"}) {
    EXPECT_EQ(classify_interface(name), classify_interface_legacy(name)) << name;
  }
  EXPECT_LT(classify_interface("docker0").priority, classify_interface("tun0").priority);
}

TEST(InterfacePriority, HardwarePortRulesComeFirst) {
  EXPECT_EQ(classify_interface_legacy("bridge0", HardwarePort{"Thunderbolt Bridge", "Ethernet", "Ethernet"}),
            (InterfaceClass{5, "Thunderbolt"}));
  EXPECT_EQ(classify_interface_legacy("en5", HardwarePort{"USB 10/100/1000 LAN", "Ethernet", "Ethernet"}),
            (InterfaceClass{4, "Ethernet [USB]"}));
  EXPECT_EQ(classify_interface_legacy("en0", HardwarePort{"Ethernet", "ETHERNET", "x"}),
            (InterfaceClass{4, "Ethernet"}));
  EXPECT_EQ(classify_interface_legacy("en9", HardwarePort{"Wi-Fi", "x", "x"}), (InterfaceClass{3, "WiFi"}));
  EXPECT_EQ(classify_interface_legacy("en9", HardwarePort{"x", "AirPort", "x"}), (InterfaceClass{3, "WiFi"}));
  EXPECT_EQ(classify_interface_legacy("en9", HardwarePort{"x", "x", "airport"}), (InterfaceClass{3, "WiFi"}));
  EXPECT_EQ(classify_interface_legacy("utun9", HardwarePort{"My VPN", "x", "VPN"}),
            (InterfaceClass{1, "External Virtual"}));
  // Nothing matches: fall back to the name rules.
  EXPECT_EQ(classify_interface_legacy("en7", HardwarePort{"Something", "PPP", "PPP"}),
            (InterfaceClass{4, "Ethernet"}));
  // Our rule keeps a Thunderbolt bridge at 5 (it is not classified as a container bridge).
  EXPECT_EQ(classify_interface("bridge0", HardwarePort{"Thunderbolt Bridge", "x", "x"}).priority, 5);
}

}  // namespace
}  // namespace exo::net
