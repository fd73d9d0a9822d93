// ResourceMonitor: watches every resource of a registry; itself a resource.
//
// Contract
// - From construction it records every transition of every registered resource in a bounded history
//   (oldest dropped first). Thread-safe.
// - While READY it sweeps the registry every sweep_interval: counts by type x state, the problem list
//   (DEGRADED and ERROR resources, since when, last error), and a re-probe of DEGRADED resources so
//   they can recover. The sweep task is owned by the monitor and stops at cleanup.
// - snapshot_json() builds a fresh JSON document (schema in docs/lifecycle.md, "Monitor snapshot"),
//   the exact body of the node's GET /v1/resources; report() is the same for people. Both are
//   thread-safe and never block on resource operations.
// - check_all_health() probes every usable resource now (POST /v1/resources/health).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "resource/async_resource.h"

namespace exo::resource {

struct MonitorOptions {
  Clock::duration sweep_interval = std::chrono::seconds(10);
  Clock::duration probe_timeout = std::chrono::seconds(5);
  std::size_t history_capacity = 256;
};

struct SweepResult {
  SystemClock::time_point time{};
  std::size_t resources = 0;
  std::size_t problems = 0;
  std::size_t probed = 0;     // DEGRADED resources re-probed
  std::size_t recovered = 0;  // of those, back to READY
};

class ResourceMonitor : public AsyncResource {
 public:
  ResourceMonitor(const asio::any_io_executor& executor, std::shared_ptr<ResourceRegistry> registry,
                  MonitorOptions monitor_options = {},
                  ResourceIdentity identity = {"resource-monitor", "resource_monitor", "Resource monitor"});
  ~ResourceMonitor() override;

  // One sweep now (the periodic task calls the same).
  asio::awaitable<SweepResult> sweep();
  // Runs check_health() on every usable resource; returns {"results": [...], "snapshot": {...}}.
  asio::awaitable<nlohmann::json> check_all_health();

  nlohmann::json snapshot_json() const;
  std::string report() const;
  std::vector<Transition> history() const;
  std::optional<SweepResult> last_sweep() const;

  static nlohmann::json to_json(const ResourceInfo& info);
  static nlohmann::json to_json(const Transition& transition);
  static nlohmann::json to_json(const HealthResult& result);
  static std::string format_time(SystemClock::time_point time);

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<HealthStatus> do_health_check() override;

 private:
  struct History {
    std::mutex mutex;
    std::deque<Transition> entries;
    std::size_t capacity = 0;
  };
  asio::awaitable<void> sweep_loop();

  std::shared_ptr<ResourceRegistry> watched_;
  MonitorOptions monitor_options_;
  std::shared_ptr<History> history_;
  std::uint64_t observer_id_ = 0;
  mutable std::mutex sweep_mutex_;
  std::optional<SweepResult> last_sweep_;
};

}  // namespace exo::resource
