// Benchmark tools of the `exo` command:
// - `exo gguf-gen`: writes a random-weight GGUF (model_generator.h) from a named preset and/or an
//   explicit shape, with the vocabulary copied from a given GGUF (or the built-in byte vocabulary).
// - `exo bench`: prompt-processing and generation speed of a GGUF model on the native engine, as
//   llama-bench defines them (pp = one batched forward of p prompt tokens on an empty cache,
//   tg = n single-token forwards on an empty cache; each repetition on a fresh cache after a warm-up
//   run), plus the machine's memory read bandwidth measured in the same run and generation as a
//   percentage of the bandwidth limit (bytes of weights read per token / bandwidth).
//
// Contract: run_gguf_gen / run_bench write only to the given streams and return the process exit
// code: 0 on success, 2 for usage errors (unknown preset or type, bad shape), 1 for model or I/O
// errors. add_bench_tool_commands registers both subcommands on a CLI11 app; after parsing,
// run_bench_tool runs the one that was chosen on std::cout / std::cerr (nullopt when neither was).
// Compute runs on the calling thread plus a ComputePool; no event loop is involved.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace exo::cli {

struct GgufGenCommand {
  std::string architecture;  // empty: the preset's (llama without a preset)
  std::string preset;        // tinyllama-1.1b, llama-3.2-1b, qwen2-0.5b, demo (empty: demo shape)
  std::string type = "q8_0";
  std::string vocab_from;  // empty: built-in byte vocabulary
  std::string out;
  std::uint64_t seed = 42;
  unsigned threads = 0;
  // Overrides of the preset's shape (0 / empty: keep).
  std::uint32_t n_embd = 0;
  std::uint32_t layers = 0;
  std::uint32_t heads = 0;
  std::uint32_t heads_kv = 0;
  std::uint32_t n_ff = 0;
  std::uint32_t ctx = 0;
  float rope_base = 0;
  std::string tied;  // "yes" / "no" / empty
};

struct BenchCommand {
  std::string model;
  int prompt_tokens = 128;       // -p (0: skip pp)
  int generate_tokens = 64;      // -n (0: skip tg)
  unsigned threads = 0;          // -t (0: one per hardware thread)
  int repetitions = 3;           // -r
  unsigned bandwidth_mib = 512;  // buffer of the bandwidth probe
  std::string layers;            // --layers START-END: load only this shard (pp/tg need the whole model)
};

int run_gguf_gen(const GgufGenCommand& command, std::ostream& out, std::ostream& err);
int run_bench(const BenchCommand& command, std::ostream& out, std::ostream& err);

struct BenchToolOptions {
  GgufGenCommand gen;
  BenchCommand bench;
  CLI::App* gen_app = nullptr;  // set by add_bench_tool_commands
  CLI::App* bench_app = nullptr;
};

void add_bench_tool_commands(CLI::App& app, BenchToolOptions& options);
std::optional<int> run_bench_tool(const BenchToolOptions& options);

}  // namespace exo::cli
