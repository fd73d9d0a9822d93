#include "resource/completion.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/this_coro.hpp>
#include <system_error>

namespace exo::resource {

asio::awaitable<bool> Completion::wait(Clock::time_point deadline) {
  if (done_) co_return true;
  asio::steady_timer timer(executor_, deadline);
  auto position = waiters_.insert(waiters_.end(), &timer);
  auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  waiters_.erase(position);
  if (done_) co_return true;
  if (!ec || Clock::now() >= deadline) co_return false;
  throw std::system_error(asio::error::operation_aborted, "wait cancelled");
}

}  // namespace exo::resource
