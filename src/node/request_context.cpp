#include "node/request_context.h"

#include <cmath>
#include <limits>
#include <set>

namespace exo::node {
namespace {

constexpr const char* kKey = "exo";

Error invalid(const std::string& what) {
  return Error{"request context: " + what};
}

}  // namespace

int RingPlan::index_of(const std::string& node_id) const {
  for (std::size_t i = 0; i < hops.size(); ++i)
    if (hops[i].node_id == node_id) return static_cast<int>(i);
  return -1;
}

const topology::NodeShard* RingPlan::after(int index) const {
  const auto next = static_cast<std::size_t>(index) + 1;
  return index >= 0 && next < hops.size() ? &hops[next] : nullptr;
}

std::string RingPlan::describe() const {
  std::string out;
  for (const auto& hop : hops) {
    if (!out.empty()) out += " -> ";
    out += hop.node_id + "[" + std::to_string(hop.shard.start_layer) + ".." +
           std::to_string(hop.shard.end_layer) + "]";
  }
  return out;
}

Result<RingPlan> RingPlan::validated(std::vector<topology::NodeShard> hops) {
  if (hops.empty()) return invalid("the ring plan has no hops");
  const auto& model = hops.front().shard.model_id;
  const auto n_layers = hops.front().shard.n_layers;
  std::int32_t expected_start = 0;
  std::set<std::string> seen;
  for (const auto& hop : hops) {
    if (hop.node_id.empty()) return invalid("a ring hop has an empty node id");
    if (!seen.insert(hop.node_id).second)
      return invalid("node '" + hop.node_id + "' appears twice in the ring");
    if (!hop.shard.is_well_formed() || hop.shard.model_id != model || hop.shard.n_layers != n_layers)
      return invalid("hop of node '" + hop.node_id + "' has an inconsistent shard");
    if (hop.shard.start_layer != expected_start)
      return invalid("hop of node '" + hop.node_id + "' starts at layer " +
                     std::to_string(hop.shard.start_layer) + ", expected " + std::to_string(expected_start));
    expected_start = hop.shard.end_layer + 1;
  }
  if (expected_start != n_layers) return invalid("the ring plan does not cover every layer");
  return RingPlan{std::move(hops)};
}

Result<RingPlan> RingPlan::from_topology(const topology::Topology& topology, const std::string& model_id,
                                         std::int32_t n_layers) {
  if (topology.nodes().empty()) return invalid("the topology has no nodes");
  if (model_id.empty() || n_layers < 1) return invalid("the model has no layers");
  return validated(topology::assign_shards(topology::partition_by_memory(topology), n_layers, model_id));
}

void RequestContext::store(net::InferenceState& state) const {
  nlohmann::json hops = nlohmann::json::array();
  for (const auto& hop : plan.hops)
    hops.push_back({{"node_id", hop.node_id}, {"shard", topology::shard_to_json(hop.shard)}});
  state.other_data[kKey] = {{"origin", origin_node_id},
                            {"plan", std::move(hops)},
                            {"temperature", temperature},
                            {"top_p", top_p},
                            {"seed", seed},
                            {"max_tokens", max_tokens}};
  // Only what differs from the defaults travels (peers of an earlier version send none of these).
  auto& carried = state.other_data[kKey];
  if (top_k != 0) carried["top_k"] = top_k;
  if (min_p != 0.0F) carried["min_p"] = min_p;
  if (repeat_penalty != 1.0F) {
    carried["repeat_penalty"] = repeat_penalty;
    carried["prompt_tail"] = prompt_tail;
  }
}

Result<std::optional<RequestContext>> RequestContext::from_state(const net::InferenceState& state) {
  if (!state.other_data.is_object() || !state.other_data.contains(kKey))
    return std::optional<RequestContext>{};
  const auto& j = state.other_data.at(kKey);
  if (!j.is_object()) return invalid("not an object");
  RequestContext c;
  const auto origin = j.find("origin");
  if (origin == j.end() || !origin->is_string()) return invalid("origin: expected a string");
  c.origin_node_id = origin->get<std::string>();
  const auto number = [&](const char* key, double low, double high) -> std::optional<double> {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number()) return std::nullopt;
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < low || v > high) return std::nullopt;
    return v;
  };
  const auto temperature = number("temperature", 0.0, 100.0);
  const auto top_p = number("top_p", 0.0, 1.0);
  const auto max_tokens =
      number("max_tokens", 1.0, static_cast<double>(std::numeric_limits<std::int32_t>::max()));
  const auto seed = j.find("seed");
  if (!temperature) return invalid("temperature: expected a number in [0, 100]");
  if (!top_p) return invalid("top_p: expected a number in [0, 1]");
  if (!max_tokens || !j.at("max_tokens").is_number_integer())
    return invalid("max_tokens: expected an integer >= 1");
  if (seed == j.end() || !seed->is_number_unsigned()) return invalid("seed: expected an unsigned integer");
  c.temperature = static_cast<float>(*temperature);
  c.top_p = static_cast<float>(*top_p);
  c.max_tokens = static_cast<std::int32_t>(*max_tokens);
  c.seed = seed->get<std::uint64_t>();
  if (j.contains("top_k")) {
    const auto top_k = number("top_k", 0.0, 1e9);
    if (!top_k || !j.at("top_k").is_number_integer()) return invalid("top_k: expected an integer >= 0");
    c.top_k = static_cast<std::int32_t>(*top_k);
  }
  if (j.contains("min_p")) {
    const auto min_p = number("min_p", 0.0, 1.0);
    if (!min_p) return invalid("min_p: expected a number in [0, 1]");
    c.min_p = static_cast<float>(*min_p);
  }
  if (j.contains("repeat_penalty")) {
    const auto penalty = number("repeat_penalty", 0.01, 100.0);
    if (!penalty) return invalid("repeat_penalty: expected a number in [0.01, 100]");
    c.repeat_penalty = static_cast<float>(*penalty);
    const auto tail = j.find("prompt_tail");
    if (tail == j.end() || !tail->is_array() || tail->size() > static_cast<std::size_t>(kRepeatWindow))
      return invalid("prompt_tail: expected an array of at most 64 token ids");
    for (const auto& id : *tail) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
          id.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max())
        return invalid("prompt_tail: expected token ids");
      c.prompt_tail.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
    }
  }
  const auto plan = j.find("plan");
  if (plan == j.end() || !plan->is_array()) return invalid("plan: expected an array");
  if (plan->size() > 4096) return invalid("plan: too many hops");
  std::vector<topology::NodeShard> hops;
  for (const auto& hop : *plan) {
    if (!hop.is_object() || !hop.contains("node_id") || !hop.at("node_id").is_string() ||
        !hop.contains("shard"))
      return invalid("plan: each hop needs node_id and shard");
    auto shard = topology::shard_from_json(hop.at("shard"));
    if (!shard) return invalid("plan: " + shard.error().message);
    hops.push_back({hop.at("node_id").get<std::string>(), std::move(shard).value()});
  }
  auto validated = RingPlan::validated(std::move(hops));
  if (!validated) return validated.error();
  c.plan = std::move(validated).value();
  return std::optional<RequestContext>(std::move(c));
}

}  // namespace exo::node
