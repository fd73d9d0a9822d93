// Validation of untrusted chat-completion bodies and the shapes of OpenAI responses.
#include "api/openai.h"

#include <gtest/gtest.h>

namespace exo::api {
namespace {

int status_of(const std::string& body) {
  try {
    (void)parse_chat_request(body, "dummy");
  } catch (const RequestError& e) {
    return e.status();
  }
  return 200;
}

TEST(ParseChatRequest, AcceptsAFullRequest) {
  const auto r = parse_chat_request(
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"hel"},{"type":"text","text":"lo"}]}],
          "stream":true,"max_tokens":7,"temperature":0.5,"top_p":0.9,"seed":42,"stop":["\n","END"],
          "stream_options":{"include_usage":true}})",
      "dummy");
  EXPECT_EQ(r.generation.model, "m");
  ASSERT_EQ(r.generation.messages.size(), 2U);
  EXPECT_EQ(r.generation.messages[1].content, "hello");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.generation.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.generation.temperature, 0.5F);
  EXPECT_EQ(r.generation.seed, 42U);
  EXPECT_EQ(r.generation.stop, (std::vector<std::string>{"\n", "END"}));
}

TEST(ParseChatRequest, AcceptsTheSamplingExtensions) {
  const auto r = parse_chat_request(
      R"({"messages":[{"role":"user","content":"x"}],"top_k":40,"min_p":0.05,"repeat_penalty":1.1})",
      "dummy");
  EXPECT_EQ(r.generation.top_k, 40);
  EXPECT_FLOAT_EQ(r.generation.min_p, 0.05F);
  EXPECT_FLOAT_EQ(r.generation.repeat_penalty, 1.1F);
  // vLLM's name for the same penalty.
  EXPECT_FLOAT_EQ(
      parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],"repetition_penalty":1.3})", "dummy")
          .generation.repeat_penalty,
      1.3F);
  const auto defaults = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})", "dummy");
  EXPECT_EQ(defaults.generation.top_k, 0);
  EXPECT_EQ(defaults.generation.min_p, 0.0F);
  EXPECT_EQ(defaults.generation.repeat_penalty, 1.0F);
}

TEST(ParseChatRequest, DefaultsTheModel) {
  EXPECT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})", "dummy").generation.model,
            "dummy");
}

TEST(ParseChatRequest, RejectsMalformedInputWith400) {
  for (const char* body : {
           "",
           "{",
           "[]",
           "null",
           R"({"messages":[]})",
           R"({"messages":"hi"})",
           R"({"model":5,"messages":[]})",
           R"({"messages":[{"role":"user"}]})",
           R"({"messages":[{"role":"wizard","content":"x"}]})",
           R"({"messages":[{"role":"user","content":5}]})",
           R"({"messages":[1]})",
           R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
           R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
           R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})",
           R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
           R"({"messages":[{"role":"user","content":"x"}],"temperature":3})",
           R"({"messages":[{"role":"user","content":"x"}],"top_p":0})",
           R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})",
           R"({"messages":[{"role":"user","content":"x"}],"stop":[""]})",
           R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})",
           R"({"messages":[{"role":"user","content":"x"}],"seed":"s"})",
           R"({"messages":[{"role":"user","content":"x"}],"top_k":-1})",
           R"({"messages":[{"role":"user","content":"x"}],"top_k":2.5})",
           R"({"messages":[{"role":"user","content":"x"}],"min_p":1.5})",
           R"({"messages":[{"role":"user","content":"x"}],"min_p":"low"})",
           R"({"messages":[{"role":"user","content":"x"}],"repeat_penalty":0})",
           R"({"messages":[{"role":"user","content":"x"}],"repetition_penalty":"strong"})",
       }) {
    EXPECT_EQ(status_of(body), 400) << body;
  }
}

TEST(ParseChatRequest, SurvivesDeepNestingAndGarbage) {
  std::string deep(5000, '[');
  EXPECT_EQ(status_of(deep), 400);
  std::string garbage;
  for (int i = 0; i < 2000; ++i) garbage.push_back(static_cast<char>((i * 7919) % 256));
  EXPECT_EQ(status_of(garbage), 400);
}

TEST(Responses, CompletionHasTheOpenAIShape) {
  const auto r = completion_response("id1", 1700000000, "dummy", "hi", "stop", 3, 2);
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["usage"]["total_tokens"], 5);
}

TEST(Responses, ChunkHasDeltaAndNullFinishReasonUntilTheEnd) {
  const auto c = completion_chunk("id1", 1, "dummy", {{"content", "x"}}, "");
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["choices"][0]["delta"]["content"], "x");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(
      completion_chunk("id1", 1, "dummy", nlohmann::json::object(), "length")["choices"][0]["finish_reason"],
      "length");
  EXPECT_EQ(error_body("bad", "invalid_request_error", 400)["error"]["message"], "bad");
}

}  // namespace
}  // namespace exo::api
