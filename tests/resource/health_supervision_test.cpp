// Health checks, degradation and recovery, and supervision (periodic checks, automatic recovery,
// restart intensity), including the §7 regressions that concern them.
#include "test_support.h"

namespace exo::resource::testing {
namespace {

class HealthTest : public ResourceFixture {
 protected:
  // Runs the context until the resource reaches `state` (driven by its own supervision).
  void run_until_state(const std::shared_ptr<TestResource>& r, ResourceState state) {
    run_until(context, [&] { return r->state() == state; });
  }
};

// §7: the health hook was never called for most components. Ours always calls the one hook.
TEST_F(HealthTest, Regression_CheckHealthCallsTheHook) {
  auto r = make("r");
  run(r->initialize());
  const HealthResult result = run(r->check_health());
  EXPECT_TRUE(result.healthy);
  EXPECT_TRUE(result.probed);
  EXPECT_EQ(result.detail, "fine");
  EXPECT_EQ(r->health_calls, 1);
  EXPECT_TRUE(r->info().last_health.has_value());
}

TEST_F(HealthTest, NotProbedOutsideReadyAndDegraded) {
  auto r = make("r");
  HealthResult result = run(r->check_health());
  EXPECT_FALSE(result.probed);
  EXPECT_FALSE(result.healthy);
  EXPECT_NE(result.detail.find("UNINITIALIZED"), std::string::npos);
  EXPECT_EQ(r->health_calls, 0);
  EXPECT_EQ(r->state(), ResourceState::UNINITIALIZED);
}

TEST_F(HealthTest, HysteresisDegradesRecoversAndEscalates) {
  ResourceOptions options;
  options.health.failures_to_degrade = 2;
  options.health.successes_to_recover = 2;
  options.health.failures_to_error = 3;
  auto r = make("r", options);
  run(r->initialize());
  r->healthy = false;
  (void)run(r->check_health());
  EXPECT_EQ(r->state(), ResourceState::READY);  // one failure is not enough
  (void)run(r->check_health());
  EXPECT_EQ(r->state(), ResourceState::DEGRADED);
  r->healthy = true;
  (void)run(r->check_health());
  EXPECT_EQ(r->state(), ResourceState::DEGRADED);  // one success is not enough
  (void)run(r->check_health());
  EXPECT_EQ(r->state(), ResourceState::READY);
  r->healthy = false;
  for (int i = 0; i < 2; ++i) (void)run(r->check_health());
  ASSERT_EQ(r->state(), ResourceState::DEGRADED);
  (void)run(r->check_health());
  (void)run(r->check_health());
  EXPECT_EQ(r->state(), ResourceState::DEGRADED);
  const HealthResult last = run(r->check_health());  // third failure while degraded
  EXPECT_EQ(last.state_after, ResourceState::ERROR);
  EXPECT_EQ(r->state(), ResourceState::ERROR);
  ASSERT_TRUE(r->info().last_error.has_value());
  EXPECT_NE(r->info().last_error->message.find("probe says unhealthy"), std::string::npos);
}

TEST_F(HealthTest, ThrowingProbeIsAFailedCheckWithTheMessage) {
  auto r = make("r");
  run(r->initialize());
  r->health_throws = true;
  const HealthResult result = run(r->check_health());
  EXPECT_FALSE(result.healthy);
  EXPECT_EQ(result.detail, "probe exploded");
  EXPECT_EQ(r->state(), ResourceState::DEGRADED);
}

TEST_F(HealthTest, HangingProbeTimesOutAsAFailedCheck) {
  ResourceOptions options;
  options.health.timeout = 15ms;
  auto r = make("r", options);
  run(r->initialize());
  r->health_hangs = true;
  const HealthResult result = run(r->check_health());
  EXPECT_FALSE(result.healthy);
  EXPECT_NE(result.detail.find("timed out"), std::string::npos);
  EXPECT_EQ(r->state(), ResourceState::DEGRADED);
}

TEST_F(HealthTest, PeriodicChecksDegradeAndRecoverWithoutCallers) {
  ResourceOptions options;
  options.supervision.health_interval = 2ms;
  auto r = make("r", options);
  run(r->initialize());
  r->healthy = false;
  run_until_state(r, ResourceState::DEGRADED);
  r->healthy = true;
  run_until_state(r, ResourceState::READY);
  EXPECT_GE(r->health_calls, 2);
  run(r->cleanup());
}

// Nothing the resource started keeps running after cleanup: the context runs out of work.
TEST_F(HealthTest, SupervisionStopsAtCleanup) {
  ResourceOptions options;
  options.supervision.health_interval = 1ms;
  options.supervision.auto_recover = true;
  auto r = make("r", options);
  run(r->initialize());
  run_until(context, [&] { return r->health_calls >= 3; });
  run(r->cleanup());
  const int calls = r->health_calls;
  context.restart();
  context.run();  // returns only when no work is left
  EXPECT_EQ(r->health_calls, calls);
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
}

TEST_F(HealthTest, AutomaticRecoveryFromErrorReinitializes) {
  ResourceOptions options;
  options.supervision.auto_recover = true;
  options.supervision.recovery_backoff = {.initial = 1ms, .multiplier = 2.0, .max = 4ms, .jitter = 0.1};
  auto r = make("r", options);
  run(r->initialize());
  TransitionLog log;
  log.attach(*r);
  r->report_failure("connection lost");
  run_until(context, [&] { return log.entries.size() >= 3 && r->state() == ResourceState::READY; });
  EXPECT_EQ(log.states(), (std::vector<std::string>{"ERROR", "INITIALIZING", "READY"}));
  EXPECT_EQ(log.entries[0].cause, "failure reported: connection lost");
  EXPECT_EQ(r->info().restarts, 1U);
  EXPECT_EQ(r->init_calls, 2);
  EXPECT_EQ(r->cleanup_calls, 1);  // partial state cleaned before re-initializing
  run(r->cleanup());
}

TEST_F(HealthTest, RestartIntensityLimitGivesUpAndSaysSo) {
  ResourceOptions options;
  options.supervision.auto_recover = true;
  options.supervision.recovery_backoff = {.initial = 1ms, .multiplier = 1.0, .max = 1ms, .jitter = 0.0};
  options.supervision.max_restarts = 3;
  options.supervision.restart_period = std::chrono::hours(1);
  auto r = make("r", options);
  run(r->initialize());
  r->fail_first_inits = 1000;  // every re-initialization fails from now on
  r->report_failure("disk gone");
  run_until(context, [&] { return r->info().gave_up; });
  const auto info = r->info();
  EXPECT_EQ(info.restarts, 3U);
  EXPECT_EQ(r->state(), ResourceState::ERROR);
  ASSERT_TRUE(info.last_error.has_value());
  EXPECT_NE(info.last_error->message.find("gave up after 3 restarts"), std::string::npos);
  auto error = run(capture(r->ensure_ready()));
  EXPECT_TRUE(holds<UnavailableError>(error));
  EXPECT_NE(message_of(error).find("supervisor gave up"), std::string::npos);
  // reset() is the way back and clears the give-up.
  r->fail_first_inits = 0;
  run(r->reset());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_FALSE(r->info().gave_up);
  run(r->cleanup());
}

// §7-C2: a reconnect triggered from inside the health loop leaked a second loop that survived
// cleanup. Ours: the probe reports a failure, supervision recovers, and after cleanup nothing runs.
class SelfHealingResource : public TestResource {
 public:
  using TestResource::TestResource;
  int failures_to_report = 2;

 protected:
  asio::awaitable<HealthStatus> do_health_check() override {
    ++health_calls;
    if (failures_to_report > 0) {
      --failures_to_report;
      report_failure("probe found the connection dead");
    }
    co_return HealthStatus{true, "ok"};
  }
};

TEST_F(HealthTest, Regression_RecoveryFromInsideTheProbeLeavesNoExtraLoop) {
  ResourceOptions options;
  options.supervision.health_interval = 1ms;
  options.supervision.auto_recover = true;
  options.supervision.recovery_backoff = {.initial = 1ms, .multiplier = 1.0, .max = 1ms, .jitter = 0.0};
  auto r = make_resource<SelfHealingResource>(context.get_executor(), "self-healing", options, registry);
  run(r->initialize());
  run_until(context, [&] { return r->info().restarts == 2 && r->state() == ResourceState::READY; });
  run(r->cleanup());
  const int calls = r->health_calls;
  context.restart();
  context.run();
  EXPECT_EQ(r->health_calls, calls);
}

TEST_F(HealthTest, ProbeRacingCleanupIsNotApplied) {
  auto r = make("r");
  run(r->initialize());
  r->health_hangs = false;
  r->healthy = false;
  bool probe_done = false;
  std::exception_ptr probe_error;
  HealthResult result;
  // Start a probe and a cleanup back to back; the cleanup changes the state first.
  asio::co_spawn(context, r->check_health(), [&](std::exception_ptr e, HealthResult value) {
    probe_done = true;
    probe_error = e;
    result = value;
  });
  run(r->cleanup());
  run_until(context, [&] { return probe_done; });
  EXPECT_EQ(probe_error, nullptr);
  EXPECT_FALSE(result.healthy);
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
}

// Spawns one long-running task per run and records whether it was still running when its own
// resource's do_cleanup started (the defect: a re-initialization cleaned up under a live task).
class SpawningResource : public AsyncResource {
 public:
  using AsyncResource::AsyncResource;
  int runs = 0;
  int live_tasks = 0;
  int cleanups_with_live_task = 0;
  void fail(const std::string& why) { report_failure(why); }

 protected:
  asio::awaitable<void> do_initialize() override {
    ++runs;
    spawn(task());
    co_return;
  }
  asio::awaitable<void> do_cleanup() override {
    if (live_tasks > 0) ++cleanups_with_live_task;
    co_return;
  }

 private:
  asio::awaitable<void> task() {
    ++live_tasks;
    struct Done {
      int& counter;
      ~Done() { --counter; }
    } done{live_tasks};
    co_await sleep_for(std::chrono::hours(1));
  }
};

TEST_F(HealthTest, Regression_RecoveryEndsTheTasksOfTheFailedRunBeforeCleaningUp) {
  ResourceOptions options;
  options.supervision.auto_recover = true;
  options.supervision.recovery_backoff = {.initial = 1ms, .multiplier = 2.0, .max = 4ms, .jitter = 0.1};
  auto r =
      make_resource<SpawningResource>(context.get_executor(), ResourceIdentity{"s", "test", "s"}, options);
  run_sync(context, r->initialize());
  run_until(context, [&] { return r->live_tasks == 1; });
  r->fail("connection lost");
  run_until(context,
            [&] { return r->runs == 2 && r->state() == ResourceState::READY && r->live_tasks == 1; });
  EXPECT_EQ(r->cleanups_with_live_task, 0);  // the first run's task ended before the partial cleanup
  run_sync(context, r->cleanup());
  EXPECT_EQ(r->live_tasks, 0);
  EXPECT_EQ(r->cleanups_with_live_task, 0);
}

}  // namespace
}  // namespace exo::resource::testing
