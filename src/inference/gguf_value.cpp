#include "inference/gguf_value.h"

#include <limits>

namespace exo::inference {

std::string_view gguf_value_type_name(GgufValueType type) noexcept {
  switch (type) {
    case GgufValueType::UINT8:
      return "uint8";
    case GgufValueType::INT8:
      return "int8";
    case GgufValueType::UINT16:
      return "uint16";
    case GgufValueType::INT16:
      return "int16";
    case GgufValueType::UINT32:
      return "uint32";
    case GgufValueType::INT32:
      return "int32";
    case GgufValueType::FLOAT32:
      return "float32";
    case GgufValueType::BOOL:
      return "bool";
    case GgufValueType::STRING:
      return "string";
    case GgufValueType::ARRAY:
      return "array";
    case GgufValueType::UINT64:
      return "uint64";
    case GgufValueType::INT64:
      return "int64";
    case GgufValueType::FLOAT64:
      return "float64";
  }
  return "invalid";
}

bool is_valid_gguf_value_type(std::uint32_t raw) noexcept {
  return raw <= static_cast<std::uint32_t>(GgufValueType::FLOAT64);
}

std::uint32_t gguf_scalar_size(GgufValueType type) noexcept {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL:
      return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
      return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32:
      return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64:
      return 8;
    case GgufValueType::STRING:
    case GgufValueType::ARRAY:
      return 0;
  }
  return 0;
}

std::optional<std::uint64_t> GgufValue::to_uint64() const noexcept {
  if (kind_ == Kind::UNSIGNED) return bits_;
  if (kind_ == Kind::SIGNED && static_cast<std::int64_t>(bits_) >= 0) return bits_;
  return std::nullopt;
}

std::optional<std::int64_t> GgufValue::to_int64() const noexcept {
  if (kind_ == Kind::SIGNED) return static_cast<std::int64_t>(bits_);
  if (kind_ == Kind::UNSIGNED &&
      bits_ <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(bits_);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::to_double() const noexcept {
  if (kind_ == Kind::FLOATING) return std::bit_cast<double>(bits_);
  return std::nullopt;
}

std::optional<bool> GgufValue::to_bool() const noexcept {
  if (kind_ == Kind::BOOLEAN) return bits_ != 0;
  return std::nullopt;
}

std::optional<std::string_view> GgufValue::to_string() const noexcept {
  if (kind_ == Kind::TEXT) return text_;
  return std::nullopt;
}

}  // namespace exo::inference
