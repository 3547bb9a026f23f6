// Numerical core of the experiment kind `loss_tails`: GD with losses of different tails and with
// normalised (aggressive) step sizes on linearly separable data, after Nacson, Lee, Gunasekar,
// Savarese, Srebro, Soudry, "Convergence of Gradient Descent on Separable Data" (AISTATS 2019,
// arXiv:1803.01905); ../shared/papers/separable.md §3. Plain C++/Eigen only.
//
// Conventions (separable.md §0.1): Xt is the N×d matrix of absorbed points x̃_n = y_n x_n and the
// objective is the sum L(w) = Σ_n ℓ(x̃_nᵀw).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "worker/numerics/separable.h"

namespace gdlab::loss_tails {

using separable::MatrixXd;
using separable::VectorXd;

// ---- Losses (separable.md §3.4, §0.2) -----------------------------------------------------------

enum class Tail {
  PolyExponential,  // ℓ_ν(u) = exp(−u^ν) for u ≥ 1, e^{−1}(1 − ν(u−1)) for u < 1
  Polynomial,       // ℓ_k(u) = u^{−k} for u ≥ 1, 1 − k(u−1) for u < 1
  Exponential,      // e^{−u}
  Logistic,         // log(1 + e^{−u})
};

struct TailLoss {
  Tail tail = Tail::PolyExponential;
  double exponent = 1.0;  // ν (poly-exponential) or k (polynomial); unused otherwise

  double value(double u) const;                // ℓ(u)
  double neg_derivative(double u) const;       // −ℓ′(u) ≥ 0
  double log_value(double u) const;            // ln ℓ(u), finite for every finite u
  double log_neg_derivative(double u) const;   // ln(−ℓ′(u)), finite for every finite u
  // sup_u ℓ″(u): the smoothness constant β of the GD step condition η < 2/(β σ_max²). Exp: 1 (on
  // u ≥ 0, as in separable.h), logistic 1/4, polynomial k(k+1) (at u = 1), poly-exponential
  // sup_{u≥1} ν u^{ν−2} e^{−u^ν}(ν u^ν − ν + 1) (the linear piece below 1 has ℓ″ = 0).
  double smoothness() const;
  // True for exponential-type tails (everything but Polynomial): the max-margin direction is the limit.
  bool super_polynomial() const { return tail != Tail::Polynomial; }
  // The ν of the tail exp(−u^ν): ν for poly-exponential, 1 for exponential and logistic.
  double tail_nu() const { return tail == Tail::PolyExponential ? exponent : 1.0; }
};

// ln Σ_n ℓ(u_n), by log-sum-exp of ln ℓ(u_n): finite even when every ℓ(u_n) underflows.
double log_loss_sum(const TailLoss& loss, const VectorXd& margins);

// ---- Step-size schedules (separable.md §3.5) ----------------------------------------------------

enum class Schedule {
  Fixed,     // η_t = η
  NgdSqrt,   // η_t = η₀ / (L(w_t) √(t+1))
  NgdConst,  // η_t = η₀ / L(w_t)
};

struct TailGdOptions {
  TailLoss loss;
  Schedule schedule = Schedule::Fixed;
  double lr = 0.0;          // η or η₀
  std::int64_t steps = 0;   // T
};

// Runs T GD steps from w(0) = 0. The NGD steps use the softmax-normalised weights
// p_n = −ℓ′(u_n)/L(w) = exp(ln(−ℓ′(u_n)) − ln L(w)) (separable.md §0.2), so nothing overflows when
// ‖w‖ ~ 1e4 and every ℓ(u_n) underflows. After step t for every t in `record_at` (sorted, within
// [0, T]) it calls on_record(t, w(t)). The inner loop does not allocate. Throws InputError on bad
// options and NumericError if w becomes non-finite. Returns w(T).
using RecordFn = std::function<void(std::int64_t t, const VectorXd& w)>;
VectorXd run_tail_gd(const MatrixXd& Xt, const TailGdOptions& opt, const std::vector<std::int64_t>& record_at,
                     const RecordFn& on_record);

// ---- Predictions (separable.md §3.7) -------------------------------------------------------------

// T3.1, super-polynomial tail exp(−u^ν): w ≈ g ŵ + g^{1−ν} ρ̃ with g = ŵᵀw/‖ŵ‖², g^ν ≈ ln t and
// x̃_nᵀρ̃ = −(ln α_n)/ν on S (up to a multiple of ŵ, which the gaps do not see). ρ̃ is w̃(η = 1)/ν of
// separable.md §0.5 (solve_w_tilde with w0 = 0), which also covers duplicated support vectors.
struct TailPrediction {
  double nu = 1.0;
  VectorXd rho_tilde;      // ρ̃
  double gap_constant = 0;    // C_ν = (ŵᵀρ̃/‖ŵ‖² − min_S x̃_nᵀρ̃)/‖ŵ‖: margin gap ≈ C_ν/g^ν
  double angle_constant = 0;  // A_ν = ‖P_{ŵ⊥} ρ̃‖²/(2‖ŵ‖²): angle gap ≈ A_ν/g^{2ν}
  double margin_gap(double g) const;  // C_ν/g^ν (NaN for g ≤ 0)
  double angle_gap(double g) const;   // A_ν/g^{2ν}
};
TailPrediction poly_exponential_prediction(const MatrixXd& Xt, const separable::MaxMargin& mm, double nu);

// T3.2, polynomial tail u^{−k}: the limit direction v* = argmin_{‖v‖≤1} Σ_n (x̃_nᵀv)^{−k}, the fixed
// point of v ∝ Σ_n (x̃_nᵀv)^{−k−1} x̃_n. Computed as the direction of the minimiser of the strictly
// convex F(v) = Σ_n (x̃_nᵀv)^{−k} + ½‖v‖² on the cone {X̃v > 0} (its stationarity condition
// k Σ_n u_n^{−k−1} x̃_n = v is the fixed-point equation), by damped Newton started at ŵ. Throws
// NumericError when it does not converge. Returns a unit vector.
VectorXd polynomial_limit_direction(const MatrixXd& Xt, double k, const VectorXd& w_hat);
// ‖v − P(v)‖ with P(v) = Σ u_n^{−k−1} x̃_n / ‖Σ u_n^{−k−1} x̃_n‖, for a unit v: 0 at v*.
double fixed_point_residual(const MatrixXd& Xt, double k, const VectorXd& v);

// ---- Measurements (separable.md §0.6, §3.6) -------------------------------------------------------

struct TailMeasurements {
  double norm = 0;               // ‖w‖
  double log_loss = 0;           // ln L(w)
  double loss = 0;               // L(w) (may underflow to 0 under NGD; log_loss stays finite)
  double normalized_margin = 0;  // min_n x̃_nᵀw/‖w‖
  double margin_gap = 0;         // 1/‖ŵ‖ − normalized margin
  double angle_gap = 0;          // 1 − cos(w, ŵ)
  double direction_error = 0;    // ‖w/‖w‖ − ŵ/‖ŵ‖‖
  double g = 0;                  // ŵᵀw/‖ŵ‖²
  double angle_gap_vstar = 0;    // 1 − cos(w, v*) (NaN without v*)
  double offset_error = 0;       // ‖P_{ŵ⊥}w/g^{1−ν} − P_{ŵ⊥}ρ̃‖ (NaN without ρ̃ or for g ≤ 0)
};
// `v_star` and `rho_tilde` may be empty. 1 − cos is computed as ½‖u − v‖² of the unit vectors (no
// cancellation at tiny angles).
TailMeasurements measure(const MatrixXd& Xt, const TailLoss& loss, const VectorXd& w, const VectorXd& w_hat,
                         const VectorXd& v_star, const VectorXd& rho_tilde, double nu);

}  // namespace gdlab::loss_tails
