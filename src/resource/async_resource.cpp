#include "resource/async_resource.h"

#include <fmt/format.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "resource/registry.h"
#include "resource/task_scope.h"

namespace exo::resource {

std::string describe(const std::exception_ptr& error) {
  if (!error) return "no error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

namespace {
std::string label(const AsyncResource& r) {
  return fmt::format("{} '{}'", r.type(), r.id());
}
}  // namespace

AsyncResource::AsyncResource(const asio::any_io_executor& executor, ResourceIdentity identity,
                             ResourceOptions options, std::shared_ptr<ResourceRegistry> registry)
    : strand_(asio::make_strand(executor)),
      identity_(std::move(identity)),
      options_(options),
      registry_(std::move(registry)),
      tasks_(std::make_unique<TaskScope>(strand_)),
      user_tasks_(std::make_unique<TaskScope>(strand_)),
      rng_(std::random_device{}()) {
  if (identity_.id.empty()) throw std::invalid_argument("resource id must not be empty");
  if (identity_.type.empty()) throw std::invalid_argument("resource type must not be empty");
  if (identity_.display_name.empty())
    identity_.display_name = fmt::format("{} '{}'", identity_.type, identity_.id);
  options_.validate();
  const auto now = SystemClock::now();
  info_.identity = identity_;
  info_.created_at = now;
  info_.state_since = now;
}

void AsyncResource::attach_to_registry() {
  if (registry_ && !registered_.exchange(true)) registry_->add(this);
}

AsyncResource::~AsyncResource() {
  if (registry_) registry_->remove(this);
}

ResourceInfo AsyncResource::info() const {
  auto extra = details();
  std::lock_guard lock(info_mutex_);
  ResourceInfo copy = info_;
  copy.state = state();
  copy.details = std::move(extra);
  return copy;
}

AsyncResource::ListenerId AsyncResource::add_listener(Listener listener) {
  std::lock_guard lock(info_mutex_);
  const ListenerId id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void AsyncResource::remove_listener(ListenerId id) {
  std::lock_guard lock(info_mutex_);
  listeners_.erase(id);
}

void AsyncResource::set_depends_on(std::vector<std::string> ids) {
  std::lock_guard lock(info_mutex_);
  info_.depends_on = std::move(ids);
}

void AsyncResource::transition(ResourceState to, std::string cause) {
  const ResourceState from = state();
  if (!is_legal_transition(from, to)) throw IllegalTransition(identity_.id, from, to);
  Transition event{identity_.id, identity_.type, from, to, std::move(cause), SystemClock::now(), 0};
  std::vector<Listener> listeners;
  {
    std::lock_guard lock(info_mutex_);
    state_.store(to, std::memory_order_release);
    info_.state = to;
    info_.state_since = event.time;
    if (to == ResourceState::READY && from == ResourceState::INITIALIZING) info_.ready_at = event.time;
    event.generation = info_.generation;
    listeners.reserve(listeners_.size());
    for (const auto& [id, listener] : listeners_) listeners.push_back(listener);
  }
  for (const auto& listener : listeners) {
    try {
      listener(event);
    } catch (...) {
      // A listener's failure must not break the lifecycle; listeners report their own errors.
    }
  }
  if (registry_) registry_->notify(event);
  if (to == ResourceState::ERROR && supervision_wake_) supervision_wake_->cancel();
}

void AsyncResource::record_error(std::string message) {
  std::lock_guard lock(info_mutex_);
  info_.last_error = ErrorRecord{std::move(message), SystemClock::now()};
  ++info_.failure_count;
}

void AsyncResource::report_failure(std::string cause) {
  asio::post(strand_, [weak = weak_from_this(), cause = std::move(cause)]() mutable {
    auto self = weak.lock();
    if (!self || !is_usable(self->state())) return;
    self->record_error(cause);
    self->transition(ResourceState::ERROR, "failure reported: " + cause);
  });
}

void AsyncResource::spawn(asio::awaitable<void> task) {
  user_tasks_->spawn(std::move(task));
}

bool AsyncResource::is_retryable(const std::exception_ptr& error) const {
  try {
    std::rethrow_exception(error);
  } catch (const PermanentError&) {
    return false;
  } catch (const ClosedError&) {
    return false;
  } catch (const std::logic_error&) {
    return false;
  } catch (...) {
    return true;
  }
}

// ---------------------------------------------------------------- initialize

asio::awaitable<void> AsyncResource::initialize(std::optional<Clock::duration> timeout) {
  if (is_usable(state())) co_return;
  const auto deadline = timeout ? deadline_after(*timeout) : Clock::time_point::max();
  co_await asio::co_spawn(strand_, shared_from_this()->initialize_on_strand(deadline, false),
                          asio::use_awaitable);
}

asio::awaitable<void> AsyncResource::reset(std::optional<Clock::duration> timeout) {
  auto self = shared_from_this();
  try {
    co_await cleanup();
  } catch (const CleanupError&) {
    // Recorded in last_error by the cleanup itself; reset goes on to initialize.
  }
  const auto deadline = timeout ? deadline_after(*timeout) : Clock::time_point::max();
  co_await asio::co_spawn(strand_, self->initialize_on_strand(deadline, true), asio::use_awaitable);
}

asio::awaitable<void> AsyncResource::initialize_on_strand(Clock::time_point deadline, bool allow_closed) {
  auto self = shared_from_this();  // keeps the resource alive while this caller waits
  for (;;) {
    switch (state()) {
      case ResourceState::READY:
      case ResourceState::DEGRADED:
        co_return;
      case ResourceState::CLOSING:
        if (!allow_closed || !cleanup_done_) throw ClosedError(id(), label(*this) + " is closing");
        if (!co_await cleanup_done_->wait(deadline)) {
          throw TimeoutError(id(), label(*this) + ": timed out waiting for cleanup before reset");
        }
        continue;
      case ResourceState::CLOSED:
        if (!allow_closed) throw ClosedError(id(), label(*this) + " is closed (use reset to reopen it)");
        {
          std::lock_guard lock(info_mutex_);
          info_.gave_up = false;
        }
        restart_times_.clear();
        recovery_index_ = 0;
        start_init_attempt(false);
        break;
      case ResourceState::UNINITIALIZED:
        start_init_attempt(false);
        break;
      case ResourceState::ERROR:
        start_init_attempt(true);
        break;
      case ResourceState::INITIALIZING:
        break;
    }
    auto attempt = init_attempt_;
    if (!co_await attempt->wait(deadline)) {
      throw TimeoutError(id(), fmt::format("timed out waiting for {} to initialize", label(*this)));
    }
    if (attempt->error()) std::rethrow_exception(attempt->error());
    co_return;
  }
}

void AsyncResource::start_init_attempt(bool clean_first) {
  {
    std::lock_guard lock(info_mutex_);
    ++info_.generation;
  }
  transition(ResourceState::INITIALIZING, clean_first ? "re-initialize after error" : "initialize");
  auto attempt = std::make_shared<Completion>(strand_);
  init_attempt_ = attempt;
  // A fresh signal per attempt: a finishing attempt never clears the slot of the next one.
  init_cancel_ = std::make_shared<asio::cancellation_signal>();
  asio::co_spawn(
      strand_, run_init_attempt(attempt, clean_first),
      asio::bind_cancellation_slot(
          init_cancel_->slot(),
          asio::bind_executor(strand_, [attempt, signal = init_cancel_](const std::exception_ptr& e) {
            // run_init_attempt catches everything; this only
            // guarantees that no waiter is ever stranded.
            attempt->complete(e);
          })));
}

asio::awaitable<void> AsyncResource::run_init_attempt(std::shared_ptr<Completion> attempt, bool clean_first) {
  auto self = shared_from_this();
  const auto& retry = options_.init_retry;
  const bool bounded = retry.total_deadline > Clock::duration::zero();
  const auto overall_deadline = bounded ? deadline_after(retry.total_deadline) : Clock::time_point::max();
  std::exception_ptr failure;
  int attempts_made = 0;
  for (int attempt_index = 0; attempt_index < retry.max_attempts; ++attempt_index) {
    if (attempt_index > 0 || clean_first) {
      // Tasks the failed run spawned end before its state is cleaned up.
      co_await user_tasks_->close();
      try {
        co_await run_with_timeout(do_cleanup(), options_.cleanup_timeout, id(), "cleanup of partial state");
      } catch (...) {
        record_error("cleanup of partial state failed: " + describe(std::current_exception()));
      }
    }
    if (state() != ResourceState::INITIALIZING) break;
    ++attempts_made;
    try {
      auto budget = options_.init_timeout;
      if (bounded) budget = std::min(budget, overall_deadline - Clock::now());
      co_await run_with_timeout(do_initialize(), budget, id(), "initialization");
      failure = nullptr;
      break;
    } catch (...) {
      failure = std::current_exception();
    }
    if (state() != ResourceState::INITIALIZING) break;
    if (attempt_index + 1 >= retry.max_attempts || !is_retryable(failure)) break;
    const auto delay = retry.backoff.delay(attempt_index, rng_);
    if (bounded && Clock::now() + delay >= overall_deadline) break;
    record_error(fmt::format("initialization attempt {} failed: {}", attempts_made, describe(failure)));
    try {
      co_await sleep_for(delay);
    } catch (...) {
      break;  // cancelled by cleanup
    }
  }

  if (state() != ResourceState::INITIALIZING) {
    // cleanup() took over (state is CLOSING): the attempt ends without touching the state.
    attempt->complete(std::make_exception_ptr(
        ClosedError(id(), fmt::format("initialization of {} was cancelled by cleanup", label(*this)))));
  } else if (!failure) {
    health_successes_ = health_failures_ = degraded_failures_ = 0;
    recovery_index_ = 0;
    transition(ResourceState::READY, attempts_made > 1
                                         ? fmt::format("initialized after {} attempts", attempts_made)
                                         : std::string("initialized"));
    attempt->complete();
    start_supervision();
  } else {
    const std::string cause = describe(failure);
    record_error(cause);
    transition(ResourceState::ERROR, "initialization failed: " + cause);
    attempt->complete(std::make_exception_ptr(InitializationError(
        id(), attempts_made > 1 ? fmt::format("{} failed to initialize after {} attempts: {}", label(*this),
                                              attempts_made, cause)
                                : fmt::format("{} failed to initialize: {}", label(*this), cause))));
  }
  if (init_attempt_ == attempt) init_attempt_.reset();
}

// ---------------------------------------------------------------- cleanup

asio::awaitable<void> AsyncResource::cleanup() {
  if (state() == ResourceState::CLOSED) co_return;
  co_await asio::co_spawn(strand_, shared_from_this()->cleanup_on_strand(), asio::use_awaitable);
}

asio::awaitable<void> AsyncResource::cleanup_on_strand() {
  auto self = shared_from_this();
  switch (state()) {
    case ResourceState::CLOSED:
      co_return;
    case ResourceState::UNINITIALIZED:
      transition(ResourceState::CLOSED, "cleanup before initialization");
      co_return;
    case ResourceState::CLOSING:
      break;  // join the cleanup in flight
    case ResourceState::INITIALIZING:
    case ResourceState::READY:
    case ResourceState::DEGRADED:
    case ResourceState::ERROR: {
      auto done = std::make_shared<Completion>(strand_);
      cleanup_done_ = done;
      transition(ResourceState::CLOSING, "cleanup");
      // The cleanup runs as its own task so a caller that gives up cannot leave the resource CLOSING.
      asio::co_spawn(
          strand_, run_cleanup(done),
          asio::bind_executor(strand_, [done](const std::exception_ptr& e) { done->complete(e); }));
      break;
    }
  }
  auto done = cleanup_done_;
  co_await done->wait(Clock::time_point::max());
  if (done->error()) std::rethrow_exception(done->error());
}

asio::awaitable<void> AsyncResource::run_cleanup(std::shared_ptr<Completion> done) {
  auto self = shared_from_this();
  // 1. Stop supervision and every task the resource spawned.
  supervision_running_ = false;
  if (supervision_wake_) supervision_wake_->cancel();
  co_await tasks_->close();
  co_await user_tasks_->close();
  supervision_wake_.reset();
  // 2. Cancel an initialization in flight and wait for it to unwind.
  if (auto attempt = init_attempt_) {
    init_cancel_->emit(asio::cancellation_type::terminal);
    co_await attempt->wait(Clock::time_point::max());
  }
  // 3. The hook; a failure is recorded and the resource still ends CLOSED.
  std::exception_ptr failure;
  try {
    co_await run_with_timeout(do_cleanup(), options_.cleanup_timeout, id(), "cleanup");
  } catch (...) {
    failure = std::current_exception();
  }
  std::string cause = "cleaned up";
  std::exception_ptr outcome;
  if (failure) {
    cause = "cleanup failed: " + describe(failure);
    record_error(cause);
    outcome = std::make_exception_ptr(CleanupError(id(), fmt::format("{} {}", label(*this), cause)));
  }
  transition(ResourceState::CLOSED, cause);
  done->complete(outcome);
}

// ---------------------------------------------------------------- health

asio::awaitable<HealthResult> AsyncResource::check_health() {
  co_return co_await asio::co_spawn(strand_, shared_from_this()->check_health_on_strand(),
                                    asio::use_awaitable);
}

asio::awaitable<HealthResult> AsyncResource::check_health_on_strand() {
  auto self = shared_from_this();
  HealthResult result;
  result.time = SystemClock::now();
  const ResourceState before = state();
  if (!is_usable(before)) {
    result.detail = fmt::format("not probed: {} is {}", label(*this), to_string(before));
    result.state_after = before;
    co_return result;
  }
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(info_mutex_);
    generation = info_.generation;
  }
  const auto started = Clock::now();
  result.probed = true;
  try {
    HealthStatus status =
        co_await run_with_timeout(do_health_check(), options_.health.timeout, id(), "health check");
    result.healthy = status.healthy;
    result.detail = status.healthy ? (status.detail.empty() ? "healthy" : status.detail)
                                   : (status.detail.empty() ? "unhealthy" : status.detail);
  } catch (...) {
    result.healthy = false;
    result.detail = describe(std::current_exception());
  }
  result.elapsed = Clock::now() - started;
  bool stale = false;
  {
    std::lock_guard lock(info_mutex_);
    stale = info_.generation != generation;
  }
  // A probe that raced a state change (cleanup, failure, re-initialization) is reported, not applied.
  if (!stale && is_usable(state())) apply_health(result);
  result.state_after = state();
  {
    std::lock_guard lock(info_mutex_);
    info_.last_health = result;
    info_.consecutive_health_failures = health_failures_;
  }
  co_return result;
}

void AsyncResource::apply_health(HealthResult& result) {
  const auto& policy = options_.health;
  if (result.healthy) {
    health_failures_ = 0;
    ++health_successes_;
    if (state() == ResourceState::DEGRADED && health_successes_ >= policy.successes_to_recover) {
      degraded_failures_ = 0;
      transition(ResourceState::READY, "recovered: " + result.detail);
    }
    return;
  }
  health_successes_ = 0;
  ++health_failures_;
  if (state() == ResourceState::READY) {
    if (health_failures_ >= policy.failures_to_degrade) {
      degraded_failures_ = 0;
      transition(ResourceState::DEGRADED, "health check failed: " + result.detail);
    }
    return;
  }
  ++degraded_failures_;
  if (policy.failures_to_error > 0 && degraded_failures_ >= policy.failures_to_error) {
    const std::string cause = fmt::format("{} consecutive health check failures while degraded: {}",
                                          degraded_failures_, result.detail);
    record_error(cause);
    transition(ResourceState::ERROR, cause);
  }
}

// ---------------------------------------------------------------- ensure_ready

asio::awaitable<void> AsyncResource::ensure_ready_slow() {
  switch (state()) {
    case ResourceState::READY:
      co_return;
    case ResourceState::DEGRADED:
      if (options_.degraded_policy == DegradedPolicy::PROCEED) co_return;
      throw UnavailableError(id(),
                             fmt::format("{} is DEGRADED and refuses work: {}", label(*this),
                                         info().last_health ? info().last_health->detail : "unhealthy"));
    case ResourceState::CLOSING:
    case ResourceState::CLOSED:
      throw ClosedError(id(), fmt::format("{} is {}", label(*this), to_string(state())));
    case ResourceState::ERROR: {
      const ResourceInfo snapshot = info();
      const std::string last = snapshot.last_error ? snapshot.last_error->message : "unknown";
      if (options_.error_policy == ErrorPolicy::FAIL || snapshot.gave_up) {
        throw UnavailableError(id(), fmt::format("{} is ERROR{}: {}", label(*this),
                                                 snapshot.gave_up ? " (supervisor gave up)" : "", last));
      }
      break;
    }
    case ResourceState::UNINITIALIZED:
    case ResourceState::INITIALIZING:
      break;
  }
  co_await initialize();
}

// ---------------------------------------------------------------- supervision

void AsyncResource::start_supervision() {
  if (supervision_running_ || !options_.supervision.enabled()) return;
  supervision_running_ = true;
  supervision_wake_ = std::make_shared<asio::steady_timer>(strand_);
  tasks_->spawn(supervise(weak_from_this(), supervision_wake_));
}

Clock::duration AsyncResource::next_supervision_delay() {
  const auto& policy = options_.supervision;
  if (state() == ResourceState::ERROR) {
    bool gave_up = false;
    {
      std::lock_guard lock(info_mutex_);
      gave_up = info_.gave_up;
    }
    if (policy.auto_recover && !gave_up) return policy.recovery_backoff.delay(recovery_index_, rng_);
    if (policy.health_interval == Clock::duration::zero()) return Clock::duration::max();
  }
  if (policy.health_interval == Clock::duration::zero()) return Clock::duration::max();
  std::uniform_real_distribution<double> factor(1.0 - policy.health_jitter, 1.0 + policy.health_jitter);
  return std::chrono::duration_cast<Clock::duration>(policy.health_interval * factor(rng_));
}

asio::awaitable<void> AsyncResource::supervise(std::weak_ptr<AsyncResource> weak,
                                               std::shared_ptr<asio::steady_timer> wake) {
  for (;;) {
    {
      auto self = weak.lock();
      if (!self || !self->supervision_running_) co_return;
      wake->expires_at(deadline_after(self->next_supervision_delay()));
    }
    auto [ec] = co_await wake->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none) co_return;
    if (ec) continue;  // woken early (the resource entered ERROR): recompute the delay
    auto self = weak.lock();
    if (!self || !self->supervision_running_) co_return;
    co_await self->supervise_step();
  }
}

asio::awaitable<void> AsyncResource::supervise_step() {
  const auto& policy = options_.supervision;
  const ResourceState s = state();
  if (is_usable(s)) {
    if (policy.health_interval > Clock::duration::zero()) {
      co_await check_health_on_strand();
    }
    co_return;
  }
  if (s != ResourceState::ERROR || !policy.auto_recover) co_return;
  bool gave_up = false;
  {
    std::lock_guard lock(info_mutex_);
    gave_up = info_.gave_up;
  }
  if (gave_up) co_return;
  const auto now = Clock::now();
  while (!restart_times_.empty() && now - restart_times_.front() > policy.restart_period)
    restart_times_.pop_front();
  if (static_cast<int>(restart_times_.size()) >= policy.max_restarts) {
    std::lock_guard lock(info_mutex_);
    info_.gave_up = true;
    const std::string last = info_.last_error ? info_.last_error->message : "unknown";
    info_.last_error =
        ErrorRecord{fmt::format("supervisor gave up after {} restarts within {}; last error: {}",
                                restart_times_.size(), format_duration(policy.restart_period), last),
                    SystemClock::now()};
    co_return;
  }
  restart_times_.push_back(now);
  ++recovery_index_;
  {
    std::lock_guard lock(info_mutex_);
    ++info_.restarts;
  }
  try {
    co_await initialize_on_strand(Clock::time_point::max(), false);
  } catch (...) {
    // The failure is already recorded in last_error; the next round backs off further.
  }
}

}  // namespace exo::resource
