// GD with losses of different tails and normalised step sizes (separable.md §3; Nacson, Lee,
// Gunasekar, Savarese, Srebro, Soudry, AISTATS 2019).
#include "worker/numerics/loss_tails.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/errors.h"

namespace gdlab::loss_tails {

namespace {

// std::exp returns exactly +0 below about -745.13, but through glibc's slow underflow path (a
// third of the NGD-const profile, docs/performance.md); skipping it changes no bit of the result.
inline double exp_or_zero(double x) { return x < -746.0 ? 0.0 : std::exp(x); }


constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInvE = 0.36787944117144233;  // e^{−1}, the value of both §3.4 losses' extensions at u = 1

// ---- −ℓ′ kernels of the fixed-step loop, one functor per loss (and fast paths for the exponents
// ---- of the acceptance tests, which avoid std::pow: it dominates the cost otherwise, §3.7 T3.1).

struct ExponentialNegDerivative {
  double operator()(double u) const { return std::exp(-u); }
};
struct LogisticNegDerivative {
  double operator()(double u) const { return 1.0 / (1.0 + std::exp(u)); }
};
// −ℓ_ν′(u) = ν u^{ν−1} e^{−u^ν} for u ≥ 1, ν e^{−1} below (separable.md §3.4).
struct PolyExpNu1NegDerivative {
  double operator()(double u) const { return u >= 1.0 ? std::exp(-u) : kInvE; }
};
struct PolyExpNu2NegDerivative {
  double operator()(double u) const { return u >= 1.0 ? 2.0 * u * std::exp(-u * u) : 2.0 * kInvE; }
};
struct PolyExpNuHalfNegDerivative {
  double operator()(double u) const {
    if (u < 1.0) return 0.5 * kInvE;
    const double root = std::sqrt(u);
    return 0.5 * std::exp(-root) / root;
  }
};
struct PolyExpNegDerivative {
  double nu;
  double operator()(double u) const {
    if (u < 1.0) return nu * kInvE;
    const double power = std::pow(u, nu);
    return nu * power / u * std::exp(-power);
  }
};
// −ℓ_k′(u) = k u^{−k−1} for u ≥ 1, k below.
template <int K>
struct PolynomialIntNegDerivative {
  double operator()(double u) const {
    if (u < 1.0) return K;
    const double inv = 1.0 / u;
    double p = inv;
    for (int i = 0; i < K; ++i) p *= inv;  // u^{−K−1}
    return K * p;
  }
};
struct PolynomialNegDerivative {
  double k;
  double operator()(double u) const { return u < 1.0 ? k : k * std::pow(u, -k - 1.0); }
};

// margins = X̃w on the column-major N×d data.
inline void compute_margins(const double* x, Eigen::Index n, Eigen::Index d, const double* w, double* margins) {
  for (Eigen::Index i = 0; i < n; ++i) margins[i] = x[i] * w[0];
  for (Eigen::Index j = 1; j < d; ++j) {
    const double* column = x + j * n;
    const double wj = w[j];
    for (Eigen::Index i = 0; i < n; ++i) margins[i] += column[i] * wj;
  }
}

// w ← w + Σ_n s_n x̃_n (s already holds the step times −ℓ′ or the normalised weights).
inline void add_descent(const double* x, Eigen::Index n, Eigen::Index d, const double* s, double* w) {
  for (Eigen::Index j = 0; j < d; ++j) {
    const double* column = x + j * n;
    double descent = 0.0;
    for (Eigen::Index i = 0; i < n; ++i) descent += column[i] * s[i];
    w[j] += descent;
  }
}

// `count` fixed steps w ← w − η∇L(w), −∇L(w) = Σ_n (−ℓ′(x̃_nᵀw)) x̃_n. No allocation.
template <typename NegDerivative>
void fixed_steps(const double* x, Eigen::Index n, Eigen::Index d, double eta, std::int64_t count, double* w,
                 double* margins, double* s, NegDerivative neg_derivative) {
  for (std::int64_t c = 0; c < count; ++c) {
    compute_margins(x, n, d, w, margins);
    for (Eigen::Index i = 0; i < n; ++i) s[i] = eta * neg_derivative(margins[i]);
    add_descent(x, n, d, s, w);
  }
}

void fixed_steps_dispatch(const TailLoss& loss, const double* x, Eigen::Index n, Eigen::Index d, double eta,
                          std::int64_t count, double* w, double* margins, double* s) {
  switch (loss.tail) {
    case Tail::Exponential:
      return fixed_steps(x, n, d, eta, count, w, margins, s, ExponentialNegDerivative{});
    case Tail::Logistic:
      return fixed_steps(x, n, d, eta, count, w, margins, s, LogisticNegDerivative{});
    case Tail::PolyExponential:
      if (loss.exponent == 1.0) return fixed_steps(x, n, d, eta, count, w, margins, s, PolyExpNu1NegDerivative{});
      if (loss.exponent == 2.0) return fixed_steps(x, n, d, eta, count, w, margins, s, PolyExpNu2NegDerivative{});
      if (loss.exponent == 0.5) return fixed_steps(x, n, d, eta, count, w, margins, s, PolyExpNuHalfNegDerivative{});
      return fixed_steps(x, n, d, eta, count, w, margins, s, PolyExpNegDerivative{loss.exponent});
    case Tail::Polynomial:
      if (loss.exponent == 1.0) return fixed_steps(x, n, d, eta, count, w, margins, s, PolynomialIntNegDerivative<1>{});
      if (loss.exponent == 2.0) return fixed_steps(x, n, d, eta, count, w, margins, s, PolynomialIntNegDerivative<2>{});
      if (loss.exponent == 3.0) return fixed_steps(x, n, d, eta, count, w, margins, s, PolynomialIntNegDerivative<3>{});
      return fixed_steps(x, n, d, eta, count, w, margins, s, PolynomialNegDerivative{loss.exponent});
  }
}

// `count` normalised steps (separable.md §3.5) starting at step index t0 (0-based: the step from
// w(t) to w(t+1) uses √(t+1)). η_t ∇L = η₀ c_t Σ_n p_n ℓ′_n-direction with p_n = −ℓ′(u_n)/L(w)
// computed in the log domain (§0.2): p_n = exp(ln(−ℓ′(u_n)) − ln L), ln L = log-sum-exp of ln ℓ(u_n).
// `log_values` is an N work buffer. No allocation.
void ngd_steps(const TailLoss& loss, bool sqrt_decay, const double* x, Eigen::Index n, Eigen::Index d, double eta0,
               std::int64_t t0, std::int64_t count, double* w, double* margins, double* s, double* log_values) {
  for (std::int64_t c = 0; c < count; ++c) {
    compute_margins(x, n, d, w, margins);
    double max_log = -std::numeric_limits<double>::infinity();
    for (Eigen::Index i = 0; i < n; ++i) {
      log_values[i] = loss.log_value(margins[i]);
      max_log = std::max(max_log, log_values[i]);
    }
    double sum = 0.0;
    for (Eigen::Index i = 0; i < n; ++i) sum += exp_or_zero(log_values[i] - max_log);
    const double log_loss = max_log + std::log(sum);
    const double step = sqrt_decay ? eta0 / std::sqrt(static_cast<double>(t0 + c + 1)) : eta0;
    if (loss.tail == Tail::Exponential) {
      // ln(−ℓ′) = ln ℓ = −u: reuse the values.
      for (Eigen::Index i = 0; i < n; ++i) s[i] = step * exp_or_zero(log_values[i] - log_loss);
    } else {
      for (Eigen::Index i = 0; i < n; ++i) s[i] = step * exp_or_zero(loss.log_neg_derivative(margins[i]) - log_loss);
    }
    add_descent(x, n, d, s, w);
  }
}

}  // namespace

// ---- Losses --------------------------------------------------------------------------------------

double TailLoss::value(double u) const {
  switch (tail) {
    case Tail::Exponential:
      return std::exp(-u);
    case Tail::Logistic:
      return u > 0 ? std::log1p(std::exp(-u)) : -u + std::log1p(std::exp(u));
    case Tail::PolyExponential:
      return u >= 1.0 ? std::exp(-std::pow(u, exponent)) : kInvE * (1.0 - exponent * (u - 1.0));
    case Tail::Polynomial:
      return u >= 1.0 ? std::pow(u, -exponent) : 1.0 - exponent * (u - 1.0);
  }
  return kNaN;
}

double TailLoss::neg_derivative(double u) const {
  switch (tail) {
    case Tail::Exponential:
      return std::exp(-u);
    case Tail::Logistic:
      return 1.0 / (1.0 + std::exp(u));
    case Tail::PolyExponential:
      return PolyExpNegDerivative{exponent}(u);
    case Tail::Polynomial:
      return PolynomialNegDerivative{exponent}(u);
  }
  return kNaN;
}

double TailLoss::log_value(double u) const {
  switch (tail) {
    case Tail::Exponential:
      return -u;
    case Tail::Logistic:
      // ln ln(1 + e^{−u}); for u > 36, ln(1 + x) = x(1 − x/2 + …) with x = e^{−u} < 2.4e-16, so the
      // value is −u to double precision.
      if (u > 36.0) return -u;
      return std::log(u > 0 ? std::log1p(std::exp(-u)) : -u + std::log1p(std::exp(u)));
    case Tail::PolyExponential:
      return u >= 1.0 ? -std::pow(u, exponent) : -1.0 + std::log1p(exponent * (1.0 - u));
    case Tail::Polynomial:
      return u >= 1.0 ? -exponent * std::log(u) : std::log1p(exponent * (1.0 - u));
  }
  return kNaN;
}

double TailLoss::log_neg_derivative(double u) const {
  switch (tail) {
    case Tail::Exponential:
      return -u;
    case Tail::Logistic:
      // −ln(1 + e^u), stable on both sides.
      return u > 0 ? -u - std::log1p(std::exp(-u)) : -std::log1p(std::exp(u));
    case Tail::PolyExponential:
      return u >= 1.0 ? std::log(exponent) + (exponent - 1.0) * std::log(u) - std::pow(u, exponent)
                      : std::log(exponent) - 1.0;
    case Tail::Polynomial:
      return u >= 1.0 ? std::log(exponent) - (exponent + 1.0) * std::log(u) : std::log(exponent);
  }
  return kNaN;
}

double TailLoss::smoothness() const {
  switch (tail) {
    case Tail::Exponential:
      return 1.0;
    case Tail::Logistic:
      return 0.25;
    case Tail::Polynomial:
      // ℓ″ = k(k+1) u^{−k−2} on u ≥ 1, largest at u = 1; 0 on the linear piece.
      return exponent * (exponent + 1.0);
    case Tail::PolyExponential: {
      // ℓ″(u) = ν u^{ν−2} e^{−u^ν}(ν u^ν − ν + 1) on u ≥ 1. In s = u^ν ≥ 1 this is
      // ν s^{(ν−2)/ν} e^{−s}(ν s − ν + 1), which is below 1e-15 of its value at s = 1 beyond s = 60
      // for ν ≥ 1/16; a scan on [1, 60] with spacing 1e-3 plus 1% slack bounds the supremum.
      const double nu = exponent;
      double best = 0.0;
      for (int i = 0; i <= 59'000; ++i) {
        const double s = 1.0 + 1e-3 * i;
        const double value = nu * std::pow(s, (nu - 2.0) / nu) * std::exp(-s) * (nu * s - nu + 1.0);
        best = std::max(best, value);
      }
      return 1.01 * best;
    }
  }
  return kNaN;
}

double log_loss_sum(const TailLoss& loss, const VectorXd& margins) {
  if (margins.size() == 0) return -std::numeric_limits<double>::infinity();
  double max_log = -std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i < margins.size(); ++i) max_log = std::max(max_log, loss.log_value(margins(i)));
  if (!std::isfinite(max_log)) return max_log;
  double sum = 0.0;
  for (Eigen::Index i = 0; i < margins.size(); ++i) sum += std::exp(loss.log_value(margins(i)) - max_log);
  return max_log + std::log(sum);
}

// ---- GD -------------------------------------------------------------------------------------------

VectorXd run_tail_gd(const MatrixXd& Xt, const TailGdOptions& opt, const std::vector<std::int64_t>& record_at,
                     const RecordFn& on_record) {
  const Eigen::Index n = Xt.rows();
  const Eigen::Index d = Xt.cols();
  if (n == 0 || d == 0) throw InputError("run_tail_gd: empty data");
  if (!Xt.allFinite()) throw InputError("run_tail_gd: data contain NaN or inf");
  if (!(opt.lr > 0) || !std::isfinite(opt.lr)) throw InputError("run_tail_gd: lr must be finite and > 0");
  if ((opt.loss.tail == Tail::PolyExponential || opt.loss.tail == Tail::Polynomial) &&
      !(opt.loss.exponent > 0 && std::isfinite(opt.loss.exponent))) {
    throw InputError("run_tail_gd: the tail exponent must be finite and > 0");
  }
  if (opt.steps < 0) throw InputError("run_tail_gd: steps must be >= 0");
  if (!std::is_sorted(record_at.begin(), record_at.end()) ||
      (!record_at.empty() && (record_at.front() < 0 || record_at.back() > opt.steps))) {
    throw InputError("run_tail_gd: record_at must be sorted and within [0, steps]");
  }
  if (!record_at.empty() && !on_record) throw InputError("run_tail_gd: record_at given without on_record");

  // Everything the loop touches is allocated here.
  const MatrixXd x = Xt;  // column-major
  VectorXd w = VectorXd::Zero(d);
  VectorXd margins(n), s(n), log_values(n);
  auto next_record = record_at.begin();
  while (next_record != record_at.end() && *next_record == 0) {
    on_record(0, w);
    ++next_record;
  }
  constexpr std::int64_t kFiniteCheckEvery = 1 << 14;
  std::int64_t t = 0;
  while (t < opt.steps) {
    std::int64_t stop = std::min(opt.steps, t + kFiniteCheckEvery);
    if (next_record != record_at.end()) stop = std::min(stop, *next_record);
    if (opt.schedule == Schedule::Fixed) {
      fixed_steps_dispatch(opt.loss, x.data(), n, d, opt.lr, stop - t, w.data(), margins.data(), s.data());
    } else {
      ngd_steps(opt.loss, opt.schedule == Schedule::NgdSqrt, x.data(), n, d, opt.lr, t, stop - t, w.data(),
                margins.data(), s.data(), log_values.data());
    }
    t = stop;
    if (!w.allFinite()) {
      throw NumericError("run_tail_gd: w became non-finite by step " + std::to_string(t) + " (step size too large?)");
    }
    while (next_record != record_at.end() && *next_record == t) {
      on_record(t, w);
      ++next_record;
    }
  }
  return w;
}

// ---- Predictions -----------------------------------------------------------------------------------

double TailPrediction::margin_gap(double g) const { return g > 0 ? gap_constant / std::pow(g, nu) : kNaN; }
double TailPrediction::angle_gap(double g) const { return g > 0 ? angle_constant / std::pow(g, 2.0 * nu) : kNaN; }

TailPrediction poly_exponential_prediction(const MatrixXd& Xt, const separable::MaxMargin& mm, double nu) {
  if (!(nu > 0) || !std::isfinite(nu)) throw InputError("poly_exponential_prediction: nu must be > 0");
  TailPrediction p;
  p.nu = nu;
  // x̃_nᵀw̃(1) = ln(1/α_n) on S (separable.md §0.5 with η = 1), so ρ̃ = w̃(1)/ν has x̃_nᵀρ̃ = −(ln α_n)/ν
  // (§3.7 T3.1).
  p.rho_tilde = separable::solve_w_tilde(Xt, mm, 1.0, VectorXd::Zero(Xt.cols())) / nu;
  const VectorXd& w_hat = mm.w_hat;
  const double w_hat_sq = w_hat.squaredNorm();
  double min_support = std::numeric_limits<double>::infinity();
  for (const int idx : mm.support) min_support = std::min(min_support, Xt.row(idx).dot(p.rho_tilde));
  const double along = w_hat.dot(p.rho_tilde) / w_hat_sq;
  // Margin gap ≈ C_ν/g^ν with C_ν = (ŵᵀρ̃/‖ŵ‖² − min_S x̃_nᵀρ̃)/‖ŵ‖ (§3.7 T3.1).
  p.gap_constant = (along - min_support) / std::sqrt(w_hat_sq);
  // Angle gap ≈ ‖P⊥ρ̃‖² g^{2(1−ν)}/(2 g² ‖ŵ‖²) (the ln² t law of §1.3 with ln t → g^ν).
  p.angle_constant = (p.rho_tilde - along * w_hat).squaredNorm() / (2.0 * w_hat_sq);
  return p;
}

VectorXd polynomial_limit_direction(const MatrixXd& Xt, double k, const VectorXd& w_hat) {
  if (!(k > 0) || !std::isfinite(k)) throw InputError("polynomial_limit_direction: k must be > 0");
  if (w_hat.size() != Xt.cols() || (Xt * w_hat).minCoeff() <= 0) {
    throw InputError("polynomial_limit_direction: w_hat must separate the data");
  }
  const Eigen::Index d = Xt.cols();
  // F(v) = Σ u_n^{−k} + ½‖v‖², u = X̃v > 0; ∇F = −k Σ u^{−k−1} x̃ + v; ∇²F = k(k+1) Σ u^{−k−2} x̃x̃ᵀ + I.
  const auto objective = [&](const VectorXd& v) {
    const VectorXd u = Xt * v;
    if (u.minCoeff() <= 0) return std::numeric_limits<double>::infinity();
    return u.array().pow(-k).sum() + 0.5 * v.squaredNorm();
  };
  VectorXd v = w_hat;
  double f = objective(v);
  constexpr int kMaxIterations = 500;
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    const VectorXd u = Xt * v;
    const VectorXd first = k * u.array().pow(-k - 1.0).matrix();
    const VectorXd second = k * (k + 1.0) * u.array().pow(-k - 2.0).matrix();
    const VectorXd grad = v - Xt.transpose() * first;
    const MatrixXd hessian = Xt.transpose() * second.asDiagonal() * Xt + MatrixXd::Identity(d, d);
    const VectorXd step = -hessian.ldlt().solve(grad);
    const double decrement = -grad.dot(step);
    if (!step.allFinite() || !(decrement >= 0)) break;
    // Converged once the predicted decrease λ²/2 is below the rounding level of F: the Armijo test
    // cannot see such steps any more, and the remaining error in v is O(λ) (direction error ~1e-9,
    // i.e. 1 − cos ~ 1e-18, far below the 1e-6 of T3.2).
    if (decrement <= 1e-18 * std::max(1.0, std::abs(f))) return (v + step).normalized();
    double t = 1.0;
    VectorXd trial = v + step;
    double f_trial = objective(trial);
    while (!(f_trial <= f - 0.25 * t * decrement) && t > 1e-20) {
      t *= 0.5;
      trial = v + t * step;
      f_trial = objective(trial);
    }
    if (t <= 1e-20) break;
    v = trial;
    f = f_trial;
  }
  throw NumericError("polynomial_limit_direction: Newton iteration did not converge");
}

double fixed_point_residual(const MatrixXd& Xt, double k, const VectorXd& v) {
  const VectorXd u = Xt * v;
  if (u.minCoeff() <= 0) return std::numeric_limits<double>::infinity();
  const VectorXd q = Xt.transpose() * u.array().pow(-k - 1.0).matrix();
  return (v - q.normalized()).norm();
}

// ---- Measurements ------------------------------------------------------------------------------------

TailMeasurements measure(const MatrixXd& Xt, const TailLoss& loss, const VectorXd& w, const VectorXd& w_hat,
                         const VectorXd& v_star, const VectorXd& rho_tilde, double nu) {
  const Eigen::Index d = Xt.cols();
  if (w.size() != d || w_hat.size() != d || (v_star.size() != 0 && v_star.size() != d) ||
      (rho_tilde.size() != 0 && rho_tilde.size() != d)) {
    throw InputError("loss_tails::measure: vector lengths do not match the data");
  }
  TailMeasurements m;
  const VectorXd margins = Xt * w;
  const double w_hat_norm = w_hat.norm();
  m.norm = w.norm();
  m.log_loss = log_loss_sum(loss, margins);
  m.loss = std::exp(m.log_loss);
  m.g = w_hat.dot(w) / (w_hat_norm * w_hat_norm);
  const VectorXd w_hat_unit = w_hat / w_hat_norm;
  if (m.norm > 0) {
    const VectorXd unit = w / m.norm;
    m.normalized_margin = margins.minCoeff() / m.norm;
    m.direction_error = (unit - w_hat_unit).norm();
    m.angle_gap = 0.5 * m.direction_error * m.direction_error;
    m.angle_gap_vstar = v_star.size() ? 0.5 * (unit - v_star.normalized()).squaredNorm() : kNaN;
  } else {
    m.normalized_margin = m.direction_error = m.angle_gap = m.angle_gap_vstar = kNaN;
  }
  m.margin_gap = 1.0 / w_hat_norm - m.normalized_margin;
  if (rho_tilde.size() && m.g > 0) {
    // w − gŵ is the part of w orthogonal to ŵ; compare it, scaled by g^{1−ν}, with P⊥ρ̃ (§3.7 T3.1).
    const VectorXd perp_w = w - m.g * w_hat;
    const VectorXd perp_rho = rho_tilde - (w_hat.dot(rho_tilde) / (w_hat_norm * w_hat_norm)) * w_hat;
    m.offset_error = (perp_w / std::pow(m.g, 1.0 - nu) - perp_rho).norm();
  } else {
    m.offset_error = kNaN;
  }
  return m;
}

}  // namespace gdlab::loss_tails
