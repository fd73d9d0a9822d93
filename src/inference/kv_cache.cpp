#include "inference/kv_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "inference/half_float.h"

namespace exo::inference {

void KvBudget::reserve(std::uint64_t bytes) {
  std::uint64_t used = used_.load(std::memory_order_relaxed);
  for (;;) {
    if (bytes > limit_ || used > limit_ - bytes)
      throw KvBudgetError(fmt::format("KV cache budget exceeded: {} more bytes needed, {} of {} bytes in use",
                                      bytes, used, limit_));
    if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed)) return;
  }
}

void KvBudget::release(std::uint64_t bytes) noexcept {
  used_.fetch_sub(bytes, std::memory_order_relaxed);
}

KvCache::KvCache(std::shared_ptr<KvBudget> budget, std::int64_t first_layer, std::int64_t layer_count,
                 std::int64_t kv_dim, std::int64_t max_positions, TensorType type)
    : budget_(std::move(budget)),
      first_layer_(first_layer),
      kv_dim_(kv_dim),
      max_positions_(max_positions),
      type_(type),
      layers_(static_cast<std::size_t>(std::max<std::int64_t>(layer_count, 0))) {
  if (!budget_ || layer_count <= 0 || kv_dim <= 0 || max_positions <= 0)
    throw std::invalid_argument("KvCache: empty shape or no budget");
  if (type != TensorType::F32 && type != TensorType::F16)
    throw std::invalid_argument("KvCache: the cache type must be f32 or f16, not " +
                                std::string(tensor_type_name(type)));
}

KvCache::~KvCache() {
  budget_->release(allocated_bytes_);
}

const KvCache::Layer& KvCache::at(std::int64_t layer) const {
  if (!covers(layer))
    throw std::out_of_range(fmt::format("KV cache has layers [{}, {}], not {}", first_layer_,
                                        first_layer_ + layer_count() - 1, layer));
  return layers_[static_cast<std::size_t>(layer - first_layer_)];
}

KvCache::Layer& KvCache::at(std::int64_t layer) {
  return const_cast<Layer&>(std::as_const(*this).at(layer));
}

void KvCache::append(std::int64_t layer, std::span<const float> keys, std::span<const float> values) {
  Layer& l = at(layer);
  const auto width = static_cast<std::size_t>(kv_dim_);
  if (keys.size() != values.size() || keys.size() % width != 0)
    throw std::invalid_argument(fmt::format("KvCache::append: {} key and {} value floats are not rows of {}",
                                            keys.size(), values.size(), width));
  const auto n = static_cast<std::int64_t>(keys.size() / width);
  if (l.length + n > max_positions_)
    throw KvBudgetError(
        fmt::format("context length exceeded: {} positions stored, {} more requested, the "
                    "limit is {}",
                    l.length, n, max_positions_));
  const bool half = type_ == TensorType::F16;
  if (l.length + n > l.capacity) {
    const std::int64_t capacity =
        std::min(max_positions_, std::max({l.length + n, l.capacity * 2, std::int64_t{16}}));
    const auto extra = static_cast<std::uint64_t>(capacity - l.capacity) *
                       static_cast<std::uint64_t>(kv_dim_) * 2U *
                       (half ? sizeof(std::uint16_t) : sizeof(float));
    budget_->reserve(extra);
    try {
      const auto elements = static_cast<std::size_t>(capacity * kv_dim_);
      if (half) {
        l.keys16.resize(elements);
        l.values16.resize(elements);
      } else {
        l.keys.resize(elements);
        l.values.resize(elements);
      }
    } catch (...) {
      budget_->release(extra);
      throw;
    }
    l.capacity = capacity;
    allocated_bytes_ += extra;
  }
  const auto offset = static_cast<std::size_t>(l.length * kv_dim_);
  if (half) {
    std::transform(keys.begin(), keys.end(), l.keys16.begin() + static_cast<std::ptrdiff_t>(offset),
                   float_to_fp16);
    std::transform(values.begin(), values.end(), l.values16.begin() + static_cast<std::ptrdiff_t>(offset),
                   float_to_fp16);
  } else {
    std::copy(keys.begin(), keys.end(), l.keys.begin() + static_cast<std::ptrdiff_t>(offset));
    std::copy(values.begin(), values.end(), l.values.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  l.length += n;
}

KvCache::StoredRows KvCache::stored(std::int64_t layer) const {
  const Layer& l = at(layer);
  if (type_ == TensorType::F16) return {l.keys16.data(), l.values16.data(), l.length};
  return {l.keys.data(), l.values.data(), l.length};
}

void KvCache::truncate(std::int64_t length) noexcept {
  for (Layer& l : layers_) l.length = std::clamp<std::int64_t>(length, 0, l.length);
}

}  // namespace exo::inference
