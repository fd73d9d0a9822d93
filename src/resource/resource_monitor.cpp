#include "resource/resource_monitor.h"

#include <fmt/format.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>
#include <ctime>
#include <map>

#include "resource/registry.h"

namespace exo::resource {
namespace {

bool is_problem(ResourceState s) {
  return s == ResourceState::DEGRADED || s == ResourceState::ERROR;
}

std::vector<ResourceInfo> sorted_infos(const ResourceRegistry& registry) {
  std::vector<ResourceInfo> infos;
  for (const auto& resource : registry.snapshot()) infos.push_back(resource->info());
  std::sort(infos.begin(), infos.end(), [](const ResourceInfo& a, const ResourceInfo& b) {
    return std::tie(a.identity.type, a.identity.id) < std::tie(b.identity.type, b.identity.id);
  });
  return infos;
}

}  // namespace

std::string ResourceMonitor::format_time(SystemClock::time_point time) {
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis % 1000);
}

ResourceMonitor::ResourceMonitor(const asio::any_io_executor& executor,
                                 std::shared_ptr<ResourceRegistry> registry, MonitorOptions monitor_options,
                                 ResourceIdentity identity)
    : AsyncResource(executor, std::move(identity), ResourceOptions{}, registry),
      watched_(std::move(registry)),
      monitor_options_(monitor_options),
      history_(std::make_shared<History>()) {
  if (!watched_) throw std::invalid_argument("resource monitor needs a registry");
  if (monitor_options_.history_capacity == 0)
    throw std::invalid_argument("monitor history_capacity must be > 0");
  if (monitor_options_.sweep_interval <= Clock::duration::zero()) {
    throw std::invalid_argument("monitor sweep_interval must be > 0");
  }
  history_->capacity = monitor_options_.history_capacity;
  observer_id_ = watched_->add_observer([history = history_](const Transition& t) {
    std::lock_guard lock(history->mutex);
    history->entries.push_back(t);
    while (history->entries.size() > history->capacity) history->entries.pop_front();
  });
}

ResourceMonitor::~ResourceMonitor() {
  watched_->remove_observer(observer_id_);
}

asio::awaitable<void> ResourceMonitor::do_initialize() {
  spawn(sweep_loop());
  co_return;
}

asio::awaitable<void> ResourceMonitor::do_cleanup() {
  co_return;
}

asio::awaitable<HealthStatus> ResourceMonitor::do_health_check() {
  const auto sweep = last_sweep();
  if (!sweep) co_return HealthStatus{true, "no sweep yet"};
  co_return HealthStatus{true, fmt::format("last sweep {}: {} resources, {} problems",
                                           format_time(sweep->time), sweep->resources, sweep->problems)};
}

asio::awaitable<void> ResourceMonitor::sweep_loop() {
  for (;;) {
    co_await sweep();
    co_await sleep_for(monitor_options_.sweep_interval);
  }
}

asio::awaitable<SweepResult> ResourceMonitor::sweep() {
  SweepResult result;
  result.time = SystemClock::now();
  for (const auto& resource : watched_->snapshot()) {
    ++result.resources;
    const ResourceState s = resource->state();
    if (is_problem(s)) ++result.problems;
    if (s != ResourceState::DEGRADED || resource.get() == this) continue;
    ++result.probed;
    try {
      auto health = co_await run_with_timeout(resource->check_health(), monitor_options_.probe_timeout,
                                              resource->id(), "monitor re-probe");
      if (health.state_after == ResourceState::READY) ++result.recovered;
    } catch (const TimeoutError&) {
      // The resource's own health timeout normally fires first; a stuck probe is simply not counted.
    }
  }
  std::lock_guard lock(sweep_mutex_);
  last_sweep_ = result;
  co_return result;
}

asio::awaitable<nlohmann::json> ResourceMonitor::check_all_health() {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& resource : watched_->snapshot()) {
    nlohmann::json entry{{"id", resource->id()}, {"type", resource->type()}};
    if (resource.get() == this) {
      entry["result"] =
          to_json(HealthResult{true, false, "the monitor itself", state(), {}, SystemClock::now()});
    } else {
      try {
        entry["result"] = to_json(co_await run_with_timeout(
            resource->check_health(), monitor_options_.probe_timeout, resource->id(), "health check"));
      } catch (const std::exception& e) {
        entry["result"] = {{"healthy", false}, {"probed", true}, {"detail", e.what()}};
      }
    }
    results.push_back(std::move(entry));
  }
  co_return nlohmann::json{{"results", std::move(results)}, {"snapshot", snapshot_json()}};
}

std::vector<Transition> ResourceMonitor::history() const {
  std::lock_guard lock(history_->mutex);
  return {history_->entries.begin(), history_->entries.end()};
}

std::optional<SweepResult> ResourceMonitor::last_sweep() const {
  std::lock_guard lock(sweep_mutex_);
  return last_sweep_;
}

nlohmann::json ResourceMonitor::to_json(const HealthResult& result) {
  return {{"healthy", result.healthy},
          {"probed", result.probed},
          {"detail", result.detail},
          {"state_after", to_string(result.state_after)},
          {"elapsed_ms", std::chrono::duration<double, std::milli>(result.elapsed).count()},
          {"time", format_time(result.time)}};
}

nlohmann::json ResourceMonitor::to_json(const Transition& t) {
  return {{"time", format_time(t.time)}, {"id", t.resource_id},   {"type", t.resource_type},
          {"from", to_string(t.from)},   {"to", to_string(t.to)}, {"cause", t.cause},
          {"generation", t.generation}};
}

nlohmann::json ResourceMonitor::to_json(const ResourceInfo& info) {
  nlohmann::json j{
      {"id", info.identity.id},
      {"type", info.identity.type},
      {"display_name", info.identity.display_name},
      {"state", to_string(info.state)},
      {"state_since", format_time(info.state_since)},
      {"is_usable", is_usable(info.state)},
      {"is_healthy", info.state == ResourceState::READY},
      {"created_at", format_time(info.created_at)},
      {"ready_at", info.ready_at ? nlohmann::json(format_time(*info.ready_at)) : nlohmann::json(nullptr)},
      {"generation", info.generation},
      {"failure_count", info.failure_count},
      {"last_error", info.last_error ? nlohmann::json{{"message", info.last_error->message},
                                                      {"time", format_time(info.last_error->time)}}
                                     : nlohmann::json(nullptr)},
      {"health", info.last_health ? to_json(*info.last_health) : nlohmann::json(nullptr)},
      {"consecutive_health_failures", info.consecutive_health_failures},
      {"restarts", info.restarts},
      {"gave_up", info.gave_up},
      {"depends_on", info.depends_on},
      {"details", info.details},
  };
  return j;
}

nlohmann::json ResourceMonitor::snapshot_json() const {
  const auto infos = sorted_infos(*watched_);
  nlohmann::json by_state = nlohmann::json::object();
  for (ResourceState s : kAllStates) by_state[std::string(to_string(s))] = 0;
  nlohmann::json counts = nlohmann::json::object();
  nlohmann::json resources = nlohmann::json::array();
  nlohmann::json problems = nlohmann::json::array();
  bool any_error = false;
  bool any_degraded = false;
  for (const auto& info : infos) {
    const std::string state_name(to_string(info.state));
    by_state[state_name] = by_state[state_name].get<int>() + 1;
    auto& per_type = counts[info.identity.type];
    if (per_type.is_null()) {
      per_type = nlohmann::json::object();
      for (ResourceState s : kAllStates) per_type[std::string(to_string(s))] = 0;
    }
    per_type[state_name] = per_type[state_name].get<int>() + 1;
    resources.push_back(to_json(info));
    if (is_problem(info.state)) {
      any_error |= info.state == ResourceState::ERROR;
      any_degraded |= info.state == ResourceState::DEGRADED;
      problems.push_back(
          {{"id", info.identity.id},
           {"type", info.identity.type},
           {"state", state_name},
           {"since", format_time(info.state_since)},
           {"gave_up", info.gave_up},
           {"last_error", info.last_error ? nlohmann::json(info.last_error->message) : nullptr}});
    }
  }
  nlohmann::json history_json = nlohmann::json::array();
  for (const auto& t : history()) history_json.push_back(to_json(t));
  nlohmann::json sweep_json = nullptr;
  if (auto s = last_sweep()) {
    sweep_json = {{"time", format_time(s->time)},
                  {"resources", s->resources},
                  {"problems", s->problems},
                  {"probed", s->probed},
                  {"recovered", s->recovered}};
  }
  return {{"schema_version", 1},
          {"generated_at", format_time(SystemClock::now())},
          {"summary",
           {{"total", infos.size()},
            {"by_state", by_state},
            {"problems", problems.size()},
            {"status", any_error ? "error" : (any_degraded ? "degraded" : "ok")}}},
          {"counts", counts},
          {"resources", resources},
          {"problems", problems},
          {"history", history_json},
          {"last_sweep", sweep_json}};
}

std::string ResourceMonitor::report() const {
  const auto infos = sorted_infos(*watched_);
  std::map<std::string, std::map<ResourceState, int>> counts;
  for (const auto& info : infos) ++counts[info.identity.type][info.state];
  std::string out =
      fmt::format("Resources at {}: {} in total\n\n", format_time(SystemClock::now()), infos.size());
  out += fmt::format("{:<22}", "TYPE");
  for (ResourceState s : kAllStates) out += fmt::format(" {:>13}", to_string(s));
  out += "\n";
  for (const auto& [type, by_state] : counts) {
    out += fmt::format("{:<22}", type);
    for (ResourceState s : kAllStates) {
      auto it = by_state.find(s);
      out += fmt::format(" {:>13}", it == by_state.end() ? 0 : it->second);
    }
    out += "\n";
  }
  out += fmt::format("\n{:<28} {:<20} {:<13} {:<24} {}\n", "ID", "TYPE", "STATE", "SINCE", "LAST ERROR");
  for (const auto& info : infos) {
    out += fmt::format("{:<28} {:<20} {:<13} {:<24} {}\n", info.identity.id, info.identity.type,
                       to_string(info.state), format_time(info.state_since),
                       info.last_error ? info.last_error->message : "-");
  }
  std::string problems;
  for (const auto& info : infos) {
    if (!is_problem(info.state)) continue;
    problems += fmt::format("  - {} ({}) is {} since {}{}{}\n", info.identity.id, info.identity.type,
                            to_string(info.state), format_time(info.state_since),
                            info.gave_up ? ", supervisor gave up" : "",
                            info.last_error ? ": " + info.last_error->message : "");
  }
  out += problems.empty() ? "\nNo problems.\n" : "\nProblems:\n" + problems;
  const auto recent = history();
  if (!recent.empty()) {
    out += "\nRecent transitions:\n";
    const std::size_t first = recent.size() > 10 ? recent.size() - 10 : 0;
    for (std::size_t i = first; i < recent.size(); ++i) {
      const auto& t = recent[i];
      out += fmt::format("  {} {} {} -> {} ({})\n", format_time(t.time), t.resource_id, to_string(t.from),
                         to_string(t.to), t.cause);
    }
  }
  return out;
}

}  // namespace exo::resource
