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
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/backend.h"
#include "inference/inference_engine.h"
#include "resource/registry.h"
#include "resource/resource_group.h"
#include "resource/resource_monitor.h"

namespace exo::node {

struct NodeOptions {
  std::string node_id;
  std::string api_host = "0.0.0.0";
  int api_port = 52415;
  std::string inference_engine = "dummy";
  std::string default_model = "dummy";
  std::int32_t max_generate_tokens = 10000;
  std::chrono::milliseconds response_timeout{90'000};
  std::string admin_token;                // empty: admin endpoints only from loopback
  std::vector<std::string> cors_origins;  // "*" allows any origin
  std::chrono::milliseconds monitor_interval{5'000};
};

struct NodeCounters {
  std::atomic<std::uint64_t> generations_started{0};
  std::atomic<std::uint64_t> generations_failed{0};
  std::atomic<std::uint64_t> tokens_generated{0};
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
  unsigned short api_port() const;

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
  nlohmann::json check_all_health() override;
  nlohmann::json reset_resource(const std::string& id, const std::string& type) override;
  void request_shutdown() override;

  // The prompt text for `messages` (the dummy engine's plain template; real engines bring their own).
  static std::string apply_chat_template(const std::vector<ChatMessage>& messages);

 private:
  asio::awaitable<void> run_generation(std::shared_ptr<GenerationStream> stream, GenerationRequest request);

  NodeOptions options_;
  std::shared_ptr<resource::ResourceRegistry> registry_;
  std::shared_ptr<resource::ResourceMonitor> monitor_;
  std::shared_ptr<inference::InferenceEngine> engine_;
  std::function<void()> on_shutdown_;
  std::atomic<bool> shutdown_requested_{false};
  NodeCounters counters_;
};

}  // namespace exo::node
