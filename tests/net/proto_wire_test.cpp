// Wire compatibility of node_service.proto: messages built with the generated code must serialise
// to exactly the bytes legacy exo's Python protobuf produces (field numbers, wire types, packing,
// proto3 optional presence), and the service must expose legacy's method paths and types.
#include <gtest/gtest.h>

#include <string>

#include "net/node_service.grpc.pb.h"
#include "net/node_service.pb.h"

namespace {

using namespace std::string_literals;

TEST(ProtoWire, Shard) {
  node_service::Shard shard;
  shard.set_model_id("m");
  shard.set_start_layer(1);
  shard.set_end_layer(2);
  shard.set_n_layers(3);
  // field 1 (len) "m", fields 2, 3, 4 (varint) 1, 2, 3.
  EXPECT_EQ(shard.SerializeAsString(), "\x0a\x01m\x10\x01\x18\x02\x20\x03"s);
}

TEST(ProtoWire, TensorUsesPackedInt32Shape) {
  node_service::Tensor tensor;
  tensor.set_tensor_data("\x01\x02"s);
  tensor.add_shape(1);
  tensor.add_shape(2);
  tensor.set_dtype("int8");
  EXPECT_EQ(tensor.SerializeAsString(), "\x0a\x02\x01\x02\x12\x02\x01\x02\x1a\x04int8"s);
}

TEST(ProtoWire, NegativeShapeDimensionIsATenByteVarint) {
  node_service::Tensor tensor;
  tensor.add_shape(-1);
  EXPECT_EQ(tensor.SerializeAsString(), "\x12\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
}

TEST(ProtoWire, PromptRequestWithPresentButEmptyOptionals) {
  node_service::PromptRequest request;
  request.mutable_shard()->set_model_id("m");
  request.mutable_shard()->set_n_layers(1);
  request.set_prompt("hi");
  request.set_request_id("");         // optional: present even when empty
  request.mutable_inference_state();  // legacy API path sends an empty but present state
  EXPECT_EQ(request.SerializeAsString(), "\x0a\x05\x0a\x01m\x20\x01\x12\x02hi\x1a\x00\x22\x00"s);
}

TEST(ProtoWire, TensorRequestAndExampleRequestFieldNumbers) {
  node_service::TensorRequest tensor_request;
  tensor_request.mutable_tensor()->set_dtype("x");
  tensor_request.set_request_id("r");
  EXPECT_EQ(tensor_request.SerializeAsString(), "\x12\x03\x1a\x01x\x1a\x01r"s);

  node_service::ExampleRequest example;
  example.mutable_example()->set_dtype("a");
  example.mutable_target()->set_dtype("b");
  example.mutable_length()->set_dtype("c");
  example.set_train(true);
  example.set_request_id("r");
  EXPECT_EQ(example.SerializeAsString(),
            "\x12\x03\x1a\x01"
            "a\x1a\x03\x1a\x01"
            "b\x22\x03\x1a\x01"
            "c\x28\x01\x32\x01r"s);
}

TEST(ProtoWire, LossIsAFloat) {
  node_service::Loss loss;
  loss.set_loss(0.5F);
  loss.mutable_grads();
  EXPECT_EQ(loss.SerializeAsString(), "\x0d\x00\x00\x00\x3f\x12\x00"s);
}

TEST(ProtoWire, DeviceCapabilitiesAndDoubleFlops) {
  node_service::DeviceCapabilities capabilities;
  capabilities.set_model("M");
  capabilities.set_chip("C");
  capabilities.set_memory(16384);
  capabilities.mutable_flops()->set_fp32(1.0);
  capabilities.mutable_flops()->set_int8(2.0);
  // memory 16384 = varint 80 80 01; flops: field 1 and 3 as 64-bit doubles.
  EXPECT_EQ(capabilities.SerializeAsString(),
            "\x0a\x01M\x12\x01"
            "C\x18\x80\x80\x01\x22\x12"
            "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"
            "\x19\x00\x00\x00\x00\x00\x00\x00\x40"s);
}

TEST(ProtoWire, TopologyMapsAndOptionalDescription) {
  node_service::Topology topology;
  auto& connections = (*topology.mutable_peer_graph())["a"];
  connections.add_connections()->set_to_id("b");
  // peer_graph (field 2) entry {key "a", value PeerConnections{connections [{to_id "b"}]}}.
  EXPECT_EQ(topology.SerializeAsString(),
            "\x12\x0a\x0a\x01"
            "a\x12\x05\x0a\x03\x0a\x01"
            "b"s);

  node_service::PeerConnection with_description;
  with_description.set_to_id("b");
  with_description.set_description("");
  EXPECT_EQ(with_description.SerializeAsString(),
            "\x0a\x01"
            "b\x12\x00"s);
}

TEST(ProtoWire, TopologyNodesMapIsFieldOne) {
  node_service::Topology topology;
  (*topology.mutable_nodes())["n"].set_memory(1);
  EXPECT_EQ(topology.SerializeAsString(), "\x0a\x07\x0a\x01n\x12\x02\x18\x01"s);
}

TEST(ProtoWire, SmallRequestsAndResponses) {
  node_service::SendResultRequest result;
  result.set_request_id("r");
  result.add_result(7);
  result.add_result(300);
  result.set_is_finished(true);
  EXPECT_EQ(result.SerializeAsString(), "\x0a\x01r\x12\x03\x07\xac\x02\x20\x01"s);

  node_service::SendOpaqueStatusRequest status;
  status.set_request_id("");  // plain proto3 string: empty is not sent
  status.set_status("{}");
  EXPECT_EQ(status.SerializeAsString(), "\x12\x02{}"s);

  node_service::CollectTopologyRequest collect;
  collect.add_visited("x");
  collect.set_max_depth(4);
  EXPECT_EQ(collect.SerializeAsString(), "\x0a\x01x\x10\x04"s);

  node_service::HealthCheckResponse health;
  health.set_is_healthy(true);
  EXPECT_EQ(health.SerializeAsString(), "\x08\x01"s);
  EXPECT_EQ(node_service::HealthCheckRequest().SerializeAsString(), "");
  EXPECT_EQ(node_service::Empty().SerializeAsString(), "");
}

TEST(ProtoWire, InferenceStateMaps) {
  node_service::InferenceState state;
  (*state.mutable_tensor_data())["k"].set_dtype("d");
  state.set_other_data_json("{}");
  EXPECT_EQ(state.SerializeAsString(),
            "\x0a\x08\x0a\x01k\x12\x03\x1a\x01"
            "d\x1a\x02{}"s);
  node_service::InferenceState lists;
  (*lists.mutable_tensor_list_data())["k"].add_tensors();
  EXPECT_EQ(lists.SerializeAsString(), "\x12\x07\x0a\x01k\x12\x02\x0a\x00"s);
}

TEST(ProtoWire, ParsesBytesAsLegacyWritesThem) {
  node_service::Tensor tensor;
  ASSERT_TRUE(tensor.ParseFromString("\x0a\x02\x01\x02\x12\x02\x01\x02\x1a\x04int8"s));
  EXPECT_EQ(tensor.tensor_data(), "\x01\x02"s);
  ASSERT_EQ(tensor.shape_size(), 2);
  EXPECT_EQ(tensor.shape(1), 2);
  EXPECT_EQ(tensor.dtype(), "int8");
  // Unpacked repeated int32 (what a non-packing encoder may send) must be accepted too.
  ASSERT_TRUE(tensor.ParseFromString("\x10\x05\x10\x06"s));  // ParseFromString clears first
  ASSERT_EQ(tensor.shape_size(), 2);
  EXPECT_EQ(tensor.shape(0), 5);
  EXPECT_EQ(tensor.shape(1), 6);
}

TEST(ProtoWire, ServiceMethodsMatchLegacy) {
  EXPECT_STREQ(node_service::NodeService::service_full_name(), "node_service.NodeService");
  const auto* service = node_service::Shard::descriptor()->file()->FindServiceByName("NodeService");
  ASSERT_NE(service, nullptr);
  struct Method {
    const char* name;
    const char* input;
    const char* output;
  };
  const Method expected[] = {
      {"SendPrompt", "node_service.PromptRequest", "node_service.Tensor"},
      {"SendTensor", "node_service.TensorRequest", "node_service.Tensor"},
      {"SendExample", "node_service.ExampleRequest", "node_service.Loss"},
      {"CollectTopology", "node_service.CollectTopologyRequest", "node_service.Topology"},
      {"SendResult", "node_service.SendResultRequest", "node_service.Empty"},
      {"SendOpaqueStatus", "node_service.SendOpaqueStatusRequest", "node_service.Empty"},
      {"HealthCheck", "node_service.HealthCheckRequest", "node_service.HealthCheckResponse"},
  };
  ASSERT_EQ(service->method_count(), static_cast<int>(std::size(expected)));
  for (const auto& method : expected) {
    const auto* descriptor = service->FindMethodByName(method.name);
    ASSERT_NE(descriptor, nullptr) << method.name;
    EXPECT_EQ(descriptor->input_type()->full_name(), method.input);
    EXPECT_EQ(descriptor->output_type()->full_name(), method.output);
    EXPECT_FALSE(descriptor->client_streaming() || descriptor->server_streaming()) << method.name;
  }
}

}  // namespace
