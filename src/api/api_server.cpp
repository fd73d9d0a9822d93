#include "api/api_server.h"

#include "api/web_ui.h"

#include <httplib.h>

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <random>

#include "api/openai.h"
#include "resource/errors.h"

namespace exo::api {
namespace {

using Clock = std::chrono::steady_clock;

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}{:016x}", prefix, rng());
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& type = "invalid_request_error") {
  send_json(res, status, error_body(message, type, status));
}

bool is_loopback(const std::string& address) {
  return address == "127.0.0.1" || address == "::1" || address.rfind("127.", 0) == 0 ||
         address == "::ffff:127.0.0.1";
}

std::string sse(const nlohmann::json& body) {
  return "data: " + body.dump() + "\n\n";
}

}  // namespace

ApiServer::ApiServer(asio::any_io_executor executor, std::string id, ApiOptions options,
                     std::weak_ptr<Backend> backend, std::shared_ptr<resource::ResourceRegistry> registry)
    : AsyncResource(std::move(executor), {std::move(id), "api_server", "HTTP API"}, {}, std::move(registry)),
      options_(std::move(options)),
      backend_(std::move(backend)) {
  if (options_.port < 0 || options_.port > 65535) {
    throw std::invalid_argument(fmt::format("API port {} is out of range 0..65535", options_.port));
  }
}

ApiServer::~ApiServer() {
  stop_server();
}

void ApiServer::stop_server() noexcept {
  if (server_) server_->stop();
  if (listener_.joinable()) listener_.join();
  server_.reset();
}

asio::awaitable<void> ApiServer::do_initialize() {
  auto server = std::make_unique<httplib::Server>();
  const std::size_t workers = options_.worker_threads;
  server->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server->set_payload_max_length(options_.max_body_bytes);
  server->set_keep_alive_max_count(1000);
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which lets a second node silently
  // share the port instead of failing with "address in use". The descriptor is kept to widen the
  // listen backlog below.
  auto listening_socket = std::make_shared<int>(-1);
  server->set_socket_options([listening_socket](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listening_socket = sock;
  });
  register_routes(*server);
  int port = options_.port;
  if (port == 0) {
    port = server->bind_to_any_port(options_.host);
  } else if (!server->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{} (address in use or not available)",
                                         options_.host, options_.port));
  }
  // httplib listens with a backlog of 5, so a burst of clients (64 streaming chats at once) overflows
  // the accept queue and connections are reset. listen() again on the bound socket widens it.
  if (*listening_socket >= 0) ::listen(*listening_socket, SOMAXCONN);
  bound_port_ = static_cast<unsigned short>(port);
  server_ = std::move(server);
  listener_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
  // httplib's stop() does nothing until the listener thread has started serving, so a cleanup right
  // after initialization (`exo run` answers one prompt and stops) would leave that thread blocked
  // in accept() and the join hanging. READY therefore means serving.
  asio::steady_timer poll(co_await asio::this_coro::executor);
  for (int waited_ms = 0; !server_->is_running(); ++waited_ms) {
    if (waited_ms >= 10000) throw std::runtime_error("the HTTP server did not start serving within 10 s");
    poll.expires_after(std::chrono::milliseconds(1));
    co_await poll.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> ApiServer::do_cleanup() {
  // Stopping joins the server's threads: do it on a thread of its own, never on the event loop.
  asio::thread_pool blocking(1);
  co_await asio::co_spawn(
      blocking,
      [](ApiServer* self) -> asio::awaitable<void> {
        self->stop_server();
        co_return;
      }(this),
      asio::use_awaitable);
  blocking.join();
}

asio::awaitable<resource::HealthStatus> ApiServer::do_health_check() {
  const bool running = server_ && server_->is_running();
  co_return resource::HealthStatus{running, running ? fmt::format("serving on {}:{}", options_.host, port())
                                                    : "HTTP server is not running"};
}

std::map<std::string, std::string> ApiServer::details() const {
  return {{"address", fmt::format("{}:{}", options_.host, port())}};
}

bool ApiServer::allow_origin(const httplib::Request& req, httplib::Response& res) const {
  const std::string origin = req.get_header_value("Origin");
  if (origin.empty()) return false;
  for (const auto& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) {
      res.set_header("Access-Control-Allow-Origin", allowed == "*" ? "*" : origin);
      return true;
    }
  }
  return false;
}

void ApiServer::register_routes(httplib::Server& server) {
  auto backend_or_503 = [this](httplib::Response& res) -> std::shared_ptr<Backend> {
    auto backend = backend_.lock();
    if (!backend) send_error(res, 503, "the node is shutting down", "service_unavailable");
    return backend;
  };
  // Wraps a handler: CORS headers, metrics, and a JSON 500 for anything unexpected.
  auto route = [this](std::string name,
                      std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    return [this, name = std::move(name), handler = std::move(handler)](const httplib::Request& req,
                                                                        httplib::Response& res) {
      const auto started = Clock::now();
      if (allow_origin(req, res)) res.set_header("Vary", "Origin");
      try {
        handler(req, res);
      } catch (const RequestError& e) {
        send_error(res, e.status(), e.what(), e.type());
      } catch (const std::out_of_range& e) {
        send_error(res, 404, e.what(), "not_found_error");
      } catch (const std::invalid_argument& e) {
        send_error(res, 400, e.what());
      } catch (const resource::TimeoutError& e) {
        send_error(res, 504, e.what(), "timeout_error");
      } catch (const resource::ResourceError& e) {
        send_error(res, 503, e.what(), "service_unavailable");
      } catch (const std::exception& e) {
        send_error(res, 500, e.what(), "internal_error");
      }
      metrics_.record(name, res.status, Clock::now() - started);
    };
  };
  auto admin_allowed = [this](const httplib::Request& req, httplib::Response& res) {
    if (is_loopback(req.remote_addr)) return true;
    if (!options_.admin_token.empty() &&
        req.get_header_value("Authorization") == "Bearer " + options_.admin_token) {
      return true;
    }
    send_error(res, 403,
               options_.admin_token.empty() ? "admin actions are accepted only from loopback"
                                            : "admin actions need \"Authorization: Bearer <admin token>\"",
               "permission_error");
    return false;
  };

  server.Options(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    if (allow_origin(req, res)) {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
      res.set_header("Access-Control-Max-Age", "3600");
    }
    res.status = 204;
  });

  server.Get("/healthz", route("/healthz", [](const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, {{"status", "alive"}});
             }));
  server.Get("/healthcheck", route("/healthcheck", [](const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, {{"status", "ok"}});
             }));
  server.Get("/readyz", route("/readyz", [backend_or_503](const httplib::Request&, httplib::Response& res) {
               auto backend = backend_or_503(res);
               if (!backend) return;
               const Readiness r = backend->readiness();
               send_json(res, r.ready ? 200 : 503,
                         {{"status", r.ready ? "ready" : "not ready"}, {"reason", r.reason}});
             }));

  auto models = route("/v1/models", [backend_or_503](const httplib::Request&, httplib::Response& res) {
    if (auto backend = backend_or_503(res))
      send_json(res, 200, {{"object", "list"}, {"data", backend->models()}});
  });
  server.Get("/v1/models", models);
  server.Get("/models", models);

  auto topology = route("/v1/topology", [backend_or_503](const httplib::Request&, httplib::Response& res) {
    if (auto backend = backend_or_503(res)) send_json(res, 200, backend->topology());
  });
  server.Get("/v1/topology", topology);
  server.Get("/topology", topology);

  auto encode =
      route("/v1/chat/token/encode", [backend_or_503](const httplib::Request& req, httplib::Response& res) {
        auto backend = backend_or_503(res);
        if (!backend) return;
        nlohmann::json body;
        try {
          body = nlohmann::json::parse(req.body);
        } catch (const nlohmann::json::exception& e) {
          throw RequestError(400, std::string("the body is not valid JSON: ") + e.what());
        }
        if (!body.is_object()) throw RequestError(400, "the body must be a JSON object");
        std::string model = backend->default_model();
        if (body.contains("model") && body["model"].is_string()) model = body["model"].get<std::string>();
        if (!backend->has_model(model))
          throw RequestError(404, "model '" + model + "' is not available", "not_found_error");
        auto [prompt, ids] = backend->encode_chat(model, parse_messages(body));
        send_json(res, 200,
                  {{"length", prompt.size()},
                   {"num_tokens", ids.size()},
                   {"encoded_tokens", ids},
                   {"encoded_prompt", prompt}});
      });
  server.Post("/v1/chat/token/encode", encode);
  server.Post("/chat/token/encode", encode);

  auto chat = route("/v1/chat/completions", [this, backend_or_503](const httplib::Request& req,
                                                                   httplib::Response& res) {
    auto backend = backend_or_503(res);
    if (!backend) return;
    const Readiness readiness = backend->readiness();
    if (!readiness.ready)
      throw RequestError(503, "the node cannot serve yet: " + readiness.reason, "service_unavailable");
    ChatRequest request = parse_chat_request(req.body, backend->default_model());
    if (!backend->has_model(request.generation.model)) {
      throw RequestError(404, "model '" + request.generation.model + "' is not available", "not_found_error");
    }
    const std::string id = random_id("chatcmpl-");
    request.generation.request_id = id;
    const std::string model = request.generation.model;
    const std::int64_t created = unix_now();
    const auto timeout = options_.response_timeout;
    const auto started = Clock::now();
    auto stream = backend->generate(std::move(request.generation));
    if (!request.stream) {
      std::string content;
      for (;;) {
        auto event = stream->pop(Clock::now() + timeout);
        if (!event) {
          stream->cancel();
          throw RequestError(504,
                             fmt::format("no progress for {} ms; the request was cancelled", timeout.count()),
                             "timeout_error");
        }
        if (event->kind == node::GenerationEvent::Kind::TEXT) {
          content += event->text;
        } else if (event->kind == node::GenerationEvent::Kind::FAILED) {
          throw RequestError(500, event->text, "generation_error");
        } else {
          metrics_.record_generation(static_cast<std::uint64_t>(event->completion_tokens),
                                     Clock::now() - started);
          send_json(res, 200,
                    completion_response(id, created, model, content, event->text, event->prompt_tokens,
                                        event->completion_tokens));
          return;
        }
      }
    }
    const bool include_usage = request.include_usage;
    auto sent_role = std::make_shared<bool>(false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, stream, id, model, created, timeout, include_usage, sent_role, started](
            std::size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& text) {
            if (!sink.is_writable() || !sink.write(text.data(), text.size())) {
              stream->cancel();  // the client went away: stop generating for it
              return false;
            }
            return true;
          };
          if (!*sent_role) {
            *sent_role = true;
            return write(
                sse(completion_chunk(id, created, model, {{"role", "assistant"}, {"content", ""}}, "")));
          }
          auto event = stream->pop(Clock::now() + timeout);
          if (!event) {
            stream->cancel();
            write(
                sse({{"error",
                      {{"message", "no progress within the response timeout"}, {"type", "timeout_error"}}}}));
            write("data: [DONE]\n\n");
            sink.done();
            return true;
          }
          switch (event->kind) {
            case node::GenerationEvent::Kind::TEXT:
              return write(sse(completion_chunk(id, created, model, {{"content", event->text}}, "")));
            case node::GenerationEvent::Kind::FAILED:
              write(sse({{"error", {{"message", event->text}, {"type", "generation_error"}}}}));
              break;
            case node::GenerationEvent::Kind::FINISHED: {
              metrics_.record_generation(static_cast<std::uint64_t>(event->completion_tokens),
                                         Clock::now() - started);
              write(sse(completion_chunk(id, created, model, nlohmann::json::object(), event->text)));
              if (include_usage) {
                auto usage = completion_chunk(id, created, model, nlohmann::json::object(), "");
                usage["choices"] = nlohmann::json::array();
                usage["usage"] = {{"prompt_tokens", event->prompt_tokens},
                                  {"completion_tokens", event->completion_tokens},
                                  {"total_tokens", event->prompt_tokens + event->completion_tokens}};
                write(sse(usage));
              }
              break;
            }
          }
          write("data: [DONE]\n\n");
          sink.done();
          return true;
        },
        [stream](bool success) {
          if (!success) stream->cancel();
        });
    res.status = 200;
  });
  server.Post("/v1/chat/completions", chat);
  server.Post("/chat/completions", chat);

  server.Get("/v1/resources",
             route("/v1/resources", [backend_or_503](const httplib::Request&, httplib::Response& res) {
               if (auto backend = backend_or_503(res)) send_json(res, 200, backend->resources_snapshot());
             }));
  server.Get("/v1/resources/export",
             route("/v1/resources/export", [backend_or_503](const httplib::Request&, httplib::Response& res) {
               auto backend = backend_or_503(res);
               if (!backend) return;
               res.set_header("Content-Disposition", "attachment; filename=\"exo-resources.json\"");
               send_json(res, 200, backend->resources_snapshot());
             }));
  server.Post("/v1/resources/health", route("/v1/resources/health", [backend_or_503](const httplib::Request&,
                                                                                     httplib::Response& res) {
                if (auto backend = backend_or_503(res)) send_json(res, 200, backend->check_all_health());
              }));
  server.Post("/v1/resources/cleanup",
              route("/v1/resources/cleanup",
                    [backend_or_503, admin_allowed](const httplib::Request& req, httplib::Response& res) {
                      auto backend = backend_or_503(res);
                      if (!backend || !admin_allowed(req, res)) return;
                      backend->request_shutdown();
                      send_json(res, 202,
                                {{"status", "shutting down"},
                                 {"detail",
                                  "every resource is cleaned up in reverse "
                                  "dependency order, then the node exits"}});
                    }));
  server.Post(R"(/v1/resources/([^/]+)/reset)",
              route("/v1/resources/{id}/reset",
                    [backend_or_503, admin_allowed](const httplib::Request& req, httplib::Response& res) {
                      auto backend = backend_or_503(res);
                      if (!backend || !admin_allowed(req, res)) return;
                      const std::string id = req.matches[1];
                      const std::string type = req.has_param("type") ? req.get_param_value("type") : "";
                      const nlohmann::json result = backend->reset_resource(id, type);
                      send_json(res, result.value("reset", false) ? 200 : 500, result);
                    }));
  server.Get("/metrics",
             route("/metrics", [this, backend_or_503](const httplib::Request&, httplib::Response& res) {
               auto backend = backend_or_503(res);
               if (!backend) return;
               res.status = 200;
               res.set_content(metrics_.render(backend->resources_snapshot(), backend->cluster_metrics()),
                               "text/plain; version=0.0.4");
             }));
  server.Get("/", route("/", [](const httplib::Request&, httplib::Response& res) {
               res.status = 200;
               res.set_content(std::string(web_ui_html()), "text/html; charset=utf-8");
             }));
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 413   ? "the request body is too large"
                                : res.status == 404 ? "no such endpoint"
                                                    : fmt::format("HTTP error {}", res.status);
    send_error(res, res.status, message, res.status == 404 ? "not_found_error" : "invalid_request_error");
  });
}

}  // namespace exo::api
