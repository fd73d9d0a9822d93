// Policies that configure a resource: timeouts, initialization retry, health hysteresis, supervision
// (periodic health checks, automatic recovery, restart intensity) and what ensure_ready() does in
// DEGRADED and ERROR.
//
// Contract: plain values, copied into each resource at construction; `validate()` throws
// std::invalid_argument naming the bad field, so a bad configuration fails at construction, not later.
#pragma once

#include <chrono>
#include <random>

namespace exo::resource {

using namespace std::chrono_literals;

// Exponential backoff with real random jitter: delay(k) = min(max_backoff, initial * multiplier^k),
// scaled by a uniform factor in [1 - jitter, 1 + jitter] and capped at max_backoff again.
struct BackoffPolicy {
  std::chrono::steady_clock::duration initial = 100ms;
  double multiplier = 2.0;
  std::chrono::steady_clock::duration max = 10s;
  double jitter = 0.2;

  std::chrono::steady_clock::duration delay(int retry_index, std::mt19937_64& rng) const;
  void validate(const char* owner) const;
};

// Initialization retry. One attempt (no retry) by default. Each attempt runs the cleanup hook first
// when it follows a failed attempt, so partial state never leaks. A PermanentError stops the retries.
struct RetryPolicy {
  int max_attempts = 1;
  BackoffPolicy backoff;
  // Bound on the whole attempt including retries and backoff; zero means only per-attempt timeouts.
  std::chrono::steady_clock::duration total_deadline = std::chrono::steady_clock::duration::zero();

  void validate() const;
};

// Health checks: the hook runs under `timeout`; a throw or a timeout is a failed check.
struct HealthPolicy {
  std::chrono::steady_clock::duration timeout = 5s;
  int failures_to_degrade = 1;   // consecutive failures while READY before DEGRADED
  int successes_to_recover = 1;  // consecutive successes while DEGRADED before READY
  int failures_to_error = 3;     // consecutive failures while DEGRADED before ERROR; 0 = never

  void validate() const;
};

// Supervision: all of it runs as tasks owned by the resource and stops when it is cleaned up.
struct SupervisionPolicy {
  std::chrono::steady_clock::duration health_interval =
      std::chrono::steady_clock::duration::zero();  // 0 = off
  double health_jitter = 0.1;                       // interval scaled by a uniform factor in [1 - j, 1 + j]
  bool auto_recover = false;                        // re-initialize from ERROR with `recovery_backoff`
  BackoffPolicy recovery_backoff{.initial = 200ms, .multiplier = 2.0, .max = 30s, .jitter = 0.2};
  int max_restarts = 5;  // restart intensity: at most this many recoveries ...
  std::chrono::steady_clock::duration restart_period = 60s;  // ... within this window, then give up

  bool enabled() const {
    return health_interval > std::chrono::steady_clock::duration::zero() || auto_recover;
  }
  void validate() const;
};

enum class DegradedPolicy { PROCEED, REFUSE };  // ensure_ready() in DEGRADED
enum class ErrorPolicy { RECOVER, FAIL };       // ensure_ready() in ERROR

struct ResourceOptions {
  std::chrono::steady_clock::duration init_timeout = 30s;     // per initialization attempt
  std::chrono::steady_clock::duration cleanup_timeout = 30s;  // for the cleanup hook
  RetryPolicy init_retry;
  HealthPolicy health;
  SupervisionPolicy supervision;
  DegradedPolicy degraded_policy = DegradedPolicy::PROCEED;
  ErrorPolicy error_policy = ErrorPolicy::RECOVER;

  void validate() const;
};

}  // namespace exo::resource
