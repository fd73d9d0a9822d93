// ResourcePool: leases, bounds, FIFO hand-off, validation on borrow, idle eviction, close, and the
// §7-D regressions of the Python pool.
#include "resource/resource_pool.h"
#include "test_support.h"

namespace exo::resource::testing {
namespace {

using Pool = ResourcePool<TestResource>;

class PoolTest : public ::testing::Test {
 protected:
  asio::io_context context;
  std::shared_ptr<ResourceRegistry> registry = std::make_shared<ResourceRegistry>();
  std::vector<std::shared_ptr<TestResource>> created;
  std::function<void(TestResource&)> customize;

  std::shared_ptr<Pool> make_pool(PoolOptions options) {
    auto factory = [this](std::uint64_t sequence) {
      // Deliberately the same id for every pooled resource (no registry): slots are keyed by handle.
      auto r = make_resource<TestResource>(context.get_executor(), "conn", ResourceOptions{}, nullptr);
      if (customize) customize(*r);
      (void)sequence;
      created.push_back(r);
      return r;
    };
    return make_resource<Pool>(context.get_executor(), ResourceIdentity{"pool", "pool", ""}, factory, options,
                               ResourceOptions{}, registry);
  }
  template <typename T>
  T run(asio::awaitable<T> operation) {
    return run_sync(context, std::move(operation));
  }
};

TEST_F(PoolTest, AcquireCreatesInitializesAndReusesMostRecentFirst) {
  auto pool = make_pool({.max_size = 4, .min_size = 0});
  {
    auto first = run(pool->acquire());
    auto second = run(pool->acquire());
    EXPECT_EQ(first->state(), ResourceState::READY);
    EXPECT_NE(first.get(), second.get());
    EXPECT_EQ(pool->stats().leased, 2U);
    first.release();
    second.release();
  }
  run_until(context, [&] { return pool->stats().idle == 2; });
  auto again = run(pool->acquire());
  EXPECT_EQ(created.size(), 2U);
  EXPECT_TRUE(again.get() == created[1]);  // released last, reused first
  EXPECT_EQ(pool->state(), ResourceState::READY);
}

TEST_F(PoolTest, MinSizeIsCreatedByInitialize) {
  auto pool = make_pool({.max_size = 4, .min_size = 2});
  run(pool->initialize());
  EXPECT_EQ(pool->stats().idle, 2U);
  EXPECT_EQ(created.size(), 2U);
}

// §7-D1: slots keyed by resource id collided. Ours: identical ids are distinct slots.
TEST_F(PoolTest, Regression_IdenticalResourceIdsDoNotCollide) {
  auto pool = make_pool({.max_size = 3});
  auto a = run(pool->acquire());
  auto b = run(pool->acquire());
  auto c = run(pool->acquire());
  EXPECT_EQ(a->id(), b->id());
  EXPECT_EQ(pool->stats().leased, 3U);
  a.release();
  b.release();
  c.release();
  run_until(context, [&] { return pool->stats().idle == 3; });
  EXPECT_EQ(pool->stats().total, 3U);
}

TEST_F(PoolTest, ExhaustedPoolHandsTheNextReleaseToTheOldestWaiter) {
  auto pool = make_pool({.max_size = 1});
  auto held = std::make_unique<Pool::Lease>(run(pool->acquire()));
  std::vector<int> served;
  std::vector<Pool::Lease> leases;
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(context, pool->acquire(), [&, i](std::exception_ptr e, Pool::Lease lease) {
      ASSERT_EQ(e, nullptr);
      served.push_back(i);
      leases.push_back(std::move(lease));
    });
  }
  run_until(context, [&] { return pool->stats().waiters == 2; });
  EXPECT_TRUE(served.empty());
  held.reset();
  run_until(context, [&] { return served.size() == 1; });
  EXPECT_EQ(served.front(), 0);
  leases.clear();
  run_until(context, [&] { return served.size() == 2; });
  EXPECT_EQ(served, (std::vector<int>{0, 1}));
  EXPECT_EQ(created.size(), 1U);
}

TEST_F(PoolTest, AcquireTimesOutWhenExhausted) {
  auto pool = make_pool({.max_size = 1});
  auto held = run(pool->acquire());
  auto error = run(capture(
      [](std::shared_ptr<Pool> p) -> asio::awaitable<void> { (void)co_await p->acquire(10ms); }(pool)));
  EXPECT_TRUE(holds<TimeoutError>(error));
  EXPECT_NE(message_of(error).find("1 of 1 in use"), std::string::npos);
  EXPECT_EQ(pool->stats().waiters, 0U);
}

// §7-D2: stop() stranded waiters forever. Ours: closing wakes every waiter with ClosedError.
TEST_F(PoolTest, Regression_CloseWakesEveryWaiterAndCleansUpEveryResource) {
  auto pool = make_pool({.max_size = 1,
                         .min_size = 0,
                         .idle_timeout = {},
                         .acquire_timeout = std::chrono::hours(1),
                         .drain_timeout = 5s});
  auto held = std::make_unique<Pool::Lease>(run(pool->acquire()));
  std::vector<std::exception_ptr> errors;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(context, pool->acquire(), [&](std::exception_ptr e, Pool::Lease) { errors.push_back(e); });
  }
  run_until(context, [&] { return pool->stats().waiters == 3; });
  bool closed = false;
  asio::co_spawn(context, pool->cleanup(), [&](std::exception_ptr) { closed = true; });
  run_until(context, [&] { return errors.size() == 3; });
  for (const auto& e : errors) EXPECT_TRUE(holds<ClosedError>(e));
  EXPECT_FALSE(closed);  // still draining the outstanding lease
  held.reset();
  run_until(context, [&] { return closed; });
  EXPECT_EQ(pool->state(), ResourceState::CLOSED);
  for (const auto& r : created) EXPECT_EQ(r->state(), ResourceState::CLOSED);
  EXPECT_TRUE(holds<ClosedError>(run(capture(
      [](std::shared_ptr<Pool> p) -> asio::awaitable<void> { (void)co_await p->acquire(10ms); }(pool)))));
}

// §7-D4: unhealthy resources were handed out. Ours: only READY is leased; broken ones are replaced.
TEST_F(PoolTest, Regression_BrokenResourcesAreNeverHandedOut) {
  auto pool = make_pool({.max_size = 2});
  {
    auto lease = run(pool->acquire());
    lease->healthy = false;
    (void)run(lease->check_health());
    ASSERT_EQ(lease->state(), ResourceState::DEGRADED);
  }
  run_until(context, [&] { return pool->stats().discarded == 1; });
  auto fresh = run(pool->acquire());
  EXPECT_EQ(fresh->state(), ResourceState::READY);
  EXPECT_TRUE(fresh.get() == created[1]);
  // An idle resource that broke while idle is discarded on borrow.
  fresh.release();
  run_until(context, [&] { return pool->stats().idle == 1; });
  created[1]->healthy = false;
  (void)run(created[1]->check_health());
  auto replacement = run(pool->acquire());
  EXPECT_TRUE(replacement.get() == created[2]);
  run_until(context, [&] { return created[1]->state() == ResourceState::CLOSED; });
}

// §7-D3: creation ran under the pool lock. Ours: a slow creation does not block other acquires.
TEST_F(PoolTest, Regression_SlowCreationDoesNotBlockOtherAcquires) {
  auto pool = make_pool({.max_size = 2});
  { auto warm = run(pool->acquire()); }
  run_until(context, [&] { return pool->stats().idle == 1; });
  auto held = run(pool->acquire());  // takes the idle one
  customize = [](TestResource& r) { r.init_gate = Gate(r.strand()); };
  bool slow_done = false;
  asio::co_spawn(context, pool->acquire(), [&](std::exception_ptr, Pool::Lease) { slow_done = true; });
  run_until(context, [&] { return created.size() == 2 && created[1]->init_entered.is_open(); });
  // While the second resource is still initializing, a release and re-acquire go through.
  held.release();
  auto quick = run(pool->acquire(1s));
  EXPECT_TRUE(quick.get() == created[0]);
  EXPECT_FALSE(slow_done);
  created[1]->init_gate.open();
  run_until(context, [&] { return slow_done; });
}

TEST_F(PoolTest, FailedCreationFreesCapacityAndReportsTheCause) {
  auto pool = make_pool({.max_size = 1});
  customize = [](TestResource& r) { r.fail_first_inits = 1; };
  auto error = run(
      capture([](std::shared_ptr<Pool> p) -> asio::awaitable<void> { (void)co_await p->acquire(); }(pool)));
  EXPECT_TRUE(holds<InitializationError>(error));
  customize = nullptr;
  auto lease = run(pool->acquire());
  EXPECT_EQ(lease->state(), ResourceState::READY);
  EXPECT_EQ(pool->stats().total, 1U);
}

// §7-D5: idle eviction measured age since creation. Ours: time since last release, keeping min_size.
TEST_F(PoolTest, Regression_IdleEvictionUsesTimeSinceReleaseAndKeepsMinSize) {
  auto pool = make_pool({.max_size = 3, .min_size = 1, .idle_timeout = 20ms});
  run(pool->initialize());
  {
    auto a = run(pool->acquire());
    auto b = run(pool->acquire());
    auto c = run(pool->acquire());
  }
  run_until(context, [&] { return pool->stats().evicted == 2; });
  EXPECT_EQ(pool->stats().total, 1U);
  // A resource in use is never evicted however old it is.
  auto kept = run(pool->acquire());
  const auto evicted_before = pool->stats().evicted;
  run(sleep_for(60ms));
  EXPECT_EQ(pool->stats().evicted, evicted_before);
  EXPECT_EQ(kept->state(), ResourceState::READY);
  kept.release();
  run(pool->cleanup());
}

TEST_F(PoolTest, InvalidOptionsAreRejected) {
  EXPECT_THROW(make_pool({.max_size = 0}), std::invalid_argument);
  EXPECT_THROW(make_pool({.max_size = 1, .min_size = 2}), std::invalid_argument);
}

}  // namespace
}  // namespace exo::resource::testing
