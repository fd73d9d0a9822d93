// PeerHandle -> GrpcServer -> handler over real loopback gRPC: exact round trips of our types,
// deadlines, cancellation, the circuit breaker and recovery.
#include "net/peer_handle.h"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_future.hpp>
#include <future>

#include "grpc_test_support.h"
#include "net/grpc_server.h"
#include "resource/registry.h"
#include "resource/timeouts.h"

namespace exo::net {
namespace {

using namespace std::chrono_literals;
using testing::AsioThreads;
using testing::Gate;
using testing::TestHandler;
using testing::wait_until;

// A port nothing listens on (bound, read, released).
unsigned short free_port() {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

struct FakeClock {
  std::atomic<std::int64_t> offset_ns{0};
  CircuitBreaker::Now function() {
    return [this] { return std::chrono::steady_clock::now() + std::chrono::nanoseconds(offset_ns.load()); };
  }
  void advance(std::chrono::steady_clock::duration by) {
    offset_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(by).count();
  }
};

resource::ResourceOptions unsupervised() {
  auto options = default_peer_resource_options();
  options.supervision.health_interval = {};
  options.supervision.auto_recover = false;
  return options;
}

class PeerHandleTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server(0); }

  void TearDown() override {
    for (auto& peer : peers_) threads_.run(peer->cleanup());
    if (server_) threads_.run(server_->cleanup());
  }

  void start_server(int port) {
    GrpcServerOptions options;
    options.host = "127.0.0.1";
    options.port = port;
    options.shutdown_grace = 1s;
    server_.reset();  // resource ids are unique among live resources
    server_ = resource::make_resource<GrpcServer>(threads_.executor(), "grpc-peer-test", options, handler_,
                                                  registry_);
    threads_.run(server_->initialize());
  }

  std::shared_ptr<PeerHandle> make_peer(PeerOptions options = {},
                                        resource::ResourceOptions resource = unsupervised(),
                                        std::string address = "", std::string node_id = "node-b") {
    if (address.empty()) address = server_->address();
    auto peer = resource::make_resource<PeerHandle>(
        threads_.executor(), node_id, address, "Ethernet (lo)",
        topology::DeviceCapabilities{"Box", "CPU", 4096, {1, 2, 4}}, options, registry_, resource);
    peers_.push_back(peer);
    return peer;
  }

  AsioThreads threads_;
  std::shared_ptr<resource::ResourceRegistry> registry_ = std::make_shared<resource::ResourceRegistry>();
  std::shared_ptr<TestHandler> handler_ = std::make_shared<TestHandler>();
  std::shared_ptr<GrpcServer> server_;
  std::vector<std::shared_ptr<PeerHandle>> peers_;
};

Tensor sample_tensor(DType dtype, std::vector<std::int64_t> shape) {
  std::int64_t count = 1;
  for (auto d : shape) count *= d;
  std::string bytes(static_cast<std::size_t>(count) * dtype_size(dtype), '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 37 + 11) % 251);
  if (dtype == DType::BOOL) {
    for (auto& b : bytes) b = static_cast<char>(b & 1);
  }
  return Tensor(dtype, std::move(shape), std::move(bytes));
}

topology::Shard shard(const std::string& model, int start, int end, int layers) {
  topology::Shard out;
  out.model_id = model;
  out.start_layer = start;
  out.end_layer = end;
  out.n_layers = layers;
  return out;
}

TensorCall tensor_call(topology::Shard target, Tensor tensor, std::optional<std::string> request_id) {
  TensorCall call;
  call.shard = std::move(target);
  call.tensor = std::move(tensor);
  call.request_id = std::move(request_id);
  return call;
}

PromptCall prompt_call(topology::Shard target, std::string prompt, std::optional<std::string> request_id,
                       std::optional<InferenceState> state) {
  PromptCall call;
  call.shard = std::move(target);
  call.prompt = std::move(prompt);
  call.request_id = std::move(request_id);
  call.inference_state = std::move(state);
  return call;
}

TEST_F(PeerHandleTest, InitializesAsAResourceAndReportsIdentity) {
  auto peer = make_peer();
  EXPECT_EQ(peer->state(), resource::ResourceState::UNINITIALIZED);
  threads_.run(peer->initialize());
  EXPECT_EQ(peer->state(), resource::ResourceState::READY);
  EXPECT_TRUE(peer->available());
  const auto info = peer->info();
  EXPECT_EQ(info.identity.id, "peer-node-b");
  EXPECT_EQ(info.identity.type, "peer_handle");
  EXPECT_EQ(info.details.at("address"), server_->address());
  EXPECT_EQ(info.details.at("circuit"), "CLOSED");
  EXPECT_EQ(peer->device_capabilities().memory_mb, 4096);
  EXPECT_EQ(peer->description(), "Ethernet (lo)");
}

TEST_F(PeerHandleTest, SendTensorRoundTripsEveryDtypeExactly) {
  auto peer = make_peer();
  handler_->echo_tensor = true;
  const std::vector<std::vector<std::int64_t>> shapes{{1, 1, 8}, {2, 3}, {5}, {}, {1, 0, 4}};
  for (DType dtype : kAllDTypes) {
    for (const auto& shape : shapes) {
      const auto call = tensor_call(shard("llama-3.1-8b", 16, 25, 32), sample_tensor(dtype, shape),
                                    "req-" + std::string(dtype_name(dtype)));
      const auto reply = threads_.run(peer->send_tensor(call));
      const auto received = handler_->tensors().back();
      EXPECT_EQ(received, call) << dtype_name(dtype);
      // Legacy reads an all-empty Tensor as None: a 0-d or empty tensor comes back as nullopt.
      if (shape.empty() || call.tensor.bytes().empty()) {
        EXPECT_FALSE(reply.has_value());
      } else {
        ASSERT_TRUE(reply.has_value());
        EXPECT_EQ(*reply, call.tensor) << dtype_name(dtype);
      }
    }
  }
}

TEST_F(PeerHandleTest, PromptAndInferenceStateRoundTrip) {
  auto peer = make_peer();
  InferenceState state;
  state.tensors.emplace("x_t_prev", sample_tensor(DType::FLOAT16, {1, 4, 4}));
  state.tensor_lists.emplace(
      "cache", std::vector<Tensor>{sample_tensor(DType::FLOAT32, {2}), sample_tensor(DType::INT64, {1, 1})});
  state.other_data = {{"step", 3}, {"total_steps", 50}, {"is_finished", false}, {"image", nullptr}};
  const auto call = prompt_call(shard("stable-diffusion-2-1-base", 0, 9, 31), "a cat", "rid-1", state);
  const auto reply_tensor = sample_tensor(DType::INT64, {1, 3});
  handler_->set_reply(reply_tensor);
  const auto reply = threads_.run(peer->send_prompt(call));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, reply_tensor);
  ASSERT_EQ(handler_->prompts().size(), 1U);
  EXPECT_EQ(handler_->prompts()[0], call);

  // Absent optionals stay absent; an empty but present state stays present.
  handler_->set_reply(std::nullopt);
  const auto bare = prompt_call(shard("dummy", 0, 7, 8), "hi", std::nullopt, std::nullopt);
  EXPECT_FALSE(threads_.run(peer->send_prompt(bare)).has_value());
  EXPECT_EQ(handler_->prompts()[1], bare);
  const auto empty_state = prompt_call(shard("dummy", 0, 7, 8), "hi", std::string(), InferenceState());
  threads_.run(peer->send_prompt(empty_state));
  EXPECT_EQ(handler_->prompts()[2], empty_state);
  EXPECT_TRUE(handler_->prompts()[2].request_id.has_value());
}

TEST_F(PeerHandleTest, TopologyResultStatusExampleAndHealthRoundTrip) {
  auto peer = make_peer();
  topology::Topology topology;
  topology.update_node("node-a", {"MacBook Pro", "Apple M3 Max", 131072, {28.4, 56.8, 113.6}});
  topology.update_node("node-b", {"Linux Box (EPYC)", "AMD EPYC", 65536, {1.5, 1.5, 3.0}});
  topology.add_edge("node-a", "node-b", "Ethernet (en7)");
  topology.add_edge("node-b", "node-a");
  handler_->set_topology(topology);
  const auto collected = threads_.run(peer->collect_topology({"node-a", "node-c"}, 4));
  EXPECT_EQ(collected, topology);
  ASSERT_EQ(handler_->queries().size(), 1U);
  EXPECT_EQ(handler_->queries()[0], (TopologyQuery{{"node-a", "node-c"}, 4}));

  threads_.run(peer->send_result("rid", {42}, false));
  threads_.run(peer->send_result("rid", {7, 8, 9}, true, sample_tensor(DType::UINT8, {2, 2, 3})));
  const auto results = handler_->results();
  ASSERT_EQ(results.size(), 2U);
  EXPECT_EQ(results[0], (ResultCall{"rid", {42}, std::nullopt, false}));
  EXPECT_EQ(results[1], (ResultCall{"rid", {7, 8, 9}, sample_tensor(DType::UINT8, {2, 2, 3}), true}));

  const nlohmann::json status = {
      {"type", "node_status"},
      {"node_id", "node-a"},
      {"status", "end_process_prompt"},
      {"elapsed_time_ns", 123456789},
      {"shard", {{"model_id", "m"}, {"start_layer", 0}, {"end_layer", 1}, {"n_layers", 2}}}};
  threads_.run(peer->send_opaque_status("rid", status));
  ASSERT_EQ(handler_->statuses().size(), 1U);
  EXPECT_EQ(handler_->statuses()[0], (OpaqueStatusCall{"rid", status}));
  EXPECT_THROW(threads_.run(peer->send_opaque_status("rid", nlohmann::json::array())), std::invalid_argument);

  ExampleCall example;
  example.shard = shard("dummy", 2, 5, 8);
  example.example = sample_tensor(DType::INT64, {1, 4});
  example.target = sample_tensor(DType::INT64, {1, 4});
  example.length = sample_tensor(DType::INT64, {1});
  example.train = true;
  example.request_id = "ex";
  const auto loss = threads_.run(peer->send_example(example));
  EXPECT_EQ(loss, (LossResult{0.25F, example.example}));
  EXPECT_EQ(handler_->examples()[0], example);

  EXPECT_TRUE(threads_.run(peer->health_check()));
  handler_->healthy = false;
  EXPECT_FALSE(threads_.run(peer->health_check()));
  EXPECT_EQ(peer->circuit().state, CircuitState::CLOSED) << "an unhealthy answer is not a link failure";
}

TEST_F(PeerHandleTest, HealthCheckDrivesDegradedAndRecovery) {
  auto peer = make_peer();
  threads_.run(peer->initialize());
  handler_->healthy = false;
  auto result = threads_.run(peer->check_health());
  EXPECT_FALSE(result.healthy);
  EXPECT_EQ(peer->state(), resource::ResourceState::DEGRADED);
  EXPECT_FALSE(peer->available());
  handler_->healthy = true;
  result = threads_.run(peer->check_health());
  EXPECT_TRUE(result.healthy);
  EXPECT_EQ(peer->state(), resource::ResourceState::READY);
}

TEST_F(PeerHandleTest, UnhealthyPeerFailsInitialization) {
  handler_->healthy = false;
  auto peer = make_peer();
  try {
    threads_.run(peer->initialize());
    FAIL() << "an unhealthy peer must not become READY";
  } catch (const resource::InitializationError& e) {
    EXPECT_NE(std::string(e.what()).find("reports not healthy"), std::string::npos) << e.what();
  }
}

TEST_F(PeerHandleTest, DeadPortFailsInitializationWithinItsDeadline) {
  PeerOptions options;
  options.timeouts.connect = 300ms;
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  auto peer = make_peer(options, unsupervised(), address);
  const auto started = std::chrono::steady_clock::now();
  try {
    threads_.run(peer->initialize());
    FAIL() << "nothing listens there";
  } catch (const resource::InitializationError& e) {
    EXPECT_NE(
        std::string(e.what()).find("could not connect to peer 'node-b' at " + address + " within 300 ms"),
        std::string::npos)
        << e.what();
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(peer->state(), resource::ResourceState::ERROR);
  EXPECT_FALSE(peer->available());
  EXPECT_EQ(peer->circuit().consecutive_failures, 1);
  // ERROR fails fast for callers (no reconnect inside a request), naming the cause.
  try {
    threads_.run(peer->send_result("r", {1}, false));
    FAIL();
  } catch (const resource::UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("could not connect"), std::string::npos) << e.what();
  }
}

TEST_F(PeerHandleTest, PerCallDeadlineAndCallerCancellation) {
  PeerOptions options;
  options.timeouts.tensor = 200ms;
  auto peer = make_peer(options);
  threads_.run(peer->initialize());
  auto gate = std::make_shared<Gate>();
  handler_->stall_at(gate);
  const auto call = tensor_call(shard("dummy", 4, 7, 8), sample_tensor(DType::FLOAT32, {1, 1, 4}), "r");
  try {
    threads_.run(peer->send_tensor(call));
    FAIL();
  } catch (const PeerRpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::DEADLINE_EXCEEDED) << e.what();
    EXPECT_NE(std::string(e.what()).find("SendTensor to peer 'node-b'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(peer->circuit().consecutive_failures, 1);
  EXPECT_TRUE(wait_until([&] { return handler_->stall_cancelled.load() == 1; }));

  // A caller that gives up cancels the RPC: the server's handler is cancelled too, and the breaker
  // does not count it against the peer.
  PeerOptions patient;
  auto second = make_peer(patient, unsupervised(), "", "node-c");
  threads_.run(second->initialize());
  EXPECT_THROW(threads_.run(resource::run_with_timeout(second->send_tensor(call), 200ms, "test", "send")),
               resource::TimeoutError);
  EXPECT_TRUE(wait_until([&] { return handler_->stall_cancelled.load() == 2; }));
  EXPECT_EQ(second->circuit().consecutive_failures, 0);
  EXPECT_EQ(second->circuit().state, CircuitState::CLOSED);
  gate->open();
}

TEST_F(PeerHandleTest, BreakerOpensFailsFastAndRecoversThroughAHalfOpenTrial) {
  FakeClock clock;
  PeerOptions options;
  options.breaker.failure_threshold = 3;
  options.breaker.open_interval = 10s;  // only the fake clock moves past it
  options.timeouts.connect = 500ms;
  options.breaker_clock = clock.function();
  auto peer = make_peer(options);
  threads_.run(peer->initialize());
  const int port = server_->port();
  threads_.run(server_->cleanup());

  for (int i = 0; i < 3; ++i) {
    try {
      threads_.run(peer->send_result("r", {i}, false));
      FAIL();
    } catch (const PeerRpcError& e) {
      EXPECT_EQ(e.code(), grpc::StatusCode::UNAVAILABLE) << e.what();
    }
  }
  EXPECT_EQ(peer->circuit().state, CircuitState::OPEN);
  EXPECT_FALSE(peer->available());
  ASSERT_TRUE(wait_until([&] { return peer->state() == resource::ResourceState::ERROR; }));
  const auto info = peer->info();
  ASSERT_TRUE(info.last_error.has_value());
  EXPECT_NE(info.last_error->message.find("circuit breaker opened after 3 consecutive failures"),
            std::string::npos)
      << info.last_error->message;
  EXPECT_EQ(info.details.at("circuit"), "OPEN");

  // Fails fast while open.
  const auto started = std::chrono::steady_clock::now();
  try {
    threads_.run(peer->send_result("r", {9}, false));
    FAIL();
  } catch (const CircuitOpenError& e) {
    EXPECT_NE(std::string(e.what()).find("circuit breaker OPEN"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_THROW(threads_.run(peer->initialize()), resource::InitializationError)
      << "no trial before the interval";

  // After the interval, one trial: it fails while the server is down and reopens for longer.
  clock.advance(10s);
  EXPECT_THROW(threads_.run(peer->initialize()), resource::InitializationError);
  EXPECT_EQ(peer->circuit().state, CircuitState::OPEN);
  EXPECT_EQ(peer->circuit().times_opened, 2U);
  EXPECT_GT(peer->circuit().retry_after, 15s);

  // The server comes back on the same port; the next trial reconnects and closes the breaker.
  start_server(port);
  clock.advance(20s);
  threads_.run(peer->initialize());
  EXPECT_EQ(peer->state(), resource::ResourceState::READY);
  EXPECT_EQ(peer->circuit().state, CircuitState::CLOSED);
  EXPECT_TRUE(peer->available());
  threads_.run(peer->send_result("r", {10}, true));
  EXPECT_EQ(handler_->results().back(), (ResultCall{"r", {10}, std::nullopt, true}));
}

TEST_F(PeerHandleTest, SupervisionReconnectsWithBackoffWhenThePeerReturns) {
  PeerOptions options;
  options.breaker.failure_threshold = 2;
  options.breaker.open_interval = 50ms;
  options.breaker.max_open_interval = 200ms;
  options.timeouts.connect = 200ms;
  auto resource_options = default_peer_resource_options();
  resource_options.supervision.health_interval = 50ms;
  resource_options.supervision.recovery_backoff = {
      .initial = 20ms, .multiplier = 2.0, .max = 200ms, .jitter = 0.2};
  auto peer = make_peer(options, resource_options);
  threads_.run(peer->initialize());
  const int port = server_->port();
  threads_.run(server_->cleanup());

  // Health checks fail and the supervisor's probes open the breaker: the peer leaves READY.
  ASSERT_TRUE(wait_until([&] { return peer->state() == resource::ResourceState::ERROR; }));
  EXPECT_FALSE(peer->available());
  ASSERT_TRUE(wait_until([&] { return peer->info().restarts >= 1; })) << "the supervisor retries";

  start_server(port);
  ASSERT_TRUE(wait_until([&] { return peer->available(); }));
  EXPECT_EQ(peer->circuit().state, CircuitState::CLOSED);
  EXPECT_TRUE(threads_.run(peer->health_check()));
}

TEST_F(PeerHandleTest, CleanupCancelsTheCallsInFlightAndWaitsForThem) {
  // A call stalled at the server with its whole deadline ahead: cleanup must not leave it running
  // (its gRPC callback would post to an executor that may be gone once cleanup has returned).
  auto peer = make_peer();
  threads_.run(peer->initialize());
  auto gate = std::make_shared<Gate>();
  handler_->stall_at(gate);
  const auto call = tensor_call(shard("dummy", 4, 7, 8), sample_tensor(DType::FLOAT32, {1, 1, 4}), "r");
  auto in_flight = asio::co_spawn(threads_.executor(), peer->send_tensor(call), asio::use_future);
  ASSERT_TRUE(wait_until([&] { return handler_->stalled.load() == 1; }));
  threads_.run(peer->cleanup());
  ASSERT_EQ(in_flight.wait_for(5s), std::future_status::ready) << "cleanup left the call running";
  EXPECT_THROW(in_flight.get(), PeerRpcError);
  EXPECT_TRUE(wait_until([&] { return handler_->stall_cancelled.load() == 1; }));
  gate->open();
}

TEST_F(PeerHandleTest, CleanupThenResetReconnects) {
  auto peer = make_peer();
  threads_.run(peer->initialize());
  threads_.run(peer->cleanup());
  EXPECT_THROW(threads_.run(peer->send_result("r", {1}, false)), resource::ClosedError);
  threads_.run(peer->reset());
  threads_.run(peer->send_result("r", {1}, false));
  EXPECT_EQ(handler_->results().size(), 1U);
}

}  // namespace
}  // namespace exo::net
