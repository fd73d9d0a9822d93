// Memory read bandwidth probe: the denominator of "% of the bandwidth limit" in `exo bench`.
//
// Contract: measure_read_bandwidth allocates a buffer of `buffer_bytes` (choose it much larger than
// the last-level cache so the reads come from DRAM), touches it once, then streams through it
// `passes` times on every thread of `pool` (the buffer split into 1 MiB pieces handed out
// dynamically) and reports the best pass. Runs on the caller's pool (same rules as ComputePool);
// never prints. Throws std::invalid_argument for an empty buffer or passes < 1, std::bad_alloc when
// the buffer cannot be allocated.
#pragma once

#include <cstddef>

#include "inference/compute_pool.h"

namespace exo::inference {

struct BandwidthResult {
  double bytes_per_second = 0;  // best pass
  double mean_bytes_per_second = 0;
  std::size_t buffer_bytes = 0;
  unsigned threads = 0;
  int passes = 0;
};

inline constexpr std::size_t default_bandwidth_buffer_bytes = std::size_t{512} << 20;

BandwidthResult measure_read_bandwidth(ComputePool& pool,
                                       std::size_t buffer_bytes = default_bandwidth_buffer_bytes,
                                       int passes = 5);

}  // namespace exo::inference
