#include "cli/model_tools.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <vector>

#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/repacked_weights.h"
#include "inference/tokenizer.h"

namespace exo::cli {

namespace {

using namespace exo::inference;

// Parses "1 2 3" / "1,2,3"; false on anything that is not a non-negative 32-bit integer.
bool parse_ids(const std::string& text, std::vector<std::int32_t>& ids) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ',' || text[i] == '\t' || text[i] == '\n') {
      ++i;
      continue;
    }
    std::int32_t value = 0;
    const auto [end, error] = std::from_chars(text.data() + i, text.data() + text.size(), value);
    if (error != std::errc() || value < 0) return false;
    const auto next = static_cast<std::size_t>(end - text.data());
    if (next < text.size() && text[next] != ' ' && text[next] != ',' && text[next] != '\t' &&
        text[next] != '\n')
      return false;
    ids.push_back(value);
    i = next;
  }
  return true;
}

std::int32_t argmax(std::span<const float> row) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < row.size(); ++i)
    if (row[i] > row[best]) best = i;
  return static_cast<std::int32_t>(best);
}

void write_ids(std::ostream& out, const std::vector<std::int32_t>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) out << (i == 0 ? "" : " ") << ids[i];
  out << "\n";
}

bool write_logits(const std::string& path, const std::vector<std::int32_t>& ids, std::int64_t n_vocab,
                  const std::vector<float>& logits) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return false;
  const auto put_i32 = [&file](std::int32_t v) {
    char raw[4];
    std::memcpy(raw, &v, 4);
    file.write(raw, 4);
  };
  put_i32(static_cast<std::int32_t>(ids.size()));
  put_i32(static_cast<std::int32_t>(n_vocab));
  for (const std::int32_t id : ids) put_i32(id);
  file.write(reinterpret_cast<const char*>(logits.data()),
             static_cast<std::streamsize>(logits.size() * sizeof(float)));
  return static_cast<bool>(file.flush());
}

}  // namespace

int run_eval(const EvalCommand& command, std::ostream& out, std::ostream& err) {
  std::vector<std::int32_t> ids;
  if (!parse_ids(command.tokens, ids) || ids.empty()) {
    err << "exo eval: --tokens must be one or more non-negative integer ids separated by spaces\n";
    return 2;
  }
  if (command.greedy < 0) {
    err << "exo eval: --greedy must be >= 0\n";
    return 2;
  }
  std::optional<GgufFile> file;
  std::optional<ModelConfig> config;
  RepackedWeights repacked;  // as the engine: matrices in the kernels' layout (outlives `weights`)
  std::optional<ModelWeights> weights;
  try {
    file.emplace(GgufFile::open(command.model));
    config.emplace(ModelConfig::from_gguf(*file));
    weights.emplace(ModelWeights::load(*file, *config, 0, config->n_layer - 1, &repacked));
  } catch (const std::exception& e) {
    err << "exo eval: " << e.what() << "\n";
    return 1;
  }
  for (const std::int32_t id : ids) {
    if (id >= config->n_vocab) {
      err << "exo eval: token id " << id << " is outside the vocabulary [0, " << config->n_vocab << ")\n";
      return 2;
    }
  }
  const auto total = static_cast<std::int64_t>(ids.size()) + command.greedy;
  if (total > config->n_ctx) {
    err << "exo eval: " << total << " positions exceed the model's context length " << config->n_ctx << "\n";
    return 2;
  }
  try {
    ComputePool pool(command.threads);
    ForwardPass forward(*config, *weights, pool);
    auto cache = forward.make_cache(std::make_shared<KvBudget>(UINT64_MAX));
    const std::vector<float> logits = forward.run_tokens(ids, *cache, ForwardPass::Logits::ALL);
    const auto vocab = static_cast<std::size_t>(config->n_vocab);
    if (!command.logits_out.empty() && !write_logits(command.logits_out, ids, config->n_vocab, logits)) {
      err << "exo eval: cannot write '" << command.logits_out << "'\n";
      return 2;
    }
    if (command.greedy > 0) {
      std::vector<std::int32_t> generated;
      std::int32_t next = argmax(std::span<const float>(logits).subspan(logits.size() - vocab));
      for (int step = 0; step < command.greedy; ++step) {
        generated.push_back(next);
        if (step + 1 == command.greedy) break;
        next = argmax(forward.run_tokens(std::span<const std::int32_t>(&next, 1), *cache));
      }
      write_ids(out, generated);
    } else if (command.logits_out.empty()) {
      std::vector<std::int32_t> best;
      for (std::size_t t = 0; t < ids.size(); ++t)
        best.push_back(argmax(std::span<const float>(logits).subspan(t * vocab, vocab)));
      write_ids(out, best);
    }
  } catch (const std::exception& e) {
    err << "exo eval: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

int run_tokenize(const TokenizeCommand& command, std::istream& in, std::ostream& out, std::ostream& err) {
  std::string text;
  if (command.file.empty()) {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    std::ifstream file(command.file, std::ios::binary);
    if (!file) {
      err << "exo tokenize: cannot read '" << command.file << "'\n";
      return 2;
    }
    text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  std::optional<Tokenizer> tokenizer;
  try {
    tokenizer.emplace(Tokenizer::from_gguf(GgufFile::open(command.model)));
  } catch (const std::exception& e) {
    err << "exo tokenize: " << e.what() << "\n";
    return 1;
  }
  try {
    write_ids(out, tokenizer->encode(text, false, false));
  } catch (const std::exception& e) {
    err << "exo tokenize: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

void add_model_tool_commands(CLI::App& app, ModelToolOptions& options) {
  auto* eval = app.add_subcommand("eval", "Run token ids through a GGUF model (logits, greedy continuation)");
  eval->add_option("--model", options.eval.model, "GGUF model file")->required();
  eval->add_option("--tokens", options.eval.tokens, "Input token ids, e.g. \"1 15 27\"")->required();
  eval->add_option("--logits-out", options.eval.logits_out,
                   "Write every position's logits (.logits.bin format)");
  eval->add_option("--greedy", options.eval.greedy, "Print this many greedy continuation ids on one line");
  eval->add_option("-t,--threads", options.eval.threads, "Compute threads (default: one per core)");
  options.eval_app = eval;

  auto* tokenize =
      app.add_subcommand("tokenize", "Print the token ids of a text (no BOS/EOS, specials as text)");
  tokenize->add_option("--model", options.tokenize.model, "GGUF file (a vocabulary-only file is enough)")
      ->required();
  tokenize->add_option("--file", options.tokenize.file, "Text file (default: stdin)");
  options.tokenize_app = tokenize;
}

std::optional<int> run_model_tool(const ModelToolOptions& options) {
  if (options.eval_app != nullptr && options.eval_app->parsed())
    return run_eval(options.eval, std::cout, std::cerr);
  if (options.tokenize_app != nullptr && options.tokenize_app->parsed())
    return run_tokenize(options.tokenize, std::cin, std::cout, std::cerr);
  return std::nullopt;
}

}  // namespace exo::cli
