// Result<T>: the error vocabulary of the pure topology and net layers for untrusted input.
//
// Contract: a function that interprets bytes or JSON coming from another machine returns Result<T>
// and reports every malformed input as an Error value; it never throws for bad input (only
// std::bad_alloc may escape). Violated preconditions of our own callers (programming errors) are
// reported with std::invalid_argument / std::logic_error instead. Reading value() of a failed
// Result, or error() of a successful one, is such a programming error and throws std::logic_error.
// Result is a plain value type: copyable, movable, no internal synchronisation.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace exo {

// Why an input was rejected, in words fit for a log line ("grpc_port: expected an integer").
struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    check_ok();
    return std::get<0>(state_);
  }
  const T& value() const& {
    check_ok();
    return std::get<0>(state_);
  }
  T&& value() && {
    check_ok();
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    if (ok()) throw std::logic_error("Result::error() called on a successful result");
    return std::get<1>(state_);
  }

 private:
  void check_ok() const {
    if (!ok())
      throw std::logic_error("Result::value() called on a failed result: " + std::get<1>(state_).message);
  }

  std::variant<T, Error> state_;
};

}  // namespace exo
