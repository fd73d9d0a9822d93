#include "inference/tensor_types.h"

#include <array>
#include <limits>

#include <fmt/format.h>

namespace exo::inference {

namespace {

using T = TensorType;

// Sorted by id. Block geometry follows ggml's block structures (see docs/gguf-and-tokenizer.md).
constexpr std::array<TensorTypeInfo, 32> catalogue{{
    {T::F32, "f32", 1, 4, true, true},
    {T::F16, "f16", 1, 2, true, true},
    {T::Q4_0, "q4_0", 32, 18, true, true},
    {T::Q4_1, "q4_1", 32, 20, true, true},
    {T::Q5_0, "q5_0", 32, 22, true, true},
    {T::Q5_1, "q5_1", 32, 24, true, true},
    {T::Q8_0, "q8_0", 32, 34, true, true},
    {T::Q8_1, "q8_1", 32, 36, false, false},
    {T::Q2_K, "q2_K", 256, 84, false, false},
    {T::Q3_K, "q3_K", 256, 110, false, false},
    {T::Q4_K, "q4_K", 256, 144, true, true},
    {T::Q5_K, "q5_K", 256, 176, true, true},
    {T::Q6_K, "q6_K", 256, 210, true, true},
    {T::Q8_K, "q8_K", 256, 292, false, false},
    {T::IQ2_XXS, "iq2_xxs", 256, 66, false, false},
    {T::IQ2_XS, "iq2_xs", 256, 74, false, false},
    {T::IQ3_XXS, "iq3_xxs", 256, 98, false, false},
    {T::IQ1_S, "iq1_s", 256, 50, false, false},
    {T::IQ4_NL, "iq4_nl", 32, 18, false, false},
    {T::IQ3_S, "iq3_s", 256, 110, false, false},
    {T::IQ2_S, "iq2_s", 256, 82, false, false},
    {T::IQ4_XS, "iq4_xs", 256, 136, false, false},
    {T::I8, "i8", 1, 1, false, false},
    {T::I16, "i16", 1, 2, false, false},
    {T::I32, "i32", 1, 4, false, false},
    {T::I64, "i64", 1, 8, false, false},
    {T::F64, "f64", 1, 8, false, false},
    {T::IQ1_M, "iq1_m", 256, 56, false, false},
    {T::BF16, "bf16", 1, 2, true, true},
    {T::TQ1_0, "tq1_0", 256, 54, false, false},
    {T::TQ2_0, "tq2_0", 256, 66, false, false},
    {T::MXFP4, "mxfp4", 32, 17, false, false},
}};

}  // namespace

const TensorTypeInfo* find_tensor_type(std::uint32_t raw_id) noexcept {
  for (const auto& info : catalogue) {
    if (static_cast<std::uint32_t>(info.type) == raw_id) return &info;
  }
  return nullptr;
}

const TensorTypeInfo& tensor_type_info(TensorType type) noexcept {
  const TensorTypeInfo* info = find_tensor_type(static_cast<std::uint32_t>(type));
  // Every enumerator is in the catalogue; an out-of-range cast value falls back to the first entry
  // rather than dereferencing null (the catalogue test checks the enumerators).
  return info != nullptr ? *info : catalogue.front();
}

std::string_view tensor_type_name(TensorType type) noexcept {
  const TensorTypeInfo* info = find_tensor_type(static_cast<std::uint32_t>(type));
  return info != nullptr ? info->name : std::string_view("unknown");
}

std::span<const TensorTypeInfo> all_tensor_types() noexcept {
  return catalogue;
}

std::optional<std::uint64_t> checked_byte_size(TensorType type, std::uint64_t value_count) noexcept {
  const TensorTypeInfo* info = find_tensor_type(static_cast<std::uint32_t>(type));
  if (info == nullptr || value_count % info->block_size != 0) return std::nullopt;
  const std::uint64_t blocks = value_count / info->block_size;
  if (blocks > std::numeric_limits<std::uint64_t>::max() / info->bytes_per_block) return std::nullopt;
  return blocks * info->bytes_per_block;
}

std::uint64_t byte_size_or_throw(TensorType type, std::uint64_t value_count, std::string_view what) {
  const TensorTypeInfo* info = find_tensor_type(static_cast<std::uint32_t>(type));
  if (info == nullptr) {
    throw TensorTypeError(
        fmt::format("{}: unknown tensor type id {}", what, static_cast<std::uint32_t>(type)));
  }
  if (value_count % info->block_size != 0) {
    throw TensorTypeError(fmt::format("{}: {} values is not a multiple of the {} block size {}", what,
                                      value_count, info->name, info->block_size));
  }
  const auto size = checked_byte_size(type, value_count);
  if (!size) {
    throw TensorTypeError(
        fmt::format("{}: byte size of {} values of {} overflows", what, value_count, info->name));
  }
  return *size;
}

}  // namespace exo::inference
