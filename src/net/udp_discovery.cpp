#include "net/udp_discovery.h"

#include <fmt/format.h>
#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address_v4.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "net/discovery_message.h"
#include "net/interface_priority.h"
#include "resource/errors.h"
#include "resource/timeouts.h"
#include "topology/json_fields.h"

namespace exo::net {

using asio::ip::udp;
using resource::Clock;

namespace {

constexpr std::size_t kReceiveBufferBytes = 65536;  // larger than any IPv4 UDP payload

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// Why a datagram that parse_discovery_message rejected was rejected, as a counter name.
std::string_view classify_rejected(std::string_view data) {
  const auto first = data.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || data[first] != '{' ||
      !topology::json_nesting_within(data, kMaxDiscoveryJsonDepth)) {
    return UdpDiscovery::kDropNotJson;
  }
  const nlohmann::json json = nlohmann::json::parse(data.begin(), data.end(), nullptr,
                                                    /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return UdpDiscovery::kDropNotJson;
  const auto type = json.find("type");
  if (type == json.end() || !type->is_string() || type->get_ref<const std::string&>() != "discovery") {
    return UdpDiscovery::kDropWrongType;
  }
  return UdpDiscovery::kDropInvalidFields;
}

// Clears a flag when a task of the current session ends (a task of an older session leaves it alone).
class RunningFlag {
 public:
  RunningFlag(bool& flag, const std::uint64_t& current_session, std::uint64_t session)
      : flag_(flag), current_session_(current_session), session_(session) {
    flag_ = true;
  }
  ~RunningFlag() {
    if (current_session_ == session_) flag_ = false;
  }
  RunningFlag(const RunningFlag&) = delete;
  RunningFlag& operator=(const RunningFlag&) = delete;

 private:
  bool& flag_;
  const std::uint64_t& current_session_;
  std::uint64_t session_;
};

}  // namespace

struct UdpDiscovery::SenderSocket {
  explicit SenderSocket(const asio::any_io_executor& executor) : socket(executor) {}
  udp::socket socket;
};

void UdpDiscoveryOptions::validate() const {
  DiscoveryOptions::validate();
  if (node_port == 0) throw std::invalid_argument("udp discovery: node_port must be 1..65535");
  if (broadcast_port == 0) throw std::invalid_argument("udp discovery: broadcast_port must be 1..65535");
  if (broadcast_interval <= Clock::duration::zero())
    throw std::invalid_argument("udp discovery: broadcast_interval must be > 0");
  if (discovery_timeout <= Clock::duration::zero())
    throw std::invalid_argument("udp discovery: discovery_timeout must be > 0");
  if (!parse_ipv4(listen_host))
    throw std::invalid_argument("udp discovery: listen_host '" + listen_host + "' is not an IPv4 address");
  for (const auto& target : broadcast_targets) {
    if (!parse_ipv4(target))
      throw std::invalid_argument("udp discovery: broadcast target '" + target + "' is not an IPv4 address");
  }
  if (max_datagram_bytes == 0 || max_datagram_bytes > kMaxDiscoveryDatagramBytes)
    throw std::invalid_argument("udp discovery: max_datagram_bytes must be 1..65507");
  for (const auto& id : allowed_node_ids) {
    if (id.empty()) throw std::invalid_argument("udp discovery: empty entry in allowed_node_ids");
  }
  for (const auto& type : allowed_interface_types) {
    if (type.empty()) throw std::invalid_argument("udp discovery: empty entry in allowed_interface_types");
  }
  const DiscoveryMessage probe{node_id, node_port, device_capabilities, 0, "", ""};
  if (auto problem = validate_discovery_message(probe); !problem.empty()) {
    throw std::invalid_argument("udp discovery: cannot announce this node: " + problem);
  }
}

UdpDiscovery::UdpDiscovery(const asio::any_io_executor& executor, std::string id, UdpDiscoveryOptions options,
                           std::shared_ptr<resource::ResourceRegistry> registry)
    : Discovery(executor,
                resource::ResourceIdentity{std::move(id), "discovery",
                                           fmt::format("UDP discovery (port {})", options.listen_port)},
                static_cast<const DiscoveryOptions&>(options), options.discovery_timeout,
                std::move(registry)),
      udp_options_(std::move(options)) {
  udp_options_.validate();
  if (!udp_options_.list_interfaces) udp_options_.list_interfaces = list_ipv4_interfaces;
  for (const auto& target : udp_options_.broadcast_targets) targets_.push_back(*parse_ipv4(target));
}

UdpDiscovery::~UdpDiscovery() = default;

// ---------------------------------------------------------------- lifecycle

asio::awaitable<void> UdpDiscovery::do_initialize() {
  close_sockets();
  auto listener = std::make_unique<udp::socket>(strand());
  const std::string where = fmt::format("{}:{}", udp_options_.listen_host, udp_options_.listen_port);
  asio::error_code error;
  listener->open(udp::v4(), error);
  if (!error && udp_options_.reuse_address) listener->set_option(udp::socket::reuse_address(true), error);
  if (!error) {
    const udp::endpoint endpoint(asio::ip::address_v4(*parse_ipv4(udp_options_.listen_host)),
                                 udp_options_.listen_port);
    listener->bind(endpoint, error);
  }
  if (error) {
    throw std::runtime_error(
        fmt::format("cannot listen for discovery datagrams on UDP {}: {}", where, error.message()));
  }
  bound_port_.store(listener->local_endpoint().port());
  listener_ = std::move(listener);
  begin_discovery();
  spawn(listen_loop(session()));
  spawn(broadcast_loop(session()));
  co_return;
}

asio::awaitable<void> UdpDiscovery::do_cleanup() {
  end_discovery();
  close_sockets();
  listening_ = false;
  broadcasting_ = false;
  broadcast_problem_.clear();
  degraded_by_broadcast_ = false;
  bound_port_.store(0);
  co_return;
}

void UdpDiscovery::close_sockets() {
  asio::error_code ignored;
  if (listener_) listener_->close(ignored);
  listener_.reset();
  for (auto& [key, sender] : senders_) sender->socket.close(ignored);
  senders_.clear();
}

asio::awaitable<resource::HealthStatus> UdpDiscovery::do_health_check() {
  std::vector<std::string> problems;
  if (!listener_ || !listener_->is_open()) problems.emplace_back("the listener socket is closed");
  if (!listening_) problems.emplace_back("the listener task is not running");
  if (!broadcasting_) problems.emplace_back("the broadcaster task is not running");
  if (!broadcast_problem_.empty()) problems.push_back(broadcast_problem_);
  if (!problems.empty()) co_return resource::HealthStatus{false, join(problems, "; ")};
  co_return resource::HealthStatus{
      true, fmt::format("listening on UDP port {}, {} peers", bound_port_.load(), peer_count())};
}

std::map<std::string, std::string> UdpDiscovery::details() const {
  auto out = discovery_details();
  out["listen_port"] = std::to_string(bound_port_.load());
  out["broadcast_port"] = std::to_string(udp_options_.broadcast_port);
  std::lock_guard lock(status_mutex_);
  if (!last_round_.empty()) out["last_broadcast"] = last_round_;
  return out;
}

// ---------------------------------------------------------------- listener

asio::awaitable<void> UdpDiscovery::listen_loop(std::uint64_t session) {
  auto self = shared_from_this();
  RunningFlag running(listening_, session_ref(), session);
  std::vector<char> buffer(kReceiveBufferBytes);
  for (;;) {
    udp::endpoint sender;
    auto [error, size] = co_await listener_->async_receive_from(
        asio::buffer(buffer), sender, asio::experimental::as_tuple(asio::use_awaitable));
    if (session != this->session()) co_return;
    const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none || error == asio::error::operation_aborted) co_return;
    if (error) {
      update_counters([](DiscoveryCounters& c) { ++c.receive_errors; });
      if (error == asio::error::bad_descriptor) {
        report_failure("discovery listener failed: " + error.message());
        co_return;
      }
      co_await resource::sleep_for(std::chrono::milliseconds(10));  // never spin on a failing socket
      if (session != this->session()) co_return;
      continue;
    }
    handle_datagram(std::string_view(buffer.data(), size), sender);
  }
}

void UdpDiscovery::handle_datagram(std::string_view data, const udp::endpoint& sender) {
  update_counters([](DiscoveryCounters& c) { ++c.datagrams_received; });
  if (data.size() > udp_options_.max_datagram_bytes) {
    count_drop(kDropTooLarge);
    return;
  }
  auto parsed = parse_discovery_message(data);
  if (!parsed) {
    count_drop(classify_rejected(data));
    return;
  }
  DiscoveryMessage message = std::move(parsed).value();
  if (message.node_id == node_id()) {
    count_drop(kDropSelfId);  // our own broadcast coming back, or someone using our id
    return;
  }
  if (!udp_options_.allowed_node_ids.empty() && !contains(udp_options_.allowed_node_ids, message.node_id)) {
    count_drop(kDropNodeIdFiltered);
    return;
  }
  if (!udp_options_.allowed_interface_types.empty() &&
      !contains(udp_options_.allowed_interface_types, message.interface_type)) {
    count_drop(kDropInterfaceTypeFiltered);
    return;
  }
  update_counters([](DiscoveryCounters& c) { ++c.datagrams_accepted; });
  DiscoveredPeer peer;
  peer.node_id = std::move(message.node_id);
  peer.address = sender.address().to_string();
  peer.port = message.grpc_port;
  peer.capabilities = std::move(message.device_capabilities);
  peer.interface_priority = message.priority;
  peer.interface_name = std::move(message.interface_name);
  peer.interface_type = std::move(message.interface_type);
  observe(std::move(peer), AddressRule::HIGHER_PRIORITY);
}

// ---------------------------------------------------------------- broadcaster

asio::awaitable<void> UdpDiscovery::broadcast_loop(std::uint64_t session) {
  auto self = shared_from_this();
  RunningFlag running(broadcasting_, session_ref(), session);
  for (;;) {
    RoundResult round = co_await broadcast_round(session);
    if (session != this->session()) co_return;
    apply_round(round);
    auto delay = udp_options_.broadcast_interval;
    // A round that failed before the resource was READY could not mark it DEGRADED: retry soon.
    if (!broadcast_problem_.empty() && state() == resource::ResourceState::INITIALIZING) {
      delay = std::min<Clock::duration>(delay, std::chrono::milliseconds(100));
    }
    co_await resource::sleep_for(delay);
    if (session != this->session()) co_return;
  }
}

asio::awaitable<UdpDiscovery::RoundResult> UdpDiscovery::broadcast_round(std::uint64_t session) {
  RoundResult round;
  auto listed = udp_options_.list_interfaces();
  if (!listed) {
    round.errors.push_back("cannot list network interfaces: " + listed.error().message);
    co_return round;
  }
  std::set<std::pair<std::string, std::uint32_t>> current;
  for (const Ipv4Interface& interface : *listed) {
    const InterfaceClass kind = classify_interface(interface.name);
    if (!udp_options_.allowed_interface_types.empty() &&
        !contains(udp_options_.allowed_interface_types, kind.type)) {
      continue;
    }
    const std::vector<std::uint32_t> destinations =
        targets_.empty() ? discovery_destinations(interface) : targets_;
    if (destinations.empty()) continue;  // point-to-point, /31 or /32: no broadcast domain
    ++round.attempted;
    const auto key = std::make_pair(interface.name, interface.address);
    const std::string label = fmt::format("{} ({})", interface.name, format_ipv4(interface.address));
    current.insert(key);
    auto found = senders_.find(key);
    if (found == senders_.end()) {
      // Bound to the interface address: receivers take the datagram's source IP as our host (§3.1).
      auto sender = std::make_unique<SenderSocket>(strand());
      asio::error_code error;
      sender->socket.open(udp::v4(), error);
      if (!error) sender->socket.set_option(udp::socket::broadcast(true), error);
      if (!error) sender->socket.bind(udp::endpoint(asio::ip::address_v4(interface.address), 0), error);
      if (error) {
        round.errors.push_back(fmt::format("{}: cannot open a socket: {}", label, error.message()));
        update_counters([](DiscoveryCounters& c) { ++c.send_failures; });
        continue;
      }
      found = senders_.emplace(key, std::move(sender)).first;
    }
    DiscoveryMessage message;
    message.node_id = node_id();
    message.grpc_port = udp_options_.node_port;
    message.device_capabilities = udp_options_.device_capabilities;
    message.priority = kind.priority;
    message.interface_name = interface.name;
    message.interface_type = kind.type;
    const std::string datagram = encode_discovery_message(message);
    bool sent = false;
    std::string last_error;
    for (const std::uint32_t destination : destinations) {
      const udp::endpoint to(asio::ip::address_v4(destination), udp_options_.broadcast_port);
      auto [error, size] = co_await found->second->socket.async_send_to(
          asio::buffer(datagram), to, asio::experimental::as_tuple(asio::use_awaitable));
      if (session != this->session()) co_return round;  // cleaned up meanwhile: touch nothing
      const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cancelled != asio::cancellation_type::none) {
        throw std::system_error(asio::error::operation_aborted, "broadcast cancelled");
      }
      if (!error) {
        sent = true;
        update_counters([](DiscoveryCounters& c) { ++c.datagrams_sent; });
      } else {
        last_error = fmt::format("to {}: {}", to.address().to_string(), error.message());
        update_counters([](DiscoveryCounters& c) { ++c.send_failures; });
      }
    }
    if (sent) {
      ++round.succeeded;
    } else {
      round.errors.push_back(fmt::format("{}: send failed {}", label, last_error));
      asio::error_code ignored;
      found->second->socket.close(ignored);
      senders_.erase(found);  // reopened next round
    }
  }
  for (auto it = senders_.begin(); it != senders_.end();) {
    if (current.count(it->first) == 0) {
      asio::error_code ignored;
      it->second->socket.close(ignored);
      it = senders_.erase(it);
    } else {
      ++it;
    }
  }
  co_return round;
}

void UdpDiscovery::apply_round(const RoundResult& round) {
  update_counters([](DiscoveryCounters& c) { ++c.broadcast_rounds; });
  std::string problem;
  if (round.succeeded == 0) {
    if (round.attempted > 0) {
      problem = "broadcast failed on every interface: " + join(round.errors, "; ");
    } else if (!round.errors.empty()) {
      problem = join(round.errors, "; ");
    } else {
      problem = udp_options_.allowed_interface_types.empty()
                    ? "no interface to broadcast on"
                    : "no interface to broadcast on matches the interface type filter (" +
                          join(udp_options_.allowed_interface_types, ", ") + ")";
    }
  }
  {
    std::lock_guard lock(status_mutex_);
    last_round_ = problem.empty()
                      ? fmt::format("sent on {} of {} interfaces", round.succeeded, round.attempted)
                      : problem;
  }
  broadcast_problem_ = problem;
  const auto now_state = state();
  if (!problem.empty() && now_state == resource::ResourceState::READY) {
    record_error(problem);
    degraded_by_broadcast_ = true;
    transition(resource::ResourceState::DEGRADED, problem);
  } else if (problem.empty() && degraded_by_broadcast_) {
    degraded_by_broadcast_ = false;
    if (now_state == resource::ResourceState::DEGRADED) {
      transition(resource::ResourceState::READY, "broadcast recovered: " + last_round_);
    }
  }
}

}  // namespace exo::net
