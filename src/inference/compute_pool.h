// ComputePool: the persistent thread pool that runs the engine's kernels.
//
// Contract
// - Threads are created once, in the constructor, and joined in the destructor: no thread is created
//   per call. `threads` counts the calling thread, which always takes part in the work, so a pool of
//   1 runs everything inline.
// - parallel_for(n, fn, grain) calls fn(begin, end) on disjoint ranges that together cover [0, n)
//   exactly once and returns when all of them have finished. Ranges are handed out through an atomic
//   counter in chunks that shrink as the work runs out (guided self-scheduling: a chunk is the
//   remaining count / (2 x threads), at least `grain`, except the last), so uneven work balances and
//   the threads finish within about one small chunk of each other. An exception
//   thrown by fn is rethrown in the caller (the first one; the others are dropped) after every range
//   has finished or been skipped (once a range fails, the ranges not yet started are skipped).
// - One parallel_for at a time: callers serialise (the engine owns one pool per loaded model and runs
//   one forward pass at a time); fn must not call parallel_for on the same pool. Between jobs, idle
//   workers poll for a bounded time (about spin_microseconds, so back-to-back kernel calls do not pay
//   a sleep/wake-up each) and then block on a condition variable: they never spin without bound.
//   The caller waiting for the last range does the same. Never call parallel_for from an Asio
//   event-loop thread: the engine runs compute on its own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace exo::inference {

class ComputePool {
 public:
  using RangeFunction = std::function<void(std::int64_t begin, std::int64_t end)>;

  // How long a worker (or the waiting caller) polls before it blocks.
  static constexpr int spin_microseconds = 50;

  // threads == 0 means one per hardware thread.
  explicit ComputePool(unsigned threads = 0);
  ~ComputePool();
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  void parallel_for(std::int64_t n, const RangeFunction& fn, std::int64_t grain = 1);

 private:
  void worker_loop();
  void run_chunks() noexcept;

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::atomic<std::uint64_t> generation_{0};  // bumped (under mutex_) to publish a job
  bool stopping_ = false;                     // guarded by mutex_
  unsigned sleeping_workers_ = 0;             // guarded by mutex_
  bool caller_sleeping_ = false;              // guarded by mutex_
  std::atomic<unsigned> busy_workers_{0};

  // The job in progress: written before generation_ is bumped, read-only while it runs.
  const RangeFunction* job_ = nullptr;
  std::int64_t job_size_ = 0;
  std::int64_t job_grain_ = 1;
  std::int64_t job_split_ = 1;
  std::atomic<std::int64_t> next_begin_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr first_error_;  // guarded by mutex_
};

}  // namespace exo::inference
