#include "inference/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "inference/huge_page_buffer.h"

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

std::int64_t piece_count(std::size_t words) {
  const std::size_t words_per_piece = piece_bytes / sizeof(std::uint64_t);
  return static_cast<std::int64_t>((words + words_per_piece - 1) / words_per_piece);
}

// Word range [first, last) of piece `p`.
std::pair<std::size_t, std::size_t> piece_bounds(std::int64_t p, std::size_t words) {
  const std::size_t words_per_piece = piece_bytes / sizeof(std::uint64_t);
  const std::size_t first = static_cast<std::size_t>(p) * words_per_piece;
  return {first, std::min(words, first + words_per_piece)};
}

std::uint64_t* words_of(HugePageBuffer& memory) {
  return reinterpret_cast<std::uint64_t*>(memory.data());  // page-aligned, so aligned for words
}

}  // namespace

BandwidthProbe::BandwidthProbe(ComputePool& pool, std::size_t buffer_bytes)
    : pool_(pool), words_(buffer_bytes / sizeof(std::uint64_t)) {
  if (words_ == 0) throw std::invalid_argument("BandwidthProbe: empty buffer");
  memory_ = HugePageBuffer(words_ * sizeof(std::uint64_t));
  std::uint64_t* const buffer = words_of(memory_);
  const std::size_t words = words_;
  // First touch from the pool too, so pages are spread the way the reads will use them.
  pool_.parallel_for(piece_count(words), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t p = begin; p < end; ++p) {
      const auto [first, last] = piece_bounds(p, words);
      for (std::size_t i = first; i < last; ++i) buffer[i] = i * 0x9E3779B97F4A7C15ULL;
    }
  });
}

double BandwidthProbe::pass() {
  const std::uint64_t* const buffer = words_of(memory_);
  const std::size_t words = words_;
  const auto start = std::chrono::steady_clock::now();
  pool_.parallel_for(piece_count(words), [&](std::int64_t begin, std::int64_t end) {
    std::uint64_t local = 0;
    for (std::int64_t p = begin; p < end; ++p) {
      const auto [first, last] = piece_bounds(p, words);
      local ^= read_piece(buffer + first, last - first);
    }
    sink_.fetch_xor(local, std::memory_order_relaxed);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(buffer_bytes()) / std::max(seconds, 1e-9);
}

BandwidthResult measure_read_bandwidth(ComputePool& pool, std::size_t buffer_bytes, int passes) {
  if (buffer_bytes < sizeof(std::uint64_t) || passes < 1)
    throw std::invalid_argument("measure_read_bandwidth: empty buffer or no passes");
  BandwidthProbe probe(pool, buffer_bytes);
  BandwidthResult result;
  result.buffer_bytes = probe.buffer_bytes();
  result.threads = pool.size();
  result.passes = passes;
  double total_seconds = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const double rate = probe.pass();
    total_seconds += static_cast<double>(result.buffer_bytes) / rate;
    result.bytes_per_second = std::max(result.bytes_per_second, rate);
  }
  result.mean_bytes_per_second = static_cast<double>(result.buffer_bytes) * passes / total_seconds;
  return result;
}

}  // namespace exo::inference
