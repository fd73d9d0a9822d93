// GrpcServer over real loopback gRPC, driven by raw generated stubs: what a legacy (Python) client
// sends, including gzip-compressed requests, malformed messages and the standard health service.
#include "net/grpc_server.h"

#include <gtest/gtest.h>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "grpc_test_support.h"
#include "net/grpc_health.grpc.pb.h"
#include "net/grpc_messages.h"
#include "net/node_service.grpc.pb.h"
#include "net/proto_convert.h"
#include "resource/registry.h"

namespace exo::net {
namespace {

using namespace std::chrono_literals;
using testing::AsioThreads;
using testing::Gate;
using testing::TestHandler;
using testing::wait_until;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

std::shared_ptr<grpc::Channel> raw_channel(unsigned short port, bool gzip) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  args.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
  if (gzip) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(),
                                   args);
}

void set_deadline(grpc::ClientContext& context, std::chrono::milliseconds timeout = 10s) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server(); }

  void TearDown() override {
    if (server_) threads_.run(server_->cleanup());
  }

  void start_server(GrpcServerOptions options = {}) {
    options.host = "127.0.0.1";
    server_.reset();  // resource ids are unique among live resources
    server_ =
        resource::make_resource<GrpcServer>(threads_.executor(), "grpc-test", options, handler_, registry_);
    threads_.run(server_->initialize());
    ASSERT_NE(server_->port(), 0);
    stub_ = node_service::NodeService::NewStub(raw_channel(server_->port(), true));
  }

  grpc::Status send_tensor(const node_service::TensorRequest& request,
                           node_service::Tensor* response = nullptr,
                           std::chrono::milliseconds timeout = 10s) {
    grpc::ClientContext context;
    set_deadline(context, timeout);
    node_service::Tensor ignored;
    return stub_->SendTensor(&context, request, response ? response : &ignored);
  }

  AsioThreads threads_;
  std::shared_ptr<resource::ResourceRegistry> registry_ = std::make_shared<resource::ResourceRegistry>();
  std::shared_ptr<TestHandler> handler_ = std::make_shared<TestHandler>();
  std::shared_ptr<GrpcServer> server_;
  std::unique_ptr<node_service::NodeService::Stub> stub_;
};

node_service::TensorRequest valid_tensor_request() {
  TensorCall call;
  call.shard.model_id = "dummy";
  call.shard.start_layer = 4;
  call.shard.end_layer = 7;
  call.shard.n_layers = 8;
  call.tensor = Tensor::from_values<float>({1, 1, 4}, std::vector<float>{1, 2, 3, 4});
  call.request_id = "r1";
  return encode_tensor_call(call);
}

TEST_F(GrpcServerTest, ServesOnEphemeralPortAndIsAResource) {
  EXPECT_EQ(server_->state(), resource::ResourceState::READY);
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
  const auto info = server_->info();
  EXPECT_EQ(info.identity.type, "grpc_server");
  EXPECT_EQ(info.details.at("address"), server_->address());
  const auto health = threads_.run(server_->check_health());
  EXPECT_TRUE(health.healthy) << health.detail;
}

TEST_F(GrpcServerTest, LegacyGzipClientRoundTripsTensorRequests) {
  // A compressible 1 MiB payload: gzip really shrinks it on the wire; the server must inflate it.
  TensorCall call;
  call.shard.model_id = "llama-3.2-1b";
  call.shard.end_layer = 7;
  call.shard.n_layers = 16;
  call.tensor = Tensor(DType::FLOAT16, {1, 512, 1024}, std::string(512 * 1024 * 2, '\0'));
  call.request_id = "gzip-request";
  call.inference_state = InferenceState{};  // empty but present, as legacy's API path sends it
  handler_->echo_tensor = true;
  node_service::Tensor response;
  ASSERT_TRUE(send_tensor(encode_tensor_call(call), &response).ok());
  ASSERT_EQ(handler_->tensors().size(), 1U);
  EXPECT_EQ(handler_->tensors()[0], call);
  auto decoded = decode_tensor(response);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, call.tensor);

  // Uncompressed channel, and a per-call gzip request on it, both accepted.
  auto plain = node_service::NodeService::NewStub(raw_channel(server_->port(), false));
  for (bool per_call_gzip : {false, true}) {
    grpc::ClientContext context;
    set_deadline(context);
    if (per_call_gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    node_service::Tensor out;
    ASSERT_TRUE(plain->SendTensor(&context, encode_tensor_call(call), &out).ok());
  }
  EXPECT_EQ(handler_->tensors().size(), 3U);
}

TEST_F(GrpcServerTest, PromptWithAbsentOptionalsAndEmptyResponse) {
  node_service::PromptRequest request;
  *request.mutable_shard() = shard_to_proto({"dummy", 0, 3, 8});
  request.set_prompt("hello");
  grpc::ClientContext context;
  set_deadline(context);
  node_service::Tensor response;
  ASSERT_TRUE(stub_->SendPrompt(&context, request, &response).ok());
  EXPECT_TRUE(is_absent_tensor(response));
  const auto prompts = handler_->prompts();
  ASSERT_EQ(prompts.size(), 1U);
  EXPECT_EQ(prompts[0].prompt, "hello");
  EXPECT_FALSE(prompts[0].request_id.has_value());
  EXPECT_FALSE(prompts[0].inference_state.has_value());
}

TEST_F(GrpcServerTest, InvalidMessagesGetInvalidArgumentAndTheServerKeepsServing) {
  struct Case {
    const char* name;
    std::function<void(node_service::TensorRequest&)> damage;
    const char* expected;
  };
  const std::vector<Case> cases{
      {"unknown dtype", [](auto& r) { r.mutable_tensor()->set_dtype("float33"); },
       "request: tensor: unknown dtype 'float33'"},
      {"short data", [](auto& r) { r.mutable_tensor()->mutable_tensor_data()->pop_back(); }, "tensor"},
      {"negative dim", [](auto& r) { r.mutable_tensor()->set_shape(0, -1); }, "tensor"},
      {"bad shard", [](auto& r) { r.mutable_shard()->set_start_layer(9); }, "shard"},
      {"empty model", [](auto& r) { r.mutable_shard()->clear_model_id(); }, "shard"},
      {"bad state json", [](auto& r) { r.mutable_inference_state()->set_other_data_json("{not json"); },
       "other_data_json"},
      {"bad state tensor",
       [](auto& r) { (*r.mutable_inference_state()->mutable_tensor_data())["x"].set_dtype("int4"); },
       "inference_state"},
  };
  for (const auto& c : cases) {
    auto request = valid_tensor_request();
    c.damage(request);
    const auto status = send_tensor(request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(status.error_message().find("SendTensor: invalid request"), std::string::npos) << c.name;
    EXPECT_NE(status.error_message().find(c.expected), std::string::npos)
        << c.name << ": " << status.error_message();
  }
  EXPECT_TRUE(handler_->tensors().empty()) << "invalid requests never reach the handler";
  EXPECT_EQ(server_->counters().invalid_requests, cases.size());

  for (const char* status_text : {"{", "[1, 2]", "\"text\"", ""}) {
    node_service::SendOpaqueStatusRequest request;
    request.set_request_id("r");
    request.set_status(status_text);
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Empty empty;
    const auto status = stub_->SendOpaqueStatus(&context, request, &empty);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status_text;
    EXPECT_NE(status.error_message().find("status"), std::string::npos);
  }
  {
    node_service::SendOpaqueStatusRequest request;
    request.set_status(std::string(100, '[') + std::string(100, ']'));
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Empty empty;
    EXPECT_EQ(stub_->SendOpaqueStatus(&context, request, &empty).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    node_service::SendResultRequest request;
    request.set_request_id("r");
    request.mutable_tensor()->set_dtype("complex128");
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Empty empty;
    EXPECT_EQ(stub_->SendResult(&context, request, &empty).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Still serving.
  EXPECT_TRUE(send_tensor(valid_tensor_request()).ok());
  EXPECT_EQ(handler_->tensors().size(), 1U);
  EXPECT_EQ(server_->state(), resource::ResourceState::READY);
}

TEST_F(GrpcServerTest, HandlerExceptionsMapToStatusCodes) {
  handler_->throw_on_result = true;
  node_service::SendResultRequest result;
  result.set_request_id("r");
  {
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Empty empty;
    const auto status = stub_->SendResult(&context, result, &empty);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_EQ(status.error_message(), "result handler failed");
  }
  handler_->reject_status = true;
  {
    node_service::SendOpaqueStatusRequest request;
    request.set_status(R"({"type":"node_status"})");
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Empty empty;
    EXPECT_EQ(stub_->SendOpaqueStatus(&context, request, &empty).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  handler_->support_examples = false;
  {
    node_service::ExampleRequest request;
    *request.mutable_shard() = shard_to_proto({"dummy", 0, 7, 8});
    for (auto* t : {request.mutable_example(), request.mutable_target(), request.mutable_length()})
      *t = encode_tensor(Tensor::from_values<std::int64_t>({1}, std::vector<std::int64_t>{1}));
    grpc::ClientContext context;
    set_deadline(context);
    node_service::Loss loss;
    EXPECT_EQ(stub_->SendExample(&context, request, &loss).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  // The counter moves just after the call is finished: wait for it rather than race the client.
  EXPECT_TRUE(wait_until([&] { return server_->counters().failed_calls >= 3U; }));
}

TEST_F(GrpcServerTest, HandOverAnswersAtOnceAndMapsItsErrors) {
  TensorCall call;
  call.shard = {"dummy", 0, 3, 8};
  call.tensor = Tensor::from_values<float>({1, 1, 4}, std::vector<float>{1, 2, 3, 4});
  call.request_id = "handed";
  handler_->echo_tensor = true;  // the coroutine path would answer with the tensor

  handler_->hand_over_tensors = 1;
  node_service::Tensor response;
  ASSERT_TRUE(send_tensor(encode_tensor_call(call), &response).ok());
  EXPECT_TRUE(is_absent_tensor(response));  // answered by the fast path: the empty Tensor
  ASSERT_EQ(handler_->handed_over().size(), 1U);
  EXPECT_EQ(handler_->handed_over()[0], call);
  EXPECT_TRUE(handler_->tensors().empty());

  handler_->hand_over_tensors = 2;
  const auto refused = send_tensor(encode_tensor_call(call));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message(), "tensor refused on hand-over");

  handler_->hand_over_tensors = 0;  // declined: the coroutine path serves it, with the call intact
  node_service::Tensor echoed;
  ASSERT_TRUE(send_tensor(encode_tensor_call(call), &echoed).ok());
  ASSERT_EQ(handler_->tensors().size(), 1U);
  EXPECT_EQ(handler_->tensors()[0], call);
  EXPECT_EQ(decode_tensor(echoed).value(), call.tensor);
  EXPECT_TRUE(
      wait_until([&] { return server_->counters().calls >= 3U && server_->counters().failed_calls >= 1U; }));
}

TEST_F(GrpcServerTest, LegacyHealthCheckAnswersFromTheHandler) {
  for (bool healthy : {true, false, true}) {
    handler_->healthy = healthy;
    grpc::ClientContext context;
    set_deadline(context);
    node_service::HealthCheckResponse response;
    ASSERT_TRUE(stub_->HealthCheck(&context, node_service::HealthCheckRequest(), &response).ok());
    EXPECT_EQ(response.is_healthy(), healthy);
  }
}

HealthStatus::ServingStatus standard_check(grpc::health::v1::Health::Stub& health, const std::string& service,
                                           grpc::StatusCode* code = nullptr) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::ClientContext context;
  set_deadline(context);
  HealthStatus response;
  const auto status = health.Check(&context, request, &response);
  if (code) *code = status.error_code();
  return response.status();
}

TEST_F(GrpcServerTest, StandardHealthCheckAndWatchFollowSetServing) {
  auto health = grpc::health::v1::Health::NewStub(raw_channel(server_->port(), false));
  EXPECT_EQ(standard_check(*health, ""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(standard_check(*health, kNodeServiceName), HealthStatus::NOT_SERVING);
  grpc::StatusCode code = grpc::StatusCode::OK;
  standard_check(*health, "no.such.Service", &code);
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  watch_request.set_service(kNodeServiceName);
  auto reader = health->Watch(&watch_context, watch_request);
  HealthStatus update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthStatus::NOT_SERVING);

  server_->set_serving(true);
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthStatus::SERVING);
  EXPECT_EQ(standard_check(*health, ""), HealthStatus::SERVING);
  EXPECT_EQ(standard_check(*health, kNodeServiceName), HealthStatus::SERVING);

  server_->set_serving(false);
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthStatus::NOT_SERVING);
  EXPECT_EQ(standard_check(*health, ""), HealthStatus::NOT_SERVING);

  server_->set_serving(true);
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthStatus::SERVING);
  watch_context.TryCancel();
  while (reader->Read(&update)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(GrpcServerTest, StalledHandlerGivesDeadlineExceededAndIsCancelled) {
  auto gate = std::make_shared<Gate>();
  handler_->stall_at(gate);
  const auto started = std::chrono::steady_clock::now();
  const auto status = send_tensor(valid_tensor_request(), nullptr, 200ms);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  // The server cancels the handler's coroutine instead of leaving it waiting forever.
  EXPECT_TRUE(wait_until([&] { return handler_->stall_cancelled.load() == 1; }));
  EXPECT_TRUE(wait_until([&] { return server_->counters().in_flight == 0; }));
  EXPECT_EQ(handler_->stall_released.load(), 0);
  gate->open();
  EXPECT_TRUE(send_tensor(valid_tensor_request()).ok());
}

TEST_F(GrpcServerTest, CleanupDrainsACallInFlight) {
  auto gate = std::make_shared<Gate>();
  handler_->stall_at(gate);
  auto call =
      std::async(std::launch::async, [&] { return send_tensor(valid_tensor_request(), nullptr, 20s); });
  ASSERT_TRUE(wait_until([&] { return handler_->stalled.load() == 1; }));
  auto cleanup = threads_.start(server_->cleanup());
  // The server no longer takes new calls while it drains.
  ASSERT_TRUE(wait_until([&] { return server_->state() == resource::ResourceState::CLOSING; }));
  ASSERT_TRUE(wait_until([&] {
    auto other = node_service::NodeService::NewStub(raw_channel(server_->port(), false));
    grpc::ClientContext context;
    set_deadline(context, 2s);
    node_service::HealthCheckResponse response;
    return other->HealthCheck(&context, node_service::HealthCheckRequest(), &response).error_code() ==
           grpc::StatusCode::UNAVAILABLE;
  }));
  EXPECT_EQ(cleanup.wait_for(0s), std::future_status::timeout) << "cleanup must wait for the call in flight";
  gate->open();
  EXPECT_TRUE(call.get().ok()) << "the call in flight finishes normally";
  ASSERT_EQ(cleanup.wait_for(20s), std::future_status::ready);
  cleanup.get();
  EXPECT_EQ(server_->state(), resource::ResourceState::CLOSED);
  EXPECT_EQ(handler_->stall_released.load(), 1);
}

TEST_F(GrpcServerTest, CleanupCancelsACallThatOutlivesTheGracePeriod) {
  threads_.run(server_->cleanup());
  GrpcServerOptions options;
  options.shutdown_grace = 200ms;
  start_server(options);
  auto gate = std::make_shared<Gate>();
  handler_->stall_at(gate);
  auto call =
      std::async(std::launch::async, [&] { return send_tensor(valid_tensor_request(), nullptr, 20s); });
  ASSERT_TRUE(wait_until([&] { return handler_->stalled.load() == 1; }));
  const auto started = std::chrono::steady_clock::now();
  threads_.run(server_->cleanup());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  const auto status = call.get();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(handler_->stall_cancelled.load(), 1);
  EXPECT_EQ(server_->counters().in_flight, 0U);
  EXPECT_EQ(server_->state(), resource::ResourceState::CLOSED);
}

TEST_F(GrpcServerTest, PortAlreadyInUseFailsInitialization) {
  GrpcServerOptions options;
  options.host = "127.0.0.1";
  options.port = server_->port();
  auto second =
      resource::make_resource<GrpcServer>(threads_.executor(), "grpc-second", options, handler_, registry_);
  try {
    threads_.run(second->initialize());
    FAIL() << "a second server on a taken port must not start";
  } catch (const resource::InitializationError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(server_->port())),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(second->state(), resource::ResourceState::ERROR);
  EXPECT_TRUE(send_tensor(valid_tensor_request()).ok()) << "the first server is unaffected";
  threads_.run(second->cleanup());
}

TEST_F(GrpcServerTest, GoneHandlerGivesUnavailable) {
  handler_.reset();
  grpc::ClientContext context;
  set_deadline(context);
  node_service::HealthCheckResponse response;
  const auto status = stub_->HealthCheck(&context, node_service::HealthCheckRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  const auto health = threads_.run(server_->check_health());
  EXPECT_FALSE(health.healthy);
}

TEST_F(GrpcServerTest, ManyConcurrentCallsAllComplete) {
  handler_->echo_tensor = true;
  std::vector<std::future<grpc::Status>> calls;
  for (int i = 0; i < 32; ++i) {
    calls.push_back(std::async(std::launch::async, [&] { return send_tensor(valid_tensor_request()); }));
  }
  for (auto& call : calls) EXPECT_TRUE(call.get().ok());
  EXPECT_EQ(handler_->tensors().size(), 32U);
  EXPECT_EQ(server_->counters().calls, 32U);
}

}  // namespace
}  // namespace exo::net
