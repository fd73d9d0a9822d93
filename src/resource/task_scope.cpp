#include "resource/task_scope.h"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>

namespace exo::resource {

TaskScope::TaskScope(asio::strand<asio::any_io_executor> strand)
    : strand_(std::move(strand)), state_(std::make_shared<State>()) {}

// A scope is destroyed either after close() or while its executor is being destroyed, in which case
// the tasks' frames are already gone: their cancellation slots must not be touched.
TaskScope::~TaskScope() = default;

void TaskScope::spawn(asio::awaitable<void> task) {
  auto state = state_;
  auto position = state->signals.emplace(state->signals.end());
  ++state->active;
  asio::co_spawn(
      strand_, std::move(task),
      asio::bind_cancellation_slot(
          position->slot(), asio::bind_executor(strand_, [state, position](const std::exception_ptr& error) {
            if (error) ++state->failed;
            state->signals.erase(position);
            if (--state->active == 0 && state->idle) {
              auto idle = std::move(state->idle);
              idle->complete();
            }
          })));
}

asio::awaitable<void> TaskScope::close() {
  auto state = state_;
  if (state->active == 0) co_return;
  if (!state->idle) state->idle = std::make_shared<Completion>(strand_);
  auto idle = state->idle;
  for (auto& signal : state->signals) signal.emit(asio::cancellation_type::terminal);
  co_await idle->wait(Completion::Clock::time_point::max());
}

std::size_t TaskScope::active() const noexcept {
  return state_->active;
}
std::size_t TaskScope::failed_tasks() const noexcept {
  return state_->failed;
}

}  // namespace exo::resource
