// HttpMetrics: request counters and latency of the HTTP API, rendered in Prometheus text format
// together with the node's resource counts.
//
// Contract: thread-safe (one mutex); record() is called once per finished request.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace exo::api {

class HttpMetrics {
 public:
  void record(const std::string& route, int status, std::chrono::duration<double> latency);
  void record_generation(std::uint64_t tokens, std::chrono::duration<double> elapsed);
  // Prometheus exposition text; `resources` is a monitor snapshot (docs/lifecycle.md).
  // `cluster`: the node's cluster counters (Backend::cluster_metrics()), possibly empty.
  std::string render(const nlohmann::json& resources, const nlohmann::json& cluster = {}) const;

 private:
  struct Latency {
    double sum = 0;
    std::uint64_t count = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Latency> latency_;
  std::uint64_t tokens_ = 0;
  double generation_seconds_ = 0;
  double last_tokens_per_second_ = 0;
};

}  // namespace exo::api
