#include "topology/json_fields.h"

#include <cmath>
#include <limits>

namespace exo::topology {
namespace {

const nlohmann::json* find_field(const nlohmann::json& object, std::string_view key, std::string& error) {
  if (!object.is_object()) {
    error = "expected a JSON object";
    return nullptr;
  }
  const auto it = object.find(key);
  if (it == object.end()) {
    error = std::string(key) + ": missing";
    return nullptr;
  }
  return &*it;
}

}  // namespace

bool read_string_field(const nlohmann::json& object, std::string_view key, std::size_t max_bytes,
                       std::string& out, std::string& error) {
  const nlohmann::json* value = find_field(object, key, error);
  if (value == nullptr) return false;
  if (!value->is_string()) {
    error = std::string(key) + ": expected a string";
    return false;
  }
  const auto& text = value->get_ref<const std::string&>();
  if (text.size() > max_bytes) {
    error = std::string(key) + ": longer than " + std::to_string(max_bytes) + " bytes";
    return false;
  }
  out = text;
  return true;
}

bool read_integer_field(const nlohmann::json& object, std::string_view key, std::int64_t min,
                        std::int64_t max, std::int64_t& out, std::string& error, bool allow_integral_float) {
  const nlohmann::json* value = find_field(object, key, error);
  if (value == nullptr) return false;
  const std::string range =
      std::string(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max);
  if (value->is_number_unsigned()) {
    const auto number = value->get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        static_cast<std::int64_t>(number) > max || static_cast<std::int64_t>(number) < min) {
      error = range;
      return false;
    }
    out = static_cast<std::int64_t>(number);
    return true;
  }
  if (value->is_number_integer()) {
    const auto number = value->get<std::int64_t>();
    if (number < min || number > max) {
      error = range;
      return false;
    }
    out = number;
    return true;
  }
  if (allow_integral_float && value->is_number_float()) {
    const double number = value->get<double>();
    // Range check in double first, so the conversion below is always defined.
    constexpr double kTwoPow63 = 9223372036854775808.0;  // first double outside int64
    if (!std::isfinite(number) || number != std::floor(number) || number < -kTwoPow63 ||
        number >= kTwoPow63 || number < static_cast<double>(min) || number > static_cast<double>(max)) {
      error = range + " and integral";
      return false;
    }
    out = static_cast<std::int64_t>(number);
    if (out < min || out > max) {  // static_cast<double>(max) may have rounded up
      error = range;
      return false;
    }
    return true;
  }
  error = std::string(key) + ": expected an integer";
  return false;
}

bool read_int32_field(const nlohmann::json& object, std::string_view key, std::int32_t& out,
                      std::string& error) {
  std::int64_t wide = 0;
  if (!read_integer_field(object, key, std::numeric_limits<std::int32_t>::min(),
                          std::numeric_limits<std::int32_t>::max(), wide, error)) {
    return false;
  }
  out = static_cast<std::int32_t>(wide);
  return true;
}

bool read_number_field(const nlohmann::json& object, std::string_view key, double min, double max,
                       double& out, std::string& error) {
  const nlohmann::json* value = find_field(object, key, error);
  if (value == nullptr) return false;
  if (!value->is_number()) {
    error = std::string(key) + ": expected a number";
    return false;
  }
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < min || number > max) {
    error = std::string(key) + ": must be a finite number between " + std::to_string(min) + " and " +
            std::to_string(max);
    return false;
  }
  out = number;
  return true;
}

}  // namespace exo::topology

namespace exo::topology {

bool json_nesting_within(std::string_view text, std::size_t max_depth) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace exo::topology
