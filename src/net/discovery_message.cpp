#include "net/discovery_message.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "topology/json_fields.h"

namespace exo::net {
namespace {

// A JSON string literal as Python's json.dumps (ensure_ascii=True) writes it.
std::string python_json_string(const std::string& text) {
  std::string quoted =
      nlohmann::json(text).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  // nlohmann leaves DEL (0x7F) raw; Python escapes every character outside ' '..'~'.
  std::string result;
  result.reserve(quoted.size());
  for (const char c : quoted) {
    if (c == '\x7f') {
      result += "\\u007f";
    } else {
      result += c;
    }
  }
  return result;
}

// A finite double as Python's repr() writes it: shortest round-trip digits, fixed notation with at
// least one fractional digit when 1e-4 <= |x| < 1e16, otherwise d[.ddd]e+XX.
std::string python_float_repr(double value) {
  if (value == 0.0) return std::signbit(value) ? "-0.0" : "0.0";
  char buffer[64];
  const auto [end, error] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  if (error != std::errc{}) return "0.0";
  std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
  std::string sign;
  if (text.front() == '-') {
    sign = "-";
    text.remove_prefix(1);
  }
  const auto e = text.find('e');
  std::string digits;
  for (const char c : text.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::string_view exponent_text = text.substr(e + 1);
  if (exponent_text.front() == '+') exponent_text.remove_prefix(1);
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();

  const int decimal_point = exponent + 1;  // digits are 0.d1d2... * 10^decimal_point
  const auto digit_count = static_cast<int>(digits.size());
  std::string out = sign;
  if (decimal_point > -4 && decimal_point <= 16) {
    if (decimal_point <= 0) {
      out += "0." + std::string(static_cast<std::size_t>(-decimal_point), '0') + digits;
    } else if (decimal_point >= digit_count) {
      out += digits + std::string(static_cast<std::size_t>(decimal_point - digit_count), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(decimal_point)) + "." +
             digits.substr(static_cast<std::size_t>(decimal_point));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digit_count > 1) out += "." + digits.substr(1);
  const int shown_exponent = decimal_point - 1;
  out += shown_exponent < 0 ? "e-" : "e+";
  const int magnitude = std::abs(shown_exponent);
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

bool is_valid_tflops(double value) {
  return std::isfinite(value) && value >= 0.0 && value <= topology::kMaxPlausibleTflops;
}

}  // namespace

std::string validate_discovery_message(const DiscoveryMessage& message) {
  const auto& capabilities = message.device_capabilities;
  if (message.node_id.empty()) return "node_id is empty";
  if (message.node_id.size() > kMaxNodeIdBytes) return "node_id is too long";
  if (message.grpc_port == 0) return "grpc_port is 0";
  if (message.priority < kMinInterfacePriority || message.priority > kMaxInterfacePriority) {
    return "priority is out of range";
  }
  if (message.interface_name.size() > kMaxInterfaceFieldBytes ||
      message.interface_type.size() > kMaxInterfaceFieldBytes) {
    return "interface_name or interface_type is too long";
  }
  if (capabilities.model.size() > topology::kMaxJsonStringBytes ||
      capabilities.chip.size() > topology::kMaxJsonStringBytes) {
    return "device model or chip is too long";
  }
  if (capabilities.memory_mb < 0) return "device memory is negative";
  if (!is_valid_tflops(capabilities.flops.fp32) || !is_valid_tflops(capabilities.flops.fp16) ||
      !is_valid_tflops(capabilities.flops.int8)) {
    return "device flops are not finite numbers in range";
  }
  return {};
}

std::string encode_discovery_message(const DiscoveryMessage& message) {
  if (auto problem = validate_discovery_message(message); !problem.empty()) {
    throw std::invalid_argument("encode_discovery_message: " + problem);
  }
  const auto& capabilities = message.device_capabilities;
  std::string out;
  out.reserve(320);
  out += R"({"type": "discovery", "node_id": )" + python_json_string(message.node_id);
  out += ", \"grpc_port\": " + std::to_string(message.grpc_port);
  out += ", \"device_capabilities\": {\"model\": " + python_json_string(capabilities.model);
  out += ", \"chip\": " + python_json_string(capabilities.chip);
  out += ", \"memory\": " + std::to_string(capabilities.memory_mb);
  out += ", \"flops\": {\"fp32\": " + python_float_repr(capabilities.flops.fp32);
  out += ", \"fp16\": " + python_float_repr(capabilities.flops.fp16);
  out += ", \"int8\": " + python_float_repr(capabilities.flops.int8) + "}}";
  out += ", \"priority\": " + std::to_string(message.priority);
  out += ", \"interface_name\": " + python_json_string(message.interface_name);
  out += ", \"interface_type\": " + python_json_string(message.interface_type) + "}";
  return out;
}

Result<DiscoveryMessage> parse_discovery_message(std::string_view datagram) {
  if (datagram.size() > kMaxDiscoveryDatagramBytes) return Error{"discovery: datagram too large"};
  const auto first = datagram.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Error{"discovery: empty datagram"};
  if (datagram[first] != '{') return Error{"discovery: not a JSON object"};
  if (!topology::json_nesting_within(datagram, kMaxDiscoveryJsonDepth)) {
    return Error{"discovery: JSON nested too deeply"};
  }
  const nlohmann::json json = nlohmann::json::parse(datagram.begin(), datagram.end(), nullptr,
                                                    /*allow_exceptions=*/false);
  if (json.is_discarded()) return Error{"discovery: not valid JSON"};
  if (!json.is_object()) return Error{"discovery: not a JSON object"};

  std::string error;
  std::string type;
  if (!topology::read_string_field(json, "type", 64, type, error)) return Error{"discovery: " + error};
  if (type != "discovery") return Error{"discovery: type is not \"discovery\""};

  DiscoveryMessage message;
  std::int64_t port = 0;
  std::int64_t priority = 0;
  if (!topology::read_string_field(json, "node_id", kMaxNodeIdBytes, message.node_id, error) ||
      !topology::read_integer_field(json, "grpc_port", 1, std::numeric_limits<std::uint16_t>::max(), port,
                                    error) ||
      !topology::read_integer_field(json, "priority", kMinInterfacePriority, kMaxInterfacePriority, priority,
                                    error) ||
      !topology::read_string_field(json, "interface_name", kMaxInterfaceFieldBytes, message.interface_name,
                                   error) ||
      !topology::read_string_field(json, "interface_type", kMaxInterfaceFieldBytes, message.interface_type,
                                   error)) {
    return Error{"discovery: " + error};
  }
  if (message.node_id.empty()) return Error{"discovery: node_id: empty"};
  message.grpc_port = static_cast<std::uint16_t>(port);
  message.priority = static_cast<std::int32_t>(priority);

  const auto capabilities_field = json.find("device_capabilities");
  if (capabilities_field == json.end()) return Error{"discovery: device_capabilities: missing"};
  auto capabilities = topology::device_capabilities_from_json(*capabilities_field);
  if (!capabilities) return Error{"discovery: " + capabilities.error().message};
  message.device_capabilities = std::move(capabilities).value();
  return message;
}

}  // namespace exo::net
