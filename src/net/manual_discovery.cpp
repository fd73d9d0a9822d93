#include "net/manual_discovery.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <stdexcept>

#include "resource/errors.h"
#include "resource/timeouts.h"

namespace exo::net {

using resource::Clock;

namespace {

// A file modified this recently may be modified again within the same timestamp tick (coarse mtime
// on some file systems), so its content is re-read even when size and mtime look unchanged.
constexpr auto kRacyWindow = std::chrono::seconds(2);

DiscoveredPeer peer_from_config(const ManualPeerConfig& config) {
  DiscoveredPeer peer;
  peer.node_id = config.node_id;
  peer.address = config.address;
  peer.port = config.port;
  peer.capabilities = config.device_capabilities;
  peer.interface_priority = 0;
  peer.interface_type = "MAN";
  return peer;
}

std::string endpoint_of(const ManualPeerConfig& config) {
  return config.address + ":" + std::to_string(config.port);
}

}  // namespace

void ManualDiscoveryOptions::validate() const {
  DiscoveryOptions::validate();
  if (config_path.empty()) throw std::invalid_argument("manual discovery: config_path must be set");
  if (reload_interval <= Clock::duration::zero())
    throw std::invalid_argument("manual discovery: reload_interval must be > 0");
}

ManualDiscovery::ManualDiscovery(const asio::any_io_executor& executor, std::string id,
                                 ManualDiscoveryOptions options,
                                 std::shared_ptr<resource::ResourceRegistry> registry)
    : Discovery(executor,
                resource::ResourceIdentity{std::move(id), "discovery",
                                           fmt::format("Manual discovery ({})", options.config_path)},
                static_cast<const DiscoveryOptions&>(options), Clock::duration::zero(), std::move(registry)),
      manual_options_(std::move(options)) {
  manual_options_.validate();
}

ManualDiscoveryConfig ManualDiscovery::config() const {
  std::lock_guard lock(config_mutex_);
  return config_;
}

std::string ManualDiscovery::last_config_error() const {
  std::lock_guard lock(config_mutex_);
  return config_error_;
}

// ---------------------------------------------------------------- lifecycle

asio::awaitable<void> ManualDiscovery::do_initialize() {
  const auto stamp = stamp_file();
  auto text = read_discovery_config_text(manual_options_.config_path);
  if (!text) throw resource::PermanentError(text.error().message);
  auto parsed = parse_discovery_config(*text);
  if (!parsed) {
    throw resource::PermanentError(
        fmt::format("discovery config '{}': {}", manual_options_.config_path, parsed.error().message));
  }
  last_stamp_ = stamp;
  last_hash_ = std::hash<std::string_view>{}(*text);
  set_config_error("");
  update_counters([](DiscoveryCounters& c) { ++c.config_loads; });
  begin_discovery();
  apply_config(*parsed, /*initial=*/true);
  spawn(reload_loop(session()));
  co_return;
}

asio::awaitable<void> ManualDiscovery::do_cleanup() {
  end_discovery();
  {
    std::lock_guard lock(config_mutex_);
    config_ = {};
    config_error_.clear();
  }
  last_stamp_.reset();
  last_hash_ = 0;
  degraded_by_config_ = false;
  co_return;
}

asio::awaitable<resource::HealthStatus> ManualDiscovery::do_health_check() {
  const std::string error = last_config_error();
  if (!error.empty())
    co_return resource::HealthStatus{false, "keeping the last good configuration: " + error};
  const auto configured = config().peers.size();
  co_return resource::HealthStatus{true,
                                   fmt::format("{} peers configured, {} known", configured, peer_count())};
}

std::map<std::string, std::string> ManualDiscovery::details() const {
  auto out = discovery_details();
  out["config_path"] = manual_options_.config_path;
  std::lock_guard lock(config_mutex_);
  out["configured_peers"] = std::to_string(config_.peers.size());
  out["self_listed"] = config_.peers.count(node_id()) > 0 ? "yes" : "no";
  if (!config_error_.empty()) out["config_error"] = config_error_;
  return out;
}

// ---------------------------------------------------------------- reloads

asio::awaitable<void> ManualDiscovery::reload_loop(std::uint64_t session) {
  auto self = shared_from_this();
  for (;;) {
    co_await resource::sleep_for(manual_options_.reload_interval);
    if (session != this->session()) co_return;
    poll_file();
    probe_configured_peers();
    const std::string error = last_config_error();
    const auto now_state = state();
    if (!error.empty() && now_state == resource::ResourceState::READY) {
      record_error(error);
      degraded_by_config_ = true;
      transition(resource::ResourceState::DEGRADED,
                 "invalid configuration edit, keeping the last good one: " + error);
    } else if (error.empty() && degraded_by_config_) {
      degraded_by_config_ = false;
      if (now_state == resource::ResourceState::DEGRADED) {
        transition(resource::ResourceState::READY, "configuration valid again");
      }
    }
  }
}

ManualDiscovery::FileStamp ManualDiscovery::stamp_file() const {
  FileStamp stamp;
  struct stat info {};
  if (::stat(manual_options_.config_path.c_str(), &info) != 0) return stamp;
  stamp.exists = true;
  stamp.size = static_cast<std::uintmax_t>(info.st_size);
  stamp.mtime_ns = static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  stamp.inode = static_cast<std::uint64_t>(info.st_ino);
  return stamp;
}

void ManualDiscovery::poll_file() {
  const FileStamp stamp = stamp_file();
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const bool racy = stamp.exists && now_ns - stamp.mtime_ns < std::chrono::nanoseconds(kRacyWindow).count();
  if (last_stamp_ && *last_stamp_ == stamp && !racy) return;  // unchanged
  last_stamp_ = stamp;
  auto text = read_discovery_config_text(manual_options_.config_path);
  if (!text) {
    if (last_config_error() != text.error().message) {
      update_counters([](DiscoveryCounters& c) { ++c.config_errors; });
      set_config_error(text.error().message);
    }
    last_hash_ = 0;
    return;
  }
  const std::uint64_t hash = std::hash<std::string_view>{}(*text);
  if (hash == last_hash_) return;  // same content (a touch, or a racy re-read)
  last_hash_ = hash;
  auto parsed = parse_discovery_config(*text);
  if (!parsed) {
    update_counters([](DiscoveryCounters& c) { ++c.config_errors; });
    set_config_error(
        fmt::format("discovery config '{}': {}", manual_options_.config_path, parsed.error().message));
    return;
  }
  set_config_error("");
  update_counters([](DiscoveryCounters& c) { ++c.config_loads; });
  apply_config(*parsed, /*initial=*/false);
}

void ManualDiscovery::set_config_error(std::string error) {
  std::lock_guard lock(config_mutex_);
  config_error_ = std::move(error);
}

void ManualDiscovery::apply_config(const ManualDiscoveryConfig& next, bool initial) {
  const ManualDiscoveryConfig previous = config();
  const std::string& path = manual_options_.config_path;
  if (!initial) {
    for (const auto& [id, old] : previous.peers) {
      if (id == node_id()) continue;
      const auto now = next.peers.find(id);
      if (now == next.peers.end()) {
        remove_peer(id, PeerRemovalReason::FILE_EDIT, fmt::format("removed from {}", path));
        forget(id);
      } else if (endpoint_of(now->second) != endpoint_of(old)) {
        remove_peer(
            id, PeerRemovalReason::FILE_EDIT,
            fmt::format("moved from {} to {} in {}", endpoint_of(old), endpoint_of(now->second), path));
        forget(id);
      } else if (now->second.device_capabilities != old.device_capabilities) {
        update_capabilities(id, now->second.device_capabilities);
      }
    }
  }
  {
    std::lock_guard lock(config_mutex_);
    config_ = next;
  }
  probe_configured_peers();
}

void ManualDiscovery::probe_configured_peers() {
  for (const auto& [id, peer] : config().peers) {
    if (id == node_id()) continue;  // the local entry is ours, not a peer
    const auto known = find_peer(id);
    if (known && known->endpoint() == endpoint_of(peer)) continue;  // refreshed by the sweep's probes
    observe(peer_from_config(peer), AddressRule::ANY);
  }
}

}  // namespace exo::net
