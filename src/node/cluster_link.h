// ClusterLink: how a node's ring logic reaches the rest of the cluster.
//
// Contract
// - ring_topology() is the node set new requests are planned over: this node plus every peer that is
//   currently usable (connected, healthy, circuit breaker closed), with their device capabilities.
// - The send_* operations deliver one message to one peer and complete when the peer accepted it (the
//   peer processes it in the background, as legacy exo's unary RPCs do). They throw on failure (peer
//   unknown, unreachable, deadline exceeded, circuit open) with a message naming the peer.
// - Thread-safe; the awaitables may be started from any executor.
// Production: the gRPC cluster (peer handles found by discovery). A node without one runs alone.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "net/tensor.h"
#include "net/tensor_codec.h"
#include "topology/shard.h"
#include "topology/topology.h"

namespace exo::node {

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;

  virtual topology::Topology ring_topology() const = 0;
  // Ids of the peers messages can currently be sent to.
  virtual std::vector<std::string> peer_ids() const = 0;

  virtual asio::awaitable<void> send_prompt(std::string to, topology::Shard shard, std::string prompt,
                                            std::string request_id, net::InferenceState state) = 0;
  virtual asio::awaitable<void> send_tensor(std::string to, topology::Shard shard, net::Tensor tensor,
                                            std::string request_id, net::InferenceState state) = 0;
  virtual asio::awaitable<void> send_result(std::string to, std::string request_id,
                                            std::vector<std::int32_t> tokens, bool is_finished) = 0;
  virtual asio::awaitable<void> send_status(std::string to, std::string request_id,
                                            std::string status_json) = 0;
};

}  // namespace exo::node
