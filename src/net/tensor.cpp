#include "net/tensor.h"

#include <limits>
#include <utility>

namespace exo::net {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr DTypeInfo kDTypeTable[] = {
    {DType::FLOAT16, "float16", 2}, {DType::BFLOAT16, "bfloat16", 2}, {DType::FLOAT32, "float32", 4},
    {DType::FLOAT64, "float64", 8}, {DType::INT8, "int8", 1},         {DType::INT16, "int16", 2},
    {DType::INT32, "int32", 4},     {DType::INT64, "int64", 8},       {DType::UINT8, "uint8", 1},
    {DType::UINT16, "uint16", 2},   {DType::UINT32, "uint32", 4},     {DType::UINT64, "uint64", 8},
    {DType::BOOL, "bool", 1},
};
static_assert(std::size(kDTypeTable) == std::size(kAllDTypes));
static_assert(sizeof(bool) == 1, "numpy bool is one byte");

const DTypeInfo& info(DType dtype) noexcept {
  for (const auto& entry : kDTypeTable) {
    if (entry.dtype == dtype) return entry;
  }
  return kDTypeTable[2];  // unreachable for valid enumerators
}

std::string validation_error(DType dtype, std::span<const std::int64_t> shape, std::size_t byte_count) {
  auto count = checked_element_count(shape);
  if (!count) return count.error().message;
  const auto item = static_cast<std::int64_t>(dtype_size(dtype));
  if (*count > std::numeric_limits<std::int64_t>::max() / item) return "tensor byte size overflows";
  const std::int64_t expected = *count * item;
  if (static_cast<std::uint64_t>(expected) != byte_count) {
    return "tensor has " + std::to_string(byte_count) + " bytes but shape and dtype " +
           std::string(dtype_name(dtype)) + " need " + std::to_string(expected);
  }
  return {};
}

}  // namespace

std::string_view dtype_name(DType dtype) noexcept {
  return info(dtype).name;
}

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (const auto& entry : kDTypeTable) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

std::size_t dtype_size(DType dtype) noexcept {
  return info(dtype).size;
}

Result<std::int64_t> checked_element_count(std::span<const std::int64_t> shape) {
  std::int64_t count = 1;
  bool has_zero = false;
  for (const std::int64_t dimension : shape) {
    if (dimension < 0)
      return Error{"tensor shape has a negative dimension (" + std::to_string(dimension) + ")"};
    if (dimension == 0) has_zero = true;
  }
  if (has_zero) return std::int64_t{0};
  for (const std::int64_t dimension : shape) {
    if (count > std::numeric_limits<std::int64_t>::max() / dimension) {
      return Error{"tensor element count overflows"};
    }
    count *= dimension;
  }
  return count;
}

Tensor::Tensor(DType dtype, std::vector<std::int64_t> shape, std::string bytes)
    : dtype_(dtype), shape_(std::move(shape)), bytes_(std::move(bytes)) {
  if (auto error = validation_error(dtype_, shape_, bytes_.size()); !error.empty()) {
    throw std::invalid_argument("Tensor: " + error);
  }
}

Result<Tensor> Tensor::create(DType dtype, std::vector<std::int64_t> shape, std::string bytes) {
  if (auto error = validation_error(dtype, shape, bytes.size()); !error.empty())
    return Error{std::move(error)};
  Tensor tensor;
  tensor.dtype_ = dtype;
  tensor.shape_ = std::move(shape);
  tensor.bytes_ = std::move(bytes);
  return tensor;
}

std::string Tensor::release_bytes() && {
  std::string bytes = std::move(bytes_);
  bytes_.clear();
  dtype_ = DType::FLOAT32;
  shape_ = {0};
  return bytes;
}

}  // namespace exo::net
