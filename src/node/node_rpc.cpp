#include "node/node_rpc.h"

#include "node/node.h"
#include "resource/errors.h"

namespace exo::node {

std::shared_ptr<Node> NodeRpc::node() const {
  auto node = node_.lock();
  if (!node) throw resource::UnavailableError("node", "the node is shutting down");
  return node;
}

// The hop calls only hand work to the node, so they take the server's fast path (hand_over, on the
// gRPC thread); the coroutine versions serve callers of the plain interface the same way.
bool NodeRpc::hand_over(net::PromptCall& call) {
  node()->accept_prompt(std::move(call.shard), std::move(call.prompt), call.request_id.value_or(""),
                        call.inference_state.value_or(net::InferenceState{}));
  return true;
}

bool NodeRpc::hand_over(net::TensorCall& call) {
  node()->accept_tensor(std::move(call.shard), std::move(call.tensor), call.request_id.value_or(""),
                        call.inference_state.value_or(net::InferenceState{}));
  return true;
}

bool NodeRpc::hand_over(net::ResultCall& call) {
  node()->accept_result(std::move(call.request_id), std::move(call.tokens), call.is_finished);
  return true;
}

bool NodeRpc::hand_over(net::OpaqueStatusCall& call) {
  node()->accept_status(std::move(call.request_id), std::move(call.status));
  return true;
}

asio::awaitable<std::optional<net::Tensor>> NodeRpc::send_prompt(net::PromptCall call) {
  hand_over(call);
  co_return std::nullopt;
}

asio::awaitable<std::optional<net::Tensor>> NodeRpc::send_tensor(net::TensorCall call) {
  hand_over(call);
  co_return std::nullopt;
}

asio::awaitable<topology::Topology> NodeRpc::collect_topology(net::TopologyQuery /*query*/) {
  // Like legacy: the node's current view, without recursing into peers.
  co_return node()->ring_topology();
}

asio::awaitable<void> NodeRpc::send_result(net::ResultCall call) {
  hand_over(call);
  co_return;
}

asio::awaitable<void> NodeRpc::send_opaque_status(net::OpaqueStatusCall call) {
  hand_over(call);
  co_return;
}

asio::awaitable<bool> NodeRpc::health_check() {
  co_return node()->readiness().ready;
}

}  // namespace exo::node
