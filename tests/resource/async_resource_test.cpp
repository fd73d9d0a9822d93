// Initialization and cleanup paths, state transitions, and the regression tests for the defects of
// the Python original (asyncresource spec §7) that concern the core lifecycle.
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>

#include "test_support.h"

namespace exo::resource::testing {
namespace {

using AsyncResourceTest = ResourceFixture;

TEST_F(AsyncResourceTest, InitializeReachesReadyAndIsIdempotent) {
  auto r = make("r");
  EXPECT_EQ(r->state(), ResourceState::UNINITIALIZED);
  run(r->initialize());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_TRUE(r->ready());
  run(r->initialize());
  EXPECT_EQ(r->init_calls, 1);
  const auto info = r->info();
  EXPECT_TRUE(info.ready_at.has_value());
  EXPECT_EQ(info.generation, 1U);
  EXPECT_EQ(info.identity.display_name, "test 'r'");
}

TEST_F(AsyncResourceTest, CleanupClosesOnceAndIsIdempotent) {
  auto r = make("r");
  run(r->initialize());
  run(r->cleanup());
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  run(r->cleanup());
  EXPECT_EQ(r->cleanup_calls, 1);
}

TEST_F(AsyncResourceTest, CleanupBeforeInitializeRunsNoHook) {
  auto r = make("r");
  run(r->cleanup());
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_EQ(r->cleanup_calls, 0);
  EXPECT_EQ(r->init_calls, 0);
}

TEST_F(AsyncResourceTest, FailureMovesToErrorAndKeepsTheCause) {
  auto r = make("r");
  r->fail_first_inits = 1;
  auto error = run(capture(r->initialize()));
  ASSERT_TRUE(holds<InitializationError>(error));
  EXPECT_NE(message_of(error).find("injected init failure #1"), std::string::npos);
  EXPECT_NE(message_of(error).find("test 'r'"), std::string::npos);
  EXPECT_EQ(r->state(), ResourceState::ERROR);
  const auto info = r->info();
  ASSERT_TRUE(info.last_error.has_value());
  EXPECT_NE(info.last_error->message.find("injected init failure #1"), std::string::npos);
  EXPECT_EQ(info.failure_count, 1U);
}

TEST_F(AsyncResourceTest, InitializeFromErrorCleansPartialStateFirst) {
  auto r = make("r");
  r->fail_first_inits = 1;
  std::vector<std::string> hooks;
  r->on_hook = [&](const std::string& hook) { hooks.push_back(hook); };
  (void)run(capture(r->initialize()));
  run(r->initialize());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(hooks, (std::vector<std::string>{"init", "cleanup", "init"}));
}

TEST_F(AsyncResourceTest, RetryPolicyRetriesWithCleanupBetweenAttempts) {
  ResourceOptions options;
  options.init_retry.max_attempts = 3;
  options.init_retry.backoff = {.initial = 1ms, .multiplier = 2.0, .max = 5ms, .jitter = 0.5};
  auto r = make("r", options);
  r->fail_first_inits = 2;
  TransitionLog log;
  log.attach(*r);
  run(r->initialize());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(r->init_calls, 3);
  EXPECT_EQ(r->cleanup_calls, 2);
  // One attempt from the callers' point of view: a single INITIALIZING -> READY.
  EXPECT_EQ(log.states(), (std::vector<std::string>{"INITIALIZING", "READY"}));
  EXPECT_NE(log.entries.back().cause.find("after 3 attempts"), std::string::npos);
}

TEST_F(AsyncResourceTest, RetryStopsAtPermanentError) {
  ResourceOptions options;
  options.init_retry.max_attempts = 5;
  options.init_retry.backoff.initial = 1ms;
  auto r = make("r", options);
  r->init_fails_permanently = true;
  auto error = run(capture(r->initialize()));
  EXPECT_TRUE(holds<InitializationError>(error));
  EXPECT_EQ(r->init_calls, 1);
}

TEST_F(AsyncResourceTest, RetryHonoursTotalDeadline) {
  ResourceOptions options;
  options.init_retry.max_attempts = 1000;
  options.init_retry.backoff = {.initial = 5ms, .multiplier = 1.0, .max = 5ms, .jitter = 0.0};
  options.init_retry.total_deadline = 60ms;
  auto r = make("r", options);
  r->fail_first_inits = 1000000;
  auto error = run(capture(r->initialize()));
  EXPECT_TRUE(holds<InitializationError>(error));
  EXPECT_LT(r->init_calls, 20);
  EXPECT_GE(r->init_calls, 2);
}

TEST_F(AsyncResourceTest, InitTimeoutMovesToErrorAndCancelsTheHook) {
  ResourceOptions options;
  options.init_timeout = 20ms;
  auto r = make("r", options);
  r->init_gate = Gate(context.get_executor());  // never opened
  auto error = run(capture(r->initialize()));
  EXPECT_TRUE(holds<InitializationError>(error));
  EXPECT_NE(message_of(error).find("timed out"), std::string::npos);
  EXPECT_EQ(r->state(), ResourceState::ERROR);
  EXPECT_EQ(r->init_cancelled, 1);
}

TEST_F(AsyncResourceTest, ClosedIsTerminalForInitializeAndResetReopens) {
  auto r = make("r");
  run(r->initialize());
  run(r->cleanup());
  auto error = run(capture(r->initialize()));
  EXPECT_TRUE(holds<ClosedError>(error));
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_EQ(r->init_calls, 1);
  run(r->reset());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(r->init_calls, 2);
  EXPECT_EQ(r->info().generation, 2U);
}

TEST_F(AsyncResourceTest, ResetOfRunningResourceCleansUpThenInitializes) {
  auto r = make("r");
  run(r->initialize());
  std::vector<std::string> hooks;
  r->on_hook = [&](const std::string& hook) { hooks.push_back(hook); };
  TransitionLog log;
  log.attach(*r);
  run(r->reset());
  EXPECT_EQ(hooks, (std::vector<std::string>{"cleanup", "init"}));
  EXPECT_EQ(log.states(), (std::vector<std::string>{"CLOSING", "CLOSED", "INITIALIZING", "READY"}));
}

TEST_F(AsyncResourceTest, CleanupFailureIsRecordedAndStillEndsClosed) {
  auto r = make("r");
  r->cleanup_fails = true;
  run(r->initialize());
  auto error = run(capture(r->cleanup()));
  EXPECT_TRUE(holds<CleanupError>(error));
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  ASSERT_TRUE(r->info().last_error.has_value());
  EXPECT_NE(r->info().last_error->message.find("injected cleanup failure"), std::string::npos);
  EXPECT_EQ(run(capture(r->cleanup())), nullptr);  // idempotent afterwards
}

TEST_F(AsyncResourceTest, TransitionListenersSeeEveryChangeInOrder) {
  auto r = make("r");
  TransitionLog log;
  log.attach(*r);
  r->add_listener([](const Transition&) { throw std::runtime_error("a broken listener"); });
  run(r->initialize());
  run(r->cleanup());
  ASSERT_EQ(log.entries.size(), 4U);
  EXPECT_EQ(log.states(), (std::vector<std::string>{"INITIALIZING", "READY", "CLOSING", "CLOSED"}));
  EXPECT_EQ(log.entries[0].from, ResourceState::UNINITIALIZED);
  EXPECT_EQ(log.entries[2].from, ResourceState::READY);
  EXPECT_EQ(log.entries[0].resource_id, "r");
  EXPECT_EQ(log.entries[0].cause, "initialize");
  for (std::size_t i = 1; i < log.entries.size(); ++i)
    EXPECT_LE(log.entries[i - 1].time, log.entries[i].time);
}

TEST_F(AsyncResourceTest, IllegalTransitionIsAnObservableProgrammingError) {
  auto r = make("r");
  run(r->initialize());
  std::exception_ptr error;
  asio::post(r->strand(), [&] {
    try {
      r->transition(ResourceState::UNINITIALIZED, "bogus");
    } catch (...) {
      error = std::current_exception();
    }
  });
  run_until(context, [&] { return error != nullptr; });
  try {
    std::rethrow_exception(error);
  } catch (const IllegalTransition& e) {
    EXPECT_EQ(e.from(), ResourceState::READY);
    EXPECT_EQ(e.to(), ResourceState::UNINITIALIZED);
  }
  EXPECT_EQ(r->state(), ResourceState::READY);
}

TEST(TransitionTable, MatchesTheDocumentedTable) {
  using S = ResourceState;
  const std::set<std::pair<S, S>> legal = {
      {S::UNINITIALIZED, S::INITIALIZING},
      {S::UNINITIALIZED, S::CLOSED},
      {S::INITIALIZING, S::READY},
      {S::INITIALIZING, S::ERROR},
      {S::INITIALIZING, S::CLOSING},
      {S::READY, S::DEGRADED},
      {S::READY, S::ERROR},
      {S::READY, S::CLOSING},
      {S::DEGRADED, S::READY},
      {S::DEGRADED, S::ERROR},
      {S::DEGRADED, S::CLOSING},
      {S::ERROR, S::INITIALIZING},
      {S::ERROR, S::CLOSING},
      {S::CLOSING, S::CLOSED},
      {S::CLOSED, S::INITIALIZING},
  };
  for (S from : kAllStates) {
    for (S to : kAllStates) {
      EXPECT_EQ(is_legal_transition(from, to), legal.contains({from, to}))
          << to_string(from) << " -> " << to_string(to);
    }
    EXPECT_EQ(state_from_string(to_string(from)), from);
  }
  EXPECT_FALSE(state_from_string("BOGUS").has_value());
}

TEST_F(AsyncResourceTest, InvalidOptionsAreRejectedAtConstruction) {
  ResourceOptions options;
  options.init_retry.max_attempts = 0;
  EXPECT_THROW(make("bad", options), std::invalid_argument);
  EXPECT_THROW(make_resource<TestResource>(context.get_executor(), ""), std::invalid_argument);
}

// ---------------------------------------------------------------- concurrency of initialize

TEST_F(AsyncResourceTest, ConcurrentCallersJoinOneAttempt) {
  auto r = make("r");
  r->init_gate = Gate(context.get_executor());
  constexpr int kCallers = 50;
  int succeeded = 0;
  for (int i = 0; i < kCallers; ++i) {
    asio::co_spawn(context, r->initialize(), [&](std::exception_ptr e) { succeeded += e ? 0 : 1; });
  }
  run_until(context, [&] { return r->init_entered.is_open(); });
  r->init_gate.open();
  run_until(context, [&] { return succeeded == kCallers; });
  EXPECT_EQ(r->init_calls, 1);
  EXPECT_EQ(r->state(), ResourceState::READY);
}

// §7-B: N concurrent callers of a failing init each re-ran it. Ours: one attempt, N identical errors.
TEST_F(AsyncResourceTest, Regression_ConcurrentCallersOfFailingInitShareOneAttempt) {
  auto r = make("r");
  r->fail_first_inits = 100;
  r->init_gate = Gate(context.get_executor());
  std::vector<std::string> errors;
  constexpr int kCallers = 20;
  for (int i = 0; i < kCallers; ++i) {
    asio::co_spawn(context, r->initialize(), [&](std::exception_ptr e) { errors.push_back(message_of(e)); });
  }
  run_until(context, [&] { return r->init_entered.is_open(); });
  r->init_gate.open();
  run_until(context, [&] { return errors.size() == kCallers; });
  EXPECT_EQ(r->init_calls, 1);
  for (const auto& e : errors) EXPECT_EQ(e, errors.front());
  EXPECT_EQ(r->state(), ResourceState::ERROR);
}

// §7-B: per-caller timeouts were ignored. Ours bound only the caller's wait, not the attempt.
TEST_F(AsyncResourceTest, Regression_PerCallerTimeoutBoundsOnlyThatCaller) {
  auto r = make("r");
  r->init_gate = Gate(context.get_executor());
  std::exception_ptr impatient_error;
  bool impatient_done = false;
  bool patient_done = false;
  std::exception_ptr patient_error;
  asio::co_spawn(context, r->initialize(), [&](std::exception_ptr e) {
    patient_done = true;
    patient_error = e;
  });
  asio::co_spawn(context, r->initialize(10ms), [&](std::exception_ptr e) {
    impatient_done = true;
    impatient_error = e;
  });
  run_until(context, [&] { return impatient_done; });
  EXPECT_TRUE(holds<TimeoutError>(impatient_error));
  EXPECT_FALSE(patient_done);
  EXPECT_EQ(r->state(), ResourceState::INITIALIZING);
  r->init_gate.open();
  run_until(context, [&] { return patient_done; });
  EXPECT_EQ(patient_error, nullptr);
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(r->init_calls, 1);
  EXPECT_EQ(r->init_cancelled, 0);
}

// §7-B1: a cancelled caller wedged the state in INITIALIZING. Ours: the attempt goes on for others.
TEST_F(AsyncResourceTest, Regression_CancelledCallerNeverWedgesTheState) {
  auto r = make("r");
  r->init_gate = Gate(context.get_executor());
  asio::cancellation_signal cancel;
  std::exception_ptr cancelled_error;
  bool cancelled_done = false;
  asio::co_spawn(context, r->initialize(),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                   cancelled_done = true;
                   cancelled_error = e;
                 }));
  run_until(context, [&] { return r->init_entered.is_open(); });
  cancel.emit(asio::cancellation_type::terminal);
  run_until(context, [&] { return cancelled_done; });
  ASSERT_NE(cancelled_error, nullptr);
  EXPECT_EQ(r->state(), ResourceState::INITIALIZING);
  EXPECT_EQ(r->init_cancelled, 0);
  r->init_gate.open();
  run(r->initialize(1s));
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(r->init_calls, 1);
}

// §7-B: an initialize racing cleanup resurrected a CLOSED resource. Ours: cleanup wins, init fails.
TEST_F(AsyncResourceTest, Regression_CleanupDuringInitializeCancelsItAndNothingResurrects) {
  auto r = make("r");
  r->init_gate = Gate(context.get_executor());
  std::exception_ptr init_error;
  bool init_done = false;
  asio::co_spawn(context, r->initialize(), [&](std::exception_ptr e) {
    init_done = true;
    init_error = e;
  });
  run_until(context, [&] { return r->init_entered.is_open(); });
  run(r->cleanup());
  run_until(context, [&] { return init_done; });
  EXPECT_TRUE(holds<ClosedError>(init_error));
  EXPECT_EQ(r->init_cancelled, 1);
  EXPECT_EQ(r->cleanup_calls, 1);
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_TRUE(holds<ClosedError>(run(capture(r->initialize()))));
  EXPECT_TRUE(holds<ClosedError>(run(capture(r->ensure_ready()))));
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
}

// §1.5: a second concurrent cleanup returned before the first finished. Ours: both wait for it.
TEST_F(AsyncResourceTest, Regression_ConcurrentCleanupsAllWaitForCompletion) {
  auto r = make("r");
  run(r->initialize());
  r->cleanup_gate = Gate(context.get_executor());
  int done = 0;
  asio::co_spawn(context, r->cleanup(), [&](std::exception_ptr) { ++done; });
  asio::co_spawn(context, r->cleanup(), [&](std::exception_ptr) { ++done; });
  run_until(context, [&] { return r->cleanup_entered.is_open(); });
  context.poll();
  EXPECT_EQ(done, 0);
  EXPECT_EQ(r->state(), ResourceState::CLOSING);
  r->cleanup_gate.open();
  run_until(context, [&] { return done == 2; });
  EXPECT_EQ(r->cleanup_calls, 1);
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
}

// A caller that gives up on cleanup cannot leave the resource CLOSING.
TEST_F(AsyncResourceTest, CancelledCleanupCallerDoesNotStopTheCleanup) {
  auto r = make("r");
  run(r->initialize());
  r->cleanup_gate = Gate(context.get_executor());
  asio::cancellation_signal cancel;
  bool done = false;
  asio::co_spawn(context, r->cleanup(),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr) { done = true; }));
  run_until(context, [&] { return r->cleanup_entered.is_open(); });
  cancel.emit(asio::cancellation_type::terminal);
  run_until(context, [&] { return done; });
  EXPECT_EQ(r->state(), ResourceState::CLOSING);
  r->cleanup_gate.open();
  run(r->cleanup());
  EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_EQ(r->cleanup_calls, 1);
}

// ---------------------------------------------------------------- ensure_ready

TEST_F(AsyncResourceTest, EnsureReadyInitializesFromUninitialized) {
  auto r = make("r");
  run(r->ensure_ready());
  EXPECT_EQ(r->state(), ResourceState::READY);
  run(r->ensure_ready());
  EXPECT_EQ(r->init_calls, 1);
}

TEST_F(AsyncResourceTest, EnsureReadyRecoversFromErrorWithCleanupFirst) {
  auto r = make("r");
  r->fail_first_inits = 1;
  (void)run(capture(r->initialize()));
  std::vector<std::string> hooks;
  r->on_hook = [&](const std::string& hook) { hooks.push_back(hook); };
  run(r->ensure_ready());
  EXPECT_EQ(r->state(), ResourceState::READY);
  EXPECT_EQ(hooks, (std::vector<std::string>{"cleanup", "init"}));
}

TEST_F(AsyncResourceTest, EnsureReadyWithFailPolicyNamesResourceAndLastError) {
  ResourceOptions options;
  options.error_policy = ErrorPolicy::FAIL;
  auto r = make("engine-1", options);
  r->fail_first_inits = 1;
  (void)run(capture(r->initialize()));
  auto error = run(capture(r->ensure_ready()));
  ASSERT_TRUE(holds<UnavailableError>(error));
  EXPECT_NE(message_of(error).find("test 'engine-1'"), std::string::npos);
  EXPECT_NE(message_of(error).find("injected init failure #1"), std::string::npos);
  EXPECT_EQ(r->init_calls, 1);
}

TEST_F(AsyncResourceTest, EnsureReadyInDegradedFollowsPolicy) {
  ResourceOptions proceed;
  ResourceOptions refuse;
  refuse.degraded_policy = DegradedPolicy::REFUSE;
  auto a = make("a", proceed);
  auto b = make("b", refuse);
  for (auto* r : {a.get(), b.get()}) {
    run(r->initialize());
    r->healthy = false;
    (void)run(r->check_health());
    ASSERT_EQ(r->state(), ResourceState::DEGRADED);
  }
  EXPECT_EQ(run(capture(a->ensure_ready())), nullptr);
  auto error = run(capture(b->ensure_ready()));
  EXPECT_TRUE(holds<UnavailableError>(error));
  EXPECT_NE(message_of(error).find("probe says unhealthy"), std::string::npos);
}

TEST_F(AsyncResourceTest, EnsureReadyJoinsInitializationInFlight) {
  auto r = make("r");
  r->init_gate = Gate(context.get_executor());
  bool done = false;
  asio::co_spawn(context, r->initialize(), [&](std::exception_ptr) {});
  run_until(context, [&] { return r->init_entered.is_open(); });
  asio::co_spawn(context, r->ensure_ready(), [&](std::exception_ptr e) { done = e == nullptr; });
  context.poll();
  EXPECT_FALSE(done);
  r->init_gate.open();
  run_until(context, [&] { return done; });
  EXPECT_EQ(r->init_calls, 1);
}

// ---------------------------------------------------------------- registry

TEST_F(AsyncResourceTest, RegistrySeesLiveResourcesByTypeUntilDestroyed) {
  auto a = make("a");
  auto b = make_resource<TestResource>(context.get_executor(), "b", ResourceOptions{}, registry, "other");
  EXPECT_EQ(registry->size(), 2U);
  EXPECT_EQ(registry->by_type("test").size(), 1U);
  EXPECT_EQ(registry->find("b"), b);
  run(a->initialize());
  run(a->cleanup());
  EXPECT_EQ(registry->find("a"), a);  // CLOSED resources stay visible
  a.reset();
  EXPECT_EQ(registry->find("a"), nullptr);
  EXPECT_EQ(registry->size(), 1U);
  EXPECT_EQ(registry->snapshot_by_type().count("other"), 1U);
}

TEST_F(AsyncResourceTest, RegistryRejectsDuplicateLiveIdsAndRegistriesAreIndependent) {
  auto a = make("same");
  EXPECT_THROW(make("same"), std::invalid_argument);
  auto other_registry = std::make_shared<ResourceRegistry>();
  auto b = make_resource<TestResource>(context.get_executor(), "same", ResourceOptions{}, other_registry);
  EXPECT_EQ(registry->find("same"), a);
  EXPECT_EQ(other_registry->find("same"), b);
}

TEST_F(AsyncResourceTest, RegistryObserversSeeTransitionsOfEveryResource) {
  std::vector<std::string> seen;
  const auto id = registry->add_observer(
      [&](const Transition& t) { seen.push_back(t.resource_id + ":" + std::string(to_string(t.to))); });
  auto a = make("a");
  auto b = make("b");
  run(a->initialize());
  run(b->cleanup());
  registry->remove_observer(id);
  run(a->cleanup());
  EXPECT_EQ(seen, (std::vector<std::string>{"a:INITIALIZING", "a:READY", "b:CLOSED"}));
}

}  // namespace
}  // namespace exo::resource::testing
