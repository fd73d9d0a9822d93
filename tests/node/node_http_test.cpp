// A real node (dummy engine) on loopback, driven through its HTTP API: chat (plain and streamed),
// isolation of concurrent requests, stop sequences, bad input, readiness, resources and metrics.
#include <gtest/gtest.h>
#include <httplib.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <future>
#include <thread>

#include "inference/dummy_engine.h"
#include "node/node.h"

namespace exo::node {
namespace {

class NodeHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeOptions options;
    options.node_id = "test-node";
    options.api_host = "127.0.0.1";
    options.api_port = 0;
    options.response_timeout = std::chrono::seconds(20);
    options.cors_origins = {"http://ui.example"};
    node_ = Node::create(io_.get_executor(), options, [this] { shutdown_requested_ = true; });
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    asio::co_spawn(io_, node_->initialize(), asio::use_future).get();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", node_->api_port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    asio::co_spawn(io_, node_->cleanup(), asio::use_future).get();
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  nlohmann::json post_json(const std::string& path, const nlohmann::json& body, int expected_status) {
    auto res = client_->Post(path, body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return nullptr;
    EXPECT_EQ(res->status, expected_status) << res->body;
    return nlohmann::json::parse(res->body);
  }
  // Streams a chat and returns (content, finish_reason, saw_done).
  std::tuple<std::string, std::string, bool> stream_chat(httplib::Client& client,
                                                         const nlohmann::json& body) {
    auto res = client.Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    std::string content;
    std::string finish;
    bool done = false;
    bool role_first = false;
    std::size_t start = 0;
    int index = 0;
    while ((start = res->body.find("data: ", start)) != std::string::npos) {
      const auto end = res->body.find("\n\n", start);
      const std::string payload = res->body.substr(start + 6, end - start - 6);
      start = end;
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      const auto chunk = nlohmann::json::parse(payload);
      EXPECT_EQ(chunk["object"], "chat.completion.chunk");
      if (chunk["choices"].empty()) continue;
      const auto& choice = chunk["choices"][0];
      if (index++ == 0) role_first = choice["delta"].value("role", "") == "assistant";
      if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
      if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"].get<std::string>();
    }
    EXPECT_TRUE(role_first);
    return {content, finish, done};
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
  std::shared_ptr<Node> node_;
  std::unique_ptr<httplib::Client> client_;
  std::atomic<bool> shutdown_requested_{false};
};

nlohmann::json chat_body(int max_tokens, bool stream = false) {
  return {{"model", "dummy"},
          {"messages", {{{"role", "user"}, {"content", "hello"}}}},
          {"max_tokens", max_tokens},
          {"stream", stream}};
}

TEST_F(NodeHttpTest, ChatCompletionAnswersWithTheDummyReply) {
  const auto full = post_json("/v1/chat/completions", chat_body(1000), 200);
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"]["content"], std::string(inference::kDummyReply));
  EXPECT_EQ(full["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(full["usage"]["completion_tokens"], static_cast<int>(inference::kDummyReply.size()));
  const auto cut = post_json("/v1/chat/completions", chat_body(4), 200);
  EXPECT_EQ(cut["choices"][0]["message"]["content"], "This");
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "length");
}

TEST_F(NodeHttpTest, StreamingChatSendsRoleContentFinishAndDone) {
  auto [content, finish, done] = stream_chat(*client_, chat_body(1000, true));
  EXPECT_EQ(content, std::string(inference::kDummyReply));
  EXPECT_EQ(finish, "stop");
  EXPECT_TRUE(done);
}

TEST_F(NodeHttpTest, ConcurrentStreamsAreIsolated) {
  constexpr int kClients = 64;  // a burst larger than httplib's default listen backlog
  std::vector<std::future<std::tuple<std::string, std::string, bool>>> results;
  for (int i = 0; i < kClients; ++i) {
    results.push_back(std::async(std::launch::async, [this, i] {
      httplib::Client client("127.0.0.1", node_->api_port());
      client.set_read_timeout(30, 0);
      return stream_chat(client, chat_body(5 + i, true));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    auto [content, finish, done] = results[static_cast<std::size_t>(i)].get();
    const auto wanted = static_cast<std::size_t>(5 + i);
    EXPECT_EQ(content, std::string(inference::kDummyReply.substr(0, wanted))) << i;
    EXPECT_EQ(finish, wanted <= inference::kDummyReply.size() ? "length" : "stop") << i;
    EXPECT_TRUE(done);
  }
  const auto engine = node_->get<inference::DummyEngine>("engine");
  EXPECT_EQ(engine->active_requests(), 0U);  // every request freed its state
}

TEST_F(NodeHttpTest, StopSequencesEndTheAnswerBeforeTheStop) {
  auto body = chat_body(1000);
  body["stop"] = {"dummy"};
  const auto r = post_json("/v1/chat/completions", body, 200);
  EXPECT_EQ(r["choices"][0]["message"]["content"], "This is the exo ");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
}

TEST_F(NodeHttpTest, BadInputGetsClearErrors) {
  auto res = client_->Post("/v1/chat/completions", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(nlohmann::json::parse(res->body)["error"]["message"].get<std::string>().find("not valid JSON"),
            std::string::npos);
  auto unknown = chat_body(3);
  unknown["model"] = "no-such-model";
  EXPECT_EQ(post_json("/v1/chat/completions", unknown, 404)["error"]["type"], "not_found_error");
  const std::string huge(5 * 1024 * 1024, 'x');
  auto big = client_->Post("/v1/chat/completions", huge, "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  auto missing = client_->Get("/v1/nothing-here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // The node still serves after all of that.
  EXPECT_EQ(post_json("/v1/chat/completions", chat_body(2), 200)["choices"][0]["message"]["content"], "Th");
}

TEST_F(NodeHttpTest, TheWebUiIsOneSelfContainedPageThatChatsThroughTheApi) {
  auto res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_NE(res->body.find("/v1/models"), std::string::npos);
  EXPECT_EQ(res->body.find("src=\"http"), std::string::npos);  // no external assets: works offline
  // The page shows each model's description (where the demo model says it has random weights).
  const auto models = nlohmann::json::parse(client_->Get("/v1/models")->body);
  ASSERT_FALSE(models["data"].empty());
  EXPECT_TRUE(models["data"][0].contains("description"));
}

TEST_F(NodeHttpTest, ProbesModelsTopologyAndTokenEncode) {
  auto ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(client_->Get("/healthz")->status, 200);
  EXPECT_EQ(nlohmann::json::parse(client_->Get("/healthcheck")->body)["status"], "ok");
  const auto models = nlohmann::json::parse(client_->Get("/v1/models")->body);
  EXPECT_EQ(models["data"][0]["id"], "dummy");
  const auto topology = nlohmann::json::parse(client_->Get("/v1/topology")->body);
  EXPECT_TRUE(topology["active_node_id"].is_null());  // no prompt is being processed
  EXPECT_TRUE(topology["nodes"].contains("test-node"));
  const auto encoded =
      post_json("/v1/chat/token/encode", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, 200);
  EXPECT_EQ(encoded["num_tokens"], encoded["encoded_tokens"].size());
  EXPECT_EQ(encoded["encoded_prompt"], "user: hi\nassistant: ");
}

TEST_F(NodeHttpTest, CorsAllowsOnlyConfiguredOrigins) {
  auto allowed = client_->Get("/v1/models", {{"Origin", "http://ui.example"}});
  EXPECT_EQ(allowed->get_header_value("Access-Control-Allow-Origin"), "http://ui.example");
  auto other = client_->Get("/v1/models", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
}

TEST_F(NodeHttpTest, ResourcesCanBeListedCheckedAndReset) {
  const auto snapshot = nlohmann::json::parse(client_->Get("/v1/resources")->body);
  EXPECT_EQ(snapshot["schema_version"], 1);
  std::set<std::string> types;
  for (const auto& r : snapshot["resources"]) types.insert(r["type"].get<std::string>());
  EXPECT_EQ(types, (std::set<std::string>{"api_server", "inference_engine", "node", "resource_monitor"}));
  const auto health = post_json("/v1/resources/health", nlohmann::json::object(), 200);
  EXPECT_EQ(health["snapshot"]["summary"]["status"], "ok");
  const auto reset = post_json("/v1/resources/engine-test-node/reset", nlohmann::json::object(), 200);
  EXPECT_EQ(reset["reset"], true);
  EXPECT_EQ(reset["resource"]["state"], "READY");
  EXPECT_EQ(reset["resource"]["generation"], 2);
  (void)post_json("/v1/resources/nope/reset", nlohmann::json::object(), 404);
  (void)post_json("/v1/resources/engine-test-node/reset?type=peer_handle", nlohmann::json::object(), 404);
  (void)post_json("/v1/resources/api-test-node/reset", nlohmann::json::object(), 400);
  EXPECT_EQ(post_json("/v1/chat/completions", chat_body(2), 200)["choices"][0]["message"]["content"], "Th");
}

TEST_F(NodeHttpTest, MetricsReportRequestsTokensAndResources) {
  (void)post_json("/v1/chat/completions", chat_body(3), 200);
  const std::string metrics = client_->Get("/metrics")->body;
  EXPECT_NE(metrics.find("exo_http_requests_total{route=\"/v1/chat/completions\",code=\"200\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("exo_generated_tokens_total 3"), std::string::npos);
  EXPECT_NE(metrics.find("exo_resources{type=\"inference_engine\",state=\"READY\"} 1"), std::string::npos);
}

TEST_F(NodeHttpTest, CleanupEndpointAsksTheOwnerToShutDown) {
  const auto r = post_json("/v1/resources/cleanup", nlohmann::json::object(), 202);
  EXPECT_EQ(r["status"], "shutting down");
  for (int i = 0; i < 1000 && !shutdown_requested_; ++i) std::this_thread::yield();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!shutdown_requested_ && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(shutdown_requested_);
}

}  // namespace
}  // namespace exo::node
