#include "inference/compute_pool.h"

#include <algorithm>
#include <utility>

namespace exo::inference {

ComputePool::ComputePool(unsigned threads) {
  if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ComputePool::~ComputePool() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
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
  // Several chunks per thread so uneven ranges balance, but never below the grain.
  const std::int64_t chunk = std::max(grain, (n + parts * 4 - 1) / (parts * 4));
  {
    const std::lock_guard lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    job_chunk_ = chunk;
    next_begin_ = 0;
    first_error_ = nullptr;
    busy_workers_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  work_ready_.notify_all();
  run_chunks();
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [this] { return busy_workers_ == 0; });
  job_ = nullptr;
  if (first_error_) std::rethrow_exception(std::exchange(first_error_, nullptr));
}

void ComputePool::run_chunks() {
  for (;;) {
    std::int64_t begin = 0;
    std::int64_t end = 0;
    const RangeFunction* fn = nullptr;
    {
      const std::lock_guard lock(mutex_);
      if (next_begin_ >= job_size_ || first_error_) return;
      begin = next_begin_;
      end = std::min(job_size_, begin + job_chunk_);
      next_begin_ = end;
      fn = job_;
    }
    try {
      (*fn)(begin, end);
    } catch (...) {
      const std::lock_guard lock(mutex_);
      if (!first_error_) first_error_ = std::current_exception();
    }
  }
}

void ComputePool::worker_loop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    run_chunks();
    {
      const std::lock_guard lock(mutex_);
      --busy_workers_;
    }
    work_done_.notify_one();
  }
}

}  // namespace exo::inference
