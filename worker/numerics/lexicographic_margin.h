// Numerical core of the experiment kind `lexicographic_margin`: Nacson, Gunasekar, Lee, Srebro,
// Soudry, "Lexicographic and Depth-Sensitive Margins in Homogeneous and Non-Homogeneous Deep
// Models", ICML 2019 (../shared/papers/separable.md §4).
//
// Plain C++/Eigen only. Conventions as in separable.h (separable.md §0.1): Xt is the N×d matrix of
// absorbed points x̃_n = y_n x_n and the loss is a SUM, L(θ) = Σ_n ℓ(y_n f(θ; x_n)).
//
// The models are ensembles f(θ; x) = Σ_k f_k(θ_k; x) of diagonal nets (separable.md §4.2 (i),
// §4.5): sub-model k of depth D_k has D_k layers u_{k,1..D_k} ∈ R^d and computes
// f_k(x) = β_kᵀx with β_k = u_{k,1}∘…∘u_{k,D_k}; it is D_k-homogeneous in θ_k. Depth 1 is the
// linear model aᵀx, depth 2 the diagonal net (u∘v)ᵀx of §4.5 Model 1. Every ensemble is linear
// in x: f(θ; x) = w(θ)ᵀx with w = Σ_k β_k.
//
// Parameter layout: θ is the concatenation of the sub-models in order, each layer-major
// (u_{k,1}, …, u_{k,D_k}), so sub-model k occupies D_k·d entries.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/numerics/separable.h"

namespace gdlab::lexicographic {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using separable::Loss;

// ---- Models -----------------------------------------------------------------------------------

struct Ensemble {
  int dim = 0;              // d
  std::vector<int> depths;  // D_k ≥ 1 of each sub-model (at least one)

  int num_submodels() const { return static_cast<int>(depths.size()); }
  int num_params() const;   // Σ_k D_k d
  int offset(int k) const;  // index in θ of u_{k,1}[0]
  int max_depth() const;
  int deepest() const;      // index of the (first) sub-model of maximal depth: "the deep part"
  int shallowest() const;   // index of the (first) sub-model of minimal depth: "the shallow part"
  bool homogeneous() const { return depths.size() == 1; }
};

// β_k = u_{k,1}∘…∘u_{k,D_k}.
VectorXd submodel_beta(const Ensemble& model, const VectorXd& theta, int k);
// w(θ) = Σ_k β_k, so that f(θ; x) = w(θ)ᵀx.
VectorXd effective_predictor(const Ensemble& model, const VectorXd& theta);
// ∇_θ [gᵀ w(θ)] for a fixed g ∈ R^d (chain rule through the products):
// ∂/∂u_{k,j} = g ∘ Π_{l≠j} u_{k,l}.
void pullback(const Ensemble& model, const VectorXd& theta, const VectorXd& g, VectorXd& out);
// ‖θ_k‖ of sub-model k.
double submodel_param_norm(const Ensemble& model, const VectorXd& theta, int k);

// The balanced parameters of a depth-2 diagonal net with u∘v = β and the least norm:
// u = sign(β)√|β|, v = √|β|, so ‖θ‖² = 2‖β‖₁ (separable.md §4.5 "Key fact").
VectorXd balanced_depth2_theta(const VectorXd& beta);

// ---- Losses -----------------------------------------------------------------------------------

// log L(m) with L = Σ_n ℓ(m_n), and the normalised weights p_n = −ℓ′(m_n)/L(m) ≥ 0, so that
// ∇ log L = −Σ_n p_n ∇m_n. Computed relative to min m (separable.md §0.2 "softmax-normalised
// weights"), so it stays exact when L underflows (margins in the thousands).
double log_loss_and_weights(Loss loss, const VectorXd& margins, VectorXd& p);

// ---- Constrained path θ(B) ∈ argmin_{‖θ‖≤B} L(θ) (separable.md §4.2, §4.7) -----------------------

// Euclidean projection on the L1 ball {‖β‖₁ ≤ c} (sort-based, Duchi et al. 2008).
VectorXd project_l1_ball(const VectorXd& v, double c);

struct PathPoint {
  VectorXd theta;               // the minimiser (β for the L1 method, θ for the sphere method)
  std::int64_t iterations = 0;  // projected-gradient iterations used (0 for the face method)
  bool converged = false;       // stationarity < tol before max_iterations
  double stationarity = 0;      // ‖x_{k+1} − x_k‖/η of the last iteration (gradient mapping)
};

struct ProjectedOptions {
  double step = 0;                     // η on ∇ log L
  std::int64_t max_iterations = 0;
  double tol = 0;                      // on the gradient-mapping norm
};

// β(c) ∈ argmin_{‖β‖₁≤c} L(Xt β), by projected GD on log L (separable.md §4.7 T4.1): the
// function-space form of the depth-2 diagonal net's constrained path, since min{‖u‖²+‖v‖² :
// u∘v = β} = 2‖β‖₁ makes the parameter ball of radius B the L1 ball of radius c = B²/2 (§4.5).
// beta0 is projected on the ball first. Throws NumericError on a non-finite iterate.
PathPoint projected_l1_point(const MatrixXd& Xt, Loss loss, double c, const VectorXd& beta0,
                             const ProjectedOptions& opt);

// θ(B) ∈ argmin_{‖θ‖≤B} L(θ) for any ensemble, by projected GD on log L over the parameter ball
// (separable.md §4.7 T4.3); theta0 is projected on the ball first.
PathPoint projected_ball_point(const MatrixXd& Xt, const Ensemble& model, Loss loss, double B,
                               const VectorXd& theta0, const ProjectedOptions& opt);

// The face method of separable.md §4.7 T4.1 for d = 2: the minimiser of L(Xt β) over ‖β‖₁ ≤ c
// lies on the sphere ‖β‖₁ = c (the data are separable, so L decreases outward), i.e. on one of
// its four edges β(s) = c(s σ₁ e₁ + (1−s) σ₂ e₂), s ∈ [0, 1]. L is convex in s on each edge:
// bisection on the sign of d log L/ds, computed with normalised weights (exact for any c up to
// exp underflow, c ≈ 1000), then the edge with the least log L. `edge_s` is s on that edge.
struct EdgeMinimum {
  VectorXd beta;
  double s = 0;
  double log_loss = 0;
};
EdgeMinimum minimize_on_l1_sphere_2d(const MatrixXd& Xt, Loss loss, double c);

// ---- Gradient descent -------------------------------------------------------------------------

// T steps of GD θ ← θ − η ∇L(θ) (sum loss, separable.md §4.7 T4.2) from theta0; after step t for
// every t in `record_at` (sorted) calls on_record(t, θ(t)). Allocation-free inner loop. Throws
// NumericError if θ becomes non-finite. Returns θ(T).
using GdRecordFn = std::function<void(std::int64_t t, const VectorXd& theta)>;
VectorXd run_gd(const MatrixXd& Xt, const Ensemble& model, Loss loss, double lr, std::int64_t steps,
                const VectorXd& theta0, const std::vector<std::int64_t>& record_at, const GdRecordFn& on_record);

// ---- Measurements (separable.md §4.6) ------------------------------------------------------------

struct Measurements {
  double loss = 0;                      // L(θ), sum (may underflow to 0)
  double log_loss = 0;                  // log L(θ), exact
  double norm = 0;                      // B = ‖θ‖
  std::vector<double> margins;          // y_n f(θ; x_n), ascending
  // Margins divided by the model's norm, ascending: for a homogeneous model of depth D, by
  // ‖β‖_{2/D} = (Σ_i |β_i|^{2/D})^{D/2}, the function-space norm its parameter norm induces
  // (‖a‖₂ for D = 1, ‖β‖₁ for D = 2, the L1 margin of §4.5); for an ensemble, by ‖θ‖^{D_max}
  // (the "margin/B²" of §4.5 Model 2).
  std::vector<double> normalized_margins;
  double min_normalized_margin = 0;
  double margin_over_norm_pow = 0;      // min_n margin / ‖θ‖^{D_max}
  double deep_beta_l1 = 0;              // ‖β_deep‖₁ (= c for the depth-2 net; ‖u∘v‖₁)
  std::vector<double> deep_direction;   // β_deep/‖β_deep‖₁
  double s = 0;                         // deep_direction[0] (position on the face) when d = 2, else NaN
  double deep_param_norm = 0;           // ‖θ_deep‖ (‖(u, v)‖)
  double shallow_param_norm = 0;        // ‖θ_shallow‖ (‖a‖)
  std::vector<double> submodel_param_norms;  // ‖θ_k‖
  std::vector<double> submodel_beta_l1;      // ‖β_k‖₁
};
Measurements measure(const MatrixXd& Xt, const Ensemble& model, Loss loss, const VectorXd& theta);

// ---- The exact example of separable.md §4.5 ------------------------------------------------------
namespace edge_example {

// x1 = (1, 1), x2 = (1, 2), x3 = (2.5, 1), all labels +1 (rows of the 3×2 matrix).
MatrixXd points();
// Its L1 max-margin set is the edge β = (s, 1−s), s ∈ [0, 1], margin 1; the lexicographic
// max-margin solution is s* = 0.4 with sorted normalised margins (1, 1.6, 1.6).
constexpr double kLexicographicS = 0.4;
constexpr double kLexicographicSecondMargin = 1.6;
// Exact constrained path β(c) = c(s(c), 1−s(c)): on the edge, L = e^{−c} + e^{−c(2−s)} +
// e^{−c(1+1.5s)}, and dL/ds = 0 gives s(c) = 0.4 + ln(1.5)/(2.5c) for c ≥ ln(1.5)/1.5 ≈ 0.27;
// below that the minimiser is the vertex s = 1 (dL/ds < 0 on the whole edge).
double constrained_path_s(double c);
// Sorted L1-normalised margins of β ∝ (s, 1−s), s ∈ [0, 1]: (1, min(2−s, 1+1.5s), max(...)).
std::vector<double> normalized_margins(double s);
// §4.5 Model 2, the ensemble aᵀx + (u∘v)ᵀx on these data: the margin path maximises
// aᵀx1 + γ₁(B² − ‖a‖²)/2 (x1 the L1 support vector, γ₁ = 1), so a = x1/γ₁, ‖a‖ = ‖x1‖/γ₁ = √2,
// and margin/B² = γ₁/2 + ‖x1‖²/(2γ₁B²) = 0.5 + 1/B² → 0.5.
double ensemble_shallow_norm();                 // √2
double ensemble_margin_over_B2(double B);       // 0.5 + 1/B²
constexpr double kEnsembleMarginOverB2Limit = 0.5;

}  // namespace edge_example

}  // namespace gdlab::lexicographic
