// Sampler: greedy, reproducibility with a seed, and the effect of each filter on hand-built logits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "inference/sampler.h"

namespace exo::inference {
namespace {

std::vector<std::int32_t> ids_of(const std::vector<SamplingCandidate>& candidates) {
  std::vector<std::int32_t> ids;
  for (const auto& c : candidates) ids.push_back(c.id);
  return ids;
}

const std::vector<float> kLogits{1.0F, 3.0F, 2.0F, 3.0F, -1.0F, 0.5F};

TEST(Sampler, GreedyTakesTheBestLogitAndTheLowestIdOnTies) {
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(kLogits, SamplingParams{}, rng), 1);
  const std::vector<float> distinct{0.1F, -2.0F, 7.5F, 7.0F};
  EXPECT_EQ(sample_token(distinct, SamplingParams{}, rng), 2);
  EXPECT_THROW(sample_token(std::vector<float>{}, SamplingParams{}, rng), std::invalid_argument);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedsDiffer) {
  SamplingParams params;
  params.temperature = 1.0F;
  const std::vector<float> flat(50, 0.0F);  // uniform: any token may come out
  auto run = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::int32_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(sample_token(flat, params, rng));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  EXPECT_EQ(derive_sampling_seed(5, kLogits), derive_sampling_seed(5, kLogits));
  EXPECT_NE(derive_sampling_seed(5, kLogits), derive_sampling_seed(6, kLogits));
  EXPECT_NE(derive_sampling_seed(5, kLogits), derive_sampling_seed(5, flat));
}

TEST(Sampler, TemperatureSamplingFollowsTheSoftmax) {
  SamplingParams params;
  params.temperature = 0.5F;
  const std::vector<float> logits{0.0F, std::log(2.0F) * 0.5F};  // p = 1/3, 2/3 at temperature 0.5
  std::mt19937_64 rng(9);
  int ones = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) ones += sample_token(logits, params, rng);
  EXPECT_NEAR(static_cast<double>(ones) / draws, 2.0 / 3.0, 0.02);
}

TEST(Sampler, TopKKeepsTheKBest) {
  SamplingParams params;
  params.temperature = 1.0F;
  params.top_k = 3;
  EXPECT_EQ(ids_of(sampling_candidates(kLogits, params)), (std::vector<std::int32_t>{1, 3, 2}));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    const auto id = sample_token(kLogits, params, rng);
    EXPECT_TRUE(id == 1 || id == 2 || id == 3) << id;
  }
}

TEST(Sampler, TopPKeepsTheShortestPrefixReachingP) {
  SamplingParams params;
  params.temperature = 1.0F;
  // Probabilities proportional to 4, 2, 1, 1 -> 0.5, 0.25, 0.125, 0.125.
  const std::vector<float> logits{std::log(1.0F), std::log(4.0F), std::log(2.0F), std::log(1.0F)};
  params.top_p = 0.7F;
  EXPECT_EQ(ids_of(sampling_candidates(logits, params)), (std::vector<std::int32_t>{1, 2}));
  params.top_p = 0.5F;
  EXPECT_EQ(ids_of(sampling_candidates(logits, params)), (std::vector<std::int32_t>{1}));
  params.top_p = 0.0F;  // at least one survives
  EXPECT_EQ(ids_of(sampling_candidates(logits, params)), (std::vector<std::int32_t>{1}));
  params.top_p = 0.7F;
  const auto kept = sampling_candidates(logits, params);
  EXPECT_NEAR(kept[0].probability, 2.0 / 3.0, 1e-9);  // renormalised
}

TEST(Sampler, MinPDropsTokensFarBelowTheBest) {
  SamplingParams params;
  params.temperature = 1.0F;
  const std::vector<float> logits{std::log(1.0F), std::log(4.0F), std::log(2.0F), std::log(1.0F)};
  params.min_p = 0.3F;  // keep p >= 0.3 * 0.5 = 0.15
  EXPECT_EQ(ids_of(sampling_candidates(logits, params)), (std::vector<std::int32_t>{1, 2}));
  params.min_p = 0.6F;
  EXPECT_EQ(ids_of(sampling_candidates(logits, params)), (std::vector<std::int32_t>{1}));
}

TEST(Sampler, RepetitionPenaltyDiscouragesRecentTokensOnly) {
  SamplingParams params;
  const std::vector<float> logits{2.0F, 1.9F, -1.0F};
  std::mt19937_64 rng(1);
  params.repeat_penalty = 1.5F;
  params.history = {0, 0, 2};
  EXPECT_EQ(sample_token(logits, params, rng), 1);  // 2.0 / 1.5 < 1.9
  params.temperature = 1.0F;
  const auto candidates = sampling_candidates(logits, params);
  std::map<std::int32_t, float> by_id;
  for (const auto& c : candidates) by_id[c.id] = c.logit;
  EXPECT_FLOAT_EQ(by_id[0], 2.0F / 1.5F);  // positive: divided (once, though it occurs twice)
  EXPECT_FLOAT_EQ(by_id[2], -1.5F);        // negative: multiplied
  EXPECT_FLOAT_EQ(by_id[1], 1.9F);         // not in the history
  // Outside the window: no penalty.
  params.repeat_last_n = 1;
  params.temperature = 0.0F;
  EXPECT_EQ(sample_token(logits, params, rng), 0);
}

}  // namespace
}  // namespace exo::inference
