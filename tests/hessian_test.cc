// Tests of the shared Hessian tools (worker/numerics/hessian.h, stability.md §0.3): power iteration
// and Lanczos against a dense Eigen SelfAdjointEigenSolver on random symmetric matrices (positive
// semidefinite and indefinite), and the finite-difference HVP against an exact Hessian.
#include "worker/numerics/hessian.h"

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstdint>

#include "common/random.h"

namespace gdlab::hessian {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

VectorXd random_vector(Rng& rng, Eigen::Index n) {
  VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = rng.normal();
  return v;
}

MatrixXd random_matrix(Rng& rng, Eigen::Index rows, Eigen::Index cols) {
  MatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = rng.normal();
  return m;
}

// Symmetric with a prescribed spectrum: Q diag(eigs) Qᵀ, Q from a QR of a Gaussian matrix.
MatrixXd with_spectrum(Rng& rng, const VectorXd& eigs) {
  const Eigen::Index n = eigs.size();
  Eigen::HouseholderQR<MatrixXd> qr(random_matrix(rng, n, n));
  const MatrixXd Q = qr.householderQ();
  return Q * eigs.asDiagonal() * Q.transpose();
}

MatrixXd random_symmetric(Rng& rng, Eigen::Index n) {
  const MatrixXd a = random_matrix(rng, n, n);
  return 0.5 * (a + a.transpose());
}

struct Dense {
  double max, min;
};
Dense dense_extremes(const MatrixXd& h) {
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(h, Eigen::EigenvaluesOnly);
  return {es.eigenvalues()(h.rows() - 1), es.eigenvalues()(0)};
}

TEST(Hessian, LanczosMatchesDenseOnRandomSymmetricIncludingIndefinite) {
  Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const Eigen::Index n = 5 + trial * 4;
    MatrixXd h = random_symmetric(rng, n);             // indefinite (Wigner)
    if (trial % 3 == 0) h = h.transpose() * h;         // PSD (Wishart-like)
    if (trial % 3 == 1) h -= 10.0 * MatrixXd::Identity(n, n);  // negative definite: λ_max < 0
    const Dense ref = dense_extremes(h);
    EigenOptions opt;
    opt.rel_tol = 1e-12;
    opt.max_iterations = 500;
    const LanczosResult r = lanczos_extreme(dense_hvp(h), random_vector(rng, n), opt);
    const double scale = std::max(std::abs(ref.max), std::abs(ref.min));
    EXPECT_TRUE(r.max.converged) << "trial " << trial;
    EXPECT_TRUE(r.min.converged) << "trial " << trial;
    EXPECT_NEAR(r.max.value, ref.max, 1e-9 * scale) << "trial " << trial << " n=" << n;
    EXPECT_NEAR(r.min.value, ref.min, 1e-9 * scale) << "trial " << trial;
    EXPECT_NEAR(largest_magnitude_eigenvalue(r), scale, 1e-9 * scale);
    EXPECT_LE(r.max.residual, 1e-5 * scale);
    EXPECT_NEAR(r.max.vector.norm(), 1.0, 1e-12);
    EXPECT_LE(r.max.iterations, n);

    const EigenResult only_max = lanczos_max(dense_hvp(h), random_vector(rng, n), opt);
    EXPECT_NEAR(only_max.value, ref.max, 1e-9 * scale) << "trial " << trial;
  }
}

TEST(Hessian, LanczosWithoutReorthogonalisationStillFindsLambdaMax) {
  Rng rng(12);
  const MatrixXd h = random_symmetric(rng, 60);
  const Dense ref = dense_extremes(h);
  EigenOptions opt;
  opt.reorthogonalize = false;
  opt.max_iterations = 60;
  const LanczosResult r = lanczos_extreme(dense_hvp(h), random_vector(rng, 60), opt);
  EXPECT_NEAR(r.max.value, ref.max, 1e-8 * std::abs(ref.max));
}

TEST(Hessian, LanczosInvariantSubspaceAndIterationCap) {
  Rng rng(13);
  // Rank-2 PSD matrix in dimension 50: the Krylov space is invariant after 3 steps.
  const MatrixXd u = random_matrix(rng, 50, 2);
  const MatrixXd h = u * u.transpose();
  const Dense ref = dense_extremes(h);
  const LanczosResult r = lanczos_extreme(dense_hvp(h), random_vector(rng, 50));
  EXPECT_TRUE(r.max.converged);
  EXPECT_LE(r.max.iterations, 4);
  EXPECT_NEAR(r.max.value, ref.max, 1e-10 * ref.max);
  EXPECT_NEAR(r.min.value, 0.0, 1e-10 * ref.max);

  // A cap of 3 iterations on a 200-dim matrix with a flat spectrum: not converged, and says so.
  VectorXd eigs = VectorXd::LinSpaced(200, 1.0, 2.0);
  EigenOptions opt;
  opt.max_iterations = 3;
  const LanczosResult capped = lanczos_extreme(dense_hvp(with_spectrum(rng, eigs)), random_vector(rng, 200), opt);
  EXPECT_FALSE(capped.max.converged);
  EXPECT_EQ(capped.max.iterations, 3);
  EXPECT_LE(capped.max.value, 2.0 + 1e-12);  // a Ritz value never exceeds λ_max
}

TEST(Hessian, PowerIterationMaxMatchesDenseIncludingIndefinite) {
  Rng rng(21);
  for (int trial = 0; trial < 20; ++trial) {
    const Eigen::Index n = 6 + 3 * trial;
    // Spectrum with a gap at the top so power iteration converges in a few hundred steps.
    VectorXd eigs(n);
    for (Eigen::Index i = 0; i < n; ++i) eigs(i) = rng.uniform(-1.0, 1.0);
    if (trial % 2 == 0) {
      eigs(0) = 3.0;   // λ_max dominates: one run
    } else {
      eigs(0) = 1.5;   // λ_max = 1.5 but the dominant eigenvalue is −4: the shifted second run
      eigs(1) = -4.0;
    }
    const MatrixXd h = with_spectrum(rng, eigs);
    const Dense ref = dense_extremes(h);
    EigenOptions opt;
    opt.rel_tol = 1e-12;
    opt.max_iterations = 5000;
    const EigenResult r = power_iteration_max(dense_hvp(h), random_vector(rng, n), opt);
    EXPECT_TRUE(r.converged) << "trial " << trial;
    EXPECT_NEAR(r.value, ref.max, 1e-9) << "trial " << trial;
    const EigenResult mag = power_iteration_largest_magnitude(dense_hvp(h), random_vector(rng, n), opt);
    EXPECT_NEAR(mag.value, trial % 2 == 0 ? 3.0 : -4.0, 1e-9) << "trial " << trial;
  }
}

TEST(Hessian, PowerIterationDoesNotClaimConvergenceOnPlusMinusTie) {
  Rng rng(22);
  VectorXd eigs(10);
  eigs << 2.0, -2.0, 0.1, 0.2, 0.3, -0.1, -0.2, 0.5, 0.4, 0.0;
  const MatrixXd h = with_spectrum(rng, eigs);
  EigenOptions opt;
  opt.max_iterations = 300;
  const EigenResult r = power_iteration_largest_magnitude(dense_hvp(h), random_vector(rng, 10), opt);
  EXPECT_FALSE(r.converged);
  // Lanczos resolves both ends.
  const LanczosResult l = lanczos_extreme(dense_hvp(h), random_vector(rng, 10));
  EXPECT_NEAR(l.max.value, 2.0, 1e-10);
  EXPECT_NEAR(l.min.value, -2.0, 1e-10);
}

// A smooth non-quadratic function with a known Hessian: L(θ) = Σ_i log cosh(aᵢᵀθ) + ½θᵀSθ.
TEST(Hessian, FiniteDifferenceHvpMatchesExactHessian) {
  Rng rng(31);
  const Eigen::Index p = 12, m = 7;
  const MatrixXd A = random_matrix(rng, m, p);
  const MatrixXd S = random_symmetric(rng, p);
  auto gradient = [&](const VectorXd& th, VectorXd& g) {
    const VectorXd z = A * th;
    g = A.transpose() * z.array().tanh().matrix() + S * th;
  };
  const VectorXd theta = random_vector(rng, p);
  const VectorXd z = A * theta;
  const VectorXd sech2 = (1.0 - z.array().tanh().square()).matrix();
  const MatrixXd H = A.transpose() * sech2.asDiagonal() * A + S;
  const HessianVectorProduct fd = finite_difference_hvp(gradient, theta);
  for (int k = 0; k < 5; ++k) {
    const VectorXd v = random_vector(rng, p) * (k + 1);
    VectorXd out;
    fd(v, out);
    EXPECT_LE((out - H * v).norm(), 1e-7 * (H * v).norm() + 1e-9) << k;
  }
  VectorXd zero_out;
  fd(VectorXd::Zero(p), zero_out);
  EXPECT_EQ(zero_out.norm(), 0.0);
  // λ_max from the finite-difference operator agrees with the dense one (it is symmetric to O(ε²)).
  const EigenResult r = lanczos_max(fd, random_vector(rng, p));
  EXPECT_NEAR(r.value, dense_extremes(H).max, 1e-6 * std::abs(dense_extremes(H).max));
}

TEST(Hessian, BadArgumentsThrow) {
  const HessianVectorProduct h = dense_hvp(MatrixXd::Identity(3, 3));
  EXPECT_THROW(lanczos_max(h, VectorXd::Zero(3)), std::invalid_argument);
  EXPECT_THROW(lanczos_max(h, VectorXd()), std::invalid_argument);
  EXPECT_THROW(power_iteration_max(h, VectorXd::Constant(3, NAN)), std::invalid_argument);
  EigenOptions bad;
  bad.max_iterations = 0;
  EXPECT_THROW(lanczos_extreme(h, VectorXd::Ones(3), bad), std::invalid_argument);
  EXPECT_THROW(lanczos_max(h, VectorXd::Ones(4)), std::invalid_argument);  // HVP size mismatch
  EXPECT_THROW(dense_hvp(MatrixXd::Zero(2, 3)), std::invalid_argument);
  EXPECT_THROW(finite_difference_hvp([](const VectorXd&, VectorXd&) {}, VectorXd::Zero(2), 0.0),
               std::invalid_argument);
}

}  // namespace
}  // namespace gdlab::hessian
