// Per-hop cost of the ring: SendTensor of a [1, 1, 2048] float32 hidden state from a PeerHandle to a
// GrpcServer over loopback, through the handler and back — measured side by side with the floors
// under it: the same call through bare gRPC (generated stub and service, no exo code) and the same
// bytes over a plain TCP socket. Results: docs/benchmarks.md.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "net/grpc_server.h"
#include "net/node_service.grpc.pb.h"
#include "net/peer_handle.h"
#include "resource/registry.h"

namespace {

using namespace std::chrono_literals;
using exo::net::NodeServiceHandler;

using SteadyClock = std::chrono::steady_clock;
constexpr std::size_t kHiddenBytes = 2048 * sizeof(float);

// The cheapest possible node: accepts the tensor and returns nothing, as a forwarding node does. With
// `hand_over` set it takes the server's fast path as the node does (NodeRpc); without, the coroutine
// path. It records when the tensor reached it, for the one-way delivery time.
class NullHandler : public NodeServiceHandler {
 public:
  explicit NullHandler(bool hand_over) : hand_over_(hand_over) {}

  bool hand_over(exo::net::TensorCall& /*call*/) override {
    if (!hand_over_) return false;
    arrived_.store(SteadyClock::now().time_since_epoch().count());
    return true;
  }
  std::int64_t arrived() const { return arrived_.load(); }

  asio::awaitable<std::optional<exo::net::Tensor>> send_prompt(exo::net::PromptCall) override {
    co_return std::nullopt;
  }
  asio::awaitable<std::optional<exo::net::Tensor>> send_tensor(exo::net::TensorCall) override {
    arrived_.store(SteadyClock::now().time_since_epoch().count());
    co_return std::nullopt;
  }
  asio::awaitable<exo::topology::Topology> collect_topology(exo::net::TopologyQuery) override {
    co_return exo::topology::Topology();
  }
  asio::awaitable<void> send_result(exo::net::ResultCall) override { co_return; }
  asio::awaitable<void> send_opaque_status(exo::net::OpaqueStatusCall) override { co_return; }
  asio::awaitable<bool> health_check() override { co_return true; }

 private:
  bool hand_over_;
  std::atomic<std::int64_t> arrived_{0};
};

struct Hop {
  std::int64_t round_trip_ns;
  std::int64_t one_way_ns;  // send started -> handler reached
};

asio::awaitable<Hop> timed_send(std::shared_ptr<exo::net::PeerHandle> peer, exo::net::TensorCall call,
                                std::shared_ptr<NullHandler> handler) {
  const auto started = SteadyClock::now();
  co_await peer->send_tensor(std::move(call));
  const auto ended = SteadyClock::now();
  co_return Hop{std::chrono::duration_cast<std::chrono::nanoseconds>(ended - started).count(),
                std::chrono::duration_cast<std::chrono::nanoseconds>(
                    SteadyClock::duration(handler->arrived()) - started.time_since_epoch())
                    .count()};
}

double elapsed_ns(SteadyClock::time_point since) {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - since).count());
}

double percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return static_cast<double>(values[index]);
}

// Arg 0: 0 = the node's path: default channel settings (gzip channel, SendTensor uncompressed) and
//            the handler's hand-over fast path;
//        1 = as 0, but every request gzip-compressed, tensors included (what legacy clients send);
//        2 = as 0, but the handler runs as a coroutine on the server's executor (the general path).
void BM_SendTensorPerHop(benchmark::State& state) {
  asio::io_context context;
  auto work = asio::make_work_guard(context);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { context.run(); });

  auto registry = std::make_shared<exo::resource::ResourceRegistry>();
  auto handler = std::make_shared<NullHandler>(state.range(0) != 2);
  exo::net::GrpcServerOptions server_options;
  server_options.host = "127.0.0.1";
  auto server = exo::resource::make_resource<exo::net::GrpcServer>(context.get_executor(), "bench-server",
                                                                   server_options, handler, registry);
  asio::co_spawn(context, server->initialize(), asio::use_future).get();
  exo::net::PeerOptions peer_options;
  peer_options.channel.compress_tensors = state.range(0) == 1;
  auto resource_options = exo::net::default_peer_resource_options();
  resource_options.supervision.health_interval = {};
  auto peer = exo::resource::make_resource<exo::net::PeerHandle>(
      context.get_executor(), "bench-peer", server->address(), "loopback",
      exo::topology::DeviceCapabilities{}, peer_options, registry, resource_options);
  asio::co_spawn(context, peer->initialize(), asio::use_future).get();

  std::vector<float> hidden(2048);
  for (std::size_t i = 0; i < hidden.size(); ++i) hidden[i] = static_cast<float>(i) * 0.001F - 1.0F;
  exo::net::TensorCall call;
  call.shard.model_id = "llama-3.2-1b";
  call.shard.start_layer = 8;
  call.shard.end_layer = 15;
  call.shard.n_layers = 16;
  call.tensor = exo::net::Tensor::from_values<float>({1, 1, 2048}, hidden);
  call.request_id = "bench-request";
  for (int i = 0; i < 200; ++i)
    asio::co_spawn(context, timed_send(peer, call, handler), asio::use_future).get();  // warm-up

  std::vector<std::int64_t> latencies;
  std::vector<std::int64_t> one_way;
  latencies.reserve(100000);
  one_way.reserve(100000);
  for (auto _ : state) {
    const auto hop = asio::co_spawn(context, timed_send(peer, call, handler), asio::use_future).get();
    latencies.push_back(hop.round_trip_ns);
    one_way.push_back(hop.one_way_ns);
    state.SetIterationTime(static_cast<double>(hop.round_trip_ns) * 1e-9);
  }
  state.counters["p50_us"] = percentile(latencies, 0.50) / 1000.0;
  state.counters["p99_us"] = percentile(latencies, 0.99) / 1000.0;
  state.counters["one_way_p50_us"] = percentile(one_way, 0.50) / 1000.0;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kHiddenBytes));

  asio::co_spawn(context, peer->cleanup(), asio::use_future).get();
  asio::co_spawn(context, server->cleanup(), asio::use_future).get();
  work.reset();
  for (auto& thread : threads) thread.join();
}
BENCHMARK(BM_SendTensorPerHop)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);

// Runs `round_trip` 200 times to warm up, then once per iteration, timing each; reports p50 and p99.
template <typename RoundTrip>
void time_round_trips(benchmark::State& state, RoundTrip&& round_trip) {
  for (int i = 0; i < 200; ++i) round_trip();
  std::vector<std::int64_t> latencies;
  latencies.reserve(200000);
  for (auto _ : state) {
    const auto started = SteadyClock::now();
    round_trip();
    latencies.push_back(static_cast<std::int64_t>(elapsed_ns(started)));
    state.SetIterationTime(static_cast<double>(latencies.back()) * 1e-9);
  }
  state.counters["p50_us"] = percentile(latencies, 0.50) / 1000.0;
  state.counters["p99_us"] = percentile(latencies, 0.99) / 1000.0;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kHiddenBytes));
}
// Floor 1: the same RPC through bare gRPC — the generated service answering at once from its
// callback, and the generated blocking stub. Whatever exo adds per hop is the difference to this.
class BareService final : public node_service::NodeService::CallbackService {
  grpc::ServerUnaryReactor* SendTensor(grpc::CallbackServerContext* context,
                                       const node_service::TensorRequest* /*request*/,
                                       node_service::Tensor* /*response*/) override {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

void BM_BareGrpcRoundTrip(benchmark::State& state) {
  BareService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = node_service::NodeService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  node_service::TensorRequest request;
  request.mutable_shard()->set_model_id("llama-3.2-1b");
  request.mutable_tensor()->set_tensor_data(std::string(kHiddenBytes, '\x01'));
  for (const auto d : {1, 1, 2048}) request.mutable_tensor()->add_shape(d);
  request.mutable_tensor()->set_dtype("float32");
  request.set_request_id("bench-request");
  const auto call = [&] {
    grpc::ClientContext context;
    node_service::Tensor response;
    if (!stub->SendTensor(&context, request, &response).ok())
      throw std::runtime_error("bare gRPC call failed");
  };
  time_round_trips(state, call);
  server->Shutdown();
}
BENCHMARK(BM_BareGrpcRoundTrip)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

// Floor 2: the same bytes over a plain loopback TCP connection between two blocked threads (8 KiB
// there, 64 bytes back): the kernel's and the scheduler's share of any hop on this machine.
void read_exactly(int fd, char* data, std::size_t size) {
  while (size > 0) {
    const auto got = ::read(fd, data, size);
    if (got <= 0) throw std::runtime_error("tcp floor: read failed");
    data += got;
    size -= static_cast<std::size_t>(got);
  }
}

void BM_TcpRoundTrip(benchmark::State& state) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error("tcp floor: cannot listen");
  constexpr std::size_t kReplyBytes = 64;
  std::thread echo([listener] {
    const int connection = ::accept(listener, nullptr, nullptr);
    const int one = 1;
    ::setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<char> buffer(kHiddenBytes);
    try {
      for (;;) {
        read_exactly(connection, buffer.data(), kHiddenBytes);
        if (::write(connection, buffer.data(), kReplyBytes) != static_cast<ssize_t>(kReplyBytes)) break;
      }
    } catch (const std::runtime_error&) {  // the client closed: done
    }
    ::close(connection);
  });
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("tcp floor: cannot connect");
  const int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::vector<char> buffer(kHiddenBytes, 1);
  const auto round_trip = [&] {
    if (::write(client, buffer.data(), kHiddenBytes) != static_cast<ssize_t>(kHiddenBytes))
      throw std::runtime_error("tcp floor: write failed");
    read_exactly(client, buffer.data(), kReplyBytes);
  };
  time_round_trips(state, round_trip);
  ::close(client);
  echo.join();
  ::close(listener);
}
BENCHMARK(BM_TcpRoundTrip)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
