// Memory read bandwidth probe: the denominator of "% of the bandwidth limit" in `exo bench`.
//
// Contract
// - BandwidthProbe allocates a buffer of `buffer_bytes` (choose it much larger than the last-level
//   cache so the reads come from DRAM) in a HugePageBuffer, the pages the weights get, and touches it
//   once from the pool. Each pass() streams through it on every thread of `pool` (the buffer split
//   into 1 MiB pieces handed out dynamically) and returns that pass's bytes per second. Passes can
//   be interleaved with other work, so that a machine whose bandwidth drifts (a shared virtual
//   machine) is compared with itself at the same moment.
// - measure_read_bandwidth runs `passes` passes and reports the best and the mean.
// - Runs on the caller's pool (same rules as ComputePool); never prints; not thread-safe (one pass
//   at a time). Throws std::invalid_argument for an empty buffer or passes < 1, std::bad_alloc when
//   the buffer cannot be allocated.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "inference/compute_pool.h"
#include "inference/huge_page_buffer.h"

namespace exo::inference {

struct BandwidthResult {
  double bytes_per_second = 0;  // best pass
  double mean_bytes_per_second = 0;
  std::size_t buffer_bytes = 0;
  unsigned threads = 0;
  int passes = 0;
};

inline constexpr std::size_t default_bandwidth_buffer_bytes = std::size_t{512} << 20;

class BandwidthProbe {
 public:
  BandwidthProbe(ComputePool& pool, std::size_t buffer_bytes);
  double pass();
  std::size_t buffer_bytes() const noexcept { return words_ * sizeof(std::uint64_t); }

 private:
  ComputePool& pool_;
  HugePageBuffer memory_;
  std::size_t words_;
  std::atomic<std::uint64_t> sink_{0};  // keeps the reads observable
};

BandwidthResult measure_read_bandwidth(ComputePool& pool,
                                       std::size_t buffer_bytes = default_bandwidth_buffer_bytes,
                                       int passes = 5);

}  // namespace exo::inference
