// Test support for the resource library: run a coroutine to completion on an io_context, a Gate that
// lets a test hold a hook at a known point, and TestResource, a resource whose hooks tests control.
//
// Contract: single-threaded unless a test says otherwise; Gate and TestResource counters are safe to
// read from the test thread while the context is not running.
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "resource/async_resource.h"
#include "resource/registry.h"

namespace exo::resource::testing {

using namespace std::chrono_literals;

// Runs handlers until `done()` holds (checked after every handler); fails instead of hanging when
// nothing at all happens for 20 s.
inline void run_until(asio::io_context& context, const std::function<bool()>& done) {
  while (!done()) {
    if (context.stopped()) context.restart();
    if (context.run_one_for(20s) == 0 && !done()) {
      ADD_FAILURE() << "run_until: no progress for 20 s (deadlock?)";
      throw std::runtime_error("run_until: no progress");
    }
  }
}

// Runs the io_context until `operation` completes and returns its result (rethrowing its exception).
template <typename T>
T run_sync(asio::io_context& context, asio::awaitable<T> operation) {
  bool done = false;
  std::exception_ptr error;
  std::optional<T> result;
  asio::co_spawn(context, std::move(operation), [&](std::exception_ptr e, T value) {
    done = true;
    error = e;
    if (!e) result.emplace(std::move(value));
  });
  run_until(context, [&] { return done; });
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void run_sync(asio::io_context& context, asio::awaitable<void> operation) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(context, std::move(operation), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  run_until(context, [&] { return done; });
  if (error) std::rethrow_exception(error);
}

// A gate a coroutine can wait at until the test opens it. Honours cancellation.
class Gate {
 public:
  explicit Gate(asio::any_io_executor executor)
      : timer_(executor, std::chrono::steady_clock::time_point::max()) {}
  void open() {
    open_ = true;
    timer_.cancel();
  }
  bool is_open() const { return open_; }
  asio::awaitable<void> wait() {
    while (!open_) {
      co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      // (GCC 12 miscompiles co_await inside a short-circuit operand, so the state is read first.)
      const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
      if (!open_ && cancelled != asio::cancellation_type::none) {
        throw std::system_error(asio::error::operation_aborted, "gate wait cancelled");
      }
    }
  }

 private:
  asio::steady_timer timer_;
  bool open_ = false;
};

// A resource with scripted hooks and counters.
class TestResource : public AsyncResource {
 public:
  TestResource(asio::any_io_executor executor, std::string id, ResourceOptions options = {},
               std::shared_ptr<ResourceRegistry> registry = nullptr, std::string type = "test")
      : AsyncResource(executor, ResourceIdentity{std::move(id), std::move(type), ""}, std::move(options),
                      std::move(registry)),
        init_entered(executor),
        init_gate(executor),
        cleanup_entered(executor),
        cleanup_gate(executor) {
    init_gate.open();
    cleanup_gate.open();
  }

  // Scripting (set before use).
  int fail_first_inits = 0;             // this many initializations throw, then they succeed
  bool init_fails_permanently = false;  // throws PermanentError
  std::string init_error = "injected init failure";
  bool cleanup_fails = false;
  std::atomic<bool> healthy{true};
  bool health_throws = false;
  bool health_hangs = false;
  std::function<void(const std::string&)> on_hook;  // called with "init"/"cleanup" at hook entry

  // Observation.
  std::atomic<int> init_calls{0};
  std::atomic<int> cleanup_calls{0};
  std::atomic<int> health_calls{0};
  std::atomic<int> init_cancelled{0};
  Gate init_entered;
  Gate init_gate;
  Gate cleanup_entered;
  Gate cleanup_gate;

  using AsyncResource::record_error;
  using AsyncResource::report_failure;
  using AsyncResource::transition;

 protected:
  asio::awaitable<void> do_initialize() override {
    const int call = ++init_calls;
    if (on_hook) on_hook("init");
    init_entered.open();
    try {
      co_await init_gate.wait();
    } catch (const std::system_error&) {
      ++init_cancelled;
      throw;
    }
    if (init_fails_permanently) throw PermanentError(init_error);
    if (call <= fail_first_inits) throw std::runtime_error(init_error + " #" + std::to_string(call));
  }
  asio::awaitable<void> do_cleanup() override {
    ++cleanup_calls;
    if (on_hook) on_hook("cleanup");
    cleanup_entered.open();
    co_await cleanup_gate.wait();
    if (cleanup_fails) throw std::runtime_error("injected cleanup failure");
  }
  asio::awaitable<HealthStatus> do_health_check() override {
    ++health_calls;
    if (health_throws) throw std::runtime_error("probe exploded");
    if (health_hangs) {
      asio::steady_timer forever(co_await asio::this_coro::executor,
                                 std::chrono::steady_clock::time_point::max());
      co_await forever.async_wait(asio::use_awaitable);
    }
    const bool ok = healthy.load();
    co_return HealthStatus{ok, ok ? "fine" : "probe says unhealthy"};
  }
};

// A fixture with a single-threaded context, a registry and a TestResource factory.
class ResourceFixture : public ::testing::Test {
 protected:
  asio::io_context context;
  std::shared_ptr<ResourceRegistry> registry = std::make_shared<ResourceRegistry>();

  std::shared_ptr<TestResource> make(const std::string& id, ResourceOptions options = {}) {
    return make_resource<TestResource>(context.get_executor(), id, options, registry);
  }
  template <typename T>
  T run(asio::awaitable<T> operation) {
    return run_sync(context, std::move(operation));
  }
};

// Records every transition of a resource, for order assertions.
struct TransitionLog {
  std::vector<Transition> entries;
  void attach(AsyncResource& resource) {
    resource.add_listener([this](const Transition& t) { entries.push_back(t); });
  }
  std::vector<std::string> states() const {
    std::vector<std::string> out;
    for (const auto& t : entries) out.push_back(std::string(to_string(t.to)));
    return out;
  }
};

// Captures the exception an awaitable throws (or nullptr).
inline asio::awaitable<std::exception_ptr> capture(asio::awaitable<void> operation) {
  try {
    co_await std::move(operation);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

inline std::string message_of(const std::exception_ptr& e) {
  return describe(e);
}

template <typename E>
bool holds(const std::exception_ptr& e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

}  // namespace exo::resource::testing
