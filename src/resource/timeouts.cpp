#include "resource/timeouts.h"

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "resource/errors.h"

namespace exo::resource {

Clock::time_point deadline_after(Clock::duration timeout) noexcept {
  const auto now = Clock::now();
  if (timeout <= Clock::duration::zero()) return now;
  if (timeout >= Clock::time_point::max() - now) return Clock::time_point::max();
  return now + timeout;
}

asio::awaitable<void> run_with_timeout(asio::awaitable<void> operation, Clock::duration timeout,
                                       std::string resource_id, std::string what) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline_after(timeout));
  auto [order, operation_error, timer_error] =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(executor, std::move(operation), asio::experimental::deferred),
          timer.async_wait(asio::experimental::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0) {
    if (operation_error) std::rethrow_exception(operation_error);
    co_return;
  }
  if (timer_error) {
    // The timer was cancelled rather than expiring: the caller itself was cancelled.
    if (operation_error) std::rethrow_exception(operation_error);
    throw std::system_error(asio::error::operation_aborted, what + " cancelled");
  }
  throw TimeoutError(
      resource_id, fmt::format("{} of '{}' timed out after {}", what, resource_id, format_duration(timeout)));
}

asio::awaitable<void> sleep_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline_after(duration));
  co_await timer.async_wait(asio::use_awaitable);
}

std::string format_duration(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 10'000) return fmt::format("{} ms", ms);
  return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
}

}  // namespace exo::resource
