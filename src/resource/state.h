// ResourceState and the one transition table every resource obeys.
//
// Contract: pure value types and constexpr functions; thread-safe. `is_legal_transition` is the single
// source of truth for which state changes exist; AsyncResource refuses (throws IllegalTransition for)
// anything else. docs/lifecycle.md reproduces this table and explains each edge.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace exo::resource {

enum class ResourceState : std::uint8_t {
  UNINITIALIZED,  // created, never initialised
  INITIALIZING,   // an initialization attempt (with its retries) is in flight
  READY,          // initialised and healthy
  DEGRADED,       // initialised, but health checks are failing (still usable per policy)
  ERROR,          // initialization failed, or the resource failed while running; keeps the cause
  CLOSING,        // cleanup in progress; refuses new work
  CLOSED,         // cleaned up; terminal for initialize(), only reset() leaves it
};

inline constexpr std::array<ResourceState, 7> kAllStates = {
    ResourceState::UNINITIALIZED, ResourceState::INITIALIZING, ResourceState::READY, ResourceState::DEGRADED,
    ResourceState::ERROR,         ResourceState::CLOSING,      ResourceState::CLOSED};

constexpr std::string_view to_string(ResourceState s) noexcept {
  switch (s) {
    case ResourceState::UNINITIALIZED:
      return "UNINITIALIZED";
    case ResourceState::INITIALIZING:
      return "INITIALIZING";
    case ResourceState::READY:
      return "READY";
    case ResourceState::DEGRADED:
      return "DEGRADED";
    case ResourceState::ERROR:
      return "ERROR";
    case ResourceState::CLOSING:
      return "CLOSING";
    case ResourceState::CLOSED:
      return "CLOSED";
  }
  return "UNKNOWN";
}

constexpr std::optional<ResourceState> state_from_string(std::string_view name) noexcept {
  for (ResourceState s : kAllStates) {
    if (to_string(s) == name) return s;
  }
  return std::nullopt;
}

// The full transition table. Rows are "from", the bit set lists the legal "to" states.
//   UNINITIALIZED -> INITIALIZING (initialize), CLOSED (cleanup before any initialize: no hooks run)
//   INITIALIZING  -> READY (attempt succeeded), ERROR (attempt failed), CLOSING (cleanup cancels it)
//   READY         -> DEGRADED (health hysteresis), ERROR (failure reported while running), CLOSING
//   DEGRADED      -> READY (recovered), ERROR (kept failing), CLOSING
//   ERROR         -> INITIALIZING (re-initialize / automatic recovery; cleans partial state first), CLOSING
//   CLOSING       -> CLOSED (always, even when the cleanup hook failed)
//   CLOSED        -> INITIALIZING (reset() only; initialize() refuses CLOSED)
constexpr bool is_legal_transition(ResourceState from, ResourceState to) noexcept {
  using S = ResourceState;
  switch (from) {
    case S::UNINITIALIZED:
      return to == S::INITIALIZING || to == S::CLOSED;
    case S::INITIALIZING:
      return to == S::READY || to == S::ERROR || to == S::CLOSING;
    case S::READY:
      return to == S::DEGRADED || to == S::ERROR || to == S::CLOSING;
    case S::DEGRADED:
      return to == S::READY || to == S::ERROR || to == S::CLOSING;
    case S::ERROR:
      return to == S::INITIALIZING || to == S::CLOSING;
    case S::CLOSING:
      return to == S::CLOSED;
    case S::CLOSED:
      return to == S::INITIALIZING;
  }
  return false;
}

// READY or DEGRADED: initialised and able to serve (DEGRADED subject to the resource's policy).
constexpr bool is_usable(ResourceState s) noexcept {
  return s == ResourceState::READY || s == ResourceState::DEGRADED;
}

// Severity order used when rolling states up (higher is worse):
// READY < UNINITIALIZED < DEGRADED < INITIALIZING < CLOSING < CLOSED < ERROR.
constexpr int severity(ResourceState s) noexcept {
  switch (s) {
    case ResourceState::READY:
      return 0;
    case ResourceState::UNINITIALIZED:
      return 1;
    case ResourceState::DEGRADED:
      return 2;
    case ResourceState::INITIALIZING:
      return 3;
    case ResourceState::CLOSING:
      return 4;
    case ResourceState::CLOSED:
      return 5;
    case ResourceState::ERROR:
      return 6;
  }
  return 6;
}

}  // namespace exo::resource
