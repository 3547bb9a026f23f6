// Shared Hessian tools: power iteration and Lanczos on a Hessian-vector-product callback
// (stability.md §0.3). See hessian.h for the conventions.
#include "worker/numerics/hessian.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace gdlab::hessian {

using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

void check_start(const VectorXd& start, const char* who) {
  if (start.size() == 0) throw std::invalid_argument(std::string(who) + ": empty start vector");
  if (!start.allFinite() || start.norm() == 0.0)
    throw std::invalid_argument(std::string(who) + ": the start vector must be finite and nonzero");
}

void check_options(const EigenOptions& o, const char* who) {
  if (!(o.rel_tol > 0) || !(o.abs_floor > 0) || o.max_iterations < 1)
    throw std::invalid_argument(std::string(who) + ": rel_tol, abs_floor and max_iterations must be positive");
}

void apply(const HessianVectorProduct& hvp, const VectorXd& v, VectorXd& out) {
  hvp(v, out);
  if (out.size() != v.size())
    throw std::invalid_argument("Hessian-vector product returned a vector of size " + std::to_string(out.size()) +
                                " for an input of size " + std::to_string(v.size()));
}

// ‖H x − λ x‖ with one HVP.
double residual_norm(const HessianVectorProduct& hvp, const VectorXd& x, double lambda) {
  VectorXd hx;
  apply(hvp, x, hx);
  return (hx - lambda * x).norm();
}

// Power iteration on (H − shift·I). Convergence needs both a small change of the Rayleigh quotient
// (relative rel_tol) and a small residual ‖Hx − λx‖ ≤ √rel_tol·scale: the Rayleigh quotient of a
// symmetric operator converges twice as fast as the vector, and the residual test rejects the
// spurious "convergence" of the quotient when ±λ tie in magnitude (x then oscillates in a 2-D space).
EigenResult power_iteration_shifted(const HessianVectorProduct& hvp, const VectorXd& start, double shift,
                                    const EigenOptions& o) {
  EigenResult r;
  VectorXd x = start / start.norm();
  VectorXd y;
  double previous = 0.0;
  const double residual_tol = std::sqrt(o.rel_tol);
  for (int it = 1; it <= o.max_iterations; ++it) {
    apply(hvp, x, y);
    if (shift != 0.0) y -= shift * x;
    const double lambda = x.dot(y);  // Rayleigh quotient (‖x‖ = 1)
    const double residual = (y - lambda * x).norm();
    r.iterations = it;
    r.value = lambda;
    r.vector = x;
    r.residual = residual;
    if (!std::isfinite(lambda)) break;
    const double scale = std::max(std::abs(lambda), o.abs_floor);
    if (it > 1 && std::abs(lambda - previous) <= o.rel_tol * scale && residual <= residual_tol * scale) {
      r.converged = true;
      break;
    }
    const double ny = y.norm();
    if (ny == 0.0) {  // x lies in the null space of H − shift·I: an exact eigenvector, eigenvalue 0
      r.converged = true;
      break;
    }
    previous = lambda;
    x = y / ny;
  }
  r.value += shift;
  return r;
}

// Lanczos (Golub & Van Loan, Matrix Computations, §10.1) with optional full reorthogonalisation.
// need_min: also wait for the smallest Ritz value to converge.
LanczosResult lanczos(const HessianVectorProduct& hvp, const VectorXd& start, const EigenOptions& o,
                      bool need_min) {
  const Eigen::Index dim = start.size();
  const int m_max = static_cast<int>(std::min<Eigen::Index>(o.max_iterations, dim));
  // Lanczos vectors as columns; grown by doubling, so a generous cap costs no memory up front.
  MatrixXd Q(dim, std::min(m_max, 32));
  std::vector<double> alpha, beta;  // T = tridiag(beta, alpha, beta)
  alpha.reserve(static_cast<size_t>(m_max));
  beta.reserve(static_cast<size_t>(m_max));
  Q.col(0) = start / start.norm();
  VectorXd w;
  LanczosResult out;
  Eigen::SelfAdjointEigenSolver<MatrixXd> tri;
  int m = 0;
  bool done = false, conv_max = false, conv_min = false;
  while (!done) {
    const Eigen::Index j = m;
    apply(hvp, Q.col(j), w);
    const double a = Q.col(j).dot(w);
    alpha.push_back(a);
    w -= a * Q.col(j);
    if (j > 0) w -= beta.back() * Q.col(j - 1);
    if (o.reorthogonalize) {
      // Two passes of classical Gram-Schmidt ("twice is enough", Giraud et al. 2005).
      for (int pass = 0; pass < 2; ++pass) w -= Q.leftCols(j + 1) * (Q.leftCols(j + 1).transpose() * w);
    }
    const double b = w.norm();
    m = static_cast<int>(j) + 1;

    VectorXd diag = Eigen::Map<const VectorXd>(alpha.data(), m);
    VectorXd sub = m > 1 ? VectorXd(Eigen::Map<const VectorXd>(beta.data(), m - 1)) : VectorXd(0);
    tri.computeFromTridiagonal(diag, sub, Eigen::ComputeEigenvectors);
    const VectorXd& theta = tri.eigenvalues();  // ascending
    const double th_max = theta(m - 1), th_min = theta(0);
    const double scale_max = std::max(std::abs(th_max), o.abs_floor);
    const double scale_min = std::max(std::abs(th_min), o.abs_floor);
    // Residual of the Ritz pair (θ, Q s): ‖H Q s − θ Q s‖ = |β_m s_m| (exact arithmetic).
    const double res_max = std::abs(b * tri.eigenvectors()(m - 1, m - 1));
    const double res_min = std::abs(b * tri.eigenvectors()(m - 1, 0));
    const bool invariant = !(b > 1e-14 * std::max(scale_max, scale_min));  // Krylov space is invariant
    conv_max = invariant || res_max <= o.rel_tol * scale_max;
    conv_min = invariant || res_min <= o.rel_tol * scale_min;
    if (!std::isfinite(th_max) || !std::isfinite(th_min)) break;
    if (invariant || (conv_max && (!need_min || conv_min)) || m >= m_max) {
      done = true;
    } else {
      beta.push_back(b);
      if (m >= Q.cols()) Q.conservativeResize(Eigen::NoChange, std::min<Eigen::Index>(2 * Q.cols(), m_max));
      Q.col(m) = w / b;
    }
  }
  const VectorXd& theta = tri.eigenvalues();
  auto ritz = [&](Eigen::Index idx, bool converged) {
    EigenResult r;
    r.value = theta(idx);
    r.vector = Q.leftCols(m) * tri.eigenvectors().col(idx);
    const double nv = r.vector.norm();
    if (nv > 0) r.vector /= nv;
    r.iterations = m;
    r.converged = converged;
    r.residual = residual_norm(hvp, r.vector, r.value);
    return r;
  };
  out.max = ritz(m - 1, conv_max);
  out.min = need_min ? ritz(0, conv_min) : EigenResult{theta(0), VectorXd(), m, conv_min, 0.0};
  return out;
}

}  // namespace

EigenResult power_iteration_largest_magnitude(const HessianVectorProduct& hvp, const VectorXd& start,
                                              const EigenOptions& options) {
  check_start(start, "power_iteration_largest_magnitude");
  check_options(options, "power_iteration_largest_magnitude");
  return power_iteration_shifted(hvp, start, 0.0, options);
}

EigenResult power_iteration_max(const HessianVectorProduct& hvp, const VectorXd& start,
                                const EigenOptions& options) {
  check_start(start, "power_iteration_max");
  check_options(options, "power_iteration_max");
  EigenResult first = power_iteration_shifted(hvp, start, 0.0, options);
  if (first.value >= 0.0 || !std::isfinite(first.value)) return first;
  // The dominant eigenvalue μ < 0 is (≈) λ_min, so H − μI ⪰ 0 and its dominant eigenvalue is
  // λ_max − μ. Nudge the shift below μ by its uncertainty so that H − μI stays ⪰ 0.
  const double mu = first.value - first.residual;
  EigenResult second = power_iteration_shifted(hvp, start, mu, options);
  second.iterations += first.iterations;
  return second;
}

LanczosResult lanczos_extreme(const HessianVectorProduct& hvp, const VectorXd& start,
                              const EigenOptions& options) {
  check_start(start, "lanczos_extreme");
  check_options(options, "lanczos_extreme");
  return lanczos(hvp, start, options, /*need_min=*/true);
}

EigenResult lanczos_max(const HessianVectorProduct& hvp, const VectorXd& start, const EigenOptions& options) {
  check_start(start, "lanczos_max");
  check_options(options, "lanczos_max");
  return lanczos(hvp, start, options, /*need_min=*/false).max;
}

double largest_magnitude_eigenvalue(const LanczosResult& result) {
  return std::max(std::abs(result.max.value), std::abs(result.min.value));
}

HessianVectorProduct finite_difference_hvp(GradientFunction gradient, VectorXd theta, double step) {
  if (!(step > 0)) throw std::invalid_argument("finite_difference_hvp: step must be > 0");
  return [gradient = std::move(gradient), theta = std::move(theta), step](const VectorXd& v, VectorXd& out) {
    const double nv = v.norm();
    if (nv == 0.0) {
      out = VectorXd::Zero(v.size());
      return;
    }
    const double eps = step * std::max(1.0, theta.norm());
    const VectorXd dir = v / nv;
    VectorXd g_plus, g_minus;
    gradient(theta + eps * dir, g_plus);
    gradient(theta - eps * dir, g_minus);
    out = (g_plus - g_minus) * (nv / (2.0 * eps));
  };
}

HessianVectorProduct dense_hvp(MatrixXd hessian) {
  if (hessian.rows() != hessian.cols()) throw std::invalid_argument("dense_hvp: the matrix must be square");
  return [h = std::move(hessian)](const VectorXd& v, VectorXd& out) { out.noalias() = h * v; };
}

}  // namespace gdlab::hessian
