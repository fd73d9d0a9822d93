#include "inference/quants.h"

#include <cstring>

#include <fmt/format.h>

#include "inference/half_float.h"
#include "inference/quant_blocks.h"

namespace exo::inference {

namespace {

using DequantizeBlock = void (*)(const std::uint8_t*, float*);
using QuantizeBlock = void (*)(const float*, std::uint8_t*);

struct BlockCodec {
  TensorType type;
  DequantizeBlock dequantize;
  QuantizeBlock quantize;
};

void dequantize_f32(const std::uint8_t* in, float* out) {
  std::memcpy(out, in, sizeof(float));
}
void quantize_f32(const float* in, std::uint8_t* out) {
  std::memcpy(out, in, sizeof(float));
}

void dequantize_f16(const std::uint8_t* in, float* out) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, in, sizeof bits);
  *out = fp16_to_float(bits);
}
void quantize_f16(const float* in, std::uint8_t* out) {
  const std::uint16_t bits = float_to_fp16(*in);
  std::memcpy(out, &bits, sizeof bits);
}

void dequantize_bf16(const std::uint8_t* in, float* out) {
  std::uint16_t bits = 0;
  std::memcpy(&bits, in, sizeof bits);
  *out = bf16_to_float(bits);
}
void quantize_bf16(const float* in, std::uint8_t* out) {
  const std::uint16_t bits = float_to_bf16(*in);
  std::memcpy(out, &bits, sizeof bits);
}

constexpr BlockCodec codecs[] = {
    {TensorType::F32, dequantize_f32, quantize_f32},
    {TensorType::F16, dequantize_f16, quantize_f16},
    {TensorType::BF16, dequantize_bf16, quantize_bf16},
    {TensorType::Q4_0, blocks::dequantize_q4_0, blocks::quantize_q4_0},
    {TensorType::Q4_1, blocks::dequantize_q4_1, blocks::quantize_q4_1},
    {TensorType::Q5_0, blocks::dequantize_q5_0, blocks::quantize_q5_0},
    {TensorType::Q5_1, blocks::dequantize_q5_1, blocks::quantize_q5_1},
    {TensorType::Q8_0, blocks::dequantize_q8_0, blocks::quantize_q8_0},
    {TensorType::Q4_K, blocks::dequantize_q4_k, blocks::quantize_q4_k},
    {TensorType::Q5_K, blocks::dequantize_q5_k, blocks::quantize_q5_k},
    {TensorType::Q6_K, blocks::dequantize_q6_k, blocks::quantize_q6_k},
};

const BlockCodec* find_codec(TensorType type) {
  for (const auto& codec : codecs) {
    if (codec.type == type) return &codec;
  }
  return nullptr;
}

// Validates the pair of spans and returns the codec; throws TensorTypeError otherwise.
const BlockCodec& checked_codec(TensorType type, std::size_t value_count, std::size_t byte_count,
                                std::string_view operation) {
  const BlockCodec* codec = find_codec(type);
  if (codec == nullptr) {
    throw TensorTypeError(fmt::format("{} is not implemented for tensor type {} (id {})", operation,
                                      tensor_type_name(type), static_cast<std::uint32_t>(type)));
  }
  const std::uint64_t expected = byte_size_or_throw(type, value_count, operation);
  if (expected != byte_count) {
    throw TensorTypeError(fmt::format("{}: {} values of {} need {} bytes, got {}", operation, value_count,
                                      tensor_type_name(type), expected, byte_count));
  }
  return *codec;
}

}  // namespace

bool can_dequantize(TensorType type) noexcept {
  return find_codec(type) != nullptr;
}
bool can_quantize(TensorType type) noexcept {
  return find_codec(type) != nullptr;
}

void dequantize_row(TensorType type, std::span<const std::uint8_t> blocks, std::span<float> values) {
  const BlockCodec& codec = checked_codec(type, values.size(), blocks.size(), "dequantize");
  if (type == TensorType::F32) {
    if (!values.empty()) std::memcpy(values.data(), blocks.data(), blocks.size());
    return;
  }
  if (type == TensorType::F16) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::uint16_t bits = 0;
      std::memcpy(&bits, blocks.data() + 2 * i, sizeof bits);
      values[i] = fp16_to_float(bits);
    }
    return;
  }
  const TensorTypeInfo& info = tensor_type_info(type);
  const std::size_t block_count = values.size() / info.block_size;
  for (std::size_t b = 0; b < block_count; ++b) {
    codec.dequantize(blocks.data() + b * info.bytes_per_block, values.data() + b * info.block_size);
  }
}

void quantize_row(TensorType type, std::span<const float> values, std::span<std::uint8_t> blocks) {
  const BlockCodec& codec = checked_codec(type, values.size(), blocks.size(), "quantize");
  const TensorTypeInfo& info = tensor_type_info(type);
  const std::size_t block_count = values.size() / info.block_size;
  for (std::size_t b = 0; b < block_count; ++b) {
    codec.quantize(values.data() + b * info.block_size, blocks.data() + b * info.bytes_per_block);
  }
}

}  // namespace exo::inference
