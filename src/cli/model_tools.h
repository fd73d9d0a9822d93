// Model tools of the `exo` command: `exo eval` (run token ids through a GGUF model, write every
// position's logits in the golden .logits.bin format, print greedy continuations) and
// `exo tokenize` (print the token ids of a text, the convention of the tokenizer test vectors).
//
// Contract: run_eval / run_tokenize write only to the given streams and return the process exit
// code: 0 on success, 2 for usage errors (bad --tokens, unreadable text file, ids outside the
// vocabulary), 1 for model errors (missing, corrupt or unsupported model file). Compute runs on the
// calling thread plus a ComputePool; no event loop is involved. add_model_tool_commands registers
// both subcommands on a CLI11 app; after parsing, run_model_tool runs the one that was chosen
// (nullopt when neither was).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace exo::cli {

struct EvalCommand {
  std::string model;
  std::string tokens;      // "ID ID ..." (spaces or commas)
  std::string logits_out;  // empty: no file
  int greedy = 0;          // greedy continuation ids to print
  unsigned threads = 0;    // 0: one per hardware thread
};

struct TokenizeCommand {
  std::string model;
  std::string file;  // empty: read stdin
};

// `exo eval`: with neither --logits-out nor --greedy it prints the argmax id of every position.
int run_eval(const EvalCommand& command, std::ostream& out, std::ostream& err);
// `exo tokenize`: ids on one line, no BOS/EOS added, special-token text tokenized as plain text.
int run_tokenize(const TokenizeCommand& command, std::istream& in, std::ostream& out, std::ostream& err);

struct ModelToolOptions {
  EvalCommand eval;
  TokenizeCommand tokenize;
  CLI::App* eval_app = nullptr;  // set by add_model_tool_commands
  CLI::App* tokenize_app = nullptr;
};

void add_model_tool_commands(CLI::App& app, ModelToolOptions& options);
// Runs the parsed subcommand on std::cin / std::cout / std::cerr; nullopt when none was given.
std::optional<int> run_model_tool(const ModelToolOptions& options);

}  // namespace exo::cli
