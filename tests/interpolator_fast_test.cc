// The fast guess-and-check kernel (worker/numerics/interpolator_fast.h) against an independent
// scalar reference written here from the canonical guess → parameters mapping (the shared contract
// of issue 3: GuessWords + uniform_below per chunk, mixed-radix digit decode by division, level
// tables, and a direct evaluation of the network on every training point), for every instruction-set
// path the CPU offers. Spec: shared/papers/interpolators.md §6.2 (tricks 1, 3, 5, 9) and §7.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "common/random.h"
#include "worker/numerics/interpolator_fast.h"
#include "worker/numerics/philox.h"

namespace gdlab::interp {
namespace {

using Reported = std::vector<std::pair<std::uint64_t, int>>;

// Ascending level table of the contract: odd Q → −(Q−1)/2 … (Q−1)/2; even Q → odd integers ±1 … ±(Q−1).
std::vector<int> default_levels(int q) {
  std::vector<int> levels;
  for (int i = 0; i < q; ++i) levels.push_back(q % 2 == 1 ? i - (q - 1) / 2 : 2 * i - (q - 1));
  return levels;
}

// ---- The reference: a literal reading of the contract, one guess at a time. ----------------------
struct ReferenceGuess {
  bool rejected = false;  // some chunk's first word was rejected by Lemire (the word stream shifted)
  int fitted = 0;         // T (meaningful also when rejected: the parameters of the shifted stream)
};

// Lemire's draw, counting the words it consumes; must agree with philox.h's uniform_below.
std::uint32_t counted_uniform(GuessWords& words, std::uint64_t range, int& consumed) {
  const std::uint64_t two32 = std::uint64_t{1} << 32;
  for (;;) {
    const std::uint32_t w = words.next();
    ++consumed;
    if (range == two32) return w;
    const std::uint64_t m = std::uint64_t{w} * range;
    if (static_cast<std::uint32_t>(m) >= static_cast<std::uint32_t>(two32 % range)) return static_cast<std::uint32_t>(m >> 32);
  }
}

ReferenceGuess reference_guess(const FastTwoLayerProblem& p, std::uint64_t g) {
  const std::uint64_t q = static_cast<std::uint64_t>(p.q);
  std::uint64_t hidden_radix = 1, output_radix = 1;
  for (int i = 0; i <= p.input_dim; ++i) hidden_radix *= q;
  for (int i = 0; i <= p.width; ++i) output_radix *= q;
  std::vector<std::uint64_t> radix(static_cast<std::size_t>(p.width), hidden_radix);
  radix.push_back(output_radix);

  // Greedy chunks of whole units with radix product ≤ 2^32 (contract item 2).
  std::vector<std::vector<int>> chunks;
  std::uint64_t product = 0;
  for (int u = 0; u <= p.width; ++u) {
    if (!chunks.empty() && product * radix[static_cast<std::size_t>(u)] <= (std::uint64_t{1} << 32)) {
      product *= radix[static_cast<std::size_t>(u)];
      chunks.back().push_back(u);
    } else {
      chunks.push_back({u});
      product = radix[static_cast<std::size_t>(u)];
    }
  }

  // Draw each chunk (contract item 3) and decode the unit codes, first unit least significant.
  ReferenceGuess result;
  GuessWords words(p.key, g), words_again(p.key, g);
  int consumed = 0;
  std::vector<std::uint64_t> code(radix.size());
  for (const auto& chunk : chunks) {
    std::uint64_t range = 1;
    for (int u : chunk) range *= radix[static_cast<std::size_t>(u)];
    std::uint64_t v = uniform_below(words, range);
    const std::uint32_t v_counted = counted_uniform(words_again, range, consumed);
    EXPECT_EQ(v, v_counted);
    for (int u : chunk) {
      code[static_cast<std::size_t>(u)] = v % radix[static_cast<std::size_t>(u)];
      v /= radix[static_cast<std::size_t>(u)];
    }
  }
  result.rejected = consumed != static_cast<int>(chunks.size());

  // Parameters (contract item 1): parameter m of a unit has level index (code / Q^m) % Q.
  auto param = [&](int unit, int m) {
    std::uint64_t c = code[static_cast<std::size_t>(unit)];
    for (int i = 0; i < m; ++i) c /= q;
    return p.levels[static_cast<std::size_t>(c % q)];
  };
  auto sgn = [&](long long z) { return (p.tie_positive ? z >= 0 : z > 0) ? 1 : -1; };

  // Network (contract item 4), points in their fixed order; T = leading points fitted.
  const int n = static_cast<int>(p.train_x.size());
  result.fitted = n;
  for (int t = 0; t < n; ++t) {
    long long out = param(p.width, p.width);  // output bias c
    for (int j = 0; j < p.width; ++j) {
      long long pre = param(j, p.input_dim);  // bias b_j
      for (int i = 0; i < p.input_dim; ++i) pre += static_cast<long long>(param(j, i)) * (((p.train_x[static_cast<std::size_t>(t)] >> i) & 1u) ? 1 : -1);
      out += static_cast<long long>(param(p.width, j)) * sgn(pre);
    }
    const int label = p.train_y[static_cast<std::size_t>(t)] ? 1 : -1;
    if (sgn(out) != label) {
      result.fitted = t;
      break;
    }
  }
  return result;
}

// ---- Problems ----------------------------------------------------------------------------------
// Majority-of-3 teacher (spec §7.1) or random labels, training points uniform on {±1}^d.
FastTwoLayerProblem make_problem(int d, int width, int q, bool tie_positive, int n, std::uint64_t seed,
                                 bool majority_labels = true) {
  FastTwoLayerProblem p;
  p.input_dim = d;
  p.width = width;
  p.q = q;
  p.levels = default_levels(q);
  p.tie_positive = tie_positive;
  Rng rng(seed);
  for (int t = 0; t < n; ++t) {
    const auto x = static_cast<std::uint32_t>(rng.next_u64() & ((std::uint64_t{1} << d) - 1));
    p.train_x.push_back(x);
    const int votes = __builtin_popcount(x & 7u);
    p.train_y.push_back(majority_labels ? (votes >= 2 ? 1 : 0) : static_cast<std::uint8_t>(rng.next_u64() & 1));
  }
  p.key = stream_key(derive_seed(seed, 7, 1000, 3));
  return p;
}

struct KernelRun {
  std::vector<std::int64_t> survival;
  Reported reported;
  std::vector<std::uint64_t> fallback;
};

KernelRun run_kernel(const FastTwoLayerKernel& kernel, fast_detail::Isa isa, int n, std::uint64_t g0,
                     std::uint64_t count, int min_report) {
  KernelRun r;
  r.survival.assign(static_cast<std::size_t>(n) + 1, 0);
  fast_detail::run_with_isa(kernel, isa, g0, count, min_report, r.survival.data(), r.reported, r.fallback);
  return r;
}

std::vector<fast_detail::Isa> available_paths() {
  std::vector<fast_detail::Isa> paths{fast_detail::Isa::kAuto, fast_detail::Isa::kPortable};
  if (fast_detail::isa_available(fast_detail::Isa::kAvx512)) paths.push_back(fast_detail::Isa::kAvx512);
  return paths;
}

std::string isa_name(fast_detail::Isa isa) {
  switch (isa) {
    case fast_detail::Isa::kAuto: return "auto";
    case fast_detail::Isa::kPortable: return "portable";
    case fast_detail::Isa::kAvx512: return "avx512";
  }
  return "?";
}

// Runs the kernel on [g0, g0 + count) with min_report 0 on every path and compares every guess with
// the reference. Returns the number of rejected guesses seen.
int check_against_reference(const FastTwoLayerProblem& p, std::uint64_t g0, std::uint64_t count) {
  const int n = static_cast<int>(p.train_x.size());
  KernelRun expected;
  expected.survival.assign(static_cast<std::size_t>(n) + 1, 0);
  std::vector<ReferenceGuess> reference(count);
  for (std::uint64_t g = g0; g < g0 + count; ++g) {
    const ReferenceGuess ref = reference[g - g0] = reference_guess(p, g);
    if (ref.rejected) {
      expected.fallback.push_back(g);
    } else {
      ++expected.survival[static_cast<std::size_t>(ref.fitted)];
      expected.reported.emplace_back(g, ref.fitted);
    }
  }
  const FastTwoLayerKernel kernel(p);
  // The exact evaluation (rejections redrawn) agrees with the reference on every guess, rejected ones
  // included.
  for (std::uint64_t g = g0; g < g0 + count; ++g) {
    const ReferenceGuess& ref = reference[g - g0];
    if (ref.rejected || g % 8 == 0) {
      const int exact = fast_detail::fitted_exact(kernel, g);
      if (exact != ref.fitted) {
        ADD_FAILURE() << "fitted_exact(" << g << ") = " << exact << ", reference " << ref.fitted;
        break;
      }
    }
  }
  {
    std::vector<std::uint64_t> all(count);
    for (std::uint64_t i = 0; i < count; ++i) all[i] = g0 + i;
    std::vector<int> fitted(count);
    fast_detail::fitted_exact_many(kernel, all.data(), all.size(), fitted.data());
    for (std::uint64_t i = 0; i < count; ++i)
      if (fitted[i] != reference[i].fitted) {
        ADD_FAILURE() << "fitted_exact_many at guess " << g0 + i;
        break;
      }
  }
  for (const auto isa : available_paths()) {
    SCOPED_TRACE("path " + isa_name(isa));
    const KernelRun got = run_kernel(kernel, isa, n, g0, count, 0);
    EXPECT_EQ(got.fallback, expected.fallback);
    EXPECT_EQ(got.survival, expected.survival);
    EXPECT_EQ(got.reported.size(), expected.reported.size());
    for (std::size_t i = 0; i < std::min(got.reported.size(), expected.reported.size()); ++i)
      if (got.reported[i] != expected.reported[i]) {
        ADD_FAILURE() << "guess " << expected.reported[i].first << ": kernel (" << got.reported[i].first << ", "
                      << got.reported[i].second << "), reference T = " << expected.reported[i].second;
        break;
      }
  }
  return static_cast<int>(expected.fallback.size());
}

std::string describe(int d, int width, int q, bool tie, int n) {
  return "d=" + std::to_string(d) + " width=" + std::to_string(width) + " Q=" + std::to_string(q) +
         " tie=" + (tie ? "+1" : "-1") + " N=" + std::to_string(n);
}

// ---- Tests ----------------------------------------------------------------------------------------
TEST(FastKernelSupport, HeadlineConfigurationsAreSupported) {
  for (int width : {1, 2, 4, 8})
    for (int q : {2, 3, 5})
      if (width < 8 || q < 5) {  // 5^9 output codes exceed the output-table limit
        EXPECT_TRUE(FastTwoLayerKernel::supports(make_problem(8, width, q, true, 32, 1))) << width << " " << q;
      }
}

TEST(FastKernelSupport, ReportsThePathsOfThisCpu) {
  std::cout << "[ INFO     ] AVX-512 path " << (fast_detail::isa_available(fast_detail::Isa::kAvx512) ? "available" : "not available")
            << "; the portable path is always tested\n";
  EXPECT_TRUE(fast_detail::isa_available(fast_detail::Isa::kPortable));
}

TEST(FastKernelSupport, RejectsProblemsOutsideTheFastPath) {
  auto p = make_problem(8, 4, 3, true, 32, 1);
  auto bad = p;
  bad.width = 0;
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = p;
  bad.width = 9;
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = p;
  bad.q = 1;
  bad.levels = {0};
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = p;
  bad.levels = {-1, 1};  // size ≠ q
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = p;
  bad.train_x.clear();
  bad.train_y.clear();
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = make_problem(8, 4, 3, true, 65, 1);  // N_max > 64
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  bad = make_problem(13, 1, 3, true, 16, 1);  // 3^14 hidden codes > 2^22
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  EXPECT_TRUE(FastTwoLayerKernel::supports(make_problem(12, 1, 3, true, 16, 1)));
  EXPECT_TRUE(FastTwoLayerKernel::supports(make_problem(16, 2, 2, true, 16, 1)));
  bad = p;
  bad.train_y.pop_back();
  EXPECT_FALSE(FastTwoLayerKernel::supports(bad));
  EXPECT_THROW(FastTwoLayerKernel{bad}, std::invalid_argument);
}

// Every guess of several ranges, every supported width, Q = 2, 3, 5, both tie rules, several N.
TEST(FastKernel, MatchesReferenceOnEveryGuess) {
  struct Case {
    int d, width, q, n;
  };
  const std::vector<Case> cases = {
      {8, 1, 3, 16}, {8, 1, 3, 64}, {8, 2, 3, 32}, {8, 4, 3, 32}, {8, 4, 3, 64}, {8, 3, 3, 20},
      {8, 5, 3, 40}, {8, 1, 2, 8},  {8, 4, 2, 32}, {8, 2, 2, 13}, {6, 1, 5, 16}, {6, 2, 5, 33},
      {6, 4, 5, 32}, {8, 6, 3, 32}, {8, 8, 3, 64}, {4, 8, 2, 5},  {10, 2, 3, 24}, {3, 4, 3, 7},
      {8, 4, 5, 24}, {9, 3, 2, 16}, {8, 5, 2, 32},
  };
  // Chunk plans covered (hidden units per chunk G, output joining the last hidden chunk J), vector
  // path: G=1 J (k=1; Q=5 d=6), G=2 J=0 (k=2, 4 ternary), G=2 J (k=3, 5 ternary), G=3 J (binary k=4,
  // 5), G=1 J=0 with two Philox blocks (Q=5 d=8 k=4), G=3 J=0 (binary d=9 k=3), irregular (d=3 k=4:
  // four hidden units in one chunk); truth tables in registers (≤ 256 codes) and gathered (729, 3125).
  std::uint64_t seed = 11;
  int rejected_total = 0;
  for (const Case& c : cases)
    for (bool tie : {true, false}) {
      SCOPED_TRACE(describe(c.d, c.width, c.q, tie, c.n));
      ++seed;
      const auto p = make_problem(c.d, c.width, c.q, tie, c.n, seed, seed % 3 != 0);
      const std::uint64_t guesses = c.width >= 6 ? 1200 : 2500;
      rejected_total += check_against_reference(p, 0, guesses);
      rejected_total += check_against_reference(p, (seed << 35) + 12345, guesses + 7);
      // A range across a change of hi32(g) (the vector path must not mix counters).
      rejected_total += check_against_reference(p, (std::uint64_t{5} << 32) - 29, 61);
      if (HasFatalFailure()) return;
    }
  EXPECT_GT(rejected_total, 100);  // the ranges did contain Lemire rejections
}

// Width 4 ternary (radix 3^18 pairs): ~1.6% of guesses are rejected; the fallback list must be
// exactly those, in ascending order, and T of the rest must match at min_report 0.
TEST(FastKernel, FallbackIsExactlyTheRejectedGuesses) {
  const auto p = make_problem(8, 4, 3, true, 32, 99);
  const int rejected = check_against_reference(p, 1000000, 20000);
  EXPECT_GT(rejected, 200);
  EXPECT_LT(rejected, 450);
}

// Width 1 (radix 3^11, rejection probability ~1e-5): find guesses with a rejection and check ranges
// around them.
TEST(FastKernel, RareRejectionsOfWidthOne) {
  const auto p = make_problem(8, 1, 3, true, 16, 5);
  std::vector<std::uint64_t> rejected;
  const std::uint64_t thr = (std::uint64_t{1} << 32) % 177147;
  for (std::uint64_t g = 0; g < 2000000 && rejected.size() < 3; ++g) {
    GuessWords words(p.key, g);
    if (static_cast<std::uint32_t>(std::uint64_t{words.next()} * 177147) < thr) rejected.push_back(g);
  }
  ASSERT_FALSE(rejected.empty());
  for (std::uint64_t g : rejected) EXPECT_EQ(check_against_reference(p, g - std::min<std::uint64_t>(g, 40), 100), 1);
}

// min_report > 0: the survival histogram is unchanged and exactly the guesses with T ≥ min_report are
// reported; splitting a range does not change anything; all paths agree on a larger range.
TEST(FastKernel, ReportThresholdSplitsAndPathsAgree) {
  for (int width : {1, 4}) {
    const int n = width == 1 ? 16 : 32;
    const auto p = make_problem(8, width, 3, true, n, 40 + static_cast<std::uint64_t>(width));
    const FastTwoLayerKernel kernel(p);
    const std::uint64_t g0 = 777, count = 600000;
    const KernelRun all = run_kernel(kernel, fast_detail::Isa::kPortable, n, g0, count, 0);
    for (const auto isa : available_paths()) {
      SCOPED_TRACE("width " + std::to_string(width) + " path " + isa_name(isa));
      for (int min_report : {1, 5, 9, 12}) {
        const KernelRun r = run_kernel(kernel, isa, n, g0, count, min_report);
        EXPECT_EQ(r.survival, all.survival);
        EXPECT_EQ(r.fallback, all.fallback);
        Reported expected;
        for (const auto& e : all.reported)
          if (e.second >= min_report) expected.push_back(e);
        EXPECT_EQ(r.reported, expected) << "min_report " << min_report;
      }
      // Two halves (the first one unaligned) give the same result as one run.
      KernelRun halves;
      halves.survival.assign(static_cast<std::size_t>(n) + 1, 0);
      fast_detail::run_with_isa(kernel, isa, g0, 123457, 7, halves.survival.data(), halves.reported, halves.fallback);
      fast_detail::run_with_isa(kernel, isa, g0 + 123457, count - 123457, 7, halves.survival.data(), halves.reported,
                                halves.fallback);
      EXPECT_EQ(halves.survival, all.survival);
      EXPECT_EQ(halves.fallback, all.fallback);
    }
    std::int64_t decided = 0;
    for (auto c : all.survival) decided += c;
    EXPECT_EQ(decided + static_cast<std::int64_t>(all.fallback.size()), static_cast<std::int64_t>(count));
  }
}

// The survival histogram adds to what the caller passes in (it is not overwritten).
TEST(FastKernel, SurvivalAccumulates) {
  const auto p = make_problem(8, 2, 3, false, 24, 3);
  const FastTwoLayerKernel kernel(p);
  std::vector<std::int64_t> survival(25, 1000);
  Reported reported;
  std::vector<std::uint64_t> fallback;
  kernel.run(0, 5000, 25, survival.data(), reported, fallback);
  std::int64_t total = 0;
  for (auto c : survival) total += c;
  EXPECT_EQ(total + static_cast<std::int64_t>(fallback.size()), 25 * 1000 + 5000);
  EXPECT_TRUE(reported.empty());
}

// Sanity of the prior on the spec's tiny teacher (§7.2): for width 1 the probability that a guess
// fits all 64 points is p(S_64) ≈ p* = 8/3^11 = 4.5e-5 (plus a little mass on students that agree on
// the sample only). 2e6 guesses → ~90 hits; the check only guards against a grossly wrong kernel.
TEST(FastKernel, WidthOneAcceptanceNearPStar) {
  const auto p = make_problem(8, 1, 3, true, 64, 2024);
  const FastTwoLayerKernel kernel(p);
  std::vector<std::int64_t> survival(65, 0);
  Reported reported;
  std::vector<std::uint64_t> fallback;
  kernel.run(0, 2000000, 64, survival.data(), reported, fallback);
  const double rate = static_cast<double>(survival[64]) / 2e6;
  EXPECT_GT(rate, 4.516e-5 * 0.6);
  EXPECT_LT(rate, 4.516e-5 * 2.0);
  EXPECT_EQ(reported.size(), static_cast<std::size_t>(survival[64]));
  for (const auto& [g, t] : reported) EXPECT_EQ(reference_guess(p, g).fitted, 64);
}

}  // namespace
}  // namespace gdlab::interp
