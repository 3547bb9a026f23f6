// Numerical core for linear classifiers on separable data (../shared/papers/separable.md §0, §1).
// Plain C++/Eigen only: no protobuf, no MPI, no HDF5. Shared by every separable-data kind.
//
// Conventions (separable.md §0.1): labels are absorbed, x̃_n = y_n x_n, and the loss is a SUM over
// samples, L(w) = Σ_n ℓ(x̃_nᵀw) (Soudry et al. 2018, eq. 2.1). Xt below is always the N×d matrix
// whose rows are the absorbed points x̃_n.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gdlab::separable {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// ---- Data -------------------------------------------------------------------------------------

struct Dataset {
  MatrixXd X;   // N×d raw inputs
  VectorXd y;   // N labels in {-1, +1}
  MatrixXd absorbed() const;  // rows y_n x_n
};

// Dataset A, "Fig. 1 replica" (separable.md §0.7): the four support vectors ±(0.5,1.5), ±(1.5,0.5)
// plus 6 random points per class drawn from U([0,3]²) with ½(p₁+p₂) ≥ 1.5 (negatives are −p).
// Row order: x1, x2, x3=−x1, x4=−x2, then the 6 positives, then the 6 negatives. N = 16, d = 2.
Dataset make_fig1_replica(std::uint64_t seed);

// Dataset B, "planted2" (separable.md §0.8), with its ground truth.
struct Planted {
  Dataset data;
  VectorXd w_hat;  // Q (1/c_1, ..., 1/c_d)
};
// Requires n >= d >= 1; throws InputError otherwise. theta_n ~ U[2,4] for the n−d non-support points.
Planted make_planted2(int d, int n, std::uint64_t seed);

// A CSV file of points and labels: one point per line, d coordinates then the label (±1), comma
// separated; blank lines and lines starting with '#' are skipped; an optional header line whose
// first field is not a number is skipped. Errors (missing file, ragged row, bad number, label not
// ±1, no rows) throw InputError naming "path:line" (line 0 for a missing or empty file).
Dataset load_csv(const std::string& path);

// ---- Losses (separable.md §0.2) -----------------------------------------------------------------

enum class Loss { Logistic, Exponential };

// Σ_n ℓ(u_n), numerically stable for any u (log1p, split on the sign of u).
double loss_sum(Loss loss, const VectorXd& margins);
// out_n = −ℓ′(u_n) ≥ 0 for any u, never NaN for non-NaN u: logistic 1/(1+e^u) ∈ [0, 1]; exp e^{−u},
// +inf only where e^{−u} exceeds DBL_MAX (u < −709.78). Values of e^x below e^{−708} ≈ 3e-308 are
// flushed to 0. Same vectorised kernel (and bitwise the same values) as the run_gd hot loop;
// within 2 ulp of the exact values.
void neg_loss_derivative(Loss loss, const VectorXd& margins, VectorXd& out);
// β such that ℓ is β-smooth where it matters: 1/4 for logistic; 1 for exp (ℓ″ ≤ 1 on u ≥ 0,
// the region GD stays in once the data are fit). Used by the step-size check η < 2/(β σ_max²).
double smoothness_beta(Loss loss);

// Largest singular value of the data matrix.
double sigma_max(const MatrixXd& X);

// ---- Max margin (separable.md §0.4, §0.5) ------------------------------------------------------

struct MaxMargin {
  VectorXd w_hat;             // argmin ‖w‖² s.t. x̃_nᵀw ≥ 1
  VectorXd alpha;             // dual variables, length N
  std::vector<int> support;   // S = {n : x̃_nᵀŵ = 1} (to 1e-9 relative)
  int sweeps = 0;             // dual coordinate ascent sweeps used
};
// Dual coordinate ascent: α_n ← max(0, α_n + (1 − x̃_nᵀw)/‖x̃_n‖²), w += Δα_n x̃_n, until a sweep
// in which every update satisfies |Δα_n|·‖x̃_n‖² < tol·max(1, ‖x̃_n‖‖w‖): the change of the n-th
// margin (the KKT violation in units of the target margin 1) relative to the rounding scale of
// x̃_nᵀw, so that tol means the same for data of any scale. Throws InputError("... empty ...")
// for empty data, and InputError("... not linearly separable ...") when a row is zero or the data
// are not strictly separable through the origin: detected by the certificate ‖Σβ_n x̃_n‖ ≤
// 1e-9·Σβ_n·max‖x̃_n‖ for some β ≥ 0 (taken from α and from its growth while the dual diverges),
// which proves the margin is below 1e-9 of the data radius. NumericError when it does not
// converge within max_sweeps.
MaxMargin solve_max_margin(const MatrixXd& Xt, double tol = 1e-15, int max_sweeps = 2'000'000);

// w̃ of Soudry et al. Thm 4 (separable.md §0.5): the unique vector with
//   η_eff Σ_{n∈S} exp(−x̃_nᵀw̃) x̃_n = ŵ,  w̃ − P_S w̃ = (I − P_S) w0,
// where P_S projects on span{x̃_n : n ∈ S}. Computed as the minimiser over v ∈ span(X_S) of the
// convex function η_eff Σ_S exp(−x̃_nᵀv) + ŵᵀv (its stationarity condition is the equation
// above), by damped Newton, which handles duplicated support vectors (Fig. 1). eta_eff is η for
// GD, η/(1−γ) for heavy ball with momentum γ, the per-sample step c for SGD. An empty w0 means
// the origin. Throws InputError for bad arguments and NumericError when w̃ does not exist (ŵ on
// the boundary of the cone of the support vectors, e.g. a support vector with α_n = 0 whose
// removal changes ŵ) or Newton does not converge.
VectorXd solve_w_tilde(const MatrixXd& Xt, const MaxMargin& mm, double eta_eff, const VectorXd& w0);

// ---- Gradient descent ----------------------------------------------------------------------------

// Log-spaced recording grid on [1, T]: about `per_decade` integer steps per decade, always
// including 1 and T, strictly increasing, no duplicates: round(10^(k/per_decade)) for k = 0, 1, …
// below T, then T. Throws InputError unless T >= 1 and per_decade >= 1.
std::vector<std::int64_t> log_grid(std::int64_t T, int per_decade);

struct GdOptions {
  Loss loss = Loss::Logistic;
  double lr = 0.0;          // η
  double momentum = 0.0;    // heavy ball γ: v ← γ v − η ∇L(w); w ← w + v
  std::int64_t steps = 0;   // T
  bool mean_loss = false;   // negative control of §1.6 T1.3: gradient of (1/N)Σℓ instead of Σℓ
  VectorXd w0;              // initial point (length d; empty means the origin)
};

// Runs T steps of GD (heavy ball when momentum > 0) on Xt. After step t for every t in
// `record_at` (sorted, within [0, T]; t = 0 means w(0), before the first step) it calls
// on_record(t, w(t), L(w(t))) with the SUM loss. The inner loop must not allocate: it is the
// 5e6 steps/s hot path of the benchmark (N = 40, d = 5). It runs on SIMD kernels (AVX2 picked at
// run time when the CPU has it, SSE2 otherwise) whose results are bitwise identical to each
// other. Throws InputError for bad options (lr <= 0, momentum outside [0, 1), wrong w0 length,
// unsorted or out-of-range record_at) and NumericError if w becomes non-finite. Returns w(T).
using RecordFn = std::function<void(std::int64_t t, const VectorXd& w, double loss)>;
VectorXd run_gd(const MatrixXd& Xt, const GdOptions& opt, const std::vector<std::int64_t>& record_at,
                const RecordFn& on_record);

// ---- Standard measurements (separable.md §0.6) -------------------------------------------------

struct Measurements {
  double norm = 0;               // ‖w‖
  double loss = 0;               // L(w), sum
  double loss_ratio = 0;         // t η_eff L(w) / ‖ŵ‖²
  double normalized_margin = 0;  // min_n x̃_nᵀw / ‖w‖
  double margin_gap = 0;         // 1/‖ŵ‖ − normalized margin
  double angle_gap = 0;          // 1 − wᵀŵ / (‖w‖‖ŵ‖)
  double direction_error = 0;    // ‖w/‖w‖ − ŵ/‖ŵ‖‖
  double residual = 0;           // ‖w − ŵ ln t − w̃‖
};
// Quantities that are undefined come back as NaN: the normalised margin, the gaps and the direction
// error at w = 0, and the residual at t = 0 or when w_tilde is empty. The angle gap is computed as
// ½‖w/‖w‖ − ŵ/‖ŵ‖‖², which equals 1 − cos without its cancellation at small angles.
Measurements measure(const MatrixXd& Xt, Loss loss, const VectorXd& w, std::int64_t t, double eta_eff,
                     const VectorXd& w_hat, const VectorXd& w_tilde);

// The prediction w_pred(t) = ŵ ln t + w̃ and its measurements (loss and loss_ratio evaluated at
// w_pred too); the "theory overlay" stored next to measured curves.
VectorXd predicted_w(const VectorXd& w_hat, const VectorXd& w_tilde, std::int64_t t);

}  // namespace gdlab::separable
