#include "net/grpc_messages.h"

#include <stdexcept>
#include <string_view>

#include "net/proto_convert.h"
#include "topology/json_fields.h"

namespace exo::net {
namespace {

Result<std::optional<InferenceState>> decode_optional_state(bool present,
                                                            const node_service::InferenceState& message) {
  if (!present) return std::optional<InferenceState>();
  auto state = decode_inference_state(message);
  if (!state) return Error{state.error().message};
  return std::optional<InferenceState>(std::move(state).value());
}

Result<Tensor> decode_named_tensor(const char* field, const node_service::Tensor& message) {
  auto tensor = decode_tensor(message);
  if (tensor) return tensor;
  // decode_tensor says "tensor: ..."; name the field instead.
  std::string why = tensor.error().message;
  constexpr std::string_view kPrefix = "tensor: ";
  if (why.rfind(kPrefix, 0) == 0) why.erase(0, kPrefix.size());
  return Error{std::string(field) + ": " + why};
}

}  // namespace

asio::awaitable<LossResult> NodeServiceHandler::send_example(ExampleCall /*call*/) {
  throw NotImplementedError("SendExample (training) is not supported by this node");
  co_return LossResult();
}

node_service::PromptRequest encode_prompt_call(const PromptCall& call) {
  node_service::PromptRequest message;
  *message.mutable_shard() = shard_to_proto(call.shard);
  message.set_prompt(call.prompt);
  if (call.request_id) message.set_request_id(*call.request_id);
  if (call.inference_state)
    *message.mutable_inference_state() = encode_inference_state(*call.inference_state);
  return message;
}

Result<PromptCall> decode_prompt_call(const node_service::PromptRequest& message) {
  auto shard = shard_from_proto(message.shard());
  if (!shard) return Error{shard.error().message};
  auto state = decode_optional_state(message.has_inference_state(), message.inference_state());
  if (!state) return Error{state.error().message};
  PromptCall call{std::move(shard).value(), message.prompt(), std::nullopt, std::move(state).value()};
  if (message.has_request_id()) call.request_id = message.request_id();
  return call;
}

node_service::TensorRequest encode_tensor_call(const TensorCall& call) {
  node_service::TensorRequest message;
  *message.mutable_shard() = shard_to_proto(call.shard);
  *message.mutable_tensor() = encode_tensor(call.tensor);
  if (call.request_id) message.set_request_id(*call.request_id);
  if (call.inference_state)
    *message.mutable_inference_state() = encode_inference_state(*call.inference_state);
  return message;
}

Result<TensorCall> decode_tensor_call(const node_service::TensorRequest& message) {
  auto shard = shard_from_proto(message.shard());
  if (!shard) return Error{shard.error().message};
  auto tensor = decode_named_tensor("tensor", message.tensor());
  if (!tensor) return Error{tensor.error().message};
  auto state = decode_optional_state(message.has_inference_state(), message.inference_state());
  if (!state) return Error{state.error().message};
  TensorCall call{std::move(shard).value(), std::move(tensor).value(), std::nullopt,
                  std::move(state).value()};
  if (message.has_request_id()) call.request_id = message.request_id();
  return call;
}

node_service::ExampleRequest encode_example_call(const ExampleCall& call) {
  node_service::ExampleRequest message;
  *message.mutable_shard() = shard_to_proto(call.shard);
  *message.mutable_example() = encode_tensor(call.example);
  *message.mutable_target() = encode_tensor(call.target);
  *message.mutable_length() = encode_tensor(call.length);
  message.set_train(call.train);
  if (call.request_id) message.set_request_id(*call.request_id);
  return message;
}

Result<ExampleCall> decode_example_call(const node_service::ExampleRequest& message) {
  auto shard = shard_from_proto(message.shard());
  if (!shard) return Error{shard.error().message};
  auto example = decode_named_tensor("example", message.example());
  if (!example) return Error{example.error().message};
  auto target = decode_named_tensor("target", message.target());
  if (!target) return Error{target.error().message};
  auto length = decode_named_tensor("length", message.length());
  if (!length) return Error{length.error().message};
  ExampleCall call{std::move(shard).value(),  std::move(example).value(),
                   std::move(target).value(), std::move(length).value(),
                   message.train(),           std::nullopt};
  if (message.has_request_id()) call.request_id = message.request_id();
  return call;
}

node_service::Loss encode_loss(const LossResult& loss) {
  node_service::Loss message;
  message.set_loss(loss.loss);
  if (loss.grads) *message.mutable_grads() = encode_tensor(*loss.grads);
  return message;
}

Result<LossResult> decode_loss(const node_service::Loss& message) {
  LossResult loss{message.loss(), std::nullopt};
  if (message.has_grads()) {
    auto grads = decode_named_tensor("grads", message.grads());
    if (!grads) return Error{grads.error().message};
    loss.grads = std::move(grads).value();
  }
  return loss;
}

node_service::CollectTopologyRequest encode_topology_query(const TopologyQuery& query) {
  node_service::CollectTopologyRequest message;
  for (const auto& id : query.visited) message.add_visited(id);
  message.set_max_depth(query.max_depth);
  return message;
}

TopologyQuery decode_topology_query(const node_service::CollectTopologyRequest& message) {
  TopologyQuery query;
  query.visited.assign(message.visited().begin(), message.visited().end());
  query.max_depth = message.max_depth();
  return query;
}

node_service::SendResultRequest encode_result_call(const ResultCall& call) {
  node_service::SendResultRequest message;
  message.set_request_id(call.request_id);
  for (auto token : call.tokens) message.add_result(token);
  if (call.tensor) *message.mutable_tensor() = encode_tensor(*call.tensor);
  message.set_is_finished(call.is_finished);
  return message;
}

Result<ResultCall> decode_result_call(const node_service::SendResultRequest& message) {
  ResultCall call;
  call.request_id = message.request_id();
  call.tokens.assign(message.result().begin(), message.result().end());
  if (message.has_tensor()) {
    auto tensor = decode_named_tensor("tensor", message.tensor());
    if (!tensor) return Error{tensor.error().message};
    call.tensor = std::move(tensor).value();
  }
  call.is_finished = message.is_finished();
  return call;
}

node_service::SendOpaqueStatusRequest encode_opaque_status_call(const OpaqueStatusCall& call) {
  if (!call.status.is_object()) throw std::invalid_argument("opaque status must be a JSON object");
  node_service::SendOpaqueStatusRequest message;
  message.set_request_id(call.request_id);
  message.set_status(call.status.dump());
  return message;
}

Result<OpaqueStatusCall> decode_opaque_status_call(const node_service::SendOpaqueStatusRequest& message) {
  const std::string& text = message.status();
  if (!topology::json_nesting_within(text, kMaxOpaqueStatusDepth)) return Error{"status: nested too deeply"};
  auto status = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (status.is_discarded()) return Error{"status: not valid JSON"};
  if (!status.is_object()) return Error{"status: expected a JSON object"};
  return OpaqueStatusCall{message.request_id(), std::move(status)};
}

node_service::Tensor encode_optional_tensor(const std::optional<Tensor>& tensor) {
  return tensor ? encode_tensor(*tensor) : node_service::Tensor();
}

Result<std::optional<Tensor>> decode_optional_tensor(const node_service::Tensor& message) {
  if (is_absent_tensor(message)) return std::optional<Tensor>();
  auto tensor = decode_tensor(message);
  if (!tensor) return Error{tensor.error().message};
  return std::optional<Tensor>(std::move(tensor).value());
}

}  // namespace exo::net
