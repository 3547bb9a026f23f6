// Tests of the experiment kind `loss_tails`: Nacson, Lee, Gunasekar, Savarese, Srebro, Soudry,
// "Convergence of Gradient Descent on Separable Data" (AISTATS 2019, arXiv:1803.01905), spec
// ../shared/papers/separable.md §3.
//
//  * numerics: the C¹ losses of §3.4 (values, derivatives, logs, smoothness constants), the fast
//    paths of the fixed-step loop against the generic formula, the softmax-normalised NGD step against
//    a direct implementation and at ‖w‖ ~ 1e4, the T3.1 constants, and the T3.2 limit direction v*;
//  * the acceptance tests T3.1–T3.3 of §3.7 at the spec's sizes (planted2 d = 5, N = 40), run
//    through the kind so the recorded verdict is checked too, with negative controls: the wrong ν in
//    C_ν/g^ν, and the max-margin direction for polynomial tails, must fail;
//  * bad input: prepare() throws SpecError naming the field, and the campaign loader reports file:line;
//  * validation builds no planted2 data when the step-size check is scale-free (or there is none),
//    and that shortcut decides as the check computed with the data.
// T3.4 (deep linear net) is not implemented.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/campaign.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "tests/kind_test_util.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/loss_tails.h"
#include "worker/numerics/separable.h"

// Counts malloc calls (glibc: the executable's malloc interposes on every library's, and
// __libc_malloc is glibc's own), to check that the hot loops do not allocate.
std::atomic<long> g_malloc_calls{0};
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* malloc(std::size_t size) noexcept {
  g_malloc_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}

namespace gdlab {
namespace {

using loss_tails::Schedule;
using loss_tails::Tail;
using loss_tails::TailLoss;
using separable::MatrixXd;
using separable::VectorXd;

// The planted2 seed of the acceptance tests. T3.2's absolute threshold 1 − cos(w, ŵ) > 3e-3 and
// T3.3's ratio 0.5 are calibrated constants of one dataset: over planted2 seeds 1–16, 1 − cos(v*, ŵ)
// ranges over 7.6e-4–1.9e-2 and the NGD-√/fixed gap ratio over 0.03–0.51 (seeds 2, 5 and 11 fall
// below 3e-3 for k ∈ {1, 2}). Seed 1 meets both, as the spec's own calibration dataset did.
constexpr std::uint64_t kDataSeed = 1;

using test_util::MemoryRecorder;

const ExperimentKind& kind() { return test_util::find_kind("loss_tails"); }

TaskContext context() {
  TaskContext c;
  c.campaign_seed = 2019;
  return c;
}

pb::LossTailsSpec base_spec(std::int64_t steps) {
  pb::LossTailsSpec s;
  s.set_steps(steps);
  auto* p = s.mutable_dataset()->mutable_planted2();
  p->set_d(5);
  p->set_n(40);
  p->set_seed(kDataSeed);
  return s;
}

MemoryRecorder run_kind(const pb::LossTailsSpec& spec) {
  return test_util::run_task(kind(), spec, context());
}

std::string error_field(const pb::LossTailsSpec& spec) {
  return test_util::spec_error_field(kind(), spec, context(), "");
}

struct Planted {
  MatrixXd Xt;
  separable::MaxMargin mm;
};
Planted planted(std::uint64_t seed) {
  Planted p;
  p.Xt = separable::make_planted2(5, 40, seed).data.absorbed();
  p.mm = separable::solve_max_margin(p.Xt);
  return p;
}

// ---- Losses ----------------------------------------------------------------------------------------

std::vector<TailLoss> all_losses() {
  return {{Tail::PolyExponential, 0.5}, {Tail::PolyExponential, 1.0}, {Tail::PolyExponential, 2.0},
          {Tail::PolyExponential, 3.3}, {Tail::Polynomial, 1.0},      {Tail::Polynomial, 2.0},
          {Tail::Polynomial, 2.5},      {Tail::Exponential, 1.0},     {Tail::Logistic, 1.0}};
}

TEST(TailLosses, AreC1MonotoneAndConsistent) {
  for (const TailLoss& loss : all_losses()) {
    SCOPED_TRACE("tail " + std::to_string(static_cast<int>(loss.tail)) + " exponent " + std::to_string(loss.exponent));
    // C¹ at the junction u = 1 of the §3.4 extensions.
    EXPECT_NEAR(loss.value(1.0 - 1e-12), loss.value(1.0), 1e-11);
    EXPECT_NEAR(loss.neg_derivative(1.0 - 1e-12), loss.neg_derivative(1.0), 1e-10);
    double previous = loss.value(-3.0);
    for (double u = -3.0; u <= 12.0; u += 0.37) {
      const double h = 1e-6;
      const double numeric = -(loss.value(u + h) - loss.value(u - h)) / (2 * h);
      EXPECT_NEAR(loss.neg_derivative(u), numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << "u=" << u;
      // Strictly decreasing: −ℓ′ > 0 (its log is finite even where −ℓ′ underflows, e.g. ν = 3.3, u > 11).
      EXPECT_GE(loss.neg_derivative(u), 0) << "u=" << u;
      EXPECT_TRUE(std::isfinite(loss.log_neg_derivative(u))) << "u=" << u;
      if (loss.value(u) > 1e-300) {
        EXPECT_NEAR(loss.log_value(u), std::log(loss.value(u)), 1e-12 * std::max(1.0, std::abs(loss.log_value(u))));
      }
      if (loss.neg_derivative(u) > 1e-300) {  // else its log is −inf while log_neg_derivative stays finite
        EXPECT_NEAR(loss.log_neg_derivative(u), std::log(loss.neg_derivative(u)),
                    1e-12 * std::max(1.0, std::abs(loss.log_neg_derivative(u))));
      }
      EXPECT_LE(loss.value(u), previous);
      previous = loss.value(u);
    }
    // The logs stay finite where the values underflow (NGD at ‖w‖ ~ 1e4).
    EXPECT_TRUE(std::isfinite(loss.log_value(2e4)));
    EXPECT_TRUE(std::isfinite(loss.log_neg_derivative(2e4)));
  }
  EXPECT_DOUBLE_EQ(TailLoss({Tail::Exponential, 1}).log_value(2e4), -2e4);
  EXPECT_NEAR(TailLoss({Tail::Logistic, 1}).log_value(2e4), -2e4, 1e-9);
}

TEST(TailLosses, SmoothnessBoundsTheSecondDerivative) {
  for (const TailLoss& loss : all_losses()) {
    if (loss.tail == Tail::Exponential) continue;  // ℓ″ = e^{−u}: the bound 1 holds on u ≥ 0 only
    double worst = 0;
    for (double u = -2.0; u <= 40.0; u += 1e-3) {
      const double h = 1e-4;
      worst = std::max(worst, -(loss.neg_derivative(u + h) - loss.neg_derivative(u - h)) / (2 * h));
    }
    EXPECT_LE(worst, loss.smoothness() * (1 + 1e-6)) << static_cast<int>(loss.tail) << " " << loss.exponent;
    EXPECT_GE(worst, loss.smoothness() / 1.02) << "the bound is tight";
  }
  // ν = 2: ℓ″ = (4u² − 2)e^{−u²} peaks at u² = 3/2 with 4e^{−3/2}.
  EXPECT_NEAR(TailLoss({Tail::PolyExponential, 2}).smoothness(), 1.01 * 4 * std::exp(-1.5), 1e-5);
  EXPECT_DOUBLE_EQ(TailLoss({Tail::Polynomial, 2}).smoothness(), 6.0);
}

TEST(TailLosses, LogLossSumIsFiniteAtHugeMargins) {
  const TailLoss exp_loss{Tail::Exponential, 1};
  VectorXd margins(3);
  margins << 1.0, 2.0, 3.0;
  EXPECT_NEAR(loss_tails::log_loss_sum(exp_loss, margins), std::log(std::exp(-1.0) + std::exp(-2.0) + std::exp(-3.0)),
              1e-14);
  margins << 1e4, 1e4 + std::log(2.0), 2e4;
  EXPECT_NEAR(loss_tails::log_loss_sum(exp_loss, margins), -1e4 + std::log(1.5), 1e-9);
}

// ---- GD loop ---------------------------------------------------------------------------------------

TEST(TailGd, FastPathsMatchTheGenericFormula) {
  // Exponents 1, 2, 1/2 (poly-exp) and 1, 2, 3 (polynomial) take dedicated kernels; the exponent
  // one ulp away takes the generic std::pow path.
  const Planted p = planted(kDataSeed);
  const double sigma = separable::sigma_max(p.Xt);
  for (const TailLoss& fast : {TailLoss{Tail::PolyExponential, 1.0}, TailLoss{Tail::PolyExponential, 2.0},
                               TailLoss{Tail::PolyExponential, 0.5}, TailLoss{Tail::Polynomial, 1.0},
                               TailLoss{Tail::Polynomial, 2.0}, TailLoss{Tail::Polynomial, 3.0}}) {
    loss_tails::TailGdOptions opt;
    opt.loss = fast;
    opt.lr = 0.2 / (sigma * sigma);
    opt.steps = 3000;
    const VectorXd a = loss_tails::run_tail_gd(p.Xt, opt, {}, nullptr);
    opt.loss.exponent = std::nextafter(fast.exponent, 10.0);
    const VectorXd b = loss_tails::run_tail_gd(p.Xt, opt, {}, nullptr);
    EXPECT_LT((a - b).norm(), 1e-10 * a.norm()) << static_cast<int>(fast.tail) << " " << fast.exponent;
  }
}

// A direct NGD implementation: η_t = η₀/(L √(t+1)) times the plain gradient.
VectorXd naive_ngd(const MatrixXd& Xt, const TailLoss& loss, bool sqrt_decay, double eta0, int steps) {
  VectorXd w = VectorXd::Zero(Xt.cols());
  for (int t = 0; t < steps; ++t) {
    const VectorXd u = Xt * w;
    double L = 0;
    VectorXd s(u.size());
    for (Eigen::Index i = 0; i < u.size(); ++i) {
      L += loss.value(u(i));
      s(i) = loss.neg_derivative(u(i));
    }
    const double eta = eta0 / L / (sqrt_decay ? std::sqrt(t + 1.0) : 1.0);
    w += eta * Xt.transpose() * s;
  }
  return w;
}

TEST(TailGd, NormalisedStepsMatchTheDirectFormulaAndDoNotOverflow) {
  const Planted p = planted(kDataSeed);
  const double m = p.Xt.rowwise().squaredNorm().maxCoeff();
  for (const TailLoss& loss : all_losses()) {
    for (const Schedule schedule : {Schedule::NgdSqrt, Schedule::NgdConst}) {
      loss_tails::TailGdOptions opt;
      opt.loss = loss;
      opt.schedule = schedule;
      opt.lr = 0.5 / m;
      opt.steps = 30;
      const VectorXd a = loss_tails::run_tail_gd(p.Xt, opt, {}, nullptr);
      const VectorXd b = naive_ngd(p.Xt, loss, schedule == Schedule::NgdSqrt, opt.lr, 30);
      EXPECT_LT((a - b).norm(), 1e-11 * b.norm()) << static_cast<int>(loss.tail) << " " << loss.exponent;
    }
  }
  // NGD-const with η₀ = 4/max‖x̃‖² reaches ‖w‖ ~ 1e4 by 1e5 steps, where every e^{−u_n} underflows.
  loss_tails::TailGdOptions opt;
  opt.loss = {Tail::Exponential, 1};
  opt.schedule = Schedule::NgdConst;
  opt.lr = 4 / m;
  opt.steps = 100'000;
  const VectorXd w = loss_tails::run_tail_gd(p.Xt, opt, {}, nullptr);
  ASSERT_TRUE(w.allFinite());
  EXPECT_GT(w.norm(), 5e3);
  const double log_loss = loss_tails::log_loss_sum(opt.loss, p.Xt * w);
  EXPECT_LT(log_loss, -745) << "L(w) itself underflows";
  EXPECT_TRUE(std::isfinite(log_loss));
}

TEST(TailGd, HotLoopDoesNotAllocate) {
  // The number of malloc calls of a run does not depend on the number of steps (malloc interposer
  // at the top of this file).
  const Planted p = planted(kDataSeed);
  const double m = p.Xt.rowwise().squaredNorm().maxCoeff();
  for (const Schedule schedule : {Schedule::Fixed, Schedule::NgdSqrt, Schedule::NgdConst}) {
    for (const TailLoss& loss : all_losses()) {
      loss_tails::TailGdOptions opt;
      opt.loss = loss;
      opt.schedule = schedule;
      opt.lr = 0.1 / m;
      const auto calls = [&](std::int64_t steps) {
        opt.steps = steps;
        const long before = g_malloc_calls.load();
        loss_tails::run_tail_gd(p.Xt, opt, {}, nullptr);
        return g_malloc_calls.load() - before;
      };
      const long short_run = calls(10);
      EXPECT_GT(short_run, 0) << "the interposer counts";
      EXPECT_EQ(calls(3000), short_run) << static_cast<int>(schedule) << " " << static_cast<int>(loss.tail);
    }
  }
}

// ---- Predictions ------------------------------------------------------------------------------------

TEST(TailPredictions, RhoTildeSolvesTheSupportEquations) {
  const Planted p = planted(kDataSeed);
  for (const double nu : {0.5, 1.0, 2.0}) {
    const auto pred = loss_tails::poly_exponential_prediction(p.Xt, p.mm, nu);
    // planted2's support vectors are linearly independent, so x̃_nᵀρ̃ = −(ln α_n)/ν exactly on S.
    for (const int n : p.mm.support) EXPECT_NEAR(p.Xt.row(n).dot(pred.rho_tilde), -std::log(p.mm.alpha(n)) / nu, 1e-9);
    EXPECT_GT(pred.gap_constant, 0);
    EXPECT_NEAR(pred.margin_gap(3.0), pred.gap_constant / std::pow(3.0, nu), 1e-15);
    EXPECT_NEAR(pred.angle_gap(3.0), pred.angle_constant / std::pow(3.0, 2 * nu), 1e-15);
  }
  // The Fig. 1 replica has α = 1/4 on each support vector: ρ̃ ∥ ŵ, so both constants vanish.
  const MatrixXd fig1 = separable::make_fig1_replica(3).absorbed();
  const auto mm = separable::solve_max_margin(fig1);
  const auto pred = loss_tails::poly_exponential_prediction(fig1, mm, 1.0);
  EXPECT_NEAR(pred.gap_constant, 0, 1e-12);
  EXPECT_NEAR(pred.angle_constant, 0, 1e-20);
}

TEST(TailPredictions, PolynomialLimitDirection) {
  const Planted p = planted(kDataSeed);
  const VectorXd w_hat_unit = p.mm.w_hat.normalized();
  std::map<double, double> angles;
  for (const double k : {1.0, 2.0, 16.0, 64.0}) {
    const VectorXd v = loss_tails::polynomial_limit_direction(p.Xt, k, p.mm.w_hat);
    EXPECT_NEAR(v.norm(), 1.0, 1e-14);
    EXPECT_LT(loss_tails::fixed_point_residual(p.Xt, k, v), 1e-10) << "v ∝ Σ (x̃ᵀv)^{−k−1} x̃";
    // v* minimises Σ (x̃ᵀv)^{−k} on the unit sphere: no nearby unit vector does better.
    const auto objective = [&](const VectorXd& u) { return (p.Xt * u).array().pow(-k).sum(); };
    Rng rng(static_cast<std::uint64_t>(k));
    for (int i = 0; i < 50; ++i) {
      VectorXd delta(5);
      for (int j = 0; j < 5; ++j) delta(j) = rng.normal();
      const VectorXd u = (v + 1e-3 * delta).normalized();
      EXPECT_GE(objective(u), objective(v) * (1 - 1e-14));
    }
    // Heavier-than-exponential tails weigh every margin: v* ≠ ŵ.
    angles[k] = 0.5 * (v - w_hat_unit).squaredNorm();
    EXPECT_GT(angles[k], 1e-6);
  }
  // As k → ∞ the smallest margins dominate Σ u^{−k} and v* → ŵ/‖ŵ‖ (not monotone for small k).
  EXPECT_LT(angles[16.0], angles[1.0]);
  EXPECT_LT(angles[64.0], angles[16.0] / 5);
}

// ---- Acceptance tests of separable.md §3.7 ---------------------------------------------------------

// T3.1: poly-exponential tails, η = 1/σ_max², T = 1e6. ν ∈ {1, 2}: the gap is within 20% of C_ν/g^ν
// and decreases on [1e4, 1e6]; all ν: angle gap < 2e-2. Negative control: the constant of the wrong
// ν misses by far more than 20%.
TEST(TailsPaper, T3_1_PolyExponentialTails) {
  constexpr std::int64_t kT = 1'000'000;
  std::map<double, double> final_gap, final_g;
  for (const double nu : {0.5, 1.0, 2.0}) {
    auto spec = base_spec(kT);
    spec.set_loss(pb::LossTailsSpec::LOSS_POLY_EXPONENTIAL);
    spec.set_nu(nu);
    spec.set_lr(1);
    spec.set_lr_rule(pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ);
    const MemoryRecorder rec = run_kind(spec);
    const double gap = rec.last("observables/margin_gap");
    const double pred = rec.last("theory/margin_gap");
    const double angle = rec.last("observables/angle_gap");
    std::printf("nu=%g: gap(1e4)=%.5g (C/g^nu %.5g), gap(1e6)=%.5g (C/g^nu %.5g), angle gap %.3g, g=%.4g\n", nu,
                rec.at("observables/margin_gap", 10'000), rec.at("theory/margin_gap", 10'000), gap, pred, angle,
                rec.last("observables/g"));
    EXPECT_LT(angle, 2e-2) << "nu=" << nu;
    if (nu >= 1) {
      EXPECT_LT(std::abs(gap - pred), 0.2 * pred) << "nu=" << nu;
      const auto& s = rec.series.at("observables/margin_gap");
      for (std::size_t i = 1; i < s.step.size(); ++i) {
        if (s.step[i - 1] >= 10'000) {
          EXPECT_LE(s.value[i][0], s.value[i - 1][0]) << "t=" << s.step[i];
        }
      }
      EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
    } else {
      EXPECT_NE(rec.text_attrs.at("verdict_detail").find("not checked"), std::string::npos);
    }
    final_gap[nu] = gap;
    final_g[nu] = rec.last("observables/g");
  }
  // Negative control: C_1/g (the exponential-tail law) for the ν = 2 run, and C_2/g² for ν = 1.
  const Planted p = planted(kDataSeed);
  const auto c1 = loss_tails::poly_exponential_prediction(p.Xt, p.mm, 1.0);
  const auto c2 = loss_tails::poly_exponential_prediction(p.Xt, p.mm, 2.0);
  EXPECT_GT(std::abs(final_gap[2.0] - c1.margin_gap(final_g[2.0])), 0.2 * c1.margin_gap(final_g[2.0]));
  EXPECT_GT(std::abs(final_gap[1.0] - c2.margin_gap(final_g[1.0])), 0.2 * c2.margin_gap(final_g[1.0]));
}

// T3.2: polynomial tails, η = 0.25/max‖x̃‖², T = 2e6: w/‖w‖ → v* (1 − cos < 1e-6), not ŵ
// (1 − cos > 3e-3): the max-margin prediction fails for heavy tails.
TEST(TailsPaper, T3_2_PolynomialTailsDoNotGiveMaxMargin) {
  for (const double k : {1.0, 2.0}) {
    auto spec = base_spec(2'000'000);
    spec.set_loss(pb::LossTailsSpec::LOSS_POLYNOMIAL);
    spec.set_k(k);
    spec.set_lr(0.25);
    spec.set_lr_rule(pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM);
    spec.set_allow_large_step(true);  // above 2/(k(k+1) σ_max²); stable in practice (separable.md §3.7)
    const MemoryRecorder rec = run_kind(spec);
    const double to_vstar = rec.last("observables/angle_gap_vstar");
    const double to_w_hat = rec.last("observables/angle_gap");
    std::printf("k=%g: 1-cos(w,v*)=%.3g 1-cos(w,w_hat)=%.4g (1-cos(v*,w_hat)=%.4g) margin %.4g vs gamma %.4g\n", k,
                to_vstar, to_w_hat, rec.last("theory/angle_gap"), rec.last("observables/normalized_margin"),
                1 / Eigen::Map<const VectorXd>(rec.arrays.at("parameters/w_hat").data(), 5).norm());
    EXPECT_LT(to_vstar, 1e-6);
    EXPECT_GT(to_w_hat, 3e-3);
    EXPECT_NEAR(to_w_hat, rec.last("theory/angle_gap"), 1e-3 * to_w_hat);
    EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
  }
}

// T3.3: exp loss, w(0) = 0, T = 1e5, η₀ = 4/max‖x̃‖². NGD-√: gap(1e5) < 0.5 gap_fixed(1e5) and
// gap √t/ln t < 2 for t ∈ {1e3, 1e4, 1e5}; NGD-const: gap(1e5) < 1e-3, and (derived here) it equals
// C_1/g, the exponential-tail law in terms of g, within 5%.
TEST(TailsPaper, T3_3_AggressiveSteps) {
  for (const auto schedule : {pb::LossTailsSpec::SCHEDULE_NGD_SQRT, pb::LossTailsSpec::SCHEDULE_NGD_CONST}) {
    auto spec = base_spec(100'000);
    spec.set_loss(pb::LossTailsSpec::LOSS_EXPONENTIAL);
    spec.set_schedule(schedule);
    spec.set_lr(4);
    spec.set_lr_rule(pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM);
    const MemoryRecorder rec = run_kind(spec);
    const double gap = rec.last("observables/margin_gap");
    const double fixed = rec.last("observables/fixed_step_margin_gap");
    std::printf("schedule=%d: gap(1e5)=%.4g fixed-step gap %.4g C1/g %.4g |w|=%.4g\n", schedule, gap, fixed,
                rec.last("theory/margin_gap"), rec.last("observables/norm"));
    if (schedule == pb::LossTailsSpec::SCHEDULE_NGD_SQRT) {
      EXPECT_LT(gap, 0.5 * fixed);
      for (const std::int64_t t : {1'000, 10'000, 100'000}) {
        const double rate = rec.at("observables/margin_gap", t) * std::sqrt(t) / std::log(t);
        EXPECT_LT(rate, 2) << "t=" << t;
      }
    } else {
      EXPECT_LT(gap, 1e-3);
      EXPECT_NEAR(gap, rec.last("theory/margin_gap"), 0.05 * gap);
      EXPECT_GT(rec.last("observables/norm"), 5e3);
      EXPECT_TRUE(std::isfinite(rec.last("observables/log_loss")));
    }
    EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
  }
}

// ---- Bad input -------------------------------------------------------------------------------------

TEST(TailsBadInput, PrepareNamesTheField) {
  auto good = base_spec(10);
  good.set_lr(1);
  good.set_lr_rule(pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ);
  EXPECT_EQ(error_field(good), "");
  auto s = good;
  s.set_nu(0);
  EXPECT_EQ(error_field(s), "nu");
  s.set_nu(-1);
  EXPECT_EQ(error_field(s), "nu");
  s.set_nu(std::nan(""));
  EXPECT_EQ(error_field(s), "nu");
  s.set_nu(100);
  EXPECT_EQ(error_field(s), "nu");
  s = good;
  s.set_k(2);  // k with the poly-exponential loss
  EXPECT_EQ(error_field(s), "k");
  s.set_loss(pb::LossTailsSpec::LOSS_POLYNOMIAL);
  s.set_k(0);
  EXPECT_EQ(error_field(s), "k");
  s.set_k(-2);
  EXPECT_EQ(error_field(s), "k");
  s.set_k(1);
  s.set_nu(1);  // ν with the polynomial loss
  EXPECT_EQ(error_field(s), "nu");
  s = good;
  s.clear_lr();
  EXPECT_EQ(error_field(s), "lr");
  s.set_lr(0);
  EXPECT_EQ(error_field(s), "lr");
  s.set_lr(std::numeric_limits<double>::infinity());
  EXPECT_EQ(error_field(s), "lr");
  s = good;
  s.set_lr(10);  // 10/σ_max² is above 2/(β σ_max²) for β = sup ℓ″ of the ν = 1 loss (e^{-1})
  EXPECT_EQ(error_field(s), "lr");
  s.set_allow_large_step(true);
  EXPECT_EQ(error_field(s), "");
  s.set_allow_large_step(false);
  s.set_schedule(pb::LossTailsSpec::SCHEDULE_NGD_CONST);  // no a-priori bound for normalised steps
  EXPECT_EQ(error_field(s), "");
  s = good;
  s.clear_steps();
  EXPECT_EQ(error_field(s), "steps");
  s.set_steps(0);
  EXPECT_EQ(error_field(s), "steps");
  s = good;
  s.set_points_per_decade(0);
  EXPECT_EQ(error_field(s), "points_per_decade");
  s = good;
  s.clear_dataset();
  EXPECT_EQ(error_field(s), "dataset");
  s = good;
  s.mutable_dataset()->mutable_planted2()->set_d(0);
  EXPECT_EQ(error_field(s), "dataset.planted2.d");
  s = good;
  s.mutable_tolerance()->set_margin_gap_rel(-1);
  EXPECT_EQ(error_field(s), "tolerance.margin_gap_rel");
  s = good;
  s.mutable_tolerance()->set_decrease_window(0.5);
  EXPECT_EQ(error_field(s), "tolerance.decrease_window");
}

TEST(TailsBadInput, CampaignLoaderReportsFileLineAndField) {
  const std::string spec =
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  loss_tails {\n    loss: LOSS_POLY_EXPONENTIAL\n"
      "    nu: -0.5\n    lr: 1\n    steps: 10\n    dataset { planted2 {} }\n  }\n}\n";
  const std::string e = test_util::campaign_error(spec);
  EXPECT_NE(e.find("spec.textproto:7:5: experiments[0].loss_tails.nu: must be in (0, 16] (got -0.5)"), std::string::npos)
      << e;
}

// ---- Validation without the data ---------------------------------------------------------------------

TEST(TailsValidation, NormalisedStepsAndScaleFreeStepsBuildNoData) {
  const std::string text =
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n"
      "  sweep { field: \"dataset.planted2.seed\" numbers: [427001, 427002, 427003] }\n"
      "  sweep { field: \"schedule\" values: [\"SCHEDULE_FIXED\", \"SCHEDULE_NGD_SQRT\"] }\n"
      "  loss_tails { loss: LOSS_EXPONENTIAL lr: 1 lr_rule: LR_OVER_SIGMA_MAX_SQ steps: 1000\n"
      "    dataset { planted2 { d: 40 n: 400 } } }\n}\n";
  const auto work = separable_work_of([&] { EXPECT_EQ(test_util::campaign_error(text), ""); });
  EXPECT_EQ(work.datasets_built, 0u);
  EXPECT_EQ(work.max_margin_solves, 0u);
}

// On planted2 data too large to build in prepare(), the step-size check is split: prepare()
// rejects the steps that fail on any data, run() makes the check with the data. Together they
// must decide exactly as the check computed with the data (as prepare() did before): the step of
// lr_rule must be finite and > 0 and, for the fixed schedule, below 2/(β σ_max²).
TEST(TailsValidation, SplitStepCheckAgreesWithTheDataCheck) {
  const double ulp = std::numeric_limits<double>::epsilon();
  constexpr int kD = 20, kN = 60;  // n·d² = 24000: above kValidationBuildWork
  ASSERT_GT(static_cast<double>(kN) * kD * kD, kValidationBuildWork);
  std::uint64_t seed = 427100;
  int rejected_by_prepare = 0;
  struct LossCase {
    pb::LossTailsSpec::Loss loss;
    TailLoss tail;
  };
  const LossCase losses[] = {{pb::LossTailsSpec::LOSS_LOGISTIC, {Tail::Logistic, 1.0}},
                             {pb::LossTailsSpec::LOSS_POLYNOMIAL, {Tail::Polynomial, 2.0}},
                             {pb::LossTailsSpec::LOSS_POLY_EXPONENTIAL, {Tail::PolyExponential, 2.0}}};
  for (const auto& loss : losses) {
    for (const auto rule : {pb::LossTailsSpec::LR_ABSOLUTE, pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ,
                            pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM}) {
      for (const auto schedule : {pb::LossTailsSpec::SCHEDULE_FIXED, pb::LossTailsSpec::SCHEDULE_NGD_CONST}) {
        for (const bool allow : {false, true}) {
          for (const double factor : {1e-3, 1 - 1e-9, 1 - ulp, 1.0, 1 + ulp, 1 + 1e-8, 2.0}) {
            ++seed;  // data of its own, so nothing comes from the cache
            const MatrixXd Xt = separable::make_planted2(kD, kN, seed).data.absorbed();
            const double sigma = separable::sigma_max(Xt);
            const double max_sq = Xt.rowwise().squaredNorm().maxCoeff();
            const double beta = loss.tail.smoothness();
            const double bound = 2.0 / (beta * sigma * sigma);
            const double scale = rule == pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ ? 1.0 / (sigma * sigma)
                                 : rule == pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM ? 1.0 / max_sq
                                                                                  : 1.0;
            const double lr = bound / scale * factor;
            const double step = rule == pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ ? lr / (sigma * sigma)
                                : rule == pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM ? lr / max_sq
                                                                                 : lr;
            const bool rejected = !(step > 0) || !std::isfinite(step) ||
                                  (schedule == pb::LossTailsSpec::SCHEDULE_FIXED && step >= bound && !allow);
            pb::LossTailsSpec s;
            s.set_loss(loss.loss);
            if (loss.loss == pb::LossTailsSpec::LOSS_POLYNOMIAL) s.set_k(loss.tail.exponent);
            if (loss.loss == pb::LossTailsSpec::LOSS_POLY_EXPONENTIAL) s.set_nu(loss.tail.exponent);
            s.set_lr(lr);
            s.set_lr_rule(rule);
            s.set_schedule(schedule);
            s.set_compare_fixed_step(false);
            s.set_allow_large_step(allow);
            s.set_steps(3);
            auto* p = s.mutable_dataset()->mutable_planted2();
            p->set_d(kD);
            p->set_n(kN);
            p->set_seed(seed);
            const auto work = separable_work_of([&] { (void)error_field(s); });
            EXPECT_EQ(work.datasets_built, 0u);
            const std::string where = test_util::rejected_at(kind(), s, context(), "lr");
            EXPECT_EQ(!where.empty(), rejected) << "loss " << loss.loss << " rule " << rule << " schedule " << schedule
                                                << " allow " << allow << " lr " << lr << " rejected at " << where;
            if (where == "prepare") ++rejected_by_prepare;
          }
        }
      }
    }
  }
  // lr/σ² with the fixed schedule above the bound: factors 1 + 1e-8 and 2, for each loss.
  EXPECT_EQ(rejected_by_prepare, 6);
}

}  // namespace
}  // namespace gdlab
