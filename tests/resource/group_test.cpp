// ResourceGroup: dependency order, parallel start, rollback, reverse cleanup, roll-up, nesting.
#include "resource/resource_group.h"
#include "test_support.h"

namespace exo::resource::testing {
namespace {

class GroupTest : public ::testing::Test {
 protected:
  asio::io_context context;
  std::shared_ptr<ResourceRegistry> registry = std::make_shared<ResourceRegistry>();
  std::vector<std::string> events;  // "init:a", "cleanup:b" in hook order

  std::shared_ptr<TestResource> member(const std::string& id, ResourceOptions options = {}) {
    auto r = make_resource<TestResource>(context.get_executor(), id, options, registry);
    r->on_hook = [this, id](const std::string& hook) { events.push_back(hook + ":" + id); };
    return r;
  }
  std::shared_ptr<ResourceGroup> group(const std::string& id = "group") {
    return make_resource<ResourceGroup>(context.get_executor(), ResourceIdentity{id, "group", ""},
                                        ResourceGroup::group_defaults(), registry);
  }
  template <typename T>
  T run(asio::awaitable<T> operation) {
    return run_sync(context, std::move(operation));
  }
  std::size_t position(const std::string& event) const {
    return static_cast<std::size_t>(std::find(events.begin(), events.end(), event) - events.begin());
  }
};

TEST_F(GroupTest, InitializesInDependencyOrderAndCleansUpInReverse) {
  auto g = group();
  // transport <- server <- api, and an independent worker; added out of order on purpose.
  g->add("api", member("api"), {.depends_on = {"server"}});
  g->add("server", member("server"), {.depends_on = {"transport"}});
  g->add("transport", member("transport"));
  g->add("worker", member("worker"));
  run(g->initialize());
  EXPECT_EQ(g->state(), ResourceState::READY);
  EXPECT_LT(position("init:transport"), position("init:server"));
  EXPECT_LT(position("init:server"), position("init:api"));
  run(g->cleanup());
  EXPECT_EQ(g->state(), ResourceState::CLOSED);
  EXPECT_LT(position("cleanup:api"), position("cleanup:server"));
  EXPECT_LT(position("cleanup:server"), position("cleanup:transport"));
  for (const auto& name : g->member_names()) EXPECT_EQ(g->member(name)->state(), ResourceState::CLOSED);
  EXPECT_EQ(g->member("server")->info().depends_on, (std::vector<std::string>{"transport"}));
}

TEST_F(GroupTest, IndependentMembersStartInParallel) {
  auto g = group();
  auto a = member("a");
  auto b = member("b");
  a->init_gate = Gate(context.get_executor());
  b->init_gate = Gate(context.get_executor());
  g->add("a", a);
  g->add("b", b);
  bool done = false;
  asio::co_spawn(context, g->initialize(), [&](std::exception_ptr e) { done = e == nullptr; });
  // Both hooks are entered while neither has been allowed to finish.
  run_until(context, [&] { return a->init_entered.is_open() && b->init_entered.is_open(); });
  EXPECT_FALSE(done);
  a->init_gate.open();
  b->init_gate.open();
  run_until(context, [&] { return done; });
  EXPECT_EQ(g->state(), ResourceState::READY);
}

TEST_F(GroupTest, CyclesAreRejectedWithTheCycleNamed) {
  auto g = group();
  g->add("a", member("a"), {.depends_on = {"c"}});
  g->add("b", member("b"), {.depends_on = {"a"}});
  try {
    g->add("c", member("c"), {.depends_on = {"b"}});
    FAIL() << "cycle accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("a -> c -> b -> a"), std::string::npos) << e.what();
  }
  EXPECT_EQ(g->member_names(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(GroupTest, UnknownDependencyFailsInitializationNamingIt) {
  auto g = group();
  g->add("a", member("a"), {.depends_on = {"ghost"}});
  auto error = run(capture(g->initialize()));
  EXPECT_TRUE(holds<InitializationError>(error));
  EXPECT_NE(message_of(error).find("unknown member 'ghost'"), std::string::npos);
}

TEST_F(GroupTest, DuplicateNamesAndNullMembersAreRejected) {
  auto g = group();
  g->add("a", member("a"));
  EXPECT_THROW(g->add("a", member("a2")), std::invalid_argument);
  EXPECT_THROW(g->add("n", nullptr), std::invalid_argument);
}

// §7-E2: parallel init left siblings running and nothing was rolled back.
TEST_F(GroupTest, Regression_FailureCancelsSiblingsAndRollsBackInReverseOrder) {
  auto g = group();
  auto base = member("base");
  auto broken = member("broken");
  auto slow = member("slow");
  broken->fail_first_inits = 1;
  broken->init_gate = Gate(context.get_executor());
  slow->init_gate = Gate(context.get_executor());  // never opened: must be cancelled
  g->add("base", base);
  g->add("broken", broken, {.depends_on = {"base"}});
  g->add("slow", slow);
  g->add("after", member("after"), {.depends_on = {"broken"}});
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(context, g->initialize(), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  run_until(context, [&] { return broken->init_entered.is_open() && slow->init_entered.is_open(); });
  broken->init_gate.open();
  run_until(context, [&] { return done; });
  ASSERT_TRUE(holds<InitializationError>(error));
  EXPECT_NE(message_of(error).find("member 'broken' failed"), std::string::npos) << message_of(error);
  EXPECT_NE(message_of(error).find("injected init failure #1"), std::string::npos);
  EXPECT_EQ(slow->init_cancelled, 1);
  EXPECT_EQ(g->state(), ResourceState::ERROR);
  EXPECT_EQ(base->state(), ResourceState::CLOSED);
  EXPECT_EQ(slow->state(), ResourceState::CLOSED);
  EXPECT_EQ(broken->state(), ResourceState::CLOSED);
  EXPECT_EQ(g->member("after")->state(), ResourceState::UNINITIALIZED);  // never started
  EXPECT_EQ(g->get<TestResource>("after")->init_calls, 0);
  // base started first, so it is rolled back last.
  EXPECT_LT(position("cleanup:slow"), position("cleanup:base"));
  EXPECT_LT(position("cleanup:broken"), position("cleanup:base"));
}

TEST_F(GroupTest, ReinitializingAfterAFailureReopensMembers) {
  auto g = group();
  auto a = member("a");
  auto b = member("b");
  b->fail_first_inits = 1;
  g->add("a", a);
  g->add("b", b, {.depends_on = {"a"}});
  EXPECT_NE(run(capture(g->initialize())), nullptr);
  run(g->initialize());
  EXPECT_EQ(g->state(), ResourceState::READY);
  EXPECT_EQ(a->state(), ResourceState::READY);
  EXPECT_EQ(b->state(), ResourceState::READY);
  run(g->cleanup());
}

TEST_F(GroupTest, CleanupContinuesPastFailuresAndReportsAll) {
  auto g = group();
  auto a = member("a");
  auto b = member("b");
  auto c = member("c");
  a->cleanup_fails = true;
  c->cleanup_fails = true;
  g->add("a", a);
  g->add("b", b, {.depends_on = {"a"}});
  g->add("c", c, {.depends_on = {"b"}});
  run(g->initialize());
  auto error = run(capture(g->cleanup()));
  ASSERT_TRUE(holds<CleanupError>(error));
  EXPECT_NE(message_of(error).find("'a'"), std::string::npos);
  EXPECT_NE(message_of(error).find("'c'"), std::string::npos);
  EXPECT_EQ(g->state(), ResourceState::CLOSED);
  for (auto* r : {a.get(), b.get(), c.get()}) EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_EQ(b->cleanup_calls, 1);
}

TEST_F(GroupTest, StateRollsUpFromRequiredMembersOnly) {
  auto g = group();
  auto required = member("required");
  auto optional = member("optional");
  g->add("required", required);
  g->add("optional", optional, {.depends_on = {}, .required = false});
  run(g->initialize());
  ASSERT_EQ(g->state(), ResourceState::READY);

  optional->report_failure("optional broke");
  run_until(context, [&] { return optional->state() == ResourceState::ERROR; });
  context.poll();
  EXPECT_EQ(g->state(), ResourceState::READY);  // optional members never change the group's state
  const HealthResult with_optional_down = run(g->check_health());
  EXPECT_TRUE(with_optional_down.healthy);
  EXPECT_NE(with_optional_down.detail.find("optional member 'optional' is ERROR"), std::string::npos);

  required->healthy = false;
  (void)run(required->check_health());
  run_until(context, [&] { return g->state() == ResourceState::DEGRADED; });
  required->healthy = true;
  (void)run(required->check_health());
  run_until(context, [&] { return g->state() == ResourceState::READY; });

  required->report_failure("required broke");
  run_until(context, [&] { return g->state() == ResourceState::DEGRADED; });
  const HealthResult failed = run(g->check_health());
  EXPECT_FALSE(failed.healthy);
  EXPECT_NE(
      failed.detail.find("required member 'required' is ERROR (no automatic recovery left): required broke"),
      std::string::npos)
      << failed.detail;

  // Brought back from outside (as `exo resources reset` does): the group follows.
  run(required->reset());
  run_until(context, [&] { return g->state() == ResourceState::READY; });
  run(g->cleanup());
}

TEST_F(GroupTest, HealthCheckReportsMemberProblems) {
  auto g = group();
  auto a = member("a");
  g->add("a", a);
  run(g->initialize());
  EXPECT_TRUE(run(g->check_health()).healthy);
  a->healthy = false;
  (void)run(a->check_health());
  const HealthResult result = run(g->check_health());
  EXPECT_FALSE(result.healthy);
  EXPECT_NE(result.detail.find("required member 'a' is DEGRADED"), std::string::npos);
  run(g->cleanup());
}

TEST_F(GroupTest, TypedAccessAndNestedGroups) {
  auto outer = group("outer");
  auto inner = group("inner");
  auto leaf = member("leaf");
  inner->add("leaf", leaf);
  outer->add("inner", inner);
  outer->add("top", member("top"), {.depends_on = {"inner"}});
  run(outer->initialize());
  EXPECT_EQ(outer->get<ResourceGroup>("inner")->get<TestResource>("leaf"), leaf);
  EXPECT_THROW((void)outer->get<TestResource>("inner"), std::invalid_argument);
  EXPECT_THROW((void)outer->member("missing"), std::out_of_range);
  EXPECT_EQ(leaf->state(), ResourceState::READY);
  EXPECT_LT(position("init:leaf"), position("init:top"));
  run(outer->cleanup());
  EXPECT_EQ(leaf->state(), ResourceState::CLOSED);
  EXPECT_LT(position("cleanup:top"), position("cleanup:leaf"));
}

TEST_F(GroupTest, CleanupDuringInitializationCancelsAndClosesEverything) {
  auto g = group();
  auto a = member("a");
  auto b = member("b");
  b->init_gate = Gate(context.get_executor());
  g->add("a", a);
  g->add("b", b, {.depends_on = {"a"}});
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(context, g->initialize(), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  run_until(context, [&] { return b->init_entered.is_open(); });
  run(g->cleanup());
  run_until(context, [&] { return done; });
  EXPECT_TRUE(holds<ClosedError>(error));
  EXPECT_EQ(g->state(), ResourceState::CLOSED);
  EXPECT_EQ(a->state(), ResourceState::CLOSED);
  EXPECT_EQ(b->state(), ResourceState::CLOSED);
  EXPECT_EQ(b->init_cancelled, 1);
}

TEST_F(GroupTest, AddingToARunningGroupIsRefused) {
  auto g = group();
  g->add("a", member("a"));
  run(g->initialize());
  EXPECT_THROW(g->add("b", member("b")), std::logic_error);
  run(g->cleanup());
}

}  // namespace
}  // namespace exo::resource::testing
