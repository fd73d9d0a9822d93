#include "net/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exo::net {

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::CLOSED:
      return "CLOSED";
    case CircuitState::OPEN:
      return "OPEN";
    case CircuitState::HALF_OPEN:
      return "HALF_OPEN";
  }
  return "UNKNOWN";
}

void CircuitBreakerOptions::validate() const {
  if (failure_threshold < 1) throw std::invalid_argument("circuit breaker: failure_threshold must be >= 1");
  if (open_interval <= std::chrono::steady_clock::duration::zero())
    throw std::invalid_argument("circuit breaker: open_interval must be positive");
  if (!(backoff_multiplier >= 1.0) || !std::isfinite(backoff_multiplier))
    throw std::invalid_argument("circuit breaker: backoff_multiplier must be a finite number >= 1");
  if (max_open_interval < open_interval)
    throw std::invalid_argument("circuit breaker: max_open_interval must be >= open_interval");
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Now now)
    : options_(options), now_(now ? std::move(now) : Now([] { return Clock::now(); })) {
  options_.validate();
}

std::optional<CircuitBreaker::Permit> CircuitBreaker::try_acquire() {
  const auto now = now_();
  std::lock_guard lock(mutex_);
  switch (state_) {
    case CircuitState::CLOSED:
      return Permit{generation_, false};
    case CircuitState::OPEN:
      if (now < open_until_) return std::nullopt;
      state_ = CircuitState::HALF_OPEN;
      ++generation_;
      trial_in_flight_ = true;
      return Permit{generation_, true};
    case CircuitState::HALF_OPEN:
      if (trial_in_flight_) return std::nullopt;
      trial_in_flight_ = true;
      return Permit{generation_, true};
  }
  return std::nullopt;
}

void CircuitBreaker::record_success(const Permit& permit) {
  std::lock_guard lock(mutex_);
  if (permit.generation != generation_) return;
  if (state_ == CircuitState::HALF_OPEN) {
    if (!permit.trial) return;
    state_ = CircuitState::CLOSED;
    ++generation_;
    trial_in_flight_ = false;
    consecutive_openings_ = 0;
  }
  consecutive_failures_ = 0;
}

bool CircuitBreaker::record_failure(const Permit& permit, std::string error) {
  const auto now = now_();
  std::lock_guard lock(mutex_);
  if (permit.generation != generation_) return false;
  last_error_ = std::move(error);
  if (state_ == CircuitState::HALF_OPEN) {
    if (!permit.trial) return false;
    trial_in_flight_ = false;
    open_locked(now);
    return true;
  }
  if (state_ != CircuitState::CLOSED) return false;
  if (++consecutive_failures_ < options_.failure_threshold) return false;
  open_locked(now);
  return true;
}

void CircuitBreaker::release(const Permit& permit) {
  std::lock_guard lock(mutex_);
  if (permit.generation == generation_ && permit.trial && state_ == CircuitState::HALF_OPEN)
    trial_in_flight_ = false;
}

void CircuitBreaker::open_locked(Clock::time_point now) {
  const auto interval = interval_locked();
  state_ = CircuitState::OPEN;
  ++generation_;
  ++consecutive_openings_;
  ++times_opened_;
  open_until_ = now + interval;
}

CircuitBreaker::Clock::duration CircuitBreaker::interval_locked() const {
  const double scaled = static_cast<double>(options_.open_interval.count()) *
                        std::pow(options_.backoff_multiplier, consecutive_openings_);
  const auto cap = static_cast<double>(options_.max_open_interval.count());
  return Clock::duration(static_cast<Clock::rep>(std::min(scaled, cap)));
}

CircuitState CircuitBreaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

bool CircuitBreaker::allows_calls() const {
  const auto now = now_();
  std::lock_guard lock(mutex_);
  if (state_ == CircuitState::OPEN) return now >= open_until_;
  return true;
}

CircuitSnapshot CircuitBreaker::snapshot() const {
  const auto now = now_();
  std::lock_guard lock(mutex_);
  CircuitSnapshot out;
  out.state = state_;
  out.consecutive_failures = consecutive_failures_;
  out.times_opened = times_opened_;
  if (state_ == CircuitState::OPEN && now < open_until_) out.retry_after = open_until_ - now;
  out.last_error = last_error_;
  return out;
}

void CircuitBreaker::reset() {
  std::lock_guard lock(mutex_);
  state_ = CircuitState::CLOSED;
  ++generation_;
  consecutive_failures_ = 0;
  consecutive_openings_ = 0;
  trial_in_flight_ = false;
  last_error_.clear();
}

}  // namespace exo::net
