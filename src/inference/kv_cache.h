// KvCache: the attention keys and values (F32) of one request for the layers of one shard.
//
// Contract
// - A cache covers the absolute layers [first_layer, first_layer + layer_count) and up to
//   `max_positions` positions. Each layer stores K and V as rows of kv_dim elements of the cache's
//   type, one row per position, and keeps its own length (the positions written so far). The type is
//   F32, or F16 (half the memory; values rounded to the nearest half, as llama.cpp's default cache).
// - Storage grows on demand (capacity doubling, capped at max_positions). Every byte allocated is
//   reserved first from a KvBudget shared by all caches of an engine; reserve() throws
//   KvBudgetError (naming the bytes needed, in use and the limit) when the budget would be exceeded,
//   and a context overflow throws KvBudgetError too. Destruction returns the bytes to the budget.
// - KvBudget is thread-safe; a KvCache is not (one forward pass at a time uses it).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "inference/tensor_types.h"

namespace exo::inference {

class KvBudgetError : public std::runtime_error {
 public:
  explicit KvBudgetError(const std::string& message) : std::runtime_error(message) {}
};

class KvBudget {
 public:
  explicit KvBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
  // Throws KvBudgetError when used + bytes would exceed the limit.
  void reserve(std::uint64_t bytes);
  void release(std::uint64_t bytes) noexcept;
  std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

class KvCache {
 public:
  // Throws std::invalid_argument for an empty shape, no budget or a type other than F32 and F16.
  KvCache(std::shared_ptr<KvBudget> budget, std::int64_t first_layer, std::int64_t layer_count,
          std::int64_t kv_dim, std::int64_t max_positions, TensorType type = TensorType::F32);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  std::int64_t first_layer() const noexcept { return first_layer_; }
  std::int64_t layer_count() const noexcept { return static_cast<std::int64_t>(layers_.size()); }
  std::int64_t kv_dim() const noexcept { return kv_dim_; }
  std::int64_t max_positions() const noexcept { return max_positions_; }
  bool covers(std::int64_t layer) const noexcept {
    return layer >= first_layer_ && layer < first_layer_ + layer_count();
  }
  // Positions stored for absolute layer `layer`.
  std::int64_t length(std::int64_t layer) const { return at(layer).length; }

  TensorType type() const noexcept { return type_; }

  // Appends n = keys.size() / kv_dim positions to `layer` (keys and values: n rows of kv_dim floats,
  // converted to the cache's type), allocating from the budget. Throws KvBudgetError when the
  // context or the budget would overflow, std::invalid_argument for sizes that are not n rows (the
  // cache is then unchanged).
  void append(std::int64_t layer, std::span<const float> keys, std::span<const float> values);
  // The stored rows of `layer`: length rows of kv_dim elements of type() each, at keys / values.
  struct StoredRows {
    const void* keys = nullptr;
    const void* values = nullptr;
    std::int64_t length = 0;
  };
  StoredRows stored(std::int64_t layer) const;
  // Forgets positions at and after `length` in every layer (keeps the memory): rolls back a failed
  // forward pass.
  void truncate(std::int64_t length) noexcept;

  std::uint64_t allocated_bytes() const noexcept { return allocated_bytes_; }

 private:
  struct Layer {
    std::vector<float> keys;  // F32 caches
    std::vector<float> values;
    std::vector<std::uint16_t> keys16;  // F16 caches
    std::vector<std::uint16_t> values16;
    std::int64_t length = 0;
    std::int64_t capacity = 0;
  };
  const Layer& at(std::int64_t layer) const;
  Layer& at(std::int64_t layer);

  std::shared_ptr<KvBudget> budget_;
  std::int64_t first_layer_;
  std::int64_t kv_dim_;
  std::int64_t max_positions_;
  TensorType type_;
  std::vector<Layer> layers_;
  std::uint64_t allocated_bytes_ = 0;
};

}  // namespace exo::inference
