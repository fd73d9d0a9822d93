// A small service built from a group of real resources, on loopback:
//
//   echo-listener  (TCP acceptor + echo sessions)                      supervised, auto-recovers
//        ^
//   echo-client    (one connection; reconnects with backoff; pings)    supervised, auto-recovers
//        ^
//   ticker         (periodic worker sending a request every 10 ms)
//
// The program walks through: ordered start, ensure_ready() on every request, an injected slowdown
// (client DEGRADED, then recovered), an injected crash of the listener (ERROR, automatic recovery
// of both listener and client), the monitor's report, and ordered shutdown. It checks each step and
// exits 0 when everything happened as described (1 otherwise).
#include <fmt/format.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <functional>
#include <list>
#include <string>

#include "resource/registry.h"
#include "resource/resource_group.h"
#include "resource/resource_monitor.h"

using namespace exo::resource;
using namespace std::chrono_literals;
using asio::ip::tcp;

// ------------------------------------------------------------------------------------- listener

class EchoListener : public AsyncResource {
 public:
  EchoListener(asio::any_io_executor executor, ResourceOptions options,
               std::shared_ptr<ResourceRegistry> registry)
      : AsyncResource(executor, {"echo-listener", "listener", "Echo listener"}, options,
                      std::move(registry)) {}

  unsigned short port() const { return port_; }
  void set_delay(std::chrono::milliseconds delay) { delay_ = delay; }

  // Injected failure: drop the acceptor and every connection, as a crash would.
  void crash() {
    asio::post(strand(), [this] {
      close_all();
      report_failure("injected crash");
    });
  }

 protected:
  asio::awaitable<void> do_initialize() override {
    acceptor_ = std::make_unique<tcp::acceptor>(strand());
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port_);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(endpoint);  // the same port again after a recovery
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    spawn(accept_loop());
    co_return;
  }
  asio::awaitable<void> do_cleanup() override {
    close_all();
    co_return;
  }
  asio::awaitable<HealthStatus> do_health_check() override {
    const bool open = acceptor_ && acceptor_->is_open();
    co_return HealthStatus{open, open ? fmt::format("listening on port {}", port_) : "acceptor closed"};
  }
  std::map<std::string, std::string> details() const override {
    return {{"port", std::to_string(port_.load())}};
  }

 private:
  void close_all() {
    asio::error_code ignored;
    if (acceptor_) acceptor_->close(ignored);
    for (auto& socket : sessions_) socket->close(ignored);
    sessions_.clear();
  }
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket =
          std::make_shared<tcp::socket>(co_await acceptor_->async_accept(strand(), asio::use_awaitable));
      sessions_.push_back(socket);
      spawn(echo(socket));
    }
  }
  asio::awaitable<void> echo(std::shared_ptr<tcp::socket> socket) {
    asio::streambuf buffer;
    for (;;) {
      const std::size_t n = co_await asio::async_read_until(*socket, buffer, '\n', asio::use_awaitable);
      std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n);
      buffer.consume(n);
      if (delay_.load() > 0ms) co_await sleep_for(delay_.load());
      co_await asio::async_write(*socket, asio::buffer(line), asio::use_awaitable);
    }
  }

  std::unique_ptr<tcp::acceptor> acceptor_;
  std::list<std::shared_ptr<tcp::socket>> sessions_;
  std::atomic<unsigned short> port_{0};
  std::atomic<std::chrono::milliseconds> delay_{0ms};
};

// ------------------------------------------------------------------------------------- client

class EchoClient : public AsyncResource {
 public:
  EchoClient(asio::any_io_executor executor, std::function<unsigned short()> port, ResourceOptions options,
             std::shared_ptr<ResourceRegistry> registry)
      : AsyncResource(executor, {"echo-client", "client", "Echo client"}, options, std::move(registry)),
        port_(std::move(port)),
        socket_(strand()) {}

  // Sends one line and returns the echo. Every public operation starts with ensure_ready().
  asio::awaitable<std::string> request(std::string line) {
    co_await ensure_ready();
    auto self = std::static_pointer_cast<EchoClient>(shared_from_this());
    co_return co_await asio::co_spawn(strand(), self->exchange(std::move(line) + "\n", false),
                                      asio::use_awaitable);
  }

 protected:
  asio::awaitable<void> do_initialize() override {
    socket_ = tcp::socket(strand());
    co_await socket_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_()),
                                   asio::use_awaitable);
  }
  asio::awaitable<void> do_cleanup() override {
    asio::error_code ignored;
    socket_.close(ignored);
    co_return;
  }
  // Pings over the same connection, unless a request is using it right now.
  asio::awaitable<HealthStatus> do_health_check() override {
    if (busy_) co_return HealthStatus{true, "connection busy with a request"};
    const auto started = Clock::now();
    const std::string echo = co_await exchange("ping\n", true);
    co_return HealthStatus{echo == "ping\n",
                           fmt::format("ping answered in {}", format_duration(Clock::now() - started))};
  }

 private:
  // Runs on the strand; one exchange at a time (the health check skips while busy_).
  asio::awaitable<std::string> exchange(std::string line, bool probe) {
    if (busy_) throw std::runtime_error("connection busy");
    busy_ = true;
    try {
      co_await asio::async_write(socket_, asio::buffer(line), asio::use_awaitable);
      const std::size_t n = co_await asio::async_read_until(socket_, buffer_, '\n', asio::use_awaitable);
      std::string reply(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + n);
      buffer_.consume(n);
      busy_ = false;
      co_return reply;
    } catch (const std::system_error& e) {
      busy_ = false;
      // A cancelled probe (health timeout) leaves the stream in an unknown state: start afresh.
      asio::error_code ignored;
      socket_.close(ignored);
      buffer_.consume(buffer_.size());
      if (!probe) report_failure(std::string("connection lost: ") + e.what());
      throw;
    }
  }

  std::function<unsigned short()> port_;
  tcp::socket socket_;
  asio::streambuf buffer_;
  bool busy_ = false;
};

// ------------------------------------------------------------------------------------- worker

class Ticker : public AsyncResource {
 public:
  Ticker(asio::any_io_executor executor, std::shared_ptr<EchoClient> client,
         std::shared_ptr<ResourceRegistry> registry)
      : AsyncResource(executor, {"ticker", "worker", "Periodic ticker"}, {}, std::move(registry)),
        client_(std::move(client)) {}
  int ok() const { return ok_; }
  int failed() const { return failed_; }

 protected:
  asio::awaitable<void> do_initialize() override {
    spawn(loop());
    co_return;
  }
  asio::awaitable<void> do_cleanup() override { co_return; }

 private:
  asio::awaitable<void> loop() {
    for (int n = 0;; ++n) {
      co_await sleep_for(10ms);
      try {
        const std::string reply = co_await client_->request(fmt::format("tick {}", n));
        ok_ += reply == fmt::format("tick {}\n", n) ? 1 : 0;
      } catch (const std::exception&) {
        ++failed_;  // the client reports and recovers; the ticker just carries on
      }
    }
  }
  std::shared_ptr<EchoClient> client_;
  std::atomic<int> ok_{0};
  std::atomic<int> failed_{0};
};

// ------------------------------------------------------------------------------------- scenario

int main() {
  asio::io_context context;
  auto registry = std::make_shared<ResourceRegistry>();
  auto monitor = make_resource<ResourceMonitor>(
      context.get_executor(), registry,
      MonitorOptions{.sweep_interval = 50ms, .probe_timeout = 1s, .history_capacity = 256});

  ResourceOptions supervised;
  supervised.supervision.health_interval = 20ms;
  supervised.supervision.auto_recover = true;
  supervised.supervision.recovery_backoff = {.initial = 10ms, .multiplier = 2.0, .max = 200ms, .jitter = 0.2};
  supervised.supervision.max_restarts = 10;
  supervised.health.timeout = 50ms;
  supervised.health.successes_to_recover = 2;
  supervised.health.failures_to_error = 0;  // slowness degrades; only a lost connection is an ERROR
  supervised.init_timeout = 1s;
  supervised.init_retry.max_attempts = 5;
  supervised.init_retry.backoff = {.initial = 10ms, .multiplier = 2.0, .max = 100ms, .jitter = 0.2};

  auto listener = make_resource<EchoListener>(context.get_executor(), supervised, registry);
  auto client = make_resource<EchoClient>(
      context.get_executor(), [listener] { return listener->port(); }, supervised, registry);
  auto ticker = make_resource<Ticker>(context.get_executor(), client, registry);
  auto service =
      make_resource<ResourceGroup>(context.get_executor(), ResourceIdentity{"echo-service", "group", ""},
                                   ResourceGroup::group_defaults(), registry);
  service->add("listener", listener);
  service->add("client", client, {.depends_on = {"listener"}});
  service->add("ticker", ticker, {.depends_on = {"client"}});

  std::vector<std::string> seen;  // "id:STATE"
  registry->add_observer([&](const Transition& t) {
    seen.push_back(t.resource_id + ":" + std::string(to_string(t.to)));
    fmt::print("  {:<14} {:>13} -> {:<13} {}\n", t.resource_id, to_string(t.from), to_string(t.to), t.cause);
  });
  auto saw = [&](const std::string& what) { return std::find(seen.begin(), seen.end(), what) != seen.end(); };

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    fmt::print("[{}] {}\n", ok ? " ok " : "FAIL", what);
    failures += ok ? 0 : 1;
  };
  // Runs the event loop until `done` holds or `limit` passes.
  auto run_until = [&](const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done() && Clock::now() < deadline) {
      if (context.stopped()) context.restart();
      context.run_one_for(10ms);
    }
    return done();
  };
  auto run = [&](asio::awaitable<void> operation) {
    bool finished = false;
    std::exception_ptr error;
    asio::co_spawn(context, std::move(operation), [&](std::exception_ptr e) {
      finished = true;
      error = e;
    });
    run_until([&] { return finished; }, 10s);
    if (error) std::rethrow_exception(error);
  };

  fmt::print("1. Start the service (dependency order)\n");
  run(monitor->initialize());
  run(service->initialize());
  check(service->state() == ResourceState::READY, "the service group is READY");
  check(run_until([&] { return ticker->ok() >= 5; }, 5s), "the ticker's requests are answered");

  fmt::print("2. Inject a slowdown: pings take longer than the health timeout\n");
  listener->set_delay(120ms);
  check(run_until([&] { return client->state() == ResourceState::DEGRADED; }, 5s), "the client is DEGRADED");
  check(run_until([&] { return service->state() == ResourceState::DEGRADED; }, 5s),
        "the group rolls up to DEGRADED");
  listener->set_delay(0ms);
  check(run_until([&] { return client->state() == ResourceState::READY; }, 5s),
        "the client recovered to READY");

  fmt::print("3. Inject a crash of the listener\n");
  const int before = ticker->ok();
  listener->crash();
  check(run_until([&] { return saw("echo-listener:ERROR"); }, 5s), "the listener reports ERROR");
  check(run_until([&] { return listener->info().restarts >= 1 && listener->state() == ResourceState::READY; },
                  5s),
        "its supervisor restarted it");
  check(run_until([&] { return saw("echo-client:ERROR") && client->state() == ResourceState::READY; }, 5s),
        "the client lost its connection, then reconnected");
  check(run_until([&] { return service->state() == ResourceState::READY && ticker->ok() > before + 5; }, 5s),
        "the service is READY and serving again");

  fmt::print("4. Monitor report\n");
  run([](std::shared_ptr<ResourceMonitor> m) -> asio::awaitable<void> {
    (void)co_await m->sweep();
  }(monitor));
  fmt::print("{}\n", monitor->report());

  fmt::print("5. Ordered shutdown (reverse dependency order)\n");
  const std::size_t mark = seen.size();
  run(service->cleanup());
  std::vector<std::string> closed;
  for (std::size_t i = mark; i < seen.size(); ++i) {
    if (seen[i].ends_with(":CLOSED")) closed.push_back(seen[i].substr(0, seen[i].find(':')));
  }
  check(closed.size() >= 3 && closed[0] == "ticker" && closed[1] == "echo-client" &&
            closed[2] == "echo-listener",
        "closed ticker, then client, then listener");
  run(monitor->cleanup());
  context.restart();
  context.run();  // returns only when nothing is left running
  check(context.stopped(), "no task outlived its resource: the event loop ran out of work");
  fmt::print("ticker: {} answered, {} failed while the service was recovering\n", ticker->ok(),
             ticker->failed());
  fmt::print("{}\n", failures == 0 ? "resource_management_example: all checks passed"
                                   : "resource_management_example: FAILED");
  return failures == 0 ? 0 : 1;
}
