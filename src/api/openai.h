// OpenAI-compatible request parsing and response shapes for /v1/chat/completions.
//
// Contract: pure functions. parse_chat_request validates every field of an untrusted body and throws
// RequestError (HTTP status + message) for anything malformed; it never crashes on odd JSON.
// The response builders produce the objects the official OpenAI client libraries parse
// (chat.completion, chat.completion.chunk).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "node/generation.h"

namespace exo::api {

class RequestError : public std::runtime_error {
 public:
  RequestError(int status, const std::string& message, std::string type = "invalid_request_error")
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const noexcept { return status_; }
  const std::string& type() const noexcept { return type_; }

 private:
  int status_;
  std::string type_;
};

struct ChatRequest {
  node::GenerationRequest generation;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// `default_model` fills a missing "model". Throws RequestError(400) for malformed input.
ChatRequest parse_chat_request(const std::string& body, const std::string& default_model);
// The messages of a token/encode body.
std::vector<node::ChatMessage> parse_messages(const nlohmann::json& body);

nlohmann::json error_body(const std::string& message, const std::string& type, int status);

nlohmann::json completion_response(const std::string& id, std::int64_t created, const std::string& model,
                                   const std::string& content, const std::string& finish_reason,
                                   std::int32_t prompt_tokens, std::int32_t completion_tokens);
// A streaming chunk; `delta` is {"role":...} / {"content":...} / {}; finish_reason null when empty.
nlohmann::json completion_chunk(const std::string& id, std::int64_t created, const std::string& model,
                                nlohmann::json delta, const std::string& finish_reason);

}  // namespace exo::api
