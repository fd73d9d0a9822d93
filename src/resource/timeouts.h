// Deadline helpers for coroutines on Asio.
//
// Contract: `run_with_timeout` runs an awaitable on the current executor and, if it has not finished
// by the deadline, cancels it (terminal cancellation), waits for it to unwind and throws TimeoutError.
// An operation that ignores cancellation delays the throw until it returns. Exceptions of the
// operation propagate unchanged. `sleep_for` is a cancellable delay. Both are thread-safe to call from
// any coroutine; they touch only their own objects.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace exo::resource {

using Clock = std::chrono::steady_clock;

// A deadline `timeout` from now, saturating instead of overflowing for very large timeouts.
Clock::time_point deadline_after(Clock::duration timeout) noexcept;

// Throws TimeoutError(resource_id, what + " timed out after N ms") when the deadline passes first.
asio::awaitable<void> run_with_timeout(asio::awaitable<void> operation, Clock::duration timeout,
                                       std::string resource_id, std::string what);

namespace detail {
template <typename T>
asio::awaitable<void> store_result(asio::awaitable<T> operation, std::optional<T>* out) {
  out->emplace(co_await std::move(operation));
}
}  // namespace detail

template <typename T>
asio::awaitable<T> run_with_timeout(asio::awaitable<T> operation, Clock::duration timeout,
                                    std::string resource_id, std::string what) {
  std::optional<T> result;
  co_await run_with_timeout(detail::store_result(std::move(operation), &result), timeout,
                            std::move(resource_id), std::move(what));
  co_return std::move(*result);
}

// Cancellable sleep on the current executor.
asio::awaitable<void> sleep_for(Clock::duration duration);

// "1500 ms" / "2.5 s" style text for messages.
std::string format_duration(Clock::duration d);

}  // namespace exo::resource
