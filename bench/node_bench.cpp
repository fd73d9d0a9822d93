// exo_bench_node: a real node (dummy engine) on loopback under concurrent streaming chats.
//
//   BM_ConcurrentStreamingChats/64   64 clients stream a chat at once; counters report whether all
//                                    completed, time to first token p50/p99 and the process's peak RSS.
//
// Reproduce: cmake --preset release && cmake --build --preset release --target exo_bench_node &&
//            build/release/bench/exo_bench_node
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <sys/resource.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <future>
#include <thread>

#include "node/node.h"

namespace {

using Clock = std::chrono::steady_clock;

struct StreamResult {
  bool completed = false;
  double ttft_ms = 0;
};

StreamResult stream_once(unsigned short port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  const std::string body =
      R"({"model":"dummy","messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":64})";
  StreamResult result;
  const auto started = Clock::now();
  bool first = true;
  std::string received;
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = body;
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char* data, std::size_t length, std::uint64_t, std::uint64_t) {
    received.append(data, length);
    if (first && received.find("\"content\":\"T") != std::string::npos) {
      first = false;
      result.ttft_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    }
    return true;
  };
  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  const bool sent = client.send(request, response, error);
  result.completed = sent && response.status == 200 && received.find("data: [DONE]") != std::string::npos;
  if (!result.completed && std::getenv("EXO_BENCH_VERBOSE")) {
    fprintf(stderr, "sent=%d status=%d error=%s received=%zu\n", sent, response.status,
            httplib::to_string(error).c_str(), received.size());
  }
  return result;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

void BM_ConcurrentStreamingChats(benchmark::State& state) {
  const auto clients = static_cast<int>(state.range(0));
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&io] { io.run(); });
  exo::node::NodeOptions options;
  options.node_id = "bench";
  options.api_host = "127.0.0.1";
  options.api_port = 0;
  auto node = exo::node::Node::create(io.get_executor(), options, nullptr);
  asio::co_spawn(io, node->initialize(), asio::use_future).get();
  std::vector<double> ttft;
  int completed = 0;
  int total = 0;
  for (auto _ : state) {
    std::vector<std::future<StreamResult>> futures;
    for (int i = 0; i < clients; ++i) {
      futures.push_back(std::async(std::launch::async, stream_once, node->api_port()));
    }
    for (auto& f : futures) {
      const StreamResult r = f.get();
      ++total;
      if (r.completed) ++completed;
      ttft.push_back(r.ttft_ms);
    }
  }
  asio::co_spawn(io, node->cleanup(), asio::use_future).get();
  work.reset();
  for (auto& t : threads) t.join();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["completed_fraction"] =
      static_cast<double>(completed) / static_cast<double>(std::max(total, 1));
  state.counters["ttft_p50_ms"] = percentile(ttft, 0.50);
  state.counters["ttft_p99_ms"] = percentile(ttft, 0.99);
  state.counters["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
}
BENCHMARK(BM_ConcurrentStreamingChats)->Arg(64)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
