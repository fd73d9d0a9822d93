#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

namespace exo::inference {

namespace {

std::vector<float> penalised(std::span<const float> logits, const SamplingParams& params) {
  std::vector<float> out(logits.begin(), logits.end());
  if (params.repeat_penalty == 1.0F || params.repeat_penalty <= 0.0F || params.repeat_last_n == 0) return out;
  const std::size_t window =
      params.repeat_last_n < 0
          ? params.history.size()
          : std::min(params.history.size(), static_cast<std::size_t>(params.repeat_last_n));
  std::unordered_set<std::int32_t> seen;
  for (std::size_t i = params.history.size() - window; i < params.history.size(); ++i) {
    const std::int32_t id = params.history[i];
    if (id < 0 || static_cast<std::size_t>(id) >= out.size() || !seen.insert(id).second) continue;
    float& logit = out[static_cast<std::size_t>(id)];
    logit = logit > 0.0F ? logit / params.repeat_penalty : logit * params.repeat_penalty;
  }
  return out;
}

bool better(const SamplingCandidate& a, const SamplingCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

std::vector<SamplingCandidate> sampling_candidates(std::span<const float> logits,
                                                   const SamplingParams& params) {
  if (logits.empty()) throw std::invalid_argument("sampling: empty logits");
  const std::vector<float> values = penalised(logits, params);
  std::vector<SamplingCandidate> candidates(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    candidates[i] = {static_cast<std::int32_t>(i), std::isnan(values[i]) ? -INFINITY : values[i], 0.0};

  if (params.temperature <= 0.0F) {
    SamplingCandidate best = *std::min_element(candidates.begin(), candidates.end(), better);
    best.probability = 1.0;
    return {best};
  }
  std::size_t keep = candidates.size();
  if (params.top_k > 0) keep = std::min(keep, static_cast<std::size_t>(params.top_k));
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep),
                    candidates.end(), better);
  candidates.resize(keep);

  const double top = candidates.front().logit;
  double total = 0;
  for (auto& c : candidates) {
    c.probability = std::exp((static_cast<double>(c.logit) - top) / static_cast<double>(params.temperature));
    total += c.probability;
  }
  for (auto& c : candidates) c.probability /= total;

  if (params.top_p < 1.0F) {
    double sum = 0;
    std::size_t n = 0;
    while (n < candidates.size()) {
      sum += candidates[n++].probability;
      if (sum >= static_cast<double>(params.top_p)) break;
    }
    candidates.resize(std::max<std::size_t>(n, 1));
  }
  if (params.min_p > 0.0F) {
    const double floor = static_cast<double>(params.min_p) * candidates.front().probability;
    const auto end = std::find_if(candidates.begin() + 1, candidates.end(),
                                  [floor](const SamplingCandidate& c) { return c.probability < floor; });
    candidates.erase(end, candidates.end());
  }
  total = 0;
  for (const auto& c : candidates) total += c.probability;
  for (auto& c : candidates) c.probability /= total;
  return candidates;
}

std::int32_t sample_token(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng) {
  const std::vector<SamplingCandidate> candidates = sampling_candidates(logits, params);
  if (candidates.size() == 1) return candidates.front().id;
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  double sum = 0;
  for (const auto& c : candidates) {
    sum += c.probability;
    if (u < sum) return c.id;
  }
  return candidates.back().id;
}

std::uint64_t derive_sampling_seed(std::uint64_t seed, std::span<const float> logits) noexcept {
  // FNV-1a over the logits' bytes, then a splitmix64 finaliser mixing in the seed.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const float v : logits) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 4; ++i) {
      hash ^= (bits >> (8 * i)) & 0xFFU;
      hash *= 0x100000001b3ULL;
    }
  }
  std::uint64_t z = hash ^ (seed + 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace exo::inference
