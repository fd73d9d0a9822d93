// Shard: a contiguous, inclusive range of transformer layers of one model, as legacy exo defines it.
//
// Contract: plain value type, no synchronisation. start_layer and end_layer are both inclusive, so a
// shard holds end_layer - start_layer + 1 layers. A shard is well-formed when
// 0 <= start_layer <= end_layer < n_layers and model_id is non-empty (is_well_formed()); the
// "base shard" a request starts from, (model, 0, 0, n_layers), is well-formed too. Member functions
// do not validate; from_json / proto decoders do, and reject malformed shards.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "topology/result.h"

namespace exo::topology {

struct Shard {
  std::string model_id;
  std::int32_t start_layer = 0;
  std::int32_t end_layer = 0;  // inclusive
  std::int32_t n_layers = 0;   // total number of layers of the model

  bool is_first_layer() const noexcept { return start_layer == 0; }
  bool is_last_layer() const noexcept { return end_layer == n_layers - 1; }
  std::int32_t layer_count() const noexcept { return end_layer - start_layer + 1; }
  bool is_well_formed() const noexcept;
  // Same model and at least one layer in common (legacy shards_overlap).
  bool overlaps(const Shard& other) const noexcept;

  bool operator==(const Shard&) const = default;
};

// {"model_id": str, "start_layer": int, "end_layer": int, "n_layers": int} (legacy Shard.to_dict).
nlohmann::json shard_to_json(const Shard& shard);
// Strict inverse of shard_to_json: every key required, integers only, result well-formed.
Result<Shard> shard_from_json(const nlohmann::json& json);

}  // namespace exo::topology
