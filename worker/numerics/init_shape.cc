// Numerical core of the experiment kind `init_shape` (shared/papers/separable.md §5; Azulay et al.,
// ICML 2021). See init_shape.h for the formulas and conventions.
#include "worker/numerics/init_shape.h"

#include <algorithm>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "common/errors.h"
#include "common/random.h"
#include "worker/numerics/separable.h"

namespace gdlab::init_shape {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// S + d̄ and S − d̄ with S = √(r² + d̄²), each without cancellation (S² − d̄² = r²).
double s_plus_dbar(double r, double dbar) {
  const double S = std::hypot(r, dbar);
  return dbar >= 0 ? S + dbar : r * r / (S - dbar);
}
double s_minus_dbar(double r, double dbar) {
  const double S = std::hypot(r, dbar);
  return dbar <= 0 ? S - dbar : r * r / (S + dbar);
}

// One damped Newton step acceptance rule shared by both Q solvers: Armijo on the objective, or, for
// the full step only, a halving of the gradient norm (near the optimum the objective's decrease is
// below its round-off while the gradient still converges quadratically).
constexpr double kArmijo = 1e-4;
constexpr int kMaxHalvings = 80;

}  // namespace

// ---- Data -----------------------------------------------------------------------------------------

RegressionData make_gaussian_regression(int d, int n, int sparsity, double noise_std, int n_test,
                                        std::uint64_t seed) {
  if (d < 1 || n < 1) throw InputError("gaussian regression: need d >= 1 and n >= 1");
  if (sparsity < 1 || sparsity > d) throw InputError("gaussian regression: sparsity must be in [1, d]");
  if (n_test < 0) throw InputError("gaussian regression: n_test must be >= 0");
  if (!(noise_std >= 0) || !std::isfinite(noise_std))
    throw InputError("gaussian regression: noise_std must be finite and >= 0");
  Rng rng(seed);
  RegressionData data;
  data.X.resize(n, d);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < d; ++c) data.X(r, c) = rng.normal();
  // w* 5-sparse with entries 1/√5 in the paper (separable.md §5.3); here `sparsity` entries.
  data.w_star = VectorXd::Zero(d);
  data.w_star.head(sparsity).setConstant(1.0 / std::sqrt(static_cast<double>(sparsity)));
  data.y = data.X * data.w_star;
  for (int r = 0; r < n; ++r) data.y(r) += noise_std * rng.normal();
  data.X_test.resize(n_test, d);
  for (int r = 0; r < n_test; ++r)
    for (int c = 0; c < d; ++c) data.X_test(r, c) = rng.normal();
  data.y_test = data.X_test * data.w_star;
  return data;
}

// ---- Scale and shape (§5.4) ---------------------------------------------------------------------------

ScaleShapeInit scale_shape_init(double alpha, double s) {
  if (!(alpha > 0) || !(s > -1 && s < 1)) throw InputError("scale_shape_init: need alpha > 0 and s in (-1, 1)");
  return {std::sqrt(alpha * (1 - s) / (1 + s)), std::sqrt(alpha * (1 + s) / (1 - s))};
}

double kappa_of_scale_shape(double alpha, double s) { return 2 * alpha * (1 + s * s) / (1 - s * s); }

// ---- Linear algebra -------------------------------------------------------------------------------------

RowSpace::RowSpace(const MatrixXd& X) {
  const Eigen::Index n = X.rows(), d = X.cols();
  if (n == 0 || d == 0 || n > d) throw NumericError("RowSpace: need 1 <= N <= d (X is " + std::to_string(n) + "x" +
                                                    std::to_string(d) + ")");
  Eigen::ColPivHouseholderQR<MatrixXd> qr(X.transpose());
  const auto& R = qr.matrixR();
  const double r0 = std::abs(R(0, 0));
  const double rn = std::abs(R(n - 1, n - 1));
  if (!(r0 > 0) || !(rn > 1e-12 * r0))
    throw NumericError("X does not have full row rank (|R_nn|/|R_11| = " + num(r0 > 0 ? rn / r0 : 0) + ")");
  basis_ = qr.householderQ() * MatrixXd::Identity(d, n);
}

VectorXd min_norm_interpolator(const MatrixXd& X, const VectorXd& y) {
  return X.completeOrthogonalDecomposition().solve(y);
}

// ---- Diagonal net: Q (§5.5) -----------------------------------------------------------------------------

double q_diagonal(const VectorXd& beta, const VectorXd& kappa) {
  // q = (κ/2)[t asinh t − (√(1+t²) − 1)], and √(1+t²) − 1 = t²/(1 + √(1+t²)).
  double q = 0;
  for (Eigen::Index i = 0; i < beta.size(); ++i) {
    const double t = beta(i) / kappa(i);
    q += 0.5 * kappa(i) * (t * std::asinh(t) - t * t / (1 + std::sqrt(1 + t * t)));
  }
  return q;
}

VectorXd q_diagonal_gradient(const VectorXd& beta, const VectorXd& kappa) {
  VectorXd g(beta.size());
  for (Eigen::Index i = 0; i < beta.size(); ++i) g(i) = 0.5 * std::asinh(beta(i) / kappa(i));
  return g;
}

DiagonalQSolution solve_q_diagonal(const MatrixXd& X, const VectorXd& y, const VectorXd& kappa, double tol,
                                   int max_iterations) {
  const Eigen::Index n = X.rows(), d = X.cols();
  if (kappa.size() != d || y.size() != n) throw InputError("solve_q_diagonal: size mismatch");
  if (!(kappa.minCoeff() > 0)) throw InputError("solve_q_diagonal: kappa must be > 0");
  const double y_norm = std::max(y.norm(), std::numeric_limits<double>::min());

  // F(λ) = Σ κ cosh(Xᵀλ) − λᵀy (convex); ∇F = Xβ(λ) − y with β = κ∘sinh(Xᵀλ).
  auto objective = [&](const VectorXd& lam) {
    const VectorXd z = X.transpose() * lam;
    double f = -lam.dot(y);
    for (Eigen::Index i = 0; i < d; ++i) f += kappa(i) * std::cosh(z(i));
    return f;
  };
  auto beta_of = [&](const VectorXd& lam) {
    const VectorXd z = X.transpose() * lam;
    VectorXd b(d);
    for (Eigen::Index i = 0; i < d; ++i) b(i) = kappa(i) * std::sinh(z(i));
    return b;
  };

  DiagonalQSolution out;
  VectorXd lam = VectorXd::Zero(n);
  VectorXd beta = beta_of(lam);
  VectorXd grad = X * beta - y;
  double f = objective(lam);
  int it = 0;
  for (; it < max_iterations; ++it) {
    if (grad.norm() <= tol * y_norm) break;
    const VectorXd z = X.transpose() * lam;
    VectorXd w(d);
    for (Eigen::Index i = 0; i < d; ++i) w(i) = kappa(i) * std::cosh(z(i));
    MatrixXd H = X * w.asDiagonal() * X.transpose();
    Eigen::LLT<MatrixXd> llt(H);
    if (llt.info() != Eigen::Success) {
      H.diagonal().array() += 1e-14 * H.trace() / static_cast<double>(n);
      llt.compute(H);
      if (llt.info() != Eigen::Success) throw NumericError("solve_q_diagonal: singular Newton system");
    }
    const VectorXd step = -llt.solve(grad);
    const double slope = grad.dot(step);  // = −(Newton decrement)² < 0
    if (!(slope < 0)) break;
    bool accepted = false;
    double t = 1;
    for (int h = 0; h < kMaxHalvings; ++h, t *= 0.5) {
      const VectorXd lam_new = lam + t * step;
      const double f_new = objective(lam_new);
      if (!std::isfinite(f_new)) continue;
      const VectorXd beta_new = beta_of(lam_new);
      const VectorXd grad_new = X * beta_new - y;
      if (f_new <= f + kArmijo * t * slope || (h == 0 && grad_new.norm() <= 0.5 * grad.norm())) {
        lam = lam_new;
        beta = beta_new;
        grad = grad_new;
        f = f_new;
        accepted = true;
        break;
      }
    }
    if (!accepted) break;  // round-off floor
  }
  out.lambda = lam;
  out.beta = beta;
  out.iterations = it;
  out.constraint_residual = grad.norm() / y_norm;
  if (!(out.constraint_residual <= 1e-9))
    throw NumericError("solve_q_diagonal: no convergence (|X beta - y|/|y| = " + num(out.constraint_residual) +
                       " after " + std::to_string(it) + " Newton steps)");
  return out;
}

PrimalQSolution solve_q_diagonal_primal(const MatrixXd& X, const VectorXd& y, const VectorXd& kappa, double tol,
                                        int max_iterations) {
  const Eigen::Index n = X.rows(), d = X.cols();
  if (kappa.size() != d || y.size() != n) throw InputError("solve_q_diagonal_primal: size mismatch");
  Eigen::JacobiSVD<MatrixXd> svd(X, Eigen::ComputeThinU | Eigen::ComputeFullV);
  const MatrixXd null_basis = svd.matrixV().rightCols(d - n);  // d×(d−N)
  const VectorXd beta0 = svd.solve(y);                          // min-norm interpolator
  VectorXd z = VectorXd::Zero(d - n);
  VectorXd beta = beta0;
  auto reduced = [&](const VectorXd& b, double* full_norm) {
    const VectorXd g = q_diagonal_gradient(b, kappa);
    *full_norm = g.norm();
    return VectorXd(null_basis.transpose() * g);
  };
  double gfull = 0;
  VectorXd g = reduced(beta, &gfull);
  double q = q_diagonal(beta, kappa);
  int it = 0;
  for (; it < max_iterations; ++it) {
    if (g.norm() <= tol * std::max(gfull, std::numeric_limits<double>::min())) break;
    VectorXd h(d);
    for (Eigen::Index i = 0; i < d; ++i) h(i) = 0.5 / std::hypot(beta(i), kappa(i));  // q″ = ½/√(β²+κ²)
    const MatrixXd H = null_basis.transpose() * h.asDiagonal() * null_basis;
    Eigen::LLT<MatrixXd> llt(H);
    if (llt.info() != Eigen::Success) throw NumericError("solve_q_diagonal_primal: singular Newton system");
    const VectorXd step = -llt.solve(g);
    const double slope = g.dot(step);
    if (!(slope < 0)) break;
    bool accepted = false;
    double t = 1;
    for (int k = 0; k < kMaxHalvings; ++k, t *= 0.5) {
      const VectorXd z_new = z + t * step;
      const VectorXd beta_new = beta0 + null_basis * z_new;
      const double q_new = q_diagonal(beta_new, kappa);
      double gfull_new = 0;
      const VectorXd g_new = reduced(beta_new, &gfull_new);
      if (q_new <= q + kArmijo * t * slope || (k == 0 && g_new.norm() <= 0.5 * g.norm())) {
        z = z_new;
        beta = beta_new;
        q = q_new;
        g = g_new;
        gfull = gfull_new;
        accepted = true;
        break;
      }
    }
    if (!accepted) break;
  }
  PrimalQSolution out;
  out.beta = beta;
  out.iterations = it;
  out.reduced_gradient = g.norm() / std::max(gfull, std::numeric_limits<double>::min());
  return out;
}

double diagonal_kkt_residual(const RowSpace& rows, const VectorXd& beta, const VectorXd& kappa) {
  VectorXd a(beta.size());
  for (Eigen::Index i = 0; i < beta.size(); ++i) a(i) = std::asinh(beta(i) / kappa(i));
  const double norm = a.norm();
  return norm > 0 ? rows.null_part(a).norm() / norm : 0.0;
}

KktCheck dense_kkt_check_diagonal(const MatrixXd& X, const VectorXd& y, const VectorXd& beta, const VectorXd& kappa) {
  Eigen::JacobiSVD<MatrixXd> svd(X, Eigen::ComputeThinV);
  const MatrixXd V = svd.matrixV();  // d×N, right singular vectors: an orthonormal basis of row(X)
  VectorXd a(beta.size());
  for (Eigen::Index i = 0; i < beta.size(); ++i) a(i) = std::asinh(beta(i) / kappa(i));
  KktCheck k;
  k.feasibility = (X * beta - y).norm() / std::max(y.norm(), std::numeric_limits<double>::min());
  const double an = a.norm();
  k.stationarity = an > 0 ? (a - V * (V.transpose() * a)).norm() / an : 0.0;
  return k;
}

// ---- Single neuron (§5.6, §5.8) -------------------------------------------------------------------------

double neuron_psi(double r, double dbar) {
  const double S = std::hypot(r, dbar);
  return (S - 2 * dbar) * std::sqrt(s_plus_dbar(r, dbar));
}

double neuron_phi(double r, double dbar) { return 1.5 * std::sqrt(s_minus_dbar(r, dbar)); }

double q_neuron_literal(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar) {
  const double r2 = w_tilde.squaredNorm();
  const double r = std::sqrt(r2);
  const double S = std::sqrt(r2 + dbar * dbar);
  const double r0 = w_tilde0.norm();
  const double S0 = std::sqrt(r0 * r0 + dbar * dbar);
  return (r2 - dbar * (dbar + S)) * std::sqrt(S - dbar) / r - 1.5 * std::sqrt(S0 - dbar) * w_tilde0.dot(w_tilde) / r0;
}

double q_neuron(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar) {
  const double r0 = w_tilde0.norm();
  return neuron_psi(w_tilde.norm(), dbar) - neuron_phi(r0, dbar) * w_tilde0.dot(w_tilde) / r0;
}

VectorXd q_neuron_gradient(const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar) {
  // φ(r)/r = (3/2)/√(S + d̄).
  const double a = 1.5 / std::sqrt(s_plus_dbar(w_tilde.norm(), dbar));
  const double b = 1.5 / std::sqrt(s_plus_dbar(w_tilde0.norm(), dbar));
  return a * w_tilde - b * w_tilde0;
}

NeuronQSolution solve_q_neuron(const MatrixXd& X, const VectorXd& y, const VectorXd& w_tilde0, double dbar) {
  const RowSpace rows(X);
  const VectorXd w_ls = min_norm_interpolator(X, y);
  const VectorXd p = rows.null_part(w_tilde0);
  const double L = w_ls.squaredNorm();
  const double n0 = p.squaredNorm();
  const double A0 = s_plus_dbar(w_tilde0.norm(), dbar);  // a₀² = S₀ + d̄
  if (!(A0 > 0)) throw NumericError("solve_q_neuron: a0 = 0 (w_tilde0 = 0)");
  // A₀² z² − (2A₀d̄ + n₀) z − L = 0, z = c²; the positive root without cancellation.
  const double b = 2 * A0 * dbar + n0;
  const double disc = std::sqrt(b * b + 4 * A0 * A0 * L);
  double z = 0;
  if (b >= 0) {
    z = (b + disc) / (2 * A0 * A0);
  } else if (disc - b > 0) {
    z = 2 * L / (disc - b);
  }
  NeuronQSolution out;
  out.c = std::sqrt(z);
  out.w_tilde = w_ls + out.c * p;
  out.r_inf = out.w_tilde.norm();
  return out;
}

double neuron_null_ratio_by_bisection(const MatrixXd& X, const VectorXd& y, const VectorXd& w_tilde0, double dbar) {
  const RowSpace rows(X);
  const double L = min_norm_interpolator(X, y).squaredNorm();
  const double n0 = rows.null_part(w_tilde0).squaredNorm();
  const double r0 = w_tilde0.norm();
  // φ literally as (3/2)√(√(r² + d̄²) − d̄) (§5.6).
  auto phi = [&](double r) { return 1.5 * std::sqrt(std::sqrt(r * r + dbar * dbar) - dbar); };
  auto r_of = [&](double c) { return std::sqrt(L + c * c * n0); };
  auto g = [&](double c) { return c * phi(r_of(c)) * r0 - phi(r0) * r_of(c); };
  double lo = 0, hi = 1;
  while (g(hi) <= 0) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) throw NumericError("neuron_null_ratio_by_bisection: no bracket");
  }
  for (int k = 0; k < 2000 && hi - lo > 4 * std::numeric_limits<double>::epsilon() * hi; ++k) {
    const double mid = 0.5 * (lo + hi);
    (g(mid) > 0 ? hi : lo) = mid;
  }
  return 0.5 * (lo + hi);
}

double neuron_mirror_guess(double r_inf, double r0, double dbar) {
  return s_plus_dbar(r_inf, dbar) / s_plus_dbar(r0, dbar);
}

double neuron_kkt_residual(const RowSpace& rows, const VectorXd& w_tilde, const VectorXd& w_tilde0, double dbar) {
  const double b = 1.5 / std::sqrt(s_plus_dbar(w_tilde0.norm(), dbar));
  const double den = rows.null_part(b * w_tilde0).norm();
  const double numr = rows.null_part(q_neuron_gradient(w_tilde, w_tilde0, dbar)).norm();
  return den > 0 ? numr / den : numr;
}

// ---- Dynamics ---------------------------------------------------------------------------------------------

FlowProblem::FlowProblem(Model model, const MatrixXd& X, const VectorXd& y)
    : model_(model),
      X_(X),
      y_(y),
      grad_factor_((model == Model::Diagonal ? 1.0 : 2.0) / static_cast<double>(X.rows())),
      beta_(X.cols()),
      residual_(X.rows()),
      grad_(X.cols()) {
  if (X.rows() == 0 || X.cols() == 0 || y.size() != X.rows()) throw InputError("FlowProblem: bad data sizes");
}

double FlowProblem::field(const double* theta, double* dtheta) const {
  const Eigen::Index d = dim();
  if (model_ == Model::Diagonal) {
    Eigen::Map<const VectorXd> up(theta, d), vp(theta + d, d), um(theta + 2 * d, d), vm(theta + 3 * d, d);
    beta_.array() = up.array() * vp.array() - um.array() * vm.array();
    residual_ = y_;
    residual_.noalias() -= X_ * beta_;
    grad_.noalias() = X_.transpose() * residual_;
    grad_ *= -grad_factor_;  // ∇_β L = −(1/N) Xᵀr
    Eigen::Map<VectorXd> dup(dtheta, d), dvp(dtheta + d, d), dum(dtheta + 2 * d, d), dvm(dtheta + 3 * d, d);
    // ∂β/∂u₊ = v₊, ∂β/∂v₊ = u₊, ∂β/∂u₋ = −v₋, ∂β/∂v₋ = −u₋.
    dup.array() = -grad_.array() * vp.array();
    dvp.array() = -grad_.array() * up.array();
    dum.array() = grad_.array() * vm.array();
    dvm.array() = grad_.array() * um.array();
  } else {
    Eigen::Map<const VectorXd> w(theta, d);
    const double a = theta[d];
    beta_ = a * w;
    residual_ = y_;
    residual_.noalias() -= X_ * beta_;
    grad_.noalias() = X_.transpose() * residual_;
    grad_ *= -grad_factor_;  // ∇_w̃ L = −(2/N) Xᵀr
    Eigen::Map<VectorXd> dw(dtheta, d);
    dw = -a * grad_;            // ∂L/∂w = a ∇_w̃ L
    dtheta[d] = -w.dot(grad_);  // ∂L/∂a = wᵀ∇_w̃ L
  }
  return residual_.squaredNorm() / static_cast<double>(X_.rows());
}

VectorXd FlowProblem::predictor(const VectorXd& theta) const {
  const Eigen::Index d = dim();
  if (model_ == Model::Diagonal)
    return (theta.segment(0, d).array() * theta.segment(d, d).array() -
            theta.segment(2 * d, d).array() * theta.segment(3 * d, d).array())
        .matrix();
  return theta(d) * theta.head(d);
}

double FlowProblem::mse(const VectorXd& theta) const {
  return (y_ - X_ * predictor(theta)).squaredNorm() / static_cast<double>(X_.rows());
}

VectorXd diagonal_initial_state(const VectorXd& u0, const VectorXd& v0) {
  const Eigen::Index d = u0.size();
  VectorXd theta(4 * d);
  theta << u0, v0, u0, v0;
  return theta;
}

VectorXd neuron_initial_state(const VectorXd& w0, double a0) {
  VectorXd theta(w0.size() + 1);
  theta << w0, a0;
  return theta;
}

double balance_drift(Model model, const VectorXd& theta, const VectorXd& theta0) {
  if (model == Model::Diagonal) {
    const Eigen::Index d = theta.size() / 4;
    double drift = 0;
    for (int branch = 0; branch < 2; ++branch) {
      const auto u = theta.segment(2 * branch * d, d).array(), v = theta.segment((2 * branch + 1) * d, d).array();
      const auto u0 = theta0.segment(2 * branch * d, d).array(), v0 = theta0.segment((2 * branch + 1) * d, d).array();
      drift = std::max(drift, ((u * u - v * v) - (u0 * u0 - v0 * v0)).abs().maxCoeff());
    }
    return drift;
  }
  const Eigen::Index d = theta.size() - 1;
  const double now = theta(d) * theta(d) - theta.head(d).squaredNorm();
  const double then = theta0(d) * theta0(d) - theta0.head(d).squaredNorm();
  return std::abs(now - then);
}

namespace {

FlowResult run_gd(const FlowProblem& problem, const VectorXd& theta0, const FlowOptions& o,
                  const FlowRecordFn& on_record) {
  const auto grid = separable::log_grid(o.max_steps, o.points_per_decade);
  VectorXd theta = theta0;
  VectorXd dtheta(theta.size());
  FlowResult res;
  std::size_t gi = 0;
  for (std::int64_t t = 0;; ++t) {
    const double mse = problem.field(theta.data(), dtheta.data());
    ++res.field_evaluations;
    if (!std::isfinite(mse))
      throw NumericError("GD diverged at step " + std::to_string(t) + " (train MSE not finite; lr " + num(o.lr) +
                         " too large?)");
    while (gi < grid.size() && grid[gi] < t) ++gi;
    const bool on_grid = gi < grid.size() && grid[gi] == t;
    const bool stop = mse < o.stop_mse;
    const bool last = t >= o.max_steps;
    if ((t > 0 && on_grid) || stop || last) on_record(t, o.lr * static_cast<double>(t), theta, mse);
    if (stop || last) {
      res.theta = theta;
      res.steps = t;
      res.time = o.lr * static_cast<double>(t);
      res.mse = mse;
      res.converged = stop;
      return res;
    }
    theta.noalias() += o.lr * dtheta;
  }
}

FlowResult run_ode(const FlowProblem& problem, const VectorXd& theta0, const FlowOptions& o,
                   const FlowRecordFn& on_record) {
  namespace odeint = boost::numeric::odeint;
  using State = std::vector<double>;
  FlowResult res;
  struct System {
    const FlowProblem* problem;
    std::int64_t* evaluations;
    void operator()(const State& x, State& dxdt, double /*t*/) const {
      dxdt.resize(x.size());
      problem->field(x.data(), dxdt.data());
      ++*evaluations;
    }
  };
  const System system{&problem, &res.field_evaluations};
  auto stepper = odeint::make_controlled(o.abs_tol, o.rel_tol, odeint::runge_kutta_dopri5<State>());

  // Recording times t_first·10^{k/ppd} below t_max, then t_max.
  std::vector<double> times;
  for (int k = 0;; ++k) {
    const double tk = o.t_first * std::pow(10.0, static_cast<double>(k) / o.points_per_decade);
    if (!(tk < o.t_max)) break;
    times.push_back(tk);
  }
  times.push_back(o.t_max);

  State x(theta0.data(), theta0.data() + theta0.size());
  double t = 0;
  double dt = std::min(o.t_first, 1e-2) * 0.1;
  bool budget_left = true;
  for (std::size_t k = 0; k < times.size() && budget_left; ++k) {
    const double target = times[k];
    while (t < target) {
      if (res.steps >= o.max_steps) {
        budget_left = false;
        break;
      }
      const bool clipped = dt >= target - t;
      double step = clipped ? target - t : dt;
      const double before = step;
      if (stepper.try_step(system, x, t, step) == odeint::success) {
        ++res.steps;
        if (clipped) t = target;
        dt = clipped ? std::max(dt, step) : step;
      } else {
        ++res.rejected_steps;
        dt = step;
        if (!(dt > 0) || !(before > 0)) throw NumericError("ODE step size underflow at t = " + num(t));
      }
    }
    const VectorXd theta = Eigen::Map<const VectorXd>(x.data(), static_cast<Eigen::Index>(x.size()));
    const double mse = problem.mse(theta);
    if (!std::isfinite(mse)) throw NumericError("ODE solution not finite at t = " + num(t));
    const bool stop = mse < o.stop_mse;
    const bool last = !budget_left || k + 1 == times.size();
    on_record(static_cast<std::int64_t>(k + 1), t, theta, mse);
    res.theta = theta;
    res.time = t;
    res.mse = mse;
    res.converged = stop;
    if (stop || last) break;
  }
  return res;
}

}  // namespace

FlowResult run_flow(const FlowProblem& problem, const VectorXd& theta0, const FlowOptions& options,
                    const FlowRecordFn& on_record) {
  if (theta0.size() != problem.state_size()) throw InputError("run_flow: theta0 has the wrong size");
  if (options.max_steps < 1 || options.points_per_decade < 1) throw InputError("run_flow: bad step budget or grid");
  if (options.method == Method::GradientDescent) {
    if (!(options.lr > 0) || !std::isfinite(options.lr)) throw InputError("run_flow: lr must be > 0");
    return run_gd(problem, theta0, options, on_record);
  }
  if (!(options.t_max > 0) || !(options.t_first > 0) || !(options.abs_tol > 0) || !(options.rel_tol > 0))
    throw InputError("run_flow: t_max, t_first and the ODE tolerances must be > 0");
  return run_ode(problem, theta0, options, on_record);
}

}  // namespace gdlab::init_shape
