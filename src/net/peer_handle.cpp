#include "net/peer_handle.h"

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <system_error>

#include "net/grpc_messages.h"
#include "net/node_service.grpc.pb.h"
#include "net/proto_convert.h"
#include "resource/timeouts.h"

namespace exo::net {

// The calls in flight on one channel. Cleanup closes it, cancels them and waits until their
// completions have run on the executor (each gRPC callback only posts its completion, which calls
// end()), so that no gRPC callback posts to an executor after the peer handle's cleanup: the
// io_context may be gone by then. Holds no Asio object, so a gRPC thread may drop the last
// reference. Thread-safe.
class CallTracker {
 public:
  // False once closed: the call must not start. The tracker keeps the context alive until end(), so
  // close() never cancels a destroyed context.
  bool begin(std::shared_ptr<grpc::ClientContext> context) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    grpc::ClientContext* key = context.get();
    contexts_.emplace(key, std::move(context));
    return true;
  }
  void end(grpc::ClientContext* context) {
    std::shared_ptr<grpc::ClientContext> last;  // released after the lock
    std::lock_guard lock(mutex_);
    const auto it = contexts_.find(context);
    if (it == contexts_.end()) return;
    last = std::move(it->second);
    contexts_.erase(it);
  }
  // Refuses new calls and cancels the running ones (their callbacks follow on gRPC threads).
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (const auto& [raw, context] : contexts_) context->TryCancel();
  }
  bool idle() {
    std::lock_guard lock(mutex_);
    return contexts_.empty();
  }

 private:
  std::mutex mutex_;
  bool closed_ = false;  // guarded by mutex_
  // Guarded by mutex_: the calls whose gRPC callback has not finished.
  std::map<grpc::ClientContext*, std::shared_ptr<grpc::ClientContext>> contexts_;
};

struct PeerHandle::Stub {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<node_service::NodeService::Stub> stub;
  std::shared_ptr<CallTracker> calls = std::make_shared<CallTracker>();
};

namespace {

using Async = node_service::NodeService::StubInterface::async_interface;
using Done = std::function<void(grpc::Status)>;

std::string_view code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNRECOGNIZED";
  }
}

// Status codes that say something about the peer or the link (the breaker counts them).
bool is_transport_failure(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

template <typename Response>
struct UnaryOutcome {
  grpc::Status status;
  Response response;
  bool cancelled_locally = false;
};

// One unary call on gRPC's callback API, completing an Asio handler on the handler's executor.
// Cancellation of the handler's slot becomes ClientContext::TryCancel.
template <typename Request, typename Response>
struct UnaryInitiation {
  using Invoke = void (*)(Async*, grpc::ClientContext*, const Request*, Response*, Done);

  std::shared_ptr<PeerHandle::Stub> stub;
  Invoke invoke;
  Request request;
  std::chrono::milliseconds timeout;
  bool wait_for_ready;
  bool uncompressed;  // overrides the channel's gzip default for this call

  struct Call {
    grpc::ClientContext context;
    Request request;
    Response response;
    std::atomic<bool> cancelled{false};
  };

  template <typename Handler>
  struct Pending {
    Handler handler;
    asio::executor_work_guard<asio::associated_executor_t<Handler>> work;
    std::shared_ptr<Call> call;
    std::shared_ptr<PeerHandle::Stub> stub;  // keeps the channel alive until the call ends
  };

  template <typename Handler>
  void operator()(Handler&& handler) {
    auto call = std::make_shared<Call>();
    call->request = std::move(request);
    call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    call->context.set_wait_for_ready(wait_for_ready);
    if (uncompressed) call->context.set_compression_algorithm(GRPC_COMPRESS_NONE);
    auto tracker = stub->calls;
    if (!tracker->begin(std::shared_ptr<grpc::ClientContext>(call, &call->context))) {
      // The handle is being cleaned up: the call fails at once without reaching gRPC.
      auto executor = asio::get_associated_executor(handler);
      asio::post(executor, [handler = std::forward<Handler>(handler)]() mutable {
        std::move(handler)(UnaryOutcome<Response>{
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "the peer handle is closing"), Response(), false});
      });
      return;
    }
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([call](asio::cancellation_type /*type*/) {
        call->cancelled = true;
        call->context.TryCancel();
      });
    }
    auto work = asio::make_work_guard(asio::get_associated_executor(handler));
    using HandlerType = std::decay_t<Handler>;
    auto pending = std::make_shared<Pending<HandlerType>>(
        Pending<HandlerType>{std::forward<Handler>(handler), std::move(work), call, stub});
    grpc::ClientContext* context = &call->context;
    // The gRPC callback only posts: everything else, end() included, runs on the executor. So the
    // call (whose ClientContext holds a reference to the channel) is always destroyed there, never
    // on a gRPC thread: the last reference to a channel dropped on one of gRPC's callback threads
    // makes gRPC 1.51 shut its callback queue down from that very thread (it cannot join itself) and
    // free the queue twice. And end() runs inside a handler, so the io_context is alive for it.
    invoke(stub->stub->async(), context, &call->request, &call->response,
           [pending, tracker, context](grpc::Status status) mutable {
             auto owned = std::move(pending);
             auto executor = owned->work.get_executor();
             asio::post(executor, [owned = std::move(owned), tracker = std::move(tracker), context,
                                   status = std::move(status)]() mutable {
               tracker->end(context);  // the call stays alive through `owned`
               auto handler_slot = asio::get_associated_cancellation_slot(owned->handler);
               if (handler_slot.is_connected()) handler_slot.clear();
               UnaryOutcome<Response> outcome{std::move(status), std::move(owned->call->response),
                                              owned->call->cancelled.load()};
               owned->work.reset();
               std::move(owned->handler)(std::move(outcome));
             });
           });
  }
};

template <typename Response, typename Request>
asio::awaitable<UnaryOutcome<Response>> unary_call(std::shared_ptr<PeerHandle::Stub> stub,
                                                   typename UnaryInitiation<Request, Response>::Invoke invoke,
                                                   Request request, std::chrono::milliseconds timeout,
                                                   bool wait_for_ready, bool uncompressed = false) {
  UnaryInitiation<Request, Response> initiation{std::move(stub), invoke,         std::move(request),
                                                timeout,         wait_for_ready, uncompressed};
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(UnaryOutcome<Response>)>(
      std::move(initiation), asio::use_awaitable);
}

void invoke_send_prompt(Async* a, grpc::ClientContext* c, const node_service::PromptRequest* r,
                        node_service::Tensor* p, Done d) {
  a->SendPrompt(c, r, p, std::move(d));
}
void invoke_send_tensor(Async* a, grpc::ClientContext* c, const node_service::TensorRequest* r,
                        node_service::Tensor* p, Done d) {
  a->SendTensor(c, r, p, std::move(d));
}
void invoke_send_example(Async* a, grpc::ClientContext* c, const node_service::ExampleRequest* r,
                         node_service::Loss* p, Done d) {
  a->SendExample(c, r, p, std::move(d));
}
void invoke_collect_topology(Async* a, grpc::ClientContext* c, const node_service::CollectTopologyRequest* r,
                             node_service::Topology* p, Done d) {
  a->CollectTopology(c, r, p, std::move(d));
}
void invoke_send_result(Async* a, grpc::ClientContext* c, const node_service::SendResultRequest* r,
                        node_service::Empty* p, Done d) {
  a->SendResult(c, r, p, std::move(d));
}
void invoke_send_opaque_status(Async* a, grpc::ClientContext* c,
                               const node_service::SendOpaqueStatusRequest* r, node_service::Empty* p,
                               Done d) {
  a->SendOpaqueStatus(c, r, p, std::move(d));
}
void invoke_health_check(Async* a, grpc::ClientContext* c, const node_service::HealthCheckRequest* r,
                         node_service::HealthCheckResponse* p, Done d) {
  a->HealthCheck(c, r, p, std::move(d));
}

}  // namespace

resource::ResourceOptions default_peer_resource_options() {
  using namespace std::chrono_literals;
  resource::ResourceOptions options;
  options.init_timeout = 30s;
  options.cleanup_timeout = 10s;
  options.error_policy = resource::ErrorPolicy::FAIL;
  options.health.timeout = 6s;
  options.health.failures_to_degrade = 1;
  options.health.failures_to_error = 2;
  options.supervision.health_interval = 5s;
  options.supervision.auto_recover = true;
  options.supervision.recovery_backoff = {.initial = 500ms, .multiplier = 2.0, .max = 30s, .jitter = 0.2};
  options.supervision.max_restarts = 1000;
  options.supervision.restart_period = 60s;
  return options;
}

PeerHandle::PeerHandle(asio::any_io_executor executor, std::string node_id, std::string address,
                       std::string description, topology::DeviceCapabilities capabilities,
                       PeerOptions options, std::shared_ptr<resource::ResourceRegistry> registry,
                       resource::ResourceOptions resource_options)
    : resource::AsyncResource(
          std::move(executor),
          {"peer-" + node_id, "peer_handle", fmt::format("peer '{}' at {}", node_id, address)},
          resource_options, std::move(registry)),
      node_id_(std::move(node_id)),
      address_(std::move(address)),
      description_(std::move(description)),
      capabilities_(std::move(capabilities)),
      options_(std::move(options)),
      breaker_(options_.breaker, options_.breaker_clock) {
  if (node_id_.empty()) throw std::invalid_argument("peer handle: empty node id");
  if (address_.empty()) throw std::invalid_argument("peer handle: empty address");
}

PeerHandle::~PeerHandle() = default;

bool PeerHandle::available() const {
  return state() == resource::ResourceState::READY && breaker_.allows_calls();
}

std::shared_ptr<PeerHandle::Stub> PeerHandle::stub(const char* rpc) const {
  std::lock_guard lock(stub_mutex_);
  if (!stub_) {
    throw resource::UnavailableError(
        id(), fmt::format("{} to peer '{}' at {}: not connected", rpc, node_id_, address_));
  }
  return stub_;
}

CircuitBreaker::Permit PeerHandle::take_permit(const char* rpc) {
  auto permit = breaker_.try_acquire();
  if (permit) return *permit;
  const auto snapshot = breaker_.snapshot();
  throw CircuitOpenError(
      id(), fmt::format("{} to peer '{}' at {} refused: circuit breaker {} ({}), last error: {}", rpc,
                        node_id_, address_, to_string(snapshot.state),
                        snapshot.state == CircuitState::HALF_OPEN
                            ? std::string("a trial call is in flight")
                            : fmt::format("retry in {}", resource::format_duration(snapshot.retry_after)),
                        snapshot.last_error.empty() ? "none" : snapshot.last_error));
}

asio::awaitable<PeerHandle::Admission> PeerHandle::admit(const char* rpc) {
  if (!breaker_.allows_calls()) take_permit(rpc);  // throws CircuitOpenError with the details
  if (!ready()) co_await ensure_ready();
  auto current = stub(rpc);
  co_return Admission(&breaker_, take_permit(rpc), std::move(current));
}

void PeerHandle::settle(const char* rpc, Admission& admission, const grpc::Status& status,
                        bool cancelled_locally) {
  admission.breaker = nullptr;  // settled here, whatever the outcome
  const CircuitBreaker::Permit permit = admission.permit;
  if (status.ok()) {
    breaker_.record_success(permit);
    calls_ok_.fetch_add(1);
    return;
  }
  calls_failed_.fetch_add(1);
  if (cancelled_locally) {
    breaker_.release(permit);
    throw std::system_error(asio::error::operation_aborted,
                            fmt::format("{} to peer '{}' cancelled by the caller", rpc, node_id_));
  }
  const auto code = status.error_code();
  std::string message = fmt::format("{} to peer '{}' at {} failed: {} ({})", rpc, node_id_, address_,
                                    status.error_message(), code_name(code));
  if (is_transport_failure(code)) {
    if (breaker_.record_failure(permit, message)) {
      report_failure(fmt::format("circuit breaker opened after {} consecutive failures; last: {}",
                                 breaker_.snapshot().consecutive_failures, message));
    }
  } else {
    breaker_.record_success(permit);  // the peer answered: the link is fine
  }
  throw PeerRpcError(id(), code, message);
}

void PeerHandle::bad_response(const char* rpc, const std::string& why) {
  throw PeerRpcError(
      id(), grpc::StatusCode::INTERNAL,
      fmt::format("{} to peer '{}' at {}: invalid response: {}", rpc, node_id_, address_, why));
}

asio::awaitable<std::optional<Tensor>> PeerHandle::send_prompt(PromptCall call) {
  auto self = shared_from_this();
  auto request = encode_prompt_call(call);
  auto admission = co_await admit("SendPrompt");
  auto outcome = co_await unary_call<node_service::Tensor>(
      std::move(admission.stub), &invoke_send_prompt, std::move(request), options_.timeouts.prompt, false);
  settle("SendPrompt", admission, outcome.status, outcome.cancelled_locally);
  auto decoded = decode_optional_tensor(outcome.response);
  if (!decoded) bad_response("SendPrompt", decoded.error().message);
  co_return std::move(decoded).value();
}

asio::awaitable<std::optional<Tensor>> PeerHandle::send_tensor(TensorCall call) {
  auto self = shared_from_this();
  auto request = encode_tensor_call(call);
  auto admission = co_await admit("SendTensor");
  auto outcome = co_await unary_call<node_service::Tensor>(std::move(admission.stub), &invoke_send_tensor,
                                                           std::move(request), options_.timeouts.tensor,
                                                           false, !options_.channel.compress_tensors);
  settle("SendTensor", admission, outcome.status, outcome.cancelled_locally);
  auto decoded = decode_optional_tensor(outcome.response);
  if (!decoded) bad_response("SendTensor", decoded.error().message);
  co_return std::move(decoded).value();
}

asio::awaitable<LossResult> PeerHandle::send_example(ExampleCall call) {
  auto self = shared_from_this();
  auto request = encode_example_call(call);
  auto admission = co_await admit("SendExample");
  auto outcome = co_await unary_call<node_service::Loss>(
      std::move(admission.stub), &invoke_send_example, std::move(request), options_.timeouts.example, false);
  settle("SendExample", admission, outcome.status, outcome.cancelled_locally);
  auto decoded = decode_loss(outcome.response);
  if (!decoded) bad_response("SendExample", decoded.error().message);
  co_return std::move(decoded).value();
}

asio::awaitable<topology::Topology> PeerHandle::collect_topology(std::vector<std::string> visited,
                                                                 std::int32_t max_depth) {
  auto self = shared_from_this();
  TopologyQuery query;
  query.visited = std::move(visited);
  query.max_depth = max_depth;
  auto request = encode_topology_query(query);
  auto admission = co_await admit("CollectTopology");
  auto outcome =
      co_await unary_call<node_service::Topology>(std::move(admission.stub), &invoke_collect_topology,
                                                  std::move(request), options_.timeouts.topology, false);
  settle("CollectTopology", admission, outcome.status, outcome.cancelled_locally);
  auto decoded = topology_from_proto(outcome.response);
  if (!decoded) bad_response("CollectTopology", decoded.error().message);
  co_return std::move(decoded).value();
}

asio::awaitable<void> PeerHandle::send_result(std::string request_id, std::vector<std::int32_t> tokens,
                                              bool is_finished, std::optional<Tensor> tensor) {
  auto self = shared_from_this();
  ResultCall call;
  call.request_id = std::move(request_id);
  call.tokens = std::move(tokens);
  call.tensor = std::move(tensor);
  call.is_finished = is_finished;
  auto request = encode_result_call(call);
  auto admission = co_await admit("SendResult");
  auto outcome = co_await unary_call<node_service::Empty>(
      std::move(admission.stub), &invoke_send_result, std::move(request), options_.timeouts.result, false);
  settle("SendResult", admission, outcome.status, outcome.cancelled_locally);
}

asio::awaitable<void> PeerHandle::send_opaque_status(std::string request_id, nlohmann::json status) {
  auto self = shared_from_this();
  OpaqueStatusCall call;
  call.request_id = std::move(request_id);
  call.status = std::move(status);
  auto request = encode_opaque_status_call(call);  // std::invalid_argument before any RPC
  auto admission = co_await admit("SendOpaqueStatus");
  auto outcome =
      co_await unary_call<node_service::Empty>(std::move(admission.stub), &invoke_send_opaque_status,
                                               std::move(request), options_.timeouts.opaque_status, false);
  settle("SendOpaqueStatus", admission, outcome.status, outcome.cancelled_locally);
}

asio::awaitable<bool> PeerHandle::health_rpc(const char* rpc, bool wait_for_ready,
                                             std::chrono::milliseconds timeout) {
  auto current = stub(rpc);
  Admission admission(&breaker_, take_permit(rpc), std::move(current));
  auto outcome = co_await unary_call<node_service::HealthCheckResponse>(
      admission.stub, &invoke_health_check, node_service::HealthCheckRequest(), timeout, wait_for_ready);
  settle(rpc, admission, outcome.status, outcome.cancelled_locally);
  co_return outcome.response.is_healthy();
}

asio::awaitable<bool> PeerHandle::health_check() {
  auto self = shared_from_this();
  try {
    if (!ready()) co_await ensure_ready();
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) throw;
    co_return false;
  } catch (...) {
    co_return false;
  }
  bool healthy = false;
  try {
    healthy = co_await health_rpc("HealthCheck", false, options_.timeouts.health);
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted) throw;
  } catch (...) {
    healthy = false;
  }
  co_return healthy;
}

asio::awaitable<void> PeerHandle::do_initialize() {
  auto channel = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(),
                                           make_channel_arguments(options_.channel));
  auto created = std::make_shared<Stub>();
  created->channel = channel;
  created->stub = node_service::NodeService::NewStub(channel);
  {
    std::lock_guard lock(stub_mutex_);
    stub_ = std::move(created);
  }
  bool healthy = false;
  try {
    healthy = co_await health_rpc("connect (HealthCheck)", true, options_.timeouts.connect);
  } catch (const PeerRpcError& e) {
    if (e.code() != grpc::StatusCode::DEADLINE_EXCEEDED) throw;
    throw std::runtime_error(fmt::format("could not connect to peer '{}' at {} within {}", node_id_, address_,
                                         resource::format_duration(options_.timeouts.connect)));
  }
  if (!healthy) {
    throw std::runtime_error(
        fmt::format("peer '{}' at {} is reachable but reports not healthy", node_id_, address_));
  }
}

asio::awaitable<void> PeerHandle::do_cleanup() {
  std::shared_ptr<Stub> closing;
  {
    std::lock_guard lock(stub_mutex_);
    closing = std::move(stub_);
  }
  if (!closing) co_return;
  // Cancel the calls in flight and wait for their callbacks (bounded: gRPC answers a cancel at once).
  closing->calls->close();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!closing->calls->idle() && std::chrono::steady_clock::now() < give_up)
    co_await resource::sleep_for(std::chrono::milliseconds(1));
}

asio::awaitable<resource::HealthStatus> PeerHandle::do_health_check() {
  const bool healthy = co_await health_rpc("HealthCheck", false, options_.timeouts.health);
  co_return resource::HealthStatus{healthy, healthy ? "peer answers healthy" : "peer answers not healthy"};
}

std::map<std::string, std::string> PeerHandle::details() const {
  const auto snapshot = breaker_.snapshot();
  std::map<std::string, std::string> out{
      {"node_id", node_id_},
      {"address", address_},
      {"description", description_},
      {"memory_mb", std::to_string(capabilities_.memory_mb)},
      {"circuit", std::string(to_string(snapshot.state))},
      {"consecutive_failures", std::to_string(snapshot.consecutive_failures)},
      {"times_opened", std::to_string(snapshot.times_opened)},
      {"calls_ok", std::to_string(calls_ok_.load())},
      {"calls_failed", std::to_string(calls_failed_.load())}};
  if (!snapshot.last_error.empty()) out.emplace("last_rpc_error", snapshot.last_error);
  return out;
}

}  // namespace exo::net
