// GrpcServer: serves node_service.NodeService (legacy exo's protocol) and the standard
// grpc.health.v1.Health service for one node; a resource.
//
// Contract
// - initialize() binds host:port (port 0 picks a free port; port() tells which) and starts serving.
//   A port that is taken fails initialization with "cannot listen on host:port" (SO_REUSEPORT is
//   off, so a second node never silently shares the port).
// - Every RPC is served with gRPC's callback API. The request is decoded and validated on the gRPC
//   thread (bad input -> INVALID_ARGUMENT naming the field, never a crash), then the handler's
//   coroutine runs on this resource's executor (a strand per call), and its completion finishes the
//   call. No gRPC thread waits for Asio and the event loop never blocks on gRPC. A call the client
//   cancels or lets expire is finished at once with CANCELLED and its coroutine receives terminal
//   cancellation.
// - The handler is held weakly (the node usually owns the server); when it is gone, calls get
//   UNAVAILABLE. HealthCheck answers handler->health_check().
// - grpc.health.v1 (Check and Watch) is gRPC's built-in service. Statuses of "" (the whole server)
//   and "node_service.NodeService" follow set_serving(); they start NOT_SERVING unless
//   options.serving_at_start, and go NOT_SERVING (frozen) when cleanup starts.
// - cleanup(): refuse new calls (UNAVAILABLE), NOT_SERVING, grpc::Server::Shutdown with
//   options.shutdown_grace as deadline (calls in flight may finish until then, then are cancelled),
//   wait for every handler coroutine to end, destroy the server. Blocking gRPC calls run on a
//   thread of their own, never on the event loop.
// - set_serving(), port(), address(), counters: thread-safe.
#pragma once

#include <asio/any_io_executor.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/grpc_options.h"
#include "net/node_service_handler.h"
#include "resource/async_resource.h"

namespace grpc {
class Server;
class HealthCheckServiceInterface;
}  // namespace grpc

namespace exo::net {

inline constexpr const char* kNodeServiceName = "node_service.NodeService";

struct GrpcServerOptions {
  std::string host = "0.0.0.0";
  int port = 0;                                    // 0: any free port
  std::chrono::milliseconds shutdown_grace{5000};  // legacy stops with a 5 s grace period
  int max_message_bytes = kMaxGrpcMessageBytes;
  bool serving_at_start = false;  // initial grpc.health.v1 status
};

class GrpcServer : public resource::AsyncResource {
 public:
  struct Counters {
    std::uint64_t calls = 0;             // RPCs accepted (valid requests handed to the handler)
    std::uint64_t invalid_requests = 0;  // answered INVALID_ARGUMENT before reaching the handler
    std::uint64_t failed_calls = 0;      // handler threw, or the call was cancelled
    std::uint64_t in_flight = 0;         // handler coroutines running now
  };

  GrpcServer(asio::any_io_executor executor, std::string id, GrpcServerOptions options,
             std::weak_ptr<NodeServiceHandler> handler,
             std::shared_ptr<resource::ResourceRegistry> registry = nullptr,
             resource::ResourceOptions resource_options = {});
  ~GrpcServer() override;

  // The bound port once initialized (0 before).
  unsigned short port() const noexcept { return bound_port_.load(); }
  // "host:port" as bound ("[::1]:port" for an IPv6 host).
  std::string address() const;

  // Readiness reported by grpc.health.v1 for "" and "node_service.NodeService".
  void set_serving(bool serving);
  bool serving() const noexcept { return serving_.load(); }

  Counters counters() const noexcept;

  class Service;  // the NodeService implementation (grpc_server.cpp)
  struct Shared;  // state shared with calls in flight (grpc_server.cpp)

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  void apply_serving_locked();

  GrpcServerOptions options_;
  std::weak_ptr<NodeServiceHandler> handler_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<unsigned short> bound_port_{0};
  std::atomic<bool> serving_{false};
  mutable std::mutex health_mutex_;
  grpc::HealthCheckServiceInterface* health_ = nullptr;  // guarded by health_mutex_
};

}  // namespace exo::net
