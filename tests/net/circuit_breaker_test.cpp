#include "net/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace exo::net {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand.
struct FakeClock {
  CircuitBreaker::Clock::time_point now{std::chrono::hours(1)};
  CircuitBreaker::Now function() {
    return [this] { return now; };
  }
};

CircuitBreakerOptions options(int threshold = 3) {
  CircuitBreakerOptions o;
  o.failure_threshold = threshold;
  o.open_interval = 1s;
  o.backoff_multiplier = 2.0;
  o.max_open_interval = 5s;
  return o;
}

void fail(CircuitBreaker& breaker, const std::string& why = "boom") {
  auto permit = breaker.try_acquire();
  ASSERT_TRUE(permit.has_value());
  breaker.record_failure(*permit, why);
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresOnly) {
  FakeClock clock;
  CircuitBreaker breaker(options(3), clock.function());
  fail(breaker);
  fail(breaker);
  auto ok = breaker.try_acquire();
  ASSERT_TRUE(ok);
  breaker.record_success(*ok);  // resets the count
  fail(breaker);
  fail(breaker);
  EXPECT_EQ(breaker.state(), CircuitState::CLOSED);
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 2);
  auto third = breaker.try_acquire();
  ASSERT_TRUE(third);
  EXPECT_TRUE(breaker.record_failure(*third, "third"));
  EXPECT_EQ(breaker.state(), CircuitState::OPEN);
  EXPECT_FALSE(breaker.allows_calls());
  EXPECT_FALSE(breaker.try_acquire().has_value());
  const auto snapshot = breaker.snapshot();
  EXPECT_EQ(snapshot.times_opened, 1U);
  EXPECT_EQ(snapshot.last_error, "third");
  EXPECT_EQ(snapshot.retry_after, 1s);
}

TEST(CircuitBreaker, HalfOpenAllowsExactlyOneTrialThenCloses) {
  FakeClock clock;
  CircuitBreaker breaker(options(1), clock.function());
  fail(breaker);
  ASSERT_EQ(breaker.state(), CircuitState::OPEN);
  clock.now += 999ms;
  EXPECT_FALSE(breaker.try_acquire().has_value());
  clock.now += 1ms;
  EXPECT_TRUE(breaker.allows_calls());
  auto trial = breaker.try_acquire();
  ASSERT_TRUE(trial);
  EXPECT_TRUE(trial->trial);
  EXPECT_EQ(breaker.state(), CircuitState::HALF_OPEN);
  EXPECT_FALSE(breaker.try_acquire().has_value()) << "a second caller must wait for the trial";
  breaker.record_success(*trial);
  EXPECT_EQ(breaker.state(), CircuitState::CLOSED);
  EXPECT_TRUE(breaker.try_acquire().has_value());
}

TEST(CircuitBreaker, FailedTrialReopensWithBackoffCappedAtMax) {
  FakeClock clock;
  CircuitBreaker breaker(options(1), clock.function());
  fail(breaker);
  std::vector<std::chrono::steady_clock::duration> intervals{breaker.snapshot().retry_after};
  for (int i = 0; i < 4; ++i) {
    clock.now += intervals.back();
    auto trial = breaker.try_acquire();
    ASSERT_TRUE(trial);
    EXPECT_TRUE(breaker.record_failure(*trial, "still down"));
    EXPECT_EQ(breaker.state(), CircuitState::OPEN);
    intervals.push_back(breaker.snapshot().retry_after);
  }
  const std::vector<std::chrono::steady_clock::duration> expected{1s, 2s, 4s, 5s, 5s};
  EXPECT_EQ(intervals, expected);
  EXPECT_EQ(breaker.snapshot().times_opened, 5U);
  // A success resets the backoff: the next opening lasts the first interval again.
  clock.now += 5s;
  auto trial = breaker.try_acquire();
  ASSERT_TRUE(trial);
  breaker.record_success(*trial);
  fail(breaker);
  EXPECT_EQ(breaker.snapshot().retry_after, 1s);
}

TEST(CircuitBreaker, ReleasedTrialLetsAnotherCallerTry) {
  FakeClock clock;
  CircuitBreaker breaker(options(1), clock.function());
  fail(breaker);
  clock.now += 1s;
  auto trial = breaker.try_acquire();
  ASSERT_TRUE(trial);
  breaker.release(*trial);  // the caller was cancelled: no verdict
  EXPECT_EQ(breaker.state(), CircuitState::HALF_OPEN);
  auto next = breaker.try_acquire();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->trial);
}

TEST(CircuitBreaker, LateOutcomesFromAnEarlierGenerationAreIgnored) {
  FakeClock clock;
  CircuitBreaker breaker(options(2), clock.function());
  auto early_a = breaker.try_acquire();
  auto early_b = breaker.try_acquire();
  auto early_c = breaker.try_acquire();
  ASSERT_TRUE(early_a && early_b && early_c);
  breaker.record_failure(*early_a, "a");
  EXPECT_TRUE(breaker.record_failure(*early_b, "b"));
  ASSERT_EQ(breaker.state(), CircuitState::OPEN);
  breaker.record_success(*early_c);  // started before the opening: must not close it
  EXPECT_EQ(breaker.state(), CircuitState::OPEN);
  EXPECT_FALSE(breaker.record_failure(*early_c, "late"));
  EXPECT_EQ(breaker.snapshot().times_opened, 1U);
  clock.now += 1s;
  auto trial = breaker.try_acquire();
  ASSERT_TRUE(trial);
  breaker.record_success(*early_c);  // a non-trial permit never decides the half-open state
  EXPECT_EQ(breaker.state(), CircuitState::HALF_OPEN);
  breaker.record_success(*trial);
  EXPECT_EQ(breaker.state(), CircuitState::CLOSED);
}

TEST(CircuitBreaker, ResetClosesAndForgets) {
  FakeClock clock;
  CircuitBreaker breaker(options(1), clock.function());
  fail(breaker, "x");
  breaker.reset();
  EXPECT_EQ(breaker.state(), CircuitState::CLOSED);
  EXPECT_EQ(breaker.snapshot().last_error, "");
  EXPECT_TRUE(breaker.try_acquire().has_value());
}

TEST(CircuitBreaker, RejectsBadOptions) {
  auto bad = options();
  bad.failure_threshold = 0;
  EXPECT_THROW(CircuitBreaker{bad}, std::invalid_argument);
  bad = options();
  bad.open_interval = 0s;
  EXPECT_THROW(CircuitBreaker{bad}, std::invalid_argument);
  bad = options();
  bad.backoff_multiplier = 0.5;
  EXPECT_THROW(CircuitBreaker{bad}, std::invalid_argument);
  bad = options();
  bad.max_open_interval = 1ms;
  EXPECT_THROW(CircuitBreaker{bad}, std::invalid_argument);
}

TEST(CircuitBreaker, ConcurrentCallersSeeOneTrialAndConsistentCounts) {
  FakeClock clock;  // the clock is only moved while no thread runs
  CircuitBreaker breaker(options(1000000), clock.function());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        auto permit = breaker.try_acquire();
        if (permit) breaker.record_failure(*permit, "f");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(breaker.snapshot().consecutive_failures, 4000);

  CircuitBreaker single(options(1), clock.function());
  fail(single);
  clock.now += 1s;
  std::atomic<int> granted{0};
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (single.try_acquire()) ++granted;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(granted.load(), 1) << "exactly one half-open trial";
}

}  // namespace
}  // namespace exo::net
