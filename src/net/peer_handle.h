// PeerHandle: one remote exo node reached over gRPC (node_service.NodeService); a resource.
//
// Contract
// - Identity: the peer's node id, its "host:port" address, a description of the link ("Ethernet
//   (eth0)", "MAN", ...) and the device capabilities it announced. Resource id "peer-<node id>",
//   type "peer_handle".
// - initialize() creates the channel (legacy channel options: 256 MiB, gzip, keepalive, §2.6) and
//   connects with a deadline (timeouts.connect): a HealthCheck RPC that waits for the connection. It
//   fails when the peer cannot be reached in time or answers is_healthy = false.
// - Every RPC has a deadline (PeerTimeouts, per RPC) and runs on gRPC's callback API bridged into
//   Asio: no thread blocks, and cancelling the awaiting coroutine cancels the RPC (TryCancel).
// - A circuit breaker records the outcome of every call (transport failures: UNAVAILABLE,
//   DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS, RESOURCE_EXHAUSTED; any answer from the peer
//   counts as a success). When it opens the peer reports a failure (ERROR, with the cause in
//   last_error, visible in the monitor) and every call fails fast with CircuitOpenError until the
//   open interval has passed; then one trial call is let through (usually the re-initialization
//   run by supervision, which reconnects with backoff). check_health() sends HealthCheck.
// - available(): READY and the breaker does not refuse calls; what partitioning should use.
// - Methods may be called from any thread or executor, concurrently. Callers must hold the
//   shared_ptr while they await (as for every resource). Errors: PeerRpcError (the gRPC status),
//   CircuitOpenError, resource::UnavailableError/ClosedError from ensure_ready, and asio's
//   operation_aborted when the caller is cancelled.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/support/status_code_enum.h>
#include <nlohmann/json.hpp>

#include "net/circuit_breaker.h"
#include "net/grpc_options.h"
#include "net/node_service_handler.h"
#include "resource/async_resource.h"
#include "topology/device_capabilities.h"

namespace grpc {
class Channel;
class Status;
}  // namespace grpc

namespace node_service {
class HealthCheckResponse;
}  // namespace node_service

namespace exo::net {

// Per-RPC deadlines. Legacy BASE had none on SendPrompt/SendTensor, HEAD 30 s; prefill of a long
// prompt on a CPU can take longer, hence the generous defaults.
struct PeerTimeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds health{5'000};
  std::chrono::milliseconds prompt{120'000};
  std::chrono::milliseconds tensor{120'000};
  std::chrono::milliseconds example{300'000};
  std::chrono::milliseconds topology{5'000};
  std::chrono::milliseconds result{15'000};
  std::chrono::milliseconds opaque_status{15'000};
};

struct PeerOptions {
  PeerTimeouts timeouts;
  CircuitBreakerOptions breaker;
  CircuitBreaker::Now breaker_clock;  // null: steady_clock (tests inject a fake clock)
  ChannelSettings channel;
};

// Resource options suited to a peer: ERROR fails fast (no reconnect inside a caller's request);
// supervision health-checks every 5 s and recovers with jittered exponential backoff (0.5 s to
// 30 s), practically without giving up (discovery decides when a peer is gone).
resource::ResourceOptions default_peer_resource_options();

// An RPC that failed with a gRPC status.
class PeerRpcError : public resource::ResourceError {
 public:
  PeerRpcError(std::string resource_id, grpc::StatusCode code, const std::string& message)
      : resource::ResourceError(std::move(resource_id), message), code_(code) {}
  grpc::StatusCode code() const noexcept { return code_; }

 private:
  grpc::StatusCode code_;
};

// The breaker refused the call without sending it.
class CircuitOpenError : public resource::UnavailableError {
  using resource::UnavailableError::UnavailableError;
};

class PeerHandle : public resource::AsyncResource {
 public:
  PeerHandle(asio::any_io_executor executor, std::string node_id, std::string address,
             std::string description, topology::DeviceCapabilities capabilities, PeerOptions options = {},
             std::shared_ptr<resource::ResourceRegistry> registry = nullptr,
             resource::ResourceOptions resource_options = default_peer_resource_options());
  ~PeerHandle() override;

  const std::string& node_id() const noexcept { return node_id_; }
  const std::string& address() const noexcept { return address_; }
  const std::string& description() const noexcept { return description_; }
  const topology::DeviceCapabilities& device_capabilities() const noexcept { return capabilities_; }
  const PeerOptions& peer_options() const noexcept { return options_; }

  bool available() const;
  CircuitSnapshot circuit() const { return breaker_.snapshot(); }

  asio::awaitable<std::optional<Tensor>> send_prompt(PromptCall call);
  asio::awaitable<std::optional<Tensor>> send_tensor(TensorCall call);
  asio::awaitable<LossResult> send_example(ExampleCall call);
  asio::awaitable<topology::Topology> collect_topology(std::vector<std::string> visited,
                                                       std::int32_t max_depth);
  asio::awaitable<void> send_result(std::string request_id, std::vector<std::int32_t> tokens,
                                    bool is_finished, std::optional<Tensor> tensor = std::nullopt);
  // status must be a JSON object (std::invalid_argument otherwise).
  asio::awaitable<void> send_opaque_status(std::string request_id, nlohmann::json status);
  // The legacy health check: true when the peer answers is_healthy = true. Never throws except on
  // cancellation; a failure is false (and counted by the breaker; the cause is in circuit()).
  asio::awaitable<bool> health_check();

  struct Stub;  // the generated stub and its channel (peer_handle.cpp)

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  // A breaker permit plus the stub to call; a permit never settled (the caller was cancelled
  // between admission and outcome) is released on destruction.
  struct Admission {
    Admission(CircuitBreaker* owner, CircuitBreaker::Permit granted, std::shared_ptr<Stub> current)
        : breaker(owner), permit(granted), stub(std::move(current)) {}
    Admission(Admission&& other) noexcept
        : breaker(std::exchange(other.breaker, nullptr)), permit(other.permit), stub(std::move(other.stub)) {}
    Admission(const Admission&) = delete;
    Admission& operator=(const Admission&) = delete;
    Admission& operator=(Admission&&) = delete;
    ~Admission() {
      if (breaker) breaker->release(permit);
    }
    CircuitBreaker* breaker;  // null once settled
    CircuitBreaker::Permit permit;
    std::shared_ptr<Stub> stub;
  };
  // Waits until the peer may be called, then takes a breaker permit (CircuitOpenError when refused).
  asio::awaitable<Admission> admit(const char* rpc);
  CircuitBreaker::Permit take_permit(const char* rpc);
  // Records the outcome; throws PeerRpcError / operation_aborted for a failed call.
  void settle(const char* rpc, Admission& admission, const grpc::Status& status, bool cancelled_locally);
  [[noreturn]] void bad_response(const char* rpc, const std::string& why);
  std::shared_ptr<Stub> stub(const char* rpc) const;
  asio::awaitable<bool> health_rpc(const char* rpc, bool wait_for_ready, std::chrono::milliseconds timeout);

  std::string node_id_;
  std::string address_;
  std::string description_;
  topology::DeviceCapabilities capabilities_;
  PeerOptions options_;
  CircuitBreaker breaker_;
  mutable std::mutex stub_mutex_;
  std::shared_ptr<Stub> stub_;  // guarded by stub_mutex_
  std::atomic<std::uint64_t> calls_ok_{0};
  std::atomic<std::uint64_t> calls_failed_{0};
};

}  // namespace exo::net
