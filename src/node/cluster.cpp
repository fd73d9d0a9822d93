#include "node/cluster.h"

#include <fmt/format.h>

#include <asio/post.hpp>

#include "resource/errors.h"
#include "resource/timeouts.h"

namespace exo::node {
namespace {

resource::ResourceOptions cluster_resource_options() {
  resource::ResourceOptions options;
  // The cluster itself cannot break in a way re-initialization would fix; peers recover on their own.
  options.health.failures_to_error = 0;
  return options;
}

// A probe of a peer we hold no handle for: a short-lived connection, not registered anywhere.
resource::ResourceOptions probe_resource_options(const net::PeerOptions& peer) {
  resource::ResourceOptions options;
  options.init_timeout = peer.timeouts.connect + std::chrono::seconds(1);
  options.supervision.auto_recover = false;
  options.supervision.health_interval = std::chrono::milliseconds(0);
  return options;
}

}  // namespace

Cluster::Cluster(asio::any_io_executor executor, ClusterOptions options,
                 std::shared_ptr<net::Discovery> discovery,
                 std::shared_ptr<resource::ResourceRegistry> registry)
    : AsyncResource(executor, {"cluster-" + options.node_id, "cluster", "peers of node " + options.node_id},
                    cluster_resource_options(), registry),
      options_(std::move(options)),
      discovery_(std::move(discovery)),
      registry_(std::move(registry)) {}

Cluster::~Cluster() {
  if (discovery_ && discovery_listener_ != 0) discovery_->remove_peer_listener(discovery_listener_);
}

// ---------------------------------------------------------------------------------------------------
// Lifecycle

asio::awaitable<void> Cluster::do_initialize() {
  if (discovery_) {
    auto weak = std::weak_ptr<Cluster>(std::static_pointer_cast<Cluster>(shared_from_this()));
    discovery_listener_ = discovery_->add_peer_listener([weak](const net::PeerChange& change) {
      if (auto self = weak.lock()) {
        asio::post(self->strand(), [self, change] { self->on_discovery_change(change); });
      }
    });
    for (const auto& peer : discovery_->peers()) add_member(peer);
  }
  spawn(topology_loop());
  co_return;
}

asio::awaitable<void> Cluster::do_cleanup() {
  if (discovery_ && discovery_listener_ != 0) {
    discovery_->remove_peer_listener(discovery_listener_);
    discovery_listener_ = 0;
  }
  std::map<std::string, Member> members;
  {
    const std::lock_guard lock(mutex_);
    members.swap(members_);
    collected_ = topology::Topology{};
  }
  for (auto& [id, member] : members) {
    member.handle->remove_listener(member.listener);
    co_await stop_handle(member.handle);
  }
}

asio::awaitable<resource::HealthStatus> Cluster::do_health_check() {
  std::vector<std::string> unusable;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, member] : members_)
      if (!member.handle->available()) unusable.push_back(id);
  }
  if (unusable.empty()) co_return resource::HealthStatus{};
  std::string list;
  for (const auto& id : unusable) list += (list.empty() ? "" : ", ") + id;
  co_return resource::HealthStatus{false, "peers not usable: " + list};
}

std::map<std::string, std::string> Cluster::details() const {
  const std::lock_guard lock(mutex_);
  std::size_t usable = 0;
  std::string ids;
  for (const auto& [id, member] : members_) {
    if (member.handle->available()) ++usable;
    ids += (ids.empty() ? "" : ",") + id;
  }
  return {{"peers", std::to_string(members_.size())},
          {"usable_peers", std::to_string(usable)},
          {"peer_ids", ids}};
}

// ---------------------------------------------------------------------------------------------------
// Peer table

void Cluster::on_discovery_change(const net::PeerChange& change) {
  if (!resource::is_usable(state()) && state() != resource::ResourceState::INITIALIZING) return;
  switch (change.kind) {
    case net::PeerChangeKind::ADDED:
      add_member(change.peer);
      break;
    case net::PeerChangeKind::UPDATED: {
      bool moved = false;
      {
        const std::lock_guard lock(mutex_);
        auto it = members_.find(change.peer.node_id);
        if (it == members_.end()) {
          moved = true;  // not known yet: treat as new
        } else if (it->second.peer.endpoint() != change.peer.endpoint()) {
          moved = true;
        } else {
          it->second.peer = change.peer;  // new capabilities or last-seen time
        }
      }
      if (moved) {
        remove_member(change.peer.node_id, "moved to " + change.peer.endpoint());
        add_member(change.peer);
      }
      break;
    }
    case net::PeerChangeKind::REMOVED:
      remove_member(change.peer.node_id, fmt::format("{}{}{}", net::to_string(change.reason),
                                                     change.detail.empty() ? "" : ": ", change.detail));
      break;
  }
}

void Cluster::add_member(const net::DiscoveredPeer& peer) {
  if (peer.node_id == options_.node_id) return;
  {
    const std::lock_guard lock(mutex_);
    if (members_.contains(peer.node_id)) return;
  }
  std::shared_ptr<net::PeerHandle> handle;
  try {
    handle = resource::make_resource<net::PeerHandle>(
        strand(), peer.node_id, peer.endpoint(), peer.description(), peer.capabilities, options_.peer_options,
        registry_, options_.peer_resource_options);
  } catch (const std::invalid_argument& e) {
    // The previous handle of this peer is still shutting down (its id is taken): try again shortly.
    auto self = std::static_pointer_cast<Cluster>(shared_from_this());
    spawn([](std::shared_ptr<Cluster> cluster, net::DiscoveredPeer again) -> asio::awaitable<void> {
      co_await resource::sleep_for(std::chrono::milliseconds(200));
      if (cluster->discovery_ && cluster->discovery_->find_peer(again.node_id)) cluster->add_member(again);
    }(self, peer));
    return;
  }
  auto weak = std::weak_ptr<Cluster>(std::static_pointer_cast<Cluster>(shared_from_this()));
  const std::string node_id = peer.node_id;
  const auto listener = handle->add_listener([weak, node_id](const resource::Transition& transition) {
    if (auto self = weak.lock()) {
      asio::post(self->strand(),
                 [self, node_id, transition] { self->on_handle_transition(node_id, transition); });
    }
  });
  {
    const std::lock_guard lock(mutex_);
    members_[peer.node_id] = Member{peer, handle, listener, false};
  }
  spawn(start_handle(handle));
}

void Cluster::remove_member(const std::string& node_id, const std::string& reason) {
  Member member;
  {
    const std::lock_guard lock(mutex_);
    auto it = members_.find(node_id);
    if (it == members_.end()) return;
    member = std::move(it->second);
    members_.erase(it);
  }
  member.handle->remove_listener(member.listener);
  if (on_peer_lost_) on_peer_lost_(node_id, reason);
  if (resource::is_usable(state())) spawn(stop_handle(std::move(member.handle)));
}

asio::awaitable<void> Cluster::start_handle(std::shared_ptr<net::PeerHandle> handle) {
  try {
    co_await handle->initialize();
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) throw;
  } catch (const std::exception&) {
    // Recorded by the handle (ERROR with its cause); its supervision keeps reconnecting with backoff.
  }
}

asio::awaitable<void> Cluster::stop_handle(std::shared_ptr<net::PeerHandle> handle) {
  try {
    co_await handle->cleanup();
  } catch (const std::exception&) {
    // A failed cleanup is recorded by the handle itself; the handle ends CLOSED regardless.
  }
}

void Cluster::on_handle_transition(const std::string& node_id, const resource::Transition& transition) {
  bool lost = false;
  {
    const std::lock_guard lock(mutex_);
    auto it = members_.find(node_id);
    if (it == members_.end() || it->second.handle->id() != transition.resource_id) return;
    Member& member = it->second;
    if (transition.to == resource::ResourceState::READY) {
      member.was_usable = true;
    } else if (member.was_usable) {
      member.was_usable = false;
      lost = true;
    }
  }
  if (lost && on_peer_lost_) on_peer_lost_(node_id, transition.cause);
}

std::vector<std::shared_ptr<net::PeerHandle>> Cluster::peers() const {
  const std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<net::PeerHandle>> out;
  for (const auto& [id, member] : members_) out.push_back(member.handle);
  return out;
}

std::shared_ptr<net::PeerHandle> Cluster::find_peer(const std::string& node_id) const {
  const std::lock_guard lock(mutex_);
  const auto it = members_.find(node_id);
  return it == members_.end() ? nullptr : it->second.handle;
}

std::shared_ptr<net::PeerHandle> Cluster::usable_peer(const std::string& node_id) const {
  auto handle = find_peer(node_id);
  if (!handle) throw resource::UnavailableError(id(), fmt::format("peer {} is not connected", node_id));
  return handle;
}

asio::awaitable<bool> Cluster::health_probe(net::DiscoveredPeer peer) {
  auto handle = find_peer(peer.node_id);
  if (handle && handle->address() == peer.endpoint() && handle->ready())
    co_return co_await handle->health_check();
  // Not connected yet (or at another address): a short-lived connection answers.
  auto probe = std::make_shared<net::PeerHandle>(strand(), peer.node_id, peer.endpoint(), peer.description(),
                                                 peer.capabilities, options_.peer_options, nullptr,
                                                 probe_resource_options(options_.peer_options));
  bool healthy = false;
  bool aborted = false;
  try {
    co_await probe->initialize();
    healthy = true;
  } catch (const std::system_error& e) {
    aborted = e.code() == asio::error::operation_aborted;
  } catch (const std::exception&) {
    healthy = false;
  }
  co_await stop_handle(probe);
  if (aborted) throw std::system_error(asio::error::operation_aborted);
  co_return healthy;
}

// ---------------------------------------------------------------------------------------------------
// Topology

topology::Topology Cluster::ring_topology() const {
  topology::Topology t;
  const std::lock_guard lock(mutex_);
  for (const auto& [id, member] : members_) {
    if (!member.handle->available()) continue;
    t.update_node(id, member.peer.capabilities);
  }
  for (const auto& [id, member] : members_) {
    if (!member.handle->available()) continue;
    t.add_edge(options_.node_id, id, member.peer.description());
    for (const auto& edge : collected_.edges_from(id))
      if (t.find_node(edge.to_id) != nullptr || edge.to_id == options_.node_id)
        t.add_edge(id, edge.to_id, edge.description);
  }
  return t;
}

topology::Topology Cluster::collected_topology() const {
  const std::lock_guard lock(mutex_);
  return collected_;
}

std::vector<std::string> Cluster::peer_ids() const {
  const std::lock_guard lock(mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, member] : members_)
    if (member.handle->available()) ids.push_back(id);
  return ids;
}

asio::awaitable<void> Cluster::topology_loop() {
  for (;;) {
    co_await resource::sleep_for(options_.topology_interval);
    topology::Topology merged;
    for (const auto& handle : peers()) {
      if (!handle->available()) continue;
      try {
        std::vector<std::string> visited(1, options_.node_id);
        const auto theirs = co_await handle->collect_topology(std::move(visited), 4);
        merged.update_node(handle->node_id(), handle->device_capabilities());
        merged.merge(handle->node_id(), theirs);
      } catch (const std::system_error& e) {
        if (e.code() == asio::error::operation_aborted) throw;
      } catch (const std::exception&) {
        // Counted by the peer's circuit breaker; an unreachable peer drops out of ring_topology().
      }
    }
    const std::lock_guard lock(mutex_);
    collected_ = std::move(merged);
  }
}

// ---------------------------------------------------------------------------------------------------
// ClusterLink

asio::awaitable<void> Cluster::send_prompt(std::string to, topology::Shard shard, std::string prompt,
                                           std::string request_id, net::InferenceState state) {
  auto handle = usable_peer(to);
  net::PromptCall call{std::move(shard), std::move(prompt), std::move(request_id), std::move(state)};
  co_await handle->send_prompt(std::move(call));
}

asio::awaitable<void> Cluster::send_tensor(std::string to, topology::Shard shard, net::Tensor tensor,
                                           std::string request_id, net::InferenceState state) {
  auto handle = usable_peer(to);
  net::TensorCall call{std::move(shard), std::move(tensor), std::move(request_id), std::move(state)};
  co_await handle->send_tensor(std::move(call));
}

asio::awaitable<void> Cluster::send_result(std::string to, std::string request_id,
                                           std::vector<std::int32_t> tokens, bool is_finished) {
  auto handle = usable_peer(to);
  co_await handle->send_result(std::move(request_id), std::move(tokens), is_finished);
}

asio::awaitable<void> Cluster::send_status(std::string to, std::string request_id, std::string status_json) {
  auto handle = usable_peer(to);
  auto status = nlohmann::json::parse(status_json);
  co_await handle->send_opaque_status(std::move(request_id), std::move(status));
}

}  // namespace exo::node
