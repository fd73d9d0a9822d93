#include "cli/bench_tools.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "inference/compute_pool.h"
#include "inference/forward_pass.h"
#include "inference/gguf_file.h"
#include "inference/kv_cache.h"
#include "inference/matmul.h"
#include "inference/memory_bandwidth.h"
#include "inference/model_config.h"
#include "inference/model_generator.h"
#include "inference/model_weights.h"
#include "inference/native_engine.h"
#include "inference/repacked_weights.h"

namespace exo::cli {

namespace {

using namespace exo::inference;

struct Stats {
  double mean = 0;
  double stddev = 0;
};

Stats stats(const std::vector<double>& values) {
  Stats s;
  if (values.empty()) return s;
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  double sq = 0;
  for (double v : values) sq += (v - s.mean) * (v - s.mean);
  s.stddev = values.size() > 1 ? std::sqrt(sq / static_cast<double>(values.size() - 1)) : 0.0;
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string type_summary(const GgufFile& file) {
  std::map<std::string, int> counts;
  for (const auto& t : file.tensors()) counts[std::string(t.type_info->name)] += 1;
  std::string text;
  for (const auto& [name, count] : counts)
    text += fmt::format("{}{}×{}", text.empty() ? "" : ", ", name, count);
  return text;
}

std::uint64_t matrix_bytes(const WeightMatrix& w) {
  return static_cast<std::uint64_t>(w.rows) * w.row_bytes;
}

// Resident set of this process now, in bytes (/proc/self/statm), or 0 when unreadable.
std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Resident bytes of this process mapped by 2 MiB pages (anonymous or file), 0 where the kernel does
// not say.
std::uint64_t huge_page_resident_bytes() {
  std::ifstream rollup("/proc/self/smaps_rollup");
  std::uint64_t total_kib = 0;
  std::string line;
  while (std::getline(rollup, line)) {  // "Key:   123 kB" after a header line
    std::istringstream fields(line);
    std::string key;
    std::uint64_t kib = 0;
    if (fields >> key >> kib && (key == "AnonHugePages:" || key == "FilePmdMapped:")) total_kib += kib;
  }
  return total_kib * 1024U;
}

// Peak resident set of this process so far, in bytes.
std::uint64_t peak_resident_bytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024U;
}

double mib(std::uint64_t bytes) {
  return static_cast<double>(bytes) / 1048576.0;
}

// "START-END" (inclusive) within [0, n_layer); empty means the whole model.
std::pair<std::int64_t, std::int64_t> parse_layer_range(const std::string& text, std::int64_t n_layer) {
  if (text.empty()) return {0, n_layer - 1};
  const auto dash = text.find('-');
  std::size_t used_start = 0;
  std::size_t used_end = 0;
  std::int64_t start = -1;
  std::int64_t end = -1;
  try {
    if (dash != std::string::npos) {
      start = std::stoll(text.substr(0, dash), &used_start);
      end = std::stoll(text.substr(dash + 1), &used_end);
    }
  } catch (const std::exception&) {
    start = -1;
  }
  if (dash == std::string::npos || used_start != dash || used_end != text.size() - dash - 1 || start < 0 ||
      end < start || end >= n_layer)
    throw std::invalid_argument(
        fmt::format("--layers '{}': expected START-END with 0 <= START <= END < {}", text, n_layer));
  return {start, end};
}

}  // namespace

int run_gguf_gen(const GgufGenCommand& c, std::ostream& out, std::ostream& err) {
  ModelShape shape;
  if (!c.preset.empty()) {
    const auto preset = model_preset(c.preset);
    if (!preset) {
      std::string names;
      for (const auto& n : model_preset_names()) names += (names.empty() ? "" : ", ") + n;
      err << "exo gguf-gen: unknown preset '" << c.preset << "' (known: " << names << ")\n";
      return 2;
    }
    shape = *preset;
  } else {
    shape = *model_preset("demo");
  }
  if (!c.architecture.empty()) shape.architecture = c.architecture;
  if (c.n_embd != 0) shape.n_embd = c.n_embd;
  if (c.layers != 0) shape.n_layer = c.layers;
  if (c.heads != 0) shape.n_head = c.heads;
  if (c.heads_kv != 0) shape.n_head_kv = c.heads_kv;
  if (c.n_ff != 0) shape.n_ff = c.n_ff;
  if (c.ctx != 0) shape.n_ctx = c.ctx;
  if (c.rope_base != 0) shape.rope_base = c.rope_base;
  if (c.tied == "yes") shape.tied_embeddings = true;
  if (c.tied == "no") shape.tied_embeddings = false;
  const auto recipe = parse_weight_recipe(c.type);
  if (!recipe) {
    err << "exo gguf-gen: unknown --type '" << c.type
        << "' (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m)\n";
    return 2;
  }
  try {
    validate_shape(shape, recipe->type);
    if (recipe->medium_mix) validate_shape(shape, TensorType::Q6_K);
  } catch (const std::exception& e) {
    err << "exo gguf-gen: " << e.what() << "\n";
    return 2;
  }
  GenerateOptions options;
  options.shape = shape;
  options.type = recipe->type;
  options.medium_mix = recipe->medium_mix;
  options.vocab_from = c.vocab_from;
  options.seed = c.seed;
  options.threads = c.threads;
  try {
    const auto start = std::chrono::steady_clock::now();
    const GeneratedModel model = generate_model(options, c.out);
    out << fmt::format(
               "wrote {}: {} {} ({}), {} layers, n_embd {}, heads {}/{}, n_ff {}, vocab {}{}\n", c.out,
               shape.architecture,
               std::string(tensor_type_name(recipe->type)) + (recipe->medium_mix ? " medium mix" : ""),
               shape.name, shape.n_layer, shape.n_embd, shape.n_head, shape.n_head_kv, shape.n_ff,
               model.n_vocab, shape.tied_embeddings ? ", tied" : "")
        << fmt::format("{} tensors, {:.1f} M parameters, {:.1f} MiB, seed {}, {:.1f} s\n", model.tensors,
                       static_cast<double>(model.parameters) / 1e6,
                       static_cast<double>(model.file_bytes) / 1048576.0, c.seed, seconds_since(start));
    if (shape.expected_vocab != 0 && shape.expected_vocab != model.n_vocab)
      out << fmt::format("note: the {} preset is meant for a {}-token vocabulary; this file has {}\n",
                         c.preset, shape.expected_vocab, model.n_vocab);
    return 0;
  } catch (const std::exception& e) {
    err << "exo gguf-gen: " << e.what() << "\n";
    return 1;
  }
}

int run_bench(const BenchCommand& c, std::ostream& out, std::ostream& err) {
  if (c.prompt_tokens < 0 || c.generate_tokens < 0 || c.repetitions < 1) {
    err << "exo bench: -p and -n must be >= 0 and -r >= 1\n";
    return 2;
  }
  try {
    // Load as the engine does (map, validate the shard's tensors, repack, fault every page of the
    // shard in): the time until the shard computes at full speed.
    const auto load_start = std::chrono::steady_clock::now();
    const GgufFile file = GgufFile::open(c.model);
    const double open_seconds = seconds_since(load_start);
    const ModelConfig config = ModelConfig::from_gguf(file);
    std::pair<std::int64_t, std::int64_t> range;
    try {
      range = parse_layer_range(c.layers, config.n_layer);
    } catch (const std::invalid_argument& e) {
      err << "exo bench: " << e.what() << "\n";
      return 2;
    }
    const auto [first_layer, last_layer] = range;
    const bool whole = first_layer == 0 && last_layer == config.n_layer - 1;
    ComputePool pool(c.threads);
    RepackedWeights repacked;  // as the engine loads a shard: matrices in the kernels' layout, packed
    repacked.set_pool(&pool);  // on the compute pool
    const ModelWeights weights = ModelWeights::load(file, config, first_layer, last_layer, &repacked);
    const double setup_seconds = seconds_since(load_start);
    const std::uint64_t touched = weights.fault_in();
    repacked.release_sources();  // as the engine does after reading a shard in
    const double load_seconds = seconds_since(load_start);
    out << fmt::format(
        "load: layers {}-{} of {}{}: {:.1f} ms (open {:.1f} ms, shard set-up {:.1f} ms, "
        "page-in {:.1f} ms of {:.1f} MiB); RSS {:.1f} MiB ({:.1f} MiB in 2 MiB pages), peak {:.1f} MiB\n",
        first_layer, last_layer, config.n_layer, whole ? " (whole model)" : "", load_seconds * 1e3,
        open_seconds * 1e3, (setup_seconds - open_seconds) * 1e3, (load_seconds - setup_seconds) * 1e3,
        mib(touched), mib(resident_bytes()), mib(huge_page_resident_bytes()), mib(peak_resident_bytes()));
    if (!whole) {
      if (c.prompt_tokens > 0 || c.generate_tokens > 0)
        out << "note: pp and tg run on the whole model only; this shard was loaded and measured\n";
      return 0;
    }
    // Bytes read per generated token: every weight except the embedding table, of which one row is
    // read (unless it doubles as the output matrix).
    std::uint64_t per_token = weights.weight_bytes();
    if (!config.tied_output && weights.token_embd()) {
      per_token -= matrix_bytes(*weights.token_embd()) - weights.token_embd()->row_bytes;
    }
    out << fmt::format("model: {} ({}, {} layers, n_embd {}, vocab {}; {}), {:.2f} GiB of weights\n", c.model,
                       config.architecture_name, config.n_layer, config.n_embd, config.n_vocab,
                       type_summary(file), static_cast<double>(weights.weight_bytes()) / 1073741824.0);
    const TensorType kv_type = NativeEngineOptions{}.kv_type;  // the engine's cache, as the node runs it
    out << fmt::format("threads: {}, kernels: {}, KV cache: {}\n", pool.size(),
                       kernel_variant_name(best_variant()), tensor_type_name(kv_type));
    for (const KernelVariant v : variants_set_aside())
      out << fmt::format("kernels set aside: {} (disagreed with avx2 in the start-up self-check)\n",
                         kernel_variant_name(v));

    ForwardPass forward(config, weights, pool);
    auto budget = std::make_shared<KvBudget>(UINT64_MAX);
    const auto token = [&](int i) { return static_cast<std::int32_t>((1 + 7919LL * i) % config.n_vocab); };
    const auto run_pp = [&](int n) {
      std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = token(i);
      auto cache = forward.make_cache(budget, n, kv_type);
      const auto start = std::chrono::steady_clock::now();
      forward.run_tokens(ids, *cache, ForwardPass::Logits::LAST);
      return seconds_since(start);
    };
    const auto run_tg = [&](int n) {
      auto cache = forward.make_cache(budget, n, kv_type);
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        const std::int32_t id = token(i);
        forward.run_tokens(std::span(&id, 1), *cache, ForwardPass::Logits::LAST);
      }
      return seconds_since(start);
    };
    // Warm-up: one run of each test, which also faults the weights in and sets the peak memory
    // with the tests' KV caches before the bandwidth probe's buffer exists.
    if (c.prompt_tokens > 0) run_pp(c.prompt_tokens);
    if (c.generate_tokens > 0) run_tg(c.generate_tokens);
    out << fmt::format("memory: peak RSS {:.1f} MiB with the tests' KV caches ({:.1f} MiB of weights)\n",
                       mib(peak_resident_bytes()), mib(weights.weight_bytes()));

    std::optional<Stats> pp;
    if (c.prompt_tokens > 0) {
      std::vector<double> rates;
      for (int r = 0; r < c.repetitions; ++r) rates.push_back(c.prompt_tokens / run_pp(c.prompt_tokens));
      pp = stats(rates);
    }
    // Each generation run is followed by two probe passes, and its share of the bandwidth limit is
    // taken against the better of them: a shared machine's bandwidth drifts by tens of percent
    // within seconds, so only measurements made together compare.
    BandwidthProbe probe(pool, std::size_t{c.bandwidth_mib} << 20);
    std::vector<double> bandwidths;
    const auto probe_now = [&] {
      const double best = std::max(probe.pass(), probe.pass());
      bandwidths.push_back(best);
      return best;
    };
    const auto per_token_bytes = static_cast<double>(per_token);
    std::optional<Stats> tg;
    std::optional<Stats> tg_share;
    if (c.generate_tokens > 0) {
      std::vector<double> rates;
      std::vector<double> shares;
      for (int r = 0; r < c.repetitions; ++r) {
        const double rate = c.generate_tokens / run_tg(c.generate_tokens);
        rates.push_back(rate);
        shares.push_back(100.0 * rate / (probe_now() / per_token_bytes));
      }
      tg = stats(rates);
      tg_share = stats(shares);
    } else {
      probe_now();
    }
    const double best_bandwidth = *std::max_element(bandwidths.begin(), bandwidths.end());
    const double limit_tps = best_bandwidth / per_token_bytes;
    out << fmt::format(
        "memory read bandwidth: {:.2f} GB/s (best of {} passes over {} MiB, two after each tg run; "
        "lowest pair {:.2f} GB/s)\n",
        best_bandwidth / 1e9, 2 * bandwidths.size(), probe.buffer_bytes() >> 20,
        *std::min_element(bandwidths.begin(), bandwidths.end()) / 1e9);
    out << fmt::format(
        "bandwidth limit for generation: {:.2f} tok/s at the best pass ({:.1f} MiB of weights read per "
        "token)\n",
        limit_tps, per_token_bytes / 1048576.0);

    out << "| test | tok/s | note |\n|---|---:|---|\n";
    if (pp)
      out << fmt::format("| pp{} | {:.2f} ± {:.2f} | one batch of {} tokens |\n", c.prompt_tokens, pp->mean,
                         pp->stddev, c.prompt_tokens);
    if (tg)
      out << fmt::format(
          "| tg{} | {:.2f} ± {:.2f} | {:.1f} ± {:.1f}% of the bandwidth limit measured after each run |\n",
          c.generate_tokens, tg->mean, tg->stddev, tg_share->mean, tg_share->stddev);
    return 0;
  } catch (const std::exception& e) {
    err << "exo bench: " << e.what() << "\n";
    return 1;
  }
}

void add_bench_tool_commands(CLI::App& app, BenchToolOptions& o) {
  auto* gen = app.add_subcommand("gguf-gen", "Write a random-weight GGUF model (preset or explicit shape)");
  gen->add_option("--arch", o.gen.architecture, "Architecture: llama or qwen2 (default: the preset's)")
      ->check(CLI::IsMember({"llama", "qwen2"}));
  gen->add_option("--preset", o.gen.preset,
                  "tinyllama-1.1b, llama-3.2-1b, qwen2-0.5b or demo (default: demo)");
  gen->add_option("--type", o.gen.type,
                  "Weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k, or q4_k_m / q5_k_m "
                  "(llama.cpp's mix: Q6_K for output and some layers' attn_v and ffn_down)")
      ->capture_default_str();
  gen->add_option("--vocab-from", o.gen.vocab_from,
                  "GGUF whose tokenizer.* metadata is copied (default: byte vocab)")
      ->check(CLI::ExistingFile);
  gen->add_option("--out", o.gen.out, "Output GGUF path")->required();
  gen->add_option("--seed", o.gen.seed, "Random seed")->capture_default_str();
  gen->add_option("--threads", o.gen.threads, "Threads (0: all cores)");
  gen->add_option("--n-embd", o.gen.n_embd, "Override: embedding width");
  gen->add_option("--layers", o.gen.layers, "Override: number of layers");
  gen->add_option("--heads", o.gen.heads, "Override: attention heads");
  gen->add_option("--heads-kv", o.gen.heads_kv, "Override: key/value heads");
  gen->add_option("--n-ff", o.gen.n_ff, "Override: feed-forward width");
  gen->add_option("--ctx", o.gen.ctx, "Override: context length");
  gen->add_option("--rope-base", o.gen.rope_base, "Override: RoPE frequency base");
  gen->add_option("--tied", o.gen.tied, "Override: tie output to token_embd (yes/no)")
      ->check(CLI::IsMember({"yes", "no"}));
  o.gen_app = gen;

  auto* bench = app.add_subcommand("bench", "Prompt-processing and generation speed of a GGUF model");
  bench->add_option("--model,-m", o.bench.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  bench->add_option("-p,--n-prompt", o.bench.prompt_tokens, "Prompt tokens (pp test; 0 skips)")
      ->capture_default_str();
  bench->add_option("-n,--n-gen", o.bench.generate_tokens, "Generated tokens (tg test; 0 skips)")
      ->capture_default_str();
  bench->add_option("-t,--threads", o.bench.threads, "Threads (0: one per hardware thread)");
  bench->add_option("-r,--repetitions", o.bench.repetitions, "Repetitions of each test")
      ->capture_default_str();
  bench->add_option("--layers", o.bench.layers,
                    "Load only layers START-END (inclusive), as a node's shard, and report its load time and "
                    "memory (default: the whole model)");
  bench->add_option("--bandwidth-mib", o.bench.bandwidth_mib, "Buffer of the bandwidth probe in MiB")
      ->check(CLI::Range(1U, 65536U))
      ->capture_default_str();
  o.bench_app = bench;
}

std::optional<int> run_bench_tool(const BenchToolOptions& o) {
  if (o.gen_app != nullptr && o.gen_app->parsed()) return run_gguf_gen(o.gen, std::cout, std::cerr);
  if (o.bench_app != nullptr && o.bench_app->parsed()) return run_bench(o.bench, std::cout, std::cerr);
  return std::nullopt;
}

}  // namespace exo::cli
