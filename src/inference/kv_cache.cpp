#include "inference/kv_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

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
                 std::int64_t kv_dim, std::int64_t max_positions)
    : budget_(std::move(budget)),
      first_layer_(first_layer),
      kv_dim_(kv_dim),
      max_positions_(max_positions),
      layers_(static_cast<std::size_t>(std::max<std::int64_t>(layer_count, 0))) {
  if (!budget_ || layer_count <= 0 || kv_dim <= 0 || max_positions <= 0)
    throw std::invalid_argument("KvCache: empty shape or no budget");
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

KvCache::Rows KvCache::append(std::int64_t layer, std::int64_t n) {
  Layer& l = at(layer);
  if (n < 0 || l.length + n > max_positions_)
    throw KvBudgetError(
        fmt::format("context length exceeded: {} positions stored, {} more requested, the "
                    "limit is {}",
                    l.length, n, max_positions_));
  if (l.length + n > l.capacity) {
    const std::int64_t capacity =
        std::min(max_positions_, std::max({l.length + n, l.capacity * 2, std::int64_t{16}}));
    const auto extra = static_cast<std::uint64_t>(capacity - l.capacity) *
                       static_cast<std::uint64_t>(kv_dim_) * 2U * sizeof(float);
    budget_->reserve(extra);
    try {
      l.keys.resize(static_cast<std::size_t>(capacity * kv_dim_));
      l.values.resize(static_cast<std::size_t>(capacity * kv_dim_));
    } catch (...) {
      budget_->release(extra);
      throw;
    }
    l.capacity = capacity;
    allocated_bytes_ += extra;
  }
  const auto offset = static_cast<std::size_t>(l.length * kv_dim_);
  const auto count = static_cast<std::size_t>(n * kv_dim_);
  l.length += n;
  return {std::span<float>(l.keys).subspan(offset, count), std::span<float>(l.values).subspan(offset, count)};
}

std::span<const float> KvCache::keys(std::int64_t layer) const {
  const Layer& l = at(layer);
  return std::span<const float>(l.keys).first(static_cast<std::size_t>(l.length * kv_dim_));
}

std::span<const float> KvCache::values(std::int64_t layer) const {
  const Layer& l = at(layer);
  return std::span<const float>(l.values).first(static_cast<std::size_t>(l.length * kv_dim_));
}

void KvCache::truncate(std::int64_t length) noexcept {
  for (Layer& l : layers_) l.length = std::clamp<std::int64_t>(length, 0, l.length);
}

}  // namespace exo::inference
