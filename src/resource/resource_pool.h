// ResourcePool<T>: a bounded pool of interchangeable resources, itself a resource.
//
// Contract
// - acquire(timeout) returns a Lease (RAII); the lease's destructor returns the resource and never
//   throws. Only READY resources are handed out: an idle resource found in any other state is
//   discarded (cleaned up) and replaced. Idle resources are reused most-recently-released first.
// - Capacity is reserved before a resource is created, and creation and initialization run without
//   blocking other acquires and releases. Waiters are served first-come first-served; a released
//   resource is handed directly to the oldest waiter, and freed capacity wakes a waiter to create one.
// - Pool slots are identified by pool-assigned handles, never by resource ids; the factory receives a
//   sequence number so it can give each resource a unique id.
// - Idle eviction: resources idle (since their last release) longer than idle_timeout are cleaned
//   up, keeping at least min_size.
// - cleanup(): wakes every waiter with ClosedError, waits up to drain_timeout for outstanding leases,
//   then cleans up every resource, leased or not, and reports every cleanup failure.
// - Thread-safety: acquire, stats and Lease may be used from any thread; the bookkeeping runs on the
//   pool's strand.
#pragma once

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "resource/async_resource.h"

namespace exo::resource {

struct PoolOptions {
  std::size_t max_size = 8;
  std::size_t min_size = 0;  // created by initialize, kept through idle eviction
  Clock::duration idle_timeout = std::chrono::minutes(5);      // zero disables idle eviction
  Clock::duration acquire_timeout = std::chrono::seconds(30);  // default for acquire()
  Clock::duration drain_timeout = std::chrono::seconds(5);     // cleanup's wait for outstanding leases
};

struct PoolStats {
  std::size_t total = 0;  // resources owned (idle + leased)
  std::size_t idle = 0;
  std::size_t leased = 0;
  std::size_t creating = 0;
  std::size_t waiters = 0;
  std::uint64_t created = 0;
  std::uint64_t discarded = 0;  // broken resources removed
  std::uint64_t evicted = 0;    // idle resources removed
};

template <typename T>
class ResourcePool : public AsyncResource {
 public:
  using Factory = std::function<std::shared_ptr<T>(std::uint64_t sequence)>;

  class Lease {
   public:
    Lease() = default;
    Lease(std::shared_ptr<ResourcePool> pool, std::uint64_t handle, std::shared_ptr<T> resource)
        : pool_(std::move(pool)), handle_(handle), resource_(std::move(resource)) {}
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::move(other.pool_);
        handle_ = other.handle_;
        resource_ = std::move(other.resource_);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }

    T* operator->() const noexcept { return resource_.get(); }
    T& operator*() const noexcept { return *resource_; }
    const std::shared_ptr<T>& get() const noexcept { return resource_; }
    explicit operator bool() const noexcept { return resource_ != nullptr; }

    // Returns the resource to the pool now. Never throws; a no-op on an empty lease.
    void release() noexcept {
      if (!pool_) return;
      try {
        asio::post(pool_->strand(), [pool = pool_, handle = handle_] { pool->give_back(handle); });
      } catch (...) {
        // Out of memory while posting: the slot stays leased; cleanup() still closes it.
      }
      pool_.reset();
      resource_.reset();
    }

   private:
    std::shared_ptr<ResourcePool> pool_;
    std::uint64_t handle_ = 0;
    std::shared_ptr<T> resource_;
  };

  ResourcePool(asio::any_io_executor executor, ResourceIdentity identity, Factory factory,
               PoolOptions pool_options, ResourceOptions options = {},
               std::shared_ptr<ResourceRegistry> registry = nullptr)
      : AsyncResource(std::move(executor), std::move(identity), std::move(options), std::move(registry)),
        factory_(std::move(factory)),
        pool_options_(pool_options) {
    if (!factory_) throw std::invalid_argument("resource pool '" + id() + "': factory is empty");
    if (pool_options_.max_size == 0)
      throw std::invalid_argument("resource pool '" + id() + "': max_size must be > 0");
    if (pool_options_.min_size > pool_options_.max_size) {
      throw std::invalid_argument("resource pool '" + id() + "': min_size must be <= max_size");
    }
  }

  // Waits for a READY resource. Throws TimeoutError (own deadline), ClosedError (pool closing or
  // closed), the factory's or the resource's initialization error, or operation_aborted.
  asio::awaitable<Lease> acquire(std::optional<Clock::duration> timeout = std::nullopt) {
    co_await ensure_ready();
    const auto deadline = deadline_after(timeout.value_or(pool_options_.acquire_timeout));
    auto self = std::static_pointer_cast<ResourcePool>(shared_from_this());
    co_return co_await asio::co_spawn(strand(), self->acquire_on_strand(deadline), asio::use_awaitable);
  }

  PoolStats stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }

 protected:
  asio::awaitable<void> do_initialize() override {
    closing_ = false;
    while (slots_.size() < pool_options_.min_size) {
      auto resource = factory_(sequence_++);
      co_await resource->initialize();
      add_slot(std::move(resource), false);
    }
    if (pool_options_.idle_timeout > Clock::duration::zero()) spawn(evict_idle_loop());
    publish_stats();
  }

  asio::awaitable<void> do_cleanup() override {
    closing_ = true;
    for (Waiter* waiter : waiters_) waiter->timer->cancel();
    if (leased_count() > 0) {
      drained_ = std::make_shared<Completion>(strand());
      co_await drained_->wait(deadline_after(pool_options_.drain_timeout));
      drained_.reset();
    }
    std::vector<std::string> failures;
    auto slots = std::move(slots_);
    slots_.clear();
    idle_.clear();
    publish_stats();
    for (auto& [handle, slot] : slots) {
      try {
        co_await slot.resource->cleanup();
      } catch (const std::exception& e) {
        failures.push_back(e.what());
      }
    }
    if (!failures.empty()) {
      std::string message = fmt::format("{} pooled resource(s) failed to clean up", failures.size());
      for (const auto& f : failures) message += "; " + f;
      throw std::runtime_error(message);
    }
  }

  asio::awaitable<HealthStatus> do_health_check() override {
    const PoolStats s = stats();
    co_return HealthStatus{true, fmt::format("{} resources ({} idle, {} leased), {} waiting", s.total, s.idle,
                                             s.leased, s.waiters)};
  }

  std::map<std::string, std::string> details() const override {
    const PoolStats s = stats();
    return {{"total", std::to_string(s.total)},
            {"idle", std::to_string(s.idle)},
            {"leased", std::to_string(s.leased)},
            {"waiters", std::to_string(s.waiters)},
            {"max_size", std::to_string(pool_options_.max_size)}};
  }

 private:
  struct Slot {
    std::shared_ptr<T> resource;
    Clock::time_point released_at;
    bool leased = false;
  };
  struct Waiter {
    asio::steady_timer* timer = nullptr;
    std::optional<std::uint64_t> handed;
    bool retry = false;
  };

  std::uint64_t add_slot(std::shared_ptr<T> resource, bool leased) {
    const std::uint64_t handle = next_handle_++;
    slots_.emplace(handle, Slot{std::move(resource), Clock::now(), leased});
    if (!leased) idle_.push_back(handle);
    ++created_;
    return handle;
  }

  std::size_t leased_count() const {
    std::size_t n = 0;
    for (const auto& [handle, slot] : slots_) n += slot.leased ? 1 : 0;
    return n;
  }

  void publish_stats() {
    PoolStats s;
    s.total = slots_.size();
    s.idle = idle_.size();
    s.leased = leased_count();
    s.creating = creating_;
    s.waiters = waiters_.size();
    s.created = created_;
    s.discarded = discarded_;
    s.evicted = evicted_;
    std::lock_guard lock(stats_mutex_);
    stats_ = s;
  }

  // Removes a slot and closes its resource in a task owned by the pool.
  void discard(std::uint64_t handle, bool evicted) {
    auto it = slots_.find(handle);
    if (it == slots_.end()) return;
    auto resource = std::move(it->second.resource);
    slots_.erase(it);
    (evicted ? evicted_ : discarded_)++;
    spawn([](std::shared_ptr<T> r) -> asio::awaitable<void> {
      try {
        co_await r->cleanup();
      } catch (...) {
        // Recorded in the resource's own last_error.
      }
    }(std::move(resource)));
  }

  // Capacity was freed: let the oldest waiter try again (it will create a resource).
  void wake_waiter_to_retry() {
    for (Waiter* waiter : waiters_) {
      if (!waiter->handed && !waiter->retry) {
        waiter->retry = true;
        waiter->timer->cancel();
        return;
      }
    }
  }

  void give_back(std::uint64_t handle) {
    auto it = slots_.find(handle);
    if (it == slots_.end()) return;  // from a previous generation of the pool
    Slot& slot = it->second;
    slot.leased = false;
    if (closing_) {
      if (drained_ && leased_count() == 0) drained_->complete();
      publish_stats();
      return;
    }
    if (slot.resource->state() == ResourceState::READY) {
      for (Waiter* waiter : waiters_) {
        if (!waiter->handed && !waiter->retry) {
          slot.leased = true;
          waiter->handed = handle;
          waiter->timer->cancel();
          publish_stats();
          return;
        }
      }
      slot.released_at = Clock::now();
      idle_.push_back(handle);
    } else {
      discard(handle, false);
      wake_waiter_to_retry();
    }
    publish_stats();
  }

  asio::awaitable<Lease> acquire_on_strand(Clock::time_point deadline) {
    auto self = std::static_pointer_cast<ResourcePool>(shared_from_this());
    for (;;) {
      if (closing_ || !is_usable(state())) throw ClosedError(id(), "resource pool '" + id() + "' is closed");
      while (!idle_.empty()) {
        const std::uint64_t handle = idle_.back();
        idle_.pop_back();
        Slot& slot = slots_.at(handle);
        if (slot.resource->state() == ResourceState::READY) {
          slot.leased = true;
          publish_stats();
          co_return Lease(self, handle, slot.resource);
        }
        discard(handle, false);
      }
      if (slots_.size() + creating_ < pool_options_.max_size) {
        ++creating_;
        publish_stats();
        std::shared_ptr<T> resource;
        std::exception_ptr failure;
        try {
          resource = factory_(sequence_++);
          if (!resource) throw std::runtime_error("resource pool '" + id() + "': factory returned null");
          co_await resource->initialize(deadline - Clock::now());
        } catch (...) {
          failure = std::current_exception();
        }
        --creating_;
        if (!failure && closing_) {
          failure = std::make_exception_ptr(ClosedError(id(), "resource pool '" + id() + "' is closed"));
        }
        if (failure) {
          if (resource) {
            spawn([](std::shared_ptr<T> r) -> asio::awaitable<void> {
              try {
                co_await r->cleanup();
              } catch (...) {
              }
            }(std::move(resource)));
          }
          wake_waiter_to_retry();
          publish_stats();
          std::rethrow_exception(failure);
        }
        const std::uint64_t handle = add_slot(resource, true);
        publish_stats();
        co_return Lease(self, handle, std::move(resource));
      }
      asio::steady_timer timer(strand(), deadline);
      Waiter waiter{&timer, std::nullopt, false};
      auto position = waiters_.insert(waiters_.end(), &waiter);
      publish_stats();
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      waiters_.erase(position);
      publish_stats();
      if (waiter.handed) co_return Lease(self, *waiter.handed, slots_.at(*waiter.handed).resource);
      if (closing_) throw ClosedError(id(), "resource pool '" + id() + "' closed while waiting");
      if (waiter.retry) continue;
      if (!ec || Clock::now() >= deadline) {
        throw TimeoutError(
            id(), fmt::format("timed out waiting for a resource from pool '{}' ({} of {} in use)", id(),
                              leased_count(), pool_options_.max_size));
      }
      throw std::system_error(asio::error::operation_aborted, "acquire cancelled");
    }
  }

  asio::awaitable<void> evict_idle_loop() {
    const auto period =
        std::max<Clock::duration>(pool_options_.idle_timeout / 2, std::chrono::milliseconds(10));
    for (;;) {
      co_await sleep_for(period);
      const auto now = Clock::now();
      std::vector<std::uint64_t> keep;
      for (std::uint64_t handle : idle_) {
        const bool stale = now - slots_.at(handle).released_at > pool_options_.idle_timeout;
        if (stale && slots_.size() > pool_options_.min_size) {
          discard(handle, true);
        } else {
          keep.push_back(handle);
        }
      }
      idle_ = std::move(keep);
      publish_stats();
    }
  }

  Factory factory_;
  PoolOptions pool_options_;
  // Strand-only state.
  std::unordered_map<std::uint64_t, Slot> slots_;
  std::vector<std::uint64_t> idle_;  // LIFO: back is the most recently released
  std::list<Waiter*> waiters_;
  std::size_t creating_ = 0;
  std::uint64_t next_handle_ = 1;
  std::uint64_t sequence_ = 0;
  std::uint64_t created_ = 0;
  std::uint64_t discarded_ = 0;
  std::uint64_t evicted_ = 0;
  bool closing_ = false;
  std::shared_ptr<Completion> drained_;
  mutable std::mutex stats_mutex_;
  PoolStats stats_;
};

}  // namespace exo::resource
