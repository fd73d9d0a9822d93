// Conversions between the NodeService request/response values of node_service_handler.h and their
// protobuf messages, shared by GrpcServer (decode requests, encode responses) and PeerHandle
// (encode requests, decode responses).
//
// Contract: stateless functions, thread-safe. Decoders take peer-supplied messages and return
// Result with a message naming the bad field (never throw for bad input); encoders take our own,
// valid values (std::invalid_argument for a value the wire cannot carry, as tensor_codec.h does).
#pragma once

#include "net/node_service.pb.h"
#include "net/node_service_handler.h"
#include "topology/result.h"

namespace exo::net {

// Upper bound on the JSON nesting accepted in an opaque status.
inline constexpr std::size_t kMaxOpaqueStatusDepth = 64;

node_service::PromptRequest encode_prompt_call(const PromptCall& call);
Result<PromptCall> decode_prompt_call(const node_service::PromptRequest& message);

node_service::TensorRequest encode_tensor_call(const TensorCall& call);
Result<TensorCall> decode_tensor_call(const node_service::TensorRequest& message);

node_service::ExampleRequest encode_example_call(const ExampleCall& call);
Result<ExampleCall> decode_example_call(const node_service::ExampleRequest& message);

node_service::Loss encode_loss(const LossResult& loss);
Result<LossResult> decode_loss(const node_service::Loss& message);

node_service::CollectTopologyRequest encode_topology_query(const TopologyQuery& query);
TopologyQuery decode_topology_query(const node_service::CollectTopologyRequest& message);

node_service::SendResultRequest encode_result_call(const ResultCall& call);
Result<ResultCall> decode_result_call(const node_service::SendResultRequest& message);

// status must be a JSON object; it travels as JSON text.
node_service::SendOpaqueStatusRequest encode_opaque_status_call(const OpaqueStatusCall& call);
// Requires valid JSON text holding an object, nested at most kMaxOpaqueStatusDepth deep.
Result<OpaqueStatusCall> decode_opaque_status_call(const node_service::SendOpaqueStatusRequest& message);

// SendPrompt / SendTensor responses: nullopt <-> the all-empty Tensor (legacy's None).
node_service::Tensor encode_optional_tensor(const std::optional<Tensor>& tensor);
Result<std::optional<Tensor>> decode_optional_tensor(const node_service::Tensor& message);

}  // namespace exo::net
