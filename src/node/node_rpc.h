// NodeRpc: the node's side of node_service.NodeService — what GrpcServer calls for each RPC.
//
// Contract: a thin, stateless adapter over Node (held weakly: a call that arrives while the node is
// being destroyed gets UNAVAILABLE). SendPrompt and SendTensor validate and hand the work to the node,
// then return the empty Tensor at once (legacy semantics: the work continues in the background);
// SendResult and SendOpaqueStatus deliver to the node. These four take GrpcServer's hand-over fast
// path: Node's accept_* functions are thread-safe and only post to its strand; CollectTopology answers the
// node's current view; HealthCheck answers the node's real readiness. Thread-safe.
#pragma once

#include <memory>

#include "net/node_service_handler.h"

namespace exo::node {

class Node;

class NodeRpc : public net::NodeServiceHandler {
 public:
  explicit NodeRpc(std::weak_ptr<Node> node) : node_(std::move(node)) {}

  asio::awaitable<std::optional<net::Tensor>> send_prompt(net::PromptCall call) override;
  asio::awaitable<std::optional<net::Tensor>> send_tensor(net::TensorCall call) override;
  asio::awaitable<topology::Topology> collect_topology(net::TopologyQuery query) override;
  asio::awaitable<void> send_result(net::ResultCall call) override;
  asio::awaitable<void> send_opaque_status(net::OpaqueStatusCall call) override;
  asio::awaitable<bool> health_check() override;

  bool hand_over(net::PromptCall& call) override;
  bool hand_over(net::TensorCall& call) override;
  bool hand_over(net::ResultCall& call) override;
  bool hand_over(net::OpaqueStatusCall& call) override;

 private:
  std::shared_ptr<Node> node() const;
  std::weak_ptr<Node> node_;
};

}  // namespace exo::node
