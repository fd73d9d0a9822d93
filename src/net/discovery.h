// Discovery: the set of peers a node knows about, kept by a resource (UDP broadcast, manual file).
//
// Contract
// - peers(), find_peer(), peer_count() and counters() are thread-safe snapshots (short internal mutex).
// - The peer table changes only on the resource's strand. Every change (ADDED, UPDATED, REMOVED with a
//   reason) is delivered to the peer listeners on that strand, in order, with no lock held; listeners
//   must not block and their exceptions are ignored.
// - A peer enters the table only after the injected health probe succeeded for its address (or at once
//   when no probe is set). Probes are rate-limited: at most one per peer per health_probe_interval,
//   except that a new peer or a new address is probed at once; at most one probe per peer is in flight,
//   and at most max_concurrent_probes overall. A failed probe of a known peer removes it
//   (HEALTH_FAILED) after probe_failures_to_remove consecutive failures.
// - report_peer_unhealthy() lets the owner (the node, from its peer handles) remove a peer at once; it
//   comes back only through a later successful probe, no sooner than health_probe_interval.
// - cleanup() removes every peer (REMOVED, reason STOPPED) and wakes discover_peers() callers with
//   ClosedError. Subclasses implement the transport; the table, probes and expiry live here.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resource/async_resource.h"
#include "topology/device_capabilities.h"

namespace exo::net {

struct DiscoveredPeer {
  std::string node_id;
  std::string address;  // host: the datagram's source IPv4 address (UDP) or the file's address (manual)
  int port = 0;         // the peer's gRPC port
  topology::DeviceCapabilities capabilities;
  int interface_priority = 0;               // sender-side priority of the interface (UDP); 0 for manual peers
  std::string interface_name;               // sender's interface (UDP); empty for manual peers
  std::string interface_type;               // sender's interface type label (UDP); "MAN" for manual peers
  resource::Clock::time_point last_seen{};  // last datagram (UDP), last good probe or load (manual)

  std::string endpoint() const { return address + ":" + std::to_string(port); }
  // Legacy's handle description: "<interface_type> (<interface_name>)", or "MAN" for manual peers.
  std::string description() const;
  bool operator==(const DiscoveredPeer&) const = default;
};

enum class PeerChangeKind { ADDED, UPDATED, REMOVED };

enum class PeerRemovalReason {
  NONE,                // not a removal
  EXPIRED,             // no datagram within the discovery timeout (UDP)
  HEALTH_FAILED,       // the health probe failed
  REPORTED_UNHEALTHY,  // the owner called report_peer_unhealthy()
  FILE_EDIT,           // removed from (or moved in) the manual configuration file
  STOPPED,             // discovery was cleaned up
};

std::string_view to_string(PeerChangeKind kind) noexcept;
std::string_view to_string(PeerRemovalReason reason) noexcept;  // "expired", "health_failed", ...

struct PeerChange {
  PeerChangeKind kind = PeerChangeKind::ADDED;
  DiscoveredPeer peer;                     // after the change (REMOVED: as it was)
  std::optional<DiscoveredPeer> previous;  // UPDATED: before the change
  PeerRemovalReason reason = PeerRemovalReason::NONE;
  std::string detail;  // for people: why it changed
};

using PeerListener = std::function<void(const PeerChange&)>;

// Health of a discovered peer, supplied by the node (it calls the peer's HealthCheck RPC). Returns
// false or throws when the peer is unhealthy. The argument stays valid until the awaitable completes.
// It runs on the discovery's strand under health_probe_timeout and is cancelled by cleanup().
using HealthProbe = std::function<asio::awaitable<bool>(const DiscoveredPeer&)>;

struct DiscoveryOptions {
  std::string node_id;  // our own id: never a peer
  HealthProbe health_probe;
  std::chrono::steady_clock::duration health_probe_interval = std::chrono::seconds(5);
  std::chrono::steady_clock::duration health_probe_timeout = std::chrono::seconds(15);
  int probe_failures_to_remove = 1;        // legacy removes a peer on its first failed check
  std::size_t max_concurrent_probes = 16;  // bounds what a flood of fake node ids can start
  std::size_t max_tracked_nodes = 1024;    // known peers plus candidates being probed
  // Discovery reports its own problems as DEGRADED; health failures never escalate it to ERROR by
  // default (failures_to_error = 0), since re-initializing cannot fix a bad file or a dead network.
  resource::ResourceOptions resource = default_resource_options();

  static resource::ResourceOptions default_resource_options();
  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

// Cumulative since construction; all maps are keyed by the reason names documented in docs/discovery.md.
struct DiscoveryCounters {
  std::uint64_t datagrams_received = 0;
  std::uint64_t datagrams_accepted = 0;                    // reached the peer table
  std::map<std::string, std::uint64_t> datagrams_dropped;  // malformed, hostile or filtered
  std::uint64_t receive_errors = 0;
  std::uint64_t broadcast_rounds = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t send_failures = 0;
  std::map<std::string, std::uint64_t> sightings_ignored;  // valid but not acted on (lower_priority, ...)
  std::uint64_t probes_started = 0;
  std::uint64_t probes_succeeded = 0;
  std::uint64_t probes_failed = 0;
  std::uint64_t peers_added = 0;
  std::uint64_t peers_updated = 0;
  std::map<std::string, std::uint64_t> peers_removed;  // by PeerRemovalReason name
  std::uint64_t config_loads = 0;                      // manual: successful (re)loads
  std::uint64_t config_errors = 0;                     // manual: rejected files
};

class Discovery : public resource::AsyncResource {
 public:
  using PeerListenerId = std::uint64_t;

  std::vector<DiscoveredPeer> peers() const;  // sorted by node id
  std::optional<DiscoveredPeer> find_peer(std::string_view node_id) const;
  std::size_t peer_count() const;
  DiscoveryCounters counters() const;
  const std::string& node_id() const noexcept { return options_.node_id; }
  const DiscoveryOptions& discovery_options() const noexcept { return options_; }

  PeerListenerId add_peer_listener(PeerListener listener);
  void remove_peer_listener(PeerListenerId id);

  // Legacy's discover_peers(wait_for_peers): initializes if needed, then waits until at least
  // `wait_for_peers` peers are known or `timeout` passes, and returns the peers known then (fewer on
  // timeout). Throws ClosedError when discovery is cleaned up meanwhile, operation_aborted when the
  // caller is cancelled. Callable from any executor.
  asio::awaitable<std::vector<DiscoveredPeer>> discover_peers(std::size_t wait_for_peers,
                                                              resource::Clock::duration timeout);

  // The owner found the peer unhealthy (e.g. its circuit breaker opened): remove it now (reason
  // REPORTED_UNHEALTHY). Thread-safe; a no-op for an unknown peer.
  void report_peer_unhealthy(std::string node_id, std::string detail);

 protected:
  // `expire_after` > 0: a peer not seen (observe()) for that long is removed as EXPIRED.
  Discovery(const asio::any_io_executor& executor, resource::ResourceIdentity identity,
            DiscoveryOptions options, resource::Clock::duration expire_after,
            std::shared_ptr<resource::ResourceRegistry> registry);

  // How a sighting at a different address than the known one is treated.
  enum class AddressRule {
    HIGHER_PRIORITY,  // legacy UDP: switch only for a strictly higher interface priority
    ANY,              // manual: the configured address is the address
  };
  enum class Sighting { REFRESHED, ADDED, PROBING, IGNORED };

  // Strand only. The hooks of a subclass call these.
  void begin_discovery();  // in do_initialize, before anything is observed; starts the sweep task
  void end_discovery();    // in do_cleanup: removes every peer (STOPPED), wakes waiters
  // Changes at every begin/end. Re-initialization from ERROR runs do_cleanup without stopping the
  // tasks of the previous run, so every loop exits as soon as the session it was started in is over.
  std::uint64_t session() const noexcept { return session_; }
  bool running() const noexcept { return running_; }
  const std::uint64_t& session_ref() const noexcept { return session_; }
  // Applies §3.4 steps 5-6 to a sighting of a peer (its last_seen is ignored: now is used).
  Sighting observe(DiscoveredPeer sighting, AddressRule rule);
  void remove_peer(const std::string& node_id, PeerRemovalReason reason, std::string detail);
  // Replaces the capabilities of a known peer (UPDATED when they differ).
  void update_capabilities(const std::string& node_id, const topology::DeviceCapabilities& capabilities);
  // Stops tracking a node that is not a peer (drops its probe back-off); a probe in flight is ignored.
  void forget(const std::string& node_id);

  // Counters (thread-safe).
  void count_drop(std::string_view reason);
  template <typename F>
  void update_counters(F&& update) {
    std::lock_guard lock(counters_mutex_);
    update(counters_);
  }
  // Facts for info().details: peer count, probes, drops.
  std::map<std::string, std::string> discovery_details() const;

 private:
  enum class ProbeKind { CANDIDATE, REFRESH };
  struct Tracking {
    bool probe_in_flight = false;
    resource::Clock::time_point last_probe_started = resource::Clock::time_point::min();
    int consecutive_failures = 0;
    std::string failed_endpoint;  // an address whose probe failed, not re-probed before the interval
    resource::Clock::time_point failed_at = resource::Clock::time_point::min();
    std::uint64_t probe_token = 0;  // identifies the probe in flight; forget() invalidates it
  };

  void install(DiscoveredPeer peer, std::string detail);
  void start_probe(Tracking& tracking, DiscoveredPeer peer, ProbeKind kind, AddressRule rule);
  asio::awaitable<void> run_probe(DiscoveredPeer peer, ProbeKind kind, AddressRule rule, std::uint64_t token);
  void apply_probe(const DiscoveredPeer& peer, ProbeKind kind, AddressRule rule, std::uint64_t token,
                   bool healthy, const std::string& detail);
  bool probe_due(const Tracking& tracking, resource::Clock::time_point now) const;
  asio::awaitable<void> sweep_loop(std::uint64_t session);
  void sweep();
  void emit(const PeerChange& change);
  void count_ignored(std::string_view reason);
  asio::awaitable<std::vector<DiscoveredPeer>> wait_on_strand(std::size_t wait_for_peers,
                                                              resource::Clock::time_point deadline);

  DiscoveryOptions options_;
  resource::Clock::duration expire_after_;
  resource::Clock::duration sweep_interval_;

  mutable std::mutex peers_mutex_;  // guards peers_; written on the strand only
  std::map<std::string, DiscoveredPeer, std::less<>> peers_;

  mutable std::mutex counters_mutex_;
  DiscoveryCounters counters_;

  mutable std::mutex listeners_mutex_;
  std::map<PeerListenerId, PeerListener> listeners_;
  PeerListenerId next_listener_id_ = 1;

  // Strand-only.
  std::map<std::string, Tracking, std::less<>> tracking_;
  std::size_t probes_in_flight_ = 0;
  std::uint64_t next_probe_token_ = 1;
  bool running_ = false;
  std::uint64_t session_ = 0;
  std::list<asio::steady_timer*> waiters_;
};

}  // namespace exo::net
