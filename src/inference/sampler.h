// Sampling the next token from logits: greedy, temperature, top-k, top-p, min-p, repetition penalty.
//
// Contract: pure functions (the only state is the caller's random generator); safe from any thread.
// The steps, in order:
//   1. repetition penalty: every distinct id among the last repeat_last_n entries of params.history
//      has its logit divided by repeat_penalty when positive, multiplied when negative (1 = off);
//   2. temperature <= 0: greedy, the highest logit (ties: the lowest id); stop;
//   3. candidates sorted by logit (ties: lower id first); top_k > 0 keeps the first top_k;
//   4. probabilities = softmax(logit / temperature) over the candidates;
//   5. top_p < 1 keeps the shortest prefix whose probability sum reaches top_p (at least one);
//   6. min_p > 0 keeps candidates with p >= min_p * p(first);
//   7. one draw u in [0, 1) (53 bits of the generator) picks from the renormalised distribution.
// Same logits, params and generator state -> same token, on every platform.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace exo::inference {

// The sampling settings of a request (the steps above). Defaults: greedy, every filter off.
struct SamplingParams {
  float temperature = 0.0F;  // 0 = greedy
  float top_p = 1.0F;
  std::uint64_t seed = 0;
  std::int32_t top_k = 0;       // 0 = no top-k filter
  float min_p = 0.0F;           // drop tokens with p < min_p * p(best); 0 = off
  float repeat_penalty = 1.0F;  // > 1 discourages the last repeat_last_n tokens of `history`
  std::int32_t repeat_last_n = 64;
  std::vector<std::int32_t> history{};  // the request's tokens so far (prompt + generated), oldest first
};

struct SamplingCandidate {
  std::int32_t id = 0;
  float logit = 0.0F;        // after the penalty
  double probability = 0.0;  // after every filter, renormalised
};

// Steps 1 and 3-6: the candidates that may be drawn, best first. Greedy (temperature <= 0) gives the
// single best candidate with probability 1. Throws std::invalid_argument for empty logits.
std::vector<SamplingCandidate> sampling_candidates(std::span<const float> logits,
                                                   const SamplingParams& params);

// Steps 1-7.
std::int32_t sample_token(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng);

// A generator seed derived from the request's seed and the logits, for callers with no per-request
// generator state: the same (seed, logits) always gives the same draw, different steps of a
// generation (different logits) get different draws.
std::uint64_t derive_sampling_seed(std::uint64_t seed, std::span<const float> logits) noexcept;

}  // namespace exo::inference
