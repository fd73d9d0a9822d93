// ComputePool: coverage of every index exactly once, exception propagation, reuse over many calls,
// and the inline pool of one thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "inference/compute_pool.h"

namespace exo::inference {
namespace {

void expect_each_index_once(ComputePool& pool, std::int64_t n, std::int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
  pool.parallel_for(
      n,
      [&](std::int64_t begin, std::int64_t end) {
        ASSERT_LE(0, begin);
        ASSERT_LT(begin, end);
        ASSERT_LE(end, n);
        for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
      },
      grain);
  for (std::int64_t i = 0; i < n; ++i)
    ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << "index " << i;
}

TEST(ComputePool, CoversEveryIndexExactlyOnce) {
  for (unsigned threads : {1U, 2U, 3U, 5U}) {
    ComputePool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (std::int64_t n : {1, 2, 7, 64, 1000, 4099}) {
      for (std::int64_t grain : {1, 3, 16, 5000}) expect_each_index_once(pool, n, grain);
    }
  }
}

TEST(ComputePool, ChunksShrinkTowardTheEndSoThreadsFinishTogether) {
  // Guided self-scheduling: whatever thread takes a chunk, chunk sizes in index order never grow,
  // the first is a share of the whole (not the whole), and the last ones are down to the grain.
  ComputePool pool(2);
  for (std::int64_t grain : {1, 4}) {
    const std::int64_t n = 4000;
    std::mutex mutex;
    std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
    pool.parallel_for(
        n,
        [&](std::int64_t begin, std::int64_t end) {
          const std::lock_guard lock(mutex);
          chunks.emplace_back(begin, end);
        },
        grain);
    std::sort(chunks.begin(), chunks.end());
    ASSERT_GE(chunks.size(), 3U);
    EXPECT_EQ(chunks.front().first, 0);
    EXPECT_EQ(chunks.back().second, n);
    EXPECT_EQ(chunks.front().second, n / 4) << "first chunk: remaining / (2 x threads)";
    for (std::size_t i = 1; i < chunks.size(); ++i) {
      EXPECT_EQ(chunks[i].first, chunks[i - 1].second);
      EXPECT_LE(chunks[i].second - chunks[i].first, chunks[i - 1].second - chunks[i - 1].first) << i;
    }
    EXPECT_LE(chunks.back().second - chunks.back().first, grain);
  }
}

TEST(ComputePool, ZeroOrNegativeSizeCallsNothing) {
  ComputePool pool(2);
  bool called = false;
  pool.parallel_for(0, [&](std::int64_t, std::int64_t) { called = true; });
  pool.parallel_for(-5, [&](std::int64_t, std::int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ComputePool, PoolOfOneRunsInlineOnTheCaller) {
  ComputePool pool(1);
  const auto caller = std::this_thread::get_id();
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  pool.parallel_for(100, [&](std::int64_t begin, std::int64_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ranges.emplace_back(begin, end);
  });
  ASSERT_EQ(ranges.size(), 1U);
  EXPECT_EQ(ranges[0], std::make_pair(std::int64_t{0}, std::int64_t{100}));
}

TEST(ComputePool, ManyConsecutiveCallsReuseTheThreads) {
  ComputePool pool(3);
  std::atomic<std::int64_t> total{0};
  for (int call = 0; call < 5000; ++call) {
    pool.parallel_for(
        64, [&](std::int64_t begin, std::int64_t end) { total.fetch_add(end - begin); }, 1);
  }
  EXPECT_EQ(total.load(), 5000 * 64);
}

TEST(ComputePool, ExceptionsReachTheCallerAndThePoolStaysUsable) {
  ComputePool pool(3);
  for (int round = 0; round < 50; ++round) {
    EXPECT_THROW(pool.parallel_for(
                     1000,
                     [&](std::int64_t begin, std::int64_t end) {
                       if (begin <= 500 && 500 < end) throw std::runtime_error("range containing 500");
                     },
                     1),
                 std::runtime_error);
    expect_each_index_once(pool, 777, 1);
  }
}

TEST(ComputePool, EveryRangeHasFinishedWhenParallelForReturns) {
  ComputePool pool(4);
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> finished{0};
    int plain_counter_per_range[16] = {};
    pool.parallel_for(
        16,
        [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t i = begin; i < end; ++i) plain_counter_per_range[i] += 1;  // plain writes
          finished.fetch_add(static_cast<int>(end - begin));
        },
        1);
    ASSERT_EQ(finished.load(), 16);
    for (int v : plain_counter_per_range) ASSERT_EQ(v, 1);  // visible to the caller (TSan checks)
  }
}

TEST(ComputePool, ThreadsZeroMeansHardwareConcurrency) {
  ComputePool pool(0);
  EXPECT_GE(pool.size(), 1U);
  expect_each_index_once(pool, 123, 1);
}

}  // namespace
}  // namespace exo::inference
