// Converting a legacy class with start()/stop() into an AsyncResource.
//
// Before: `UdpMetricsSink` opened a socket in start() and closed it in stop(); nothing stopped a
// second start(), a send() after stop() crashed, and nobody could see whether it was working.
// After: the same class is a resource. start()/stop() survive as thin wrappers that delegate to
// initialize()/cleanup(), so existing callers keep working, while new code gets states,
// ensure_ready(), health checks and the registry.
//
// The program sends real datagrams over loopback to a receiver it owns, checks every step and exits
// 0 when everything behaved as described (1 otherwise).
#include <fmt/format.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <string>
#include <thread>

#include "resource/async_resource.h"
#include "resource/registry.h"

using namespace exo::resource;

class UdpMetricsSink : public AsyncResource {
 public:
  UdpMetricsSink(asio::any_io_executor executor, asio::ip::udp::endpoint target,
                 std::shared_ptr<ResourceRegistry> registry)
      : AsyncResource(executor, {"metrics-sink", "metrics_sink", "Metrics sink to " + to_text(target)}, {},
                      std::move(registry)),
        target_(target),
        socket_(strand()) {}

  // --- the legacy API, kept as delegating wrappers (call them from outside the event loop) ---
  void start() { asio::co_spawn(strand(), initialize(), asio::use_future).get(); }
  void stop() { asio::co_spawn(strand(), cleanup(), asio::use_future).get(); }

  // --- the resource API ---
  asio::awaitable<void> send(std::string metric) {
    co_await ensure_ready();  // every public operation starts here
    co_await socket_.async_send(asio::buffer(metric), asio::use_awaitable);
    ++sent_;
  }
  int sent() const { return sent_; }

 protected:
  asio::awaitable<void> do_initialize() override {
    socket_.open(asio::ip::udp::v4());
    socket_.connect(target_);
    co_return;
  }
  asio::awaitable<void> do_cleanup() override {
    asio::error_code ignored;
    socket_.close(ignored);
    co_return;
  }
  asio::awaitable<HealthStatus> do_health_check() override {
    co_return HealthStatus{socket_.is_open(), socket_.is_open() ? "socket open" : "socket closed"};
  }
  std::map<std::string, std::string> details() const override { return {{"target", to_text(target_)}}; }

 private:
  static std::string to_text(const asio::ip::udp::endpoint& e) {
    return e.address().to_string() + ":" + std::to_string(e.port());
  }
  asio::ip::udp::endpoint target_;
  asio::ip::udp::socket socket_;
  std::atomic<int> sent_{0};
};

int main() {
  asio::io_context context;
  auto work = asio::make_work_guard(context);
  std::thread loop([&] { context.run(); });
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    fmt::print("[{}] {}\n", ok ? " ok " : "FAIL", what);
    failures += ok ? 0 : 1;
  };

  asio::ip::udp::socket receiver(context, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto registry = std::make_shared<ResourceRegistry>();
  auto sink = make_resource<UdpMetricsSink>(context.get_executor(), receiver.local_endpoint(), registry);
  sink->add_listener([](const Transition& t) {
    fmt::print("       {} : {} -> {} ({})\n", t.resource_id, to_string(t.from), to_string(t.to), t.cause);
  });

  check(sink->state() == ResourceState::UNINITIALIZED, "a new sink is UNINITIALIZED");
  sink->start();  // legacy call, now initialize()
  check(sink->state() == ResourceState::READY, "start() delegates to initialize(): READY");
  sink->start();  // a second start is harmless: initialize() is idempotent
  check(sink->info().generation == 1, "a second start() did not initialize again");

  asio::co_spawn(context, sink->send("requests_total 1"), asio::use_future).get();
  char buffer[128];
  const std::size_t n = receiver.receive(asio::buffer(buffer));
  check(std::string(buffer, n) == "requests_total 1", "the datagram arrived over loopback");

  const auto health = asio::co_spawn(context, sink->check_health(), asio::use_future).get();
  check(health.healthy && health.detail == "socket open", "the health hook reports the socket");
  check(registry->find("metrics-sink") == sink, "the registry knows the sink by id");

  sink->stop();  // legacy call, now cleanup()
  check(sink->state() == ResourceState::CLOSED, "stop() delegates to cleanup(): CLOSED");
  bool refused = false;
  try {
    asio::co_spawn(context, sink->send("too late"), asio::use_future).get();
  } catch (const ClosedError& e) {
    refused = true;
    fmt::print("       send after stop: {}\n", e.what());
  }
  check(refused, "send() after stop() is refused with a clear error instead of crashing");

  asio::co_spawn(context, sink->reset(), asio::use_future).get();
  check(sink->state() == ResourceState::READY, "reset() is the one way back from CLOSED");
  sink->stop();

  work.reset();
  loop.join();
  fmt::print("{}\n",
             failures == 0 ? "async_resource_example: all checks passed" : "async_resource_example: FAILED");
  return failures == 0 ? 0 : 1;
}
