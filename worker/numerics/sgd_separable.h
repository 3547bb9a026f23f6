// Numerical core of the experiment kind `sgd_separable`: minibatch SGD with a fixed step on
// linearly separable data, after Nacson, Srebro, Soudry, "Stochastic Gradient Descent on Separable
// Data: Exact Convergence with a Fixed Learning Rate" (AISTATS 2019, arXiv:1806.01796);
// ../shared/papers/separable.md §2. Plain C++/Eigen only.
//
// Conventions (separable.md §0.1, §2.3): Xt is the N×d matrix of absorbed points x̃_n = y_n x_n, the
// objective is L(w) = Σ_n ℓ(x̃_nᵀw), and every minibatch update is written in its SUMMED form
//   w ← w − c Σ_{n∈B(t)} ℓ′(x̃_nᵀw) x̃_n,
// where c is the per-sample step actually applied: c = η for the summed form and c = η_B/B for the
// averaged form (§2.4). Time is counted in epochs: an epoch is N/B minibatches.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/random.h"
#include "worker/numerics/separable.h"

namespace gdlab::sgd_separable {

using separable::Loss;
using separable::MatrixXd;
using separable::VectorXd;

enum class Sampler {
  Reshuffle,        // without replacement: a fresh permutation every epoch, cut into N/B minibatches
  WithReplacement,  // every minibatch holds B indices drawn i.i.d. uniformly from {0..N−1}
};

enum class MinibatchForm {
  Sum,   // step η on Σ_{n∈B} ℓ_n
  Mean,  // step η_B on (1/B) Σ_{n∈B} ℓ_n
};

// The step sizes of a run whose nominal per-sample step is c (separable.md §2.4).
struct StepSizes {
  double per_sample_nominal = 0;  // c: the step of the prediction w̃(c)
  double minibatch_lr = 0;        // the step on the minibatch objective as written: η or η_B
  double per_sample_actual = 0;   // the step applied to the summed minibatch gradient
};
// Sum form: η = c. Mean form: η_B = cB, or η_B = c when no_lr_scaling (the negative control of §2.6,
// whose actual per-sample step is c/B). Throws InputError on c ≤ 0, B < 1 or no_lr_scaling with the
// summed form.
StepSizes step_sizes(MinibatchForm form, double c, int batch_size, bool no_lr_scaling);

// An upper bound on λ_max(X̃_Bᵀ X̃_B) over every minibatch the sampler can draw; a minibatch step
// c·Σ_{n∈B}ℓ_n is a descent step when c β bound ≤ 2 (β-smooth ℓ). With replacement a minibatch may
// repeat one point B times, so the bound is B max_n‖x̃_n‖² (attained). Without replacement the
// minibatch rows are distinct, so λ_max ≤ min(sum of the B largest ‖x̃_n‖², σ_max(X̃)²).
double batch_curvature_bound(const MatrixXd& Xt, int batch_size, Sampler sampler);

// Uniform integer in [0, n), n ≥ 1, without bias (Lemire's multiply-and-reject method).
std::uint64_t uniform_index(Rng& rng, std::uint64_t n);

struct SgdOptions {
  Loss loss = Loss::Logistic;
  Sampler sampler = Sampler::Reshuffle;
  int batch_size = 1;              // B, must divide N
  double per_sample_step = 0.0;    // c actually applied (StepSizes::per_sample_actual)
  std::int64_t epochs = 0;         // K
  std::uint64_t seed = 0;          // sampler seed
  VectorXd w0;                     // initial point (empty: origin)
};

// Runs K epochs of minibatch SGD. After epoch k for every k in `record_epochs` (sorted, within
// [0, K]; 0 records w(0)) it calls on_record(k, w(k)). The inner loop does not allocate. Throws
// InputError on inconsistent options and NumericError if w becomes non-finite. Returns w(K).
using RecordFn = std::function<void(std::int64_t epoch, const VectorXd& w)>;
VectorXd run_sgd(const MatrixXd& Xt, const SgdOptions& opt, const std::vector<std::int64_t>& record_epochs,
                 const RecordFn& on_record);

}  // namespace gdlab::sgd_separable
