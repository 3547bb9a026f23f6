// Tests of the continuous (Chiang et al.) prior's numerical core: worker/numerics/interpolator_continuous.h
// (shared/papers/interpolators.md §3, §8 "unit-test invariants"; issue 3 §1 G&C vs SGD).
#include "worker/numerics/interpolator_continuous.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "common/errors.h"
#include "common/random.h"
#include "worker/numerics/philox.h"

namespace gdlab::interp {
namespace {

ContinuousProblem kink_problem(int width, int n_max, int streams, std::uint64_t campaign = 7) {
  ContinuousProblem p;
  p.input_dim = 2;
  p.width = width;
  p.inputs = ContinuousInputs::kKink;
  p.n_max = n_max;
  p.test_points = 1200;  // Chiang: the last 30% of 4,000
  for (int r = 0; r < streams; ++r) {
    p.data_seeds.push_back(derive_seed(campaign, 0, 0, static_cast<std::uint64_t>(r)));
    p.guess_keys.push_back(stream_key(derive_seed(campaign, 0, 1, 1000 + static_cast<std::uint64_t>(r))));
  }
  return p;
}

// Spec §7.1's task with the continuous student: x ∈ {±1}^8, teacher maj(x1, x2, x3).
ContinuousProblem majority3_problem(int width, int n_max, int streams, std::uint64_t campaign = 7) {
  ContinuousProblem p = kink_problem(width, n_max, streams, campaign);
  p.inputs = ContinuousInputs::kBinary;
  p.input_dim = 8;
  p.majority = 3;
  return p;
}

// Runs stream r in blocks until every grid N holds `keep` kept guesses or `budget` guesses are
// spent; merges blocks in index order (the kind's merge rule).
BlockResult run_stream(const GuessSampler& s, int r, const std::vector<int>& grid, int keep, std::uint64_t budget,
                       std::uint64_t block = 1u << 18) {
  BlockResult total;
  total.survival.assign(static_cast<std::size_t>(s.n_max()) + 1, 0);
  total.kept.resize(grid.size());
  for (std::uint64_t g = 0; g < budget; g += block) {
    const BlockResult b = s.run_block(r, g, std::min(budget, g + block), grid, keep);
    total.guesses += b.guesses;
    for (std::size_t t = 0; t < b.survival.size(); ++t) total.survival[t] += b.survival[t];
    bool full = true;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      for (const KeptGuess& k : b.kept[i])
        if (static_cast<int>(total.kept[i].size()) < keep) total.kept[i].push_back(k);
      full = full && static_cast<int>(total.kept[i].size()) >= keep;
    }
    if (full) break;
  }
  return total;
}

// Mean G&C test error per grid N over all streams (kept guesses of every stream pooled).
std::vector<double> gc_mean_errors(const ContinuousProblem& p, const std::vector<int>& grid, int keep,
                                   std::uint64_t budget) {
  const auto sampler = make_continuous_sampler(p);
  std::vector<double> sum(grid.size(), 0.0), count(grid.size(), 0.0);
  for (int r = 0; r < sampler->streams(); ++r) {
    const BlockResult b = run_stream(*sampler, r, grid, keep, budget);
    for (std::size_t i = 0; i < grid.size(); ++i)
      for (const KeptGuess& k : b.kept[i]) {
        sum[i] += k.test_error;
        count[i] += 1.0;
      }
  }
  for (std::size_t i = 0; i < grid.size(); ++i) {
    EXPECT_GE(count[i], 0.9 * keep * sampler->streams()) << "too few interpolators at N = " << grid[i];
    sum[i] /= std::max(count[i], 1.0);
  }
  return sum;
}

// ---- the canonical mapping ------------------------------------------------------------------------

TEST(ContinuousMapping, WordToUniformIsExactSymmetricAndOpen) {
  EXPECT_EQ(uniform_from_word(0u), -1.0 + 0x1.0p-32);
  EXPECT_EQ(uniform_from_word(0xFFFFFFFFu), 1.0 - 0x1.0p-32);
  EXPECT_EQ(uniform_from_word(0x7FFFFFFFu), -0x1.0p-32);
  EXPECT_EQ(uniform_from_word(0x80000000u), 0x1.0p-32);
  Rng rng(3);
  for (int i = 0; i < 100000; ++i) {
    const auto w = static_cast<std::uint32_t>(rng.next_u64());
    const double v = uniform_from_word(w);
    // −1 + 2(w + 0.5)/2^32, evaluated in long double as an independent reference.
    EXPECT_EQ(static_cast<long double>(v), -1.0L + 2.0L * (static_cast<long double>(w) + 0.5L) / 4294967296.0L);
    EXPECT_EQ(uniform_from_word(~w), -v);  // the prior is exactly symmetric
    EXPECT_GT(v, -1.0);
    EXPECT_LT(v, 1.0);
  }
}

TEST(ContinuousMapping, ParametersAreWordJOfTheGuessStream) {
  const StreamKey key = stream_key(0x0123456789ABCDEFull);
  const int width = 5, d = 3;
  const int P = continuous_parameter_count(d, width);
  EXPECT_EQ(P, 3 * 5 + 2 * 5 + 2);
  EXPECT_EQ(continuous_parameter_count(2, 20), 4 * 20 + 2);  // spec §3.2: 4u + 2
  for (std::uint64_t g : {0ull, 1ull, 77ull, (1ull << 32) + 5}) {
    std::vector<double> a(P), b(P);
    continuous_guess_parameters(key, g, a);
    continuous_guess_parameters(key, g, b);
    EXPECT_EQ(a, b);
    for (int j = 0; j < P; ++j) {
      const PhiloxBlock blk = philox4x32_10({static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32),
                                             static_cast<std::uint32_t>(j / 4), 0u},
                                            key);
      EXPECT_EQ(a[j], uniform_from_word(blk[j % 4])) << "guess " << g << " parameter " << j;
    }
  }
}

TEST(ContinuousMapping, PriorMomentsAreUniformMinusOneOne) {
  const StreamKey key = stream_key(99);
  std::vector<double> th(continuous_parameter_count(2, 20));
  double sum = 0, sum2 = 0, n = 0;
  for (std::uint64_t g = 0; g < 20000; ++g) {
    continuous_guess_parameters(key, g, th);
    for (double v : th) {
      sum += v;
      sum2 += v * v;
      n += 1;
    }
  }
  EXPECT_NEAR(sum / n, 0.0, 4.0 * std::sqrt(1.0 / 3.0 / n));
  EXPECT_NEAR(sum2 / n, 1.0 / 3.0, 0.005);  // Var U[−1,1] = 1/3
}

TEST(ContinuousModel, PredictMatchesHandComputedLogits) {
  // d = 2, u = 2: W1 = [[1, −1], [0.5, 2]], W2 = [[1, −1], [0.25, 0.5]], b2 = (0.1, −0.1).
  const std::vector<double> th = {1, -1, 0.5, 2, 1, -1, 0.25, 0.5, 0.1, -0.1};
  const double x1[] = {1.0, 1.0};  // a = (1.5, 1): z0 = 0.1 + 1.5 + 0.25 = 1.85, z1 = −0.1 − 1.5 + 0.5 = −1.1
  EXPECT_EQ(continuous_predict(th, 2, 2, x1), 0);
  const double x2[] = {-1.0, 1.0};  // a = (−0.5, 3): z0 = 0.1 + 0.75, z1 = −0.1 + 1.5
  EXPECT_EQ(continuous_predict(th, 2, 2, x2), 1);
  const std::vector<double> tie = {1, 1, 1, 1, 0, 0, 0, 0, 0.5, 0.5};  // z0 == z1 → class 0
  EXPECT_EQ(continuous_predict(tie, 2, 2, x2), 0);
}

// ---- data ----------------------------------------------------------------------------------------

TEST(ContinuousData, KinkIsChiangsPolylinesTrainTestDisjoint) {
  ContinuousProblem p = kink_problem(4, 30, 2);
  p.test_points = 10000;  // capped at 4000 − n_max
  const ContinuousData a = make_continuous_data(p, 0), b = make_continuous_data(p, 1);
  ASSERT_EQ(a.train_size(), 30);
  ASSERT_EQ(a.test_size(), 4000 - 30);
  EXPECT_NE(a.train_x, b.train_x);  // streams differ
  EXPECT_EQ(a.train_x, make_continuous_data(p, 0).train_x);  // deterministic
  int class1 = 0;
  std::multiset<std::pair<double, double>> all;
  auto check = [&](const std::vector<double>& xs, const std::vector<std::uint8_t>& ys) {
    for (std::size_t n = 0; n < ys.size(); ++n) {
      const double x = xs[2 * n], y = xs[2 * n + 1];
      EXPECT_LE(std::abs(x), 1.0);
      EXPECT_NEAR(y, -std::abs(x) + (ys[n] == 1 ? 0.0 : 0.25), 1e-12);  // class 1 on y = −|x|
      class1 += ys[n];
      all.insert({x, y});
    }
  };
  check(a.train_x, a.train_y);
  check(a.test_x, a.test_y);
  EXPECT_EQ(class1, 2000);  // train + test = all 4,000 points: disjoint, 2,000 per class
  EXPECT_EQ(all.count({0.0, 0.0}), 2u);  // linspace(−1,0) ++ linspace(0,1) holds x = 0 twice
  EXPECT_EQ(all.count({-1.0, -1.0}), 1u);
}

TEST(ContinuousData, BinaryMajorityExactTestSetAndNoReplacement) {
  ContinuousProblem p = majority3_problem(2, 200, 1);
  p.with_replacement = false;
  const ContinuousData data = make_continuous_data(p, 0);
  ASSERT_EQ(data.test_size(), 256);  // exact: every input of {±1}^8
  std::set<std::vector<double>> distinct;
  for (int n = 0; n < data.train_size(); ++n) {
    const double* x = &data.train_x[static_cast<std::size_t>(n) * 8];
    distinct.insert(std::vector<double>(x, x + 8));
    EXPECT_EQ(data.train_y[n], x[0] + x[1] + x[2] > 0 ? 1 : 0);
  }
  EXPECT_EQ(distinct.size(), 200u);
  int ones = 0;
  for (auto y : data.test_y) ones += y;
  EXPECT_EQ(ones, 128);  // majority of 3 is balanced
}

// ---- the sampler -----------------------------------------------------------------------------------

// The batched evaluator (vectorised Philox over 64 guesses) gives every guess exactly the T and the
// test error of the canonical scalar path; every kept guess re-verifies on S_N (spec §8 (ii)).
void check_against_scalar(const ContinuousProblem& p, std::uint64_t g0, std::uint64_t g1) {
  const auto sampler = make_continuous_sampler(p);
  const std::vector<int> grid = {0, 1, 3, p.n_max};
  const int keep = static_cast<int>(g1 - g0);
  const BlockResult b = sampler->run_block(0, g0, g1, grid, keep);
  ASSERT_EQ(b.guesses, g1 - g0);
  ASSERT_EQ(b.kept[0].size(), g1 - g0);  // N = 0 keeps every guess
  const ContinuousData data = make_continuous_data(p, 0);
  std::vector<double> th(continuous_parameter_count(p.input_dim, p.width));
  std::vector<std::int64_t> survival(static_cast<std::size_t>(p.n_max) + 1, 0);
  for (std::uint64_t g = g0; g < g1; ++g) {
    const KeptGuess& k = b.kept[0][g - g0];
    ASSERT_EQ(k.guess, g);
    continuous_guess_parameters(p.guess_keys[0], g, th);
    const int t = continuous_fitted_prefix(th, p.width, data, p.n_max);
    ++survival[static_cast<std::size_t>(t)];
    ASSERT_EQ(k.fitted, t) << "guess " << g;
    ASSERT_EQ(k.test_error, continuous_test_error(th, p.width, data)) << "guess " << g;
  }
  EXPECT_EQ(b.survival, survival);
  for (std::size_t i = 1; i < grid.size(); ++i)
    for (const KeptGuess& k : b.kept[i]) {
      continuous_guess_parameters(p.guess_keys[0], k.guess, th);
      EXPECT_GE(continuous_fitted_prefix(th, p.width, data, grid[i]), grid[i]);
      EXPECT_GE(k.fitted, grid[i]);
    }
}

TEST(ContinuousSampler, BatchedMatchesScalarAndKeptReverifyKink) { check_against_scalar(kink_problem(4, 11, 1), 1000, 4157); }
TEST(ContinuousSampler, BatchedMatchesScalarAndKeptReverifyMajority) {
  check_against_scalar(majority3_problem(5, 12, 1), (1ull << 32) - 70, (1ull << 32) + 900);  // crosses hi32(g)
}
TEST(ContinuousSampler, BatchedMatchesScalarGaussian) {
  ContinuousProblem p = majority3_problem(3, 10, 1);
  p.inputs = ContinuousInputs::kGaussian;
  p.input_dim = 5;
  p.test_points = 500;
  check_against_scalar(p, 0, 1500);
}

TEST(ContinuousSampler, BlockSplitIsOrderIndependent) {
  const ContinuousProblem p = kink_problem(4, 11, 2);
  const auto sampler = make_continuous_sampler(p);
  const std::vector<int> grid = {0, 4, 8, 11};
  const int keep = 15;
  const std::uint64_t G = 300000;
  const BlockResult whole = sampler->run_block(1, 0, G, grid, keep);
  // Blocks of odd sizes, computed in reverse order, merged in index order.
  const std::vector<std::uint64_t> cuts = {0, 1, 37, 100003, 100004, 250001, G};
  std::vector<BlockResult> parts(cuts.size() - 1);
  for (std::size_t i = parts.size(); i-- > 0;) parts[i] = sampler->run_block(1, cuts[i], cuts[i + 1], grid, keep);
  std::vector<std::int64_t> survival(whole.survival.size(), 0);
  std::vector<std::vector<KeptGuess>> kept(grid.size());
  std::uint64_t guesses = 0;
  for (const BlockResult& b : parts) {
    guesses += b.guesses;
    for (std::size_t t = 0; t < survival.size(); ++t) survival[t] += b.survival[t];
    for (std::size_t i = 0; i < grid.size(); ++i)
      for (const KeptGuess& k : b.kept[i])
        if (static_cast<int>(kept[i].size()) < keep) kept[i].push_back(k);
  }
  EXPECT_EQ(guesses, G);
  EXPECT_EQ(survival, whole.survival);
  for (std::size_t i = 0; i < grid.size(); ++i) {
    ASSERT_EQ(kept[i].size(), whole.kept[i].size()) << "N = " << grid[i];
    ASSERT_EQ(whole.kept[i].size(), static_cast<std::size_t>(keep));
    for (std::size_t j = 0; j < kept[i].size(); ++j) {
      EXPECT_EQ(kept[i][j].guess, whole.kept[i][j].guess);
      EXPECT_EQ(kept[i][j].fitted, whole.kept[i][j].fitted);
      EXPECT_EQ(kept[i][j].test_error, whole.kept[i][j].test_error);
      if (j > 0) {
        EXPECT_LT(whole.kept[i][j - 1].guess, whole.kept[i][j].guess);
      }
    }
  }
}

// p(S_N) is non-increasing (spec §8 (i)), p(S_0) = 1, and by the prior's exact symmetry
// (W2 columns and b2 swapped ↔ logits swapped) P[class(x) = 1] = 1/2 for every x, so p(S_1) ≈ 1/2.
TEST(ContinuousSampler, SurvivalNonIncreasingAndFirstPointHalf) {
  for (const ContinuousProblem& p : {kink_problem(6, 16, 1), majority3_problem(4, 16, 1)}) {
    const auto sampler = make_continuous_sampler(p);
    const std::uint64_t G = 400000;
    const BlockResult b = sampler->run_block(0, 0, G, std::vector<int>{}, 0);
    std::int64_t at_least = 0;
    std::vector<double> p_s(b.survival.size());
    for (std::size_t t = b.survival.size(); t-- > 0;) {
      at_least += b.survival[t];
      p_s[t] = static_cast<double>(at_least) / static_cast<double>(G);
    }
    EXPECT_EQ(p_s[0], 1.0);
    for (std::size_t t = 1; t < p_s.size(); ++t) EXPECT_LE(p_s[t], p_s[t - 1]);
    EXPECT_NEAR(p_s[1], 0.5, 4.0 * std::sqrt(0.25 / G));
    EXPECT_LT(p_s[8], 0.05);
  }
}

// Prior symmetry (spec §7.3 analogue): the mean test error of prior samples (N = 0) on a balanced
// task is 1/2. 10 streams × 300 samples; tolerance 0.02 (≈ 3 standard errors, measured SE 0.006).
TEST(ContinuousGuessAndCheck, PriorSamplesHaveErrorOneHalf) {
  const std::vector<double> e = gc_mean_errors(majority3_problem(4, 4, 10), {0}, 300, 1u << 20);
  EXPECT_NEAR(e[0], 0.5, 0.02);
  const std::vector<double> k = gc_mean_errors(kink_problem(4, 4, 10), {0}, 300, 1u << 20);
  EXPECT_NEAR(k[0], 0.5, 0.02);
}

// Learning curves (Chiang et al. Fig. 2 data; spec §7.1 task): the mean test error of G&C
// interpolators falls with N. 10 streams × 20 interpolators per N.
// Measured (this seed): kink u = 4: 0.476 (N=2), 0.284 (N=8), 0.074 (N=16);
//                       majority-3 u = 4: 0.477, 0.378, 0.253.
TEST(ContinuousGuessAndCheck, KinkLearningCurveFalls) {
  const std::vector<double> e = gc_mean_errors(kink_problem(4, 16, 10), {2, 8, 16}, 20, 1u << 22);
  RecordProperty("kink_err_N2_8_16", std::to_string(e[0]) + " " + std::to_string(e[1]) + " " + std::to_string(e[2]));
  EXPECT_GT(e[0], 0.40);
  EXPECT_LT(e[1], e[0] - 0.10);
  EXPECT_LT(e[2], e[1] - 0.10);
  EXPECT_LT(e[2], 0.15);
}

TEST(ContinuousGuessAndCheck, Majority3LearningCurveFalls) {
  const std::vector<double> e = gc_mean_errors(majority3_problem(4, 16, 10), {2, 8, 16}, 20, 1u << 22);
  RecordProperty("maj3_err_N2_8_16", std::to_string(e[0]) + " " + std::to_string(e[1]) + " " + std::to_string(e[2]));
  EXPECT_GT(e[0], 0.43);
  EXPECT_LT(e[1], e[0] - 0.05);
  EXPECT_LT(e[2], e[1] - 0.07);
  EXPECT_LT(e[2], 0.32);
}

// Negative control: with coin-flip training labels, G&C interpolators carry no information about
// the teacher, so their test error stays ≈ 1/2 (measured 0.491 at N = 8), while the true labels
// give ≈ 0.38 at the same N. A sampler that ignored the labels or leaked test labels would fail.
TEST(ContinuousGuessAndCheck, ShuffledLabelsStayAtChance) {
  ContinuousProblem p = majority3_problem(4, 8, 10);
  p.random_train_labels = true;
  const std::vector<double> control = gc_mean_errors(p, {8}, 20, 1u << 22);
  EXPECT_NEAR(control[0], 0.5, 0.05);
  const std::vector<double> real = gc_mean_errors(majority3_problem(4, 8, 10), {8}, 20, 1u << 22);
  EXPECT_LT(real[0], control[0] - 0.07);
}

// ---- SGD baseline ----------------------------------------------------------------------------------

TEST(ContinuousSgd, InterpolatesSmallNWithFiniteError) {
  ContinuousProblem p = majority3_problem(4, 16, 3);
  p.sgd = {.runs = 8, .lr = 0.1, .epochs = 1000, .batch_size = 3, .init = SgdInit::kUniform, .n_grid = {2, 8, 16}};
  double err2 = 0, err16 = 0;
  int interpolated = 0;
  for (int r = 0; r < 3; ++r) {
    const ContinuousData data = make_continuous_data(p, r);
    for (int n : {2, 8}) {
      const std::vector<SgdRun> runs = sgd_runs(p, data, n, 11 + r);
      ASSERT_EQ(runs.size(), 8u);
      for (const SgdRun& run : runs) {
        interpolated += run.interpolated;
        if (!run.interpolated) {
          EXPECT_EQ(run.epochs, 1000);  // only a run that used every epoch may miss
        }
        EXPECT_TRUE(std::isfinite(run.test_error));
        EXPECT_GE(run.test_error, 0.0);
        EXPECT_LE(run.test_error, 1.0);
        EXPECT_LE(run.epochs, 1000);
        if (n == 2) err2 += run.test_error / 24;
      }
    }
    for (const SgdRun& run : sgd_runs(p, data, 16, 11 + r)) err16 += run.test_error / 24;
  }
  // Without hidden biases a U[−1,1] init can leave every ReLU dead on a training point, and then
  // SGD never moves it (measured: 47 of 48 runs interpolate, the 48th is stuck at N = 2).
  EXPECT_GE(interpolated, 43) << "of 48";
  // SGD learns the teacher too (measured ≈ 0.46 at N = 2, ≈ 0.25 at N = 16 with 200 epochs).
  EXPECT_LT(err16, err2 - 0.08);
  // The wrapper: same seed → the same errors; runs differ from each other.
  const std::vector<double> e1 = sgd_test_errors(p, 0, 8, 5), e2 = sgd_test_errors(p, 0, 8, 5);
  EXPECT_EQ(e1, e2);
  EXPECT_GT(std::set<double>(e1.begin(), e1.end()).size(), 1u);
}

TEST(ContinuousSgd, KinkDefaultInitTrainsAndZeroRunsIsEmpty) {
  ContinuousProblem p = kink_problem(10, 11, 1);
  p.sgd = {.runs = 4, .lr = 0.1, .epochs = 200, .batch_size = 3, .init = SgdInit::kDefault, .n_grid = {11}};
  for (const SgdRun& run : sgd_runs(p, 0, 4, 3)) {
    EXPECT_TRUE(std::isfinite(run.test_error));
    EXPECT_GE(run.test_error, 0.0);
    EXPECT_LE(run.test_error, 1.0);
  }
  p.sgd.runs = 0;
  EXPECT_TRUE(sgd_test_errors(p, 0, 4, 3).empty());
}

// ---- bad configurations -----------------------------------------------------------------------------

void expect_field(const ContinuousProblem& p, const std::string& field) {
  try {
    validate(p);
    ADD_FAILURE() << "no SpecError, expected field " << field;
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
  }
  EXPECT_THROW(make_continuous_sampler(p), SpecError);
}

TEST(ContinuousValidate, BadConfigsNameTheField) {
  EXPECT_NO_THROW(validate(kink_problem(4, 11, 2)));
  EXPECT_NO_THROW(validate(majority3_problem(4, 11, 2)));
  auto k = [] { return kink_problem(4, 11, 2); };
  auto m = [] { return majority3_problem(4, 11, 2); };
  ContinuousProblem p;
  p = k(); p.width = 0; expect_field(p, "width");
  p = k(); p.input_dim = 3; expect_field(p, "input_dim");  // KINK requires input_dim 2
  p = m(); p.input_dim = 0; expect_field(p, "input_dim");
  p = m(); p.majority = 2; expect_field(p, "teacher.majority");
  p = m(); p.majority = 9; expect_field(p, "teacher.majority");
  p = m(); p.inputs = ContinuousInputs::kGaussian; p.test_points = 0; expect_field(p, "test_points");
  p = k(); p.test_points = -5; expect_field(p, "test_points");
  p = m(); p.inputs = ContinuousInputs::kGaussian; p.with_replacement = false; expect_field(p, "with_replacement");
  p = m(); p.with_replacement = false; p.n_max = 300; expect_field(p, "with_replacement");  // > 2^8 points
  p = k(); p.n_max = 4000; expect_field(p, "n_grid");
  p = k(); p.guess_keys.pop_back(); expect_field(p, "streams");
  p = k(); p.data_seeds.clear(); p.guess_keys.clear(); expect_field(p, "streams");
  p = k(); p.sgd.lr = 0.0; expect_field(p, "sgd.lr");
  p = k(); p.sgd.lr = -0.1; expect_field(p, "sgd.lr");
  p = k(); p.sgd.lr = std::numeric_limits<double>::quiet_NaN(); expect_field(p, "sgd.lr");
  p = k(); p.sgd.epochs = -1; expect_field(p, "sgd.epochs");
  p = k(); p.sgd.batch_size = 0; expect_field(p, "sgd.batch_size");
  p = k(); p.sgd.runs = -1; expect_field(p, "sgd.runs");
  p = k(); p.sgd.n_grid = {4, 12}; expect_field(p, "n_grid");  // 12 > N_max = 11
  p = k(); p.sgd.n_grid = {4, 4}; expect_field(p, "n_grid");
}

}  // namespace
}  // namespace gdlab::interp
