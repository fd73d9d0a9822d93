// The ring: how one generation travels through the nodes (docs/node.md, "The ring").
//
// Every piece of ring state lives on the node's strand; peers' messages and API requests are posted
// there and run as tasks owned by the node, so cleanup() cancels and joins them.
#include <fmt/format.h>

#include <algorithm>
#include <asio/post.hpp>
#include <deque>

#include "net/grpc_server.h"
#include "node/node.h"
#include "resource/timeouts.h"

namespace exo::node {

struct Node::OriginRequest {
  OriginRequest(std::string id, std::shared_ptr<GenerationStream> s, TextAssembler assembler)
      : request_id(std::move(id)), stream(std::move(s)), text(std::move(assembler)) {}

  std::string request_id;
  std::shared_ptr<GenerationStream> stream;
  RequestContext context;
  TextAssembler text;
  std::int32_t eos = -1;
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
  std::chrono::steady_clock::time_point last_activity;
  std::deque<std::pair<std::int32_t, bool>> pending;  // (token, is_finished) not yet decoded
  bool draining = false;
  bool ended = false;
};

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string status_text(const nlohmann::json& status) {
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string describe_error(const std::exception& e) {
  if (const auto* system = dynamic_cast<const std::system_error*>(&e);
      system != nullptr && system->code() == asio::error::operation_aborted) {
    return "the node is shutting down; the request was cancelled";
  }
  return e.what();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Set-up

void Node::set_cluster_link(std::shared_ptr<ClusterLink> link) {
  cluster_ = std::move(link);
}

topology::Topology Node::ring_topology() const {
  topology::Topology topology = cluster_ ? cluster_->ring_topology() : topology::Topology{};
  topology.update_node(options_.node_id, self_capabilities_);
  return topology;
}

void Node::set_serving(bool serving) {
  if (auto server = std::dynamic_pointer_cast<net::GrpcServer>(rpc_server_)) server->set_serving(serving);
}

asio::awaitable<void> Node::do_initialize() {
  co_await ResourceGroup::do_initialize();
  spawn(sweep_loop());
  set_serving(true);
}

asio::awaitable<void> Node::do_cleanup() {
  set_serving(false);
  // Tasks are already cancelled and joined; end what clients still wait for, then stop the members.
  for (auto& [id, origin] : origins_) {
    if (!origin->ended) origin->stream->fail("the node is shutting down; the request was cancelled");
    origin->ended = true;
  }
  origins_.clear();
  active_origins_ = 0;
  for (const auto& [id, record] : hops_) engine_->release_request(id);
  hops_.clear();
  ended_.clear();
  co_await ResourceGroup::do_cleanup();
}

void Node::post_owned(std::function<asio::awaitable<void>()> make_task) {
  auto self = std::static_pointer_cast<Node>(shared_from_this());
  asio::post(strand(), [self, make_task = std::move(make_task)] {
    if (!resource::is_usable(self->state())) return;  // shutting down: nothing new starts
    self->spawn(make_task());
  });
}

// ---------------------------------------------------------------------------------------------------
// Origin side: the node whose API took the request

void Node::start_origin(std::shared_ptr<GenerationStream> stream, GenerationRequest request) {
  auto self = std::static_pointer_cast<Node>(shared_from_this());
  asio::post(strand(), [self, stream, request = std::move(request)]() mutable {
    if (!resource::is_usable(self->state())) {
      stream->fail(fmt::format("node is {}", resource::to_string(self->state())));
      return;
    }
    ++self->counters_.generations_started;
    self->spawn(self->run_origin(stream, std::move(request)));
  });
}

asio::awaitable<void> Node::run_origin(std::shared_ptr<GenerationStream> stream, GenerationRequest request) {
  const std::string request_id = request.request_id;
  try {
    if (origins_.contains(request_id) || is_ended(request_id))
      throw std::invalid_argument("request id '" + request_id + "' is already in use");
    const auto model = engine_->model();
    auto plan = RingPlan::from_topology(ring_topology(), model.model_id, model.n_layers);
    if (!plan) throw std::runtime_error(plan.error().message);
    auto origin = std::make_shared<OriginRequest>(request_id, stream, TextAssembler(request.stop));
    origin->eos = model.eos_token_id;
    origin->last_activity = SteadyClock::now();
    RequestContext& context = origin->context;
    context.origin_node_id = options_.node_id;
    context.plan = std::move(plan).value();
    context.temperature = request.temperature;
    context.top_p = request.top_p;
    context.top_k = request.top_k;
    context.min_p = request.min_p;
    context.repeat_penalty = request.repeat_penalty;
    context.seed = request.seed.value_or(0);
    context.max_tokens = request.max_tokens > 0 ? std::min(request.max_tokens, options_.max_generate_tokens)
                                                : options_.max_generate_tokens;
    std::string prompt = apply_chat_template(request.messages);
    const auto prompt_ids = co_await engine_->encode(prompt);
    if (prompt_ids.empty()) throw std::invalid_argument("the prompt encodes to no tokens");
    origin->prompt_tokens = static_cast<std::int32_t>(prompt_ids.size());
    if (context.repeat_penalty != 1.0F) {
      const auto tail = std::min<std::size_t>(prompt_ids.size(), RequestContext::kRepeatWindow);
      context.prompt_tail.assign(prompt_ids.end() - static_cast<std::ptrdiff_t>(tail), prompt_ids.end());
    }
    if (model.context_length > 0) {
      // The answer ends ("length") where the model's context does.
      const auto room = model.context_length - static_cast<std::int64_t>(prompt_ids.size());
      if (room < 1) {
        throw std::invalid_argument(fmt::format("the prompt is {} tokens; the model's context holds {}",
                                                prompt_ids.size(), model.context_length));
      }
      context.max_tokens = static_cast<std::int32_t>(std::min<std::int64_t>(context.max_tokens, room));
    }
    origins_[request_id] = origin;
    active_origins_ = origins_.size();
    auto weak = std::weak_ptr<Node>(std::static_pointer_cast<Node>(shared_from_this()));
    stream->set_on_cancel([weak, request_id] {
      if (auto node = weak.lock()) {
        asio::post(node->strand(), [node, request_id] { node->end_origin(request_id, "", "cancelled"); });
      }
    });
    net::InferenceState state;
    context.store(state);
    const RequestContext context_copy = context;
    if (context.plan.index_of(options_.node_id) == 0) {
      // This node holds the first layers: start the prefill with the ids already in hand.
      std::vector<std::int64_t> ids(prompt_ids.begin(), prompt_ids.end());
      std::vector<std::int64_t> shape{1, static_cast<std::int64_t>(ids.size())};
      auto tokens = net::Tensor::from_values<std::int64_t>(std::move(shape), ids);
      co_await run_prompt_hop(context_copy, std::move(tokens), request_id, std::move(state),
                              std::move(prompt));
    } else {
      const auto& first = context.plan.first();
      try {
        co_await cluster_->send_prompt(first.node_id, first.shard, std::move(prompt), request_id,
                                       std::move(state));
      } catch (const std::exception& e) {
        end_origin(request_id, fmt::format("node {} did not accept the prompt: {}", first.node_id, e.what()),
                   "");
      }
    }
  } catch (const std::exception& e) {
    if (origins_.contains(request_id)) {
      end_origin(request_id, describe_error(e), "");
    } else {
      ++counters_.generations_failed;
      stream->fail(describe_error(e));
    }
  }
}

void Node::end_origin(const std::string& request_id, const std::string& failure, const std::string& reason) {
  const auto it = origins_.find(request_id);
  if (it == origins_.end()) return;
  auto origin = it->second;
  origins_.erase(it);
  active_origins_ = origins_.size();
  if (!origin->ended) {
    origin->ended = true;
    if (!failure.empty()) {
      ++counters_.generations_failed;
      origin->stream->fail(failure);
    } else {
      origin->stream->finish(reason, origin->prompt_tokens, origin->completion_tokens);
    }
  }
  // Tell the other nodes of the ring to drop the request (they may still be computing it), and
  // drop it here.
  std::vector<std::string> others;
  for (const auto& hop : origin->context.plan.hops)
    if (hop.node_id != options_.node_id) others.push_back(hop.node_id);
  forget_request(request_id);
  if (!others.empty() && cluster_ && resource::is_usable(state())) {
    const nlohmann::json status{{"type", "request_ended"},
                                {"request_id", request_id},
                                {"node_id", options_.node_id},
                                {"reason", failure.empty() ? reason : std::string("failed")}};
    spawn(broadcast_status(std::move(others), request_id, status_text(status)));
  }
}

void Node::accept_result(std::string request_id, std::vector<std::int32_t> tokens, bool is_finished) {
  auto self = std::static_pointer_cast<Node>(shared_from_this());
  asio::post(strand(), [self, request_id = std::move(request_id), tokens = std::move(tokens), is_finished] {
    const auto it = self->origins_.find(request_id);
    if (it == self->origins_.end()) return;  // not ours (legacy broadcast) or already ended: ignored
    auto origin = it->second;
    origin->last_activity = SteadyClock::now();
    for (std::size_t i = 0; i < tokens.size(); ++i)
      origin->pending.emplace_back(tokens[i], is_finished && i + 1 == tokens.size());
    if (tokens.empty() && is_finished) origin->pending.emplace_back(-1, true);
    if (!origin->draining && resource::is_usable(self->state())) {
      origin->draining = true;
      self->spawn(self->drain_origin(origin));
    }
  });
}

asio::awaitable<void> Node::drain_origin(std::shared_ptr<OriginRequest> origin) {
  try {
    while (!origin->ended && !origin->pending.empty()) {
      const auto [token, finished] = origin->pending.front();
      origin->pending.pop_front();
      const bool is_eos = token == origin->eos;
      if (token >= 0 && !is_eos) {
        ++origin->completion_tokens;
        ++counters_.tokens_generated;
        std::vector<std::int32_t> ids(1, token);
        const std::string bytes = co_await engine_->decode(std::move(ids));
        if (origin->ended) break;
        auto out = origin->text.feed(bytes);
        if (!out.text.empty()) origin->stream->push_text(std::move(out.text));
        if (out.stopped) {
          end_origin(origin->request_id, "", "stop");
          break;
        }
      }
      if (finished) {
        const std::string rest = origin->text.flush();
        if (!rest.empty()) origin->stream->push_text(rest);
        end_origin(origin->request_id, "", is_eos ? "stop" : "length");
        break;
      }
    }
  } catch (const std::exception& e) {
    end_origin(origin->request_id, describe_error(e), "");
  }
  origin->draining = false;
}

void Node::peer_lost(const std::string& node_id, const std::string& reason) {
  auto self = std::static_pointer_cast<Node>(shared_from_this());
  asio::post(strand(), [self, node_id, reason] {
    std::vector<std::string> affected;
    for (const auto& [id, origin] : self->origins_)
      if (origin->context.plan.index_of(node_id) >= 0) affected.push_back(id);
    for (const auto& id : affected)
      self->end_origin(
          id, fmt::format("node {} left the cluster ({}); the request was stopped", node_id, reason), "");
    std::lock_guard lock(self->active_mutex_);
    if (self->active_node_id_ == node_id) self->active_node_id_.reset();  // its end will never come
  });
}

// ---------------------------------------------------------------------------------------------------
// Every hop

RequestContext Node::context_for(const net::InferenceState& state, const topology::Shard& shard) const {
  auto carried = RequestContext::from_state(state);
  if (!carried) throw std::invalid_argument(carried.error().message);
  if (carried->has_value()) return **carried;
  // A legacy sender: plan over this node's own view, as legacy exo recomputes shards on every hop.
  auto plan = RingPlan::from_topology(ring_topology(), shard.model_id, shard.n_layers);
  if (!plan) throw std::runtime_error(plan.error().message);
  RequestContext context;
  context.plan = std::move(plan).value();
  context.max_tokens = options_.max_generate_tokens;
  return context;
}

void Node::check_hop_request(const topology::Shard& shard, const std::string& request_id,
                             const net::InferenceState& state) const {
  if (request_id.empty()) throw std::invalid_argument("request_id is required");
  if (!shard.is_well_formed()) throw std::invalid_argument("malformed shard");
  if (!has_model(shard.model_id))
    throw std::invalid_argument("model '" + shard.model_id + "' is not served here");
  if (auto carried = RequestContext::from_state(state); !carried)
    throw std::invalid_argument(carried.error().message);
}

void Node::accept_prompt(topology::Shard shard, std::string prompt, std::string request_id,
                         net::InferenceState state) {
  check_hop_request(shard, request_id, state);
  post_owned([this, shard = std::move(shard), prompt = std::move(prompt), request_id = std::move(request_id),
              state = std::move(state)]() mutable {
    return run_prompt(std::move(shard), std::move(prompt), std::move(request_id), std::move(state));
  });
}

void Node::accept_tensor(topology::Shard shard, net::Tensor tensor, std::string request_id,
                         net::InferenceState state) {
  check_hop_request(shard, request_id, state);
  post_owned([this, shard = std::move(shard), tensor = std::move(tensor), request_id = std::move(request_id),
              state = std::move(state)]() mutable {
    return run_tensor(std::move(shard), std::move(tensor), std::move(request_id), std::move(state));
  });
}

asio::awaitable<void> Node::run_prompt(topology::Shard shard, std::string prompt, std::string request_id,
                                       net::InferenceState state) {
  RequestContext context;
  try {
    context = context_for(state, shard);
    if (is_ended(request_id)) co_return;
    context.store(state);
    const int me = context.plan.index_of(options_.node_id);
    if (me != 0) {
      // Not the first layers here: pass the prompt on to the node that has them.
      const auto& first = context.plan.first();
      co_await cluster_->send_prompt(first.node_id, first.shard, std::move(prompt), request_id,
                                     std::move(state));
      co_return;
    }
    const auto ids32 = co_await engine_->encode(std::move(prompt));
    if (ids32.empty()) throw std::invalid_argument("the prompt encodes to no tokens");
    std::vector<std::int64_t> ids(ids32.begin(), ids32.end());
    std::vector<std::int64_t> shape{1, static_cast<std::int64_t>(ids.size())};
    auto tokens = net::Tensor::from_values<std::int64_t>(std::move(shape), ids);
    const RequestContext context_copy = context;
    co_await run_prompt_hop(context_copy, std::move(tokens), request_id, std::move(state), std::move(prompt));
  } catch (const std::exception& e) {
    spawn(fail_request(std::move(context), request_id, describe_error(e)));
  }
}

asio::awaitable<void> Node::run_tensor(topology::Shard shard, net::Tensor tensor, std::string request_id,
                                       net::InferenceState state) {
  RequestContext context;
  try {
    context = context_for(state, shard);
    const int me = context.plan.index_of(options_.node_id);
    if (me < 0) {
      throw std::runtime_error(fmt::format("node {} is not in the ring of this request ({})",
                                           options_.node_id, context.plan.describe()));
    }
    context.store(state);
    const RequestContext context_copy = context;
    co_await run_hop(context_copy, me, std::move(tensor), request_id, std::move(state));
  } catch (const std::exception& e) {
    spawn(fail_request(std::move(context), request_id, describe_error(e)));
  }
}

asio::awaitable<void> Node::run_hop(RequestContext context, int hop, net::Tensor input,
                                    std::string request_id, net::InferenceState state) {
  try {
    if (is_ended(request_id)) co_return;
    auto& record = hops_[request_id];
    record.last_activity = SteadyClock::now();
    const auto shard = context.plan.hops[static_cast<std::size_t>(hop)].shard;
    auto output = co_await engine_->infer_tensor(request_id, shard, std::move(input));
    if (is_ended(request_id)) co_return;  // cancelled while computing
    if (const auto* next = context.plan.after(hop)) {
      if (next->node_id == options_.node_id) throw std::logic_error("a ring plan lists a node twice");
      co_await cluster_->send_tensor(next->node_id, next->shard, std::move(output), request_id,
                                     std::move(state));
      co_return;
    }
    // The last layers are here: sample the next token.
    inference::SamplingParams params;
    params.temperature = context.temperature;
    params.top_p = context.top_p;
    params.seed = context.seed + static_cast<std::uint64_t>(hops_[request_id].generated);
    params.top_k = context.top_k;
    params.min_p = context.min_p;
    params.repeat_penalty = context.repeat_penalty;
    params.repeat_last_n = RequestContext::kRepeatWindow;
    if (context.repeat_penalty != 1.0F) {
      params.history = context.prompt_tail;
      const auto& recent = hops_[request_id].recent;
      params.history.insert(params.history.end(), recent.begin(), recent.end());
    }
    const std::int32_t token = co_await engine_->sample(std::move(output), params);
    if (is_ended(request_id)) co_return;
    auto& sampled = hops_[request_id];
    ++sampled.generated;
    if (context.repeat_penalty != 1.0F) {
      sampled.recent.push_back(token);
      if (sampled.recent.size() > static_cast<std::size_t>(RequestContext::kRepeatWindow))
        sampled.recent.erase(sampled.recent.begin());
    }
    const bool finished = token == engine_->model().eos_token_id || sampled.generated >= context.max_tokens;
    co_await deliver_result(context, request_id, token, finished);
    if (finished) {
      forget_request(request_id);
      co_return;
    }
    if (is_ended(request_id)) co_return;
    const auto& first = context.plan.first();
    std::vector<std::int64_t> next_input(1, token);
    std::vector<std::int64_t> shape{1, 1};
    auto token_tensor = net::Tensor::from_values<std::int64_t>(std::move(shape), next_input);
    if (first.node_id == options_.node_id) {
      // Loop back locally as a new task (a deep chain of awaits would grow with every token).
      spawn(run_hop(std::move(context), 0, std::move(token_tensor), request_id, std::move(state)));
    } else {
      co_await cluster_->send_tensor(first.node_id, first.shard, std::move(token_tensor), request_id,
                                     std::move(state));
    }
  } catch (const std::exception& e) {
    spawn(fail_request(std::move(context), request_id, describe_error(e)));
  }
}

asio::awaitable<void> Node::run_prompt_hop(RequestContext context, net::Tensor tokens, std::string request_id,
                                           net::InferenceState state, std::string prompt) {
  const auto started = SteadyClock::now();
  announce_prompt(context, request_id, "start_process_prompt", {{"prompt", std::move(prompt)}});
  co_await run_hop(context, 0, std::move(tokens), request_id, std::move(state));
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - started);
  announce_prompt(context, request_id, "end_process_prompt", {{"elapsed_time_ns", elapsed.count()}});
}

void Node::announce_prompt(const RequestContext& context, const std::string& request_id,
                           const std::string& status, nlohmann::json extra) {
  const auto& shard = context.plan.first().shard;
  topology::Shard base = shard;
  base.start_layer = 0;
  base.end_layer = 0;
  nlohmann::json message{{"type", "node_status"},
                         {"node_id", options_.node_id},
                         {"status", status},
                         {"base_shard", topology::shard_to_json(base)},
                         {"shard", topology::shard_to_json(shard)},
                         {"request_id", request_id}};
  message.update(extra);
  handle_status(request_id, message);
  if (cluster_ && resource::is_usable(state()))
    spawn(broadcast_status(cluster_->peer_ids(), request_id, status_text(message)));
}

asio::awaitable<void> Node::deliver_result(const RequestContext& context, std::string request_id,
                                           std::int32_t token, bool is_finished) {
  if (context.origin_node_id == options_.node_id) {
    std::vector<std::int32_t> tokens(1, token);
    accept_result(std::move(request_id), std::move(tokens), is_finished);
    co_return;
  }
  if (!context.origin_node_id.empty()) {
    std::vector<std::int32_t> tokens(1, token);
    co_await cluster_->send_result(context.origin_node_id, std::move(request_id), std::move(tokens),
                                   is_finished);
    co_return;
  }
  // Legacy request: every node may be the origin, so every node hears of every token.
  std::vector<std::int32_t> local(1, token);
  accept_result(request_id, std::move(local), is_finished);
  if (!cluster_) co_return;
  for (const auto& peer : cluster_->peer_ids()) {
    try {
      std::vector<std::int32_t> tokens(1, token);
      co_await cluster_->send_result(peer, request_id, std::move(tokens), is_finished);
    } catch (const std::exception&) {
      // A peer that cannot take a broadcast token is not this request's failure.
    }
  }
}

asio::awaitable<void> Node::fail_request(RequestContext context, std::string request_id, std::string error) {
  if (is_ended(request_id)) co_return;  // a cancelled request's in-flight work is not a failure
  forget_request(request_id);
  const std::string message = fmt::format("node {}: {}", options_.node_id, error);
  if (context.origin_node_id == options_.node_id) {
    end_origin(request_id, message, "");
    co_return;
  }
  const nlohmann::json status{{"type", "request_failed"},
                              {"request_id", request_id},
                              {"node_id", options_.node_id},
                              {"error", message}};
  std::vector<std::string> to;
  if (!context.origin_node_id.empty()) {
    to.push_back(context.origin_node_id);
  } else if (cluster_) {
    to = cluster_->peer_ids();
  }
  co_await broadcast_status(std::move(to), std::move(request_id), status_text(status));
}

asio::awaitable<void> Node::broadcast_status(std::vector<std::string> to, std::string request_id,
                                             std::string status) {
  if (!cluster_) co_return;
  for (const auto& peer : to) {
    try {
      co_await cluster_->send_status(peer, request_id, status);
    } catch (const std::exception&) {
      // Best effort: a peer that is gone has nothing to drop; timeouts cover the rest.
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Statuses (SendOpaqueStatus)

void Node::accept_status(std::string request_id, nlohmann::json status) {
  if (!status.is_object()) throw std::invalid_argument("status is not a JSON object");
  auto self = std::static_pointer_cast<Node>(shared_from_this());
  asio::post(strand(), [self, request_id = std::move(request_id), status = std::move(status)] {
    self->handle_status(request_id, status);
  });
}

void Node::handle_status(const std::string& request_id, const nlohmann::json& status) {
  // Peers' JSON: a field of the wrong type reads as absent (never an exception on the strand).
  const auto text = [&status](const char* key) {
    const auto it = status.find(key);
    return it != status.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto type = text("type");
  const auto from = text("node_id");
  if (type == "request_failed") {
    const auto error =
        !text("error").empty() ? text("error") : fmt::format("node {} failed", from.empty() ? "?" : from);
    if (origins_.contains(request_id)) {
      end_origin(request_id, error, "");
    } else {
      forget_request(request_id);
    }
  } else if (type == "request_ended") {
    forget_request(request_id);
  } else if (type == "node_status" && !from.empty()) {
    // Legacy: start_* marks the sender as the active node; end_* clears the mark if it is still its.
    ++counters_.node_statuses_received;
    // Statuses travel as separate RPCs, so an end can overtake its start: a start whose request
    // already ended is ignored.
    const auto what = text("status");
    std::lock_guard lock(active_mutex_);
    const bool ended =
        std::find(ended_prompts_.begin(), ended_prompts_.end(), request_id) != ended_prompts_.end();
    if (what.starts_with("start_") && !ended) {
      active_node_id_ = from;
    } else if (what.starts_with("end_")) {
      if (active_node_id_ == from) active_node_id_.reset();
      ended_prompts_.push_back(request_id);
      if (ended_prompts_.size() > 256) ended_prompts_.pop_front();
    }
  }
  // download_progress and supported_inference_engines carry nothing this node acts on.
}

void Node::forget_request(const std::string& request_id) {
  if (request_id.empty()) return;
  hops_.erase(request_id);
  ended_[request_id] = SteadyClock::now();
  engine_->release_request(request_id);
}

bool Node::is_ended(const std::string& request_id) const {
  return ended_.contains(request_id);
}

asio::awaitable<void> Node::sweep_loop() {
  const auto period = std::chrono::milliseconds(500);
  for (;;) {
    co_await resource::sleep_for(period);
    const auto now = SteadyClock::now();
    std::vector<std::string> timed_out;
    for (const auto& [id, origin] : origins_)
      if (now - origin->last_activity > options_.response_timeout) timed_out.push_back(id);
    for (const auto& id : timed_out) {
      end_origin(
          id,
          fmt::format("no progress within {} ms; the request was stopped", options_.response_timeout.count()),
          "");
    }
    std::vector<std::string> idle;
    for (const auto& [id, record] : hops_)
      if (now - record.last_activity > options_.request_idle_timeout) idle.push_back(id);
    for (const auto& id : idle) forget_request(id);
    std::erase_if(ended_,
                  [&](const auto& entry) { return now - entry.second > options_.request_idle_timeout; });
  }
}

}  // namespace exo::node
