#include "api/openai.h"

#include <cmath>

namespace exo::api {
namespace {

[[noreturn]] void bad(const std::string& message) {
  throw RequestError(400, message);
}

std::string message_content(const nlohmann::json& content, std::size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array())
    bad("messages[" + std::to_string(index) + "].content must be a string or an array of parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      bad("messages[" + std::to_string(index) + "].content parts must be objects with a \"type\"");
    }
    if (part["type"] != "text")
      bad("only text content parts are supported (got \"" + part["type"].get<std::string>() + "\")");
    if (!part.contains("text") || !part["text"].is_string())
      bad("a text content part needs a string \"text\"");
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

std::vector<node::ChatMessage> parse_messages(const nlohmann::json& body) {
  if (!body.contains("messages")) bad("\"messages\" is required");
  const auto& messages = body["messages"];
  if (!messages.is_array() || messages.empty()) bad("\"messages\" must be a non-empty array");
  if (messages.size() > 10'000) bad("too many messages");
  std::vector<node::ChatMessage> out;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object()) bad("messages[" + std::to_string(i) + "] must be an object");
    if (!m.contains("role") || !m["role"].is_string())
      bad("messages[" + std::to_string(i) + "].role must be a string");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer") {
      bad("messages[" + std::to_string(i) + "].role \"" + role +
          "\" is not one of system, developer, user, assistant, tool");
    }
    if (!m.contains("content")) bad("messages[" + std::to_string(i) + "].content is required");
    out.push_back({role, message_content(m["content"], i)});
  }
  return out;
}

ChatRequest parse_chat_request(const std::string& body, const std::string& default_model) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    bad(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad("the body must be a JSON object");
  ChatRequest request;
  auto& g = request.generation;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string() || j["model"].get<std::string>().empty())
      bad("\"model\" must be a non-empty string");
    g.model = j["model"].get<std::string>();
  } else {
    g.model = default_model;
  }
  g.messages = parse_messages(j);
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) bad("\"stream\" must be a boolean");
    request.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object() &&
      j["stream_options"].contains("include_usage")) {
    request.include_usage =
        j["stream_options"]["include_usage"].is_boolean() && j["stream_options"]["include_usage"].get<bool>();
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_number_integer() || j[key].get<std::int64_t>() < 1 ||
        j[key].get<std::int64_t>() > 1'000'000) {
      bad(std::string("\"") + key + "\" must be an integer between 1 and 1000000");
    }
    g.max_tokens = static_cast<std::int32_t>(j[key].get<std::int64_t>());
  }
  if (j.contains("temperature") && !j["temperature"].is_null()) {
    if (!j["temperature"].is_number()) bad("\"temperature\" must be a number");
    const double t = j["temperature"].get<double>();
    if (!(t >= 0.0 && t <= 2.0)) bad("\"temperature\" must be between 0 and 2");
    g.temperature = static_cast<float>(t);
  }
  if (j.contains("top_p") && !j["top_p"].is_null()) {
    if (!j["top_p"].is_number()) bad("\"top_p\" must be a number");
    const double p = j["top_p"].get<double>();
    if (!(p > 0.0 && p <= 1.0)) bad("\"top_p\" must be in (0, 1]");
    g.top_p = static_cast<float>(p);
  }
  // Sampling extensions (llama.cpp server and vLLM names): top_k, min_p, repeat_penalty.
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    if (!j["top_k"].is_number_integer() || j["top_k"].get<std::int64_t>() < 0 ||
        j["top_k"].get<std::int64_t>() > 1'000'000)
      bad("\"top_k\" must be an integer between 0 and 1000000 (0: off)");
    g.top_k = static_cast<std::int32_t>(j["top_k"].get<std::int64_t>());
  }
  if (j.contains("min_p") && !j["min_p"].is_null()) {
    if (!j["min_p"].is_number()) bad("\"min_p\" must be a number");
    const double p = j["min_p"].get<double>();
    if (!(p >= 0.0 && p <= 1.0)) bad("\"min_p\" must be in [0, 1]");
    g.min_p = static_cast<float>(p);
  }
  for (const char* key : {"repeat_penalty", "repetition_penalty"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_number()) bad(std::string("\"") + key + "\" must be a number");
    const double penalty = j[key].get<double>();
    if (!(penalty >= 0.01 && penalty <= 100.0))
      bad(std::string("\"") + key + "\" must be in [0.01, 100] (1: off)");
    g.repeat_penalty = static_cast<float>(penalty);
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) bad("\"seed\" must be an integer");
    g.seed = static_cast<std::uint64_t>(j["seed"].get<std::int64_t>());
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const auto& stop = j["stop"];
    if (stop.is_string()) {
      g.stop.push_back(stop.get<std::string>());
    } else if (stop.is_array() && stop.size() <= 4) {
      for (const auto& s : stop) {
        if (!s.is_string()) bad("\"stop\" must be a string or an array of up to 4 strings");
        g.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("\"stop\" must be a string or an array of up to 4 strings");
    }
    for (const auto& s : g.stop) {
      if (s.empty()) bad("\"stop\" strings must not be empty");
    }
  }
  return request;
}

nlohmann::json error_body(const std::string& message, const std::string& type, int status) {
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}};
}

nlohmann::json completion_response(const std::string& id, std::int64_t created, const std::string& model,
                                   const std::string& content, const std::string& finish_reason,
                                   std::int32_t prompt_tokens, std::int32_t completion_tokens) {
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"system_fingerprint", "exo"},
          {"choices", nlohmann::json::array({{{"index", 0},
                                              {"message", {{"role", "assistant"}, {"content", content}}},
                                              {"logprobs", nullptr},
                                              {"finish_reason", finish_reason}}})},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

nlohmann::json completion_chunk(const std::string& id, std::int64_t created, const std::string& model,
                                nlohmann::json delta, const std::string& finish_reason) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"system_fingerprint", "exo"},
          {"choices", nlohmann::json::array(
                          {{{"index", 0},
                            {"delta", std::move(delta)},
                            {"logprobs", nullptr},
                            {"finish_reason", finish_reason.empty() ? nlohmann::json(nullptr)
                                                                    : nlohmann::json(finish_reason)}}})}};
}

}  // namespace exo::api
