// ManualDiscovery: peers from a JSON topology file (wire spec §4), as a Discovery resource.
//
// Contract
// - initialize() loads and validates the file; a missing or invalid file fails it (PermanentError,
//   not retried) with a message naming the file and the offending field.
// - Every configured peer except ourselves is health-probed (rate-limited, see discovery.h) and enters
//   the peer table when its probe succeeds; a peer whose probe fails leaves it and is re-probed no
//   sooner than health_probe_interval. Manual peers never expire by time.
// - The file is polled every reload_interval (size, mtime and content hash; no inotify). A valid edit
//   is applied at once: peers removed from the file, or moved to another address/port, are removed
//   (FILE_EDIT); new ones are probed; changed capabilities are UPDATED. An invalid edit (or a deleted
//   file) keeps the last good configuration and makes the resource DEGRADED with the error
//   (last_config_error()); it is READY again once the file is valid.
// - File reads are small (<= 1 MiB) synchronous reads on the strand. cleanup() stops the polling task
//   and removes every peer (STOPPED).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "net/discovery.h"
#include "net/discovery_config.h"

namespace exo::net {

struct ManualDiscoveryOptions : DiscoveryOptions {
  std::string config_path;  // --discovery-config-path
  std::chrono::steady_clock::duration reload_interval = std::chrono::seconds(1);

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

class ManualDiscovery : public Discovery {
 public:
  ManualDiscovery(const asio::any_io_executor& executor, std::string id, ManualDiscoveryOptions options,
                  std::shared_ptr<resource::ResourceRegistry> registry = nullptr);

  const ManualDiscoveryOptions& manual_options() const noexcept { return manual_options_; }
  // The configuration in force (the last good one); empty before initialize().
  ManualDiscoveryConfig config() const;
  // Why the current file was rejected; empty while the file is valid. Thread-safe.
  std::string last_config_error() const;

 protected:
  asio::awaitable<void> do_initialize() override;
  asio::awaitable<void> do_cleanup() override;
  asio::awaitable<resource::HealthStatus> do_health_check() override;
  std::map<std::string, std::string> details() const override;

 private:
  struct FileStamp {
    bool exists = false;
    std::uintmax_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };

  asio::awaitable<void> reload_loop(std::uint64_t session);
  void poll_file();
  void apply_config(const ManualDiscoveryConfig& next, bool initial);
  void probe_configured_peers();
  void set_config_error(std::string error);
  FileStamp stamp_file() const;

  ManualDiscoveryOptions manual_options_;

  mutable std::mutex config_mutex_;  // guards config_ and config_error_ (written on the strand)
  ManualDiscoveryConfig config_;
  std::string config_error_;

  // Strand-only.
  std::optional<FileStamp> last_stamp_;
  std::uint64_t last_hash_ = 0;
  bool degraded_by_config_ = false;
};

}  // namespace exo::net
