#include "resource/registry.h"

#include <stdexcept>

namespace exo::resource {

void ResourceRegistry::add(AsyncResource* resource) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = resources_.try_emplace(resource->id(), resource);
  if (!inserted) {
    // An entry whose owner is already being destroyed may be replaced; a live one may not.
    if (!it->second->weak_from_this().expired()) {
      throw std::invalid_argument("duplicate resource id '" + resource->id() + "' in registry");
    }
    it->second = resource;
  }
}

void ResourceRegistry::remove(AsyncResource* resource) noexcept {
  std::lock_guard lock(mutex_);
  auto it = resources_.find(resource->id());
  if (it != resources_.end() && it->second == resource) resources_.erase(it);
}

std::vector<std::shared_ptr<AsyncResource>> ResourceRegistry::snapshot() const {
  std::vector<std::shared_ptr<AsyncResource>> out;
  std::lock_guard lock(mutex_);
  out.reserve(resources_.size());
  for (const auto& [id, resource] : resources_) {
    if (auto strong = resource->weak_from_this().lock()) out.push_back(std::move(strong));
  }
  return out;
}

std::map<std::string, std::vector<std::shared_ptr<AsyncResource>>> ResourceRegistry::snapshot_by_type()
    const {
  std::map<std::string, std::vector<std::shared_ptr<AsyncResource>>> out;
  for (auto& resource : snapshot()) out[resource->type()].push_back(std::move(resource));
  return out;
}

std::vector<std::shared_ptr<AsyncResource>> ResourceRegistry::by_type(const std::string& type) const {
  std::vector<std::shared_ptr<AsyncResource>> out;
  for (auto& resource : snapshot()) {
    if (resource->type() == type) out.push_back(std::move(resource));
  }
  return out;
}

std::shared_ptr<AsyncResource> ResourceRegistry::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = resources_.find(id);
  if (it == resources_.end()) return nullptr;
  return it->second->weak_from_this().lock();
}

std::size_t ResourceRegistry::size() const {
  return snapshot().size();
}

ResourceRegistry::ObserverId ResourceRegistry::add_observer(Observer observer) {
  std::lock_guard lock(mutex_);
  const ObserverId id = next_observer_id_++;
  observers_.emplace(id, std::move(observer));
  return id;
}

void ResourceRegistry::remove_observer(ObserverId id) {
  std::lock_guard lock(mutex_);
  observers_.erase(id);
}

void ResourceRegistry::notify(const Transition& transition) const {
  std::vector<Observer> observers;
  {
    std::lock_guard lock(mutex_);
    observers.reserve(observers_.size());
    for (const auto& [id, observer] : observers_) observers.push_back(observer);
  }
  for (const auto& observer : observers) observer(transition);
}

}  // namespace exo::resource
