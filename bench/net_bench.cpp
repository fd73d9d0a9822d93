// Per-hop cost of the ring: SendTensor of a [1, 1, 2048] float32 hidden state from a PeerHandle to a
// GrpcServer over loopback, through the handler and back. Results: docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "net/grpc_server.h"
#include "net/peer_handle.h"
#include "resource/registry.h"

namespace {

using namespace std::chrono_literals;
using exo::net::NodeServiceHandler;

// The cheapest possible node: accepts the tensor and returns nothing, as a forwarding node does.
class NullHandler : public NodeServiceHandler {
 public:
  asio::awaitable<std::optional<exo::net::Tensor>> send_prompt(exo::net::PromptCall) override {
    co_return std::nullopt;
  }
  asio::awaitable<std::optional<exo::net::Tensor>> send_tensor(exo::net::TensorCall) override {
    co_return std::nullopt;
  }
  asio::awaitable<exo::topology::Topology> collect_topology(exo::net::TopologyQuery) override {
    co_return exo::topology::Topology();
  }
  asio::awaitable<void> send_result(exo::net::ResultCall) override { co_return; }
  asio::awaitable<void> send_opaque_status(exo::net::OpaqueStatusCall) override { co_return; }
  asio::awaitable<bool> health_check() override { co_return true; }
};

asio::awaitable<std::int64_t> timed_send(std::shared_ptr<exo::net::PeerHandle> peer,
                                         exo::net::TensorCall call) {
  const auto started = std::chrono::steady_clock::now();
  co_await peer->send_tensor(std::move(call));
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started)
      .count();
}

double percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return static_cast<double>(values[index]);
}

// Arg 0: 0 = default settings (gzip channel, SendTensor uncompressed);
//        1 = every request gzip-compressed, tensors included (what legacy clients send).
void BM_SendTensorPerHop(benchmark::State& state) {
  asio::io_context context;
  auto work = asio::make_work_guard(context);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { context.run(); });

  auto registry = std::make_shared<exo::resource::ResourceRegistry>();
  auto handler = std::make_shared<NullHandler>();
  exo::net::GrpcServerOptions server_options;
  server_options.host = "127.0.0.1";
  auto server = exo::resource::make_resource<exo::net::GrpcServer>(context.get_executor(), "bench-server",
                                                                   server_options, handler, registry);
  asio::co_spawn(context, server->initialize(), asio::use_future).get();
  exo::net::PeerOptions peer_options;
  peer_options.channel.compress_tensors = state.range(0) != 0;
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
    asio::co_spawn(context, timed_send(peer, call), asio::use_future).get();  // warm-up

  std::vector<std::int64_t> latencies;
  latencies.reserve(100000);
  for (auto _ : state) {
    const auto ns = asio::co_spawn(context, timed_send(peer, call), asio::use_future).get();
    latencies.push_back(ns);
    state.SetIterationTime(static_cast<double>(ns) * 1e-9);
  }
  state.counters["p50_us"] = percentile(latencies, 0.50) / 1000.0;
  state.counters["p99_us"] = percentile(latencies, 0.99) / 1000.0;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2048 * 4);

  asio::co_spawn(context, peer->cleanup(), asio::use_future).get();
  asio::co_spawn(context, server->cleanup(), asio::use_future).get();
  work.reset();
  for (auto& thread : threads) thread.join();
}
BENCHMARK(BM_SendTensorPerHop)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
