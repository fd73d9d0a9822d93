// TaskScope: a set of coroutines owned by one object, cancelled and joined together.
//
// Contract: not thread-safe; spawn() and close() run on the strand given at construction, and the
// tasks run there too. close() emits terminal cancellation to every task, waits until all have
// finished, and leaves the scope reusable (open) for later spawns. The bookkeeping lives in a shared
// state, so a task that finishes after the scope's owner is gone touches nothing freed. Destroying a
// scope does not cancel anything: its owner must close() it (AsyncResource::cleanup does). Exceptions
// escaping a task are counted (failed_tasks()) and otherwise dropped: tasks report their own errors.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/strand.hpp>
#include <cstddef>
#include <list>
#include <memory>

#include "resource/completion.h"

namespace exo::resource {

class TaskScope {
 public:
  explicit TaskScope(asio::strand<asio::any_io_executor> strand);
  ~TaskScope();
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;

  void spawn(asio::awaitable<void> task);
  // Cancels every running task and waits for all of them to finish.
  asio::awaitable<void> close();
  std::size_t active() const noexcept;
  std::size_t failed_tasks() const noexcept;

 private:
  struct State {
    std::list<asio::cancellation_signal> signals;
    std::size_t active = 0;
    std::size_t failed = 0;
    std::shared_ptr<Completion> idle;
  };
  asio::strand<asio::any_io_executor> strand_;
  std::shared_ptr<State> state_;
};

}  // namespace exo::resource
