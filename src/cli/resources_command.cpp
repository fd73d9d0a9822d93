#include "cli/resources_command.h"

#include <httplib.h>

#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

namespace exo::cli {
namespace {

struct Reply {
  int status = 0;
  nlohmann::json body;
};

// Performs one request; throws std::runtime_error for connection problems or a non-JSON answer.
Reply call(const ResourcesCommand& c, const std::string& method, const std::string& path) {
  httplib::Client client(c.api);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(120, 0);
  httplib::Headers headers;
  if (!c.admin_token.empty()) headers.emplace("Authorization", "Bearer " + c.admin_token);
  auto result =
      method == "GET" ? client.Get(path, headers) : client.Post(path, headers, "", "application/json");
  if (!result) {
    throw std::runtime_error(
        fmt::format("cannot reach the node at {}: {}", c.api, httplib::to_string(result.error())));
  }
  Reply reply{result->status, nullptr};
  try {
    reply.body = nlohmann::json::parse(result->body);
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(
        fmt::format("the node at {} answered {} with a body that is not JSON", c.api, result->status));
  }
  return reply;
}

std::string error_text(const Reply& r) {
  if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()) {
    return r.body["error"].value("message", "unknown error");
  }
  return r.body.dump();
}

std::string text_or(const nlohmann::json& j, const char* key, const char* fallback = "-") {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return fallback;
}

void print_table(const nlohmann::json& snapshot, std::ostream& out) {
  const auto& summary = snapshot["summary"];
  out << fmt::format("{} resources, status {}\n\n", summary.value("total", 0), text_or(summary, "status"));
  out << fmt::format("{:<30} {:<18} {:<13} {:<25} {}\n", "ID", "TYPE", "STATE", "SINCE", "LAST ERROR");
  for (const auto& r : snapshot["resources"]) {
    const std::string error = r["last_error"].is_object() ? text_or(r["last_error"], "message") : "-";
    out << fmt::format("{:<30} {:<18} {:<13} {:<25} {}\n", text_or(r, "id"), text_or(r, "type"),
                       text_or(r, "state"), text_or(r, "state_since"), error);
  }
  if (!snapshot["problems"].empty()) {
    out << "\nProblems:\n";
    for (const auto& p : snapshot["problems"]) {
      out << fmt::format("  - {} ({}) is {} since {}{}\n", text_or(p, "id"), text_or(p, "type"),
                         text_or(p, "state"), text_or(p, "since"),
                         p["last_error"].is_string() ? ": " + p["last_error"].get<std::string>() : "");
    }
  }
}

}  // namespace

int run_resources_command(const ResourcesCommand& c, std::ostream& out, std::ostream& err) {
  try {
    if (c.action == "list") {
      const Reply r = call(c, "GET", "/v1/resources");
      if (r.status != 200) {
        err << "exo resources list: " << error_text(r) << "\n";
        return 2;
      }
      if (c.json) {
        out << r.body.dump(2) << "\n";
      } else {
        print_table(r.body, out);
      }
      return 0;
    }
    if (c.action == "health") {
      const Reply r = call(c, "POST", "/v1/resources/health");
      if (r.status != 200) {
        err << "exo resources health: " << error_text(r) << "\n";
        return 2;
      }
      bool problems = r.body["snapshot"]["summary"].value("status", "error") != "ok";
      if (c.json) out << r.body.dump(2) << "\n";
      if (!c.json) out << fmt::format("{:<30} {:<18} {:<9} {}\n", "ID", "TYPE", "HEALTHY", "DETAIL");
      for (const auto& entry : r.body["results"]) {
        const auto& result = entry["result"];
        const bool healthy = result.value("healthy", false);
        const bool probed = result.value("probed", false);
        if (probed && !healthy) problems = true;
        if (!c.json) {
          out << fmt::format("{:<30} {:<18} {:<9} {}\n", text_or(entry, "id"), text_or(entry, "type"),
                             !probed ? "-" : (healthy ? "yes" : "NO"), text_or(result, "detail", ""));
        }
      }
      if (!c.json) out << (problems ? "\nproblems found\n" : "\nall healthy\n");
      return problems ? 1 : 0;
    }
    if (c.action == "reset") {
      if (c.id.empty()) {
        err << "exo resources reset: a resource id is required\n";
        return 2;
      }
      std::string path = "/v1/resources/" + httplib::detail::encode_query_param(c.id) + "/reset";
      if (!c.type.empty()) path += "?type=" + httplib::detail::encode_query_param(c.type);
      const Reply r = call(c, "POST", path);
      if (c.json) out << r.body.dump(2) << "\n";
      if (r.status == 404 || r.status == 400 || r.status == 403) {
        err << "exo resources reset: " << error_text(r) << "\n";
        return 2;
      }
      const bool ok = r.status == 200 && r.body.value("reset", false);
      if (!c.json) {
        out << fmt::format("reset {}: {} (state {})\n", c.id, ok ? "done" : "FAILED",
                           text_or(r.body["resource"], "state"));
        if (!ok)
          out << "error: " << (r.body.contains("error") ? r.body["error"].dump() : error_text(r)) << "\n";
      }
      return ok ? 0 : 1;
    }
    if (c.action == "cleanup") {
      const Reply r = call(c, "POST", "/v1/resources/cleanup");
      if (r.status != 202) {
        err << "exo resources cleanup: " << error_text(r) << "\n";
        return 2;
      }
      out << (c.json ? r.body.dump(2) : "the node is cleaning up every resource and will exit") << "\n";
      return 0;
    }
    if (c.action == "export") {
      const Reply r = call(c, "GET", "/v1/resources/export");
      if (r.status != 200) {
        err << "exo resources export: " << error_text(r) << "\n";
        return 2;
      }
      if (c.output.empty()) {
        out << r.body.dump(2) << "\n";
        return 0;
      }
      std::ofstream file(c.output);
      file << r.body.dump(2) << "\n";
      if (!file) {
        err << "exo resources export: cannot write " << c.output << "\n";
        return 2;
      }
      out << "resource data exported to " << c.output << "\n";
      return 0;
    }
    err << "exo resources: unknown action '" << c.action << "'\n";
    return 2;
  } catch (const std::exception& e) {
    err << "exo resources " << c.action << ": " << e.what() << "\n";
    return 2;
  }
}

}  // namespace exo::cli
