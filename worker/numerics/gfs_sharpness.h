// Numerical core of the experiment kind `gfs_sharpness`: Kreisler, Nacson, Soudry, Carmon, "Gradient
// Descent Monotonically Decreases the Sharpness of Gradient Flow Solutions in Scalar Networks and
// Beyond" (ICML 2023, arXiv:2305.13064); spec in shared/papers/stability.md §3.
//
// Two models with the squared loss (a small, dense parameter vector w):
//   * the scalar network f(x) = π(w)·x, π = Π w_i, with L(w) = (m/2)(π(w) − y*)² (§3.4), and
//   * the squared regression model f(x) = ⟨w ⊙ w, x⟩ with L(w) = (1/2n)Σ_j(⟨w ⊙ w, x_j⟩ − y_j)² (§3.7).
// The GFS sharpness ϕ(w) = λ_max(∇²L(S_GF(w))), S_GF(w) the limit of gradient flow from w (§3.3), is
// computed by the closed form of §3.4 (scalar networks) or by integrating the flow to convergence
// with Boost.Odeint, the step tied to the curvature (§3.7, §3.8), and taking λ_max of the dense
// Hessian there (§0.3). No protobuf here.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <functional>
#include <limits>

namespace gdlab::gfs {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// ---- models -------------------------------------------------------------------------------------

// A twice-differentiable loss with a dense Hessian (the models here have few parameters).
class Model {
 public:
  virtual ~Model() = default;
  virtual Eigen::Index dimension() const = 0;
  virtual double loss(const VectorXd& w) const = 0;
  // g = ∇L(w) (resized).
  virtual void gradient(const VectorXd& w, VectorXd& g) const = 0;
  virtual MatrixXd hessian(const VectorXd& w) const = 0;
};

// π(w) = Π w_i.
double product(const VectorXd& w);
// ∇π: entry i is Π_{j≠i} w_j, by prefix and suffix products (no division, exact at zeros).
VectorXd product_gradient(const VectorXd& w);
// ∇²π: entry (i, j), i ≠ j, is Π_{k≠i,j} w_k; zero diagonal.
MatrixXd product_hessian(const VectorXd& w);

// Scalar network of depth D (stability.md §3.4): L(w) = (m/2)(π(w) − y*)², where m = mean(x²) and
// y* = mean(xy)/m (the data's loss up to a constant). The canonical form is m = y* = 1.
class ScalarNetwork final : public Model {
 public:
  ScalarNetwork(int depth, double y_star = 1.0, double x_sq_mean = 1.0);
  Eigen::Index dimension() const override { return depth_; }
  double loss(const VectorXd& w) const override;
  void gradient(const VectorXd& w, VectorXd& g) const override;
  // m(∇π∇πᵀ + (π − y*)∇²π).
  MatrixXd hessian(const VectorXd& w) const override;

  int depth() const { return depth_; }
  double y_star() const { return y_star_; }
  double x_sq_mean() const { return m_; }
  // The smallest GFS sharpness over the minimisers, at the balanced ones |s_i| = |y*|^{1/D}:
  // D·m·|y*|^{2−2/D} (§3.4: "the minimum of ϕ over minimisers is D").
  double flattest_sharpness() const;

 private:
  int depth_;
  double y_star_, m_;
};

// Squared regression model (stability.md §3.7): β = w ⊙ w, L = (1/2n)‖Xβ − y‖²,
// ∇L = (2/n) w ⊙ Xᵀr, ∇²L = (4/n) diag(w) XᵀX diag(w) + (2/n) diag(Xᵀr), r = Xβ − y.
class SquaredRegression final : public Model {
 public:
  SquaredRegression(MatrixXd X, VectorXd y);
  Eigen::Index dimension() const override { return X_.cols(); }
  double loss(const VectorXd& w) const override;
  void gradient(const VectorXd& w, VectorXd& g) const override;
  MatrixXd hessian(const VectorXd& w) const override;
  VectorXd residual(const VectorXd& w) const;
  const MatrixXd& X() const { return X_; }
  const VectorXd& y() const { return y_; }

 private:
  MatrixXd X_;
  VectorXd y_;
  MatrixXd gram_;  // XᵀX
};

// The synthetic data of the squared regression model: x_j ~ N(0, I_d), w* ~ N(0, I_d),
// y = X(w* ⊙ w*) (realisable; with n < d the minimisers form a manifold). Drawn with gdlab::Rng:
// X row by row, then w*.
struct RegressionData {
  MatrixXd X;
  VectorXd y, w_star;
};
RegressionData make_regression_data(int n, int d, std::uint64_t seed);
// g ~ N(0, I_d) from `seed`, scaled: the squared model's random start direction.
VectorXd gaussian_vector(int d, double scale, std::uint64_t seed);

// The GFS of the squared regression model by an independent route, used to check the integrator:
// along the flow d(ln w_i²)/dt = −(4/n)(Xᵀr)_i, so S_GF(w) = sign(w)·√β with β = (w ⊙ w) ⊙ exp(Xᵀλ)
// and λ ∈ ℝⁿ solving Xβ = y, the minimiser of the strictly convex Σ_i w_i² e^{(Xᵀλ)_i} − yᵀλ (damped
// Newton). Throws NumericError if Newton stalls.
VectorXd squared_regression_gfs_dual(const SquaredRegression& model, const VectorXd& w);

// Largest eigenvalue of a symmetric matrix (Eigen's SelfAdjointEigenSolver; §0.3).
double lambda_max(const MatrixXd& H);
// Largest |eigenvalue| (the step-size limit of an explicit integrator).
double spectral_radius(const MatrixXd& H);

// ---- scalar networks: closed forms (stability.md §3.4, §3.5) -------------------------------------

struct ClosedFormGfs {
  bool valid = false;  // false only where the flow stalls (π(w)·y* ≤ 0 with a tie for min |w_i|)
  VectorXd s;          // S_GF(w): s_i = sign(w_i)·√(w_i² + c), see below for π(w)·y* ≤ 0
  double c = 0;        // the root of Π(w_i² + c) = y*² on (−min w_i², ∞)
  double phi = 0;      // ϕ(w) = m·y*²·Σ 1/s_i²
  int iterations = 0;
};
// The closed-form GFS. The root is found on σ = ln(c + min w_i²) (§3.4: "c = −min w_i² + e^σ"):
// g(σ) = Σ ln(w_i² − min w² + e^σ) − ln y*² is convex and increasing with g' ≥ 1, so Newton's
// method from σ₀ = ln(y*²)/D (where g ≥ 0) decreases monotonically to the root; it is run until
// rounding stops it (a bracketing Brent search is not needed). s_i² = (w_i² − min w²) + e^σ keeps
// the smallest coordinate free of cancellation.
// Where π(w)·y* ≤ 0 (a GD step can overshoot there: T3.3 at ρ₀ = 1.3, δ = 3e-2) the flow still
// conserves the balances, |π| first shrinks and the coordinate of smallest |w_i| crosses zero, so the
// same c applies with that coordinate's sign flipped to give π(s) = y*; ϕ is unchanged. With a tie for
// the smallest |w_i| the flow stalls at a saddle on π = 0 and valid is false.
ClosedFormGfs closed_form_gfs(const ScalarNetwork& net, const VectorXd& w);

// D = 2, canonical loss: ϕ(x, y) = √((x² − y²)² + 4) (§3.4).
double phi_depth2(double x, double y);

// max_{i,j} |w_i² − w_j²|, the largest GF-conserved balance b_ij (§3.4).
double max_balance(const VectorXd& w);
// The matrix of balances b_ij = w_i² − w_j².
MatrixXd balances(const VectorXd& w);
// The exact GD balance map (§3.5): b_ij⁺ = b_ij·(1 − η²m²r²π²/(w_i²w_j²)), r = π − y*.
MatrixXd predicted_balances_after_step(const ScalarNetwork& net, double eta, const VectorXd& w);

enum class Branch { LargeB, SmallB };
// The start minimiser of §3.10 T3.3: s = |y*|^{1/D}·(a, b, …, b) with a·b^{D−1} = 1 (a negated when
// y* < 0) and ϕ(s) = m|y*|^{2−2/D}(b^{2(D−1)} + (D−1)/b²) = target_phi, b > 1 (LargeB) or b < 1
// (SmallB), by bisection on ln b. Throws InputError if target_phi is below the flattest minimiser's.
struct EdgeMinimiser {
  VectorXd s;
  double a = 0, b = 0, phi = 0;
};
EdgeMinimiser edge_minimiser(const ScalarNetwork& net, double target_phi, Branch branch);

// ---- gradient flow (stability.md §3.7, §3.8) -----------------------------------------------------

enum class Integrator { Dopri5, Rk4 };
struct FlowOptions {
  Integrator integrator = Integrator::Dopri5;
  // The step (RK4) or its cap (DOPRI5) is dt_factor/λ with λ the spectral radius of ∇²L,
  // re-evaluated every eig_every steps (Cohen et al.'s rk_advance_time uses α/sharpness).
  double dt_factor = 1.0;
  int eig_every = 10;
  // If > 0: a fixed step instead (the recipe of §3.10 T3.1: dt = 0.02/ϕ(w₀)).
  double fixed_dt = 0;
  double grad_tol = 1e-10;   // converged when ‖∇L‖ < grad_tol
  double abs_tol = 1e-12;    // DOPRI5 error control
  double rel_tol = 1e-10;
  std::int64_t max_steps = 10'000'000;
};
struct FlowResult {
  VectorXd s;                  // the end point
  double phi = 0;              // λ_max(∇²L(s))
  double time = 0;             // integrated flow time
  std::int64_t steps = 0;      // accepted steps
  std::int64_t rejected_steps = 0;
  std::int64_t gradient_evaluations = 0;
  double grad_norm = 0;        // ‖∇L(s)‖
  bool converged = false;      // ‖∇L(s)‖ < grad_tol within max_steps
};
// Integrates ẇ = −∇L(w) from w0 until ‖∇L‖ < grad_tol (Boost.Odeint runge_kutta_dopri5 with error
// control, or runge_kutta4), then takes λ_max of the Hessian at the end point. Throws NumericError on
// a non-finite state or a step-size underflow; returns converged = false when max_steps run out.
FlowResult integrate_gradient_flow(const Model& model, const VectorXd& w0, const FlowOptions& options);

// ---- gradient descent ----------------------------------------------------------------------------

struct GdOptions {
  double eta = 0;
  std::int64_t max_steps = 200000;
  double stop_loss = 1e-20;
  double divergence_loss = 1e100;  // a loss above this (or not finite) ends the run as diverged
};
struct GdSummary {
  VectorXd w_final;
  std::int64_t steps = 0;          // the index of the last iterate
  bool converged = false;          // the loss fell below stop_loss
  bool diverged = false;
  std::int64_t loss_increases = 0; // steps t with L(w_{t+1}) > L(w_t)
  double final_loss = 0;
};
// on_step(t, w_t, L(w_t), last) is called for t = 0, 1, …; `last` is true for the final iterate
// (loss < stop_loss, t = max_steps, or divergence).
using GdCallback = std::function<void(std::int64_t, const VectorXd&, double, bool)>;
// Full-batch GD w ← w − η∇L(w) (for the scalar network w_i ← w_i − ηm(π − y*)Π_{j≠i}w_j, §3.4).
GdSummary run_gd(const Model& model, const VectorXd& w0, const GdOptions& options, const GdCallback& on_step);

// Counts increases of a sequence beyond a relative tolerance: v_{k+1} > v_k(1 + rel_tol).
struct IncreaseCounter {
  double rel_tol = 0;
  double last = std::numeric_limits<double>::quiet_NaN();
  std::int64_t samples = 0;
  std::int64_t increases = 0;
  double max_rel_increase = -std::numeric_limits<double>::infinity();  // max (v_{k+1} − v_k)/|v_k|
  void add(double v);
};

// A GD run of the scalar network with the closed-form ϕ at every step (§3.10 T3.3 / T3.5).
struct ScalarEdgeRun {
  GdSummary gd;
  IncreaseCounter phi;                   // ϕ(w_t) along the run
  double phi_first = 0, phi_final = 0;
  double final_sharpness = 0;            // λ_max(∇²L(w_final))
  bool undefined = false;                // the closed form was undefined at some step (a stalling tie)
};
ScalarEdgeRun run_scalar_edge(const ScalarNetwork& net, const VectorXd& w0, const GdOptions& options,
                              double phi_rel_tol);

}  // namespace gdlab::gfs
