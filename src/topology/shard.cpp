#include "topology/shard.h"

#include <algorithm>

#include "topology/json_fields.h"

namespace exo::topology {

bool Shard::is_well_formed() const noexcept {
  return !model_id.empty() && n_layers >= 1 && start_layer >= 0 && start_layer <= end_layer &&
         end_layer < n_layers;
}

bool Shard::overlaps(const Shard& other) const noexcept {
  return model_id == other.model_id &&
         std::max(start_layer, other.start_layer) <= std::min(end_layer, other.end_layer);
}

nlohmann::json shard_to_json(const Shard& shard) {
  nlohmann::json json = nlohmann::json::object();
  json["model_id"] = shard.model_id;
  json["start_layer"] = shard.start_layer;
  json["end_layer"] = shard.end_layer;
  json["n_layers"] = shard.n_layers;
  return json;
}

Result<Shard> shard_from_json(const nlohmann::json& json) {
  if (!json.is_object()) return Error{"shard: expected a JSON object"};
  Shard shard;
  std::string error;
  if (!read_string_field(json, "model_id", kMaxJsonStringBytes, shard.model_id, error) ||
      !read_int32_field(json, "start_layer", shard.start_layer, error) ||
      !read_int32_field(json, "end_layer", shard.end_layer, error) ||
      !read_int32_field(json, "n_layers", shard.n_layers, error)) {
    return Error{"shard: " + error};
  }
  if (!shard.is_well_formed()) {
    return Error{"shard: not a valid layer range (need 0 <= start_layer <= end_layer < n_layers)"};
  }
  return shard;
}

}  // namespace exo::topology
