// Numerical core of `lexicographic_margin` (separable.md §4); see the header for the formulas.
#include "worker/numerics/lexicographic_margin.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/errors.h"

namespace gdlab::lexicographic {

// ---- Models -----------------------------------------------------------------------------------

int Ensemble::num_params() const {
  int total = 0;
  for (int depth : depths) total += depth * dim;
  return total;
}

int Ensemble::offset(int k) const {
  int total = 0;
  for (int j = 0; j < k; ++j) total += depths[static_cast<size_t>(j)] * dim;
  return total;
}

int Ensemble::max_depth() const { return *std::max_element(depths.begin(), depths.end()); }

int Ensemble::deepest() const {
  return static_cast<int>(std::max_element(depths.begin(), depths.end()) - depths.begin());
}

int Ensemble::shallowest() const {
  return static_cast<int>(std::min_element(depths.begin(), depths.end()) - depths.begin());
}

VectorXd submodel_beta(const Ensemble& model, const VectorXd& theta, int k) {
  const int d = model.dim;
  const int base = model.offset(k);
  VectorXd beta = VectorXd::Ones(d);
  for (int j = 0; j < model.depths[static_cast<size_t>(k)]; ++j) beta.array() *= theta.segment(base + j * d, d).array();
  return beta;
}

VectorXd effective_predictor(const Ensemble& model, const VectorXd& theta) {
  VectorXd w = VectorXd::Zero(model.dim);
  for (int k = 0; k < model.num_submodels(); ++k) w += submodel_beta(model, theta, k);
  return w;
}

namespace {

// out[θ-index of u_{k,j}[i]] = g_i Π_{l≠j} u_{k,l}[i], with prefix/suffix products (no division,
// so zero entries are fine). `scratch` needs max_depth entries.
void pullback_raw(const std::vector<int>& depths, int d, const double* theta, const double* g, double* out,
                  double* scratch) {
  int base = 0;
  for (int depth : depths) {
    for (int i = 0; i < d; ++i) {
      // scratch[j] = Π_{l<j} u_{k,l}[i]
      double prefix = 1.0;
      for (int j = 0; j < depth; ++j) {
        scratch[j] = prefix;
        prefix *= theta[base + j * d + i];
      }
      double suffix = 1.0;
      for (int j = depth - 1; j >= 0; --j) {
        out[base + j * d + i] = g[i] * scratch[j] * suffix;
        suffix *= theta[base + j * d + i];
      }
    }
    base += depth * d;
  }
}

// w = Σ_k Π_j u_{k,j}.
void predictor_raw(const std::vector<int>& depths, int d, const double* theta, double* w) {
  for (int i = 0; i < d; ++i) w[i] = 0.0;
  int base = 0;
  for (int depth : depths) {
    for (int i = 0; i < d; ++i) {
      double product = 1.0;
      for (int j = 0; j < depth; ++j) product *= theta[base + j * d + i];
      w[i] += product;
    }
    base += depth * d;
  }
}

// −ℓ′(u) (separable.md §0.2), stable for any u.
inline double neg_derivative(Loss loss, double u) {
  if (loss == Loss::Exponential) return std::exp(-u);
  if (u >= 0) {
    const double e = std::exp(-u);  // once: GCC does not merge two calls under -fmath-errno
    return e / (1.0 + e);
  }
  return 1.0 / (1.0 + std::exp(u));
}

}  // namespace

void pullback(const Ensemble& model, const VectorXd& theta, const VectorXd& g, VectorXd& out) {
  out.resize(model.num_params());
  std::vector<double> scratch(static_cast<size_t>(model.max_depth()));
  pullback_raw(model.depths, model.dim, theta.data(), g.data(), out.data(), scratch.data());
}

double submodel_param_norm(const Ensemble& model, const VectorXd& theta, int k) {
  return theta.segment(model.offset(k), model.depths[static_cast<size_t>(k)] * model.dim).norm();
}

VectorXd balanced_depth2_theta(const VectorXd& beta) {
  const auto d = beta.size();
  VectorXd theta(2 * d);
  for (Eigen::Index i = 0; i < d; ++i) {
    const double root = std::sqrt(std::abs(beta[i]));
    theta[i] = beta[i] < 0 ? -root : root;
    theta[d + i] = root;
  }
  return theta;
}

// ---- Losses -----------------------------------------------------------------------------------

double log_loss_and_weights(Loss loss, const VectorXd& margins, VectorXd& p) {
  const auto n = margins.size();
  p.resize(n);
  const double m_min = margins.minCoeff();
  // scaled_n = ℓ(m_n) e^{m_min}, p_n ∝ −ℓ′(m_n) e^{m_min}; both O(1) for the smallest margin.
  double scaled_sum = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double m = margins[i];
    const double rel = std::exp(m_min - m);  // e^{−(m − m_min)} ∈ (0, 1]
    if (loss == Loss::Exponential) {
      scaled_sum += rel;
      p[i] = rel;
    } else if (m >= 0) {
      // ℓ(m) = log1p(z), z = e^{−m}; ℓ e^{m_min} = rel·log1p(z)/z; −ℓ′ e^{m_min} = rel/(1+z).
      const double z = std::exp(-m);
      scaled_sum += rel * (z > 0 ? std::log1p(z) / z : 1.0);
      p[i] = rel / (1.0 + z);
    } else {
      // m < 0 implies m_min < 0: no overflow in e^{m_min}.
      const double e_min = std::exp(m_min);
      scaled_sum += (-m + std::log1p(std::exp(m))) * e_min;
      p[i] = e_min / (1.0 + std::exp(m));
    }
  }
  p /= scaled_sum;
  return std::log(scaled_sum) - m_min;
}

// ---- Constrained path -------------------------------------------------------------------------

VectorXd project_l1_ball(const VectorXd& v, double c) {
  const double l1 = v.lpNorm<1>();
  if (l1 <= c) return v;
  // Duchi, Shalev-Shwartz, Singer, Chandra (ICML 2008), Fig. 1: w_i = sign(v_i) max(|v_i| − τ, 0)
  // with τ from the sorted magnitudes.
  std::vector<double> mu(static_cast<size_t>(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i) mu[static_cast<size_t>(i)] = std::abs(v[i]);
  std::sort(mu.begin(), mu.end(), std::greater<>());
  double cumulative = 0, tau = 0;
  for (size_t j = 0; j < mu.size(); ++j) {
    cumulative += mu[j];
    const double candidate = (cumulative - c) / static_cast<double>(j + 1);
    if (mu[j] - candidate > 0) tau = candidate;
  }
  VectorXd w(v.size());
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    const double magnitude = std::max(std::abs(v[i]) - tau, 0.0);
    w[i] = v[i] < 0 ? -magnitude : magnitude;
  }
  return w;
}

namespace {

void require_finite(const VectorXd& x, const char* what, std::int64_t iteration) {
  if (!x.allFinite())
    throw NumericError(std::string(what) + ": the iterate became non-finite at iteration " +
                       std::to_string(iteration) + " (step too large?)");
}

}  // namespace

PathPoint projected_l1_point(const MatrixXd& Xt, Loss loss, double c, const VectorXd& beta0,
                             const ProjectedOptions& opt) {
  PathPoint out;
  VectorXd beta = project_l1_ball(beta0, c);
  VectorXd p, margins, next;
  for (std::int64_t it = 1; it <= opt.max_iterations; ++it) {
    margins.noalias() = Xt * beta;
    log_loss_and_weights(loss, margins, p);
    // ∇_β log L = −Σ_n p_n x̃_n.
    next = project_l1_ball(beta + opt.step * (Xt.transpose() * p), c);
    require_finite(next, "projected GD on the L1 ball", it);
    out.stationarity = (next - beta).norm() / opt.step;
    beta.swap(next);
    out.iterations = it;
    if (out.stationarity < opt.tol) {
      out.converged = true;
      break;
    }
  }
  out.theta = beta;
  return out;
}

PathPoint projected_ball_point(const MatrixXd& Xt, const Ensemble& model, Loss loss, double B,
                               const VectorXd& theta0, const ProjectedOptions& opt) {
  PathPoint out;
  auto project = [B](VectorXd& theta) {
    const double norm = theta.norm();
    if (norm > B) theta *= B / norm;
  };
  VectorXd theta = theta0;
  project(theta);
  VectorXd p, margins, g, grad, next;
  std::vector<double> scratch(static_cast<size_t>(model.max_depth()));
  grad.resize(model.num_params());
  for (std::int64_t it = 1; it <= opt.max_iterations; ++it) {
    margins.noalias() = Xt * effective_predictor(model, theta);
    log_loss_and_weights(loss, margins, p);
    g.noalias() = Xt.transpose() * p;  // −∇_w log L
    pullback_raw(model.depths, model.dim, theta.data(), g.data(), grad.data(), scratch.data());
    next = theta + opt.step * grad;
    project(next);
    require_finite(next, "projected GD on the parameter ball", it);
    out.stationarity = (next - theta).norm() / opt.step;
    theta.swap(next);
    out.iterations = it;
    if (out.stationarity < opt.tol) {
      out.converged = true;
      break;
    }
  }
  out.theta = theta;
  return out;
}

EdgeMinimum minimize_on_l1_sphere_2d(const MatrixXd& Xt, Loss loss, double c) {
  if (Xt.cols() != 2) throw InputError("minimize_on_l1_sphere_2d: needs d = 2 (got " + std::to_string(Xt.cols()) + ")");
  EdgeMinimum best;
  best.log_loss = std::numeric_limits<double>::infinity();
  VectorXd p, margins;
  for (int edge = 0; edge < 4; ++edge) {
    const double sign1 = (edge & 1) ? -1.0 : 1.0;
    const double sign2 = (edge & 2) ? -1.0 : 1.0;
    auto beta_at = [&](double s) {
      VectorXd beta(2);
      beta << c * s * sign1, c * (1.0 - s) * sign2;
      return beta;
    };
    const Eigen::Vector2d tangent(c * sign1, -c * sign2);  // dβ/ds
    // d log L/ds = −Σ_n p_n x̃_nᵀ dβ/ds; the products x̃_nᵀ(σ₁, −σ₂) are exact, so points whose
    // margin is constant on the edge contribute exactly 0 and the O(e^{−κc}) tie-breaking terms
    // keep their sign (separable.md §4.7 T4.1: this is why the face method works for c ≥ 20).
    auto slope = [&](double s) {
      margins.noalias() = Xt * beta_at(s);
      log_loss_and_weights(loss, margins, p);
      return -p.dot(Xt * tangent);
    };
    double lo = 0, hi = 1, s;
    if (slope(0.0) >= 0) {
      s = 0;
    } else if (slope(1.0) <= 0) {
      s = 1;
    } else {
      for (int i = 0; i < 200 && hi - lo > 0; ++i) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        (slope(mid) > 0 ? hi : lo) = mid;
      }
      s = 0.5 * (lo + hi);
    }
    const VectorXd beta = beta_at(s);
    margins.noalias() = Xt * beta;
    const double value = log_loss_and_weights(loss, margins, p);
    if (value < best.log_loss) {
      best.log_loss = value;
      best.beta = beta;
      best.s = s;
    }
  }
  return best;
}

// ---- Gradient descent -------------------------------------------------------------------------

VectorXd run_gd(const MatrixXd& Xt, const Ensemble& model, Loss loss, double lr, std::int64_t steps,
                const VectorXd& theta0, const std::vector<std::int64_t>& record_at, const GdRecordFn& on_record) {
  const int n = static_cast<int>(Xt.rows());
  const int d = model.dim;
  const int num_params = model.num_params();
  if (Xt.cols() != d || theta0.size() != num_params)
    throw InputError("lexicographic::run_gd: shapes do not match the model");
  // Row-major copy of the data and fixed buffers: the loop below does not allocate.
  std::vector<double> x(static_cast<size_t>(n * d));
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < d; ++i) x[static_cast<size_t>(r * d + i)] = Xt(r, i);
  VectorXd theta = theta0;
  std::vector<double> w(static_cast<size_t>(d)), g(static_cast<size_t>(d)), grad(static_cast<size_t>(num_params)),
      scratch(static_cast<size_t>(model.max_depth()));
  size_t next_record = 0;
  while (next_record < record_at.size() && record_at[next_record] < 1) ++next_record;
  for (std::int64_t t = 1; t <= steps; ++t) {
    predictor_raw(model.depths, d, theta.data(), w.data());
    for (int i = 0; i < d; ++i) g[static_cast<size_t>(i)] = 0.0;
    for (int r = 0; r < n; ++r) {
      const double* row = &x[static_cast<size_t>(r * d)];
      double margin = 0;
      for (int i = 0; i < d; ++i) margin += row[i] * w[static_cast<size_t>(i)];
      const double q = neg_derivative(loss, margin);
      for (int i = 0; i < d; ++i) g[static_cast<size_t>(i)] += q * row[i];
    }
    // −∇_θ L = pullback of g = Σ_n (−ℓ′(m_n)) x̃_n; simultaneous update of every layer.
    pullback_raw(model.depths, d, theta.data(), g.data(), grad.data(), scratch.data());
    for (int j = 0; j < num_params; ++j) theta[j] += lr * grad[static_cast<size_t>(j)];
    if (next_record < record_at.size() && record_at[next_record] == t) {
      if (!theta.allFinite()) throw NumericError("lexicographic_margin GD: θ became non-finite at step " + std::to_string(t) + " (step size too large?)");
      on_record(t, theta);
      ++next_record;
    }
  }
  if (!theta.allFinite()) throw NumericError("lexicographic_margin GD: θ became non-finite (step size too large?)");
  return theta;
}

// ---- Measurements -----------------------------------------------------------------------------

Measurements measure(const MatrixXd& Xt, const Ensemble& model, Loss loss, const VectorXd& theta) {
  Measurements m;
  const VectorXd margins = Xt * effective_predictor(model, theta);
  VectorXd p;
  m.log_loss = log_loss_and_weights(loss, margins, p);
  m.loss = std::exp(m.log_loss);
  m.norm = theta.norm();
  m.margins.assign(margins.data(), margins.data() + margins.size());
  std::sort(m.margins.begin(), m.margins.end());
  const int deep = model.deepest();
  const VectorXd beta_deep = submodel_beta(model, theta, deep);
  double normaliser;
  if (model.homogeneous()) {
    // ‖β‖_{2/D}: the function-space norm induced by min Σ_j ‖u_j‖² s.t. Π_j u_j = β, which
    // equals D Σ_i |β_i|^{2/D} (AM-GM per coordinate).
    const double q = 2.0 / model.depths[0];
    normaliser = std::pow(beta_deep.array().abs().pow(q).sum(), 1.0 / q);
  } else {
    normaliser = std::pow(m.norm, model.max_depth());
  }
  for (double v : m.margins) m.normalized_margins.push_back(v / normaliser);
  m.min_normalized_margin = m.normalized_margins.front();
  m.margin_over_norm_pow = m.margins.front() / std::pow(m.norm, model.max_depth());
  m.deep_beta_l1 = beta_deep.lpNorm<1>();
  for (Eigen::Index i = 0; i < beta_deep.size(); ++i) m.deep_direction.push_back(beta_deep[i] / m.deep_beta_l1);
  m.s = model.dim == 2 ? m.deep_direction[0] : std::numeric_limits<double>::quiet_NaN();
  m.deep_param_norm = submodel_param_norm(model, theta, deep);
  m.shallow_param_norm = submodel_param_norm(model, theta, model.shallowest());
  for (int k = 0; k < model.num_submodels(); ++k) {
    m.submodel_param_norms.push_back(submodel_param_norm(model, theta, k));
    m.submodel_beta_l1.push_back(submodel_beta(model, theta, k).lpNorm<1>());
  }
  return m;
}

// ---- The exact example of §4.5 --------------------------------------------------------------------
namespace edge_example {

MatrixXd points() {
  MatrixXd X(3, 2);
  X << 1.0, 1.0,  //
      1.0, 2.0,   //
      2.5, 1.0;
  return X;
}

double constrained_path_s(double c) { return std::min(1.0, kLexicographicS + std::log(1.5) / (2.5 * c)); }

std::vector<double> normalized_margins(double s) {
  std::vector<double> m{1.0, 2.0 - s, 1.0 + 1.5 * s};  // x1, x2, x3 at β = (s, 1−s)
  std::sort(m.begin(), m.end());
  return m;
}

double ensemble_shallow_norm() { return std::sqrt(2.0); }

double ensemble_margin_over_B2(double B) { return kEnsembleMarginOverB2Limit + 1.0 / (B * B); }

}  // namespace edge_example

}  // namespace gdlab::lexicographic
