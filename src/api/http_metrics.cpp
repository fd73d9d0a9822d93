#include "api/http_metrics.h"

#include <fmt/format.h>

namespace exo::api {

void HttpMetrics::record(const std::string& route, int status, std::chrono::duration<double> latency) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  auto& l = latency_[route];
  l.sum += latency.count();
  ++l.count;
}

void HttpMetrics::record_generation(std::uint64_t tokens, std::chrono::duration<double> elapsed) {
  std::lock_guard lock(mutex_);
  tokens_ += tokens;
  generation_seconds_ += elapsed.count();
  if (elapsed.count() > 0) last_tokens_per_second_ = static_cast<double>(tokens) / elapsed.count();
}

std::string HttpMetrics::render(const nlohmann::json& resources, const nlohmann::json& cluster) const {
  std::string out;
  std::lock_guard lock(mutex_);
  out += "# HELP exo_http_requests_total HTTP requests by route and status code.\n";
  out += "# TYPE exo_http_requests_total counter\n";
  std::uint64_t errors = 0;
  for (const auto& [key, count] : requests_) {
    out +=
        fmt::format("exo_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, count);
    if (key.second >= 400) errors += count;
  }
  out += "# HELP exo_http_request_errors_total HTTP requests answered with a 4xx or 5xx status.\n";
  out += "# TYPE exo_http_request_errors_total counter\n";
  out += fmt::format("exo_http_request_errors_total {}\n", errors);
  out += "# HELP exo_http_request_duration_seconds Time to answer (to the last byte) by route.\n";
  out += "# TYPE exo_http_request_duration_seconds summary\n";
  for (const auto& [route, l] : latency_) {
    out += fmt::format("exo_http_request_duration_seconds_sum{{route=\"{}\"}} {:.6f}\n", route, l.sum);
    out += fmt::format("exo_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, l.count);
  }
  out += "# HELP exo_generated_tokens_total Tokens generated for chat completions.\n";
  out += "# TYPE exo_generated_tokens_total counter\n";
  out += fmt::format("exo_generated_tokens_total {}\n", tokens_);
  out += "# HELP exo_generation_tokens_per_second Generation speed of the last completed request.\n";
  out += "# TYPE exo_generation_tokens_per_second gauge\n";
  out += fmt::format("exo_generation_tokens_per_second {:.3f}\n", last_tokens_per_second_);
  out += "# HELP exo_resources Resources of this node by type and state.\n";
  out += "# TYPE exo_resources gauge\n";
  if (resources.contains("counts")) {
    for (const auto& [type, states] : resources["counts"].items()) {
      for (const auto& [state, count] : states.items()) {
        out += fmt::format("exo_resources{{type=\"{}\",state=\"{}\"}} {}\n", type, state, count.get<int>());
      }
    }
  }
  out += "# HELP exo_peer_up Peer handles by peer id: 1 when READY, 0 otherwise.\n";
  out += "# TYPE exo_peer_up gauge\n";
  if (resources.contains("resources")) {
    for (const auto& r : resources["resources"]) {
      if (r["type"] != "peer_handle") continue;
      out += fmt::format("exo_peer_up{{peer=\"{}\"}} {}\n", r["id"].get<std::string>(),
                         r["state"] == "READY" ? 1 : 0);
    }
  }
  if (cluster.is_object() && cluster.contains("discovery")) {
    const auto& d = cluster["discovery"];
    out += "# HELP exo_discovery_datagrams_received_total Discovery datagrams received.\n";
    out += "# TYPE exo_discovery_datagrams_received_total counter\n";
    out += fmt::format("exo_discovery_datagrams_received_total {}\n", d.value("datagrams_received", 0ULL));
    out +=
        "# HELP exo_discovery_datagrams_dropped_total Malformed, hostile or filtered datagrams, by reason.\n";
    out += "# TYPE exo_discovery_datagrams_dropped_total counter\n";
    if (d.contains("datagrams_dropped")) {
      for (const auto& [reason, count] : d["datagrams_dropped"].items())
        out += fmt::format("exo_discovery_datagrams_dropped_total{{reason=\"{}\"}} {}\n", reason,
                           count.get<std::uint64_t>());
    }
    out += "# HELP exo_discovery_peers Peers discovery knows now.\n";
    out += "# TYPE exo_discovery_peers gauge\n";
    out += fmt::format("exo_discovery_peers {}\n", d.value("peers", 0ULL));
    out += "# HELP exo_discovery_health_probes_total Health probes of discovered peers, by outcome.\n";
    out += "# TYPE exo_discovery_health_probes_total counter\n";
    out += fmt::format("exo_discovery_health_probes_total{{outcome=\"ok\"}} {}\n",
                       d.value("probes_succeeded", 0ULL));
    out += fmt::format("exo_discovery_health_probes_total{{outcome=\"failed\"}} {}\n",
                       d.value("probes_failed", 0ULL));
  }
  return out;
}

}  // namespace exo::api
