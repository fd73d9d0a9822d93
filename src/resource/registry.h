// ResourceRegistry: the live resources of one node (or one test), by id and by type.
//
// Contract: thread-safe. Resources are registered by make_resource() once fully built and unregister on
// destruction (not on cleanup, so CLOSED resources stay visible until released). The registry holds
// no ownership: snapshot() returns strong references taken under one lock, so it is a consistent
// point-in-time view that skips objects already being destroyed. Ids are unique among live resources;
// registering a duplicate throws std::invalid_argument. Observers see every transition of every
// registered resource, per resource in order, with no registry lock held. It is an explicit object
// (no global), so several nodes can live in one process.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "resource/async_resource.h"

namespace exo::resource {

class ResourceRegistry {
 public:
  using ObserverId = std::uint64_t;
  using Observer = std::function<void(const Transition&)>;

  std::vector<std::shared_ptr<AsyncResource>> snapshot() const;
  std::map<std::string, std::vector<std::shared_ptr<AsyncResource>>> snapshot_by_type() const;
  std::vector<std::shared_ptr<AsyncResource>> by_type(const std::string& type) const;
  std::shared_ptr<AsyncResource> find(const std::string& id) const;
  std::size_t size() const;

  ObserverId add_observer(Observer observer);
  void remove_observer(ObserverId id);

 private:
  friend class AsyncResource;
  void add(AsyncResource* resource);
  void remove(AsyncResource* resource) noexcept;
  void notify(const Transition& transition) const;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, AsyncResource*> resources_;
  std::map<ObserverId, Observer> observers_;
  ObserverId next_observer_id_ = 1;
};

}  // namespace exo::resource
