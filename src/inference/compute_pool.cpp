#include "inference/compute_pool.h"

#include <algorithm>
#include <chrono>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace exo::inference {

namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls `done` for at most ComputePool::spin_microseconds; true if it became true.
template <class Predicate>
bool spin_until(Predicate done) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(ComputePool::spin_microseconds);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (Clock::now() >= deadline) return done();
  }
}

}  // namespace

ComputePool::ComputePool(unsigned threads) {
  if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ComputePool::~ComputePool() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ComputePool::parallel_for(std::int64_t n, const RangeFunction& fn, std::int64_t grain) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const auto parts = static_cast<std::int64_t>(size());
  if (parts == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_size_ = n;
  job_grain_ = grain;
  job_split_ = 2 * parts;
  next_begin_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  busy_workers_.store(static_cast<unsigned>(workers_.size()), std::memory_order_relaxed);
  bool wake = false;
  {
    const std::lock_guard lock(mutex_);
    first_error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleeping_workers_ > 0;
  }
  if (wake) work_ready_.notify_all();
  run_chunks();
  const auto all_done = [this] { return busy_workers_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done)) {
    std::unique_lock lock(mutex_);
    caller_sleeping_ = true;
    work_done_.wait(lock, all_done);
    caller_sleeping_ = false;
  }
  job_ = nullptr;
  std::exception_ptr error;
  {
    const std::lock_guard lock(mutex_);
    error = std::exchange(first_error_, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

void ComputePool::run_chunks() noexcept {
  const RangeFunction& fn = *job_;
  std::int64_t begin = next_begin_.load(std::memory_order_relaxed);
  for (;;) {
    if (failed_.load(std::memory_order_relaxed) || begin >= job_size_) return;
    // Guided: large chunks first, then smaller ones, so the last to finish is a small one.
    const std::int64_t chunk = std::max(job_grain_, (job_size_ - begin) / job_split_);
    const std::int64_t end = std::min(job_size_, begin + chunk);
    if (!next_begin_.compare_exchange_weak(begin, end, std::memory_order_relaxed)) continue;
    try {
      fn(begin, end);
    } catch (...) {
      const std::lock_guard lock(mutex_);
      if (!first_error_) first_error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
    begin = next_begin_.load(std::memory_order_relaxed);
  }
}

void ComputePool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    const auto published = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(published)) {
      std::unique_lock lock(mutex_);
      ++sleeping_workers_;
      work_ready_.wait(lock, published);
      --sleeping_workers_;
    }
    seen = generation_.load(std::memory_order_acquire);
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    run_chunks();
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      bool wake = false;
      {
        const std::lock_guard lock(mutex_);
        wake = caller_sleeping_;
      }
      if (wake) work_done_.notify_one();
    }
  }
}

}  // namespace exo::inference
