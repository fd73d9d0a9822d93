// Node: one exo node — its resources composed as a ResourceGroup, and the Backend the HTTP API
// serves.
//
// Contract
// - Members, in dependency order: "monitor" (optional) and "engine", then "api" (depends on engine).
//   initialize() starts them in that order, cleanup() stops them in reverse after ending every
//   generation in flight with a clear error.
// - generate() is thread-safe; each generation runs as a task owned by the node, writing only to its
//   own GenerationStream. A cancelled stream (client gone) stops its generation at the next token.
// - Today the node serves the whole model locally; the ring across peers (discovery, gRPC, partitioning)
//   plugs in as further members.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/backend.h"
#include "inference/inference_engine.h"
#include "node/cluster_link.h"
#include "node/request_context.h"
#include "node/text_assembler.h"
#include "resource/registry.h"
#include "resource/resource_group.h"
#include "resource/resource_monitor.h"

namespace exo::net {
class Discovery;
class NodeServiceHandler;
}  // namespace exo::net

namespace exo::node {

class Cluster;

struct NodeOptions {
  std::string node_id;
  std::string api_host = "0.0.0.0";
  int api_port = 52415;
  std::string inference_engine = "dummy";  // dummy | native
  std::string default_model = "dummy";
  std::string model_path;             // native: the GGUF file (its model id is default_model)
  std::string model_note;             // shown with the model (e.g. "random-weight demo model")
  unsigned engine_threads = 0;        // native: compute threads, 0 = one per core
  std::string kv_cache_type = "f16";  // native: KV cache elements, "f16" or "f32"
  std::int32_t max_generate_tokens = 10000;
  std::chrono::milliseconds response_timeout{90'000};
  std::string admin_token;                // empty: admin endpoints only from loopback
  std::vector<std::string> cors_origins;  // "*" allows any origin
  std::chrono::milliseconds monitor_interval{5'000};
  // A node that worked on a request forgets it (and frees its engine state) after this much silence.
  std::chrono::milliseconds request_idle_timeout{600'000};

  // The cluster. discovery "none" runs the node alone (no gRPC server, no peers).
  std::string discovery = "none";  // udp | manual | none
  std::string rpc_host = "0.0.0.0";
  int rpc_port = 0;  // 0: a free port chosen at start-up
  // UDP discovery (legacy flags --listen-port, --broadcast-port, --discovery-timeout, filters).
  int listen_port = 5678;
  int broadcast_port = 5678;
  std::chrono::milliseconds broadcast_interval{2'500};
  std::chrono::milliseconds discovery_timeout{30'000};
  std::vector<std::string> node_id_filter;
  std::vector<std::string> interface_type_filter;
  std::vector<std::string> broadcast_targets;  // instead of the interfaces' broadcast addresses
  // Manual discovery (--discovery-config-path).
  std::string discovery_config_path;
  std::chrono::milliseconds discovery_reload_interval{1'000};
  // Peers.
  std::chrono::milliseconds peer_health_probe_interval{5'000};
  std::chrono::milliseconds topology_interval{2'000};
  std::chrono::milliseconds peer_connect_timeout{10'000};
  std::chrono::milliseconds peer_health_interval{5'000};  // supervision of each peer handle
  int wait_for_peers = 0;                                 // readiness waits until this many peers are usable
  // What this node reports about itself; default: detected from the host (memory, model, chip, FLOPS).
  std::optional<topology::DeviceCapabilities> device_capabilities;
};

struct NodeCounters {
  std::atomic<std::uint64_t> generations_started{0};
  std::atomic<std::uint64_t> generations_failed{0};
  std::atomic<std::uint64_t> tokens_generated{0};
  std::atomic<std::uint64_t> node_statuses_received{0};  // legacy node_status messages, own ones included
};

class Node : public resource::ResourceGroup, public api::Backend {
 public:
  // Builds the node and its members. `on_shutdown` runs (once) when an API client asks the node to
  // shut down; the owner then calls cleanup().
  static std::shared_ptr<Node> create(asio::any_io_executor executor, NodeOptions options,
                                      std::function<void()> on_shutdown);

  Node(asio::any_io_executor executor, NodeOptions options,
       std::shared_ptr<resource::ResourceRegistry> registry, std::function<void()> on_shutdown);

  const NodeOptions& node_options() const { return options_; }
  const std::shared_ptr<resource::ResourceRegistry>& registry() const { return registry_; }
  const std::shared_ptr<resource::ResourceMonitor>& monitor() const { return monitor_; }
  const NodeCounters& counters() const { return counters_; }
  const std::shared_ptr<inference::InferenceEngine>& engine() const { return engine_; }
  // The peers (null when the node runs alone).
  const std::shared_ptr<Cluster>& cluster() const { return cluster_view_; }
  unsigned short api_port() const;
  // The gRPC port peers reach this node on (0 when the node runs alone).
  unsigned short rpc_port() const;

  // api::Backend
  api::Readiness readiness() const override;
  nlohmann::json models() const override;
  bool has_model(const std::string& model_id) const override;
  std::string default_model() const override { return options_.default_model; }
  nlohmann::json topology() const override;
  std::pair<std::string, std::vector<std::int32_t>> encode_chat(
      const std::string& model, const std::vector<ChatMessage>& messages) override;
  std::shared_ptr<GenerationStream> generate(GenerationRequest request) override;
  nlohmann::json resources_snapshot() const override;
  nlohmann::json cluster_metrics() const override;
  nlohmann::json check_all_health() override;
  nlohmann::json reset_resource(const std::string& id, const std::string& type) override;
  void request_shutdown() override;

  // The prompt text for `messages` in the engine's chat template.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages) const;

  // ---- The ring (node_ring.cpp) ----
  // Peers' messages, as the gRPC service hands them over. Thread-safe; they return at once and the
  // work runs as tasks owned by the node. Bad input throws std::invalid_argument before anything runs.
  void accept_prompt(topology::Shard shard, std::string prompt, std::string request_id,
                     net::InferenceState state);
  void accept_tensor(topology::Shard shard, net::Tensor tensor, std::string request_id,
                     net::InferenceState state);
  void accept_result(std::string request_id, std::vector<std::int32_t> tokens, bool is_finished);
  void accept_status(std::string request_id, nlohmann::json status);
  // A peer left the cluster: requests of this node whose ring includes it fail now, with the reason.
  void peer_lost(const std::string& node_id, const std::string& reason);
  // Connects the node to its cluster; call before initialize(). Without one the node runs alone.
  void set_cluster_link(std::shared_ptr<ClusterLink> link);
  // This node plus the usable peers: what new requests are planned over.
  topology::Topology ring_topology() const;
  const topology::DeviceCapabilities& device_capabilities() const { return self_capabilities_; }
  // Requests this node currently originates (API side) and works on (any hop).
  std::size_t active_origin_requests() const { return active_origins_.load(); }

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;

 private:
  struct OriginRequest;
  struct HopRecord {
    std::chrono::steady_clock::time_point last_activity;
    std::int32_t generated = 0;        // tokens sampled here (last hop only)
    std::vector<std::int32_t> recent;  // with a repeat penalty: the last tokens sampled here
  };

  // Adds rpc, discovery and cluster members (unless discovery is "none"); part of create().
  void add_cluster_members(asio::any_io_executor executor);
  void set_serving(bool serving);
  void start_origin(std::shared_ptr<GenerationStream> stream, GenerationRequest request);
  asio::awaitable<void> run_origin(std::shared_ptr<GenerationStream> stream, GenerationRequest request);
  asio::awaitable<void> run_prompt(topology::Shard shard, std::string prompt, std::string request_id,
                                   net::InferenceState state);
  asio::awaitable<void> run_tensor(topology::Shard shard, net::Tensor tensor, std::string request_id,
                                   net::InferenceState state);
  asio::awaitable<void> run_hop(RequestContext context, int hop, net::Tensor input, std::string request_id,
                                net::InferenceState state);
  // Runs the prompt's first hop here, announcing it with legacy node_status start/end_process_prompt
  // statuses to every peer and to this node (they drive /v1/topology's active_node_id).
  asio::awaitable<void> run_prompt_hop(RequestContext context, net::Tensor tokens, std::string request_id,
                                       net::InferenceState state, std::string prompt);
  void announce_prompt(const RequestContext& context, const std::string& request_id,
                       const std::string& status, nlohmann::json extra);
  asio::awaitable<void> deliver_result(const RequestContext& context, std::string request_id,
                                       std::int32_t token, bool is_finished);
  asio::awaitable<void> drain_origin(std::shared_ptr<OriginRequest> origin);
  asio::awaitable<void> fail_request(RequestContext context, std::string request_id, std::string error);
  asio::awaitable<void> broadcast_status(std::vector<std::string> to, std::string request_id,
                                         std::string status);
  asio::awaitable<void> sweep_loop();
  // Origin side: ends the request for the client and tells every other node of the ring to drop it.
  void end_origin(const std::string& request_id, const std::string& failure, const std::string& reason);
  void handle_status(const std::string& request_id, const nlohmann::json& status);
  // Frees this node's state of a request and remembers that it ended.
  void forget_request(const std::string& request_id);
  bool is_ended(const std::string& request_id) const;
  RequestContext context_for(const net::InferenceState& state, const topology::Shard& shard) const;
  // What accept_prompt/accept_tensor refuse before anything runs (std::invalid_argument).
  void check_hop_request(const topology::Shard& shard, const std::string& request_id,
                         const net::InferenceState& state) const;
  void post_owned(std::function<asio::awaitable<void>()> make_task);

  NodeOptions options_;
  std::shared_ptr<resource::ResourceRegistry> registry_;
  std::shared_ptr<resource::ResourceMonitor> monitor_;
  std::shared_ptr<inference::InferenceEngine> engine_;
  std::function<void()> on_shutdown_;
  std::atomic<bool> shutdown_requested_{false};
  NodeCounters counters_;
  mutable std::mutex active_mutex_;
  std::optional<std::string> active_node_id_;  // guarded by active_mutex_: who runs a prompt now (§2.7)
  std::deque<std::string> ended_prompts_;      // guarded by active_mutex_: last requests whose end_* came

  // Ring state: touched only on the node's strand.
  std::shared_ptr<ClusterLink> cluster_;
  std::shared_ptr<resource::AsyncResource> rpc_server_;  // null when running alone
  std::shared_ptr<net::NodeServiceHandler> rpc_handler_;
  std::shared_ptr<Cluster> cluster_view_;
  std::shared_ptr<net::Discovery> discovery_;
  topology::DeviceCapabilities self_capabilities_;
  std::map<std::string, std::shared_ptr<OriginRequest>> origins_;
  std::map<std::string, HopRecord> hops_;
  std::map<std::string, std::chrono::steady_clock::time_point> ended_;
  std::atomic<std::size_t> active_origins_{0};
};

}  // namespace exo::node
