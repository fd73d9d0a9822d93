// Cluster: the node's peers — one PeerHandle per peer that discovery found — and the node's view of
// the cluster topology; a resource (type "cluster") and the gRPC implementation of ClusterLink.
//
// Contract
// - Lifecycle: initialize() subscribes to discovery and starts the topology collection task (every
//   topology_interval: CollectTopology from each usable peer, merged into topology()). cleanup() stops
//   the task, unsubscribes and cleans up every peer handle. Peer handles are resources of their own
//   ("peer-<node id>", type "peer_handle", in the node's registry, so `exo resources` shows them).
// - Discovery ADDED -> a handle is created and initialized (it connects with a deadline and
//   reconnects with backoff under supervision); UPDATED with a new address -> the handle is replaced;
//   REMOVED -> the handle is cleaned up and released, and on_peer_lost runs with the reason.
// - A peer whose handle leaves READY (a failed health check, connection lost, circuit breaker open) is at
// once out of
//   ring_topology() (new requests avoid it) and on_peer_lost runs, so requests through it fail fast.
//   It comes back when its handle is READY again.
// - health_probe() is what discovery uses to vet a peer: the existing handle's HealthCheck, or a
//   short-lived connection for a peer not known yet. Health probes are rate-limited by discovery.
// - Thread-safety: every public method may be called from any thread. The peer table is written on
//   the strand and read under a mutex.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/discovery.h"
#include "net/peer_handle.h"
#include "node/cluster_link.h"
#include "resource/async_resource.h"

namespace exo::node {

struct ClusterOptions {
  std::string node_id;
  std::chrono::milliseconds topology_interval{2'000};
  net::PeerOptions peer_options;
  resource::ResourceOptions peer_resource_options = net::default_peer_resource_options();
};

class Cluster : public resource::AsyncResource, public ClusterLink {
 public:
  using PeerLost = std::function<void(const std::string& node_id, const std::string& reason)>;

  Cluster(asio::any_io_executor executor, ClusterOptions options, std::shared_ptr<net::Discovery> discovery,
          std::shared_ptr<resource::ResourceRegistry> registry);
  ~Cluster() override;

  // Set before initialize().
  void set_on_peer_lost(PeerLost callback) { on_peer_lost_ = std::move(callback); }

  // For discovery (DiscoveryOptions::health_probe).
  asio::awaitable<bool> health_probe(net::DiscoveredPeer peer);

  std::vector<std::shared_ptr<net::PeerHandle>> peers() const;
  std::shared_ptr<net::PeerHandle> find_peer(const std::string& node_id) const;
  // The merged topology of the last collection (peers' views included), for display.
  topology::Topology collected_topology() const;

  // ClusterLink
  topology::Topology ring_topology() const override;
  std::vector<std::string> peer_ids() const override;
  asio::awaitable<void> send_prompt(std::string to, topology::Shard shard, std::string prompt,
                                    std::string request_id, net::InferenceState state) override;
  asio::awaitable<void> send_tensor(std::string to, topology::Shard shard, net::Tensor tensor,
                                    std::string request_id, net::InferenceState state) override;
  asio::awaitable<void> send_result(std::string to, std::string request_id, std::vector<std::int32_t> tokens,
                                    bool is_finished) override;
  asio::awaitable<void> send_status(std::string to, std::string request_id, std::string status_json) override;

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  struct Member {
    net::DiscoveredPeer peer;
    std::shared_ptr<net::PeerHandle> handle;
    resource::AsyncResource::ListenerId listener = 0;
    bool was_usable = false;
  };

  void on_discovery_change(const net::PeerChange& change);  // strand
  void add_member(const net::DiscoveredPeer& peer);         // strand
  void remove_member(const std::string& node_id, const std::string& reason);
  asio::awaitable<void> start_handle(std::shared_ptr<net::PeerHandle> handle);
  asio::awaitable<void> stop_handle(std::shared_ptr<net::PeerHandle> handle);
  void on_handle_transition(const std::string& node_id, const resource::Transition& transition);
  asio::awaitable<void> topology_loop();
  std::shared_ptr<net::PeerHandle> usable_peer(const std::string& node_id) const;

  ClusterOptions options_;
  std::shared_ptr<net::Discovery> discovery_;
  std::shared_ptr<resource::ResourceRegistry> registry_;
  PeerLost on_peer_lost_;
  net::Discovery::PeerListenerId discovery_listener_ = 0;

  mutable std::mutex mutex_;  // guards members_ and collected_
  std::map<std::string, Member> members_;
  topology::Topology collected_;
};

}  // namespace exo::node
