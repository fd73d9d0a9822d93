// ResourceGroup: named member resources with declared dependencies, itself a resource.
//
// Contract
// - Members and their dependencies form a DAG; validate() (run by add() and by initialize) rejects an
//   unknown dependency or a cycle, naming it ("a -> b -> a"). Members are added before the group is
//   initialized (or after it is closed); adding to a running group throws std::logic_error.
// - initialize: every member starts once all its dependencies are READY; independent members start
//   in parallel. On the first failure nothing new starts, members in flight are cancelled, and every
//   started member is cleaned up in reverse start order; the error names the failed member and cause.
//   A member found CLOSED (after an earlier cleanup or rollback) is reopened with reset().
// - cleanup: reverse dependency order (a member closes after everything that depends on it),
//   independent members in parallel, continuing past failures; CleanupError lists every failure.
// - State roll-up while the group runs: DEGRADED as soon as a required member is not READY (degraded,
//   failed, recovering, being reset or closed), READY again when every required member is READY.
//   Optional members never change the group's state; their problems appear in its health detail.
//   The roll-up never moves a group to ERROR: ERROR means the group's own initialization failed, so a
//   member brought back from outside (e.g. `exo resources reset`) always brings the group back too.
// - Thread-safety: add/member/get/names are thread-safe; lifecycle calls follow AsyncResource.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "resource/async_resource.h"

namespace exo::resource {

struct MemberOptions {
  std::vector<std::string> depends_on;  // names of members that must be READY first
  bool required = true;                 // optional members never take the group down
};

class ResourceGroup : public AsyncResource {
 public:
  ResourceGroup(const asio::any_io_executor& executor, ResourceIdentity identity,
                ResourceOptions options = group_defaults(),
                std::shared_ptr<ResourceRegistry> registry = nullptr);
  ~ResourceGroup() override;

  // Group defaults: no overall init/cleanup timeout beyond the members' own (one hour).
  static ResourceOptions group_defaults();

  void add(const std::string& name, const std::shared_ptr<AsyncResource>& member,
           const MemberOptions& options = {});

  std::shared_ptr<AsyncResource> member(const std::string& name) const;  // throws std::out_of_range
  template <typename T>
  std::shared_ptr<T> get(const std::string& name) const {
    auto typed = std::dynamic_pointer_cast<T>(member(name));
    if (!typed)
      throw std::invalid_argument("group '" + id() + "': member '" + name + "' is not of the requested type");
    return typed;
  }
  std::vector<std::string> member_names() const;   // in insertion order
  std::vector<std::string> startup_order() const;  // one valid topological order
  bool is_required(const std::string& name) const;
  void validate() const;

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  struct Member {
    std::string name;
    std::shared_ptr<AsyncResource> resource;
    MemberOptions options;
    ListenerId listener = 0;
  };
  std::vector<Member> members_copy() const;
  // Tells each member the ids of the members it depends on (shown by monitors as graph edges).
  void publish_dependency_edges() const;
  void roll_up();
  // Every member that is not READY, with the reason, required members first; empty when all is well.
  std::vector<std::string> problems(bool* required_problem) const;

  mutable std::mutex members_mutex_;
  std::vector<Member> members_;
};

}  // namespace exo::resource
