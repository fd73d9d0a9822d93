// Tensor: an n-dimensional array held as raw bytes, the unit that travels between nodes.
//
// Contract: value type, no internal synchronisation. Invariant (checked by every constructor):
// every dimension is >= 0, the element count (product of the shape; 1 for a 0-d tensor) and the
// byte size do not overflow, and bytes().size() == element_count() * dtype_size(dtype()).
// Elements are C-contiguous (row-major) and little-endian; this library requires a little-endian
// host (checked at compile time). The byte buffer is a std::string so it can be moved into and out
// of protobuf messages without copying. Tensor(...) throws std::invalid_argument on a broken
// invariant (a programming error); Tensor::create returns Result for untrusted input.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "topology/result.h"

namespace exo::net {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");

// Element types; names on the wire are numpy's str(dtype). BFLOAT16 is our extension ("bfloat16",
// as ml_dtypes names it): legacy exo's numpy cannot decode it, so never send it to a legacy peer.
enum class DType {
  FLOAT16,
  BFLOAT16,
  FLOAT32,
  FLOAT64,
  INT8,
  INT16,
  INT32,
  INT64,
  UINT8,
  UINT16,
  UINT32,
  UINT64,
  BOOL
};

inline constexpr DType kAllDTypes[] = {DType::FLOAT16, DType::BFLOAT16, DType::FLOAT32, DType::FLOAT64,
                                       DType::INT8,    DType::INT16,    DType::INT32,   DType::INT64,
                                       DType::UINT8,   DType::UINT16,   DType::UINT32,  DType::UINT64,
                                       DType::BOOL};

std::string_view dtype_name(DType dtype) noexcept;
// Exact, case-sensitive numpy names only ("float32", not "f4" or "<f4"); nullopt otherwise.
std::optional<DType> dtype_from_name(std::string_view name) noexcept;
std::size_t dtype_size(DType dtype) noexcept;

// Product of the dimensions (1 for an empty shape); an error for a negative dimension or overflow.
Result<std::int64_t> checked_element_count(std::span<const std::int64_t> shape);

// C++ element type -> DType, for typed construction and access.
template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::FLOAT32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::FLOAT64;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return DType::INT8;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return DType::INT16;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::INT32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::INT64;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::UINT8;
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return DType::UINT16;
  else if constexpr (std::is_same_v<T, std::uint32_t>)
    return DType::UINT32;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return DType::UINT64;
  else if constexpr (std::is_same_v<T, bool>)
    return DType::BOOL;
  else
    static_assert(!sizeof(T), "no DType for this C++ type (use raw bytes for float16/bfloat16)");
}

class Tensor {
 public:
  // An empty float32 tensor of shape {0}.
  Tensor() : shape_{0} {}
  Tensor(DType dtype, std::vector<std::int64_t> shape, std::string bytes);

  static Result<Tensor> create(DType dtype, std::vector<std::int64_t> shape, std::string bytes);

  template <typename T>
  static Tensor from_values(std::vector<std::int64_t> shape, std::span<const T> values) {
    std::string bytes(values.size_bytes(), '\0');
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), values.size_bytes());
    return Tensor(dtype_of<T>(), std::move(shape), std::move(bytes));
  }
  template <typename T>
  static Tensor from_values(std::vector<std::int64_t> shape, const std::vector<T>& values) {
    static_assert(!std::is_same_v<T, bool>, "std::vector<bool> is packed; use std::span<const bool>");
    return from_values<T>(std::move(shape), std::span<const T>(values));
  }

  // Copies the elements out; throws std::logic_error if T does not match dtype().
  template <typename T>
  std::vector<T> values() const {
    static_assert(!std::is_same_v<T, bool>, "std::vector<bool> is packed; read bytes() for bool tensors");
    if (dtype_of<T>() != dtype_) throw std::logic_error("Tensor::values: element type does not match dtype");
    std::vector<T> out(bytes_.size() / sizeof(T));
    if (!out.empty()) std::memcpy(static_cast<void*>(out.data()), bytes_.data(), bytes_.size());
    return out;
  }

  DType dtype() const noexcept { return dtype_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  const std::string& bytes() const noexcept { return bytes_; }
  std::int64_t element_count() const noexcept {
    return static_cast<std::int64_t>(bytes_.size() / dtype_size(dtype_));
  }
  // Moves the buffer out; the tensor becomes the default (empty float32) tensor.
  std::string release_bytes() &&;

  bool operator==(const Tensor&) const = default;

 private:
  DType dtype_ = DType::FLOAT32;
  std::vector<std::int64_t> shape_;
  std::string bytes_;
};

}  // namespace exo::net
