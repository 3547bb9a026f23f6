// Unit tests of the numerical core worker/numerics/separable.h (../shared/papers/separable.md §0):
// losses, gradients, the GD / heavy-ball integrator, the max-margin and w̃ solvers, the dataset
// generators, the CSV loader, the log grid and the seeded generator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/random.h"
#include "worker/numerics/separable.h"

namespace gdlab::separable {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

VectorXd vec(std::initializer_list<double> values) {
  VectorXd v(static_cast<Eigen::Index>(values.size()));
  Eigen::Index i = 0;
  for (const double x : values) v(i++) = x;
  return v;
}

double scalar_loss(Loss loss, double u) { return loss_sum(loss, vec({u})); }

double scalar_neg_derivative(Loss loss, double u) {
  VectorXd out;
  neg_loss_derivative(loss, vec({u}), out);
  return out(0);
}

// Reference −∇L(w) = Σ_n (−ℓ′(x̃_nᵀw)) x̃_n with std::exp (separable.md §0.1–0.2).
VectorXd reference_descent(const MatrixXd& Xt, Loss loss, const VectorXd& w) {
  const VectorXd u = Xt * w;
  VectorXd s(u.size());
  for (Eigen::Index n = 0; n < u.size(); ++n) {
    s(n) = loss == Loss::Logistic ? 1.0 / (1.0 + std::exp(u(n))) : std::exp(-u(n));
  }
  return Xt.transpose() * s;
}

// Central finite difference of L(w) = Σ ℓ(x̃_nᵀw) along coordinate j.
double fd_partial(const MatrixXd& Xt, Loss loss, const VectorXd& w, Eigen::Index j, double h) {
  VectorXd plus = w;
  VectorXd minus = w;
  plus(j) += h;
  minus(j) -= h;
  return (loss_sum(loss, Xt * plus) - loss_sum(loss, Xt * minus)) / (2 * h);
}

// ---- Losses ---------------------------------------------------------------------------------------

TEST(Losses, ValuesMatchDefinitions) {
  EXPECT_NEAR(scalar_loss(Loss::Logistic, 0.0), std::log(2.0), 1e-16);
  for (const double u : {-30.0, -3.0, -0.5, 0.25, 2.0, 17.0, 40.0}) {
    SCOPED_TRACE(u);
    EXPECT_NEAR(scalar_loss(Loss::Logistic, u), std::log1p(std::exp(-u)), 1e-15 * (1 + std::abs(u)));
    EXPECT_DOUBLE_EQ(scalar_loss(Loss::Exponential, u), std::exp(-u));
  }
  // The sum convention (Soudry eq. 2.1): L is a sum over samples, not a mean.
  EXPECT_DOUBLE_EQ(loss_sum(Loss::Exponential, vec({0.0, 0.0, 0.0})), 3.0);
  // Stability far in the tails: logistic ℓ(u) ≈ e^{−u} for u ≫ 1 and ≈ −u for u ≪ −1.
  EXPECT_DOUBLE_EQ(scalar_loss(Loss::Logistic, 50.0), std::exp(-50.0));
  EXPECT_DOUBLE_EQ(scalar_loss(Loss::Logistic, -50.0), 50.0);
}

TEST(Losses, ExtremeMarginsGiveNoNaN) {
  for (const double u : {-800.0, -710.0, 710.0, 800.0}) {
    SCOPED_TRACE(u);
    const double l = scalar_loss(Loss::Logistic, u);
    const double s = scalar_neg_derivative(Loss::Logistic, u);
    EXPECT_TRUE(std::isfinite(l));
    EXPECT_TRUE(std::isfinite(s));
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, 1.0);
  }
  EXPECT_DOUBLE_EQ(scalar_loss(Loss::Logistic, -800.0), 800.0);
  EXPECT_EQ(scalar_loss(Loss::Logistic, 800.0), 0.0);
  EXPECT_EQ(scalar_neg_derivative(Loss::Logistic, -800.0), 1.0);
  EXPECT_LT(scalar_neg_derivative(Loss::Logistic, 800.0), 1e-300);
  EXPECT_EQ(scalar_neg_derivative(Loss::Logistic, kInf), 0.0);
  EXPECT_EQ(scalar_neg_derivative(Loss::Logistic, -kInf), 1.0);
  // Exp loss: ℓ(800) and −ℓ′(800) are finite (0 to double precision); at u = −800 the true value
  // e^800 exceeds DBL_MAX, so the only honest double is +inf (never NaN).
  EXPECT_TRUE(std::isfinite(scalar_loss(Loss::Exponential, 800.0)));
  EXPECT_TRUE(std::isfinite(scalar_neg_derivative(Loss::Exponential, 800.0)));
  EXPECT_EQ(scalar_neg_derivative(Loss::Exponential, 800.0), 0.0);
  EXPECT_EQ(scalar_loss(Loss::Exponential, -800.0), kInf);
  EXPECT_EQ(scalar_neg_derivative(Loss::Exponential, -800.0), kInf);
  // NaN in, NaN out.
  EXPECT_TRUE(std::isnan(scalar_neg_derivative(Loss::Logistic, std::nan(""))));
  EXPECT_TRUE(std::isnan(scalar_neg_derivative(Loss::Exponential, std::nan(""))));
}

TEST(Losses, NegDerivativeMatchesFiniteDifferences) {
  for (const Loss loss : {Loss::Logistic, Loss::Exponential}) {
    for (double u = -20.0; u <= 20.0; u += 0.37) {
      SCOPED_TRACE(u);
      const double h = 1e-5;
      const double fd = -(scalar_loss(loss, u + h) - scalar_loss(loss, u - h)) / (2 * h);
      const double s = scalar_neg_derivative(loss, u);
      EXPECT_NEAR(s, fd, 1e-7 * std::abs(s) + 1e-12);
    }
  }
}

TEST(Losses, NegDerivativeAccurateToAFewUlps) {
  // The vectorised exp of the kernels against the C library, over the whole finite range.
  Rng rng(11);
  for (int k = 0; k < 20000; ++k) {
    const double u = rng.uniform(-700.0, 700.0) * (k % 2 == 0 ? 1.0 : 0.01);
    const double logistic = 1.0 / (1.0 + std::exp(u));
    const double exponential = std::exp(-u);
    ASSERT_NEAR(scalar_neg_derivative(Loss::Logistic, u), logistic, 1e-15 * logistic) << u;
    ASSERT_NEAR(scalar_neg_derivative(Loss::Exponential, u), exponential, 1e-15 * exponential) << u;
  }
  // Vector input of every length (the kernel pads to whole blocks).
  for (int n = 1; n <= 9; ++n) {
    VectorXd u(n);
    for (int i = 0; i < n; ++i) u(i) = rng.uniform(-5.0, 5.0);
    VectorXd out;
    neg_loss_derivative(Loss::Logistic, u, out);
    ASSERT_EQ(out.size(), n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(out(i), scalar_neg_derivative(Loss::Logistic, u(i)));
  }
}

TEST(Losses, SmoothnessAndSigmaMax) {
  EXPECT_EQ(smoothness_beta(Loss::Logistic), 0.25);
  EXPECT_EQ(smoothness_beta(Loss::Exponential), 1.0);
  MatrixXd X(3, 2);
  X << 3, 0, 0, 1, 0, 0;
  EXPECT_NEAR(sigma_max(X), 3.0, 1e-15);
  EXPECT_EQ(sigma_max(MatrixXd(0, 0)), 0.0);
}

// ---- Gradient descent -----------------------------------------------------------------------------

TEST(RunGd, OneStepIsTheGradientOfTheSumLoss) {
  const Planted planted = make_planted2(5, 40, 3);
  const MatrixXd Xt = planted.data.absorbed();
  Rng rng(5);
  for (const Loss loss : {Loss::Logistic, Loss::Exponential}) {
    for (int trial = 0; trial < 5; ++trial) {
      VectorXd w0(5);
      for (int j = 0; j < 5; ++j) w0(j) = 0.5 * rng.normal();
      GdOptions opt;
      opt.loss = loss;
      opt.lr = 0.01;
      opt.steps = 1;
      opt.w0 = w0;
      const VectorXd descent = (run_gd(Xt, opt, {}, nullptr) - w0) / opt.lr;
      for (Eigen::Index j = 0; j < 5; ++j) {
        const double fd = -fd_partial(Xt, loss, w0, j, 1e-6);
        EXPECT_NEAR(descent(j), fd, 1e-6 * (1 + std::abs(fd))) << "coordinate " << j;
      }
      const VectorXd ref = reference_descent(Xt, loss, w0);
      EXPECT_LT((descent - ref).norm(), 1e-12 * (1 + ref.norm()));
    }
  }
}

TEST(RunGd, MatchesAScalarReferenceOverManySteps) {
  const Dataset data = make_fig1_replica(4);
  const MatrixXd Xt = data.absorbed();
  const double eta = 1.0 / sigma_max(data.X);
  for (const double momentum : {0.0, 0.9}) {
    for (const bool mean_loss : {false, true}) {
      GdOptions opt;
      opt.lr = eta;
      opt.momentum = momentum;
      opt.mean_loss = mean_loss;
      opt.steps = 2000;
      opt.w0 = vec({0.3, -0.2});
      const VectorXd w = run_gd(Xt, opt, {}, nullptr);
      // Reference: v ← γv − η∇L(w); w ← w + v, with ∇ of the mean loss = ∇L/N.
      VectorXd ref = opt.w0;
      VectorXd velocity = VectorXd::Zero(2);
      const double step = mean_loss ? eta / static_cast<double>(Xt.rows()) : eta;
      for (int t = 0; t < 2000; ++t) {
        velocity = momentum * velocity + step * reference_descent(Xt, Loss::Logistic, ref);
        ref += velocity;
      }
      EXPECT_LT((w - ref).norm(), 1e-11 * ref.norm())
          << "momentum " << momentum << " mean " << mean_loss;
    }
  }
}

TEST(RunGd, RecordsExactlyTheRequestedSteps) {
  const Planted planted = make_planted2(3, 10, 2);
  const MatrixXd Xt = planted.data.absorbed();
  GdOptions opt;
  opt.lr = 0.5;
  opt.steps = 50'000;
  const std::vector<std::int64_t> grid = {0, 1, 2, 17, 16384, 16385, 40'000, 50'000};
  std::vector<std::int64_t> seen;
  VectorXd last;
  const VectorXd w_end = run_gd(Xt, opt, grid, [&](std::int64_t t, const VectorXd& w, double loss) {
    seen.push_back(t);
    EXPECT_DOUBLE_EQ(loss, loss_sum(Loss::Logistic, Xt * w)) << "t=" << t;
    if (t == 0) {
      EXPECT_EQ(w, VectorXd::Zero(3));
    }
    last = w;
  });
  EXPECT_EQ(seen, grid);
  EXPECT_EQ(last, w_end);
  // Recording does not perturb the trajectory.
  EXPECT_EQ(run_gd(Xt, opt, {}, nullptr), w_end);
}

TEST(RunGd, RejectsBadOptionsAndDetectsBlowUp) {
  const MatrixXd Xt = make_planted2(2, 4, 1).data.absorbed();
  GdOptions opt;
  opt.steps = 10;
  opt.lr = 0.0;
  EXPECT_THROW(run_gd(Xt, opt, {}, nullptr), InputError);
  opt.lr = 0.1;
  opt.momentum = 1.0;
  EXPECT_THROW(run_gd(Xt, opt, {}, nullptr), InputError);
  opt.momentum = 0.0;
  opt.w0 = VectorXd::Zero(3);
  EXPECT_THROW(run_gd(Xt, opt, {}, nullptr), InputError);
  opt.w0 = VectorXd();
  const RecordFn ignore = [](std::int64_t, const VectorXd&, double) {};
  EXPECT_THROW(run_gd(Xt, opt, {5, 3}, ignore), InputError);
  EXPECT_THROW(run_gd(Xt, opt, {11}, ignore), InputError);
  EXPECT_THROW(run_gd(MatrixXd(0, 2), opt, {}, nullptr), InputError);
  // A step so large that w overflows: exp loss from a badly misclassified start.
  opt.loss = Loss::Exponential;
  opt.lr = 1e300;
  opt.w0 = -100.0 * make_planted2(2, 4, 1).w_hat;
  EXPECT_THROW(run_gd(Xt, opt, {}, nullptr), NumericError);
}

// ---- Max margin -----------------------------------------------------------------------------------

TEST(MaxMargin, Fig1ReplicaGivesTheKnownSolution) {
  for (const std::uint64_t seed : {1, 2, 3}) {
    const Dataset data = make_fig1_replica(seed);
    const MaxMargin mm = solve_max_margin(data.absorbed());
    EXPECT_NEAR(mm.w_hat(0), 0.5, 1e-12);
    EXPECT_NEAR(mm.w_hat(1), 0.5, 1e-12);
    EXPECT_EQ(mm.support, (std::vector<int>{0, 1, 2, 3}));
    // KKT (separable.md §0.4): ŵ = Σ α_n x̃_n with α ≥ 0; the copies of x1 and of x2 share 0.25.
    EXPECT_LT((mm.w_hat - data.absorbed().transpose() * mm.alpha).norm(), 1e-12);
    EXPECT_GE(mm.alpha.minCoeff(), 0.0);
    EXPECT_NEAR(mm.alpha(0) + mm.alpha(2), 0.25, 1e-12);
    EXPECT_NEAR(mm.alpha(1) + mm.alpha(3), 0.25, 1e-12);
  }
}

TEST(MaxMargin, Planted2GivesTheGeneratorsSolution) {
  for (const auto& [d, n] : std::vector<std::pair<int, int>>{{5, 40}, {2, 6}, {8, 100}, {3, 3}}) {
    for (const std::uint64_t seed : {1, 7}) {
      SCOPED_TRACE("d=" + std::to_string(d) + " n=" + std::to_string(n) +
                   " seed=" + std::to_string(seed));
      const Planted planted = make_planted2(d, n, seed);
      const MaxMargin mm = solve_max_margin(planted.data.absorbed());
      EXPECT_LT((mm.w_hat - planted.w_hat).norm(), 1e-10);
      std::vector<int> first_d(static_cast<std::size_t>(d));
      for (int i = 0; i < d; ++i) first_d[static_cast<std::size_t>(i)] = i;
      EXPECT_EQ(mm.support, first_d);
    }
  }
}

TEST(MaxMargin, IsScaleInvariant) {
  const MatrixXd Xt = make_planted2(4, 30, 9).data.absorbed();
  const VectorXd w_hat = solve_max_margin(Xt).w_hat;
  for (const double scale : {1e-4, 1e4}) {
    const MaxMargin mm = solve_max_margin(scale * Xt);
    EXPECT_LT((scale * mm.w_hat - w_hat).norm(), 1e-10 * w_hat.norm()) << scale;
  }
}

TEST(MaxMargin, NonSeparableAndEmptyDataThrowInputError) {
  const auto expect_input_error = [](const MatrixXd& Xt, const std::string& needle) {
    try {
      solve_max_margin(Xt);
      ADD_FAILURE() << "no exception for " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  MatrixXd opposite(2, 2);  // x and −x both labelled +1
  opposite << 1.0, 2.0, -1.0, -2.0;
  expect_input_error(opposite, "not linearly separable");
  MatrixXd triangle(3, 2);  // 0 inside the convex hull
  triangle << 1.0, 0.0, -1.0, 1.0, -1.0, -1.0;
  expect_input_error(triangle, "not linearly separable");
  Rng rng(3);  // random labels: N = 40 points in d = 5 are not separable through the origin
  MatrixXd random(40, 5);
  for (int i = 0; i < 40; ++i) {
    for (int j = 0; j < 5; ++j) random(i, j) = rng.normal();
  }
  expect_input_error(random, "not linearly separable");
  MatrixXd zero_row = make_planted2(2, 4, 1).data.absorbed();
  zero_row.row(2).setZero();
  expect_input_error(zero_row, "not linearly separable");
  expect_input_error(MatrixXd(0, 3), "empty");
  expect_input_error(MatrixXd(3, 0), "empty");
}

// ---- w̃ --------------------------------------------------------------------------------------------

TEST(WTilde, Fig1ReplicaClosedForm) {
  for (const std::uint64_t seed : {1, 6, 25}) {
    const Dataset data = make_fig1_replica(seed);
    const MatrixXd Xt = data.absorbed();
    const MaxMargin mm = solve_max_margin(Xt);
    for (const double eta : {1.0 / sigma_max(data.X), 0.01, 1.0}) {
      // separable.md §0.7: w̃ = ½ ln(8η)(1, 1).
      const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta, VectorXd::Zero(2));
      const double expected = 0.5 * std::log(8 * eta);
      EXPECT_NEAR(w_tilde(0), expected, 1e-10) << "seed " << seed << " eta " << eta;
      EXPECT_NEAR(w_tilde(1), expected, 1e-10) << "seed " << seed << " eta " << eta;
    }
  }
}

TEST(WTilde, Planted2SatisfiesTheSupportEquations) {
  const Planted planted = make_planted2(5, 40, 2);
  const MatrixXd Xt = planted.data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const double eta = 0.3;
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta, VectorXd());
  // Soudry Thm 4 / eq. 2.7: x̃_nᵀw̃ = ln(η/α_n) on S (independent support vectors).
  for (const int n : mm.support) {
    EXPECT_NEAR(Xt.row(n).dot(w_tilde), std::log(eta / mm.alpha(n)), 1e-10) << n;
  }
}

TEST(WTilde, ComponentOutsideTheSupportSpanStaysAtW0) {
  // planted2 in R² embedded in R³ (third coordinate 0): span(X_S) = R² × {0}.
  const Planted planted = make_planted2(2, 8, 4);
  MatrixXd Xt = MatrixXd::Zero(8, 3);
  Xt.leftCols(2) = planted.data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const VectorXd w0 = vec({0.1, -0.2, 5.0});
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, 0.5, w0);
  EXPECT_NEAR(w_tilde(2), 5.0, 1e-14);
  const VectorXd w_tilde_2d = solve_w_tilde(
      planted.data.absorbed(), solve_max_margin(planted.data.absorbed()), 0.5, VectorXd::Zero(2));
  EXPECT_LT((w_tilde.head(2) - w_tilde_2d).norm(), 1e-10);
  // And GD never moves the third coordinate (every gradient lies in span(X)).
  GdOptions opt;
  opt.lr = 0.5;
  opt.steps = 1000;
  opt.w0 = w0;
  EXPECT_EQ(run_gd(Xt, opt, {}, nullptr)(2), 5.0);
}

// ---- Measurements ---------------------------------------------------------------------------------

TEST(Measure, AtThePredictionTheResidualVanishes) {
  const Planted planted = make_planted2(5, 40, 1);
  const MatrixXd Xt = planted.data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, 0.2, VectorXd());
  const std::int64_t t = 12345;
  const VectorXd w = predicted_w(mm.w_hat, w_tilde, t);
  EXPECT_LT((w - (mm.w_hat * std::log(12345.0) + w_tilde)).norm(), 1e-14);
  const Measurements m = measure(Xt, Loss::Logistic, w, t, 0.2, mm.w_hat, w_tilde);
  EXPECT_LT(m.residual, 1e-13);
  EXPECT_DOUBLE_EQ(m.norm, w.norm());
  EXPECT_DOUBLE_EQ(m.loss, loss_sum(Loss::Logistic, Xt * w));
  EXPECT_DOUBLE_EQ(m.loss_ratio, 12345.0 * 0.2 * m.loss / mm.w_hat.squaredNorm());
  EXPECT_DOUBLE_EQ(m.normalized_margin, (Xt * w).minCoeff() / w.norm());
  EXPECT_DOUBLE_EQ(m.margin_gap, 1.0 / mm.w_hat.norm() - m.normalized_margin);
  const double cosine = w.dot(mm.w_hat) / (w.norm() * mm.w_hat.norm());
  EXPECT_NEAR(m.angle_gap, 1.0 - cosine, 1e-15);
  EXPECT_NEAR(m.direction_error, (w / w.norm() - mm.w_hat / mm.w_hat.norm()).norm(), 1e-15);
  // Along ŵ every gap is zero.
  const Measurements along = measure(Xt, Loss::Logistic, 3.0 * mm.w_hat, t, 0.2, mm.w_hat, w_tilde);
  EXPECT_NEAR(along.margin_gap, 0.0, 1e-15);
  EXPECT_NEAR(along.angle_gap, 0.0, 1e-16);
  EXPECT_NEAR(along.direction_error, 0.0, 1e-15);
  // t = 0: ln t is undefined, so is the residual.
  EXPECT_TRUE(std::isnan(measure(Xt, Loss::Logistic, w, 0, 0.2, mm.w_hat, w_tilde).residual));
}

// ---- Datasets -------------------------------------------------------------------------------------

TEST(Datasets, Fig1ReplicaLayout) {
  const Dataset data = make_fig1_replica(42);
  ASSERT_EQ(data.X.rows(), 16);
  ASSERT_EQ(data.X.cols(), 2);
  EXPECT_EQ(data.X.row(0), Eigen::RowVector2d(0.5, 1.5));
  EXPECT_EQ(data.X.row(1), Eigen::RowVector2d(1.5, 0.5));
  EXPECT_EQ(data.X.row(2), Eigen::RowVector2d(-0.5, -1.5));
  EXPECT_EQ(data.X.row(3), Eigen::RowVector2d(-1.5, -0.5));
  const MatrixXd Xt = data.absorbed();
  for (int n = 0; n < 16; ++n) {
    EXPECT_EQ(data.y(n), (n < 2 || (n >= 4 && n < 10)) ? 1.0 : -1.0) << n;
    if (n >= 4) {
      // p ~ U([0,3]²) with ½(p₁+p₂) ≥ 1.5 (separable.md §0.7): x̃ = p for both classes.
      EXPECT_GE(Xt.row(n).minCoeff(), 0.0);
      EXPECT_LE(Xt.row(n).maxCoeff(), 3.0);
      EXPECT_GE(0.5 * Xt.row(n).sum(), 1.5);
    }
  }
}

TEST(Datasets, Planted2Structure) {
  const Planted planted = make_planted2(5, 40, 8);
  const MatrixXd Xt = planted.data.absorbed();
  for (int n = 0; n < 40; ++n) EXPECT_EQ(std::abs(planted.data.y(n)), 1.0);
  // Support vectors x̃_i = Q c_i e_i: orthogonal, norms c_i ∈ [0.5, 2], margin exactly 1.
  const MatrixXd gram = Xt.topRows(5) * Xt.topRows(5).transpose();
  for (int i = 0; i < 5; ++i) {
    EXPECT_GE(std::sqrt(gram(i, i)), 0.5);
    EXPECT_LE(std::sqrt(gram(i, i)), 2.0);
    EXPECT_NEAR(Xt.row(i).dot(planted.w_hat), 1.0, 1e-14);
    for (int j = 0; j < 5; ++j) {
      if (i != j) {
        EXPECT_NEAR(gram(i, j), 0.0, 1e-14);
      }
    }
  }
  // A = Σ_S α_n x̃_n x̃_nᵀ = I with α_i = 1/c_i².
  MatrixXd a = MatrixXd::Zero(5, 5);
  for (int i = 0; i < 5; ++i) a += Xt.row(i).transpose() * Xt.row(i) / gram(i, i);
  EXPECT_LT((a - MatrixXd::Identity(5, 5)).norm(), 1e-14);
  // Non-support margins θ_n ∈ [2, 4].
  for (int n = 5; n < 40; ++n) {
    const double theta = Xt.row(n).dot(planted.w_hat);
    EXPECT_GE(theta, 2.0 - 1e-12);
    EXPECT_LE(theta, 4.0 + 1e-12);
  }
  EXPECT_THROW(make_planted2(5, 4, 1), InputError);
  EXPECT_THROW(make_planted2(0, 4, 1), InputError);
}

TEST(Datasets, GeneratorsAreDeterministicPerSeed) {
  EXPECT_EQ(make_fig1_replica(3).X, make_fig1_replica(3).X);
  EXPECT_NE(make_fig1_replica(3).X, make_fig1_replica(4).X);
  const Planted a = make_planted2(5, 40, 3);
  const Planted b = make_planted2(5, 40, 3);
  EXPECT_EQ(a.data.X, b.data.X);
  EXPECT_EQ(a.data.y, b.data.y);
  EXPECT_EQ(a.w_hat, b.w_hat);
  EXPECT_NE(a.data.X, make_planted2(5, 40, 4).data.X);
}

TEST(RandomStreams, SameSeedSameStream) {
  Rng a(123);
  Rng b(123);
  Rng c(124);
  int differences = 0;
  for (int k = 0; k < 1000; ++k) {
    const std::uint64_t x = a.next_u64();
    ASSERT_EQ(x, b.next_u64());
    differences += x != c.next_u64();
  }
  EXPECT_GT(differences, 990);
  Rng d(9);
  Rng e(9);
  for (int k = 0; k < 100; ++k) {
    ASSERT_EQ(d.normal(), e.normal());
    ASSERT_EQ(d.uniform(0.5, 2.0), e.uniform(0.5, 2.0));
  }
}

// ---- Log grid -------------------------------------------------------------------------------------

TEST(LogGrid, Properties) {
  for (const std::int64_t T : {1LL, 2LL, 5LL, 10LL, 999LL, 1'000'000LL, 1'234'567LL}) {
    for (const int per_decade : {1, 3, 10, 40}) {
      SCOPED_TRACE("T=" + std::to_string(T) + " per_decade=" + std::to_string(per_decade));
      const std::vector<std::int64_t> grid = log_grid(T, per_decade);
      ASSERT_FALSE(grid.empty());
      EXPECT_EQ(grid.front(), 1);
      EXPECT_EQ(grid.back(), T);
      for (std::size_t i = 1; i < grid.size(); ++i) EXPECT_LT(grid[i - 1], grid[i]);
    }
  }
  // 10 per decade on [1, 1e6]: round(10^(k/10)) for k = 0..60, less the three repeats of the first
  // decade (1.26 → 1, 2.00 → 2, 3.16 → 3); every power of ten is hit exactly.
  const std::vector<std::int64_t> grid = log_grid(1'000'000, 10);
  EXPECT_EQ(grid.size(), 58U);
  EXPECT_EQ(std::vector<std::int64_t>(grid.begin(), grid.begin() + 8),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 8, 10}));
  for (const std::int64_t decade : {10, 100, 1000, 10'000, 100'000}) {
    EXPECT_NE(std::find(grid.begin(), grid.end(), decade), grid.end()) << decade;
  }
  EXPECT_EQ(log_grid(5, 10), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_THROW(log_grid(0, 10), InputError);
  EXPECT_THROW(log_grid(10, 0), InputError);
}

// ---- CSV ------------------------------------------------------------------------------------------

class CsvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gdlab_csv_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // Expects load_csv(path) to throw InputError whose message contains "path:line".
  static void expect_error_at(const std::string& path, int line) {
    try {
      load_csv(path);
      ADD_FAILURE() << "no exception for " << path;
    } catch (const InputError& e) {
      const std::string where = path + ":" + std::to_string(line) + ":";
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
  }

  std::filesystem::path dir_;
};

TEST_F(CsvTest, RoundTripIsExact) {
  const Dataset data = make_fig1_replica(5);
  std::string text = "# Fig. 1 replica\nx1,x2,y\n\n";
  for (Eigen::Index n = 0; n < data.X.rows(); ++n) {
    char line[128];
    std::snprintf(line, sizeof line, "%.17g, %.17g ,%+g\r\n", data.X(n, 0), data.X(n, 1), data.y(n));
    text += line;
  }
  const Dataset loaded = load_csv(write("fig1.csv", text));
  EXPECT_EQ(loaded.X, data.X);
  EXPECT_EQ(loaded.y, data.y);
  // Without a header, comments or blank lines too.
  const Dataset plain = load_csv(write("plain.csv", "1,2,3,-1\n4,5,6,1\n"));
  ASSERT_EQ(plain.X.rows(), 2);
  ASSERT_EQ(plain.X.cols(), 3);
  EXPECT_EQ(plain.X(1, 2), 6.0);
  EXPECT_EQ(plain.y, vec({-1.0, 1.0}));
}

TEST_F(CsvTest, MissingFile) {
  const std::string path = (dir_ / "does_not_exist.csv").string();
  try {
    load_csv(path);
    ADD_FAILURE() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":"), std::string::npos) << e.what();
  }
}

TEST_F(CsvTest, RaggedRow) { expect_error_at(write("ragged.csv", "x,y,label\n1,2,1\n# c\n3,1\n"), 4); }

TEST_F(CsvTest, BadLabel) {
  expect_error_at(write("label2.csv", "1,2,1\n3,4,2\n"), 2);
  expect_error_at(write("label0.csv", "1,2,0\n"), 1);
}

TEST_F(CsvTest, BadNumber) {
  expect_error_at(write("text.csv", "1,2,1\n3,abc,1\n"), 2);
  expect_error_at(write("nan.csv", "1,2,1\n3,nan,1\n"), 2);
  expect_error_at(write("empty_field.csv", "1,,1\n"), 1);
}

TEST_F(CsvTest, NoRows) {
  expect_error_at(write("empty.csv", ""), 0);
  expect_error_at(write("header_only.csv", "x,y,label\n# nothing\n"), 2);
}

}  // namespace
}  // namespace gdlab::separable
