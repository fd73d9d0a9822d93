// GenerationRequest and GenerationStream: one chat generation as seen by its consumer.
//
// Contract: GenerationStream is thread-safe. The producer (a task owned by the node) pushes text
// pieces and finishes exactly once with a finish reason ("stop", "length") or an error; the consumer
// (an HTTP handler thread) pops with a deadline. cancel() asks the producer to stop at its next step
// (the client went away); the producer learns it through the on-cancel callback and
// finishes with reason "cancelled". Events of one stream
// never reach another: each request has its own stream object.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace exo::node {

struct ChatMessage {
  std::string role;
  std::string content;
};

struct GenerationRequest {
  std::string request_id;
  std::string model;
  std::vector<ChatMessage> messages;
  std::int32_t max_tokens = 0;  // 0: the node's --max-generate-tokens
  float temperature = 0.0F;
  float top_p = 1.0F;
  std::int32_t top_k = 0;       // 0: off
  float min_p = 0.0F;           // 0: off
  float repeat_penalty = 1.0F;  // 1: off; applies to the last 64 tokens, prompt included
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;
};

struct GenerationEvent {
  enum class Kind { TEXT, FINISHED, FAILED };
  Kind kind = Kind::TEXT;
  std::string text;  // TEXT: the piece; FINISHED: the finish reason; FAILED: the error
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
};

class GenerationStream {
 public:
  void push_text(std::string piece);
  void finish(std::string reason, std::int32_t prompt_tokens, std::int32_t completion_tokens);
  void fail(std::string error);
  // Next event, or nullopt when `deadline` passes first.
  std::optional<GenerationEvent> pop(std::chrono::steady_clock::time_point deadline);

  // Idempotent; the first call runs the on-cancel callback (outside the lock).
  void cancel();
  // The producer's hook to learn of a cancellation at once; runs immediately if already cancelled.
  // It must not block (post work elsewhere).
  void set_on_cancel(std::function<void()> callback);
  bool cancelled() const;
  bool done() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<GenerationEvent> events_;
  bool done_ = false;
  bool cancelled_ = false;
  std::function<void()> on_cancel_;
};

}  // namespace exo::node
