// ManualDiscovery: loading the §4 file, startup errors, runtime edits (added, removed, moved peers,
// changed capabilities), invalid edits (last good kept, DEGRADED, recovery), probes and self exclusion.
#include "net/manual_discovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "discovery_test_support.h"
#include "resource/errors.h"

namespace exo::net {
namespace {

using namespace exo::net::testing;
using resource::ResourceState;

struct PeerSpec {
  std::string id;
  std::string address = "127.0.0.1";
  int port = 50051;
  int memory = 1024;
};

std::string config_text(const std::vector<PeerSpec>& peers) {
  std::string text = "{\"peers\": {";
  for (std::size_t i = 0; i < peers.size(); ++i) {
    const auto& p = peers[i];
    if (i > 0) text += ", ";
    text += "\"" + p.id + "\": {\"address\": \"" + p.address + "\", \"port\": " + std::to_string(p.port) +
            ", \"device_capabilities\": {\"model\": \"M\", \"chip\": \"C\", \"memory\": " +
            std::to_string(p.memory) + ", \"flops\": {\"fp32\": 1.0, \"fp16\": 2.0, \"int8\": 4.0}}}";
  }
  return text + "}}";
}

class ManualDiscoveryTest : public ::testing::Test {
 protected:
  asio::io_context context;
  std::filesystem::path directory;
  std::filesystem::path path;

  void SetUp() override {
    static std::atomic<int> counter{0};
    directory = std::filesystem::temp_directory_path() /
                ("exo-manual-discovery-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(directory);
    path = directory / "topology.json";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }

  // Writes the file atomically (write + rename), as editors do.
  void write(const std::string& text) {
    const auto temporary = directory / "topology.json.tmp";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << text;
    }
    std::filesystem::rename(temporary, path);
  }

  ManualDiscoveryOptions options(const std::string& node_id = "node1") {
    ManualDiscoveryOptions o;
    o.node_id = node_id;
    o.config_path = path.string();
    o.reload_interval = 10ms;
    o.health_probe_interval = 1s;
    return o;
  }

  std::shared_ptr<ManualDiscovery> make(ManualDiscoveryOptions o) {
    return resource::make_resource<ManualDiscovery>(context.get_executor(), "discovery-" + o.node_id,
                                                    std::move(o));
  }
  void start(const std::shared_ptr<ManualDiscovery>& d) { run_sync(context, d->initialize()); }
  void stop(const std::shared_ptr<ManualDiscovery>& d) { run_sync(context, d->cleanup()); }
  bool wait_for(const std::function<bool()>& done) { return run_until(context, done); }

  std::vector<std::string> ids(const std::shared_ptr<ManualDiscovery>& d) {
    std::vector<std::string> out;
    for (const auto& peer : d->peers()) out.push_back(peer.node_id);
    return out;
  }
};

TEST_F(ManualDiscoveryTest, LoadsPeersAndExcludesItself) {
  write(
      config_text({{"node1", "127.0.0.1", 50051}, {"node2", "10.0.0.2", 50052}, {"node3", "host-3", 50053}}));
  auto d = make(options("node1"));
  PeerLog log;
  log.attach(*d);
  start(d);
  EXPECT_EQ(ids(d), (std::vector<std::string>{"node2", "node3"}));
  const auto node2 = d->find_peer("node2");
  ASSERT_TRUE(node2.has_value());
  EXPECT_EQ(node2->address, "10.0.0.2");
  EXPECT_EQ(node2->port, 50052);
  EXPECT_EQ(node2->capabilities, (topology::DeviceCapabilities{"M", "C", 1024, {1.0, 2.0, 4.0}}));
  EXPECT_EQ(node2->description(), "MAN");
  EXPECT_EQ(d->find_peer("node3")->address, "host-3");
  EXPECT_FALSE(d->find_peer("node1").has_value());
  EXPECT_EQ(log.count(PeerChangeKind::ADDED), 2U);
  EXPECT_EQ(d->info().details.at("self_listed"), "yes");
  EXPECT_EQ(d->state(), ResourceState::READY);
  stop(d);
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED, "", PeerRemovalReason::STOPPED), 2U);
  EXPECT_TRUE(d->config().peers.empty());
}

TEST_F(ManualDiscoveryTest, InvalidFileAtStartupFailsInitializeNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the file is empty"},
      {"{\"peers\": ", "not valid JSON"},
      {"{\"nodes\": {}}", "peers: missing"},
      {R"({"peers": {"node2": {"address": "h", "device_capabilities": {}}}})", "peers.node2.port: missing"},
      {R"({"peers": {"node2": {"address": "h", "port": "x"}}})", "peers.node2.port: expected an integer"},
      {R"({"peers": {"node2": {"port": 5}}})", "peers.node2.address: missing"},
      {R"({"peers": {"node2": {"address": "h", "port": 5}}})", "peers.node2.device_capabilities: missing"},
  };
  for (const auto& [text, expected] : cases) {
    write(text);
    auto d = make(options());
    try {
      start(d);
      ADD_FAILURE() << "initialize accepted: " << text;
    } catch (const resource::InitializationError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    }
    EXPECT_EQ(d->state(), ResourceState::ERROR);
    EXPECT_EQ(d->peer_count(), 0U);
    stop(d);
  }
  std::filesystem::remove(path);
  auto d = make(options());
  EXPECT_THROW(start(d), resource::InitializationError);
  ASSERT_TRUE(d->info().last_error.has_value());
  EXPECT_NE(d->info().last_error->message.find("No such file"), std::string::npos);
  stop(d);
}

TEST_F(ManualDiscoveryTest, RuntimeEditsAddRemoveMoveAndUpdatePeers) {
  write(config_text({{"node1"}, {"node2", "127.0.0.2", 50052}, {"node3", "127.0.0.3", 50053}}));
  auto d = make(options());
  PeerLog log;
  log.attach(*d);
  start(d);
  ASSERT_EQ(ids(d), (std::vector<std::string>{"node2", "node3"}));

  // node4 added, node3 removed.
  write(config_text({{"node1"}, {"node2", "127.0.0.2", 50052}, {"node4", "127.0.0.4", 50054}}));
  ASSERT_TRUE(wait_for([&] { return ids(d) == std::vector<std::string>{"node2", "node4"}; }));
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED, "node3", PeerRemovalReason::FILE_EDIT), 1U);
  EXPECT_EQ(log.count(PeerChangeKind::ADDED, "node4"), 1U);

  // node2 moves to another port: removed, then added at the new address.
  write(config_text({{"node1"}, {"node2", "127.0.0.2", 50060}, {"node4", "127.0.0.4", 50054}}));
  ASSERT_TRUE(wait_for([&] { return d->find_peer("node2") && d->find_peer("node2")->port == 50060; }));
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED, "node2", PeerRemovalReason::FILE_EDIT), 1U);
  EXPECT_EQ(log.count(PeerChangeKind::ADDED, "node2"), 2U);

  // node4's capabilities change: UPDATED in place.
  write(config_text({{"node1"}, {"node2", "127.0.0.2", 50060}, {"node4", "127.0.0.4", 50054, 4096}}));
  ASSERT_TRUE(wait_for([&] { return log.count(PeerChangeKind::UPDATED, "node4") == 1; }));
  EXPECT_EQ(d->find_peer("node4")->capabilities.memory_mb, 4096);
  EXPECT_EQ(log.changes.back().previous->capabilities.memory_mb, 1024);
  EXPECT_EQ(d->state(), ResourceState::READY);
  EXPECT_GE(d->counters().config_loads, 4U);
  stop(d);
}

TEST_F(ManualDiscoveryTest, BadEditKeepsTheLastGoodConfigAndDegradesUntilFixed) {
  write(config_text({{"node1"}, {"node2"}}));
  auto d = make(options());
  PeerLog log;
  log.attach(*d);
  start(d);
  ASSERT_EQ(d->peer_count(), 1U);

  write(R"({"peers": {"node2": {"address": "127.0.0.1", "port": 99999, "device_capabilities": {}}}})");
  ASSERT_TRUE(wait_for([&] { return d->state() == ResourceState::DEGRADED; }));
  EXPECT_NE(d->last_config_error().find("peers.node2.port: must be between 1 and 65535"), std::string::npos)
      << d->last_config_error();
  EXPECT_EQ(d->peer_count(), 1U);  // the last good configuration stays in force
  EXPECT_EQ(d->config().peers.size(), 2U);
  const auto health = run_sync(context, d->check_health());
  EXPECT_FALSE(health.healthy);
  EXPECT_NE(health.detail.find("keeping the last good configuration"), std::string::npos);
  EXPECT_NE(d->info().details.at("config_error").find("peers.node2.port"), std::string::npos);

  // Deleting the file is an invalid edit too.
  std::filesystem::remove(path);
  ASSERT_TRUE(wait_for([&] { return d->last_config_error().find("No such file") != std::string::npos; }));
  EXPECT_EQ(d->state(), ResourceState::DEGRADED);

  write(config_text({{"node1"}, {"node2"}, {"node5", "127.0.0.5", 50055}}));
  ASSERT_TRUE(wait_for([&] { return d->state() == ResourceState::READY && d->peer_count() == 2; }));
  EXPECT_TRUE(d->last_config_error().empty());
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED), 0U);
  EXPECT_GE(d->counters().config_errors, 2U);
  stop(d);
}

TEST_F(ManualDiscoveryTest, PeersEnterOnlyAfterAHealthyProbeAndLeaveWhenItFails) {
  write(config_text({{"node1"}, {"good", "127.0.0.2", 50052}, {"bad", "127.0.0.3", 50053}}));
  auto good_healthy = std::make_shared<std::atomic<bool>>(true);
  auto probes = std::make_shared<std::atomic<int>>(0);
  auto o = options();
  o.health_probe_interval = 100ms;
  o.health_probe = [good_healthy, probes](const DiscoveredPeer& peer) -> asio::awaitable<bool> {
    ++*probes;
    co_return peer.node_id == "good" && good_healthy->load();
  };
  auto d = make(o);
  PeerLog log;
  log.attach(*d);
  const auto started = std::chrono::steady_clock::now();
  start(d);
  ASSERT_TRUE(wait_for([&] { return d->peer_count() == 1; }));
  EXPECT_TRUE(d->find_peer("good").has_value());
  // Both are re-probed periodically, not on every 10 ms reload.
  ASSERT_TRUE(wait_for([&] { return d->counters().probes_failed >= 3; }));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LE(*probes, 2 * (2 + elapsed / 100ms));
  EXPECT_FALSE(d->find_peer("bad").has_value());

  *good_healthy = false;
  ASSERT_TRUE(wait_for([&] { return d->peer_count() == 0; }));
  EXPECT_EQ(log.count(PeerChangeKind::REMOVED, "good", PeerRemovalReason::HEALTH_FAILED), 1U);
  *good_healthy = true;
  ASSERT_TRUE(wait_for([&] { return d->peer_count() == 1; }));
  EXPECT_EQ(log.count(PeerChangeKind::ADDED, "good"), 2U);
  stop(d);
}

TEST_F(ManualDiscoveryTest, FileWithoutTheLocalNodeIsAccepted) {
  write(config_text({{"node2"}}));
  auto d = make(options("node9"));
  start(d);
  EXPECT_EQ(ids(d), (std::vector<std::string>{"node2"}));
  EXPECT_EQ(d->info().details.at("self_listed"), "no");
  stop(d);
}

TEST_F(ManualDiscoveryTest, DiscoverPeersReturnsTheConfiguredPeers) {
  write(config_text({{"node1"}, {"node2"}, {"node3", "127.0.0.3"}}));
  auto d = make(options());
  // discover_peers initializes on demand, like legacy's start + discover_peers.
  const auto peers = run_sync(context, d->discover_peers(2, 5s));
  EXPECT_EQ(peers.size(), 2U);
  EXPECT_EQ(d->state(), ResourceState::READY);
  stop(d);
}

}  // namespace
}  // namespace exo::net
