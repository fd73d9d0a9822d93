// Completion: a one-shot, broadcast "this finished (with this outcome)" that any number of coroutines
// can wait for, each with its own deadline.
//
// Contract: not thread-safe; every call must run on the strand given at construction (AsyncResource
// uses it only from its own strand). complete() wakes every waiter; later waits return at once.
// A waiter whose deadline passes gets `false`; a waiter that is cancelled gets asio's
// operation_aborted; neither affects the completion or the other waiters.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <list>

namespace exo::resource {

class Completion {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Completion(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  bool done() const noexcept { return done_; }
  // The outcome: nullptr for success. Meaningful only once done().
  const std::exception_ptr& error() const noexcept { return error_; }

  // Records the outcome and wakes every waiter. A second call is ignored.
  void complete(std::exception_ptr error = nullptr) {
    if (done_) return;
    done_ = true;
    error_ = std::move(error);
    for (asio::steady_timer* waiter : waiters_) waiter->cancel();
  }

  // Waits until complete() or `deadline`. Returns true when completed, false when the deadline passed.
  // Throws std::system_error(operation_aborted) when the calling coroutine is cancelled.
  asio::awaitable<bool> wait(Clock::time_point deadline);

 private:
  asio::any_io_executor executor_;
  bool done_ = false;
  std::exception_ptr error_;
  std::list<asio::steady_timer*> waiters_;
};

}  // namespace exo::resource
