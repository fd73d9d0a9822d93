#include "net/discovery.h"

#include <fmt/format.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <stdexcept>

#include "resource/errors.h"
#include "resource/timeouts.h"

namespace exo::net {

using resource::Clock;

std::string DiscoveredPeer::description() const {
  if (interface_type == "MAN" && interface_name.empty()) return "MAN";
  return interface_type + " (" + interface_name + ")";
}

std::string_view to_string(PeerChangeKind kind) noexcept {
  switch (kind) {
    case PeerChangeKind::ADDED:
      return "added";
    case PeerChangeKind::UPDATED:
      return "updated";
    case PeerChangeKind::REMOVED:
      return "removed";
  }
  return "unknown";
}

std::string_view to_string(PeerRemovalReason reason) noexcept {
  switch (reason) {
    case PeerRemovalReason::NONE:
      return "none";
    case PeerRemovalReason::EXPIRED:
      return "expired";
    case PeerRemovalReason::HEALTH_FAILED:
      return "health_failed";
    case PeerRemovalReason::REPORTED_UNHEALTHY:
      return "reported_unhealthy";
    case PeerRemovalReason::FILE_EDIT:
      return "file_edit";
    case PeerRemovalReason::STOPPED:
      return "stopped";
  }
  return "unknown";
}

resource::ResourceOptions DiscoveryOptions::default_resource_options() {
  resource::ResourceOptions options;
  options.health.failures_to_error = 0;
  return options;
}

void DiscoveryOptions::validate() const {
  if (node_id.empty()) throw std::invalid_argument("discovery: node_id must not be empty");
  if (health_probe_interval <= Clock::duration::zero())
    throw std::invalid_argument("discovery: health_probe_interval must be > 0");
  if (health_probe_timeout <= Clock::duration::zero())
    throw std::invalid_argument("discovery: health_probe_timeout must be > 0");
  if (probe_failures_to_remove < 1)
    throw std::invalid_argument("discovery: probe_failures_to_remove must be >= 1");
  if (max_concurrent_probes < 1) throw std::invalid_argument("discovery: max_concurrent_probes must be >= 1");
  if (max_tracked_nodes < 1) throw std::invalid_argument("discovery: max_tracked_nodes must be >= 1");
  resource.validate();
}

namespace {

Clock::duration sweep_interval_for(const DiscoveryOptions& options, Clock::duration expire_after) {
  Clock::duration base = options.health_probe_interval;
  if (expire_after > Clock::duration::zero()) base = std::min(base, expire_after);
  return std::clamp<Clock::duration>(base / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
}

}  // namespace

Discovery::Discovery(const asio::any_io_executor& executor, resource::ResourceIdentity identity,
                     DiscoveryOptions options, Clock::duration expire_after,
                     std::shared_ptr<resource::ResourceRegistry> registry)
    : AsyncResource(executor, std::move(identity), options.resource, std::move(registry)),
      options_(std::move(options)),
      expire_after_(expire_after),
      sweep_interval_(sweep_interval_for(options_, expire_after)) {
  options_.validate();
  if (expire_after < Clock::duration::zero()) throw std::invalid_argument("discovery: expiry must be >= 0");
}

// ---------------------------------------------------------------- snapshots

std::vector<DiscoveredPeer> Discovery::peers() const {
  std::lock_guard lock(peers_mutex_);
  std::vector<DiscoveredPeer> out;
  out.reserve(peers_.size());
  for (const auto& [id, peer] : peers_) out.push_back(peer);
  return out;
}

std::optional<DiscoveredPeer> Discovery::find_peer(std::string_view node_id) const {
  std::lock_guard lock(peers_mutex_);
  const auto it = peers_.find(node_id);
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

std::size_t Discovery::peer_count() const {
  std::lock_guard lock(peers_mutex_);
  return peers_.size();
}

DiscoveryCounters Discovery::counters() const {
  std::lock_guard lock(counters_mutex_);
  return counters_;
}

std::map<std::string, std::string> Discovery::discovery_details() const {
  const auto c = counters();
  std::map<std::string, std::string> out;
  out["node_id"] = options_.node_id;
  out["peers"] = std::to_string(peer_count());
  out["probes"] =
      fmt::format("{} started, {} ok, {} failed", c.probes_started, c.probes_succeeded, c.probes_failed);
  std::uint64_t dropped = 0;
  for (const auto& [reason, n] : c.datagrams_dropped) dropped += n;
  out["datagrams"] =
      fmt::format("{} received, {} accepted, {} dropped, {} sent, {} send failures", c.datagrams_received,
                  c.datagrams_accepted, dropped, c.datagrams_sent, c.send_failures);
  std::string drops;
  for (const auto& [reason, n] : c.datagrams_dropped) {
    drops += (drops.empty() ? "" : ", ") + fmt::format("{}={}", reason, n);
  }
  if (!drops.empty()) out["dropped"] = drops;
  return out;
}

void Discovery::count_drop(std::string_view reason) {
  std::lock_guard lock(counters_mutex_);
  ++counters_.datagrams_dropped[std::string(reason)];
}

void Discovery::count_ignored(std::string_view reason) {
  std::lock_guard lock(counters_mutex_);
  ++counters_.sightings_ignored[std::string(reason)];
}

// ---------------------------------------------------------------- listeners

Discovery::PeerListenerId Discovery::add_peer_listener(PeerListener listener) {
  std::lock_guard lock(listeners_mutex_);
  const PeerListenerId id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Discovery::remove_peer_listener(PeerListenerId id) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.erase(id);
}

void Discovery::emit(const PeerChange& change) {
  {
    std::lock_guard lock(counters_mutex_);
    switch (change.kind) {
      case PeerChangeKind::ADDED:
        ++counters_.peers_added;
        break;
      case PeerChangeKind::UPDATED:
        ++counters_.peers_updated;
        break;
      case PeerChangeKind::REMOVED:
        ++counters_.peers_removed[std::string(to_string(change.reason))];
        break;
    }
  }
  std::vector<PeerListener> listeners;
  {
    std::lock_guard lock(listeners_mutex_);
    listeners.reserve(listeners_.size());
    for (const auto& [id, listener] : listeners_) listeners.push_back(listener);
  }
  for (const auto& listener : listeners) {
    try {
      listener(change);
    } catch (...) {
      // A listener's failure must not break discovery; listeners report their own errors.
    }
  }
  for (asio::steady_timer* waiter : waiters_) waiter->cancel();
}

// ---------------------------------------------------------------- discover_peers

asio::awaitable<std::vector<DiscoveredPeer>> Discovery::discover_peers(std::size_t wait_for_peers,
                                                                       Clock::duration timeout) {
  const auto deadline = resource::deadline_after(timeout);
  if (!ready()) co_await ensure_ready();
  auto self = std::static_pointer_cast<Discovery>(shared_from_this());
  co_return co_await asio::co_spawn(strand(), self->wait_on_strand(wait_for_peers, deadline),
                                    asio::use_awaitable);
}

asio::awaitable<std::vector<DiscoveredPeer>> Discovery::wait_on_strand(std::size_t wait_for_peers,
                                                                       Clock::time_point deadline) {
  auto self = shared_from_this();
  for (;;) {
    if (!running_) {
      throw resource::ClosedError(id(), fmt::format("discovery '{}' stopped while waiting for peers", id()));
    }
    if (peer_count() >= wait_for_peers || Clock::now() >= deadline) co_return peers();
    asio::steady_timer timer(strand(), deadline);
    waiters_.push_back(&timer);
    const auto position = std::prev(waiters_.end());
    (void)co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    waiters_.erase(position);
    const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none) {
      throw std::system_error(asio::error::operation_aborted, "discover_peers cancelled");
    }
  }
}

// ---------------------------------------------------------------- lifecycle helpers

void Discovery::begin_discovery() {
  running_ = true;
  ++session_;
  spawn(sweep_loop(session_));
}

void Discovery::end_discovery() {
  running_ = false;
  ++session_;
  for (const auto& peer : peers()) {
    remove_peer(peer.node_id, PeerRemovalReason::STOPPED, "discovery stopped");
  }
  tracking_.clear();
  probes_in_flight_ = 0;
  for (asio::steady_timer* waiter : waiters_) waiter->cancel();
}

// ---------------------------------------------------------------- the peer table

bool Discovery::probe_due(const Tracking& tracking, Clock::time_point now) const {
  if (tracking.probe_in_flight || !options_.health_probe) return false;
  return tracking.last_probe_started == Clock::time_point::min() ||
         now - tracking.last_probe_started >= options_.health_probe_interval;
}

Discovery::Sighting Discovery::observe(DiscoveredPeer sighting, AddressRule rule) {
  const auto now = Clock::now();
  sighting.last_seen = now;
  auto tracked = tracking_.find(sighting.node_id);
  if (tracked == tracking_.end()) {
    if (tracking_.size() >= options_.max_tracked_nodes) {
      count_ignored("peer_table_full");
      return Sighting::IGNORED;
    }
    tracked = tracking_.emplace(sighting.node_id, Tracking{}).first;
  }
  Tracking& tracking = tracked->second;
  const auto known = find_peer(sighting.node_id);

  if (known && known->endpoint() == sighting.endpoint()) {
    // §3.4 step 6: same address. Refresh; probe only when due (legacy probed on every datagram).
    DiscoveredPeer refreshed = *known;
    refreshed.last_seen = now;
    refreshed.interface_priority = sighting.interface_priority;
    refreshed.interface_name = sighting.interface_name;
    refreshed.interface_type = sighting.interface_type;
    const bool capabilities_changed = refreshed.capabilities != sighting.capabilities;
    refreshed.capabilities = sighting.capabilities;
    {
      std::lock_guard lock(peers_mutex_);
      peers_[refreshed.node_id] = refreshed;
    }
    if (capabilities_changed) {
      emit(PeerChange{PeerChangeKind::UPDATED, refreshed, *known, PeerRemovalReason::NONE,
                      "device capabilities changed"});
    }
    if (probe_due(tracking, now)) start_probe(tracking, *known, ProbeKind::REFRESH, rule);
    return Sighting::REFRESHED;
  }
  if (known && rule == AddressRule::HIGHER_PRIORITY &&
      known->interface_priority >= sighting.interface_priority) {
    count_ignored("lower_priority");  // §3.4 step 5: switch only for a strictly higher priority
    return Sighting::IGNORED;
  }
  // A new peer, or a known one at a new address: probe it at once (subject to back-off and capacity).
  if (tracking.probe_in_flight) {
    count_ignored("probe_pending");
    return Sighting::IGNORED;
  }
  if (tracking.failed_endpoint == sighting.endpoint() &&
      now - tracking.failed_at < options_.health_probe_interval) {
    count_ignored("probe_backoff");
    return Sighting::IGNORED;
  }
  if (!options_.health_probe) {
    install(std::move(sighting), "discovered (no health probe configured)");
    return Sighting::ADDED;
  }
  if (probes_in_flight_ >= options_.max_concurrent_probes) {
    count_ignored("probe_capacity");
    return Sighting::IGNORED;
  }
  start_probe(tracking, std::move(sighting), ProbeKind::CANDIDATE, rule);
  return Sighting::PROBING;
}

void Discovery::install(DiscoveredPeer peer, std::string detail) {
  std::optional<DiscoveredPeer> previous;
  {
    std::lock_guard lock(peers_mutex_);
    auto it = peers_.find(peer.node_id);
    if (it != peers_.end()) {
      previous = it->second;
      it->second = peer;
    } else {
      peers_.emplace(peer.node_id, peer);
    }
  }
  auto& tracking = tracking_[peer.node_id];
  tracking.consecutive_failures = 0;
  tracking.failed_endpoint.clear();
  if (previous) {
    emit(PeerChange{PeerChangeKind::UPDATED, std::move(peer), std::move(previous), PeerRemovalReason::NONE,
                    std::move(detail)});
  } else {
    emit(PeerChange{PeerChangeKind::ADDED, std::move(peer), std::nullopt, PeerRemovalReason::NONE,
                    std::move(detail)});
  }
}

void Discovery::remove_peer(const std::string& node_id, PeerRemovalReason reason, std::string detail) {
  std::optional<DiscoveredPeer> removed;
  {
    std::lock_guard lock(peers_mutex_);
    auto it = peers_.find(node_id);
    if (it == peers_.end()) return;
    removed = std::move(it->second);
    peers_.erase(it);
  }
  auto tracked = tracking_.find(node_id);
  if (tracked != tracking_.end()) {
    tracked->second.consecutive_failures = 0;
    if (reason == PeerRemovalReason::HEALTH_FAILED || reason == PeerRemovalReason::REPORTED_UNHEALTHY) {
      tracked->second.failed_endpoint = removed->endpoint();
      tracked->second.failed_at = Clock::now();
    }
  }
  emit(PeerChange{PeerChangeKind::REMOVED, std::move(*removed), std::nullopt, reason, std::move(detail)});
}

void Discovery::update_capabilities(const std::string& node_id,
                                    const topology::DeviceCapabilities& capabilities) {
  std::optional<DiscoveredPeer> before;
  DiscoveredPeer after;
  {
    std::lock_guard lock(peers_mutex_);
    auto it = peers_.find(node_id);
    if (it == peers_.end() || it->second.capabilities == capabilities) return;
    before = it->second;
    it->second.capabilities = capabilities;
    after = it->second;
  }
  emit(PeerChange{PeerChangeKind::UPDATED, std::move(after), std::move(before), PeerRemovalReason::NONE,
                  "device capabilities changed"});
}

void Discovery::forget(const std::string& node_id) {
  auto tracked = tracking_.find(node_id);
  if (tracked == tracking_.end()) return;
  if (tracked->second.probe_in_flight) --probes_in_flight_;
  tracking_.erase(tracked);
}

void Discovery::report_peer_unhealthy(std::string node_id, std::string detail) {
  asio::post(strand(), [weak = weak_from_this(), node_id = std::move(node_id), detail = std::move(detail)]() {
    auto self = std::static_pointer_cast<Discovery>(weak.lock());
    if (!self || !self->running_) return;
    self->remove_peer(node_id, PeerRemovalReason::REPORTED_UNHEALTHY,
                      detail.empty() ? std::string("reported unhealthy") : "reported unhealthy: " + detail);
  });
}

// ---------------------------------------------------------------- probes

void Discovery::start_probe(Tracking& tracking, DiscoveredPeer peer, ProbeKind kind, AddressRule rule) {
  tracking.probe_in_flight = true;
  tracking.last_probe_started = Clock::now();
  tracking.probe_token = next_probe_token_++;
  ++probes_in_flight_;
  {
    std::lock_guard lock(counters_mutex_);
    ++counters_.probes_started;
  }
  spawn(run_probe(std::move(peer), kind, rule, tracking.probe_token));
}

asio::awaitable<void> Discovery::run_probe(DiscoveredPeer peer, ProbeKind kind, AddressRule rule,
                                           std::uint64_t token) {
  auto self = shared_from_this();
  bool healthy = false;
  std::exception_ptr failure;
  try {
    healthy =
        co_await resource::run_with_timeout(options_.health_probe(peer), options_.health_probe_timeout, id(),
                                            fmt::format("health probe of peer '{}'", peer.node_id));
  } catch (...) {
    failure = std::current_exception();
  }
  const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
  if (cancelled != asio::cancellation_type::none || !running_) co_return;  // cleanup: leave no trace
  std::string detail;
  if (failure) {
    detail = "health probe failed: " + resource::describe(failure);
  } else if (!healthy) {
    detail = "health probe reported the peer unhealthy";
  }
  apply_probe(peer, kind, rule, token, failure == nullptr && healthy, detail);
}

void Discovery::apply_probe(const DiscoveredPeer& peer, ProbeKind kind, AddressRule rule, std::uint64_t token,
                            bool healthy, const std::string& detail) {
  auto tracked = tracking_.find(peer.node_id);
  if (tracked == tracking_.end() || tracked->second.probe_token != token) return;  // forgotten meanwhile
  Tracking& tracking = tracked->second;
  tracking.probe_in_flight = false;
  --probes_in_flight_;
  {
    std::lock_guard lock(counters_mutex_);
    ++(healthy ? counters_.probes_succeeded : counters_.probes_failed);
  }
  const auto now = Clock::now();
  const auto known = find_peer(peer.node_id);
  if (kind == ProbeKind::CANDIDATE) {
    if (!healthy) {
      tracking.failed_endpoint = peer.endpoint();
      tracking.failed_at = now;
      return;
    }
    // Re-check the priority rule: the peer may have moved to a better address while we probed.
    if (known && known->endpoint() != peer.endpoint() && rule == AddressRule::HIGHER_PRIORITY &&
        known->interface_priority >= peer.interface_priority) {
      return;
    }
    DiscoveredPeer accepted = peer;
    accepted.last_seen = now;
    install(std::move(accepted), known
                                     ? fmt::format("moved from {} to {}", known->endpoint(), peer.endpoint())
                                     : std::string("discovered; health probe passed"));
    return;
  }
  // REFRESH of a known peer: meaningful only if it is still at the probed address.
  if (!known || known->endpoint() != peer.endpoint()) return;
  if (healthy) {
    tracking.consecutive_failures = 0;
    if (expire_after_ == Clock::duration::zero()) {
      std::lock_guard lock(peers_mutex_);
      auto it = peers_.find(peer.node_id);
      if (it != peers_.end()) it->second.last_seen = now;
    }
    return;
  }
  if (++tracking.consecutive_failures >= options_.probe_failures_to_remove) {
    remove_peer(peer.node_id, PeerRemovalReason::HEALTH_FAILED, detail);
  }
}

// ---------------------------------------------------------------- expiry and periodic probes

asio::awaitable<void> Discovery::sweep_loop(std::uint64_t session) {
  auto self = shared_from_this();
  for (;;) {
    co_await resource::sleep_for(sweep_interval_);
    if (session != session_) co_return;
    sweep();
  }
}

void Discovery::sweep() {
  const auto now = Clock::now();
  for (const auto& peer : peers()) {
    if (expire_after_ > Clock::duration::zero() && now - peer.last_seen > expire_after_) {
      remove_peer(peer.node_id, PeerRemovalReason::EXPIRED,
                  fmt::format("not seen for {} (discovery timeout {})",
                              resource::format_duration(now - peer.last_seen),
                              resource::format_duration(expire_after_)));
      continue;
    }
    auto tracked = tracking_.find(peer.node_id);
    if (tracked == tracking_.end()) tracked = tracking_.emplace(peer.node_id, Tracking{}).first;
    if (probe_due(tracked->second, now) && probes_in_flight_ < options_.max_concurrent_probes) {
      start_probe(tracked->second, peer, ProbeKind::REFRESH, AddressRule::ANY);
    }
  }
  // Forget candidates that are neither peers nor being probed once their back-off has passed.
  std::lock_guard lock(peers_mutex_);
  for (auto it = tracking_.begin(); it != tracking_.end();) {
    const Tracking& t = it->second;
    const bool idle =
        !t.probe_in_flight && peers_.find(it->first) == peers_.end() &&
        (t.failed_at == Clock::time_point::min() || now - t.failed_at >= options_.health_probe_interval) &&
        (t.last_probe_started == Clock::time_point::min() ||
         now - t.last_probe_started >= options_.health_probe_interval);
    it = idle ? tracking_.erase(it) : std::next(it);
  }
}

}  // namespace exo::net
