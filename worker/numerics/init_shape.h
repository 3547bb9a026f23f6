// Numerical core of the experiment kind `init_shape`: Azulay, Moroshko, Nacson, Woodworth, Srebro,
// Globerson, Soudry, "On the Implicit Bias of Initialization Shape: Beyond Infinitesimal Mirror
// Descent", ICML 2021 (shared/papers/separable.md §5). Plain C++/Eigen (+ header-only Boost.Odeint
// in the .cc); no protobuf.
//
// Setting (separable.md §5.3): underdetermined regression, X is N×d with N < d and full row rank,
// square loss. Two models, both with β(0) = 0 and an initialization of scale α and shape s (§5.4):
//
//  * diagonal net (§5.5): β = u₊∘v₊ − u₋∘v₋, u±(0) = u₀, v±(0) = v₀, loss (1/2N)‖y − Xβ‖².
//    Gradient flow keeps u² − v² per branch and coordinate, and its limit is
//      β∞ = argmin Q(β) s.t. Xβ = y,  Q(β) = Σ_i q_{κ_i}(β_i),  ∇q_κ(x) = ½ arcsinh(x/κ),
//    κ_i = u₀ᵢ² + v₀ᵢ² (Theorem 4.1 in the clean form of §5.5; κ = 2α(1+s²)/(1−s²)).
//    In fact arcsinh(β(t)/κ) ∈ row(X) along the whole flow, so β(t) = κ∘sinh(Xᵀλ(t)).
//  * single hidden neuron (§5.6): f(x) = a wᵀx, w̃ = a w, loss (1/N)‖y − Xw̃‖². The flow keeps
//    δ = a² − ‖w‖² and P_null(X) w, and its limit is argmin q(w̃) s.t. Xw̃ = y with q of Theorem 6.1.
//
// Names: "row space" = row(X) = span of the rows of X in R^d; P_null = I − P_row.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <vector>

namespace gdlab::init_shape {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// ---- Data (separable.md §5.3) ---------------------------------------------------------------------

struct RegressionData {
  MatrixXd X;       // N×d training inputs, X ~ N(0, I)
  VectorXd y;       // N labels y = X w* + noise
  VectorXd w_star;  // planted sparse vector
  MatrixXd X_test;  // n_test×d noise-free test inputs
  VectorXd y_test;  // X_test w*
};
// Draws (in this order, from one Rng(seed)): X row by row, the N noise values, X_test row by row.
// w* has `sparsity` entries 1/√sparsity on its first coordinates. Throws InputError on sizes that
// make no sense (d < 1, n < 1, sparsity outside [1, d], n_test < 0, noise_std < 0).
RegressionData make_gaussian_regression(int d, int n, int sparsity, double noise_std, int n_test,
                                        std::uint64_t seed);

// ---- Scale and shape (separable.md §5.4) ------------------------------------------------------------

// u₀ = √(α(1−s)/(1+s)), v₀ = √(α(1+s)/(1−s)), so u₀v₀ = α and (v₀−u₀)/(v₀+u₀) = s.
struct ScaleShapeInit {
  double u0 = 0;
  double v0 = 0;
};
ScaleShapeInit scale_shape_init(double alpha, double s);
// κ = u₀² + v₀² = 2α(1+s²)/(1−s²) (separable.md §5.5, clean form).
double kappa_of_scale_shape(double alpha, double s);

// ---- Linear algebra helpers ---------------------------------------------------------------------------

// Orthonormal basis of row(X) from a thin Householder QR of Xᵀ. Throws NumericError when X does not
// have full row rank (σ_min/σ_max below 1e-12): the interpolation problem then has no unique
// min-norm structure the theorems talk about.
class RowSpace {
 public:
  explicit RowSpace(const MatrixXd& X);
  VectorXd row_part(const VectorXd& v) const { return basis_ * (basis_.transpose() * v); }
  VectorXd null_part(const VectorXd& v) const { return v - row_part(v); }
  const MatrixXd& basis() const { return basis_; }  // d×N, orthonormal columns

 private:
  MatrixXd basis_;
};

// The minimum-L2 interpolator Xᵀ(XXᵀ)⁻¹y (the kernel-regime limit, a control of §5.10).
VectorXd min_norm_interpolator(const MatrixXd& X, const VectorXd& y);

// ---- Diagonal net: the implicit regulariser Q (separable.md §5.5) ------------------------------------

// Q(β) = Σ_i q_{k_i}(β_i) with the code's q_k(x) = (√k/4)[1 − √(1+4x²/k) + (2x/√k) arcsinh(2x/√k)]
// and √k_i = 2κ_i, i.e. q = (κ/2)[t·arcsinh t − (√(1+t²) − 1)] with t = x/κ, evaluated in a form
// without cancellation for small t.
double q_diagonal(const VectorXd& beta, const VectorXd& kappa);
// ∇Q(β) = ½ arcsinh(β/κ).
VectorXd q_diagonal_gradient(const VectorXd& beta, const VectorXd& kappa);

// argmin Q(β) s.t. Xβ = y by damped Newton on the KKT system reduced to the multiplier (the dual of
// separable.md §5.8): stationarity ½arcsinh(β/κ) = Xᵀμ gives β = κ∘sinh(Xᵀλ) (λ = 2μ), and λ
// minimises the convex F(λ) = Σ_i κ_i cosh((Xᵀλ)_i) − λᵀy, whose gradient Xβ(λ) − y is the
// feasibility residual and whose Hessian is X diag(κ cosh(Xᵀλ)) Xᵀ. Armijo backtracking; stops when
// ‖Xβ − y‖ ≤ tol‖y‖. Throws NumericError if it cannot reach 1e-9‖y‖.
struct DiagonalQSolution {
  VectorXd beta;
  VectorXd lambda;            // β = κ∘sinh(Xᵀλ)
  int iterations = 0;
  double constraint_residual = 0;  // ‖Xβ − y‖/‖y‖
};
DiagonalQSolution solve_q_diagonal(const MatrixXd& X, const VectorXd& y, const VectorXd& kappa,
                                   double tol = 1e-13, int max_iterations = 1000);

// A second, independent route to the same minimiser (for validation): β = β_L2 + N z with N an
// orthonormal basis of null(X) from a full SVD of X, and damped Newton on z ↦ Q(β_L2 + N z), whose
// Hessian is Nᵀ diag(1/(2√(β²+κ²))) N. Stops when the reduced gradient ‖Nᵀ∇Q‖ ≤ tol·‖∇Q‖.
struct PrimalQSolution {
  VectorXd beta;
  int iterations = 0;
  double reduced_gradient = 0;  // ‖Nᵀ∇Q(β)‖/‖∇Q(β)‖
};
PrimalQSolution solve_q_diagonal_primal(const MatrixXd& X, const VectorXd& y, const VectorXd& kappa,
                                        double tol = 1e-12, int max_iterations = 2000);

// The diagonal model's KKT (Theorem 4.1) residual of a point β: ‖P_null arcsinh(β/κ)‖/‖arcsinh(β/κ)‖
// (separable.md §5.10 T5.1); 0 for β = 0.
double diagonal_kkt_residual(const RowSpace& rows, const VectorXd& beta, const VectorXd& kappa);

// Dense check of the KKT conditions of min Q s.t. Xβ = y by an SVD of X (independent of RowSpace):
// feasibility ‖Xβ − y‖/‖y‖ and stationarity ‖(I − V Vᵀ) arcsinh(β/κ)‖/‖arcsinh(β/κ)‖.
struct KktCheck {
  double feasibility = 0;
  double stationarity = 0;
};
KktCheck dense_kkt_check_diagonal(const MatrixXd& X, const VectorXd& y, const VectorXd& beta,
                                  const VectorXd& kappa);

// ---- Single neuron: Theorem 6.1 (separable.md §5.6, §5.8) ----------------------------------------------

// ψ(r) = (S − 2d̄)√(S + d̄), S = √(r² + d̄²): the first term of Theorem 6.1's q, simplified.
double neuron_psi(double r, double dbar);
// φ(r) = ψ′(r) = (3/2)√(S − d̄) = (3/2) r/√(S + d̄) (the second form has no cancellation).
double neuron_phi(double r, double dbar);
// Theorem 6.1's q as printed (code and notebook LaTeX):
//   q(w̃) = [(‖w̃‖² − d̄(d̄ + √(‖w̃‖² + d̄²)))·√(√(‖w̃‖² + d̄²) − d̄)]/‖w̃‖
//          − (3/2)·√(√(‖w̃₀‖² + d̄²) − d̄)·w̃₀ᵀw̃/‖w̃₀‖,
// evaluated literally (used to validate the simplified forms).
double q_neuron_literal(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar);
// The same q evaluated through ψ and φ (stable at small ‖w̃‖).
double q_neuron(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar);
// ∇q(w̃) = φ(r) w̃/r − φ(r₀) w̃₀/r₀ = (3/2)[w̃/√(S+d̄) − w̃₀/√(S₀+d̄)].
VectorXd q_neuron_gradient(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar);

// The minimiser: w̃∞ = w̃_LS + c·P_null w̃₀ (§5.8). The 1-D fixed point c = [φ(r₀)/φ(r∞)]·(r∞/r₀),
// r∞² = ‖w̃_LS‖² + c²‖P_null w̃₀‖², simplifies (φ(r)/r = (3/2)/√(S+d̄)) to
// c² A₀ − d̄ = √(‖w̃_LS‖² + c²‖P_null w̃₀‖² + d̄²) with A₀ = S₀ + d̄ = a₀², a quadratic in c² whose
// positive root is taken in a cancellation-free form.
struct NeuronQSolution {
  VectorXd w_tilde;
  double c = 0;          // ‖P_null w̃∞‖/‖P_null w̃₀‖
  double r_inf = 0;      // ‖w̃∞‖
};
NeuronQSolution solve_q_neuron(const MatrixXd& X, const VectorXd& y, const VectorXd& w_tilde0, double dbar);
// Second route: the fixed point of §5.8 solved by bisection on g(c) = c·φ(r(c))·r₀ − φ(r₀)·r(c)
// with φ evaluated as (3/2)√(S − d̄) (for validation in tests).
double neuron_null_ratio_by_bisection(const MatrixXd& X, const VectorXd& y, const VectorXd& w_tilde0,
                                      double dbar);
// The "mirror guess" control of §5.10 T5.2: if the flow were a mirror flow with ψ′(r)/r = 1/(S+d̄)
// (§5.6), the null-space ratio would be c = (S(r∞) + d̄)/(S(r₀) + d̄); evaluated at the given r∞.
double neuron_mirror_guess(double r_inf, double r0, double dbar);
// Relative KKT residual of w̃ for Theorem 6.1: ‖P_null ∇q(w̃)‖ / ‖P_null (3/2) w̃₀/√(S₀+d̄)‖.
double neuron_kkt_residual(const RowSpace& rows, const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar);

// ---- Dynamics -----------------------------------------------------------------------------------------

enum class Model { Diagonal, SingleNeuron };

// The parameter vector θ of a model and the gradient-flow field θ̇ = −∇_θ L(θ).
//   Diagonal: θ = [u₊; v₊; u₋; v₋] (4d), β = u₊∘v₊ − u₋∘v₋, L = (1/2N)‖y − Xβ‖².
//   Neuron:   θ = [w; a] (d+1),        w̃ = a·w,            L = (1/N)‖y − Xw̃‖².
class FlowProblem {
 public:
  FlowProblem(Model model, const MatrixXd& X, const VectorXd& y);
  Model model() const { return model_; }
  Eigen::Index dim() const { return X_.cols(); }
  Eigen::Index state_size() const { return model_ == Model::Diagonal ? 4 * dim() : dim() + 1; }
  // Writes θ̇ = −∇L(θ) into dtheta (sized state_size()) and returns the train MSE (1/N)‖y − Xβ‖² at θ.
  // Does not allocate.
  double field(const double* theta, double* dtheta) const;
  // β (diagonal) or w̃ (neuron) of θ.
  VectorXd predictor(const VectorXd& theta) const;
  // Train MSE at θ.
  double mse(const VectorXd& theta) const;

 private:
  Model model_;
  MatrixXd X_;
  VectorXd y_;
  double grad_factor_;           // ∇_β L = −grad_factor · Xᵀr: 1/N (diagonal), 2/N (neuron)
  mutable VectorXd beta_, residual_, grad_;
};

// θ(0) for the diagonal model: u₊ = u₋ = u₀, v₊ = v₋ = v₀.
VectorXd diagonal_initial_state(const VectorXd& u0, const VectorXd& v0);
// θ(0) for the neuron: [w₀; a₀].
VectorXd neuron_initial_state(const VectorXd& w0, double a0);

enum class Method { GradientDescent, Ode };

struct FlowOptions {
  Method method = Method::GradientDescent;
  double lr = 0;                 // GD step; flow time after t steps is lr·t
  std::int64_t max_steps = 0;    // GD steps, or accepted ODE steps, at most
  double t_max = 0;              // ODE: flow time limit
  double t_first = 1e-3;         // ODE: first recorded time
  int points_per_decade = 10;
  double stop_mse = 0;           // stop once the train MSE < stop_mse
  double abs_tol = 1e-12;        // ODE error control (controlled runge_kutta_dopri5)
  double rel_tol = 1e-10;
};

struct FlowResult {
  VectorXd theta;                // final state
  std::int64_t steps = 0;        // GD steps taken, or accepted ODE steps
  std::int64_t rejected_steps = 0;  // ODE only
  std::int64_t field_evaluations = 0;
  double time = 0;               // flow time reached
  double mse = 0;                // train MSE at the end
  bool converged = false;        // mse < stop_mse
};

// Called at each recording point with (record index or GD step, flow time, θ, train MSE). GD: at
// the steps of separable::log_grid(max_steps, points_per_decade) and at the stopping step. ODE: at
// the times t_first·10^{k/points_per_decade} (and t_max), `step` being k + 1, and at the stop.
using FlowRecordFn = std::function<void(std::int64_t step, double time, const VectorXd& theta, double mse)>;
// Runs GD (θ ← θ + lr·θ̇) or integrates the flow with Boost.Odeint's controlled dopri5 until the
// train MSE falls below stop_mse or the step/time budget ends. Throws NumericError when θ stops being
// finite (GD diverging at too large a step).
FlowResult run_flow(const FlowProblem& problem, const VectorXd& theta0, const FlowOptions& options,
                    const FlowRecordFn& on_record);

// Largest |(u² − v²)(t) − (u² − v²)(0)| over coordinates and branches (diagonal) or
// |(a² − ‖w‖²)(t) − (a² − ‖w‖²)(0)| (neuron): conserved exactly by the flow.
double balance_drift(Model model, const VectorXd& theta, const VectorXd& theta0);

}  // namespace gdlab::init_shape
