// agrees_with_avx2: the start-up check of the kernel variants this project could not run where it was
// developed (matmul.h). Small products of every 8-row layout, from deterministic pseudo-random blocks,
// computed with the variant and with AVX2 on the calling thread, compared bit for bit.
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "inference/matmul.h"
#include "inference/tensor_types.h"

namespace exo::inference {

namespace {

// A small linear congruential generator: the same blocks on every machine.
struct Lcg {
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  std::uint32_t next() noexcept {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state >> 32);
  }
};

// Random level bytes with every f16 field (scales, mins) set to a finite value from a small range.
std::vector<std::uint8_t> random_blocks(TensorType type, std::int64_t rows, std::int64_t cols, Lcg& rng) {
  const TensorTypeInfo& info = tensor_type_info(type);
  const std::size_t blocks = static_cast<std::size_t>(rows * cols / info.block_size);
  std::vector<std::uint8_t> bytes(blocks * info.bytes_per_block);
  for (std::uint8_t& b : bytes) b = static_cast<std::uint8_t>(rng.next() >> 24);
  // f16 fields: Q8_0, Q4_0: d at 0; Q4_K, Q5_K: d at 0, dmin at 2; Q6_K: d at 208.
  std::vector<std::size_t> f16_at;
  if (type == TensorType::Q6_K) {
    f16_at = {208};
  } else if (type == TensorType::Q4_K || type == TensorType::Q5_K) {
    f16_at = {0, 2};
  } else {
    f16_at = {0};
  }
  for (std::size_t block = 0; block < blocks; ++block) {
    for (const std::size_t at : f16_at) {
      const auto half = static_cast<std::uint16_t>(0x2000 + (rng.next() >> 22));  // about 0.008 .. 0.06
      std::memcpy(bytes.data() + block * info.bytes_per_block + at, &half, sizeof half);
    }
  }
  return bytes;
}

}  // namespace

bool agrees_with_avx2(KernelVariant variant) {
  try {
    ComputePool caller_only(1);
    Lcg rng;
    constexpr std::int64_t rows = 24;  // a pair of 8-row groups and a single one
    constexpr std::int64_t cols = 512;
    for (const TensorType type :
         {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
      const std::vector<std::uint8_t> bytes = random_blocks(type, rows, cols, rng);
      WeightMatrix w{type, bytes.data(), rows, cols, bytes.size() / rows};
      std::vector<std::uint8_t> packed_bytes(bytes.size());
      const WeightMatrix packed = pack_x8(w, packed_bytes);
      // 1 token (matrix-vector), 35 (AMX: a pair of 16-token tiles and 3 left over).
      for (const std::int64_t tokens : {1, 35}) {
        std::vector<float> x(static_cast<std::size_t>(tokens * cols));
        for (float& v : x)
          v = static_cast<float>(static_cast<std::int32_t>(rng.next() >> 16) - 32768) / 8192.0F;
        std::vector<float> expected(static_cast<std::size_t>(tokens * rows));
        std::vector<float> actual(expected.size());
        matmul_with(KernelVariant::AVX2, packed, x, tokens, expected, caller_only);
        matmul_with(variant, packed, x, tokens, actual, caller_only);
        if (std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float)) != 0) return false;
      }
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace exo::inference
