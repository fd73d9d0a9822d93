// RequestContext: what every node of the ring needs to know about one generation, fixed when the
// request starts and carried with each hop in InferenceState.other_data_json under the key "exo".
//
// Contract
// - The origin (the node whose API took the request) computes the ring plan once, from its topology;
//   every hop follows that plan instead of recomputing shards, so a topology change in the middle of
//   a request can neither skip nor repeat layers. A hop whose own plan entry is missing fails the
//   request with a clear error.
// - A request without an "exo" entry comes from a legacy peer: the receiver falls back to legacy
//   rules (its own shard from its own topology, its own sampling defaults, SendResult to every peer).
// - from_state() validates everything (Result error on malformed input; never throws for bad input).
//   Plain value type; no synchronisation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/tensor_codec.h"
#include "topology/partitioning.h"
#include "topology/result.h"
#include "topology/shard.h"

namespace exo::node {

struct RingPlan {
  // In ring order: hops[0] holds layer 0, hops.back() the last layer; contiguous, each node once.
  std::vector<topology::NodeShard> hops;

  // Index of node_id in hops, or -1.
  int index_of(const std::string& node_id) const;
  const topology::NodeShard& first() const { return hops.front(); }
  // The hop after `index` (the last hop has none: its output is a token that goes back to first()).
  const topology::NodeShard* after(int index) const;
  std::string model_id() const { return hops.empty() ? std::string() : hops.front().shard.model_id; }
  std::int32_t n_layers() const { return hops.empty() ? 0 : hops.front().shard.n_layers; }
  // Human-readable "a[0..3] -> b[4..7]".
  std::string describe() const;

  // The plan for `model_id` over the nodes of `topology` (legacy ring memory-weighted partitioning
  // with our empty-shard rule). Error when the topology is empty.
  static Result<RingPlan> from_topology(const topology::Topology& topology, const std::string& model_id,
                                        std::int32_t n_layers);
  // Checks the invariants above.
  static Result<RingPlan> validated(std::vector<topology::NodeShard> hops);
  bool operator==(const RingPlan&) const = default;
};

struct RequestContext {
  static constexpr std::int32_t kRepeatWindow = 64;  // tokens the repeat penalty looks back over

  // The node whose API took the request; tokens go there. Empty for a request that came from a
  // legacy peer: tokens are then broadcast to every peer, as legacy exo does.
  std::string origin_node_id;
  RingPlan plan;
  float temperature = 0.0F;
  float top_p = 1.0F;
  std::int32_t top_k = 0;
  float min_p = 0.0F;
  float repeat_penalty = 1.0F;
  // With a repeat penalty: the prompt's last kRepeatWindow token ids, for the last shard's sampler
  // (which sees the generated tokens but never the prompt). Empty otherwise.
  std::vector<std::int32_t> prompt_tail;
  std::uint64_t seed = 0;
  std::int32_t max_tokens = 1;  // the last shard finishes the request after this many tokens

  // Stores the context in state.other_data["exo"] (other entries are kept).
  void store(net::InferenceState& state) const;
  // The context carried by `state`; nullopt when there is none (a legacy sender); Error when present
  // but malformed.
  static Result<std::optional<RequestContext>> from_state(const net::InferenceState& state);
  bool operator==(const RequestContext&) const = default;
};

}  // namespace exo::node
