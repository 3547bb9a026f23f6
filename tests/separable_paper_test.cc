// Paper checks for Soudry, Hoffer, Nacson, Gunasekar, Srebro 2018, "The Implicit Bias of Gradient
// Descent on Separable Data" (arXiv:1710.10345): the acceptance tests T1.1–T1.5 of
// ../shared/papers/separable.md §1.6, through the public API of worker/numerics/separable.h only.
//
// Sizes follow the spec (T = 1e6 steps); T1.2 uses 4 planted2 seeds instead of the 12 of the
// calibration to keep the suite within its CI budget. Each test prints its measured values so a
// failing run shows how far off it was.
//
// The spec's measured values come from its own draws of the random points; with this project's
// generators (gdlab::Rng, fixed draw order) the values over seeds 1–12 were:
//   T1.1 (Fig. 1 replica):  |r| 0.0003–0.052 (only seed 6 above 0.05), ρ_L 0.9985–0.9997,
//                           |‖w‖ − prediction| ≤ 0.002;
//   T1.2 (planted2):        |r| ≤ 0.021, ρ_L 0.9963–0.9998, gap errors ≤ 1.2% (margin), ≤ 1.9% (angle);
//   T1.4 (momentum):        |r| 0.004–0.20 (seeds 4, 6, 10 above 0.1), ρ_L 0.9899–0.9985.
// The residual at T = 1e6 on the replica depends on the random points because it decays slowly
// (like t^(−1/4), separable.md §0.9). The tests use seed 1 (T1.1: |r| = 0.009; T1.4: |r| = 0.026,
// ρ_L = 0.998) and seeds 1–4 for T1.2, all inside the spec's tolerances, which are unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "worker/numerics/separable.h"

namespace gdlab::separable {
namespace {

constexpr std::int64_t kT = 1'000'000;

// One measured checkpoint of a run.
struct Checkpoint {
  std::int64_t t;
  VectorXd w;
  Measurements m;
};

// Runs GD with records on a 10-per-decade log grid and measures each checkpoint against (ŵ, w̃).
std::vector<Checkpoint> run_and_measure(const MatrixXd& Xt, const GdOptions& opt, double eta_eff,
                                        const VectorXd& w_hat, const VectorXd& w_tilde) {
  std::vector<Checkpoint> out;
  run_gd(Xt, opt, log_grid(opt.steps, 10), [&](std::int64_t t, const VectorXd& w, double loss) {
    Checkpoint c{t, w, measure(Xt, opt.loss, w, t, eta_eff, w_hat, w_tilde)};
    EXPECT_NEAR(c.m.loss, loss, 1e-12 * loss) << "record loss and measure() disagree at t=" << t;
    out.push_back(std::move(c));
  });
  return out;
}

// Least-squares slope of log|r| against log t over the checkpoints with t >= t_min.
double residual_log_slope(const std::vector<Checkpoint>& run, std::int64_t t_min) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (const Checkpoint& c : run) {
    if (c.t < t_min) continue;
    const double x = std::log(static_cast<double>(c.t));
    const double y = std::log(c.m.residual);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    ++n;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// T1.1: dataset A (Fig. 1 replica), logistic loss, η = 1/σ_max(X) (not squared), w(0) = 0, T = 1e6.
TEST(SeparablePaper, T1_1_Fig1Replica) {
  const Dataset data = make_fig1_replica(1);
  const MatrixXd Xt = data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const double eta = 1.0 / sigma_max(data.X);
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta, VectorXd::Zero(2));
  GdOptions opt;
  opt.lr = eta;
  opt.steps = kT;
  opt.w0 = VectorXd::Zero(2);
  const std::vector<Checkpoint> run = run_and_measure(Xt, opt, eta, mm.w_hat, w_tilde);
  ASSERT_EQ(run.back().t, kT);
  const Measurements& m = run.back().m;
  const double w_hat_norm = mm.w_hat.norm();
  const double predicted_norm =
      w_hat_norm * std::log(static_cast<double>(kT)) + mm.w_hat.dot(w_tilde) / w_hat_norm;
  const double slope = residual_log_slope(run, 1000);
  std::printf("T1.1: rho_L=%.5f |r|=%.4f |w|=%.4f (predicted %.4f) slope=%.3f\n", m.loss_ratio,
              m.residual, m.norm, predicted_norm, slope);
  EXPECT_GE(m.loss_ratio, 0.99);  // (a) measured 0.9988 in the spec
  EXPECT_LE(m.loss_ratio, 1.01);
  EXPECT_LT(m.residual, 0.05);                // (b) measured 0.022
  EXPECT_NEAR(m.norm, predicted_norm, 0.01);  // (c) measured 9.5489 vs 9.5475
  EXPECT_LE(slope, -0.15);                    // (d) measured −0.23
}

// T1.2: planted2 (d = 5, N = 40), logistic, η = 4/σ_max², w(0) = 0, T = 1e6, over 4 seeds.
TEST(SeparablePaper, T1_2_GenericAsymptoticsPlanted2) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("planted2 seed " + std::to_string(seed));
    const Planted planted = make_planted2(5, 40, seed);
    const MatrixXd Xt = planted.data.absorbed();
    const MaxMargin mm = solve_max_margin(Xt);
    const double s = sigma_max(planted.data.X);
    const double eta = 4.0 / (s * s);
    const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta, VectorXd::Zero(5));
    GdOptions opt;
    opt.lr = eta;
    opt.steps = kT;
    const VectorXd w = run_gd(Xt, opt, {}, nullptr);
    const Measurements m = measure(Xt, Loss::Logistic, w, kT, eta, mm.w_hat, w_tilde);
    const VectorXd w_pred = predicted_w(mm.w_hat, w_tilde, kT);
    const Measurements p = measure(Xt, Loss::Logistic, w_pred, kT, eta, mm.w_hat, w_tilde);
    const double margin_gap_error = std::abs(m.margin_gap - p.margin_gap) / p.margin_gap;
    const double angle_gap_error = std::abs(m.angle_gap - p.angle_gap) / p.angle_gap;
    std::printf(
        "T1.2 seed %d: |r|=%.5f rho_L=%.5f margin gap %.5g vs %.5g (%.3f%%) angle gap %.5g vs %.5g "
        "(%.3f%%)\n",
        static_cast<int>(seed), m.residual, m.loss_ratio, m.margin_gap, p.margin_gap,
        100 * margin_gap_error, m.angle_gap, p.angle_gap, 100 * angle_gap_error);
    EXPECT_LT(m.residual, 0.03);    // (a) measured max 0.0092 over 12 seeds
    EXPECT_GE(m.loss_ratio, 0.99);  // (b) measured 0.9977–0.9999
    EXPECT_LE(m.loss_ratio, 1.01);
    EXPECT_LT(margin_gap_error, 0.03);  // (c) measured max 0.68%
    EXPECT_LT(angle_gap_error, 0.03);   //     and 0.85%
  }
}

// T1.3 negative control: the mean loss without rescaling η is GD with step η/N, so w̃ shifts by
// −(ln N) ŵ (x̃_nᵀŵ = 1 on S) and |r| ≈ ln(40)·‖ŵ‖ ≫ 0.03: criterion (a) of T1.2 fails.
TEST(SeparablePaper, T1_3_MeanLossWithoutRescalingFailsT1_2) {
  const Planted planted = make_planted2(5, 40, 1);
  const MatrixXd Xt = planted.data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const double s = sigma_max(planted.data.X);
  const double eta = 4.0 / (s * s);
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta, VectorXd::Zero(5));
  GdOptions opt;
  opt.lr = eta;
  opt.steps = kT;
  opt.mean_loss = true;
  const VectorXd w = run_gd(Xt, opt, {}, nullptr);
  const Measurements m = measure(Xt, Loss::Logistic, w, kT, eta, mm.w_hat, w_tilde);
  const double expected_shift = std::log(40.0) * mm.w_hat.norm();
  const VectorXd r = w - predicted_w(mm.w_hat, w_tilde, kT);
  const double shift_error = (r + std::log(40.0) * mm.w_hat).norm();
  std::printf("T1.3: |r|=%.4f, ln(40)|w_hat|=%.4f, |r + ln(40) w_hat|=%.4f\n", m.residual,
              expected_shift, shift_error);
  EXPECT_GT(m.residual, 1.0);                    // fails T1.2 (a) by far
  EXPECT_LT(shift_error, 0.1 * expected_shift);  // and the failure is the predicted −(ln N) ŵ shift
}

// T1.4: heavy ball with γ = 0.9 and η_m = η(1−γ) is asymptotically GD with η_eff = η_m/(1−γ) = η,
// so it converges to the same w̃ (dataset A, η = 1/σ_max, w(0) = 0).
TEST(SeparablePaper, T1_4_MomentumMatchedStepSameWTilde) {
  const Dataset data = make_fig1_replica(1);
  const MatrixXd Xt = data.absorbed();
  const MaxMargin mm = solve_max_margin(Xt);
  const double eta = 1.0 / sigma_max(data.X);
  constexpr double kMomentum = 0.9;
  const double eta_eff = (eta * (1 - kMomentum)) / (1 - kMomentum);
  const VectorXd w_tilde = solve_w_tilde(Xt, mm, eta_eff, VectorXd::Zero(2));
  GdOptions opt;
  opt.lr = eta * (1 - kMomentum);
  opt.momentum = kMomentum;
  opt.steps = kT;
  const VectorXd w = run_gd(Xt, opt, {}, nullptr);
  const Measurements m = measure(Xt, Loss::Logistic, w, kT, eta_eff, mm.w_hat, w_tilde);
  std::printf("T1.4: |r|=%.4f rho_L=%.5f\n", m.residual, m.loss_ratio);
  EXPECT_LT(m.residual, 0.1);     // spec measured 0.063
  EXPECT_GE(m.loss_ratio, 0.99);  // spec measured 0.997
  EXPECT_LE(m.loss_ratio, 1.01);
}

// T1.5: tightness example (Soudry et al. App. B): exp loss, one point x = (1, 0). Gradient flow
// gives w₁(t) = ln(t + e^{w₁(0)}); GD w₁ ← w₁ + η e^{−w₁} follows ln(ηt + e^{w₁(0)}), and w₂ never
// moves (its gradient is exactly 0).
TEST(SeparablePaper, T1_5_TightnessExpLossSinglePoint) {
  MatrixXd Xt(1, 2);
  Xt << 1.0, 0.0;
  constexpr double kEta = 0.5;
  for (const double w1_start : {0.0, 0.7, -1.3}) {
    SCOPED_TRACE("w1(0) = " + std::to_string(w1_start));
    GdOptions opt;
    opt.loss = Loss::Exponential;
    opt.lr = kEta;
    opt.steps = kT;
    opt.w0 = VectorXd(2);
    opt.w0 << w1_start, -0.37;
    std::vector<double> errors;
    run_gd(Xt, opt, {100, 10'000, kT}, [&](std::int64_t t, const VectorXd& w, double) {
      errors.push_back(std::abs(w(0) - std::log(kEta * static_cast<double>(t) + std::exp(w1_start))));
      EXPECT_EQ(w(1), -0.37) << "w2 moved at t=" << t;
    });
    ASSERT_EQ(errors.size(), 3U);
    std::printf("T1.5 w1(0)=%.2f: |w1 - ln(eta t + e^w1(0))| = %.3g, %.3g, %.3g at t = 1e2, 1e4, 1e6\n",
                w1_start, errors[0], errors[1], errors[2]);
    EXPECT_LT(errors[2], 1e-3);
    EXPECT_LT(errors[2], errors[1]);  // → 0
    EXPECT_LT(errors[1], errors[0]);
  }
}

}  // namespace
}  // namespace gdlab::separable
