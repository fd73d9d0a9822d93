#include "net/tensor_codec.h"

#include <limits>
#include <stdexcept>
#include <utility>

#include "topology/json_fields.h"

namespace exo::net {
namespace {

void set_shape(node_service::Tensor& message, const std::vector<std::int64_t>& shape) {
  auto* dimensions = message.mutable_shape();
  dimensions->Reserve(static_cast<int>(shape.size()));
  for (const std::int64_t dimension : shape) {
    if (dimension > std::numeric_limits<std::int32_t>::max()) {
      throw std::invalid_argument("encode_tensor: dimension " + std::to_string(dimension) +
                                  " does not fit the wire format's int32");
    }
    dimensions->Add(static_cast<std::int32_t>(dimension));
  }
}

// Validates the message's dtype and shape; the byte count is checked by Tensor::create.
Result<std::pair<DType, std::vector<std::int64_t>>> read_header(const node_service::Tensor& message) {
  const auto dtype = dtype_from_name(message.dtype());
  if (!dtype) {
    std::string shown = message.dtype().substr(0, 64);
    return Error{"tensor: unknown dtype '" + shown + "'"};
  }
  std::vector<std::int64_t> shape(message.shape().begin(), message.shape().end());
  return std::pair{*dtype, std::move(shape)};
}

Result<Tensor> with_context(Result<Tensor> result) {
  if (result) return result;
  return Error{"tensor: " + result.error().message};
}

}  // namespace

node_service::Tensor encode_tensor(const Tensor& tensor) {
  node_service::Tensor message;
  set_shape(message, tensor.shape());
  message.set_tensor_data(tensor.bytes());
  message.set_dtype(std::string(dtype_name(tensor.dtype())));
  return message;
}

node_service::Tensor encode_tensor(Tensor&& tensor) {
  node_service::Tensor message;
  set_shape(message, tensor.shape());
  message.set_dtype(std::string(dtype_name(tensor.dtype())));
  message.set_tensor_data(std::move(tensor).release_bytes());
  return message;
}

Result<Tensor> decode_tensor(const node_service::Tensor& message) {
  auto header = read_header(message);
  if (!header) return header.error();
  return with_context(Tensor::create(header->first, std::move(header->second), message.tensor_data()));
}

Result<Tensor> decode_tensor(node_service::Tensor&& message) {
  auto header = read_header(message);
  if (!header) return header.error();
  std::string bytes = std::move(*message.mutable_tensor_data());
  message.clear_tensor_data();
  return with_context(Tensor::create(header->first, std::move(header->second), std::move(bytes)));
}

bool is_absent_tensor(const node_service::Tensor& message) noexcept {
  return message.tensor_data().empty() || message.shape().empty() || message.dtype().empty();
}

node_service::InferenceState encode_inference_state(const InferenceState& state) {
  if (!state.other_data.is_object()) {
    throw std::invalid_argument("encode_inference_state: other_data must be a JSON object");
  }
  node_service::InferenceState message;
  for (const auto& [key, tensor] : state.tensors)
    (*message.mutable_tensor_data())[key] = encode_tensor(tensor);
  for (const auto& [key, list] : state.tensor_lists) {
    auto& encoded = (*message.mutable_tensor_list_data())[key];
    for (const auto& tensor : list) *encoded.add_tensors() = encode_tensor(tensor);
  }
  if (!state.other_data.empty())
    message.set_other_data_json(
        state.other_data.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace));
  return message;
}

Result<InferenceState> decode_inference_state(const node_service::InferenceState& message) {
  InferenceState state;
  for (const auto& [key, encoded] : message.tensor_data()) {
    auto tensor = decode_tensor(encoded);
    if (!tensor) return Error{"inference_state.tensor_data['" + key + "']: " + tensor.error().message};
    state.tensors.emplace(key, std::move(tensor).value());
  }
  for (const auto& [key, encoded_list] : message.tensor_list_data()) {
    std::vector<Tensor> list;
    list.reserve(static_cast<std::size_t>(encoded_list.tensors_size()));
    for (const auto& encoded : encoded_list.tensors()) {
      auto tensor = decode_tensor(encoded);
      if (!tensor) return Error{"inference_state.tensor_list_data['" + key + "']: " + tensor.error().message};
      list.push_back(std::move(tensor).value());
    }
    state.tensor_lists.emplace(key, std::move(list));
  }
  const std::string& text = message.other_data_json();
  if (!text.empty()) {
    if (!topology::json_nesting_within(text, kMaxOtherDataJsonDepth)) {
      return Error{"inference_state.other_data_json: nested too deeply"};
    }
    auto other = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (other.is_discarded()) return Error{"inference_state.other_data_json: not valid JSON"};
    if (!other.is_object()) return Error{"inference_state.other_data_json: expected a JSON object"};
    state.other_data = std::move(other);
  }
  return state;
}

}  // namespace exo::net
