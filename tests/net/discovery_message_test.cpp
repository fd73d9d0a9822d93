#include "net/discovery_message.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace exo::net {
namespace {

using namespace std::string_literals;

DiscoveryMessage documented_example() {  // the example datagram of docs/wire-formats.md §3
  DiscoveryMessage message;
  message.node_id = "node-a";
  message.grpc_port = 50123;
  message.device_capabilities = {"MacBook Pro", "Apple M3 Max", 16384, {14.2, 28.4, 56.8}};
  message.priority = 4;
  message.interface_name = "en7";
  message.interface_type = "Ethernet";
  return message;
}

// What legacy's json.dumps writes for documented_example().
const std::string kDocumentedDatagram =
    R"({"type": "discovery", "node_id": "node-a", "grpc_port": 50123, )"
    R"("device_capabilities": {"model": "MacBook Pro", "chip": "Apple M3 Max", "memory": 16384, )"
    R"("flops": {"fp32": 14.2, "fp16": 28.4, "int8": 56.8}}, )"
    R"("priority": 4, "interface_name": "en7", "interface_type": "Ethernet"})";

TEST(DiscoveryMessage, EncodesExactlyLikeLegacy) {
  EXPECT_EQ(encode_discovery_message(documented_example()), kDocumentedDatagram);
}

TEST(DiscoveryMessage, ParsesTheLegacyDatagram) {
  const auto parsed = parse_discovery_message(kDocumentedDatagram);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, documented_example());
}

TEST(DiscoveryMessage, RoundTripsUnusualButValidValues) {
  DiscoveryMessage message = documented_example();
  message.node_id = "9a1b4c4e-6a3c-4c1e-9a7e-0c1d2e3f4a5b";
  message.grpc_port = 65535;
  message.priority = 0;
  message.interface_name = "";
  message.device_capabilities = {
      "Linux Box (\"quoted\" \\ caf\xc3\xa9 \xf0\x9f\x98\x80)", "", 0, {0.0, 1e-05, 1e6}};
  const auto parsed = parse_discovery_message(encode_discovery_message(message));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, message);
}

TEST(DiscoveryMessage, FloatsAndEscapesAreWrittenAsPythonWritesThem) {
  DiscoveryMessage message = documented_example();
  message.device_capabilities.model = "caf\xc3\xa9\x7f\n\xf0\x9f\x98\x80";
  message.device_capabilities.flops = {0.0, 1e-05, 123456.125};
  const std::string datagram = encode_discovery_message(message);
  // Python: json.dumps("café\x7f\n😀") and repr() of 0.0, 1e-05, 123456.125.
  EXPECT_NE(datagram.find(R"("model": "caf\u00e9\u007f\n\ud83d\ude00")"), std::string::npos) << datagram;
  EXPECT_NE(datagram.find(R"("flops": {"fp32": 0.0, "fp16": 1e-05, "int8": 123456.125}})"), std::string::npos)
      << datagram;
  message.device_capabilities.flops = {0.0001, 1.5e-07, 1e6};
  EXPECT_NE(encode_discovery_message(message).find(R"({"fp32": 0.0001, "fp16": 1.5e-07, "int8": 1000000.0})"),
            std::string::npos);
}

TEST(DiscoveryMessage, EncodeRejectsInvalidMessages) {
  auto empty_id = documented_example();
  empty_id.node_id.clear();
  EXPECT_THROW((void)encode_discovery_message(empty_id), std::invalid_argument);
  auto port_zero = documented_example();
  port_zero.grpc_port = 0;
  EXPECT_THROW((void)encode_discovery_message(port_zero), std::invalid_argument);
  auto nan_flops = documented_example();
  nan_flops.device_capabilities.flops.fp16 = std::nan("");
  EXPECT_THROW((void)encode_discovery_message(nan_flops), std::invalid_argument);
  auto high_priority = documented_example();
  high_priority.priority = kMaxInterfacePriority + 1;
  EXPECT_FALSE(validate_discovery_message(high_priority).empty());
  EXPECT_TRUE(validate_discovery_message(documented_example()).empty());
}

TEST(DiscoveryMessage, AcceptsAnyFormattingAndExtraKeys) {
  const std::string compact =
      R"({"interface_type":"Ethernet","interface_name":"en7","priority":4,"grpc_port":50123,)"
      R"("node_id":"node-a","type":"discovery","timestamp":1715700000.5,"broadcast_count":7,)"
      R"("auth":{"token_id":"t","signature":"s","timestamp":1715700000.5},)"
      R"("device_capabilities":{"flops":{"int8":56.8,"fp16":28.4,"fp32":14.2},"memory":16384,)"
      R"("chip":"Apple M3 Max","model":"MacBook Pro","extra":[1,2]}})";
  const auto parsed = parse_discovery_message("\n  " + compact + " \r\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, documented_example());
}

nlohmann::json documented_json() {
  return nlohmann::json::parse(kDocumentedDatagram);
}

TEST(DiscoveryMessage, MissingFieldsAreErrors) {
  for (const char* key : {"type", "node_id", "grpc_port", "device_capabilities", "priority", "interface_name",
                          "interface_type"}) {
    auto json = documented_json();
    json.erase(key);
    EXPECT_FALSE(parse_discovery_message(json.dump()).ok()) << key;
  }
  for (const char* key : {"model", "chip", "memory", "flops"}) {
    auto json = documented_json();
    json["device_capabilities"].erase(key);
    EXPECT_FALSE(parse_discovery_message(json.dump()).ok()) << key;
  }
  auto json = documented_json();
  json["device_capabilities"]["flops"].erase("int8");
  EXPECT_FALSE(parse_discovery_message(json.dump()).ok());
}

TEST(DiscoveryMessage, WrongTypesAreErrors) {
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"type", 1},
      {"type", "announce"},
      {"node_id", 5},
      {"node_id", ""},
      {"node_id", nullptr},
      {"grpc_port", "50123"},
      {"grpc_port", 50123.5},
      {"grpc_port", true},
      {"priority", "4"},
      {"priority", 4.5},
      {"interface_name", 7},
      {"interface_type", nlohmann::json::array()},
      {"device_capabilities", "big"},
      {"device_capabilities", nlohmann::json::array()},
  };
  for (const auto& [key, value] : cases) {
    auto json = documented_json();
    json[key] = value;
    EXPECT_FALSE(parse_discovery_message(json.dump()).ok()) << key << " = " << value.dump();
  }
  auto memory_as_string = documented_json();
  memory_as_string["device_capabilities"]["memory"] = "16384";
  EXPECT_FALSE(parse_discovery_message(memory_as_string.dump()).ok());
  auto flops_as_string = documented_json();
  flops_as_string["device_capabilities"]["flops"]["fp16"] = "28.4";
  EXPECT_FALSE(parse_discovery_message(flops_as_string.dump()).ok());
}

TEST(DiscoveryMessage, AbsurdNumbersAreErrors) {
  const std::string replacements[][2] = {
      {"50123", "0"},
      {"50123", "65536"},
      {"50123", "-1"},
      {"50123", "1e400"},
      {"50123", "99999999999999999999999"},
      {"\"priority\": 4", "\"priority\": 101"},
      {"\"priority\": 4", "\"priority\": -1"},
      {"16384", "-16384"},
      {"16384", "2147483648"},
      {"16384", "1e300"},
      {"14.2", "-14.2"},
      {"14.2", "1e400"},
      {"14.2", "NaN"},
      {"14.2", "Infinity"},
      {"14.2", "1e7"},
  };
  for (const auto& [from, to] : replacements) {
    std::string datagram = kDocumentedDatagram;
    datagram.replace(datagram.find(from), from.size(), to);
    EXPECT_FALSE(parse_discovery_message(datagram).ok()) << datagram;
  }
}

TEST(DiscoveryMessage, TruncatedDatagramsAreErrors) {
  for (std::size_t length = 0; length < kDocumentedDatagram.size(); ++length) {
    EXPECT_FALSE(parse_discovery_message(std::string_view(kDocumentedDatagram).substr(0, length)).ok())
        << length;
  }
}

TEST(DiscoveryMessage, RandomBytesAreErrors) {
  std::mt19937 generator(20240515);  // fixed seed: the same inputs every run
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 600);
  for (int i = 0; i < 2000; ++i) {
    std::string datagram(length(generator), '\0');
    for (auto& c : datagram) c = static_cast<char>(byte(generator));
    if (i % 2 == 0 && !datagram.empty()) datagram[0] = '{';  // get past the first-byte check
    EXPECT_FALSE(parse_discovery_message(datagram).ok());
  }
}

TEST(DiscoveryMessage, MutatedDatagramsNeverCrash) {
  // Flip single bytes of a valid datagram; whatever the outcome, the parser must return normally
  // and anything it accepts must satisfy the encoder's validation.
  std::mt19937 generator(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> position(0, kDocumentedDatagram.size() - 1);
  for (int i = 0; i < 3000; ++i) {
    std::string datagram = kDocumentedDatagram;
    datagram[position(generator)] = static_cast<char>(byte(generator));
    const auto parsed = parse_discovery_message(datagram);
    if (parsed.ok()) {
      EXPECT_TRUE(validate_discovery_message(*parsed).empty()) << datagram;
    }
  }
}

TEST(DiscoveryMessage, NonObjectsAndInvalidTextAreErrors) {
  for (const std::string& datagram :
       {""s, "   "s, "[]"s, "[{\"type\": \"discovery\"}]"s, "null"s, "\"discovery\""s, "{"s, "{}"s,
        "{\"type\": \"discovery\"}"s, "\xef\xbb\xbf{}"s, "{\"type\": \"discovery\"} trailing"s}) {
    EXPECT_FALSE(parse_discovery_message(datagram).ok()) << datagram;
  }
  std::string invalid_utf8 = kDocumentedDatagram;
  invalid_utf8.replace(invalid_utf8.find("node-a"), 6, "node-\xff");
  EXPECT_FALSE(parse_discovery_message(invalid_utf8).ok());
  std::string embedded_nul = kDocumentedDatagram;
  embedded_nul.replace(embedded_nul.find("node-a"), 6, "node\0a"s);
  EXPECT_FALSE(parse_discovery_message(embedded_nul).ok());
}

TEST(DiscoveryMessage, DeepNestingIsAnError) {
  const std::string deep =
      R"({"type": "discovery", "x": )" + std::string(30000, '[') + std::string(30000, ']') + "}";
  ASSERT_LT(deep.size(), kMaxDiscoveryDatagramBytes);
  const auto parsed = parse_discovery_message(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("nested"), std::string::npos);
  // Unbalanced too: only opening brackets.
  EXPECT_FALSE(parse_discovery_message("{\"a\": " + std::string(60000, '{')).ok());
}

TEST(DiscoveryMessage, LongStringsAndOversizeDatagramsAreErrors) {
  auto long_id = documented_json();
  long_id["node_id"] = std::string(kMaxNodeIdBytes + 1, 'n');
  EXPECT_FALSE(parse_discovery_message(long_id.dump()).ok());
  auto long_interface = documented_json();
  long_interface["interface_name"] = std::string(kMaxInterfaceFieldBytes + 1, 'e');
  EXPECT_FALSE(parse_discovery_message(long_interface.dump()).ok());
  auto long_model = documented_json();
  long_model["device_capabilities"]["model"] = std::string(5000, 'm');
  EXPECT_FALSE(parse_discovery_message(long_model.dump()).ok());
  auto padded = documented_json();
  padded["padding"] = std::string(kMaxDiscoveryDatagramBytes, ' ');
  const auto parsed = parse_discovery_message(padded.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("too large"), std::string::npos);
}

}  // namespace
}  // namespace exo::net
