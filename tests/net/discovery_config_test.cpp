// The manual discovery file format (§4): what is accepted and the error named for each problem.
#include "net/discovery_config.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace exo::net {
namespace {

const char* kCaps =
    R"({"model": "M", "chip": "C", "memory": 1024, "flops": {"fp32": 1, "fp16": 2, "int8": 4}})";

std::string peer_json(const std::string& address = R"("localhost")", const std::string& port = "50051",
                      const std::string& caps = kCaps) {
  return R"({"address": )" + address + R"(, "port": )" + port + R"(, "device_capabilities": )" + caps + "}";
}

TEST(DiscoveryConfig, ParsesTheLegacyExample) {
  const std::string text = R"({"peers": {
    "node1": {"address": "localhost", "port": 50051,
              "device_capabilities": {"model": "Unknown Model", "chip": "Unknown Chip", "memory": 0,
                                      "flops": {"fp32": 0, "fp16": 0, "int8": 0}}},
    "node2": {"address": "10.0.0.2", "port": 50052, "extra": true,
              "device_capabilities": {"model": "Mac", "chip": "M3", "memory": 16384.0,
                                      "flops": {"fp32": 14.2, "fp16": 28.4, "int8": 56.8}}}}})";
  const auto config = parse_discovery_config(text);
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->peers.size(), 2U);
  const auto& node2 = config->peers.at("node2");
  EXPECT_EQ(node2.node_id, "node2");
  EXPECT_EQ(node2.address, "10.0.0.2");
  EXPECT_EQ(node2.port, 50052);
  EXPECT_EQ(node2.device_capabilities.memory_mb, 16384);
  EXPECT_DOUBLE_EQ(node2.device_capabilities.flops.int8, 56.8);
  EXPECT_EQ(config->peers.at("node1").device_capabilities.model, "Unknown Model");
}

TEST(DiscoveryConfig, EmptyPeerMapIsValid) {
  const auto config = parse_discovery_config(R"({"peers": {}})");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->peers.empty());
}

TEST(DiscoveryConfig, EveryProblemIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"   \n", "empty"},
      {"{\"peers\": {", "not valid JSON"},
      {"not json", "not valid JSON"},
      {"[1, 2]", "top level must be a JSON object"},
      {"{}", "peers: missing"},
      {R"({"peers": []})", "peers: expected a JSON object"},
      {R"({"peers": {"": )" + peer_json() + "}}", "node id is empty"},
      {R"({"peers": {"n": 5}})", "peers.n: expected a JSON object"},
      {R"({"peers": {"n": {"port": 1, "device_capabilities": {}}}})", "peers.n.address: missing"},
      {R"({"peers": {"n": )" + peer_json("42") + "}}", "peers.n.address: expected a string"},
      {R"({"peers": {"n": )" + peer_json(R"("")") + "}}", "peers.n.address: must be a non-empty"},
      {R"({"peers": {"n": )" + peer_json(R"("bad host")") + "}}", "peers.n.address: must be a non-empty"},
      {R"({"peers": {"n": {"address": "h", "device_capabilities": {}}}})", "peers.n.port: missing"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", R"("50051")") + "}}", "peers.n.port: expected an integer"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", "0") + "}}", "peers.n.port: must be between 1 and 65535"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", "70000") + "}}",
       "peers.n.port: must be between 1 and 65535"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", "5.5") + "}}", "peers.n.port: expected an integer"},
      {R"({"peers": {"n": {"address": "h", "port": 1}}})", "peers.n.device_capabilities: missing"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", "1", "[]") + "}}",
       "peers.n.device_capabilities: expected a JSON object"},
      {R"({"peers": {"n": )" +
           peer_json(R"("h")", "1", R"({"model": "M", "chip": "C", "memory": -1, "flops": {}})") + "}}",
       "peers.n.device_capabilities: memory"},
      {R"({"peers": {"n": )" + peer_json(R"("h")", "1", R"({"model": "M", "chip": "C", "memory": 1})") + "}}",
       "peers.n.device_capabilities: flops: missing"},
      {std::string(200, '[') + std::string(200, ']'), "nested too deeply"},
  };
  for (const auto& [text, expected] : cases) {
    const auto config = parse_discovery_config(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_NE(config.error().message.find(expected), std::string::npos)
        << "input: " << text << "\nerror: " << config.error().message << "\nexpected: " << expected;
  }
}

TEST(DiscoveryConfig, OversizedTextIsRefused) {
  const std::string text = R"({"peers": {}, "pad": ")" + std::string(kMaxDiscoveryConfigBytes, 'x') + "\"}";
  const auto config = parse_discovery_config(text);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("larger than"), std::string::npos);
}

TEST(DiscoveryConfig, MissingFileNamesThePath) {
  const auto config = load_discovery_config("/nonexistent-dir/exo-topology.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("/nonexistent-dir/exo-topology.json"), std::string::npos);
  EXPECT_NE(config.error().message.find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace exo::net
