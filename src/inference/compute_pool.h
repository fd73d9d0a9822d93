// ComputePool: the persistent thread pool that runs the engine's kernels.
//
// Contract
// - Threads are created once, in the constructor, and joined in the destructor: no thread is created
//   per call. `threads` counts the calling thread, which always takes part in the work, so a pool of
//   1 runs everything inline.
// - parallel_for(n, fn) calls fn(begin, end) on disjoint ranges that together cover [0, n) and
//   returns when all of them have finished. Ranges are handed out in chunks of at least `grain`.
//   An exception thrown by fn is rethrown in the caller (the first one; the others are dropped) after
//   every range has finished or been skipped.
// - One parallel_for at a time: callers serialise (the engine owns one pool per loaded model and runs
//   one forward pass at a time). Idle workers block on a condition variable; they never spin without
//   bound. Never call parallel_for from an Asio event-loop thread: the engine runs compute on its own
//   thread.
#pragma once

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

  // threads == 0 means one per hardware thread.
  explicit ComputePool(unsigned threads = 0);
  ~ComputePool();
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  void parallel_for(std::int64_t n, const RangeFunction& fn, std::int64_t grain = 1);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  unsigned busy_workers_ = 0;

  // The job in progress (valid while a parallel_for runs).
  const RangeFunction* job_ = nullptr;
  std::int64_t job_size_ = 0;
  std::int64_t job_chunk_ = 1;
  std::int64_t next_begin_ = 0;  // guarded by mutex_
  std::exception_ptr first_error_;
};

}  // namespace exo::inference
