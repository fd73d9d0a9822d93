// The error vocabulary of the resource layer.
//
// Contract: the resource layer reports failures with exceptions, all derived from ResourceError
// (itself a std::runtime_error), except IllegalTransition, which is a std::logic_error because it can
// only come from a programming error. Every message names the resource ("type 'id'") it concerns.
// Cancellation of a caller surfaces as asio's std::system_error(operation_aborted), untouched.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "resource/state.h"

namespace exo::resource {

class ResourceError : public std::runtime_error {
 public:
  ResourceError(std::string resource_id, const std::string& message)
      : std::runtime_error(message), resource_id_(std::move(resource_id)) {}
  const std::string& resource_id() const noexcept { return resource_id_; }

 private:
  std::string resource_id_;
};

// initialize() (or the initialization started by ensure_ready) failed; what() carries the cause.
class InitializationError : public ResourceError {
  using ResourceError::ResourceError;
};

// A caller's own deadline passed while it waited. The operation it waited for goes on for others.
class TimeoutError : public ResourceError {
  using ResourceError::ResourceError;
};

// The resource is CLOSING or CLOSED: it takes no new work and initialize() will not reopen it.
class ClosedError : public ResourceError {
  using ResourceError::ResourceError;
};

// The resource is in a state where it cannot serve (ERROR without recovery, DEGRADED with a refusing
// policy, or a supervisor that gave up). what() names the state and the last error.
class UnavailableError : public ResourceError {
  using ResourceError::ResourceError;
};

// The cleanup hook failed. The resource is CLOSED regardless; the failure is also in last_error().
class CleanupError : public ResourceError {
  using ResourceError::ResourceError;
};

// A failure that retrying cannot fix (bad configuration, unsupported input). Retry policies stop at it.
class PermanentError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A state change outside the transition table. Only a bug in a resource can cause it.
class IllegalTransition : public std::logic_error {
 public:
  IllegalTransition(const std::string& resource_id, ResourceState from, ResourceState to)
      : std::logic_error("illegal transition " + std::string(to_string(from)) + " -> " +
                         std::string(to_string(to)) + " for resource '" + resource_id + "'"),
        from_(from),
        to_(to) {}
  ResourceState from() const noexcept { return from_; }
  ResourceState to() const noexcept { return to_; }

 private:
  ResourceState from_;
  ResourceState to_;
};

// Text of the exception held by `error`, for logs and snapshots ("unknown error" for non-std types).
std::string describe(const std::exception_ptr& error);

}  // namespace exo::resource
