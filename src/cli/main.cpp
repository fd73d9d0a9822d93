// exo: start a node (default), answer one prompt (`exo run`), or administer a running node's
// resources (`exo resources ...`). Run `exo --help` for every flag.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "cli/bench_tools.h"
#include "cli/model_tools.h"
#include "cli/resources_command.h"
#include "inference/matmul.h"
#include "node/model_catalog.h"
#include "node/node.h"

namespace {

using exo::node::Node;
using exo::node::NodeOptions;

struct NodeFlags {
  NodeOptions options;
  std::string node_host = "0.0.0.0";
  int node_port = 0;
  int listen_port = 5678;
  int broadcast_port = 5678;
  std::string discovery_module = "udp";
  std::string discovery_config_path;
  int discovery_timeout = 30;
  int wait_for_peers = 0;
  std::vector<std::string> node_id_filter;
  std::vector<std::string> interface_type_filter;
  std::string log_level = "info";
  int response_timeout_s = 900;
  std::string engine;      // "" = chosen from the model
  std::string model;       // --default-model
  std::string model_file;  // --model
  std::string models_dir;
  exo::node::ModelSelection selection;
};

std::string random_node_id() {
  std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:08x}-{:04x}-{:04x}", rng() & 0xffffffffU, rng() & 0xffffU, rng() & 0xffffU);
}

void add_node_flags(CLI::App& app, NodeFlags& f) {
  app.add_option("--node-id", f.options.node_id, "Node id (default: random)");
  app.add_option("--node-host", f.node_host, "Host of the node's gRPC server")->capture_default_str();
  app.add_option("--node-port", f.node_port, "Port of the node's gRPC server (0: random)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--listen-port", f.listen_port, "UDP discovery listen port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--broadcast-port", f.broadcast_port, "UDP discovery broadcast port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--discovery-module", f.discovery_module, "Discovery: udp, manual or none")
      ->check(CLI::IsMember({"udp", "manual", "none"}))
      ->capture_default_str();
  app.add_option("--discovery-config-path", f.discovery_config_path,
                 "Topology file for --discovery-module manual");
  app.add_option("--discovery-timeout", f.discovery_timeout, "Seconds before an unseen peer expires")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--wait-for-peers", f.wait_for_peers, "Peers to wait for before serving")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--chatgpt-api-port", f.options.api_port, "Port of the HTTP API (0: random)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--chatgpt-api-response-timeout", f.response_timeout_s,
                 "Seconds without progress before a chat request fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--inference-engine", f.engine,
                 "Inference engine: native (GGUF models on the CPU) or dummy (fixed answer, for tests); "
                 "default: native, or dummy for model 'dummy'")
      ->check(CLI::IsMember({"native", "dummy"}));
  app.add_option("--default-model", f.model,
                 "Model id (a file <models-dir>/<id>.gguf), a GGUF path, or 'dummy'; default: the "
                 "random-weight demo model, generated once");
  app.add_option("--model", f.model_file, "GGUF file to serve (its id is the file name without .gguf)");
  app.add_option("--models-dir", f.models_dir, "Where model ids are looked up and the demo model is kept")
      ->envname("EXO_MODELS_DIR");
  app.add_option("--threads", f.options.engine_threads,
                 "Compute threads of the native engine (0: one per core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--kv-cache-type", f.options.kv_cache_type,
                 "KV cache elements of the native engine: f16 (half the memory) or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  app.add_option("--max-generate-tokens", f.options.max_generate_tokens, "Upper bound on tokens per answer")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--node-id-filter", f.node_id_filter, "Only connect to these node ids")->delimiter(',');
  app.add_option("--interface-type-filter", f.interface_type_filter, "Only use these interface types")
      ->delimiter(',');
  app.add_option("--admin-token", f.options.admin_token, "Token that allows admin actions from other hosts")
      ->envname("EXO_ADMIN_TOKEN");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
}

void finish_flags(NodeFlags& f) {
  if (f.options.node_id.empty()) f.options.node_id = random_node_id();
  f.options.response_timeout = std::chrono::seconds(f.response_timeout_s);
  f.selection = exo::node::select_model({f.engine, f.model, f.model_file, f.models_dir});
  f.options.inference_engine = f.selection.engine;
  f.options.default_model = f.selection.model_id;
  f.options.model_path = f.selection.path;
  f.options.model_note = f.selection.demo ? f.selection.note : "";
  f.options.discovery = f.discovery_module;
  f.options.rpc_host = f.node_host;
  f.options.rpc_port = f.node_port;
  f.options.listen_port = f.listen_port;
  f.options.broadcast_port = f.broadcast_port;
  f.options.discovery_timeout = std::chrono::seconds(f.discovery_timeout);
  f.options.discovery_config_path = f.discovery_config_path;
  f.options.node_id_filter = f.node_id_filter;
  f.options.interface_type_filter = f.interface_type_filter;
  f.options.wait_for_peers = f.wait_for_peers;
  if (const char* origins = std::getenv("EXO_CORS_ALLOWED_ORIGINS")) {
    std::string list = origins;
    std::size_t start = 0;
    while (start <= list.size()) {
      const auto comma = list.find(',', start);
      auto item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) f.options.cors_origins.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    f.options.cors_origins = {fmt::format("http://localhost:{}", f.options.api_port),
                              fmt::format("http://127.0.0.1:{}", f.options.api_port)};
  }
}

void start_logging(const NodeFlags& f) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("exo"));
  spdlog::set_level(spdlog::level::from_str(f.log_level));
  if (f.selection.demo) {
    spdlog::warn("no model given: serving the {} ({}{})", exo::node::kDemoModelNote, f.selection.path,
                 f.selection.generated ? ", just generated" : "");
  } else if (f.selection.engine == "native") {
    spdlog::info("model '{}' from {}", f.selection.model_id, f.selection.path);
  }
  if (f.selection.engine == "native") {
    spdlog::info("compute kernels: {}", exo::inference::kernel_variant_name(exo::inference::best_variant()));
    for (const auto v : exo::inference::variants_set_aside())
      spdlog::warn("the {} kernels disagreed with avx2 in the start-up self-check on this CPU; not used",
                   exo::inference::kernel_variant_name(v));
  }
}

// Runs the node until a signal (or POST /v1/resources/cleanup). Exit code 0 after an orderly stop.
int run_node(NodeFlags& f) {
  start_logging(f);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::atomic<bool> stopping{false};
  std::atomic<bool> start_failed{false};
  std::shared_ptr<Node> node;
  auto shutdown = [&] {
    if (stopping.exchange(true)) return;
    spdlog::info("shutting down: ending requests in flight, cleaning up resources in reverse order");
    asio::co_spawn(io, node->cleanup(), [&](std::exception_ptr e) {
      if (e) spdlog::warn("cleanup reported: {}", exo::resource::describe(e));
      spdlog::info("all resources closed");
      work.reset();
      io.stop();
    });
  };
  node = Node::create(io.get_executor(), f.options, [&] { shutdown(); });
  node->registry()->add_observer([](const exo::resource::Transition& t) {
    const auto level =
        t.to == exo::resource::ResourceState::ERROR ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "{} {} -> {} ({})", t.resource_id, exo::resource::to_string(t.from),
                exo::resource::to_string(t.to), t.cause);
  });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& ec, int) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("second signal: exiting at once");
      std::_Exit(1);
    }
    shutdown();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  asio::co_spawn(io, node->initialize(), [&](std::exception_ptr e) {
    if (e) {
      spdlog::error("the node could not start: {}", exo::resource::describe(e));
      start_failed = true;
      shutdown();
      return;
    }
    spdlog::info("exo node {} ready: chat API on http://{}:{}/v1/chat/completions (model '{}')",
                 f.options.node_id, f.options.api_host, node->api_port(), f.options.default_model);
    if (node->rpc_port() != 0) {
      spdlog::info("peers reach this node on gRPC port {} (discovery: {})", node->rpc_port(),
                   f.options.discovery);
    } else {
      spdlog::info("discovery is off: this node serves alone");
    }
  });
  std::thread second([&io] { io.run(); });
  io.run();
  second.join();
  signals.cancel();
  return start_failed ? 1 : 0;
}

// `exo run MODEL --prompt TEXT`: start a node, answer one prompt on stdout, stop.
int run_once(NodeFlags& f, const std::string& prompt) {
  f.options.api_port = 0;
  const std::string model = f.options.default_model;
  if (f.selection.demo) std::cerr << "exo run: the " << exo::node::kDemoModelNote << "\n";
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  int code = 0;
  auto node = Node::create(io.get_executor(), f.options, nullptr);
  try {
    asio::co_spawn(io, node->initialize(), asio::use_future).get();
    exo::node::GenerationRequest request;
    request.request_id = "run-1";
    request.model = model;
    request.messages = {{"user", prompt}};
    auto stream = node->generate(request);
    for (;;) {
      auto event = stream->pop(std::chrono::steady_clock::now() + f.options.response_timeout);
      if (!event) throw std::runtime_error("no progress within the response timeout");
      if (event->kind == exo::node::GenerationEvent::Kind::TEXT) {
        std::cout << event->text << std::flush;
      } else if (event->kind == exo::node::GenerationEvent::Kind::FAILED) {
        throw std::runtime_error(event->text);
      } else {
        std::cout << "\n";
        break;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "exo run: " << e.what() << "\n";
    code = 1;
  }
  try {
    asio::co_spawn(io, node->cleanup(), asio::use_future).get();
  } catch (const std::exception& e) {
    std::cerr << "exo run: cleanup: " << e.what() << "\n";
  }
  work.reset();
  loop.join();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "exo: run one language model across your machines as if they were one.\n"
      "Without a subcommand, starts a node."};
  app.require_subcommand(0, 1);
  NodeFlags flags;
  add_node_flags(app, flags);

  auto* run = app.add_subcommand("run", "Start a node, answer one prompt, exit");
  std::string run_model;
  std::string run_prompt;
  run->add_option("model", run_model, "Model id, GGUF path or 'dummy' (default: the demo model)");
  run->add_option("--prompt", run_prompt, "The prompt")->required();

  auto* resources = app.add_subcommand("resources", "Inspect and administer the resources of a running node");
  resources->require_subcommand(1);
  exo::cli::ResourcesCommand command;
  resources->add_option("--api", command.api, "URL of the node's API")->capture_default_str();
  resources->add_flag("--json", command.json, "Machine-readable output");
  resources->add_option("--admin-token", command.admin_token, "Admin token for reset and cleanup")
      ->envname("EXO_ADMIN_TOKEN");
  resources->add_subcommand("list", "Every resource with its state and last error");
  resources->add_subcommand("health", "Run every health check now (exit 1 when problems are found)");
  auto* reset = resources->add_subcommand("reset", "Clean up and re-initialize one resource");
  reset->add_option("id", command.id, "Resource id")->required();
  reset->add_option("--type", command.type, "Only a resource of this type");
  resources->add_subcommand("cleanup", "Shut the node down in order (every resource cleaned up, then exit)");
  auto* export_command = resources->add_subcommand("export", "The full JSON snapshot");
  export_command->add_option("--output", command.output, "Write to this file instead of stdout");
  exo::cli::ModelToolOptions model_tools;
  exo::cli::add_model_tool_commands(app, model_tools);
  exo::cli::BenchToolOptions bench_tools;
  exo::cli::add_bench_tool_commands(app, bench_tools);
  // --kernels: the node's, and that of the tools that run a model.
  std::string kernels;
  std::vector<std::string> kernel_names;
  for (const auto v : exo::inference::kernel_variants_slowest_first)
    kernel_names.emplace_back(exo::inference::kernel_variant_name(v));
  for (CLI::App* where : {&app, app.get_subcommand("bench"), app.get_subcommand("eval")}) {
    where
        ->add_option(
            "--kernels", kernels,
            "Kernel variant instead of the fastest this CPU runs (the -emulated ones are slow; for tests)")
        ->check(CLI::IsMember(kernel_names));
  }
  // --api, --json and --admin-token may also follow the action ("exo resources list --json").
  for (auto* action : resources->get_subcommands({})) action->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (resources->parsed()) {
    command.action = resources->get_subcommands().front()->get_name();
    return exo::cli::run_resources_command(command, std::cout, std::cerr);
  }
  try {
    if (!kernels.empty())
      exo::inference::select_kernel_variant(*exo::inference::parse_kernel_variant(kernels));
    if (auto code = exo::cli::run_model_tool(model_tools)) return *code;
    if (auto code = exo::cli::run_bench_tool(bench_tools)) return *code;
    if (run->parsed() && !run_model.empty()) flags.model = run_model;
    finish_flags(flags);
    if (run->parsed()) return run_once(flags, run_prompt);
    return run_node(flags);
  } catch (const std::exception& e) {
    std::cerr << "exo: " << e.what() << "\n";
    return 2;
  }
}
