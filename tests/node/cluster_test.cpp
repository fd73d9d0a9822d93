// Three real nodes in one process, joined over loopback gRPC by manual discovery (a topology file),
// serving the dummy engine's 8 layers split around the ring.
#include <gtest/gtest.h>

#include <random>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "inference/dummy_engine.h"
#include "net/peer_handle.h"
#include "node/cluster.h"
#include "node/node.h"

namespace exo::node {
namespace {

using namespace std::chrono_literals;

// A port for a node's gRPC server, fixed before the node starts (the topology file lists it). Taken
// below the kernel's ephemeral range (32768 and up by default), so no outgoing connection — the
// gRPC clients of this very test — can take it before the node binds it; random, so that test
// processes running side by side rarely try the same one; and checked to be bindable now.
int listen_port() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io);
    std::error_code error;
    acceptor.open(asio::ip::tcp::v4(), error);
    if (!error)
      acceptor.bind(
          asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)),
          error);
    if (!error) return port;
  }
  throw std::runtime_error("no bindable port in 20000-32000");
}

// Polls `condition` until it holds or `timeout` passes (the condition is what the test waits for).
template <typename F>
bool eventually(F condition, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

struct Outcome {
  std::string text;
  std::string finish;  // finish reason, or "error: ..."
};

Outcome collect(const std::shared_ptr<GenerationStream>& stream) {
  Outcome out;
  for (;;) {
    auto event = stream->pop(std::chrono::steady_clock::now() + 30s);
    if (!event) return {out.text, "error: timed out"};
    if (event->kind == GenerationEvent::Kind::TEXT) {
      out.text += event->text;
    } else if (event->kind == GenerationEvent::Kind::FINISHED) {
      out.finish = event->text;
      return out;
    } else {
      out.finish = "error: " + event->text;
      return out;
    }
  }
}

GenerationRequest chat(const std::string& id, std::int32_t max_tokens = 0) {
  GenerationRequest r;
  r.request_id = id;
  r.model = "dummy";
  r.messages = {{"user", "hello ring"}};
  r.max_tokens = max_tokens;
  return r;
}

class ClusterTest : public ::testing::Test {
 protected:
  static constexpr int kNodes = 3;

  void SetUp() override { form(kNodes); }

  // Starts `count` nodes that know each other from one topology file and waits until each sees all.
  void form(int count) {
    count_ = count;
    config_path_ =
        std::filesystem::temp_directory_path() /
        ("exo-cluster-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) + ".json");
    nlohmann::json peers = nlohmann::json::object();
    for (int i = 0; i < count; ++i) {
      ports_.push_back(listen_port());
      peers[id(i)] = {{"address", "127.0.0.1"},
                      {"port", ports_.back()},
                      {"device_capabilities",
                       {{"model", "test"},
                        {"chip", "test"},
                        {"memory", 1000 * (i + 1)},
                        {"flops", {{"fp32", 1.0}, {"fp16", 2.0}, {"int8", 4.0}}}}}};
    }
    std::ofstream(config_path_) << nlohmann::json{{"peers", peers}}.dump(2);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    for (int i = 0; i < count; ++i) start(i);
    ASSERT_TRUE(eventually([&] {
      for (int i = 0; i < count; ++i) {
        const auto& node = nodes_[static_cast<std::size_t>(i)];
        if (!node || node->cluster()->peer_ids().size() != static_cast<std::size_t>(count - 1)) return false;
      }
      return true;
    })) << "the cluster did not form";
  }

  void TearDown() override {
    for (auto& node : nodes_)
      if (node) asio::co_spawn(io_, node->cleanup(), asio::use_future).get();
    nodes_.clear();
    work_.reset();
    for (auto& t : threads_) t.join();
    std::error_code ignored;
    std::filesystem::remove(config_path_, ignored);
  }

  static std::string id(int i) { return "node-" + std::string(1, static_cast<char>('a' + i)); }

  void start(int i) {
    NodeOptions o;
    o.node_id = id(i);
    o.inference_engine = engine_;
    o.model_path = model_path_;
    o.default_model = model_id_;
    o.engine_threads = 1;
    o.api_host = "127.0.0.1";
    o.api_port = 0;
    o.response_timeout = 20s;
    o.discovery = "manual";
    o.discovery_config_path = config_path_.string();
    o.discovery_reload_interval = 100ms;
    o.rpc_host = "127.0.0.1";
    o.rpc_port = ports_[static_cast<std::size_t>(i)];
    o.peer_health_probe_interval = 200ms;
    o.peer_health_interval = 200ms;
    o.peer_connect_timeout = 2s;
    o.topology_interval = 200ms;
    topology::DeviceCapabilities caps;  // as the topology file announces it
    caps.model = "test";
    caps.chip = "test";
    caps.memory_mb = 1000 * (i + 1);
    caps.flops = {1.0, 2.0, 4.0};
    o.device_capabilities = caps;
    auto node = Node::create(io_.get_executor(), o, nullptr);
    asio::co_spawn(io_, node->initialize(), asio::use_future).get();
    if (nodes_.size() <= static_cast<std::size_t>(i)) nodes_.resize(static_cast<std::size_t>(i) + 1);
    nodes_[static_cast<std::size_t>(i)] = node;
  }

  std::size_t engine_requests(int i) {
    return std::dynamic_pointer_cast<inference::DummyEngine>(nodes_[static_cast<std::size_t>(i)]->engine())
        ->active_requests();
  }

  static inline int counter_ = 0;
  int count_ = 0;
  std::string engine_ = "dummy";
  std::string model_path_;
  std::string model_id_ = "dummy";
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{asio::make_work_guard(io_)};
  std::vector<std::thread> threads_;
  std::filesystem::path config_path_;
  std::vector<int> ports_;
  std::vector<std::shared_ptr<Node>> nodes_;
};

TEST_F(ClusterTest, EveryNodePlansTheSameRingOverAllThree) {
  for (const auto& node : nodes_) {
    const auto plan = RingPlan::from_topology(node->ring_topology(), "dummy", 8);
    ASSERT_TRUE(plan) << plan.error().message;
    std::string states;
    for (const auto& peer : node->cluster()->peers())
      states += peer->id() + "=" + std::string(resource::to_string(peer->state())) + " ";
    EXPECT_EQ(plan->hops.size(), 3U) << plan->describe() << " on " << node->node_options().node_id << ": "
                                     << states;
    // Memory 3000 > 2000 > 1000: node-c holds the first layers.
    EXPECT_EQ(plan->describe(), "node-c[0..3] -> node-b[4..5] -> node-a[6..7]");
  }
}

TEST_F(ClusterTest, AChatRunsThroughTheRingFromEveryNode) {
  for (int i = 0; i < kNodes; ++i) {
    const auto out =
        collect(nodes_[static_cast<std::size_t>(i)]->generate(chat("ring-" + std::to_string(i))));
    EXPECT_EQ(out.finish, "stop") << "from " << id(i);
    EXPECT_EQ(out.text, std::string(inference::kDummyReply)) << "from " << id(i);
  }
  // Every node ran its layers (the dummy engine rejects a hidden state that skipped layers) and
  // forgot the requests when they finished.
  EXPECT_TRUE(eventually([&] { return engine_requests(0) + engine_requests(1) + engine_requests(2) == 0; }));
}

TEST_F(ClusterTest, MetricsShowPeersAndDiscovery) {
  const auto metrics = nlohmann::json::parse(nodes_[0]->cluster_metrics().dump());
  ASSERT_TRUE(metrics.contains("discovery"));
  EXPECT_EQ(metrics["discovery"]["peers"], 2);
  EXPECT_GE(metrics["discovery"]["probes_succeeded"].get<int>(), 2);
  // The peer handles are resources of the node's registry (what the monitor and `exo resources` show).
  std::size_t peers_up = 0;
  for (const auto& r : nodes_[0]->registry()->by_type("peer_handle"))
    if (r->state() == resource::ResourceState::READY) ++peers_up;
  EXPECT_EQ(peers_up, 2U);
}

TEST_F(ClusterTest, ThePromptNodeAnnouncesItselfToEveryNode) {
  // node-c holds the first layers: a chat from node-a makes node-c send start_process_prompt and
  // end_process_prompt to every node, itself included; once it is done no node is marked active.
  for (const auto& node : nodes_) EXPECT_EQ(node->counters().node_statuses_received.load(), 0U);
  const auto out = collect(nodes_[0]->generate(chat("announced")));
  ASSERT_EQ(out.finish, "stop");
  EXPECT_TRUE(eventually([&] {
    for (const auto& node : nodes_)
      if (node->counters().node_statuses_received.load() < 2) return false;
    return true;
  }));
  for (const auto& node : nodes_) EXPECT_TRUE(node->topology()["active_node_id"].is_null());
}

TEST_F(ClusterTest, NodeStatusesMarkAndClearTheActiveNode) {
  const auto& node = nodes_[1];
  const auto active = [&] { return node->topology()["active_node_id"]; };
  EXPECT_TRUE(active().is_null());
  node->accept_status(
      "r1", nlohmann::json::parse(
                R"({"type": "node_status", "node_id": "node-x", "status": "start_process_prompt"})"));
  EXPECT_TRUE(eventually([&] { return active() == "node-x"; }));
  // Fields of the wrong type are ignored, never thrown on the node's strand.
  node->accept_status("r1", nlohmann::json::parse(R"({"type": 5, "node_id": [1], "status": {}})"));
  node->accept_status("r1", nlohmann::json::parse(
                                R"({"type": "node_status", "node_id": 7, "status": "end_process_prompt"})"));
  node->accept_status(
      "r1", nlohmann::json::parse(R"({"type": "request_failed", "node_id": "node-x", "error": 3})"));
  // Another node's end does not clear node-x's mark.
  node->accept_status("r1",
                      nlohmann::json::parse(
                          R"({"type": "node_status", "node_id": "node-y", "status": "end_process_prompt"})"));
  ASSERT_TRUE(eventually([&] { return node->counters().node_statuses_received.load() == 2; }));
  EXPECT_EQ(active(), "node-x");
  node->accept_status("r1",
                      nlohmann::json::parse(
                          R"({"type": "node_status", "node_id": "node-x", "status": "end_process_prompt"})"));
  EXPECT_TRUE(eventually([&] { return active().is_null(); }));
  // An end that overtakes its start (separate RPCs): the late start marks nothing.
  node->accept_status("r2",
                      nlohmann::json::parse(
                          R"({"type": "node_status", "node_id": "node-z", "status": "end_process_prompt"})"));
  node->accept_status(
      "r2", nlohmann::json::parse(
                R"({"type": "node_status", "node_id": "node-z", "status": "start_process_prompt"})"));
  ASSERT_TRUE(eventually([&] { return node->counters().node_statuses_received.load() == 5; }));
  EXPECT_TRUE(active().is_null());
  const auto out = collect(node->generate(chat("after-statuses")));
  EXPECT_EQ(out.finish, "stop");
}

TEST_F(ClusterTest, MaxTokensIsEnforcedByTheLastShard) {
  const auto out = collect(nodes_[0]->generate(chat("short", 5)));
  EXPECT_EQ(out.finish, "length");
  EXPECT_EQ(out.text, std::string(inference::kDummyReply).substr(0, 5));
}

TEST_F(ClusterTest, ConcurrentRequestsFromAllNodesStayIsolated) {
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (int r = 0; r < 24; ++r)
    streams.push_back(nodes_[static_cast<std::size_t>(r % kNodes)]->generate(chat("c" + std::to_string(r))));
  std::vector<std::future<Outcome>> outcomes;
  for (auto& s : streams) outcomes.push_back(std::async(std::launch::async, [s] { return collect(s); }));
  for (auto& f : outcomes) {
    const auto out = f.get();
    EXPECT_EQ(out.finish, "stop");
    EXPECT_EQ(out.text, std::string(inference::kDummyReply));
  }
}

TEST_F(ClusterTest, ACancelledRequestIsDroppedOnEveryNode) {
  auto stream = nodes_[1]->generate(chat("to-cancel", 100000));
  auto first = stream->pop(std::chrono::steady_clock::now() + 20s);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->kind, GenerationEvent::Kind::TEXT);
  stream->cancel();
  auto last = collect(stream);
  EXPECT_EQ(last.finish, "cancelled");
  EXPECT_TRUE(eventually([&] { return engine_requests(0) + engine_requests(1) + engine_requests(2) == 0; }))
      << engine_requests(0) << " " << engine_requests(1) << " " << engine_requests(2);
  EXPECT_EQ(nodes_[1]->active_origin_requests(), 0U);
}

TEST_F(ClusterTest, WhenANodeLeavesTheOthersServeWithoutIt) {
  asio::co_spawn(io_, nodes_[2]->cleanup(), asio::use_future).get();
  nodes_[2].reset();
  ASSERT_TRUE(eventually([&] {
    return nodes_[0]->cluster()->peer_ids().size() == 1 && nodes_[1]->cluster()->peer_ids().size() == 1;
  })) << "the survivors did not drop node-c";
  // node-c's handle is visible as not usable (or gone) in node-a's cluster.
  const auto handle = nodes_[0]->cluster()->find_peer("node-c");
  if (handle) {
    EXPECT_FALSE(handle->available());
  }
  for (int i = 0; i < 2; ++i) {
    const auto out =
        collect(nodes_[static_cast<std::size_t>(i)]->generate(chat("after-" + std::to_string(i))));
    EXPECT_EQ(out.finish, "stop");
    EXPECT_EQ(out.text, std::string(inference::kDummyReply));
  }
  // node-c comes back: it rejoins and the ring spans three nodes again.
  start(2);
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < kNodes; ++i)
      if (nodes_[static_cast<std::size_t>(i)]->cluster()->peer_ids().size() != kNodes - 1) return false;
    return true;
  })) << "node-c did not rejoin";
  const auto out = collect(nodes_[0]->generate(chat("rejoined")));
  EXPECT_EQ(out.text, std::string(inference::kDummyReply));
}

// The native engine with a real GGUF model: the same greedy answer whole, on 2 nodes and on 3 nodes.
class NativeClusterTest : public ClusterTest {
 protected:
  void SetUp() override {
    model_path_ = std::string(EXO_SHARED_DIR) + "/models/small-f16.gguf";
    if (!std::filesystem::exists(model_path_)) GTEST_SKIP() << "shared models not found at " << model_path_;
    engine_ = "native";
    model_id_ = "small-f16";
  }

  std::string greedy_answer(const std::shared_ptr<Node>& node, const std::string& request_id) {
    auto request = chat(request_id, 24);
    request.model = model_id_;
    request.temperature = 0.0F;
    const auto out = collect(node->generate(request));
    EXPECT_TRUE(out.finish == "length" || out.finish == "stop") << out.finish;
    return out.text;
  }
};

// Greedy generation with a repeat penalty straight on the engine: the penalty looks at the last 64
// tokens of prompt + answer. What a ring must reproduce.
asio::awaitable<std::string> penalized_reference(std::shared_ptr<inference::InferenceEngine> engine,
                                                 std::string prompt, int max_tokens, float penalty) {
  const auto prompt_ids = co_await engine->encode(std::move(prompt));
  std::vector<std::int32_t> history(prompt_ids.begin(), prompt_ids.end());
  std::vector<std::int32_t> answer;
  std::vector<std::int64_t> input(prompt_ids.begin(), prompt_ids.end());
  for (int i = 0; i < max_tokens; ++i) {
    std::vector<std::int64_t> shape{1, static_cast<std::int64_t>(input.size())};
    auto logits = co_await engine->infer_tensor(
        "reference", engine->whole_model(), net::Tensor::from_values<std::int64_t>(std::move(shape), input));
    inference::SamplingParams params;
    params.repeat_penalty = penalty;
    params.repeat_last_n = RequestContext::kRepeatWindow;
    params.history = history;
    const std::int32_t token = co_await engine->sample(std::move(logits), params);
    if (token == engine->model().eos_token_id) break;
    answer.push_back(token);
    history.push_back(token);
    input.assign(1, token);
  }
  engine->release_request("reference");
  co_return co_await engine->decode(answer);
}

TEST_F(NativeClusterTest, ARepeatPenaltyReachesTheLastShardWithThePromptsTokens) {
  // Greedy with a strong penalty: a 1-node and a 2-node ring give the engine's own penalized answer
  // (the last shard sees the prompt's tail and the tokens it sampled), and the penalty matters.
  constexpr float kPenalty = 1.8F;
  const auto answer = [&](const std::shared_ptr<Node>& node, const std::string& id, float penalty) {
    auto request = chat(id, 24);
    request.model = model_id_;
    request.repeat_penalty = penalty;
    const auto out = collect(node->generate(request));
    EXPECT_TRUE(out.finish == "length" || out.finish == "stop") << out.finish;
    return out.text;
  };
  form(1);
  const std::string expected =
      asio::co_spawn(io_,
                     penalized_reference(nodes_[0]->engine(),
                                         nodes_[0]->apply_chat_template(chat("r").messages), 24, kPenalty),
                     asio::use_future)
          .get();
  EXPECT_NE(answer(nodes_[0], "plain", 1.0F), expected) << "the penalty changed nothing";
  EXPECT_EQ(answer(nodes_[0], "whole", kPenalty), expected);
  TearDown();
  io_.restart();
  work_.emplace(io_.get_executor());
  threads_.clear();
  ports_.clear();
  form(2);
  EXPECT_EQ(answer(nodes_[0], "split-a", kPenalty), expected);
  EXPECT_EQ(answer(nodes_[1], "split-b", kPenalty), expected);
}

TEST_F(NativeClusterTest, WholeTwoNodesAndThreeNodesGiveTheSameGreedyAnswer) {
  form(1);
  const std::string whole = greedy_answer(nodes_[0], "whole");
  ASSERT_FALSE(whole.empty());
  TearDown();
  for (const int count : {2, 3}) {
    io_.restart();
    work_.emplace(io_.get_executor());
    threads_.clear();
    ports_.clear();
    form(count);
    const auto plan = RingPlan::from_topology(nodes_[0]->ring_topology(), model_id_, 4);
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->hops.size(), static_cast<std::size_t>(count)) << plan->describe();
    for (int origin = 0; origin < count; ++origin) {
      EXPECT_EQ(greedy_answer(nodes_[static_cast<std::size_t>(origin)], "split-" + std::to_string(origin)),
                whole)
          << count << " nodes, asked at " << id(origin) << ", ring " << plan->describe();
    }
    TearDown();
  }
  io_.restart();
  work_.emplace(io_.get_executor());
  threads_.clear();
}

}  // namespace
}  // namespace exo::node
