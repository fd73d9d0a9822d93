#include "node/generation.h"

namespace exo::node {

void GenerationStream::push_text(std::string piece) {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    events_.push_back({GenerationEvent::Kind::TEXT, std::move(piece), 0, 0});
  }
  changed_.notify_all();
}

void GenerationStream::finish(std::string reason, std::int32_t prompt_tokens,
                              std::int32_t completion_tokens) {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    done_ = true;
    events_.push_back({GenerationEvent::Kind::FINISHED, std::move(reason), prompt_tokens, completion_tokens});
  }
  changed_.notify_all();
}

void GenerationStream::fail(std::string error) {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    done_ = true;
    events_.push_back({GenerationEvent::Kind::FAILED, std::move(error), 0, 0});
  }
  changed_.notify_all();
}

std::optional<GenerationEvent> GenerationStream::pop(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_until(lock, deadline, [this] { return !events_.empty(); })) return std::nullopt;
  GenerationEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void GenerationStream::cancel() {
  std::function<void()> callback;
  {
    std::lock_guard lock(mutex_);
    if (cancelled_) return;
    cancelled_ = true;
    callback = std::move(on_cancel_);
  }
  if (callback) callback();
}

void GenerationStream::set_on_cancel(std::function<void()> callback) {
  {
    std::lock_guard lock(mutex_);
    if (!cancelled_) {
      on_cancel_ = std::move(callback);
      return;
    }
  }
  if (callback) callback();  // already cancelled: run it now
}

bool GenerationStream::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool GenerationStream::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

}  // namespace exo::node
