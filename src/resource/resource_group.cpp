#include "resource/resource_group.h"

#include <fmt/format.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <functional>
#include <set>
#include <unordered_map>

#include "resource/task_scope.h"

namespace exo::resource {
namespace {

using Dag = std::unordered_map<std::string, std::vector<std::string>>;  // node -> prerequisites

struct DagRun {
  std::vector<std::string> started;                                  // in start order
  std::vector<std::pair<std::string, std::exception_ptr>> failures;  // in completion order
  bool cancelled = false;
};

// Runs `action(name)` for every node once all its prerequisites have finished; nodes whose
// prerequisites are done run in parallel. With `stop_on_failure`, the first failure stops new starts
// and cancels the actions in flight; otherwise a failed node counts as finished.
asio::awaitable<DagRun> run_dag(asio::strand<asio::any_io_executor> strand,
                                const std::vector<std::string>& order, const Dag& prerequisites,
                                std::function<asio::awaitable<void>(const std::string&)> action,
                                bool stop_on_failure) {
  co_await asio::this_coro::throw_if_cancelled(false);
  struct State {
    std::unordered_map<std::string, int> remaining;
    std::unordered_map<std::string, std::vector<std::string>> dependents;
    std::size_t finished = 0;
    bool stopped = false;
    DagRun run;
  };
  auto state = std::make_shared<State>();
  for (const auto& name : order) {
    state->remaining[name] = static_cast<int>(prerequisites.at(name).size());
    for (const auto& prerequisite : prerequisites.at(name)) state->dependents[prerequisite].push_back(name);
  }
  auto all_done = std::make_shared<Completion>(strand);
  TaskScope scope(strand);
  const std::size_t total = order.size();

  std::function<void(const std::string&)> start;
  start = [&, state, all_done](const std::string& name) {
    state->run.started.push_back(name);
    scope.spawn([](std::string node, std::shared_ptr<State> st, std::shared_ptr<Completion> done,
                   const std::function<asio::awaitable<void>(const std::string&)>* act,
                   std::function<void(const std::string&)>* start_next, bool stop,
                   std::size_t count) -> asio::awaitable<void> {
      std::exception_ptr failure;
      try {
        co_await (*act)(node);
      } catch (...) {
        failure = std::current_exception();
      }
      if (st->stopped) co_return;
      ++st->finished;
      if (failure) {
        st->run.failures.emplace_back(node, failure);
        if (stop) {
          st->stopped = true;
          done->complete();
          co_return;
        }
      }
      for (const auto& dependent : st->dependents[node]) {
        if (--st->remaining[dependent] == 0) (*start_next)(dependent);
      }
      if (st->finished == count) done->complete();
    }(name, state, all_done, &action, &start, stop_on_failure, total));
  };

  if (total == 0) co_return DagRun{};  // NOLINT(bugprone-throw-keyword-missing): not an exception
  for (const auto& name : order) {
    if (state->remaining[name] == 0) start(name);
  }
  bool cancelled = false;
  try {
    co_await all_done->wait(Clock::time_point::max());
  } catch (const std::system_error&) {
    cancelled = true;
  }
  const auto cancellation = (co_await asio::this_coro::cancellation_state).cancelled();
  if (cancellation != asio::cancellation_type::none) cancelled = true;
  state->stopped = true;
  co_await scope.close();
  state->run.cancelled = cancelled;
  co_return std::move(state->run);
}

}  // namespace

ResourceOptions ResourceGroup::group_defaults() {
  ResourceOptions options;
  options.init_timeout = std::chrono::hours(1);
  options.cleanup_timeout = std::chrono::hours(1);
  // A running group is never moved to ERROR by its health checks, only DEGRADED (see the roll-up).
  options.health.failures_to_error = 0;
  return options;
}

ResourceGroup::ResourceGroup(const asio::any_io_executor& executor, ResourceIdentity identity,
                             ResourceOptions options, std::shared_ptr<ResourceRegistry> registry)
    : AsyncResource(executor, std::move(identity), options, std::move(registry)) {}

ResourceGroup::~ResourceGroup() {
  for (auto& m : members_) m.resource->remove_listener(m.listener);
}

void ResourceGroup::add(const std::string& name, const std::shared_ptr<AsyncResource>& member,
                        const MemberOptions& options) {
  if (!member) throw std::invalid_argument("group '" + id() + "': member '" + name + "' is null");
  const ResourceState s = state();
  if (s != ResourceState::UNINITIALIZED && s != ResourceState::CLOSED && s != ResourceState::ERROR) {
    throw std::logic_error("group '" + id() + "': cannot add member '" + name + "' while " +
                           std::string(to_string(s)));
  }
  {
    std::lock_guard lock(members_mutex_);
    for (const auto& m : members_) {
      if (m.name == name)
        throw std::invalid_argument("group '" + id() + "': duplicate member name '" + name + "'");
      if (m.resource == member) {
        throw std::invalid_argument("group '" + id() + "': resource '" + member->id() + "' added twice");
      }
    }
    members_.push_back(Member{name, member, options, 0});
  }
  try {
    validate();
  } catch (...) {
    std::lock_guard lock(members_mutex_);
    members_.pop_back();
    throw;
  }
  publish_dependency_edges();
  const auto listener =
      member->add_listener([weak = std::weak_ptr<AsyncResource>(weak_from_this())](const Transition&) {
        if (auto self = weak.lock()) {
          asio::post(self->strand(), [weak] {
            if (auto group = std::static_pointer_cast<ResourceGroup>(weak.lock())) group->roll_up();
          });
        }
      });
  std::lock_guard lock(members_mutex_);
  for (auto& m : members_) {
    if (m.name == name) m.listener = listener;
  }
}

void ResourceGroup::publish_dependency_edges() const {
  const auto members = members_copy();
  for (const auto& m : members) {
    std::vector<std::string> ids;
    for (const auto& dependency : m.options.depends_on) {
      for (const auto& candidate : members) {
        if (candidate.name == dependency) ids.push_back(candidate.resource->id());
      }
    }
    m.resource->set_depends_on(std::move(ids));
  }
}

std::vector<ResourceGroup::Member> ResourceGroup::members_copy() const {
  std::lock_guard lock(members_mutex_);
  return members_;
}

std::shared_ptr<AsyncResource> ResourceGroup::member(const std::string& name) const {
  std::lock_guard lock(members_mutex_);
  for (const auto& m : members_) {
    if (m.name == name) return m.resource;
  }
  throw std::out_of_range("group '" + id() + "' has no member '" + name + "'");
}

bool ResourceGroup::is_required(const std::string& name) const {
  std::lock_guard lock(members_mutex_);
  for (const auto& m : members_) {
    if (m.name == name) return m.options.required;
  }
  throw std::out_of_range("group '" + id() + "' has no member '" + name + "'");
}

std::vector<std::string> ResourceGroup::member_names() const {
  std::vector<std::string> names;
  for (const auto& m : members_copy()) names.push_back(m.name);
  return names;
}

void ResourceGroup::validate() const {
  const auto members = members_copy();
  std::unordered_map<std::string, const Member*> by_name;
  for (const auto& m : members) by_name[m.name] = &m;
  // Unknown dependencies are allowed while members are still being added; initialize rejects them.
  enum class Mark { NONE, VISITING, DONE };
  std::unordered_map<std::string, Mark> marks;
  std::vector<std::string> path;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    marks[name] = Mark::VISITING;
    path.push_back(name);
    for (const auto& dependency : by_name.at(name)->options.depends_on) {
      if (!by_name.contains(dependency)) continue;
      if (marks[dependency] == Mark::VISITING) {
        auto begin = std::find(path.begin(), path.end(), dependency);
        std::string cycle;
        for (auto it = begin; it != path.end(); ++it) {
          cycle += *it;
          cycle += " -> ";
        }
        throw std::invalid_argument(
            fmt::format("group '{}': dependency cycle {}{}", id(), cycle, dependency));
      }
      if (marks[dependency] == Mark::NONE) visit(dependency);
    }
    path.pop_back();
    marks[name] = Mark::DONE;
  };
  for (const auto& m : members) {
    if (marks[m.name] == Mark::NONE) visit(m.name);
  }
}

std::vector<std::string> ResourceGroup::startup_order() const {
  const auto members = members_copy();
  std::vector<std::string> order;
  std::set<std::string> placed;
  while (order.size() < members.size()) {
    bool progress = false;
    for (const auto& m : members) {
      if (placed.contains(m.name)) continue;
      bool ready = std::all_of(m.options.depends_on.begin(), m.options.depends_on.end(),
                               [&](const std::string& d) { return placed.contains(d); });
      if (ready) {
        order.push_back(m.name);
        placed.insert(m.name);
        progress = true;
      }
    }
    if (!progress) break;  // unknown dependency: validate_complete() reports it
  }
  return order;
}

asio::awaitable<void> ResourceGroup::do_initialize() {
  const auto members = members_copy();
  validate();
  Dag prerequisites;
  std::unordered_map<std::string, std::shared_ptr<AsyncResource>> by_name;
  for (const auto& m : members) by_name[m.name] = m.resource;
  for (const auto& m : members) {
    for (const auto& dependency : m.options.depends_on) {
      if (!by_name.contains(dependency)) {
        throw PermanentError("group '" + id() + "': member '" + m.name + "' depends on unknown member '" +
                             dependency + "'");
      }
    }
    prerequisites[m.name] = m.options.depends_on;
  }
  std::vector<std::string> names;
  names.reserve(members.size());
  for (const auto& m : members) names.push_back(m.name);

  auto start_member = [by_name](const std::string& name) -> asio::awaitable<void> {
    const auto& resource = by_name.at(name);
    if (resource->state() == ResourceState::CLOSED) {
      co_await resource->reset();
    } else {
      co_await resource->initialize();
    }
  };
  DagRun run = co_await run_dag(strand(), names, prerequisites, start_member, true);
  if (run.failures.empty() && !run.cancelled) co_return;

  // Roll back: clean up every started member in reverse start order, continuing past errors.
  std::vector<std::string> rollback_errors;
  const std::vector<std::string> reverse_start_order(run.started.rbegin(), run.started.rend());
  for (const auto& name : reverse_start_order) {
    try {
      co_await by_name.at(name)->cleanup();
    } catch (const std::exception& e) {
      rollback_errors.emplace_back(e.what());
    }
  }
  std::string rolled_back;
  for (const auto& name : reverse_start_order) {
    if (!rolled_back.empty()) rolled_back += ", ";
    rolled_back += name;
  }
  std::string message;
  if (!run.failures.empty()) {
    const auto& [name, error] = run.failures.front();
    message = fmt::format("member '{}' failed: {}", name, describe(error));
  } else {
    message = "initialization cancelled";
  }
  message += fmt::format("; rolled back [{}]", rolled_back);
  for (const auto& e : rollback_errors) message += "; rollback error: " + e;
  if (run.cancelled) throw std::system_error(asio::error::operation_aborted, message);
  throw InitializationError(id(), message);
}

asio::awaitable<void> ResourceGroup::do_cleanup() {
  const auto members = members_copy();
  // Reverse dependency order: a member's prerequisites in cleanup are the members depending on it.
  Dag reverse;
  std::vector<std::string> names;
  std::unordered_map<std::string, std::shared_ptr<AsyncResource>> by_name;
  for (const auto& m : members) {
    reverse[m.name];
    names.push_back(m.name);
    by_name[m.name] = m.resource;
  }
  for (const auto& m : members) {
    for (const auto& dependency : m.options.depends_on) {
      if (reverse.contains(dependency)) reverse[dependency].push_back(m.name);
    }
  }
  auto close_member = [by_name](const std::string& name) -> asio::awaitable<void> {
    co_await by_name.at(name)->cleanup();
  };
  DagRun run = co_await run_dag(strand(), names, reverse, close_member, false);
  if (run.failures.empty()) co_return;
  std::string message = fmt::format("{} member(s) failed to clean up", run.failures.size());
  for (const auto& [name, error] : run.failures) message += fmt::format("; '{}': {}", name, describe(error));
  throw std::runtime_error(message);
}

std::vector<std::string> ResourceGroup::problems(bool* required_problem) const {
  std::vector<std::string> out;
  *required_problem = false;
  for (const auto& m : members_copy()) {
    const auto info = m.resource->info();
    const ResourceState s = info.state;
    if (s == ResourceState::READY) continue;
    std::string reason = fmt::format("{} member '{}' is {}", m.options.required ? "required" : "optional",
                                     m.name, to_string(s));
    if (s == ResourceState::ERROR) {
      const bool recovering = m.resource->options().supervision.auto_recover && !info.gave_up;
      reason += recovering ? " (recovering)" : " (no automatic recovery left)";
    }
    if (info.last_error && (s == ResourceState::ERROR || s == ResourceState::CLOSED)) {
      reason += ": " + info.last_error->message;
    }
    out.push_back(reason);
    if (m.options.required) *required_problem = true;
  }
  // Required members first: they are the ones that matter for the group's state.
  std::stable_partition(out.begin(), out.end(),
                        [](const std::string& r) { return r.rfind("required", 0) == 0; });
  return out;
}

void ResourceGroup::roll_up() {
  const ResourceState s = state();
  if (!is_usable(s)) return;
  bool required_problem = false;
  const auto issues = problems(&required_problem);
  if (required_problem && s == ResourceState::READY) {
    transition(ResourceState::DEGRADED, issues.front());
  } else if (!required_problem && s == ResourceState::DEGRADED) {
    transition(ResourceState::READY, "every required member is READY");
  }
}

asio::awaitable<HealthStatus> ResourceGroup::do_health_check() {
  // The same rule as the roll-up; it also reports facts that are not transitions (a member's
  // supervisor giving up) and the optional members' problems.
  roll_up();
  bool required_problem = false;
  const auto issues = problems(&required_problem);
  if (issues.empty())
    co_return HealthStatus{true, fmt::format("all {} members READY", members_copy().size())};
  std::string detail;
  for (const auto& issue : issues) detail += (detail.empty() ? "" : "; ") + issue;
  co_return HealthStatus{!required_problem, detail};
}

std::map<std::string, std::string> ResourceGroup::details() const {
  std::map<std::string, std::string> out;
  std::string names;
  for (const auto& m : members_copy()) names += (names.empty() ? "" : ",") + m.resource->id();
  out["members"] = names;
  return out;
}

}  // namespace exo::resource
