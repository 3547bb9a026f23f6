// Guess-and-check under Chiang et al.'s CONTINUOUS prior (shared/papers/interpolators.md §3):
// a one-hidden-layer ReLU MLP (spec §3.2 `MLPModels`), every parameter i.i.d. U[−1, 1] (§3.3),
// accepted iff the argmax of its two logits classifies every training point (§3.5); and the SGD
// baseline of the same architecture on the same data (§3.6, issue 3 §1 "guess-and-check vs SGD").
// Plain C++; no protobuf here (the kind file worker/kinds/random_interpolator.cc converts the spec).
//
// ---- The model (spec §3.2) ----------------------------------------------------------------------
//   a_h  = Σ_i x_i · W1[i][h]                      (h < u; no hidden biases)
//   r_h  = max(a_h, 0)                             (ReLU)
//   z_c  = b2[c] + Σ_h r_h · W2[h][c]              (c ∈ {0, 1}; the output bias vector b2)
//   class(x) = 1 if z_1 > z_0, else 0              (argmax; a tie z_1 == z_0 goes to class 0)
// Every sum is evaluated in double precision in ascending index order (i, then h), so the class of
// a point is a pure function of the parameters and the point. P = d·u + 2u + 2 parameters
// (4u + 2 for d = 2, as in spec §3.2).
//
// ---- Canonical guess → parameters mapping (continuous prior) ----------------------------------
// Parameter j (0-based) in the order W1 row-major (index i·u + h), then W2 row-major (index
// d·u + 2h + c), then b2 (index d·u + 2u + c) is
//     θ_j = −1 + 2 · (w_j + 0.5) / 2^32,      w_j = word j of GuessWords(key, g) (philox.h),
// i.e. word j = Philox4x32-10({lo32(g), hi32(g), ⌊j/4⌋, 0}, key)[j mod 4]. θ_j lies in the open
// interval (−1, 1) on the lattice of spacing 2^−31 (the midpoints of 2^32 equal cells of [−1, 1]),
// is exactly representable in double, never 0, and the map is symmetric: w ↦ 2^32 − 1 − w sends
// θ ↦ −θ exactly. It is U[−1, 1] up to the 2^−32 discretisation (spec §3.3). One word per
// parameter, no rejection, so every evaluator can compute any parameter of any guess directly.
//
// ---- Data (spec §3.4 and §7.1) -------------------------------------------------------------------
// Labels are classes {0, 1}. Stream r's data come from gdlab::Rng(data_seeds[r]):
//  * BINARY:   x uniform on {−1, +1}^d (x_i = rng.sign(), i ascending, point by point; without
//              replacement: distinct points, bit i of a uniform d-bit index = [x_i = +1]); class 1
//              iff x_1 + … + x_k > 0 (the majority of the first k inputs, k odd). Test set: all
//              2^d inputs (exact error) when d ≤ 16, else test_points fresh points drawn after the
//              training points.
//  * GAUSSIAN: x ~ N(0, I_d) (rng.normal(), i ascending), class 1 iff x_1 + … + x_k ≥ 0; the test
//              set is test_points fresh points drawn after the training points.
//  * KINK:     Chiang's Fig. 2 data (spec §3.4, datasets.py `Kink`): 4,000 points, class 1 on
//              y = −|x| and class 0 on y = −|x| + margin (margin 0.25), x = linspace(−1, 0, 1000)
//              ++ linspace(0, 1, 1000) on each polyline; shuffled by Fisher–Yates with the stream's
//              Rng. Train = the first n_max shuffled points, test = the LAST
//              min(test_points, 4000 − n_max) points (disjoint from train; Chiang: the last 30%).
// Training points are checked in their stored order; T = number of leading points fitted (≤ n_max).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "worker/numerics/guess_sampler.h"

namespace gdlab::interp {

enum class ContinuousInputs { kBinary, kGaussian, kKink };

// Initialisation of the SGD baseline's networks.
enum class SgdInit {
  kUniform,  // every parameter U[−1, 1] (Chiang's `reinitialize`, their Table 2 SGD runs)
  kDefault,  // PyTorch nn.Linear default (Kaiming-uniform, a = √5): weights and bias
             // U[−1/√fan_in, 1/√fan_in], fan_in = d for W1, u for W2 and b2
};

// SGD baseline (spec §3.6; Fig. 2: lr 0.1, 200 epochs, batch 3).
struct SgdConfig {
  int runs = 0;  // networks trained per (stream, N); 0: no SGD comparison
  double lr = 0.1;
  int epochs = 200;
  int batch_size = 3;
  SgdInit init = SgdInit::kUniform;
  std::vector<int> n_grid;  // training-set sizes at which SGD is run (ascending, each ≤ n_max)
};

struct ContinuousProblem {
  int input_dim = 2;  // d
  int width = 4;      // u: hidden ReLU units
  ContinuousInputs inputs = ContinuousInputs::kKink;
  int majority = 3;  // k of the majority teacher (BINARY / GAUSSIAN); odd, ≤ d
  bool with_replacement = true;  // BINARY only: false draws n_max distinct points (n_max ≤ 2^d)
  double kink_margin = 0.25;     // KINK: vertical gap between the two polylines
  int n_max = 16;                // training points per stream
  int test_points = 10000;       // fresh test points (unless BINARY with d ≤ 16: exact)
  std::vector<std::uint64_t> data_seeds;  // one per stream (experiment_seed(r))
  std::vector<StreamKey> guess_keys;      // one per stream (stream_key(task_seed(1000 + r)))
  SgdConfig sgd;
  // Negative control for tests (no proto field): the TRAINING labels are replaced by fair coin
  // flips (from the stream's Rng, after the inputs); the test labels stay the teacher's.
  bool random_train_labels = false;
};

// Throws gdlab::SpecError(field, problem) with the field names of proto/random_interpolator.proto
// (input_dim, width, inputs, teacher.majority, with_replacement, test_points, n_grid, streams,
// sgd.runs, sgd.lr, sgd.epochs, sgd.batch_size).
void validate(const ContinuousProblem& problem);

// P = d·u + 2u + 2.
int continuous_parameter_count(int input_dim, int width);

// θ = −1 + 2·(word + 0.5)/2^32 ∈ (−1, 1) (see the mapping above).
// Computed as (s + 0.5)·2^−31 with s = word − 2^31 as a signed 32-bit integer: the same value,
// exactly (both are exact in double), but a signed conversion vectorises.
inline double uniform_from_word(std::uint32_t word) {
  const auto s = static_cast<std::int32_t>(word ^ 0x80000000u);
  return (static_cast<double>(s) + 0.5) * 0x1.0p-31;
}

// The canonical parameters of guess g (out.size() == P).
void continuous_guess_parameters(StreamKey key, std::uint64_t guess, std::span<double> out);

// The model's class (0 or 1) of the point x (size d) under parameters θ (size P).
int continuous_predict(std::span<const double> params, int input_dim, int width, const double* x);

// One stream's data: inputs row-major (points × d), classes in {0, 1}.
struct ContinuousData {
  int input_dim = 0;
  std::vector<double> train_x, test_x;
  std::vector<std::uint8_t> train_y, test_y;
  int train_size() const { return static_cast<int>(train_y.size()); }
  int test_size() const { return static_cast<int>(test_y.size()); }
};
ContinuousData make_continuous_data(const ContinuousProblem& problem, int stream);

// T: leading training points of `data` (at most `limit`) that θ classifies correctly.
int continuous_fitted_prefix(std::span<const double> params, int width, const ContinuousData& data, int limit);
// Fraction of the test points that θ misclassifies.
double continuous_test_error(std::span<const double> params, int width, const ContinuousData& data);

// The G&C sampler (guess_sampler.h): validates the problem, draws every stream's data at
// construction. run_block evaluates guesses in batches of 64: Philox words for the whole batch
// first (a loop over independent counters that the compiler vectorises), then each candidate with
// early rejection in the stream's fixed point order. No allocation per guess.
std::unique_ptr<GuessSampler> make_continuous_sampler(const ContinuousProblem& problem);

// ---- SGD baseline (spec §3.6) ----------------------------------------------------------------------
struct SgdRun {
  double test_error = 0.0;
  bool interpolated = false;  // training accuracy 1 on the n points when it stopped
  int epochs = 0;             // epochs run (stops at the first epoch boundary with accuracy 1)
};
// Trains problem.sgd.runs networks of the same architecture by minibatch SGD on the mean
// cross-entropy of the two logits over each batch, on the first n training points of `stream`.
// Run k uses gdlab::Rng(mix64(seed ^ mix64(k + 1))): first the initial parameters (in the canonical
// parameter order), then one Fisher–Yates reshuffle of the point order per epoch (batches of
// batch_size consecutive points of that order; the last batch may be smaller). Training accuracy
// is checked before every epoch and after the last; training stops at accuracy 1.
std::vector<SgdRun> sgd_runs(const ContinuousProblem& problem, int stream, int n, std::uint64_t seed);
// The test errors of sgd_runs(...), in run order.
std::vector<double> sgd_test_errors(const ContinuousProblem& problem, int stream, int n, std::uint64_t seed);
// Same, on data the caller already drew (avoids redrawing a stream's data per N).
std::vector<SgdRun> sgd_runs(const ContinuousProblem& problem, const ContinuousData& data, int n,
                             std::uint64_t seed);

}  // namespace gdlab::interp
