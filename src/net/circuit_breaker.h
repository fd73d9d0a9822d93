// CircuitBreaker: the closed / open / half-open breaker a peer handle keeps around its RPCs.
//
// Contract
// - CLOSED: every call is allowed; `failure_threshold` consecutive failures open the breaker.
// - OPEN: calls are refused (try_acquire() returns nullopt) until the open interval has passed.
//   The k-th consecutive opening lasts min(max_open_interval, open_interval * multiplier^k).
// - HALF_OPEN: the first try_acquire() after the interval moves to HALF_OPEN and grants exactly one
//   trial permit; other callers are refused while it is in flight. Its success closes the breaker
//   (and resets the backoff), its failure reopens it with the next, longer interval.
// - Every permit carries the generation it was granted in; the generation changes on every state
//   change, so an outcome of a call started before a change (a late success while OPEN, say) is
//   ignored. release() returns a permit without an outcome (the caller was cancelled).
// - Thread-safe: one internal mutex, never held while calling out except the injected clock.
//   The clock is injectable so tests run without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace exo::net {

enum class CircuitState { CLOSED, OPEN, HALF_OPEN };

std::string_view to_string(CircuitState state) noexcept;

struct CircuitBreakerOptions {
  int failure_threshold = 3;  // consecutive failures that open it
  std::chrono::steady_clock::duration open_interval = std::chrono::seconds(1);  // first opening
  double backoff_multiplier = 2.0;  // each reopening without a success
  std::chrono::steady_clock::duration max_open_interval = std::chrono::seconds(30);

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

struct CircuitSnapshot {
  CircuitState state = CircuitState::CLOSED;
  int consecutive_failures = 0;
  std::uint64_t times_opened = 0;
  std::chrono::steady_clock::duration retry_after{};  // OPEN: time left before a trial is allowed
  std::string last_error;                             // last recorded failure ("" when none yet)
};

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  struct Permit {
    std::uint64_t generation = 0;
    bool trial = false;  // the single half-open trial
  };

  explicit CircuitBreaker(CircuitBreakerOptions options = {}, Now now = nullptr);

  // A permit to make one call, or nullopt when the breaker refuses (OPEN, or a trial in flight).
  std::optional<Permit> try_acquire();
  void record_success(const Permit& permit);
  // Returns true when this failure opened (or reopened) the breaker.
  bool record_failure(const Permit& permit, std::string error);
  void release(const Permit& permit);

  // OPEN is reported as OPEN until a try_acquire() moves it to HALF_OPEN.
  CircuitState state() const;
  // False only while OPEN and the open interval has not passed (a trial would be refused).
  bool allows_calls() const;
  CircuitSnapshot snapshot() const;
  const CircuitBreakerOptions& options() const noexcept { return options_; }

  // Back to CLOSED with no history (used when a peer is re-created, and by tests).
  void reset();

 private:
  void open_locked(Clock::time_point now);
  Clock::duration interval_locked() const;

  CircuitBreakerOptions options_;
  Now now_;
  mutable std::mutex mutex_;
  CircuitState state_ = CircuitState::CLOSED;
  std::uint64_t generation_ = 0;
  int consecutive_failures_ = 0;
  int consecutive_openings_ = 0;
  std::uint64_t times_opened_ = 0;
  bool trial_in_flight_ = false;
  Clock::time_point open_until_{};
  std::string last_error_;
};

}  // namespace exo::net
