// UdpDiscovery: legacy exo's UDP presence broadcast (wire spec §3) as a Discovery resource.
//
// Contract
// - initialize() binds the listener (IPv4, SO_REUSEADDR so several nodes on one host share the port
//   and all receive broadcasts) and starts three tasks owned by the resource: the broadcaster (every
//   broadcast_interval, the exact §3.2 datagram from each allowed interface to that interface's real
//   subnet broadcast address and 255.255.255.255, or to broadcast_targets), the listener (§3.4) and
//   the peer sweep (expiry after discovery_timeout, rate-limited health probes; see discovery.h).
//   A listen port that cannot be bound fails initialize() naming the port and the reason.
// - Every socket operation is asynchronous on the resource's strand; nothing blocks the event loop.
// - Malformed or hostile datagrams are dropped and counted per reason (counters().datagrams_dropped);
//   they never change the peer table, the state, or anything else.
// - DEGRADED while a whole broadcast round fails (every allowed interface failed, or none is left);
//   READY again after a round in which one interface succeeded. check_health() reports the same, plus
//   whether the listener socket is open and the tasks are alive.
// - cleanup() cancels and joins the tasks, closes every socket and removes every peer (STOPPED).
#pragma once

#include <asio/ip/udp.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "net/discovery.h"
#include "net/network_interfaces.h"

namespace exo::net {

struct UdpDiscoveryOptions : DiscoveryOptions {
  std::uint16_t node_port = 0;  // our gRPC port, announced in the datagram (1..65535)
  topology::DeviceCapabilities device_capabilities = topology::unknown_device_capabilities();
  std::string listen_host = "0.0.0.0";  // IPv4 address the listener binds
  std::uint16_t listen_port = 5678;     // 0: an ephemeral port (listen_port() tells which)
  std::uint16_t broadcast_port = 5678;
  std::chrono::steady_clock::duration broadcast_interval = std::chrono::milliseconds(2500);
  std::chrono::steady_clock::duration discovery_timeout = std::chrono::seconds(30);
  std::vector<std::string> allowed_node_ids;         // --node-id-filter; empty: every id
  std::vector<std::string> allowed_interface_types;  // --interface-type-filter; empty: every type
  // Tests and unusual networks: send every datagram to these IPv4 addresses (e.g. "127.0.0.1")
  // instead of the interfaces' broadcast addresses. Still sent once per allowed interface.
  std::vector<std::string> broadcast_targets;
  // Where the interfaces come from; default list_ipv4_interfaces(). Tests inject fixed lists.
  std::function<Result<std::vector<Ipv4Interface>>()> list_interfaces;
  std::size_t max_datagram_bytes = 16 * 1024;  // a real datagram is about 300 bytes
  bool reuse_address = true;                   // SO_REUSEADDR on the listener

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

class UdpDiscovery : public Discovery {
 public:
  UdpDiscovery(const asio::any_io_executor& executor, std::string id, UdpDiscoveryOptions options,
               std::shared_ptr<resource::ResourceRegistry> registry = nullptr);
  ~UdpDiscovery() override;

  const UdpDiscoveryOptions& udp_options() const noexcept { return udp_options_; }
  // The bound listen port (useful with listen_port 0); 0 before initialize().
  std::uint16_t listen_port() const noexcept { return bound_port_.load(); }

  // Drop-reason names used in counters().datagrams_dropped.
  static constexpr std::string_view kDropTooLarge = "too_large";
  static constexpr std::string_view kDropNotJson = "not_json";
  static constexpr std::string_view kDropWrongType = "wrong_type";
  static constexpr std::string_view kDropInvalidFields = "invalid_fields";
  static constexpr std::string_view kDropSelfId = "self_id";
  static constexpr std::string_view kDropNodeIdFiltered = "node_id_filtered";
  static constexpr std::string_view kDropInterfaceTypeFiltered = "interface_type_filtered";

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  struct SenderSocket;
  struct RoundResult {
    int attempted = 0;  // allowed interfaces with somewhere to send
    int succeeded = 0;  // of those, how many sent at least one datagram
    std::vector<std::string> errors;
  };

  asio::awaitable<void> listen_loop(std::uint64_t session);
  asio::awaitable<void> broadcast_loop(std::uint64_t session);
  asio::awaitable<RoundResult> broadcast_round(std::uint64_t session);
  void handle_datagram(std::string_view data, const asio::ip::udp::endpoint& sender);
  void apply_round(const RoundResult& round);
  void close_sockets();

  UdpDiscoveryOptions udp_options_;
  std::atomic<std::uint16_t> bound_port_{0};

  // Strand-only.
  std::unique_ptr<asio::ip::udp::socket> listener_;
  std::map<std::pair<std::string, std::uint32_t>, std::unique_ptr<SenderSocket>> senders_;
  std::vector<std::uint32_t> targets_;  // parsed broadcast_targets
  bool listening_ = false;
  bool broadcasting_ = false;
  std::string broadcast_problem_;  // non-empty while the last round failed entirely
  bool degraded_by_broadcast_ = false;

  mutable std::mutex status_mutex_;  // guards last_round_ for details()
  std::string last_round_;
};

}  // namespace exo::net
