#include "node/node.h"

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>
#include <random>

#include <asio/ip/tcp.hpp>

#include "api/api_server.h"
#include "inference/dummy_engine.h"
#include "inference/native_engine.h"
#include "net/grpc_server.h"
#include "net/manual_discovery.h"
#include "net/udp_discovery.h"
#include "node/cluster.h"
#include "node/node_rpc.h"
#include "topology/device_capabilities.h"
#include "topology/topology.h"

namespace exo::node {
namespace {

template <typename T>
T wait_future(std::future<T> future, std::chrono::milliseconds timeout, const std::string& what) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    throw resource::TimeoutError("node",
                                 what + " did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  return future.get();
}

// A free TCP port on `host` (legacy picks one the same way when --node-port is not given).
int pick_free_port(asio::any_io_executor executor, const std::string& host) {
  asio::ip::tcp::acceptor acceptor(executor);
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(host), 0);
  acceptor.open(endpoint.protocol());
  acceptor.bind(endpoint);
  return acceptor.local_endpoint().port();
}

asio::awaitable<bool> probe_through_cluster(std::weak_ptr<Cluster> weak, net::DiscoveredPeer peer) {
  auto cluster = weak.lock();
  if (!cluster) co_return false;
  co_return co_await cluster->health_probe(std::move(peer));
}

}  // namespace

void Node::add_cluster_members(asio::any_io_executor executor) {
  const NodeOptions& o = options_;
  if (o.discovery == "none") return;
  if (o.discovery != "udp" && o.discovery != "manual")
    throw std::invalid_argument("unknown discovery module '" + o.discovery +
                                "' (available: udp, manual, none)");
  const int port = o.rpc_port != 0 ? o.rpc_port : pick_free_port(executor, o.rpc_host);
  rpc_handler_ = std::make_shared<NodeRpc>(std::static_pointer_cast<Node>(shared_from_this()));
  net::GrpcServerOptions server_options;
  server_options.host = o.rpc_host;
  server_options.port = port;
  auto server = resource::make_resource<net::GrpcServer>(executor, "rpc-" + o.node_id, server_options,
                                                         std::weak_ptr<net::NodeServiceHandler>(rpc_handler_),
                                                         registry_);
  rpc_server_ = server;

  ClusterOptions cluster_options;
  cluster_options.node_id = o.node_id;
  cluster_options.topology_interval = o.topology_interval;
  cluster_options.peer_options.timeouts.connect = o.peer_connect_timeout;
  cluster_options.peer_resource_options.supervision.health_interval = o.peer_health_interval;
  // The cluster is created first so discovery's health probe can reach it (weakly).
  std::shared_ptr<net::Discovery> discovery;
  std::shared_ptr<Cluster> cluster;
  if (o.discovery == "udp") {
    net::UdpDiscoveryOptions d;
    d.node_port = static_cast<std::uint16_t>(port);
    d.device_capabilities = self_capabilities_;
    d.listen_port = static_cast<std::uint16_t>(o.listen_port);
    d.broadcast_port = static_cast<std::uint16_t>(o.broadcast_port);
    d.broadcast_interval = o.broadcast_interval;
    d.discovery_timeout = o.discovery_timeout;
    d.allowed_node_ids = o.node_id_filter;
    d.allowed_interface_types = o.interface_type_filter;
    d.broadcast_targets = o.broadcast_targets;
    auto holder = std::make_shared<std::weak_ptr<Cluster>>();
    d.node_id = o.node_id;
    d.health_probe_interval = o.peer_health_probe_interval;
    d.health_probe = [holder](const net::DiscoveredPeer& peer) {
      return probe_through_cluster(*holder, peer);
    };
    d.validate();
    discovery = resource::make_resource<net::UdpDiscovery>(executor, "discovery-" + o.node_id, d, registry_);
    cluster = resource::make_resource<Cluster>(executor, cluster_options, discovery, registry_);
    *holder = cluster;
  } else {
    net::ManualDiscoveryOptions d;
    d.config_path = o.discovery_config_path;
    d.reload_interval = o.discovery_reload_interval;
    auto holder = std::make_shared<std::weak_ptr<Cluster>>();
    d.node_id = o.node_id;
    d.health_probe_interval = o.peer_health_probe_interval;
    d.health_probe = [holder](const net::DiscoveredPeer& peer) {
      return probe_through_cluster(*holder, peer);
    };
    d.validate();
    discovery =
        resource::make_resource<net::ManualDiscovery>(executor, "discovery-" + o.node_id, d, registry_);
    cluster = resource::make_resource<Cluster>(executor, cluster_options, discovery, registry_);
    *holder = cluster;
  }
  auto weak_node = std::weak_ptr<Node>(std::static_pointer_cast<Node>(shared_from_this()));
  cluster->set_on_peer_lost([weak_node](const std::string& id, const std::string& reason) {
    if (auto node = weak_node.lock()) node->peer_lost(id, reason);
  });
  cluster_view_ = cluster;
  discovery_ = discovery;
  set_cluster_link(cluster);
  add("rpc", server, {.depends_on = {"engine"}, .required = true});
  add("discovery", discovery, {.depends_on = {"rpc"}, .required = true});
  add("cluster", cluster, {.depends_on = {"discovery", "rpc"}, .required = true});
}

std::shared_ptr<Node> Node::create(asio::any_io_executor executor, NodeOptions options,
                                   std::function<void()> on_shutdown) {
  auto registry = std::make_shared<resource::ResourceRegistry>();
  auto node = resource::make_resource<Node>(executor, std::move(options), registry, std::move(on_shutdown));
  const NodeOptions& o = node->options_;
  node->monitor_ = resource::make_resource<resource::ResourceMonitor>(
      executor, registry,
      resource::MonitorOptions{.sweep_interval = o.monitor_interval,
                               .probe_timeout = std::chrono::seconds(5),
                               .history_capacity = 512});
  if (o.inference_engine == "dummy") {
    node->engine_ =
        resource::make_resource<inference::DummyEngine>(executor, "engine-" + o.node_id, registry);
  } else if (o.inference_engine == "native") {
    if (o.model_path.empty()) throw std::invalid_argument("the native engine needs a model file");
    inference::NativeEngineOptions engine_options;
    engine_options.model_path = o.model_path;
    engine_options.model_id = o.default_model;
    engine_options.threads = o.engine_threads;
    if (o.kv_cache_type != "f16" && o.kv_cache_type != "f32")
      throw std::invalid_argument("KV cache type '" + o.kv_cache_type + "' is not f16 or f32");
    engine_options.kv_type =
        o.kv_cache_type == "f32" ? inference::TensorType::F32 : inference::TensorType::F16;
    // In a cluster the node runs only its share of the layers: read nothing ahead.
    engine_options.read_ahead = o.discovery == "none";
    engine_options.note = o.model_note;
    node->engine_ = resource::make_resource<inference::NativeEngine>(executor, "engine-" + o.node_id,
                                                                     engine_options, registry);
  } else {
    throw std::invalid_argument("unknown inference engine '" + o.inference_engine +
                                "' (available: native, dummy)");
  }
  api::ApiOptions api_options{o.api_host, o.api_port, o.response_timeout, o.admin_token, o.cors_origins};
  auto api = resource::make_resource<api::ApiServer>(executor, "api-" + o.node_id, api_options,
                                                     std::weak_ptr<api::Backend>(node), registry);
  node->add("monitor", node->monitor_, {.depends_on = {}, .required = false});
  node->add("engine", node->engine_);
  node->add_cluster_members(executor);
  node->add("api", api, {.depends_on = {"engine"}, .required = true});
  return node;
}

Node::Node(asio::any_io_executor executor, NodeOptions options,
           std::shared_ptr<resource::ResourceRegistry> registry, std::function<void()> on_shutdown)
    : ResourceGroup(executor, {"node-" + options.node_id, "node", "exo node " + options.node_id},
                    group_defaults(), registry),
      options_(std::move(options)),
      registry_(std::move(registry)),
      on_shutdown_(std::move(on_shutdown)),
      self_capabilities_(options_.device_capabilities.value_or(topology::detect_device_capabilities())) {
  if (options_.node_id.empty()) throw std::invalid_argument("node id must not be empty");
  if (options_.max_generate_tokens < 1) throw std::invalid_argument("max generate tokens must be >= 1");
}

unsigned short Node::api_port() const {
  return get<api::ApiServer>("api")->port();
}

unsigned short Node::rpc_port() const {
  const auto server = std::dynamic_pointer_cast<net::GrpcServer>(rpc_server_);
  return server ? server->port() : 0;
}

api::Readiness Node::readiness() const {
  const auto s = state();
  if (!resource::is_usable(s)) return {false, fmt::format("node is {}", resource::to_string(s))};
  if (!engine_->ready())
    return {false, fmt::format("inference engine is {}", resource::to_string(engine_->state()))};
  if (options_.wait_for_peers > 0 && cluster_) {
    const auto peers = cluster_->peer_ids().size();
    if (peers < static_cast<std::size_t>(options_.wait_for_peers))
      return {false, fmt::format("waiting for {} peers ({} connected)", options_.wait_for_peers, peers)};
  }
  return {true, s == resource::ResourceState::READY ? "ready" : "ready (degraded)"};
}

nlohmann::json Node::models() const {
  const auto m = engine_->model();
  return nlohmann::json::array({{{"id", m.model_id},
                                 {"object", "model"},
                                 {"created", 0},
                                 {"owned_by", "exo"},
                                 {"ready", engine_->ready()},
                                 {"description", m.note}}});
}

bool Node::has_model(const std::string& model_id) const {
  return engine_->model().model_id == model_id;
}

nlohmann::json Node::topology() const {
  topology::Topology t = ring_topology();
  {
    std::lock_guard lock(active_mutex_);
    t.set_active_node_id(active_node_id_);
  }
  return t.to_json();
}

std::string Node::apply_chat_template(const std::vector<ChatMessage>& messages) const {
  std::vector<inference::ChatMessage> chat;
  chat.reserve(messages.size());
  for (const auto& m : messages) chat.push_back({m.role, m.content});
  return engine_->chat_prompt(chat);
}

std::pair<std::string, std::vector<std::int32_t>> Node::encode_chat(
    const std::string& model, const std::vector<ChatMessage>& messages) {
  if (!has_model(model)) throw std::out_of_range("model '" + model + "' is not served by this node");
  std::string prompt = apply_chat_template(messages);
  auto ids = wait_future(asio::co_spawn(strand(), engine_->encode(prompt), asio::use_future),
                         options_.response_timeout, "encoding");
  return {std::move(prompt), std::move(ids)};
}

std::shared_ptr<GenerationStream> Node::generate(GenerationRequest request) {
  if (!has_model(request.model))
    throw std::out_of_range("model '" + request.model + "' is not served by this node");
  if (!request.seed) request.seed = std::random_device{}();
  auto stream = std::make_shared<GenerationStream>();
  start_origin(stream, std::move(request));
  return stream;
}

nlohmann::json Node::resources_snapshot() const {
  return monitor_->snapshot_json();
}

nlohmann::json Node::cluster_metrics() const {
  if (!discovery_) return nlohmann::json::object();
  const auto c = discovery_->counters();
  nlohmann::json dropped = nlohmann::json::object();
  for (const auto& [reason, n] : c.datagrams_dropped) dropped[reason] = n;
  return {{"discovery",
           {{"datagrams_received", c.datagrams_received},
            {"datagrams_dropped", std::move(dropped)},
            {"peers", discovery_->peer_count()},
            {"probes_succeeded", c.probes_succeeded},
            {"probes_failed", c.probes_failed}}}};
}

nlohmann::json Node::check_all_health() {
  return wait_future(asio::co_spawn(strand(), monitor_->check_all_health(), asio::use_future),
                     std::chrono::seconds(60), "health checks");
}

nlohmann::json Node::reset_resource(const std::string& id, const std::string& type) {
  auto resource = registry_->find(id);
  if (!resource || (!type.empty() && resource->type() != type)) {
    throw std::out_of_range("no resource '" + id + "'" + (type.empty() ? "" : " of type '" + type + "'"));
  }
  if (resource->type() == "api_server" || resource.get() == this) {
    throw std::invalid_argument("resource '" + id + "' serves this request and cannot be reset through it; " +
                                "restart the node instead");
  }
  std::string error;
  try {
    wait_future(asio::co_spawn(strand(), resource->reset(std::chrono::seconds(60)), asio::use_future),
                std::chrono::seconds(65), "reset of " + id);
  } catch (const std::exception& e) {
    error = e.what();
  }
  nlohmann::json out{{"id", id},
                     {"reset", error.empty()},
                     {"resource", resource::ResourceMonitor::to_json(resource->info())}};
  if (!error.empty()) out["error"] = error;
  return out;
}

void Node::request_shutdown() {
  if (shutdown_requested_.exchange(true)) return;
  if (on_shutdown_) asio::post(strand(), on_shutdown_);
}

}  // namespace exo::node
