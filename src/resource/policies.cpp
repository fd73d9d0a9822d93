#include "resource/policies.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace exo::resource {
namespace {
void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("invalid resource option: " + what);
}
}  // namespace

std::chrono::steady_clock::duration BackoffPolicy::delay(int retry_index, std::mt19937_64& rng) const {
  using D = std::chrono::duration<double, std::nano>;
  const double base = D(initial).count() * std::pow(multiplier, std::max(0, retry_index));
  const double capped = std::min(base, D(max).count());
  std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0 + jitter);
  const double jittered = std::min(capped * factor(rng), D(max).count());
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(D(std::max(0.0, jittered)));
}

void BackoffPolicy::validate(const char* owner) const {
  const std::string o(owner);
  require(initial >= std::chrono::steady_clock::duration::zero(), o + ".initial must be >= 0");
  require(multiplier >= 1.0, o + ".multiplier must be >= 1");
  require(max >= initial, o + ".max must be >= initial");
  require(jitter >= 0.0 && jitter < 1.0, o + ".jitter must be in [0, 1)");
}

void RetryPolicy::validate() const {
  require(max_attempts >= 1, "init_retry.max_attempts must be >= 1");
  require(total_deadline >= std::chrono::steady_clock::duration::zero(),
          "init_retry.total_deadline must be >= 0");
  backoff.validate("init_retry.backoff");
}

void HealthPolicy::validate() const {
  require(timeout > std::chrono::steady_clock::duration::zero(), "health.timeout must be > 0");
  require(failures_to_degrade >= 1, "health.failures_to_degrade must be >= 1");
  require(successes_to_recover >= 1, "health.successes_to_recover must be >= 1");
  require(failures_to_error >= 0, "health.failures_to_error must be >= 0");
}

void SupervisionPolicy::validate() const {
  require(health_interval >= std::chrono::steady_clock::duration::zero(),
          "supervision.health_interval must be >= 0");
  require(health_jitter >= 0.0 && health_jitter < 1.0, "supervision.health_jitter must be in [0, 1)");
  require(max_restarts >= 0, "supervision.max_restarts must be >= 0");
  require(restart_period > std::chrono::steady_clock::duration::zero(),
          "supervision.restart_period must be > 0");
  recovery_backoff.validate("supervision.recovery_backoff");
}

void ResourceOptions::validate() const {
  require(init_timeout > std::chrono::steady_clock::duration::zero(), "init_timeout must be > 0");
  require(cleanup_timeout > std::chrono::steady_clock::duration::zero(), "cleanup_timeout must be > 0");
  init_retry.validate();
  health.validate();
  supervision.validate();
}

}  // namespace exo::resource
