// Test support for the discovery resources: bounded event-loop driving (discovery always has timers
// pending, so "no progress" never happens: every wait has an overall deadline instead), a recorder of
// peer changes, raw datagram senders and fixed interface lists.
//
// Contract: single-threaded unless a test says otherwise; PeerLog is filled on the discovery strand,
// which is the test thread while the test drives the io_context.
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/discovery.h"
#include "net/network_interfaces.h"

namespace exo::net::testing {

using namespace std::chrono_literals;

// Runs handlers until `done()` holds or `limit` passes; returns whether `done()` held.
inline bool run_until(asio::io_context& context, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (context.stopped()) context.restart();
    context.run_one_until(deadline);
  }
  return true;
}

// Runs `operation` to completion (rethrowing its exception); fails the test after `limit`.
template <typename T>
T run_sync(asio::io_context& context, asio::awaitable<T> operation,
           std::chrono::steady_clock::duration limit = 15s) {
  bool done = false;
  std::exception_ptr error;
  std::optional<T> result;
  asio::co_spawn(context, std::move(operation), [&](std::exception_ptr e, T value) {
    done = true;
    error = e;
    if (!e) result.emplace(std::move(value));
  });
  if (!run_until(
          context, [&] { return done; }, limit))
    throw std::runtime_error("run_sync: timed out");
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline void run_sync(asio::io_context& context, asio::awaitable<void> operation,
                     std::chrono::steady_clock::duration limit = 15s) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(context, std::move(operation), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  if (!run_until(
          context, [&] { return done; }, limit))
    throw std::runtime_error("run_sync: timed out");
  if (error) std::rethrow_exception(error);
}

// Every peer change a discovery reported, in order.
struct PeerLog {
  std::vector<PeerChange> changes;
  void attach(Discovery& discovery) {
    discovery.add_peer_listener([this](const PeerChange& change) { changes.push_back(change); });
  }
  std::size_t count(PeerChangeKind kind, const std::string& node_id = "",
                    PeerRemovalReason reason = PeerRemovalReason::NONE) const {
    std::size_t n = 0;
    for (const auto& c : changes) {
      if (c.kind != kind) continue;
      if (!node_id.empty() && c.peer.node_id != node_id) continue;
      if (kind == PeerChangeKind::REMOVED && reason != PeerRemovalReason::NONE && c.reason != reason)
        continue;
      ++n;
    }
    return n;
  }
};

// A UDP port no socket is bound to right now (bound, read and released).
inline std::uint16_t unused_udp_port() {
  asio::io_context context;
  asio::ip::udp::socket socket(context, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  return socket.local_endpoint().port();
}

// Sends one datagram with a blocking socket bound to `source` (any 127.x address works on Linux).
inline void send_datagram(const std::string& payload, std::uint16_t port,
                          const std::string& source = "127.0.0.1") {
  asio::io_context context;
  asio::ip::udp::socket socket(context, asio::ip::udp::endpoint(asio::ip::make_address_v4(source), 0));
  socket.send_to(asio::buffer(payload),
                 asio::ip::udp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
}

inline Ipv4Interface fake_interface(const std::string& name, const std::string& address,
                                    const std::string& netmask = "255.0.0.0") {
  Ipv4Interface interface;
  interface.name = name;
  interface.address = parse_ipv4(address).value();
  interface.netmask = parse_ipv4(netmask).value();
  interface.is_loopback = name == "lo";
  interface.broadcast = subnet_broadcast_address(interface.address, interface.netmask);
  return interface;
}

inline std::function<Result<std::vector<Ipv4Interface>>()> interfaces(std::vector<Ipv4Interface> list) {
  return [list = std::move(list)]() -> Result<std::vector<Ipv4Interface>> { return list; };
}

inline topology::DeviceCapabilities capabilities(const std::string& model, std::int32_t memory_mb) {
  return topology::DeviceCapabilities{model, "Test Chip", memory_mb, {1.5, 3.0, 6.0}};
}

}  // namespace exo::net::testing
