// api::Backend: what the HTTP API needs from the node it serves.
//
// Contract: every method is thread-safe and may block (HTTP handlers run on their own threads, never
// on the node's event loop). Errors are exceptions: std::out_of_range for an unknown resource or
// model, std::invalid_argument for bad input, resource::ResourceError subclasses for lifecycle
// failures.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node/generation.h"

namespace exo::api {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not, for 503 bodies
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Readiness readiness() const = 0;
  virtual nlohmann::json models() const = 0;  // OpenAI model list entries
  virtual bool has_model(const std::string& model_id) const = 0;
  virtual std::string default_model() const = 0;
  virtual nlohmann::json topology() const = 0;  // legacy Topology JSON
  // The templated prompt and its token ids.
  virtual std::pair<std::string, std::vector<std::int32_t>> encode_chat(
      const std::string& model, const std::vector<node::ChatMessage>& messages) = 0;
  virtual std::shared_ptr<node::GenerationStream> generate(node::GenerationRequest request) = 0;

  virtual nlohmann::json resources_snapshot() const = 0;
  // Cluster counters for /metrics: {"discovery": {"datagrams_received", "datagrams_dropped": {reason: n},
  // "peers", "probes_succeeded", "probes_failed"}}; empty when the node runs alone.
  virtual nlohmann::json cluster_metrics() const { return nlohmann::json::object(); }
  virtual nlohmann::json check_all_health() = 0;
  virtual nlohmann::json reset_resource(const std::string& id, const std::string& type) = 0;
  virtual void request_shutdown() = 0;
};

}  // namespace exo::api
