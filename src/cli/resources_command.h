// `exo resources ...`: inspect and administer the resources of a running node over its HTTP API.
//
// Contract: returns the process exit code — 0 when all is well, 1 when `health` finds problems or a
// reset fails, 2 for usage or connection errors — and writes only to the given streams.
#pragma once

#include <iosfwd>
#include <string>

namespace exo::cli {

struct ResourcesCommand {
  std::string action;  // list | health | reset | cleanup | export
  std::string api = "http://127.0.0.1:52415";
  std::string id;      // reset
  std::string type;    // reset --type
  std::string output;  // export --output
  std::string admin_token;
  bool json = false;
};

int run_resources_command(const ResourcesCommand& command, std::ostream& out, std::ostream& err);

}  // namespace exo::cli
