// GgufValue: one metadata value of a GGUF file (scalar, string or array, arrays possibly nested).
//
// Contract: an immutable value object. Strings are views into the file's bytes, so a GgufValue is
// valid only while the GgufFile it came from is alive. type() is the type stored in the file; the
// payload is widened (unsigned -> uint64, signed -> int64, float32 -> double) without loss. The
// to_*() conversions return nullopt when the stored type or value does not fit the requested C++ type;
// GgufFile's typed getters turn that into a GgufMetadataError naming the key. Safe to read from any
// number of threads.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace exo::inference {

enum class GgufValueType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

// "uint32", "string", "array", ...; "invalid" for ids outside the enumeration.
std::string_view gguf_value_type_name(GgufValueType type) noexcept;
bool is_valid_gguf_value_type(std::uint32_t raw) noexcept;
// Bytes of one scalar of this type in the file; 0 for STRING and ARRAY (variable size).
std::uint32_t gguf_scalar_size(GgufValueType type) noexcept;

class GgufValue {
 public:
  using Array = std::vector<GgufValue>;

  static GgufValue from_unsigned(GgufValueType type, std::uint64_t value) {
    return GgufValue(type, Kind::UNSIGNED, value);
  }
  static GgufValue from_signed(GgufValueType type, std::int64_t value) {
    return GgufValue(type, Kind::SIGNED, static_cast<std::uint64_t>(value));
  }
  static GgufValue from_float(GgufValueType type, double value) {
    return GgufValue(type, Kind::FLOATING, std::bit_cast<std::uint64_t>(value));
  }
  static GgufValue from_bool(bool value) {
    return GgufValue(GgufValueType::BOOL, Kind::BOOLEAN, value ? 1 : 0);
  }
  static GgufValue from_string(std::string_view value) {
    GgufValue result(GgufValueType::STRING, Kind::TEXT, 0);
    result.text_ = value;
    return result;
  }
  static GgufValue from_array(GgufValueType element_type, Array elements) {
    GgufValue result(GgufValueType::ARRAY, Kind::ARRAY, 0);
    result.element_type_ = element_type;
    result.elements_ = std::move(elements);
    return result;
  }

  GgufValueType type() const noexcept { return type_; }
  // Element type of an ARRAY (meaningless for other types).
  GgufValueType element_type() const noexcept { return element_type_; }

  bool is_integer() const noexcept { return kind_ == Kind::UNSIGNED || kind_ == Kind::SIGNED; }
  bool is_float() const noexcept { return kind_ == Kind::FLOATING; }
  bool is_string() const noexcept { return kind_ == Kind::TEXT; }
  bool is_array() const noexcept { return kind_ == Kind::ARRAY; }
  bool is_bool() const noexcept { return kind_ == Kind::BOOLEAN; }

  // Integer types only, and only when the value is representable.
  std::optional<std::uint64_t> to_uint64() const noexcept;
  std::optional<std::int64_t> to_int64() const noexcept;
  // FLOAT32 / FLOAT64 only.
  std::optional<double> to_double() const noexcept;
  std::optional<bool> to_bool() const noexcept;
  std::optional<std::string_view> to_string() const noexcept;
  // nullptr unless an ARRAY.
  const Array* to_array() const noexcept { return kind_ == Kind::ARRAY ? &elements_ : nullptr; }

 private:
  enum class Kind : std::uint8_t { UNSIGNED, SIGNED, FLOATING, BOOLEAN, TEXT, ARRAY };
  GgufValue(GgufValueType type, Kind kind, std::uint64_t bits) : type_(type), kind_(kind), bits_(bits) {}

  GgufValueType type_;
  GgufValueType element_type_ = GgufValueType::UINT8;
  Kind kind_;
  std::uint64_t bits_;  // integer (two's complement for signed), IEEE double bits, or 0/1
  std::string_view text_;
  Array elements_;
};

}  // namespace exo::inference
