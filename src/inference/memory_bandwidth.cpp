#include "inference/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace exo::inference {

namespace {

constexpr std::size_t piece_bytes = std::size_t{1} << 20;

// Sums 64-bit words with independent accumulators so the loop is limited by loads, not additions,
// and prefetches a page ahead (as the matmul kernels do) so enough cache lines are in flight: the
// probe must not understate what the kernels can reach.
std::uint64_t read_piece(const std::uint64_t* words, std::size_t count) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::uint64_t c = 0;
  std::uint64_t d = 0;
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __builtin_prefetch(words + i + 512);
    a += words[i] + words[i + 4];
    b += words[i + 1] + words[i + 5];
    c += words[i + 2] + words[i + 6];
    d += words[i + 3] + words[i + 7];
  }
  for (; i < count; ++i) a += words[i];
  return a ^ b ^ c ^ d;
}

}  // namespace

BandwidthResult measure_read_bandwidth(ComputePool& pool, std::size_t buffer_bytes, int passes) {
  if (buffer_bytes < sizeof(std::uint64_t) || passes < 1)
    throw std::invalid_argument("measure_read_bandwidth: empty buffer or no passes");
  const std::size_t words = buffer_bytes / sizeof(std::uint64_t);
  const auto buffer = std::make_unique<std::uint64_t[]>(words);
  const std::size_t words_per_piece = piece_bytes / sizeof(std::uint64_t);
  const auto pieces = static_cast<std::int64_t>((words + words_per_piece - 1) / words_per_piece);
  // First touch from the pool too, so pages are spread the way the reads will use them.
  pool.parallel_for(pieces, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t p = begin; p < end; ++p) {
      const std::size_t first = static_cast<std::size_t>(p) * words_per_piece;
      const std::size_t last = std::min(words, first + words_per_piece);
      for (std::size_t i = first; i < last; ++i) buffer[i] = i * 0x9E3779B97F4A7C15ULL;
    }
  });
  std::atomic<std::uint64_t> sink{0};
  BandwidthResult result;
  result.buffer_bytes = words * sizeof(std::uint64_t);
  result.threads = pool.size();
  result.passes = passes;
  double total_seconds = 0;
  double best_seconds = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(pieces, [&](std::int64_t begin, std::int64_t end) {
      std::uint64_t local = 0;
      for (std::int64_t p = begin; p < end; ++p) {
        const std::size_t first = static_cast<std::size_t>(p) * words_per_piece;
        const std::size_t last = std::min(words, first + words_per_piece);
        local ^= read_piece(buffer.get() + first, last - first);
      }
      sink.fetch_xor(local, std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total_seconds += seconds;
    if (pass == 0 || seconds < best_seconds) best_seconds = seconds;
  }
  const auto bytes = static_cast<double>(result.buffer_bytes);
  result.bytes_per_second = bytes / std::max(best_seconds, 1e-9);
  result.mean_bytes_per_second = bytes * passes / std::max(total_seconds, 1e-9);
  if (sink.load() == 0x5555) result.passes = passes;  // keeps the reads observable
  return result;
}

}  // namespace exo::inference
