// Test support for the gRPC server and peer handle tests: an io_context run by background threads,
// a thread-safe gate a handler can stall at, and a recording NodeServiceHandler.
//
// Contract: AsioThreads::run() may be called from the test thread only; TestHandler's recorded
// values are guarded by its mutex (read them with the accessors); Gate and the counters are safe
// from any thread.
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "net/node_service_handler.h"

namespace exo::net::testing {

using namespace std::chrono_literals;

// Waits (polling every millisecond, never longer than `limit`) until `condition` holds.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class AsioThreads {
 public:
  explicit AsioThreads(int count = 2) : work_(asio::make_work_guard(context_)) {
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { context_.run(); });
  }
  ~AsioThreads() {
    work_.reset();
    context_.stop();
    for (auto& thread : threads_) thread.join();
  }
  AsioThreads(const AsioThreads&) = delete;
  AsioThreads& operator=(const AsioThreads&) = delete;

  asio::any_io_executor executor() { return context_.get_executor(); }

  template <typename T>
  T run(asio::awaitable<T> operation, std::chrono::seconds limit = 30s) {
    auto future = asio::co_spawn(context_, std::move(operation), asio::use_future);
    if (future.wait_for(limit) != std::future_status::ready)
      throw std::runtime_error("operation did not finish");
    return future.get();
  }

  void run(asio::awaitable<void> operation, std::chrono::seconds limit = 30s) {
    auto future = asio::co_spawn(context_, std::move(operation), asio::use_future);
    if (future.wait_for(limit) != std::future_status::ready)
      throw std::runtime_error("operation did not finish");
    future.get();
  }

  template <typename T>
  std::future<T> start(asio::awaitable<T> operation) {
    return asio::co_spawn(context_, std::move(operation), asio::use_future);
  }

 private:
  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// A gate coroutines wait at until open(); thread-safe; waiting honours cancellation.
class Gate {
 public:
  void open() {
    std::vector<std::shared_ptr<asio::steady_timer>> waiters;
    {
      std::lock_guard lock(mutex_);
      open_ = true;
      waiters.swap(waiters_);
    }
    for (auto& timer : waiters) {
      asio::post(timer->get_executor(),
                 [timer] { timer->expires_at(asio::steady_timer::time_point::min()); });
    }
  }

  // Returns when open; throws operation_aborted when the waiting coroutine is cancelled.
  asio::awaitable<void> wait() {
    auto executor = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
    {
      std::lock_guard lock(mutex_);
      if (open_) co_return;
      waiters_.push_back(timer);
    }
    auto [ec] = co_await timer->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) {
      std::lock_guard lock(mutex_);
      if (!open_) throw std::system_error(ec, "gate wait cancelled");
    }
  }

 private:
  std::mutex mutex_;
  bool open_ = false;
  std::vector<std::shared_ptr<asio::steady_timer>> waiters_;
};

// Records every call; replies with configured values; can stall SendTensor/SendPrompt at a gate.
class TestHandler : public NodeServiceHandler {
 public:
  asio::awaitable<std::optional<Tensor>> send_prompt(PromptCall call) override {
    {
      std::lock_guard lock(mutex_);
      prompts_.push_back(call);
    }
    co_await maybe_stall();
    co_return reply();
  }

  asio::awaitable<std::optional<Tensor>> send_tensor(TensorCall call) override {
    {
      std::lock_guard lock(mutex_);
      tensors_.push_back(call);
    }
    co_await maybe_stall();
    if (echo_tensor) co_return call.tensor;
    co_return reply();
  }

  asio::awaitable<LossResult> send_example(ExampleCall call) override {
    {
      std::lock_guard lock(mutex_);
      examples_.push_back(call);
    }
    if (!support_examples) co_return co_await NodeServiceHandler::send_example(std::move(call));
    co_return LossResult{0.25F, call.train ? std::optional<Tensor>(call.example) : std::nullopt};
  }

  asio::awaitable<topology::Topology> collect_topology(TopologyQuery query) override {
    std::lock_guard lock(mutex_);
    queries_.push_back(query);
    co_return topology_;
  }

  asio::awaitable<void> send_result(ResultCall call) override {
    if (throw_on_result) throw std::runtime_error("result handler failed");
    std::lock_guard lock(mutex_);
    results_.push_back(std::move(call));
    co_return;
  }

  asio::awaitable<void> send_opaque_status(OpaqueStatusCall call) override {
    if (reject_status) throw std::invalid_argument("status rejected by the handler");
    std::lock_guard lock(mutex_);
    statuses_.push_back(std::move(call));
    co_return;
  }

  asio::awaitable<bool> health_check() override { co_return healthy.load(); }

  // The fast path, per `hand_over_tensors`: 0 declines (coroutine path), 1 takes the call, 2 throws.
  bool hand_over(TensorCall& call) override {
    const int mode = hand_over_tensors.load();
    if (mode == 0) return false;
    if (mode == 2) throw std::invalid_argument("tensor refused on hand-over");
    std::lock_guard lock(mutex_);
    handed_over_.push_back(std::move(call));
    return true;
  }

  void set_reply(std::optional<Tensor> value) {
    std::lock_guard lock(mutex_);
    reply_ = std::move(value);
  }
  void set_topology(topology::Topology value) {
    std::lock_guard lock(mutex_);
    topology_ = std::move(value);
  }
  // From now on SendPrompt/SendTensor wait at `gate` after recording the call.
  void stall_at(std::shared_ptr<Gate> gate) {
    std::lock_guard lock(mutex_);
    gate_ = std::move(gate);
  }

  std::vector<PromptCall> prompts() const { return locked(prompts_); }
  std::vector<TensorCall> tensors() const { return locked(tensors_); }
  std::vector<ExampleCall> examples() const { return locked(examples_); }
  std::vector<TopologyQuery> queries() const { return locked(queries_); }
  std::vector<ResultCall> results() const { return locked(results_); }
  std::vector<OpaqueStatusCall> statuses() const { return locked(statuses_); }
  std::vector<TensorCall> handed_over() const { return locked(handed_over_); }

  std::atomic<bool> healthy{true};
  std::atomic<bool> echo_tensor{false};
  std::atomic<bool> support_examples{true};
  std::atomic<bool> throw_on_result{false};
  std::atomic<bool> reject_status{false};
  std::atomic<int> hand_over_tensors{0};
  std::atomic<int> stalled{0};          // calls that reached the gate
  std::atomic<int> stall_cancelled{0};  // calls cancelled while waiting at the gate
  std::atomic<int> stall_released{0};   // calls the gate let through

 private:
  template <typename T>
  std::vector<T> locked(const std::vector<T>& values) const {
    std::lock_guard lock(mutex_);
    return values;
  }

  std::optional<Tensor> reply() const {
    std::lock_guard lock(mutex_);
    return reply_;
  }

  asio::awaitable<void> maybe_stall() {
    std::shared_ptr<Gate> gate;
    {
      std::lock_guard lock(mutex_);
      gate = gate_;
    }
    if (!gate) co_return;
    ++stalled;
    try {
      co_await gate->wait();
    } catch (...) {
      ++stall_cancelled;
      throw;
    }
    ++stall_released;
  }

  mutable std::mutex mutex_;
  std::optional<Tensor> reply_;
  topology::Topology topology_;
  std::shared_ptr<Gate> gate_;
  std::vector<PromptCall> prompts_;
  std::vector<TensorCall> tensors_;
  std::vector<ExampleCall> examples_;
  std::vector<TopologyQuery> queries_;
  std::vector<ResultCall> results_;
  std::vector<OpaqueStatusCall> statuses_;
  std::vector<TensorCall> handed_over_;
};

}  // namespace exo::net::testing
