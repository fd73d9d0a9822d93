// The catalogue of ggml tensor element types as stored in GGUF files.
//
// Contract: pure, immutable data and stateless functions, safe from any thread. Numeric ids and
// block layouts are exactly ggml's (a GGUF file stores the id). Every type has a block size (values
// per block) and a byte size per block; a row of n values of a block type needs n to be a multiple
// of the block size. `dequantize_supported` / `quantize_supported` say what quants.h implements; the
// other known types can be described and measured (a file using them still opens) but not converted.
// Functions that cannot answer throw TensorTypeError, whose message names the type (and the tensor,
// when the caller supplies one).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace exo::inference {

enum class TensorType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;          // ggml's name, e.g. "q4_K"
  std::uint32_t block_size;       // values per block (1 for plain scalar types)
  std::uint32_t bytes_per_block;  // storage bytes of one block
  bool dequantize_supported;      // quants.h can convert it to float
  bool quantize_supported;        // quants.h can produce it from float
};

class TensorTypeError : public std::runtime_error {
 public:
  explicit TensorTypeError(const std::string& message) : std::runtime_error(message) {}
};

// Values per block of the k-quant ("super-block") types.
inline constexpr std::uint32_t k_quant_block_size = 256;

// nullptr when the raw id is not a type this catalogue knows.
const TensorTypeInfo* find_tensor_type(std::uint32_t raw_id) noexcept;
// The info of a known type (every enumerator is in the catalogue).
const TensorTypeInfo& tensor_type_info(TensorType type) noexcept;
std::string_view tensor_type_name(TensorType type) noexcept;
// Every known type, in id order.
std::span<const TensorTypeInfo> all_tensor_types() noexcept;

// Bytes needed for `value_count` values of `type`; nullopt if value_count is not a multiple of the
// block size or the result overflows 64 bits.
std::optional<std::uint64_t> checked_byte_size(TensorType type, std::uint64_t value_count) noexcept;
// Same, but throws TensorTypeError (naming `what`, e.g. a tensor name) instead of returning nullopt.
std::uint64_t byte_size_or_throw(TensorType type, std::uint64_t value_count, std::string_view what);

}  // namespace exo::inference
