// Strict readers for fields of JSON objects received from other machines.
//
// Contract: each reader takes a JSON object, a key and an output; it returns true and fills the
// output when the key is present with an acceptable value, otherwise returns false and writes a
// short reason naming the key into `error`. Readers never throw for bad input. Stateless and
// thread-safe. Shared by the topology and net layers; not a general-purpose JSON library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace exo::topology {

// Default cap on any string read from untrusted JSON (node ids, model names, descriptions...).
inline constexpr std::size_t kMaxJsonStringBytes = 1024;

bool read_string_field(const nlohmann::json& object, std::string_view key, std::size_t max_bytes,
                       std::string& out, std::string& error);

// Integer in [min, max]. A JSON float is accepted only when `allow_integral_float` is set and it has
// no fractional part (pydantic's lax int coercion accepts 16384.0 for an int field).
bool read_integer_field(const nlohmann::json& object, std::string_view key, std::int64_t min,
                        std::int64_t max, std::int64_t& out, std::string& error,
                        bool allow_integral_float = false);

// Shorthand for an int32 integer (the width of every integer in the legacy proto).
bool read_int32_field(const nlohmann::json& object, std::string_view key, std::int32_t& out,
                      std::string& error);

// Finite number (integer or float) in [min, max].
bool read_number_field(const nlohmann::json& object, std::string_view key, double min, double max,
                       double& out, std::string& error);

}  // namespace exo::topology

namespace exo::topology {

// True when no array/object in `text` nests deeper than max_depth (brackets inside JSON strings are
// ignored). A cheap guard run before parsing untrusted text, so that later recursive walks
// (serialisation, comparison) of the parsed value cannot exhaust the stack.
bool json_nesting_within(std::string_view text, std::size_t max_depth) noexcept;

}  // namespace exo::topology
