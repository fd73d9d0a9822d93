// exo_bench_resource: the cost of the lifecycle on hot and cold paths.
//
//   BM_EnsureReady_Ready         co_await ensure_ready() on a READY resource (every public operation pays it)
//   BM_EnsureReady_InlineIdiom   `if (!ready()) co_await ensure_ready();` inside a coroutine (hot paths)
//   BM_ReadyCheck                the atomic load that is ensure_ready()'s whole READY path
//   BM_CoAwaitEmptyAwaitable     baseline: co_await of an asio awaitable that returns at once
//   BM_InitializeCleanupCycle    create + initialize + cleanup of a resource with no-op hooks
//   BM_Group1000RandomDag        1,000 members, random dependency DAG, random init delays: wall time
//                                against the critical path (the lower bound for any scheduler)
//
// Reproduce: cmake --preset release && cmake --build --preset release --target exo_bench_resource &&
//            build/release/bench/exo_bench_resource
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <random>
#include <string>
#include <vector>

#include "resource/async_resource.h"
#include "resource/resource_group.h"

using namespace exo::resource;

namespace {

class NoopResource : public AsyncResource {
 public:
  NoopResource(asio::any_io_executor executor, std::string id, Clock::duration init_delay = {})
      : AsyncResource(executor, {std::move(id), "bench", ""}), init_delay_(init_delay) {}

 protected:
  asio::awaitable<void> do_initialize() override {
    if (init_delay_ > Clock::duration::zero()) co_await sleep_for(init_delay_);
  }
  asio::awaitable<void> do_cleanup() override { co_return; }

 private:
  Clock::duration init_delay_;
};

void run(asio::io_context& context, asio::awaitable<void> operation) {
  asio::co_spawn(context, std::move(operation), asio::detached);
  context.restart();
  context.run();
}

asio::awaitable<void> ensure_ready_loop(benchmark::State& state, std::shared_ptr<NoopResource> resource) {
  for (auto _ : state) co_await resource->ensure_ready();
}

void BM_EnsureReady_Ready(benchmark::State& state) {
  asio::io_context context;
  auto resource = make_resource<NoopResource>(context.get_executor(), "r");
  run(context, resource->initialize());
  run(context, ensure_ready_loop(state, resource));
}
BENCHMARK(BM_EnsureReady_Ready);

asio::awaitable<void> idiom_loop(benchmark::State& state, std::shared_ptr<NoopResource> resource) {
  for (auto _ : state) {
    if (!resource->ready()) co_await resource->ensure_ready();
  }
}

// The hot-path idiom of public operations: the READY check inline, the coroutine only when needed.
void BM_EnsureReady_InlineIdiom(benchmark::State& state) {
  asio::io_context context;
  auto resource = make_resource<NoopResource>(context.get_executor(), "r");
  run(context, resource->initialize());
  run(context, idiom_loop(state, resource));
}
BENCHMARK(BM_EnsureReady_InlineIdiom);

void BM_ReadyCheck(benchmark::State& state) {
  asio::io_context context;
  auto resource = make_resource<NoopResource>(context.get_executor(), "r");
  run(context, resource->initialize());
  for (auto _ : state) benchmark::DoNotOptimize(resource->ready());
}
BENCHMARK(BM_ReadyCheck);

asio::awaitable<void> nothing() {
  co_return;
}
asio::awaitable<void> empty_loop(benchmark::State& state) {
  for (auto _ : state) co_await nothing();
}
void BM_CoAwaitEmptyAwaitable(benchmark::State& state) {
  asio::io_context context;
  run(context, empty_loop(state));
}
BENCHMARK(BM_CoAwaitEmptyAwaitable);

asio::awaitable<void> cycle_loop(benchmark::State& state, asio::any_io_executor executor) {
  for (auto _ : state) {
    auto resource = make_resource<NoopResource>(executor, "cycle");
    co_await resource->initialize();
    co_await resource->cleanup();
  }
}
void BM_InitializeCleanupCycle(benchmark::State& state) {
  asio::io_context context;
  run(context, cycle_loop(state, context.get_executor()));
}
BENCHMARK(BM_InitializeCleanupCycle);

void BM_Group1000RandomDag(benchmark::State& state) {
  constexpr int kMembers = 1000;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> delay_us(0, 2000);
  std::vector<Clock::duration> delays(kMembers);
  std::vector<std::vector<int>> deps(kMembers);
  for (int i = 0; i < kMembers; ++i) {
    delays[i] = std::chrono::microseconds(delay_us(rng));
    const int count = i == 0 ? 0 : std::uniform_int_distribution<int>(0, std::min(3, i))(rng);
    for (int d = 0; d < count; ++d) deps[i].push_back(std::uniform_int_distribution<int>(0, i - 1)(rng));
    std::sort(deps[i].begin(), deps[i].end());
    deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
  }
  // Critical path: the longest chain of init delays, the lower bound on total time.
  std::vector<Clock::duration> finish(kMembers);
  Clock::duration critical{};
  for (int i = 0; i < kMembers; ++i) {
    Clock::duration start{};
    for (int d : deps[i]) start = std::max(start, finish[d]);
    finish[i] = start + delays[i];
    critical = std::max(critical, finish[i]);
  }
  double total_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context context;
    auto group = make_resource<ResourceGroup>(context.get_executor(), ResourceIdentity{"dag", "group", ""});
    for (int i = 0; i < kMembers; ++i) {
      MemberOptions options;
      for (int d : deps[i]) options.depends_on.push_back(fmt::format("m{}", d));
      group->add(fmt::format("m{}", i),
                 make_resource<NoopResource>(context.get_executor(), fmt::format("m{}", i), delays[i]),
                 options);
    }
    state.ResumeTiming();
    const auto started = Clock::now();
    run(context, group->initialize());
    total_seconds += std::chrono::duration<double>(Clock::now() - started).count();
    if (group->state() != ResourceState::READY) state.SkipWithError("group did not reach READY");
    state.PauseTiming();
    run(context, group->cleanup());
    state.ResumeTiming();
  }
  const double critical_ms = std::chrono::duration<double, std::milli>(critical).count();
  const double total_ms = 1000.0 * total_seconds / static_cast<double>(state.iterations());
  state.counters["critical_path_ms"] = critical_ms;
  state.counters["init_ms"] = total_ms;
  state.counters["init_over_critical"] = total_ms / critical_ms;
}
BENCHMARK(BM_Group1000RandomDag)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
