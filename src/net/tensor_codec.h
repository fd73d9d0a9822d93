// Conversion between our Tensor / InferenceState and the protobuf messages of node_service.proto,
// in legacy exo's encoding: Tensor{tensor_data = raw little-endian C-contiguous bytes,
// shape = int32 dimensions, dtype = numpy dtype name}.
//
// Contract: stateless functions, thread-safe. Decoders take peer-supplied messages and return
// Result (never throw for bad input). Encoders take our own, already valid values; a value the wire
// cannot express (a dimension above INT32_MAX, other_data that is not a JSON object) is a
// programming error reported with std::invalid_argument.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/node_service.pb.h"
#include "net/tensor.h"
#include "topology/result.h"

namespace exo::net {

node_service::Tensor encode_tensor(const Tensor& tensor);
// Moves the byte buffer into the message instead of copying it.
node_service::Tensor encode_tensor(Tensor&& tensor);

// Strict: known dtype name, every dimension >= 0, no overflow, and
// tensor_data.size() == product(shape) * itemsize. An empty shape is a 0-d tensor (one element).
Result<Tensor> decode_tensor(const node_service::Tensor& message);
// Same, moving the byte buffer out of the message (which is left with empty tensor_data).
Result<Tensor> decode_tensor(node_service::Tensor&& message);

// Legacy clients read a response Tensor as "no tensor" (Python None) when tensor_data, shape or
// dtype is empty; servers return an all-empty Tensor from SendPrompt / SendTensor.
bool is_absent_tensor(const node_service::Tensor& message) noexcept;

// Legacy serialize_inference_state: arrays, lists of arrays, and a JSON object for everything else.
struct InferenceState {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::vector<Tensor>> tensor_lists;
  nlohmann::json other_data = nlohmann::json::object();  // always a JSON object

  bool empty() const noexcept { return tensors.empty() && tensor_lists.empty() && other_data.empty(); }
  bool operator==(const InferenceState&) const = default;
};

// Nesting limit applied to other_data_json received from a peer.
inline constexpr std::size_t kMaxOtherDataJsonDepth = 64;

// other_data_json is omitted when other_data is empty, as legacy does.
node_service::InferenceState encode_inference_state(const InferenceState& state);
// An absent or empty message decodes to an empty state (legacy treats both alike).
Result<InferenceState> decode_inference_state(const node_service::InferenceState& message);

}  // namespace exo::net
