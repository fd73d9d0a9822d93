// AsyncResource: the lifecycle every exo component shares (peer handles, servers, discovery, engines,
// the node itself, groups, pools and the monitor).
//
// Contract
// - States and legal transitions are those of state.h; every change goes through transition(), which
//   throws IllegalTransition for anything else. docs/lifecycle.md is the full specification.
// - Subclasses implement exactly three hooks: do_initialize, do_cleanup, do_health_check. The hooks
//   run on the resource's strand, one lifecycle hook at a time; they should honour cancellation.
// - initialize()/cleanup()/reset()/check_health()/ensure_ready() may be called from any thread and
//   any executor. initialize is single-flight: concurrent callers join the one attempt in flight and
//   receive its outcome; each caller's timeout bounds only its own wait, and a caller that times out
//   or is cancelled never cancels the attempt. cleanup is single-flight too and cancels an
//   initialization in flight. CLOSED is terminal for initialize(); reset() is the one way back.
// - state(), ready(), info() are lock-free or take a short internal mutex; safe from any thread.
// - Transition listeners run on the strand, in transition order, with no lock held.
// - Objects are always owned by std::shared_ptr (create with make_resource<T>(...)). Work the resource
//   starts (the init attempt, cleanup, supervision, tasks from spawn()) is owned by it and cancelled
//   and joined by cleanup(); none of it outlives the resource.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "resource/completion.h"
#include "resource/errors.h"
#include "resource/policies.h"
#include "resource/state.h"
#include "resource/timeouts.h"

namespace exo::resource {

class ResourceRegistry;
class TaskScope;

using SystemClock = std::chrono::system_clock;

struct ResourceIdentity {
  std::string id;            // unique within a registry, stable, used by the CLI and HTTP API
  std::string type;          // "peer_handle", "server", "discovery", "inference_engine", "node", ...
  std::string display_name;  // for people; defaults to "type 'id'"
};

// What a health hook reports. Throwing from the hook is equivalent to {false, what()}.
struct HealthStatus {
  bool healthy = true;
  std::string detail;
};

// The result of one check_health() call.
struct HealthResult {
  bool healthy = false;
  bool probed = false;  // false when the state did not allow a probe (not READY/DEGRADED)
  std::string detail;
  ResourceState state_after = ResourceState::UNINITIALIZED;
  Clock::duration elapsed{};
  SystemClock::time_point time{};
};

struct ErrorRecord {
  std::string message;
  SystemClock::time_point time{};
};

struct Transition {
  std::string resource_id;
  std::string resource_type;
  ResourceState from = ResourceState::UNINITIALIZED;
  ResourceState to = ResourceState::UNINITIALIZED;
  std::string cause;
  SystemClock::time_point time{};
  std::uint64_t generation = 0;
};

// A consistent copy of everything observable about a resource, for monitors and APIs.
struct ResourceInfo {
  ResourceIdentity identity;
  ResourceState state = ResourceState::UNINITIALIZED;
  SystemClock::time_point state_since{};
  SystemClock::time_point created_at{};
  std::optional<SystemClock::time_point> ready_at;
  std::optional<ErrorRecord> last_error;
  std::uint64_t failure_count =
      0;  // failed initializations, health-driven errors, reported and cleanup failures
  std::uint64_t generation = 0;  // number of initialization attempts started
  int consecutive_health_failures = 0;
  std::optional<HealthResult> last_health;
  std::uint64_t restarts = 0;                  // automatic recoveries started by supervision
  bool gave_up = false;                        // restart intensity exceeded; stays ERROR until reset()
  std::vector<std::string> depends_on;         // ids of resources this one depends on (set by groups)
  std::map<std::string, std::string> details;  // resource-specific facts (address, model, ...)
};

class AsyncResource : public std::enable_shared_from_this<AsyncResource> {
 public:
  using ListenerId = std::uint64_t;
  using Listener = std::function<void(const Transition&)>;

  AsyncResource(const asio::any_io_executor& executor, ResourceIdentity identity,
                ResourceOptions options = {}, std::shared_ptr<ResourceRegistry> registry = nullptr);
  virtual ~AsyncResource();
  AsyncResource(const AsyncResource&) = delete;
  AsyncResource& operator=(const AsyncResource&) = delete;

  const std::string& id() const noexcept { return identity_.id; }
  const std::string& type() const noexcept { return identity_.type; }
  const std::string& display_name() const noexcept { return identity_.display_name; }
  const ResourceOptions& options() const noexcept { return options_; }
  const asio::strand<asio::any_io_executor>& strand() const noexcept { return strand_; }

  ResourceState state() const noexcept { return state_.load(std::memory_order_acquire); }
  // True in READY: the whole fast path of ensure_ready().
  bool ready() const noexcept { return state_.load(std::memory_order_acquire) == ResourceState::READY; }
  ResourceInfo info() const;

  // Brings the resource to READY (see the class contract). `timeout` bounds this caller's wait only;
  // default: the resource's init_timeout times its attempts. Throws InitializationError with the
  // cause, TimeoutError, ClosedError, or operation_aborted when the caller is cancelled.
  asio::awaitable<void> initialize(std::optional<Clock::duration> timeout = std::nullopt);

  // Idempotent; concurrent callers all wait for the same cleanup. Ends CLOSED even when the hook
  // fails, in which case every caller gets CleanupError (later calls return normally).
  asio::awaitable<void> cleanup();

  // cleanup() then initialize() from CLOSED, clearing the supervisor's give-up. The documented way
  // back from CLOSED (used by the resource CLI). A cleanup failure is recorded, not thrown.
  asio::awaitable<void> reset(std::optional<Clock::duration> timeout = std::nullopt);

  // Runs the health hook under the health timeout and applies READY <-> DEGRADED -> ERROR hysteresis.
  asio::awaitable<HealthResult> check_health();

  // Called at the top of every public operation. READY: returns after one atomic load.
  // DEGRADED: proceeds or refuses per policy. UNINITIALIZED/INITIALIZING: initializes or joins.
  // ERROR: recovers (cleanup + initialize) or fails per policy, naming the last error.
  // CLOSING/CLOSED: ClosedError.
  asio::awaitable<void> ensure_ready() {
    if (state_.load(std::memory_order_acquire) == ResourceState::READY) co_return;
    co_await ensure_ready_slow();
  }

  // Listeners run on the strand in transition order with no lock held; they must not block.
  ListenerId add_listener(Listener listener);
  void remove_listener(ListenerId id);

  // Registers the resource in its registry (idempotent). make_resource() calls it once the object is
  // fully constructed and owned, so the registry never sees a half-built resource.
  void attach_to_registry();

  // Dependency edges shown by monitors; groups set them for their members.
  void set_depends_on(std::vector<std::string> ids);

 protected:
  virtual asio::awaitable<void> do_initialize() = 0;
  virtual asio::awaitable<void> do_cleanup() = 0;
  virtual asio::awaitable<HealthStatus> do_health_check() { co_return HealthStatus{}; }

  // Whether a failed initialization attempt may be retried. Default: everything but PermanentError,
  // std::logic_error and ClosedError.
  virtual bool is_retryable(const std::exception_ptr& error) const;

  // Resource-specific facts for info().details; called with no lock held, from any thread.
  virtual std::map<std::string, std::string> details() const { return {}; }

  // A running resource reports that it broke (e.g. its connection was lost): READY/DEGRADED -> ERROR.
  // Thread-safe; ignored in other states. Supervision (if enabled) then recovers it.
  void report_failure(std::string cause);

  // Starts a task owned by this resource: it runs on the strand, is cancelled and joined before
  // do_cleanup runs — by cleanup(), and by a re-initialization (retry, recovery from ERROR), so a
  // task of the previous run never overlaps the next one. Call from the strand (e.g. inside
  // do_initialize).
  void spawn(asio::awaitable<void> task);

  // Apply a state change on the strand (for subclasses with their own state rules, like groups).
  void transition(ResourceState to, std::string cause);
  void record_error(std::string message);

 private:
  friend class ResourceRegistry;

  asio::awaitable<void> ensure_ready_slow();
  asio::awaitable<void> initialize_on_strand(Clock::time_point deadline, bool allow_closed);
  asio::awaitable<void> cleanup_on_strand();
  asio::awaitable<HealthResult> check_health_on_strand();
  void start_init_attempt(bool clean_first);
  asio::awaitable<void> run_init_attempt(std::shared_ptr<Completion> attempt, bool clean_first);
  asio::awaitable<void> run_cleanup(std::shared_ptr<Completion> done);
  void apply_health(HealthResult& result);
  void start_supervision();
  static asio::awaitable<void> supervise(std::weak_ptr<AsyncResource> weak,
                                         std::shared_ptr<asio::steady_timer> wake);
  asio::awaitable<void> supervise_step();
  Clock::duration next_supervision_delay();

  asio::strand<asio::any_io_executor> strand_;
  ResourceIdentity identity_;
  ResourceOptions options_;
  std::shared_ptr<ResourceRegistry> registry_;
  std::atomic<ResourceState> state_{ResourceState::UNINITIALIZED};
  std::atomic<bool> registered_{false};

  // Guarded by info_mutex_: the observable fields copied by info().
  mutable std::mutex info_mutex_;
  ResourceInfo info_;

  // Strand-only state.
  std::shared_ptr<Completion> init_attempt_;
  std::shared_ptr<asio::cancellation_signal> init_cancel_;
  std::shared_ptr<Completion> cleanup_done_;
  std::unique_ptr<TaskScope> tasks_;       // supervision
  std::unique_ptr<TaskScope> user_tasks_;  // spawn(): closed by cleanup and before every re-initialization
  std::shared_ptr<asio::steady_timer> supervision_wake_;
  bool supervision_running_ = false;
  int health_successes_ = 0;
  int health_failures_ = 0;
  int degraded_failures_ = 0;
  int recovery_index_ = 0;
  std::deque<Clock::time_point> restart_times_;
  std::mt19937_64 rng_;
  std::map<ListenerId, Listener> listeners_;
  ListenerId next_listener_id_ = 1;
};

// Creates a resource owned by a shared_ptr and registers it. All resources are created this way.
template <typename T, typename... Args>
std::shared_ptr<T> make_resource(Args&&... args) {
  auto resource = std::make_shared<T>(std::forward<Args>(args)...);
  resource->attach_to_registry();
  return resource;
}

}  // namespace exo::resource
