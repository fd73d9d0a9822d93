#include "net/grpc_server.h"

#include <fmt/format.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <mutex>
#include <system_error>

#include "net/grpc_messages.h"
#include "net/node_service.grpc.pb.h"
#include "net/proto_convert.h"

namespace exo::net {

// ---------------------------------------------------------------- shared call bookkeeping

struct GrpcServer::Shared {
  explicit Shared(asio::any_io_executor call_executor) : executor(std::move(call_executor)) {}

  void begin() {
    calls.fetch_add(1);
    std::lock_guard lock(mutex);
    ++in_flight;
  }

  void end(bool failed) {
    if (failed) failed_calls.fetch_add(1);
    std::lock_guard lock(mutex);
    if (--in_flight == 0 && idle_waiter) {
      asio::post(idle_waiter->get_executor(),
                 [waiter = idle_waiter] { waiter->expires_at(asio::steady_timer::time_point::min()); });
    }
  }

  std::uint64_t running() {
    std::lock_guard lock(mutex);
    return in_flight;
  }

  asio::any_io_executor executor;  // handler coroutines run here, one strand per call
  std::atomic<bool> accepting{false};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> invalid_requests{0};
  std::atomic<std::uint64_t> failed_calls{0};
  std::mutex mutex;
  std::uint64_t in_flight = 0;                      // guarded by mutex
  std::shared_ptr<asio::steady_timer> idle_waiter;  // guarded by mutex; woken when in_flight drops to 0
};

namespace {

struct Unit {};

std::string host_port(const std::string& host, int port) {
  if (host.find(':') != std::string::npos && host.front() != '[') return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

grpc::Status status_from_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const NotImplementedError& e) {
    return {grpc::StatusCode::UNIMPLEMENTED, e.what()};
  } catch (const std::invalid_argument& e) {
    return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
  } catch (const resource::TimeoutError& e) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, e.what()};
  } catch (const resource::UnavailableError& e) {
    return {grpc::StatusCode::UNAVAILABLE, e.what()};
  } catch (const resource::ClosedError& e) {
    return {grpc::StatusCode::UNAVAILABLE, e.what()};
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) return {grpc::StatusCode::CANCELLED, e.what()};
    return {grpc::StatusCode::INTERNAL, e.what()};
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  } catch (...) {
    return {grpc::StatusCode::UNKNOWN, "unknown error in the handler"};
  }
}

template <typename Value>
asio::awaitable<void> store_into(asio::awaitable<Value> operation, std::optional<Value>* out) {
  out->emplace(co_await std::move(operation));
}

// One RPC whose handler coroutine runs on Asio. Owned jointly by gRPC (until OnDone) and by the
// coroutine (until its completion); the last of the two deletes it. Exactly one of the completion
// and OnCancel finishes the call (claim()).
template <typename Value, typename Response>
class HandlerCall final : public grpc::ServerUnaryReactor {
 public:
  using Fill = void (*)(Value&&, Response*);

  static grpc::ServerUnaryReactor* start(std::shared_ptr<GrpcServer::Shared> shared, Response* response,
                                         asio::awaitable<Value> operation, Fill fill) {
    auto* call = new HandlerCall(std::move(shared), response, fill);
    call->shared_->begin();
    // The value goes through a slot of the call rather than the completion's arguments: co_spawn's
    // value completions default-construct T on error, which GCC 12 misreports as uninitialized use.
    asio::co_spawn(call->strand_, store_into(std::move(operation), &call->result_),
                   asio::bind_cancellation_slot(call->cancel_.slot(),
                                                [call](const std::exception_ptr& e) { call->complete(e); }));
    return call;
  }

  void OnCancel() override {
    refs_.fetch_add(1);
    asio::post(strand_, [this] {
      cancel_.emit(asio::cancellation_type::terminal);
      release();
    });
    if (claim())
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled (client, deadline or shutdown)"));
  }

  void OnDone() override { release(); }

 private:
  HandlerCall(std::shared_ptr<GrpcServer::Shared> shared, Response* response, Fill fill)
      : shared_(std::move(shared)),
        strand_(asio::make_strand(shared_->executor)),
        response_(response),
        fill_(fill) {}

  bool claim() { return !finished_.exchange(true); }

  void release() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  void complete(const std::exception_ptr& error) {
    const bool claimed = claim();
    if (claimed) {
      if (error || !result_) {
        Finish(error ? status_from_exception(error)
                     : grpc::Status(grpc::StatusCode::INTERNAL, "the handler produced no result"));
      } else {
        fill_(std::move(*result_), response_);
        Finish(grpc::Status::OK);
      }
    }
    shared_->end(error != nullptr || !claimed);
    release();
  }

  std::shared_ptr<GrpcServer::Shared> shared_;
  asio::strand<asio::any_io_executor> strand_;
  asio::cancellation_signal cancel_;
  Response* response_;
  Fill fill_;
  std::optional<Value> result_;  // written by the coroutine, read by its completion (same strand)
  std::atomic<bool> finished_{false};
  std::atomic<int> refs_{2};  // gRPC (released in OnDone) + the coroutine (released on completion)
};

// The handler coroutines, as free functions holding the handler alive for the whole call.
asio::awaitable<std::optional<Tensor>> invoke_send_prompt(std::shared_ptr<NodeServiceHandler> handler,
                                                          PromptCall call) {
  co_return co_await handler->send_prompt(std::move(call));
}

asio::awaitable<std::optional<Tensor>> invoke_send_tensor(std::shared_ptr<NodeServiceHandler> handler,
                                                          TensorCall call) {
  co_return co_await handler->send_tensor(std::move(call));
}

asio::awaitable<LossResult> invoke_send_example(std::shared_ptr<NodeServiceHandler> handler,
                                                ExampleCall call) {
  co_return co_await handler->send_example(std::move(call));
}

asio::awaitable<topology::Topology> invoke_collect_topology(std::shared_ptr<NodeServiceHandler> handler,
                                                            TopologyQuery query) {
  co_return co_await handler->collect_topology(std::move(query));
}

asio::awaitable<Unit> invoke_send_result(std::shared_ptr<NodeServiceHandler> handler, ResultCall call) {
  co_await handler->send_result(std::move(call));
  co_return Unit();
}

asio::awaitable<Unit> invoke_send_opaque_status(std::shared_ptr<NodeServiceHandler> handler,
                                                OpaqueStatusCall call) {
  co_await handler->send_opaque_status(std::move(call));
  co_return Unit();
}

asio::awaitable<bool> invoke_health_check(std::shared_ptr<NodeServiceHandler> handler) {
  co_return co_await handler->health_check();
}

void fill_optional_tensor(std::optional<Tensor>&& value, node_service::Tensor* response) {
  if (value) *response = encode_tensor(std::move(*value));
}
void fill_loss(LossResult&& value, node_service::Loss* response) {
  *response = encode_loss(value);
}
void fill_topology(topology::Topology&& value, node_service::Topology* response) {
  *response = topology_to_proto(value);
}
void fill_empty(Unit&& /*value*/, node_service::Empty* /*response*/) {}
void fill_health(bool&& value, node_service::HealthCheckResponse* response) {
  response->set_is_healthy(value);
}

}  // namespace

// ---------------------------------------------------------------- the service

class GrpcServer::Service final : public node_service::NodeService::CallbackService {
 public:
  Service(std::shared_ptr<Shared> shared, std::weak_ptr<NodeServiceHandler> handler)
      : shared_(std::move(shared)), handler_(std::move(handler)) {}

  grpc::ServerUnaryReactor* SendPrompt(grpc::CallbackServerContext* context,
                                       const node_service::PromptRequest* request,
                                       node_service::Tensor* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    auto call = decode_prompt_call(*request);
    if (!call) return invalid(context, "SendPrompt", call.error());
    if (auto* handed = try_hand_over(context, *handler, *call)) return handed;
    return HandlerCall<std::optional<Tensor>, node_service::Tensor>::start(
        shared_, response, invoke_send_prompt(std::move(handler), std::move(call).value()),
        &fill_optional_tensor);
  }

  grpc::ServerUnaryReactor* SendTensor(grpc::CallbackServerContext* context,
                                       const node_service::TensorRequest* request,
                                       node_service::Tensor* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    auto call = decode_tensor_call(*request);
    if (!call) return invalid(context, "SendTensor", call.error());
    if (auto* handed = try_hand_over(context, *handler, *call)) return handed;
    return HandlerCall<std::optional<Tensor>, node_service::Tensor>::start(
        shared_, response, invoke_send_tensor(std::move(handler), std::move(call).value()),
        &fill_optional_tensor);
  }

  grpc::ServerUnaryReactor* SendExample(grpc::CallbackServerContext* context,
                                        const node_service::ExampleRequest* request,
                                        node_service::Loss* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    auto call = decode_example_call(*request);
    if (!call) return invalid(context, "SendExample", call.error());
    return HandlerCall<LossResult, node_service::Loss>::start(
        shared_, response, invoke_send_example(std::move(handler), std::move(call).value()), &fill_loss);
  }

  grpc::ServerUnaryReactor* CollectTopology(grpc::CallbackServerContext* context,
                                            const node_service::CollectTopologyRequest* request,
                                            node_service::Topology* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    return HandlerCall<topology::Topology, node_service::Topology>::start(
        shared_, response, invoke_collect_topology(std::move(handler), decode_topology_query(*request)),
        &fill_topology);
  }

  grpc::ServerUnaryReactor* SendResult(grpc::CallbackServerContext* context,
                                       const node_service::SendResultRequest* request,
                                       node_service::Empty* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    auto call = decode_result_call(*request);
    if (!call) return invalid(context, "SendResult", call.error());
    if (auto* handed = try_hand_over(context, *handler, *call)) return handed;
    return HandlerCall<Unit, node_service::Empty>::start(
        shared_, response, invoke_send_result(std::move(handler), std::move(call).value()), &fill_empty);
  }

  grpc::ServerUnaryReactor* SendOpaqueStatus(grpc::CallbackServerContext* context,
                                             const node_service::SendOpaqueStatusRequest* request,
                                             node_service::Empty* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    auto call = decode_opaque_status_call(*request);
    if (!call) return invalid(context, "SendOpaqueStatus", call.error());
    if (auto* handed = try_hand_over(context, *handler, *call)) return handed;
    return HandlerCall<Unit, node_service::Empty>::start(
        shared_, response, invoke_send_opaque_status(std::move(handler), std::move(call).value()),
        &fill_empty);
  }

  grpc::ServerUnaryReactor* HealthCheck(grpc::CallbackServerContext* context,
                                        const node_service::HealthCheckRequest* /*request*/,
                                        node_service::HealthCheckResponse* response) override {
    auto handler = admit();
    if (!handler) return unavailable(context);
    return HandlerCall<bool, node_service::HealthCheckResponse>::start(
        shared_, response, invoke_health_check(std::move(handler)), &fill_health);
  }

 private:
  std::shared_ptr<NodeServiceHandler> admit() {
    if (!shared_->accepting.load()) return nullptr;
    return handler_.lock();
  }

  // The handler's fast path: answered on this gRPC thread when the handler takes the call over.
  template <typename Call>
  grpc::ServerUnaryReactor* try_hand_over(grpc::CallbackServerContext* context, NodeServiceHandler& handler,
                                          Call& call) {
    try {
      if (!handler.hand_over(call)) return nullptr;
      shared_->calls.fetch_add(1);
      return finish_now(context, grpc::Status::OK);
    } catch (...) {
      shared_->calls.fetch_add(1);
      shared_->failed_calls.fetch_add(1);
      return finish_now(context, status_from_exception(std::current_exception()));
    }
  }

  static grpc::ServerUnaryReactor* finish_now(grpc::CallbackServerContext* context, grpc::Status status) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(std::move(status));
    return reactor;
  }

  grpc::ServerUnaryReactor* unavailable(grpc::CallbackServerContext* context) {
    const char* why = shared_->accepting.load() ? "the node is gone" : "the server is shutting down";
    return finish_now(context, grpc::Status(grpc::StatusCode::UNAVAILABLE, why));
  }

  grpc::ServerUnaryReactor* invalid(grpc::CallbackServerContext* context, const char* rpc,
                                    const Error& error) {
    shared_->invalid_requests.fetch_add(1);
    return finish_now(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                            fmt::format("{}: invalid request: {}", rpc, error.message)));
  }

  std::shared_ptr<Shared> shared_;
  std::weak_ptr<NodeServiceHandler> handler_;
};

// ---------------------------------------------------------------- GrpcServer

namespace {

// Blocking gRPC calls, run on a thread of their own.
asio::awaitable<void> shutdown_server(std::unique_ptr<grpc::Server> server,
                                      std::chrono::system_clock::time_point deadline) {
  server->Shutdown(deadline);
  server.reset();
  co_return;
}

}  // namespace

GrpcServer::GrpcServer(asio::any_io_executor executor, std::string id, GrpcServerOptions options,
                       std::weak_ptr<NodeServiceHandler> handler,
                       std::shared_ptr<resource::ResourceRegistry> registry,
                       resource::ResourceOptions resource_options)
    : resource::AsyncResource(executor, {std::move(id), "grpc_server", ""}, resource_options,
                              std::move(registry)),
      options_(std::move(options)),
      handler_(std::move(handler)),
      shared_(std::make_shared<Shared>(executor)),
      serving_(options_.serving_at_start) {
  if (options_.port < 0 || options_.port > 65535)
    throw std::invalid_argument("grpc server: port out of range");
  if (options_.max_message_bytes <= 0)
    throw std::invalid_argument("grpc server: max_message_bytes must be > 0");
}

GrpcServer::~GrpcServer() {
  shared_->accepting = false;
  {
    std::lock_guard lock(health_mutex_);
    health_ = nullptr;
  }
  // Not cleaned up: cancel everything at once. OnCancel finishes calls without waiting for Asio.
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
}

std::string GrpcServer::address() const {
  return host_port(options_.host, port());
}

void GrpcServer::set_serving(bool serving) {
  std::lock_guard lock(health_mutex_);
  serving_ = serving;
  apply_serving_locked();
}

void GrpcServer::apply_serving_locked() {
  if (!health_) return;
  const bool serving = serving_.load();
  health_->SetServingStatus("", serving);
  health_->SetServingStatus(kNodeServiceName, serving);
}

GrpcServer::Counters GrpcServer::counters() const noexcept {
  return {shared_->calls.load(), shared_->invalid_requests.load(), shared_->failed_calls.load(),
          shared_->running()};
}

asio::awaitable<void> GrpcServer::do_initialize() {
  static std::once_flag enable_health;
  std::call_once(enable_health, [] { grpc::EnableDefaultHealthCheckService(true); });

  auto service = std::make_unique<Service>(shared_, handler_);
  grpc::ServerBuilder builder;
  apply_server_settings(builder, options_.max_message_bytes);
  int selected_port = 0;
  const std::string requested = host_port(options_.host, options_.port);
  builder.AddListeningPort(requested, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(service.get());
  auto server = builder.BuildAndStart();
  if (!server || selected_port == 0) {
    if (server) server->Shutdown(std::chrono::system_clock::now());
    throw std::runtime_error(fmt::format("cannot listen on {} (address in use or not available)", requested));
  }
  bound_port_ = static_cast<unsigned short>(selected_port);
  service_ = std::move(service);
  server_ = std::move(server);
  {
    std::lock_guard lock(health_mutex_);
    health_ = server_->GetHealthCheckService();
    apply_serving_locked();
  }
  shared_->accepting = true;
  co_return;
}

asio::awaitable<void> GrpcServer::do_cleanup() {
  shared_->accepting = false;
  {
    std::lock_guard lock(health_mutex_);
    if (health_) health_->Shutdown();  // every status NOT_SERVING, frozen; watchers are told
    health_ = nullptr;
  }
  if (server_) {
    asio::thread_pool blocking(1);
    const auto deadline = std::chrono::system_clock::now() + options_.shutdown_grace;
    co_await asio::co_spawn(blocking, shutdown_server(std::move(server_), deadline), asio::use_awaitable);
  }
  service_.reset();
  // Calls cancelled by the shutdown deadline were finished at once; wait for their coroutines.
  const auto executor = co_await asio::this_coro::executor;
  for (;;) {
    std::shared_ptr<asio::steady_timer> waiter;
    {
      std::lock_guard lock(shared_->mutex);
      if (shared_->in_flight == 0) {
        shared_->idle_waiter.reset();
        break;
      }
      waiter = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
      shared_->idle_waiter = waiter;
    }
    co_await waiter->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  bound_port_ = 0;
}

asio::awaitable<resource::HealthStatus> GrpcServer::do_health_check() {
  if (!server_) co_return resource::HealthStatus{false, "not serving: no server"};
  if (handler_.expired()) co_return resource::HealthStatus{false, "the node behind the server is gone"};
  co_return resource::HealthStatus{true,
                                   fmt::format("listening on {}, {}, {} calls in flight", address(),
                                               serving() ? "SERVING" : "NOT_SERVING", shared_->running())};
}

std::map<std::string, std::string> GrpcServer::details() const {
  const auto c = counters();
  return {{"address", address()},
          {"serving", serving() ? "true" : "false"},
          {"calls", std::to_string(c.calls)},
          {"failed_calls", std::to_string(c.failed_calls)},
          {"invalid_requests", std::to_string(c.invalid_requests)},
          {"in_flight", std::to_string(c.in_flight)}};
}

}  // namespace exo::net
