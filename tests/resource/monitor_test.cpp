// ResourceMonitor: snapshot schema, counts, problems, history, re-probing DEGRADED resources, report.
#include "resource/resource_monitor.h"
#include "test_support.h"

namespace exo::resource::testing {
namespace {

class MonitorTest : public ::testing::Test {
 protected:
  asio::io_context context;
  std::shared_ptr<ResourceRegistry> registry = std::make_shared<ResourceRegistry>();

  std::shared_ptr<TestResource> make(const std::string& id, const std::string& type = "test") {
    return make_resource<TestResource>(context.get_executor(), id, ResourceOptions{}, registry, type);
  }
  std::shared_ptr<ResourceMonitor> monitor(MonitorOptions options = {}) {
    return make_resource<ResourceMonitor>(context.get_executor(), registry, options);
  }
  template <typename T>
  T run(asio::awaitable<T> operation) {
    return run_sync(context, std::move(operation));
  }
};

TEST_F(MonitorTest, SnapshotCountsByTypeAndStateAndListsProblems) {
  auto m = monitor();
  auto ok = make("ok", "peer_handle");
  auto degraded = make("slow", "peer_handle");
  auto broken = make("broken", "inference_engine");
  run(ok->initialize());
  run(degraded->initialize());
  degraded->healthy = false;
  (void)run(degraded->check_health());
  broken->fail_first_inits = 1;
  (void)run(capture(broken->initialize()));

  const nlohmann::json s = m->snapshot_json();
  EXPECT_EQ(s["schema_version"], 1);
  EXPECT_EQ(s["summary"]["total"], 4);  // includes the monitor itself
  EXPECT_EQ(s["summary"]["by_state"]["READY"], 1);
  EXPECT_EQ(s["summary"]["by_state"]["DEGRADED"], 1);
  EXPECT_EQ(s["summary"]["by_state"]["ERROR"], 1);
  EXPECT_EQ(s["summary"]["by_state"]["UNINITIALIZED"], 1);
  EXPECT_EQ(s["summary"]["status"], "error");
  EXPECT_EQ(s["counts"]["peer_handle"]["READY"], 1);
  EXPECT_EQ(s["counts"]["peer_handle"]["DEGRADED"], 1);
  EXPECT_EQ(s["counts"]["inference_engine"]["ERROR"], 1);
  ASSERT_EQ(s["problems"].size(), 2U);
  std::set<std::string> problem_ids;
  for (const auto& p : s["problems"]) problem_ids.insert(p["id"].get<std::string>());
  EXPECT_EQ(problem_ids, (std::set<std::string>{"slow", "broken"}));
  for (const auto& r : s["resources"]) {
    if (r["id"] == "broken") {
      EXPECT_EQ(r["state"], "ERROR");
      EXPECT_NE(r["last_error"]["message"].get<std::string>().find("injected init failure"),
                std::string::npos);
      EXPECT_EQ(r["failure_count"], 1);
    }
    for (const char* key : {"id", "type", "display_name", "state", "state_since", "created_at", "ready_at",
                            "generation", "failure_count", "last_error", "health", "restarts", "gave_up",
                            "depends_on", "details", "is_usable", "is_healthy"}) {
      EXPECT_TRUE(r.contains(key)) << key;
    }
  }
  EXPECT_GE(s["history"].size(), 5U);
}

TEST_F(MonitorTest, HistoryIsBoundedAndOrdered) {
  auto m = monitor({.sweep_interval = 10s, .probe_timeout = 1s, .history_capacity = 3});
  auto r = make("r");
  run(r->initialize());
  run(r->cleanup());
  const auto history = m->history();
  ASSERT_EQ(history.size(), 3U);
  EXPECT_EQ(history[0].to, ResourceState::READY);
  EXPECT_EQ(history[1].to, ResourceState::CLOSING);
  EXPECT_EQ(history[2].to, ResourceState::CLOSED);
}

TEST_F(MonitorTest, PeriodicSweepReprobesDegradedResourcesSoTheyRecover) {
  auto m = monitor({.sweep_interval = 2ms, .probe_timeout = 1s, .history_capacity = 64});
  auto r = make("r");
  run(r->initialize());
  r->healthy = false;
  (void)run(r->check_health());
  ASSERT_EQ(r->state(), ResourceState::DEGRADED);
  r->healthy = true;
  run(m->initialize());
  run_until(context, [&] { return r->state() == ResourceState::READY; });
  run_until(context, [&] { return m->last_sweep().has_value() && m->last_sweep()->problems == 0; });
  run(m->cleanup());
  context.restart();
  context.run();  // the sweep task is gone: nothing left to run
  EXPECT_EQ(m->state(), ResourceState::CLOSED);
}

TEST_F(MonitorTest, CheckAllHealthProbesEveryUsableResource) {
  auto m = monitor();
  auto a = make("a");
  auto b = make("b");
  run(a->initialize());
  run(b->initialize());
  b->healthy = false;
  const nlohmann::json result = run(m->check_all_health());
  EXPECT_EQ(a->health_calls, 1);
  EXPECT_EQ(b->health_calls, 1);
  bool saw_b = false;
  for (const auto& entry : result["results"]) {
    if (entry["id"] == "b") {
      saw_b = true;
      EXPECT_EQ(entry["result"]["healthy"], false);
      EXPECT_EQ(entry["result"]["state_after"], "DEGRADED");
    }
  }
  EXPECT_TRUE(saw_b);
  EXPECT_EQ(result["snapshot"]["summary"]["status"], "degraded");
}

TEST_F(MonitorTest, ReportIsReadableAndNamesProblems) {
  auto m = monitor();
  auto r = make("engine-7", "inference_engine");
  r->fail_first_inits = 1;
  (void)run(capture(r->initialize()));
  const std::string report = m->report();
  EXPECT_NE(report.find("inference_engine"), std::string::npos);
  EXPECT_NE(report.find("Problems:"), std::string::npos);
  EXPECT_NE(report.find("engine-7 (inference_engine) is ERROR"), std::string::npos);
  EXPECT_NE(report.find("injected init failure"), std::string::npos);
}

TEST_F(MonitorTest, FormatsTimesAsUtcIso8601) {
  const auto epoch_plus = SystemClock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  EXPECT_EQ(ResourceMonitor::format_time(epoch_plus), "2023-11-14T22:13:20.123Z");
}

}  // namespace
}  // namespace exo::resource::testing
