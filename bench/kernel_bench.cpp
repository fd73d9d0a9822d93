// Matmul kernel benchmarks at TinyLlama-1.1B shapes (Google Benchmark). Results and the commands to
// reproduce them: docs/benchmarks.md, section "Native engine kernels".
//
// - BM_Matvec/<type>/<rows>/<cols>: one token (generation). Counters: weight GB/s and the percentage
//   of the machine's read bandwidth measured at start-up with the same thread count.
// - BM_MatvecFromDram/<type>: one token against a 5632x2048 matrix that is never in cache: each
//   iteration reads the next of enough copies to exceed 384 MiB, as generation streams a model.
//   Counters: weight GB/s and the percentage of the measured read bandwidth.
// - BM_Matmul/<type>/<rows>/<cols>/128: a 128-token batch (prompt processing). Counter: tokens/s for
//   this one matrix and effective GMAC/s.
// - BM_Reference*: the scalar oracle on the same shapes, for the speedup of the fast path.
// - BM_PackX8/<type>: repacking one 5632x2048 matrix into its 8-row layout (model load), source GB/s.
// - BM_X8Variant/<variant>/<type>/<tokens>: the 8-row layouts at 2048x2048 with every SIMD variant
//   this CPU runs, side by side (e.g. amx or avx512-vnni against avx2; the -emulated variants show the
//   emulations' cost). Counter: tokens/s.
// - BM_X8Resident/<variant>/<type>: matrix-vector products of a 256x2048 matrix, small enough to stay
//   in L2: the kernels' compute rate without the memory stream. Counter: weight GB/s.
// - Type indices are those of `types` below, then Q4_0, Q4_K, Q8_0, Q6_K and Q5_K in their 8-row
//   layouts.
// Threads: EXO_BENCH_THREADS (default 2).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "inference/compute_pool.h"
#include "inference/huge_page_buffer.h"
#include "inference/matmul.h"
#include "inference/memory_bandwidth.h"
#include "inference/quants.h"

namespace {

using exo::inference::ComputePool;
using exo::inference::TensorType;
using exo::inference::WeightMatrix;

unsigned bench_threads() {
  const char* env = std::getenv("EXO_BENCH_THREADS");
  return env != nullptr ? static_cast<unsigned>(std::atoi(env)) : 2U;
}

ComputePool& pool() {
  static ComputePool instance(bench_threads());
  return instance;
}

double bandwidth() {
  static const double value = exo::inference::measure_read_bandwidth(pool()).bytes_per_second;
  return value;
}

const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                            TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                            TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

struct Matrix {
  std::vector<std::uint8_t> bytes;
  WeightMatrix view;
};

// Random N(0, 0.02) weights through our quantizers (cached per shape and type).
const Matrix& matrix(TensorType type, std::int64_t rows, std::int64_t cols) {
  static std::vector<std::pair<std::string, Matrix>> cache;
  const std::string key =
      std::to_string(static_cast<int>(type)) + "/" + std::to_string(rows) + "/" + std::to_string(cols);
  for (auto& [k, m] : cache) {
    if (k == key) return m;
  }
  if (cache.size() > 3) cache.clear();  // keep memory bounded: one shape at a time is enough
  Matrix m;
  const std::size_t row_bytes = *exo::inference::checked_byte_size(type, static_cast<std::uint64_t>(cols));
  m.bytes.resize(row_bytes * static_cast<std::size_t>(rows));
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = normal(rng);
    exo::inference::quantize_row(
        type, row, std::span(m.bytes).subspan(static_cast<std::size_t>(r) * row_bytes, row_bytes));
  }
  m.view = WeightMatrix{type, nullptr, rows, cols, row_bytes};
  cache.emplace_back(key, std::move(m));
  cache.back().second.view.data = cache.back().second.bytes.data();
  return cache.back().second;
}

// Benchmark type indices: those of `types`, then Q4_0, Q4_K, Q8_0, Q6_K and Q5_K in their 8-row
// layouts (pack_x8).
constexpr std::int64_t q4_0_x8_index = static_cast<std::int64_t>(std::size(types));
constexpr std::int64_t q4_k_x8_index = q4_0_x8_index + 1;
constexpr std::int64_t q8_0_x8_index = q4_0_x8_index + 2;
constexpr std::int64_t q6_k_x8_index = q4_0_x8_index + 3;
constexpr std::int64_t q5_k_x8_index = q4_0_x8_index + 4;

TensorType type_at(std::int64_t index) {
  if (index == q4_0_x8_index) return TensorType::Q4_0;
  if (index == q8_0_x8_index) return TensorType::Q8_0;
  if (index == q6_k_x8_index) return TensorType::Q6_K;
  if (index == q5_k_x8_index) return TensorType::Q5_K;
  return index == q4_k_x8_index ? TensorType::Q4_K : types[index];
}

std::string label_at(std::int64_t index) {
  const std::string name(exo::inference::tensor_type_name(type_at(index)));
  return index >= q4_0_x8_index ? name + " x8" : name;
}

// The matrix of a benchmark type index (packed once and cached for the X8 indices).
const Matrix& matrix_at(std::int64_t index, std::int64_t rows, std::int64_t cols) {
  const Matrix& rows_layout = matrix(type_at(index), rows, cols);
  if (index < q4_0_x8_index) return rows_layout;
  static std::vector<Matrix> packed;  // the same random matrix per type and shape, so keyed by both
  for (Matrix& m : packed) {
    if (m.view.type == rows_layout.view.type && m.view.rows == rows && m.view.cols == cols) return m;
  }
  packed.emplace_back();
  Matrix& stored = packed.back();
  stored.bytes.resize(rows_layout.bytes.size());
  stored.view = exo::inference::pack_x8(rows_layout.view, stored.bytes);
  return stored;
}

std::vector<float> activations(std::int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

// Counters of a matrix-vector benchmark reading `bytes` of weights per iteration: weight GB/s and
// (bytes / time per matvec) / bandwidth, in percent.
void report_weight_stream(benchmark::State& state, const std::string& label, std::size_t bytes,
                          double bandwidth) {
  const auto read = static_cast<double>(bytes);
  state.SetLabel(label);
  state.counters["GB/s"] = benchmark::Counter(read / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bw_GB/s"] = bandwidth / 1e9;
  state.counters["pct_bw"] =
      benchmark::Counter(read / bandwidth * 100.0, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Matvec(benchmark::State& state) {
  const Matrix& m = matrix_at(state.range(0), state.range(1), state.range(2));
  const auto x = activations(m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(m.view.rows));
  const double bw = bandwidth();
  for (auto _ : state) {
    exo::inference::matmul(m.view, x, 1, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  report_weight_stream(state, label_at(state.range(0)), m.bytes.size(), bw);
}

void BM_MatvecFromDram(benchmark::State& state) {
  const Matrix& one = matrix_at(state.range(0), 5632, 2048);
  const std::size_t size = one.bytes.size();
  const std::size_t copies = ((std::size_t{384} << 20) + size - 1) / size;
  exo::inference::HugePageBuffer all(size * copies);  // pages as the engine's weights get them
  for (std::size_t i = 0; i < copies; ++i)
    std::copy(one.bytes.begin(), one.bytes.end(), all.data() + i * size);
  const auto x = activations(one.view.cols);
  std::vector<float> y(static_cast<std::size_t>(one.view.rows));
  const double bw = bandwidth();
  std::size_t next = 0;
  for (auto _ : state) {
    WeightMatrix view = one.view;
    view.data = all.data() + next * size;
    next = (next + 1) % copies;
    exo::inference::matmul(view, x, 1, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  report_weight_stream(state, label_at(state.range(0)), size, bw);
}

void BM_Matmul(benchmark::State& state) {
  const Matrix& m = matrix_at(state.range(0), state.range(1), state.range(2));
  const std::int64_t n = state.range(3);
  const auto x = activations(n * m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(n * m.view.rows));
  for (auto _ : state) {
    exo::inference::matmul(m.view, x, n, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(label_at(state.range(0)));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(n * m.view.rows * m.view.cols) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Portable(benchmark::State& state) {
  const auto type = types[state.range(0)];
  const Matrix& m = matrix(type, state.range(1), state.range(2));
  const std::int64_t n = state.range(3);
  const auto x = activations(n * m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(n * m.view.rows));
  for (auto _ : state) {
    exo::inference::matmul_with(exo::inference::KernelVariant::PORTABLE, m.view, x, n, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(exo::inference::tensor_type_name(type)));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Reference(benchmark::State& state) {
  const auto type = types[state.range(0)];
  const Matrix& m = matrix(type, state.range(1), state.range(2));
  const std::int64_t n = state.range(3);
  const auto x = activations(n * m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(n * m.view.rows));
  for (auto _ : state) {
    exo::inference::matmul_reference(m.view, x, n, y);  // single-threaded oracle
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(exo::inference::tensor_type_name(type)));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

void shapes(benchmark::internal::Benchmark* b, bool batch) {
  const std::int64_t shape[][2] = {{2048, 2048}, {5632, 2048}, {2048, 5632}};
  for (std::int64_t t = 0; t <= q5_k_x8_index; ++t) {
    for (const auto& s : shape) {
      if (batch) {
        b->Args({t, s[0], s[1], 128});
      } else {
        b->Args({t, s[0], s[1]});
      }
    }
  }
  b->ArgNames(batch ? std::vector<std::string>{"type", "rows", "cols", "tokens"}
                    : std::vector<std::string>{"type", "rows", "cols"});
  b->Unit(benchmark::kMillisecond);
  b->UseRealTime();
}

BENCHMARK(BM_Matvec)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, false); });
// Q8_0, Q4_0, F16, Q4_K, Q6_K and the 8-row layouts: best of 5 runs (the machine is shared; the minimum is
// the signal).
BENCHMARK(BM_MatvecFromDram)
    ->ArgsProduct({{3, 4, 1, 8, 10, q4_0_x8_index, q4_k_x8_index, q8_0_x8_index, q6_k_x8_index,
                    q5_k_x8_index}})
    ->ArgNames({"type"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK(BM_Matmul)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, true); });
// Speedups: the oracle and the portable kernels on the 2048x2048 shape only (they are slow).
BENCHMARK(BM_Portable)
    ->ArgsProduct({{3, 4, 8}, {2048}, {2048}, {1, 128}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Reference)
    ->ArgsProduct({{3, 4, 8}, {2048}, {2048}, {1, 16}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

// Repacking cost alone (model load): one 5632x2048 matrix into an already faulted-in buffer, on the
// pool as the loader does. Counter: source GB/s.
void BM_PackX8(benchmark::State& state) {
  const Matrix& m = matrix(types[state.range(0)], 5632, 2048);
  std::vector<std::uint8_t> out(m.bytes.size());
  for (auto _ : state) {
    benchmark::DoNotOptimize(exo::inference::pack_x8(m.view, out, &pool()).data);
  }
  state.SetLabel(std::string(exo::inference::tensor_type_name(m.view.type)));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(m.bytes.size()) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PackX8)->DenseRange(3, 4)->Arg(8)->Arg(9)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_X8Variant(benchmark::State& state, exo::inference::KernelVariant variant) {
  const Matrix& m = matrix_at(state.range(0), 2048, 2048);
  const std::int64_t n = state.range(1);
  const auto x = activations(n * m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(n * m.view.rows));
  for (auto _ : state) {
    exo::inference::matmul_with(variant, m.view, x, n, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(label_at(state.range(0)));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

// The same kernels on a 256 x 2048 matrix (at most 576 KiB, resident in a core's L2 cache): their
// compute rate with memory out of the way, for comparison with the weight stream's bandwidth.
void BM_X8Resident(benchmark::State& state, exo::inference::KernelVariant variant) {
  const Matrix& m = matrix_at(state.range(0), 256, 2048);
  const auto x = activations(m.view.cols);
  std::vector<float> y(static_cast<std::size_t>(m.view.rows));
  for (auto _ : state) {
    exo::inference::matmul_with(variant, m.view, x, 1, y, pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(label_at(state.range(0)));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(m.bytes.size()) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

const bool x8_variants_registered = [] {
  for (const auto variant : exo::inference::supported_variants()) {
    if (!exo::inference::uses_x8_layouts(variant)) continue;
    const std::string name = "BM_X8Variant/" + std::string(exo::inference::kernel_variant_name(variant));
    benchmark::RegisterBenchmark(name.c_str(), BM_X8Variant, variant)
        ->ArgsProduct({{q4_0_x8_index, q4_k_x8_index, q8_0_x8_index, q6_k_x8_index, q5_k_x8_index}, {1, 128}})
        ->ArgNames({"type", "tokens"})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        ("BM_X8Resident/" + std::string(exo::inference::kernel_variant_name(variant))).c_str(), BM_X8Resident,
        variant)
        ->ArgsProduct({{q4_0_x8_index, q4_k_x8_index, q8_0_x8_index, q6_k_x8_index, q5_k_x8_index}})
        ->ArgNames({"type"})
        ->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
