// Numerical core of the experiment kind `gfs_sharpness` (Kreisler et al., ICML 2023;
// shared/papers/stability.md §3). See gfs_sharpness.h.
#include "worker/numerics/gfs_sharpness.h"

#include <algorithm>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/random.h"

namespace gdlab::gfs {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

// ---- models -------------------------------------------------------------------------------------

double product(const VectorXd& w) {
  double p = 1.0;
  for (Eigen::Index i = 0; i < w.size(); ++i) p *= w(i);
  return p;
}

VectorXd product_gradient(const VectorXd& w) {
  const Eigen::Index n = w.size();
  VectorXd g(n);
  double prefix = 1.0;  // Π_{j<i} w_j
  for (Eigen::Index i = 0; i < n; ++i) {
    g(i) = prefix;
    prefix *= w(i);
  }
  double suffix = 1.0;  // Π_{j>i} w_j
  for (Eigen::Index i = n - 1; i >= 0; --i) {
    g(i) *= suffix;
    suffix *= w(i);
  }
  return g;
}

MatrixXd product_hessian(const VectorXd& w) {
  const Eigen::Index n = w.size();
  MatrixXd H = MatrixXd::Zero(n, n);
  VectorXd prefix(n), suffix(n);
  double p = 1.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    prefix(i) = p;
    p *= w(i);
  }
  p = 1.0;
  for (Eigen::Index i = n - 1; i >= 0; --i) {
    suffix(i) = p;
    p *= w(i);
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    double middle = 1.0;  // Π_{i<k<j} w_k
    for (Eigen::Index j = i + 1; j < n; ++j) {
      H(i, j) = H(j, i) = prefix(i) * middle * suffix(j);
      middle *= w(j);
    }
  }
  return H;
}

ScalarNetwork::ScalarNetwork(int depth, double y_star, double x_sq_mean)
    : depth_(depth), y_star_(y_star), m_(x_sq_mean) {
  if (depth < 1) throw InputError("ScalarNetwork: depth must be >= 1");
  if (!(y_star != 0) || !std::isfinite(y_star)) throw InputError("ScalarNetwork: y* must be finite and nonzero");
  if (!(x_sq_mean > 0) || !std::isfinite(x_sq_mean)) throw InputError("ScalarNetwork: m must be finite and > 0");
}

double ScalarNetwork::loss(const VectorXd& w) const {
  const double r = product(w) - y_star_;
  return 0.5 * m_ * r * r;
}

void ScalarNetwork::gradient(const VectorXd& w, VectorXd& g) const {
  g = (m_ * (product(w) - y_star_)) * product_gradient(w);
}

MatrixXd ScalarNetwork::hessian(const VectorXd& w) const {
  const VectorXd gp = product_gradient(w);
  return m_ * (gp * gp.transpose() + (product(w) - y_star_) * product_hessian(w));
}

double ScalarNetwork::flattest_sharpness() const {
  const double D = depth_;
  return D * m_ * std::pow(std::abs(y_star_), 2.0 - 2.0 / D);
}

SquaredRegression::SquaredRegression(MatrixXd X, VectorXd y) : X_(std::move(X)), y_(std::move(y)) {
  if (X_.rows() != y_.size() || X_.rows() < 1 || X_.cols() < 1)
    throw InputError("SquaredRegression: X must be n x d with n = |y| >= 1");
  gram_ = X_.transpose() * X_;
}

VectorXd SquaredRegression::residual(const VectorXd& w) const { return X_ * w.cwiseProduct(w) - y_; }

double SquaredRegression::loss(const VectorXd& w) const {
  return 0.5 * residual(w).squaredNorm() / static_cast<double>(X_.rows());
}

void SquaredRegression::gradient(const VectorXd& w, VectorXd& g) const {
  const double n = static_cast<double>(X_.rows());
  g = (2.0 / n) * w.cwiseProduct(X_.transpose() * residual(w));
}

MatrixXd SquaredRegression::hessian(const VectorXd& w) const {
  const double n = static_cast<double>(X_.rows());
  MatrixXd H = (4.0 / n) * (w * w.transpose()).cwiseProduct(gram_);
  H.diagonal() += (2.0 / n) * (X_.transpose() * residual(w));
  return H;
}

RegressionData make_regression_data(int n, int d, std::uint64_t seed) {
  if (n < 1 || d < 1) throw InputError("make_regression_data: n and d must be >= 1");
  Rng rng(seed);
  RegressionData data;
  data.X.resize(n, d);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < d; ++i) data.X(j, i) = rng.normal();
  data.w_star.resize(d);
  for (int i = 0; i < d; ++i) data.w_star(i) = rng.normal();
  data.y = data.X * data.w_star.cwiseProduct(data.w_star);
  return data;
}

VectorXd gaussian_vector(int d, double scale, std::uint64_t seed) {
  Rng rng(seed);
  VectorXd g(d);
  for (int i = 0; i < d; ++i) g(i) = scale * rng.normal();
  return g;
}

VectorXd squared_regression_gfs_dual(const SquaredRegression& model, const VectorXd& w) {
  const MatrixXd& X = model.X();
  const VectorXd& y = model.y();
  const VectorXd b0 = w.cwiseProduct(w);
  const Eigen::Index n = X.rows();
  auto beta_of = [&](const VectorXd& lambda) -> VectorXd {
    return b0.array() * (X.transpose() * lambda).array().exp();
  };
  auto objective = [&](const VectorXd& lambda) { return beta_of(lambda).sum() - y.dot(lambda); };
  VectorXd lambda = VectorXd::Zero(n);
  const double scale = std::max(1.0, y.norm());
  double grad_norm = INFINITY;
  int polish = 0;
  for (int it = 0; it < 500; ++it) {
    const VectorXd beta = beta_of(lambda);
    const VectorXd grad = X * beta - y;  // ∇ of Σ β_i − yᵀλ
    grad_norm = grad.norm();
    if (grad_norm <= 1e-14 * scale && ++polish > 2) break;
    const MatrixXd hess = X * beta.asDiagonal() * X.transpose();
    const VectorXd step = hess.ldlt().solve(grad);
    const double f0 = objective(lambda);
    const double decrease = grad.dot(step);  // the Newton decrement², > 0
    VectorXd next = lambda - step;
    if (decrease > 1e-13 * (std::abs(f0) + 1.0)) {
      // Armijo backtracking while the objective can resolve the decrease ...
      double t = 1.0;
      while (objective(next) > f0 - 0.25 * t * decrease && t > 1e-12) {
        t *= 0.5;
        next = lambda - t * step;
      }
      if (t <= 1e-12) break;
    } else if (!((X * beta_of(next) - y).norm() < grad_norm)) {
      break;  // ... then full steps (quadratic convergence) while they reduce the gradient
    }
    lambda = next;
  }
  if (!(grad_norm <= 1e-10 * scale)) throw NumericError("squared_regression_gfs_dual: Newton stalled at |Xb - y| = " + num(grad_norm));
  const VectorXd beta = beta_of(lambda);
  VectorXd s(w.size());
  for (Eigen::Index i = 0; i < w.size(); ++i) s(i) = (w(i) < 0 ? -1.0 : 1.0) * std::sqrt(beta(i));
  return s;
}

double lambda_max(const MatrixXd& H) {
  Eigen::SelfAdjointEigenSolver<MatrixXd> eig(H, Eigen::EigenvaluesOnly);
  if (eig.info() != Eigen::Success) throw NumericError("lambda_max: eigensolver failed");
  return eig.eigenvalues()(H.rows() - 1);
}

double spectral_radius(const MatrixXd& H) {
  Eigen::SelfAdjointEigenSolver<MatrixXd> eig(H, Eigen::EigenvaluesOnly);
  if (eig.info() != Eigen::Success) throw NumericError("spectral_radius: eigensolver failed");
  return std::max(std::abs(eig.eigenvalues()(0)), std::abs(eig.eigenvalues()(H.rows() - 1)));
}

// ---- scalar networks: closed forms --------------------------------------------------------------

ClosedFormGfs closed_form_gfs(const ScalarNetwork& net, const VectorXd& w) {
  ClosedFormGfs out;
  const double pi = product(w);
  const double y_star = net.y_star();
  if (!std::isfinite(pi) || !w.allFinite()) return out;
  const Eigen::Index D = w.size();
  const Eigen::ArrayXd w2 = w.array().square();
  Eigen::Index argmin = 0;
  const double min_w2 = w2.minCoeff(&argmin);
  // π·y* ≤ 0: the flow raises |π| toward the sign of y*; the balances pin every coordinate but the
  // smallest away from 0, so that one crosses zero (where ∂π/∂w_argmin ≠ 0) and flips its sign. With
  // a tie for the smallest |w_i| the flow instead stalls at a saddle on π = 0: no closed form.
  const bool crossing = !(pi * y_star > 0);
  if (crossing && (w2 == min_w2).count() > 1) return out;
  const Eigen::ArrayXd excess = w2 - min_w2;  // w_i² − min w², ≥ 0, zero at the argmin
  // g(σ) = Σ ln(excess_i + e^σ) − ln y*² (stability.md §3.4), g'(σ) = Σ e^σ/(excess_i + e^σ) ≥ 1.
  const double target = 2.0 * std::log(std::abs(y_star));
  auto g = [&](double sigma, double& slope) {
    const double e = std::exp(sigma);
    double value = 0, d = 0;
    for (Eigen::Index i = 0; i < D; ++i) {
      value += std::log(excess(i) + e);
      d += e / (excess(i) + e);
    }
    slope = d;
    return value - target;
  };
  // At σ₀ = ln(y*²)/D every term is ≥ σ₀, so g(σ₀) ≥ 0: Newton from the right of the root.
  double sigma = target / static_cast<double>(D);
  double slope = 0;
  double value = g(sigma, slope);
  while (value > 0 && out.iterations < 400) {
    const double next = sigma - value / slope;
    ++out.iterations;
    if (!(next < sigma)) break;  // rounding stopped the monotone descent: converged
    sigma = next;
    value = g(sigma, slope);
  }
  const double e = std::exp(sigma);
  const Eigen::ArrayXd s2 = excess + e;
  out.s.resize(D);
  for (Eigen::Index i = 0; i < D; ++i) out.s(i) = (w(i) < 0 ? -1.0 : 1.0) * std::sqrt(s2(i));
  if (crossing) {
    out.s(argmin) = 1.0;
    out.s(argmin) = (product(out.s) * y_star < 0 ? -1.0 : 1.0) * std::sqrt(s2(argmin));
  }
  out.c = e - min_w2;
  // ϕ = m·y*²·Σ 1/s_i²: at a minimiser ∇²L = m∇π∇πᵀ and ‖∇π(s)‖² = π(s)²Σ 1/s_i² (§3.4).
  out.phi = net.x_sq_mean() * y_star * y_star * s2.inverse().sum();
  out.valid = std::isfinite(out.phi);
  return out;
}

double phi_depth2(double x, double y) {
  const double b = x * x - y * y;
  return std::sqrt(b * b + 4.0);
}

double max_balance(const VectorXd& w) {
  const Eigen::ArrayXd w2 = w.array().square();
  return w2.maxCoeff() - w2.minCoeff();
}

MatrixXd balances(const VectorXd& w) {
  const Eigen::Index n = w.size();
  MatrixXd B(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) B(i, j) = w(i) * w(i) - w(j) * w(j);
  return B;
}

MatrixXd predicted_balances_after_step(const ScalarNetwork& net, double eta, const VectorXd& w) {
  // §3.5: b_ij⁺ = b_ij(1 − η²m²r²π²/(w_i²w_j²)); π/(w_i w_j) = Π_{k≠i,j} w_k = (∇²π)_ij, so the
  // factor is 1 − (η m r (∇²π)_ij)², exact also where a coordinate is zero.
  const double r = product(w) - net.y_star();
  const MatrixXd P = product_hessian(w);
  const MatrixXd B = balances(w);
  MatrixXd out(B.rows(), B.cols());
  for (Eigen::Index i = 0; i < B.rows(); ++i)
    for (Eigen::Index j = 0; j < B.cols(); ++j) {
      const double q = eta * net.x_sq_mean() * r * P(i, j);
      out(i, j) = B(i, j) * (1.0 - q * q);
    }
  return out;
}

EdgeMinimiser edge_minimiser(const ScalarNetwork& net, double target_phi, Branch branch) {
  const int D = net.depth();
  if (D < 2) throw InputError("edge_minimiser: depth must be >= 2");
  const double abs_y = std::abs(net.y_star());
  const double unit = net.x_sq_mean() * std::pow(abs_y, 2.0 - 2.0 / D);  // ϕ of s/|y*|^{1/D} scaled
  const double K = target_phi / unit;
  if (!std::isfinite(K) || !(K >= D * (1.0 - 1e-14)))
    throw InputError("the target GFS sharpness " + num(target_phi) + " is below the flattest minimiser's " +
                     num(net.flattest_sharpness()));
  const double Dm1 = D - 1;
  // h(β) = e^{2(D−1)β} + (D−1)e^{−2β} − K on β = ln b: increasing for β > 0, decreasing for β < 0.
  auto h = [&](double beta) { return std::exp(2.0 * Dm1 * beta) + Dm1 * std::exp(-2.0 * beta) - K; };
  double lo, hi;
  if (branch == Branch::LargeB) {
    lo = 0.0;
    hi = std::log(std::max(K, 1.0)) / (2.0 * Dm1);  // there e^{2(D−1)β} ≥ K
  } else {
    lo = -0.5 * std::log(std::max(K / Dm1, 1.0));  // there (D−1)e^{−2β} ≥ K
    hi = 0.0;
  }
  const bool increasing = branch == Branch::LargeB;
  for (int it = 0; it < 400; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    const bool above = h(mid) > 0;
    if (above == increasing) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  EdgeMinimiser out;
  out.b = std::exp(0.5 * (lo + hi));
  out.a = std::pow(out.b, 1.0 - D);
  const double u = std::pow(abs_y, 1.0 / D);
  out.s = VectorXd::Constant(D, u * out.b);
  out.s(0) = (net.y_star() < 0 ? -1.0 : 1.0) * u * out.a;
  out.phi = net.x_sq_mean() * net.y_star() * net.y_star() * out.s.array().square().inverse().sum();
  return out;
}

// ---- gradient flow ------------------------------------------------------------------------------

FlowResult integrate_gradient_flow(const Model& model, const VectorXd& w0, const FlowOptions& o) {
  namespace odeint = boost::numeric::odeint;
  using State = std::vector<double>;
  const Eigen::Index n = model.dimension();
  if (w0.size() != n) throw InputError("integrate_gradient_flow: w0 has the wrong size");
  if (!(o.dt_factor > 0) && !(o.fixed_dt > 0)) throw InputError("integrate_gradient_flow: dt_factor must be > 0");
  if (o.eig_every < 1 || o.max_steps < 1 || !(o.grad_tol > 0))
    throw InputError("integrate_gradient_flow: bad eig_every, max_steps or grad_tol");

  FlowResult res;
  VectorXd w_buf(n), g_buf(n);
  auto field = [&](const State& x, State& dxdt, double /*t*/) {
    w_buf = Eigen::Map<const VectorXd>(x.data(), n);
    model.gradient(w_buf, g_buf);
    dxdt.resize(static_cast<std::size_t>(n));
    Eigen::Map<VectorXd>(dxdt.data(), n) = -g_buf;
    ++res.gradient_evaluations;
  };
  auto grad_norm_at = [&](const State& x) {
    w_buf = Eigen::Map<const VectorXd>(x.data(), n);
    model.gradient(w_buf, g_buf);
    return g_buf.norm();
  };
  // The step (RK4) or its cap (DOPRI5): dt_factor/λ, λ the spectral radius of ∇²L (§3.7, §3.8).
  auto step_scale = [&](const State& x, double t) {
    if (o.fixed_dt > 0) return o.fixed_dt;
    const double lam = spectral_radius(model.hessian(Eigen::Map<const VectorXd>(x.data(), n)));
    if (!(lam > 0) || !std::isfinite(lam))
      throw NumericError("gradient flow: the Hessian vanishes at t = " + num(t) + " with |grad L| above grad_tol");
    return o.dt_factor / lam;
  };

  State x(w0.data(), w0.data() + n);
  double t = 0;
  double grad_norm = grad_norm_at(x);
  double cap = 0;
  std::int64_t since_scale = o.eig_every;
  odeint::runge_kutta4<State> rk4;
  auto dopri5 = odeint::make_controlled(o.abs_tol, o.rel_tol, odeint::runge_kutta_dopri5<State>());
  double dt_suggested = -1;
  while (!(grad_norm < o.grad_tol)) {
    if (res.steps >= o.max_steps) break;
    if (since_scale >= o.eig_every) {
      cap = step_scale(x, t);
      since_scale = 0;
      if (dt_suggested < 0) dt_suggested = cap;
    }
    if (o.integrator == Integrator::Rk4) {
      rk4.do_step(field, x, t, cap);
      t += cap;
      ++res.steps;
      ++since_scale;
    } else {
      double dt = std::min(dt_suggested, cap);
      if (dopri5.try_step(field, x, t, dt) == odeint::success) {
        ++res.steps;
        ++since_scale;
      } else {
        ++res.rejected_steps;
        if (!(dt > 1e-300)) throw NumericError("gradient flow: step size underflow at t = " + num(t));
      }
      dt_suggested = dt;
    }
    grad_norm = grad_norm_at(x);
    if (!std::isfinite(grad_norm)) throw NumericError("gradient flow: state not finite at t = " + num(t));
  }
  res.s = Eigen::Map<const VectorXd>(x.data(), n);
  res.time = t;
  res.grad_norm = grad_norm;
  res.converged = grad_norm < o.grad_tol;
  res.phi = lambda_max(model.hessian(res.s));
  return res;
}

// ---- gradient descent ---------------------------------------------------------------------------

GdSummary run_gd(const Model& model, const VectorXd& w0, const GdOptions& o, const GdCallback& on_step) {
  if (w0.size() != model.dimension()) throw InputError("run_gd: w0 has the wrong size");
  if (!(o.eta > 0) || o.max_steps < 0) throw InputError("run_gd: eta must be > 0 and max_steps >= 0");
  GdSummary out;
  VectorXd w = w0, g(w0.size());
  double loss = model.loss(w);
  for (std::int64_t t = 0;; ++t) {
    const bool diverged = !std::isfinite(loss) || loss > o.divergence_loss || !w.allFinite();
    const bool converged = !diverged && loss < o.stop_loss;
    const bool last = diverged || converged || t >= o.max_steps;
    if (on_step) on_step(t, w, loss, last);
    if (last) {
      out.w_final = w;
      out.steps = t;
      out.converged = converged;
      out.diverged = diverged;
      out.final_loss = loss;
      return out;
    }
    model.gradient(w, g);
    w.noalias() -= o.eta * g;
    const double next = model.loss(w);
    if (next > loss) ++out.loss_increases;
    loss = next;
  }
}

void IncreaseCounter::add(double v) {
  if (samples > 0) {
    const double rel = (v - last) / std::abs(last);
    max_rel_increase = std::max(max_rel_increase, rel);
    if (!(v - last <= rel_tol * std::abs(last))) ++increases;  // NaN counts as an increase
  }
  last = v;
  ++samples;
}

ScalarEdgeRun run_scalar_edge(const ScalarNetwork& net, const VectorXd& w0, const GdOptions& options,
                              double phi_rel_tol) {
  ScalarEdgeRun run;
  run.phi.rel_tol = phi_rel_tol;
  run.gd = run_gd(net, w0, options, [&](std::int64_t t, const VectorXd& w, double, bool) {
    const ClosedFormGfs cf = closed_form_gfs(net, w);
    if (!cf.valid) {
      run.undefined = true;
      return;
    }
    if (t == 0) run.phi_first = cf.phi;
    run.phi.add(cf.phi);
    run.phi_final = cf.phi;
  });
  run.final_sharpness = lambda_max(net.hessian(run.gd.w_final));
  return run;
}

}  // namespace gdlab::gfs
