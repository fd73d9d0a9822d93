// NodeServiceHandler: what a node implements so that GrpcServer can serve node_service.NodeService,
// and the request/response values both GrpcServer and PeerHandle speak (our types, never protobuf).
//
// Contract
// - One coroutine per RPC. GrpcServer decodes and validates every request before calling (a bad
//   tensor, shard, InferenceState or JSON never reaches the handler: the caller gets
//   INVALID_ARGUMENT), then runs the coroutine on the server's executor (never on a gRPC thread).
//   Calls arrive concurrently; the handler synchronises its own state.
// - A call the client cancels, or whose deadline passes, or that server shutdown cuts off, receives
//   asio's terminal cancellation; handlers should let it propagate.
// - Exceptions map to gRPC status codes: std::invalid_argument -> INVALID_ARGUMENT,
//   resource::UnavailableError / ClosedError -> UNAVAILABLE, resource::TimeoutError ->
//   DEADLINE_EXCEEDED, operation_aborted -> CANCELLED, anything else -> INTERNAL; the message is
//   the exception's what().
// - health_check() is the answer of the legacy HealthCheck RPC (is_healthy): the node's real
//   readiness, not always true. The standard grpc.health.v1 service is driven separately through
//   GrpcServer::set_serving().
// - Hand-over fast path (optional): a handler that only hands a call over (validates, enqueues, returns)
//   may override hand_over(). GrpcServer calls it first, on the gRPC thread that decoded the request,
//   and answers the RPC at once (OK, empty result) when it returns true — no executor hop, which is
//   most of a ring hop's cost. hand_over must be thread-safe, must not block, and may move from the
//   call only when it returns true; false sends the call down the coroutine path. Its exceptions map
//   to status codes as above. The default returns false.
// - Presence is preserved both ways: an absent optional field stays nullopt, an empty but present
//   one (legacy's empty inference_state) stays an empty value.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/tensor.h"
#include "net/tensor_codec.h"
#include "topology/shard.h"
#include "topology/topology.h"

namespace exo::net {

struct PromptCall {
  topology::Shard shard;  // the target's shard as the sender computed it (informational, §2.5)
  std::string prompt;
  std::optional<std::string> request_id;
  std::optional<InferenceState> inference_state;

  bool operator==(const PromptCall&) const = default;
};

struct TensorCall {
  topology::Shard shard;
  Tensor tensor;
  std::optional<std::string> request_id;
  std::optional<InferenceState> inference_state;

  bool operator==(const TensorCall&) const = default;
};

struct ExampleCall {
  topology::Shard shard;
  Tensor example;
  Tensor target;
  Tensor length;
  bool train = false;
  std::optional<std::string> request_id;

  bool operator==(const ExampleCall&) const = default;
};

struct LossResult {
  float loss = 0.0F;
  std::optional<Tensor> grads;

  bool operator==(const LossResult&) const = default;
};

struct TopologyQuery {
  std::vector<std::string> visited;  // ignored by legacy servers
  std::int32_t max_depth = 0;        // ignored by legacy servers

  bool operator==(const TopologyQuery&) const = default;
};

struct ResultCall {
  std::string request_id;
  std::vector<std::int32_t> tokens;  // new token ids only, normally exactly one
  std::optional<Tensor> tensor;      // image results (legacy Stable Diffusion)
  bool is_finished = false;

  bool operator==(const ResultCall&) const = default;
};

struct OpaqueStatusCall {
  std::string request_id;  // "" for statuses not tied to a request
  nlohmann::json status;   // a JSON object (§2.7), parsed and validated by the server

  bool operator==(const OpaqueStatusCall&) const = default;
};

class NodeServiceHandler {
 public:
  virtual ~NodeServiceHandler() = default;

  // nullopt is sent as the all-empty Tensor legacy callers read as None.
  virtual asio::awaitable<std::optional<Tensor>> send_prompt(PromptCall call) = 0;
  virtual asio::awaitable<std::optional<Tensor>> send_tensor(TensorCall call) = 0;
  // Default: UNIMPLEMENTED (training is not supported by this node).
  virtual asio::awaitable<LossResult> send_example(ExampleCall call);
  virtual asio::awaitable<topology::Topology> collect_topology(TopologyQuery query) = 0;
  virtual asio::awaitable<void> send_result(ResultCall call) = 0;
  virtual asio::awaitable<void> send_opaque_status(OpaqueStatusCall call) = 0;
  virtual asio::awaitable<bool> health_check() = 0;

  // The hand-over fast path (see the contract above).
  virtual bool hand_over(PromptCall& /*call*/) { return false; }
  virtual bool hand_over(TensorCall& /*call*/) { return false; }
  virtual bool hand_over(ResultCall& /*call*/) { return false; }
  virtual bool hand_over(OpaqueStatusCall& /*call*/) { return false; }
};

// Thrown by a handler (or the default send_example) for an RPC it does not implement: UNIMPLEMENTED.
class NotImplementedError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace exo::net
