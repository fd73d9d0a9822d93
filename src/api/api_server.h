// ApiServer: the node's HTTP API (OpenAI-compatible chat, models, topology, health probes, resource
// administration and Prometheus metrics) on cpp-httplib; a resource.
//
// Contract
// - initialize() binds the port (0 picks a free one; port() tells which) and starts serving on the
//   server's own threads; cleanup() stops accepting, lets requests in flight finish (generations are
//   ended by the node first) and joins every thread without blocking the event loop.
// - Handlers never run on the node's event loop; they reach the node through api::Backend.
// - Every input is validated: malformed JSON or fields give 400, unknown model 404, a body over
//   max_body_bytes 413, a node that cannot serve 503, a generation that stalls past the response
//   timeout 504; errors are OpenAI-style JSON.
// - Admin actions (reset, cleanup) are accepted from loopback, or from anywhere with the admin token
//   ("Authorization: Bearer TOKEN") when one is configured.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/backend.h"
#include "api/http_metrics.h"
#include "resource/async_resource.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace exo::api {

struct ApiOptions {
  std::string host = "0.0.0.0";
  int port = 52415;
  std::chrono::milliseconds response_timeout{90'000};
  std::string admin_token;
  std::vector<std::string> cors_origins;  // "*" allows any origin
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t worker_threads = 96;  // streaming chats hold a worker each
};

class ApiServer : public resource::AsyncResource {
 public:
  ApiServer(asio::any_io_executor executor, std::string id, ApiOptions options,
            std::weak_ptr<Backend> backend, std::shared_ptr<resource::ResourceRegistry> registry);
  ~ApiServer() override;

  unsigned short port() const noexcept { return bound_port_.load(); }
  const HttpMetrics& metrics() const noexcept { return metrics_; }

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  void register_routes(httplib::Server& server);
  // Sets Access-Control-Allow-Origin when the request's Origin is allowed; returns whether it did.
  bool allow_origin(const httplib::Request& req, httplib::Response& res) const;
  void stop_server() noexcept;

  ApiOptions options_;
  std::weak_ptr<Backend> backend_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::atomic<unsigned short> bound_port_{0};
  HttpMetrics metrics_;
};

}  // namespace exo::api
