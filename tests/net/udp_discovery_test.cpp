// UdpDiscovery over real UDP sockets on loopback: nodes find each other (unicast targets and real
// subnet broadcast), the §3.4 priority rules, expiry, rate-limited health probes, hostile datagrams,
// filters, DEGRADED when broadcasting fails, and thread-safe snapshots.
#include "net/udp_discovery.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <future>
#include <thread>

#include "discovery_test_support.h"
#include "net/discovery_message.h"
#include "resource/errors.h"

namespace exo::net {
namespace {

using namespace exo::net::testing;
using resource::ResourceState;

std::string datagram(const std::string& node_id, std::uint16_t grpc_port = 50000, std::int32_t priority = 4,
                     const std::string& interface_type = "Ethernet",
                     const std::string& interface_name = "eth0") {
  return encode_discovery_message(DiscoveryMessage{node_id, grpc_port, capabilities("M", 1024), priority,
                                                   interface_name, interface_type});
}

// Where a datagram goes for an interface: the broadcast address of its real subnet (legacy assumed a
// /24 and sent to a.b.c.255), then 255.255.255.255; nothing on links without a broadcast domain.
TEST(UdpDiscoveryDestinations, BroadcastAddressComesFromTheNetmask) {
  const auto destinations = [](const char* address, const char* netmask) {
    std::vector<std::string> out;
    for (const auto d : discovery_destinations(fake_interface("eth0", address, netmask)))
      out.push_back(format_ipv4(d));
    return out;
  };
  using Strings = std::vector<std::string>;
  EXPECT_EQ(destinations("192.168.1.23", "255.255.255.0"),
            (Strings{"192.168.1.255", "255.255.255.255"}));                                          // /24
  EXPECT_EQ(destinations("10.1.2.3", "255.255.0.0"), (Strings{"10.1.255.255", "255.255.255.255"}));  // /16
  // /20: legacy's guess 172.16.5.255 would be an ordinary host of this subnet.
  EXPECT_EQ(destinations("172.16.5.4", "255.255.240.0"), (Strings{"172.16.15.255", "255.255.255.255"}));
  EXPECT_EQ(destinations("10.0.0.1", "255.255.255.252"), (Strings{"10.0.0.3", "255.255.255.255"}));    // /30
  EXPECT_EQ(destinations("10.0.0.1", "255.255.255.254"), Strings{});                                   // /31
  EXPECT_EQ(destinations("10.0.0.1", "255.255.255.255"), Strings{});                                   // /32
  EXPECT_EQ(destinations("127.0.0.1", "255.0.0.0"), (Strings{"127.255.255.255", "255.255.255.255"}));  // lo
}

class UdpDiscoveryTest : public ::testing::Test {
 protected:
  asio::io_context context;

  // A node that announces itself only through `targets` (default: nowhere useful) from loopback.
  UdpDiscoveryOptions options(const std::string& node_id, std::uint16_t listen_port,
                              std::uint16_t broadcast_port) {
    UdpDiscoveryOptions o;
    o.node_id = node_id;
    o.node_port = 50000;
    o.device_capabilities = capabilities("model-" + node_id, 2048);
    o.listen_host = "0.0.0.0";
    o.listen_port = listen_port;
    o.broadcast_port = broadcast_port;
    o.broadcast_interval = 20ms;
    o.discovery_timeout = 5s;
    o.health_probe_interval = 1s;
    o.broadcast_targets = {"127.0.0.1"};
    o.list_interfaces = interfaces({fake_interface("lo", "127.0.0.1")});
    return o;
  }

  std::shared_ptr<UdpDiscovery> make(UdpDiscoveryOptions o) {
    return resource::make_resource<UdpDiscovery>(context.get_executor(), "discovery-" + o.node_id,
                                                 std::move(o));
  }

  void start(const std::shared_ptr<UdpDiscovery>& d) { run_sync(context, d->initialize()); }
  void stop(const std::shared_ptr<UdpDiscovery>& d) { run_sync(context, d->cleanup()); }

  bool wait_for(const std::function<bool()>& done, std::chrono::steady_clock::duration limit = 15s) {
    return run_until(context, done, limit);
  }
};

TEST_F(UdpDiscoveryTest, TwoNodesFindEachOtherThroughUnicastTargets) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto o_a = options("node-a", port_a, port_b);
  o_a.node_port = 50001;
  auto o_b = options("node-b", port_b, port_a);
  o_b.node_port = 50002;
  auto a = make(o_a);
  auto b = make(o_b);
  PeerLog log_a;
  log_a.attach(*a);
  start(a);
  start(b);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1 && b->peer_count() == 1; }));

  const auto peer = a->find_peer("node-b");
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->address, "127.0.0.1");
  EXPECT_EQ(peer->port, 50002);
  EXPECT_EQ(peer->capabilities, capabilities("model-node-b", 2048));
  EXPECT_EQ(peer->interface_priority, 6);
  EXPECT_EQ(peer->interface_name, "lo");
  EXPECT_EQ(peer->interface_type, "Loopback");
  EXPECT_EQ(peer->description(), "Loopback (lo)");
  EXPECT_EQ(b->find_peer("node-a")->port, 50001);
  ASSERT_EQ(log_a.changes.size(), 1U);
  EXPECT_EQ(log_a.changes[0].kind, PeerChangeKind::ADDED);
  EXPECT_EQ(a->state(), ResourceState::READY);
  EXPECT_GT(a->counters().datagrams_sent, 0U);

  stop(a);
  stop(b);
  EXPECT_EQ(a->peer_count(), 0U);
  EXPECT_EQ(log_a.count(PeerChangeKind::REMOVED, "node-b", PeerRemovalReason::STOPPED), 1U);
  EXPECT_EQ(a->state(), ResourceState::CLOSED);
  EXPECT_EQ(a->listen_port(), 0);
}

// Three nodes share one listen port (SO_REUSEADDR) and broadcast to the loopback subnet's real
// broadcast address, computed from the 255.0.0.0 netmask (127.255.255.255), plus 255.255.255.255.
TEST_F(UdpDiscoveryTest, ThreeNodesOnOnePortConvergeThroughSubnetBroadcast) {
  std::vector<std::shared_ptr<UdpDiscovery>> nodes;
  {
    // The first node picks the shared port; the others join it.
    auto probe = make(options("probe", 0, 9));
    start(probe);
    const auto port = probe->listen_port();
    stop(probe);
    for (const char* id : {"n1", "n2", "n3"}) {
      auto o = options(id, port, port);
      o.broadcast_targets.clear();  // the interface's own broadcast address
      nodes.push_back(make(o));
    }
  }
  for (auto& node : nodes) start(node);
  ASSERT_TRUE(wait_for([&] {
    return std::all_of(nodes.begin(), nodes.end(), [](const auto& n) { return n->peer_count() == 2; });
  }));
  for (auto& node : nodes) {
    for (const auto& peer : node->peers()) {
      EXPECT_EQ(peer.address, "127.0.0.1");
      EXPECT_EQ(peer.interface_type, "Loopback");
    }
    EXPECT_GT(node->counters().datagrams_dropped["self_id"], 0U);  // our own broadcasts come back
  }
  for (auto& node : nodes) stop(node);
}

TEST_F(UdpDiscoveryTest, PeerExpiresAfterTheDiscoveryTimeoutWhenItStops) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto o_a = options("node-a", port_a, port_b);
  o_a.discovery_timeout = 300ms;
  auto a = make(o_a);
  auto b = make(options("node-b", port_b, port_a));
  PeerLog log;
  log.attach(*a);
  start(a);
  start(b);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  stop(b);
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return log.count(PeerChangeKind::REMOVED) == 1; }));
  const auto waited = std::chrono::steady_clock::now() - stopped;
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED, "node-b", PeerRemovalReason::EXPIRED), 1U);
  EXPECT_GE(waited, 300ms - 40ms);  // not before the timeout (minus the last datagram's age)
  EXPECT_EQ(a->peer_count(), 0U);
  EXPECT_EQ(a->counters().peers_removed["expired"], 1U);
  stop(a);
}

TEST_F(UdpDiscoveryTest, HealthProbeIsRateLimitedWhileDatagramsArriveFast) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto probes = std::make_shared<std::atomic<int>>(0);
  auto o_a = options("node-a", port_a, port_b);
  o_a.health_probe_interval = 200ms;
  o_a.health_probe = [probes](const DiscoveredPeer& peer) -> asio::awaitable<bool> {
    ++*probes;
    co_return peer.node_id == "node-b";
  };
  auto o_b = options("node-b", port_b, port_a);
  o_b.broadcast_interval = 2ms;
  auto a = make(o_a);
  auto b = make(o_b);
  start(a);
  start(b);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  EXPECT_EQ(*probes, 1);                                // the new peer is probed at once, once
  ASSERT_TRUE(wait_for([&] { return *probes >= 4; }));  // periodic probes do happen...
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const auto counters = a->counters();
  // ...but no more than one per interval, however many datagrams arrive.
  EXPECT_LE(*probes, 2 + elapsed / 200ms);
  EXPECT_GT(counters.datagrams_accepted, static_cast<std::uint64_t>(*probes) * 5);
  EXPECT_EQ(counters.probes_started, static_cast<std::uint64_t>(*probes));
  stop(a);
  stop(b);
}

TEST_F(UdpDiscoveryTest, FailedProbeRemovesThePeerAndRecoveryReAddsIt) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto healthy = std::make_shared<std::atomic<bool>>(true);
  auto probes = std::make_shared<std::atomic<int>>(0);
  auto o_a = options("node-a", port_a, port_b);
  o_a.health_probe_interval = 100ms;
  o_a.health_probe = [healthy, probes](const DiscoveredPeer&) -> asio::awaitable<bool> {
    ++*probes;
    if (!healthy->load()) throw std::runtime_error("connection refused");
    co_return true;
  };
  auto a = make(o_a);
  auto b = make(options("node-b", port_b, port_a));
  PeerLog log;
  log.attach(*a);
  start(a);
  start(b);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  *healthy = false;
  ASSERT_TRUE(wait_for([&] { return log.count(PeerChangeKind::REMOVED) == 1; }));
  const auto& removal = log.changes.back();
  EXPECT_EQ(removal.reason, PeerRemovalReason::HEALTH_FAILED);
  EXPECT_NE(removal.detail.find("connection refused"), std::string::npos) << removal.detail;
  // Datagrams keep coming, but the unhealthy peer is neither re-added nor probed on each of them.
  const int probes_at_removal = *probes;
  const auto removed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return a->counters().sightings_ignored["probe_backoff"] >= 20; }));
  EXPECT_EQ(a->peer_count(), 0U);
  EXPECT_LE(*probes - probes_at_removal, 1 + (std::chrono::steady_clock::now() - removed_at) / 100ms);
  *healthy = true;
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  EXPECT_EQ(log.count(PeerChangeKind::ADDED, "node-b"), 2U);
  stop(a);
  stop(b);
}

TEST_F(UdpDiscoveryTest, PeerWhoseFirstProbeFailsIsNeverAdded) {
  const auto port = unused_udp_port();
  auto o = options("node-a", port, unused_udp_port());
  o.health_probe = [](const DiscoveredPeer&) -> asio::awaitable<bool> { co_return false; };
  auto a = make(o);
  start(a);
  send_datagram(datagram("node-x"), port);
  ASSERT_TRUE(wait_for([&] { return a->counters().probes_failed == 1; }));
  send_datagram(datagram("node-x"), port);  // within the back-off: not probed again
  ASSERT_TRUE(wait_for([&] { return a->counters().sightings_ignored["probe_backoff"] == 1; }));
  EXPECT_EQ(a->peer_count(), 0U);
  EXPECT_EQ(a->counters().probes_started, 1U);
  stop(a);
}

TEST_F(UdpDiscoveryTest, ReportedUnhealthyPeerIsRemovedAtOnce) {
  const auto port = unused_udp_port();
  auto a = make(options("node-a", port, unused_udp_port()));
  PeerLog log;
  log.attach(*a);
  start(a);
  send_datagram(datagram("node-x"), port);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  a->report_peer_unhealthy("node-x", "circuit breaker open");
  a->report_peer_unhealthy("nobody", "ignored");
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 0; }));
  EXPECT_EQ(log.changes.back().reason, PeerRemovalReason::REPORTED_UNHEALTHY);
  EXPECT_NE(log.changes.back().detail.find("circuit breaker open"), std::string::npos);
  stop(a);
}

// §3.4 step 5: a known peer moves only to a strictly higher interface priority; the source IP of
// the datagram is the peer's host.
TEST_F(UdpDiscoveryTest, AddressChangesFollowTheLegacyPriorityRule) {
  const auto port = unused_udp_port();
  auto a = make(options("node-a", port, unused_udp_port()));
  PeerLog log;
  log.attach(*a);
  start(a);
  const auto received = [&](std::uint64_t n) {
    return wait_for([&] { return a->counters().datagrams_received >= n; });
  };
  send_datagram(datagram("node-x", 50010, 4, "Ethernet", "eth0"), port, "127.0.0.3");
  ASSERT_TRUE(received(1));
  ASSERT_EQ(a->find_peer("node-x")->address, "127.0.0.3");
  send_datagram(datagram("node-x", 50010, 4, "Ethernet", "eth1"), port, "127.0.0.2");  // equal: ignored
  ASSERT_TRUE(received(2));
  EXPECT_EQ(a->find_peer("node-x")->address, "127.0.0.3");
  send_datagram(datagram("node-x", 50010, 6, "Loopback", "lo"), port, "127.0.0.1");  // higher: moves
  ASSERT_TRUE(received(3));
  EXPECT_EQ(a->find_peer("node-x")->address, "127.0.0.1");
  EXPECT_EQ(a->find_peer("node-x")->interface_priority, 6);
  send_datagram(datagram("node-x", 50010, 5, "Thunderbolt", "tb0"), port, "127.0.0.3");  // lower: ignored
  ASSERT_TRUE(received(4));
  EXPECT_EQ(a->find_peer("node-x")->address, "127.0.0.1");
  send_datagram(datagram("node-x", 50011, 6, "Loopback", "lo"), port, "127.0.0.1");  // same host, new port
  ASSERT_TRUE(received(5));
  EXPECT_EQ(a->find_peer("node-x")->port, 50010);  // equal priority: still ignored
  EXPECT_EQ(a->counters().sightings_ignored["lower_priority"], 3U);
  ASSERT_EQ(log.changes.size(), 2U);
  EXPECT_EQ(log.changes[1].kind, PeerChangeKind::UPDATED);
  EXPECT_EQ(log.changes[1].previous->address, "127.0.0.3");
  stop(a);
}

TEST_F(UdpDiscoveryTest, SameNodeOnTwoInterfacesIsKeptAtTheHigherPriorityAddress) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto a = make(options("node-a", port_a, port_b));
  auto o_b = options("node-b", port_b, port_a);
  o_b.list_interfaces = interfaces({fake_interface("eth7", "127.0.0.3"), fake_interface("lo", "127.0.0.1")});
  auto b = make(o_b);
  start(a);
  start(b);
  ASSERT_TRUE(wait_for([&] {
    const auto peer = a->find_peer("node-b");
    return peer && peer->address == "127.0.0.1" && a->counters().sightings_ignored["lower_priority"] >= 3;
  }));
  EXPECT_EQ(a->find_peer("node-b")->interface_type, "Loopback");
  stop(a);
  stop(b);
}

TEST_F(UdpDiscoveryTest, HostileDatagramsAreCountedPerReasonAndHarmless) {
  const auto port = unused_udp_port();
  auto o = options("node-a", port, unused_udp_port());
  auto a = make(o);
  start(a);
  std::string random_bytes;
  for (int i = 0; i < 512; ++i) random_bytes.push_back(static_cast<char>((i * 131 + 7) % 256));
  const std::string valid = datagram("node-x");
  std::string with_bad_port = valid;
  with_bad_port.replace(with_bad_port.find("50000"), 5, "70000");
  std::string with_zero_port = valid;
  with_zero_port.replace(with_zero_port.find("50000"), 5, "0");
  std::string oversized = valid;
  oversized.insert(oversized.size() - 1, ", \"pad\": \"" + std::string(20000, 'x') + "\"");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {random_bytes, "not_json"},
      {"", "not_json"},
      {"   ", "not_json"},
      {valid.substr(0, valid.size() / 2), "not_json"},
      {"[1, 2, 3]", "not_json"},
      {"{\"type\": \"discovery\", \"node_id\": \"\xff\xfe\"}", "not_json"},
      {std::string(100, '{'), "not_json"},
      {R"({"node_id": "x"})", "wrong_type"},
      {R"({"type": "hello", "node_id": "x"})", "wrong_type"},
      {R"({"type": 7})", "wrong_type"},
      {R"({"type": "discovery"})", "invalid_fields"},
      {R"({"type": "discovery", "node_id": 5, "grpc_port": 1})", "invalid_fields"},
      {with_bad_port, "invalid_fields"},
      {with_zero_port, "invalid_fields"},
      {datagram("node-x").replace(datagram("node-x").find("\"memory\": 1024"), 14, "\"memory\": \"lots\""),
       "invalid_fields"},
      {oversized, "too_large"},
      {datagram("node-a"), "self_id"},
  };
  std::map<std::string, std::uint64_t> expected;
  for (const auto& [payload, reason] : cases) {
    send_datagram(payload, port);
    ++expected[reason];
  }
  ASSERT_TRUE(wait_for([&] { return a->counters().datagrams_received >= cases.size(); }));
  const auto counters = a->counters();
  EXPECT_EQ(counters.datagrams_dropped, expected);
  EXPECT_EQ(counters.datagrams_accepted, 0U);
  EXPECT_EQ(a->peer_count(), 0U);
  EXPECT_EQ(a->state(), ResourceState::READY);
  EXPECT_NE(a->info().details.at("dropped").find("not_json=7"), std::string::npos);
  // Still works.
  send_datagram(valid, port);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  stop(a);
}

TEST_F(UdpDiscoveryTest, NodeIdFilterDropsOtherNodes) {
  const auto port = unused_udp_port();
  auto o = options("node-a", port, unused_udp_port());
  o.allowed_node_ids = {"node-b"};
  auto a = make(o);
  start(a);
  send_datagram(datagram("node-c"), port);
  send_datagram(datagram("node-b"), port);
  ASSERT_TRUE(wait_for([&] { return a->counters().datagrams_received == 2; }));
  EXPECT_EQ(a->peer_count(), 1U);
  EXPECT_TRUE(a->find_peer("node-b").has_value());
  EXPECT_EQ(a->counters().datagrams_dropped["node_id_filtered"], 1U);
  stop(a);
}

TEST_F(UdpDiscoveryTest, InterfaceTypeFilterAppliesToTheSendersLabel) {
  const auto port = unused_udp_port();
  auto o = options("node-a", port, unused_udp_port());
  o.allowed_interface_types = {"Ethernet", "Thunderbolt"};
  auto a = make(o);
  start(a);
  send_datagram(datagram("node-w", 50000, 3, "WiFi", "wlan0"), port);
  send_datagram(datagram("node-e", 50000, 4, "Ethernet", "eth0"), port);
  ASSERT_TRUE(wait_for([&] { return a->counters().datagrams_received == 2; }));
  EXPECT_EQ(a->peer_count(), 1U);
  EXPECT_TRUE(a->find_peer("node-e").has_value());
  EXPECT_EQ(a->counters().datagrams_dropped["interface_type_filtered"], 1U);
  stop(a);
}

TEST_F(UdpDiscoveryTest, InterfaceTypeFilterAlsoLimitsWhereWeBroadcast) {
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto a = make(options("node-a", port_a, port_b));
  auto o_b = options("node-b", port_b, port_a);
  o_b.list_interfaces = interfaces({fake_interface("lo", "127.0.0.1"), fake_interface("eth7", "127.0.0.3")});
  o_b.allowed_interface_types = {"Ethernet"};
  auto b = make(o_b);
  start(a);
  start(b);
  ASSERT_TRUE(wait_for([&] { return a->counters().datagrams_accepted >= 10; }));
  const auto peer = a->find_peer("node-b");
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->address, "127.0.0.3");  // never the (higher-priority) loopback address
  EXPECT_EQ(peer->interface_type, "Ethernet");
  EXPECT_EQ(peer->interface_priority, 4);
  EXPECT_EQ(a->counters().sightings_ignored["lower_priority"], 0U);
  stop(a);
  stop(b);
}

TEST_F(UdpDiscoveryTest, DegradedWhileBroadcastFailsOnEveryInterfaceThenRecovers) {
  auto broken = std::make_shared<std::atomic<bool>>(true);
  auto o = options("node-a", 0, unused_udp_port());
  // 198.51.100.7 is not an address of this host: binding a sender to it fails.
  o.list_interfaces = [broken]() -> Result<std::vector<Ipv4Interface>> {
    if (broken->load())
      return std::vector<Ipv4Interface>{fake_interface("eth9", "198.51.100.7", "255.255.255.0")};
    return std::vector<Ipv4Interface>{fake_interface("lo", "127.0.0.1")};
  };
  auto a = make(o);
  start(a);
  ASSERT_TRUE(wait_for([&] { return a->state() == ResourceState::DEGRADED; }));
  const auto health = run_sync(context, a->check_health());
  EXPECT_FALSE(health.healthy);
  EXPECT_NE(health.detail.find("broadcast failed on every interface"), std::string::npos) << health.detail;
  EXPECT_NE(health.detail.find("eth9 (198.51.100.7)"), std::string::npos) << health.detail;
  ASSERT_TRUE(a->info().last_error.has_value());
  *broken = false;
  ASSERT_TRUE(wait_for([&] { return a->state() == ResourceState::READY; }));
  EXPECT_TRUE(run_sync(context, a->check_health()).healthy);
  stop(a);
}

TEST_F(UdpDiscoveryTest, NoAllowedInterfaceIsDegraded) {
  auto o = options("node-a", 0, unused_udp_port());
  o.allowed_interface_types = {"Thunderbolt"};
  auto a = make(o);
  start(a);
  ASSERT_TRUE(wait_for([&] { return a->state() == ResourceState::DEGRADED; }));
  const auto health = run_sync(context, a->check_health());
  EXPECT_NE(health.detail.find("matches the interface type filter (Thunderbolt)"), std::string::npos)
      << health.detail;
  stop(a);
}

TEST_F(UdpDiscoveryTest, ListenPortInUseFailsInitializeNamingThePort) {
  asio::ip::udp::socket taken(context, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));  // no SO_REUSEADDR
  const auto port = taken.local_endpoint().port();
  auto a = make(options("node-a", port, unused_udp_port()));
  try {
    run_sync(context, a->initialize());
    FAIL() << "initialize should fail";
  } catch (const resource::InitializationError& e) {
    EXPECT_NE(std::string(e.what()).find("0.0.0.0:" + std::to_string(port)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
  EXPECT_EQ(a->state(), ResourceState::ERROR);
  stop(a);
}

TEST_F(UdpDiscoveryTest, DiscoverPeersWaitsForTheRequestedCountOrTheTimeout) {
  const auto port = unused_udp_port();
  auto a = make(options("node-a", port, unused_udp_port()));
  start(a);
  // Nobody else is there: returns what it has once the timeout passes.
  const auto started = std::chrono::steady_clock::now();
  const auto none = run_sync(context, a->discover_peers(1, 100ms));
  EXPECT_TRUE(none.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
  // Wakes as soon as the peer appears.
  std::optional<std::vector<DiscoveredPeer>> found;
  asio::co_spawn(context, a->discover_peers(1, 30s),
                 [&](std::exception_ptr, std::vector<DiscoveredPeer> peers) { found = std::move(peers); });
  ASSERT_TRUE(wait_for([&] { return a->counters().broadcast_rounds >= 2; }));
  EXPECT_FALSE(found.has_value());
  send_datagram(datagram("node-x"), port);
  ASSERT_TRUE(wait_for([&] { return found.has_value(); }, 5s));
  ASSERT_EQ(found->size(), 1U);
  EXPECT_EQ((*found)[0].node_id, "node-x");
  // Cleanup wakes a waiter with ClosedError.
  std::exception_ptr error;
  bool finished = false;
  asio::co_spawn(context, a->discover_peers(5, 30s), [&](std::exception_ptr e, std::vector<DiscoveredPeer>) {
    error = e;
    finished = true;
  });
  ASSERT_TRUE(wait_for([&] { return a->counters().broadcast_rounds >= 4; }));
  stop(a);
  ASSERT_TRUE(wait_for([&] { return finished; }, 5s));
  EXPECT_THROW(std::rethrow_exception(error), resource::ClosedError);
}

TEST_F(UdpDiscoveryTest, InvalidOptionsAreRejectedAtConstruction) {
  auto o = options("node-a", 0, 1);
  o.broadcast_targets = {"localhost"};
  EXPECT_THROW(make(o), std::invalid_argument);
  o = options("", 0, 1);
  EXPECT_THROW(make(o), std::invalid_argument);
  o = options("node-a", 0, 1);
  o.node_port = 0;
  EXPECT_THROW(make(o), std::invalid_argument);
  o = options("node-a", 0, 1);
  o.broadcast_interval = 0ms;
  EXPECT_THROW(make(o), std::invalid_argument);
}

TEST_F(UdpDiscoveryTest, ResetRestartsDiscoveryFromScratch) {
  const auto port = unused_udp_port();
  auto a = make(options("node-a", port, unused_udp_port()));
  start(a);
  send_datagram(datagram("node-x"), port);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  run_sync(context, a->reset());
  EXPECT_EQ(a->state(), ResourceState::READY);
  EXPECT_EQ(a->peer_count(), 0U);
  send_datagram(datagram("node-x"), port);
  ASSERT_TRUE(wait_for([&] { return a->peer_count() == 1; }));
  stop(a);
}

// Snapshots, listeners and report_peer_unhealthy from other threads while two threads run the loop.
TEST(UdpDiscoveryThreads, SnapshotsAreSafeWhileTheLoopRunsOnOtherThreads) {
  asio::io_context context;
  auto guard = asio::make_work_guard(context);
  const auto port_a = unused_udp_port();
  const auto port_b = unused_udp_port();
  auto make_options = [](const std::string& id, std::uint16_t listen, std::uint16_t target) {
    UdpDiscoveryOptions o;
    o.node_id = id;
    o.node_port = 50000;
    o.listen_port = listen;
    o.broadcast_port = target;
    o.broadcast_interval = 2ms;
    o.broadcast_targets = {"127.0.0.1"};
    o.list_interfaces = interfaces({fake_interface("lo", "127.0.0.1")});
    o.health_probe_interval = 10ms;
    o.health_probe = [](const DiscoveredPeer&) -> asio::awaitable<bool> { co_return true; };
    return o;
  };
  auto a =
      resource::make_resource<UdpDiscovery>(context.get_executor(), "a", make_options("a", port_a, port_b));
  auto b =
      resource::make_resource<UdpDiscovery>(context.get_executor(), "b", make_options("b", port_b, port_a));
  std::atomic<int> events{0};
  a->add_peer_listener([&](const PeerChange&) { ++events; });
  std::thread t1([&] { context.run(); });
  std::thread t2([&] { context.run(); });
  asio::co_spawn(context, a->initialize(), asio::use_future).get();
  asio::co_spawn(context, b->initialize(), asio::use_future).get();
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  int removals = 0;
  bool reported = false;  // for the current appearance of the peer
  for (;;) {
    const bool present = a->find_peer("b").has_value();
    if (events.load() >= 7 && present) break;  // added and removed three times, then added again
    if (std::chrono::steady_clock::now() >= deadline) break;
    for (const auto& peer : a->peers()) EXPECT_EQ(peer.node_id, "b");
    (void)a->counters();
    (void)a->info();
    if (!present) {
      reported = false;
    } else if (!reported && removals < 3) {
      a->report_peer_unhealthy("b", "test");
      reported = true;
      ++removals;
    }
    std::this_thread::yield();
  }
  EXPECT_EQ(removals, 3);
  EXPECT_GE(events.load(), 7);
  asio::co_spawn(context, a->cleanup(), asio::use_future).get();
  asio::co_spawn(context, b->cleanup(), asio::use_future).get();
  guard.reset();
  t1.join();
  t2.join();
  EXPECT_EQ(a->peer_count(), 0U);
}

}  // namespace
}  // namespace exo::net
