// Experiment kind `loss_tails`: full-batch GD from w(0) = 0 on linearly separable data with a linear
// homogeneous model, for losses of different tails and for normalised step sizes, checked against
// Nacson, Lee, Gunasekar, Savarese, Srebro, Soudry, "Convergence of Gradient Descent on Separable
// Data" (AISTATS 2019, arXiv:1803.01905), in the calibrated form of separable.md §3.7:
//   T3.1  tail exp(−u^ν): w ≈ g ŵ + g^{1−ν} ρ̃ and margin gap ≈ C_ν/g^ν, g = ŵᵀw/‖ŵ‖²;
//   T3.2  tail u^{−k}: w/‖w‖ → v* = argmin_{‖v‖≤1} Σ_n (x̃_nᵀv)^{−k} ≠ ŵ/‖ŵ‖;
//   T3.3  exp loss with NGD-√ (η₀/(L√(t+1))) or NGD-const (η₀/L) steps: a much smaller margin gap.
//
// Records on a log grid (separable.md §0.6, §3.6): w, ‖w‖, ln L and L, normalised margin, margin gap,
// angle gap, direction error, g; for super-polynomial tails the offset error ‖P⊥w/g^{1−ν} − P⊥ρ̃‖
// (and, for fixed steps with an e^{−u} tail, the §0.6 residual ‖w − ŵ ln t − w̃(η)‖ and loss ratio);
// for polynomial tails 1 − cos(w, v*). Under theory/: C_ν/g^ν and A_ν/g^{2ν} at the measured g
// (super-polynomial), or the constants of v* (polynomial). NGD tasks also record the fixed-step
// margin gap with η = η₀ (observables/fixed_step_margin_gap). Ground truth (ŵ, α, S, ρ̃ or v*) under
// parameters/, and a verdict attribute with the criteria of §3.7 that apply to the task.
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/loss_tails.h"
#include "worker/numerics/separable.h"

namespace gdlab {
namespace {

using loss_tails::Schedule;
using loss_tails::Tail;
using loss_tails::TailLoss;
using separable::MatrixXd;
using separable::VectorXd;

// Random stream of the dataset (see TaskContext): experiment-wide, as in separable_gd.
constexpr std::uint64_t kDatasetStream = 1;
// Largest tail exponent ν or k accepted (u^ν and u^{−k} stay far from overflow for the margins GD
// reaches in ≤ 1e12 steps).
constexpr double kMaxExponent = 16.0;
// The NGD-√ rate criterion of T3.3 starts at t = 1e3 (separable.md §3.7).
constexpr std::int64_t kRateCheckFrom = 1000;

struct LossTailsConfig {
  std::shared_ptr<const SeparableDataSource> source;
  TailLoss loss;
  std::string loss_name;
  Schedule schedule = Schedule::Fixed;
  std::string schedule_name;
  double spec_lr = 0;  // the spec's lr, read through lr_rule
  pb::LossTailsSpec::LrRule lr_rule = pb::LossTailsSpec::LR_ABSOLUTE;
  bool allow_large_step = false;
  std::string lr_description;
  std::int64_t steps = 0;
  int points_per_decade = 10;
  bool compare_fixed_step = true;
  pb::LossTailsTolerance tol;
};

// What run() derives from the data: the step and the ground truth of separable.md §3.
struct LossTailsTruth {
  double lr = 0;  // η or η₀
  double sigma_max = 0;
  double max_sq_norm = 0;
  separable::MaxMargin max_margin;
  loss_tails::TailPrediction prediction;  // super-polynomial tails
  VectorXd v_star;                        // polynomial tails
  double vstar_angle_gap = 0;             // 1 − cos(v*, ŵ)
  double vstar_margin = 0;                // min_n x̃_nᵀv*
  VectorXd w_tilde;                       // fixed step with an e^{−u} tail: w̃(η) of §0.5
};

// The step η (or η₀) of the spec's lr_rule on `data`, checked: a finite number > 0 and, for the
// fixed schedule unless allow_large_step, below the Lemma 1 bound. Throws SpecError on "lr".
// prepare() and run() both call it, so the task runs with the step it was checked with.
double checked_step(const LossTailsConfig& c, const SeparableData& data) {
  double lr = c.spec_lr;
  switch (c.lr_rule) {
    case pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ:
      lr = c.spec_lr / (data.sigma_max() * data.sigma_max());
      break;
    case pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM:
      lr = c.spec_lr / data.max_sq_norm();
      break;
    default:
      break;
  }
  if (!(lr > 0) || !std::isfinite(lr)) throw SpecError("lr", "the step size " + fmt(lr) + " is not a finite number > 0");
  if (c.schedule == Schedule::Fixed) {
    // Soudry et al. Lemma 1 (separable.md §0.3) with β = sup ℓ″ of the chosen loss.
    const double beta = c.loss.smoothness();
    const double sigma_max = data.sigma_max();
    const double bound = 2.0 / (beta * sigma_max * sigma_max);
    if (lr >= bound && !c.allow_large_step)
      throw SpecError("lr", "step size eta=" + fmt(lr) + " is not below 2/(beta sigma_max^2)=" + fmt(bound) +
                                " (beta=" + fmt(beta) + " for " + c.loss_name +
                                "; Lemma 1, separable.md §0.3); set allow_large_step: true to run it anyway");
  }
  return lr;
}

// The part of checked_step that needs no data, for generated data too large to build in
// prepare(): with the fixed schedule and LR_OVER_SIGMA_MAX_SQ, η = lr/σ² against the bound
// 2/(βσ²) is lr against 2/β, so a step above it fails on any data. Throws the SpecError on "lr"
// then; any other outcome is left to run()'s check.
void reject_step_above_any_bound(const LossTailsConfig& c) {
  if (c.schedule != Schedule::Fixed || c.allow_large_step || c.lr_rule != pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ)
    return;
  const double beta = c.loss.smoothness();
  // The margin keeps clear of the last bits by which the check computed with σ may round.
  if (c.spec_lr * beta / 2.0 > 1.0 + kScaleFreeMargin)
    throw SpecError("lr", "step size eta=" + c.lr_description + " is not below 2/(beta sigma_max^2): lr must be below "
                          "2/beta=" + fmt(2.0 / beta) + " (beta=" + fmt(beta) + " for " + c.loss_name +
                              "; Lemma 1, separable.md §0.3); set allow_large_step: true to run it anyway");
}

// True when the tail is e^{−u} asymptotically (so Soudry et al.'s w̃ and ρ_L apply to fixed steps).
bool exponential_tail(const TailLoss& loss) {
  return loss.tail == Tail::Exponential || loss.tail == Tail::Logistic ||
         (loss.tail == Tail::PolyExponential && loss.exponent == 1.0);
}

// The ground truth of the task on `data` (separable.md §3): the checked step, the max margin, and
// ρ̃ with the gap constants (super-polynomial tails), w̃(η) (fixed step, e^{−u} tail) or v* and its
// constants (polynomial tails).
LossTailsTruth derive_truth(const LossTailsConfig& c, const SeparableData& data) {
  const MatrixXd& Xt = data.Xt();
  LossTailsTruth t;
  t.lr = checked_step(c, data);
  t.sigma_max = data.sigma_max();
  t.max_sq_norm = data.max_sq_norm();
  t.max_margin = data.max_margin();
  if (c.loss.super_polynomial()) {
    t.prediction = loss_tails::poly_exponential_prediction(Xt, t.max_margin, c.loss.tail_nu());
    if (c.schedule == Schedule::Fixed && exponential_tail(c.loss))
      t.w_tilde = separable::solve_w_tilde(Xt, t.max_margin, t.lr, VectorXd::Zero(Xt.cols()));
  } else {
    t.v_star = loss_tails::polynomial_limit_direction(Xt, c.loss.exponent, t.max_margin.w_hat);
    const VectorXd w_hat_unit = t.max_margin.w_hat.normalized();
    t.vstar_angle_gap = 0.5 * (t.v_star - w_hat_unit).squaredNorm();
    t.vstar_margin = (Xt * t.v_star).minCoeff();
  }
  return t;
}

class LossTailsTask : public PreparedTask {
 public:
  explicit LossTailsTask(LossTailsConfig config) : c_(std::move(config)) {}

  // The configuration only: nothing here needs the data built.
  std::string summary() const override {
    std::ostringstream s;
    s << "N=" << c_.source->rows() << " d=" << c_.source->cols() << " " << c_.loss_name << " " << c_.schedule_name
      << " lr=";
    if (c_.lr_rule == pb::LossTailsSpec::LR_ABSOLUTE)
      s << fmt(c_.spec_lr) << " (" << c_.lr_description << ")";
    else
      s << c_.lr_description;
    s << " T=" << c_.steps;
    return s.str();
  }

  void run(Recorder& rec) override {
    const SeparableData& data = c_.source->data();
    xt_ = &data.Xt();
    t_ = derive_truth(c_, data);
    const auto& mm = t_.max_margin;
    const auto d = static_cast<std::uint64_t>(xt_->cols());
    const bool super_poly = c_.loss.super_polynomial();
    const double nu = c_.loss.tail_nu();
    put_max_margin_parameters(rec, data.dataset(), mm, nullptr, t_.sigma_max);
    rec.put_array("parameters/max_sq_norm", {}, std::vector<double>{t_.max_sq_norm});
    if (super_poly) {
      rec.put_array("parameters/rho_tilde", {d}, as_span(t_.prediction.rho_tilde));
      rec.put_array("parameters/gap_constant", {}, std::vector<double>{t_.prediction.gap_constant});
      rec.put_array("parameters/angle_constant", {}, std::vector<double>{t_.prediction.angle_constant});
    } else {
      rec.put_array("parameters/v_star", {d}, as_span(t_.v_star));
    }
    if (t_.w_tilde.size()) rec.put_array("parameters/w_tilde", {d}, as_span(t_.w_tilde));
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("tail_exponent", c_.loss.exponent);
    rec.set_attribute("tail_nu", super_poly ? nu : std::numeric_limits<double>::quiet_NaN());
    rec.set_attribute("schedule", c_.schedule_name);
    rec.set_attribute("lr", t_.lr);
    rec.set_attribute("steps", static_cast<double>(c_.steps));

    const auto grid = separable::log_grid(c_.steps, c_.points_per_decade);
    loss_tails::TailGdOptions opt;
    opt.loss = c_.loss;
    opt.schedule = c_.schedule;
    opt.lr = t_.lr;
    opt.steps = c_.steps;

    // NGD: the fixed-step baseline with η = η₀ first (separable.md §3.7 T3.3 compares the two).
    double fixed_gap_at_end = std::numeric_limits<double>::quiet_NaN();
    std::string baseline_problem;
    if (c_.schedule != Schedule::Fixed && c_.compare_fixed_step) {
      loss_tails::TailGdOptions base = opt;
      base.schedule = Schedule::Fixed;
      try {
        loss_tails::run_tail_gd(*xt_, base, grid, [&](std::int64_t t, const VectorXd& w) {
          const auto m = measure(w);
          rec.append("observables/fixed_step_margin_gap", t, static_cast<double>(t), m.margin_gap);
          fixed_gap_at_end = m.margin_gap;
        });
      } catch (const NumericError& e) {
        baseline_problem = e.what();
        fixed_gap_at_end = std::numeric_limits<double>::quiet_NaN();
      }
    }

    std::vector<std::int64_t> steps_seen;
    std::vector<double> gaps;
    loss_tails::TailMeasurements last;
    double last_pred_gap = std::numeric_limits<double>::quiet_NaN();
    loss_tails::run_tail_gd(*xt_, opt, grid, [&](std::int64_t t, const VectorXd& w) {
      // Time axis: the step index t (the NGD steps have no single gradient-flow time scale).
      const double time = static_cast<double>(t);
      const auto m = measure(w);
      last = m;
      steps_seen.push_back(t);
      gaps.push_back(m.margin_gap);
      rec.append("observables/w", t, time, as_span(w));
      rec.append("observables/norm", t, time, m.norm);
      rec.append("observables/log_loss", t, time, m.log_loss);
      rec.append("observables/loss", t, time, m.loss);
      rec.append("observables/normalized_margin", t, time, m.normalized_margin);
      rec.append("observables/margin_gap", t, time, m.margin_gap);
      rec.append("observables/angle_gap", t, time, m.angle_gap);
      rec.append("observables/direction_error", t, time, m.direction_error);
      rec.append("observables/g", t, time, m.g);
      if (super_poly) {
        rec.append("observables/offset_error", t, time, m.offset_error);
        // T3.1 theory at the measured g: C_ν/g^ν and A_ν/g^{2ν}.
        last_pred_gap = t_.prediction.margin_gap(m.g);
        rec.append("theory/margin_gap", t, time, last_pred_gap);
        rec.append("theory/angle_gap", t, time, t_.prediction.angle_gap(m.g));
      } else {
        // T3.2 theory: the constants of the limit direction v*.
        rec.append("observables/angle_gap_vstar", t, time, m.angle_gap_vstar);
        rec.append("theory/angle_gap", t, time, t_.vstar_angle_gap);
        rec.append("theory/normalized_margin", t, time, t_.vstar_margin);
        rec.append("theory/margin_gap", t, time, 1.0 / mm.w_hat.norm() - t_.vstar_margin);
      }
      if (t_.w_tilde.size() && t >= 1) {
        // separable.md §0.6 for the e^{−u} tail with a fixed step: r = w − ŵ ln t − w̃(η), ρ_L = tηL/‖ŵ‖².
        rec.append("observables/residual", t, time,
                   (w - separable::predicted_w(mm.w_hat, t_.w_tilde, t)).norm());
        rec.append("observables/loss_ratio", t, time,
                   static_cast<double>(t) * t_.lr * m.loss / mm.w_hat.squaredNorm());
      }
    });
    verdict(rec, steps_seen, gaps, last, last_pred_gap, fixed_gap_at_end, baseline_problem);
  }

 private:
  loss_tails::TailMeasurements measure(const VectorXd& w) const {
    return loss_tails::measure(*xt_, c_.loss, w, t_.max_margin.w_hat, t_.v_star, t_.prediction.rho_tilde,
                               c_.loss.tail_nu());
  }

  void verdict(Recorder& rec, const std::vector<std::int64_t>& steps, const std::vector<double>& gaps,
               const loss_tails::TailMeasurements& m, double pred_gap, double fixed_gap,
               const std::string& baseline_problem) const {
    const auto& tol = c_.tol;
    bool pass = true;
    std::string detail;
    auto note = [&](const std::string& text) { detail += (detail.empty() ? "" : "; ") + text; };
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      note(text + (ok ? "" : " FAIL"));
    };
    const double T = static_cast<double>(c_.steps);
    if (!c_.loss.super_polynomial()) {
      // T3.2: the polynomial tail's limit direction is v*, not ŵ.
      check(m.angle_gap_vstar < tol.vstar_angle_gap_max(),
            "T3.2 1-cos(w,v*) " + fmt(m.angle_gap_vstar) + " < " + fmt(tol.vstar_angle_gap_max()));
      check(m.angle_gap > tol.w_hat_angle_gap_min(),
            "T3.2 1-cos(w,w_hat) " + fmt(m.angle_gap) + " > " + fmt(tol.w_hat_angle_gap_min()) +
                " (1-cos(v*,w_hat) = " + fmt(t_.vstar_angle_gap) + ")");
    } else if (c_.schedule == Schedule::Fixed) {
      // T3.1: margin gap ≈ C_ν/g^ν, decreasing, and the direction converges to ŵ.
      const double nu = c_.loss.tail_nu();
      const double rel = std::abs(m.margin_gap - pred_gap) / std::abs(pred_gap);
      const std::string gap_text = "T3.1 margin_gap " + fmt(m.margin_gap) + " vs C_nu/g^nu " + fmt(pred_gap) +
                                   " (rel. error " + fmt(rel) + ")";
      if (nu >= tol.gap_check_min_nu()) {
        check(rel <= tol.margin_gap_rel(), gap_text + " <= " + fmt(tol.margin_gap_rel()));
        const double from = T / tol.decrease_window();
        bool decreasing = true;
        for (std::size_t i = 1; i < steps.size(); ++i) {
          if (static_cast<double>(steps[i - 1]) >= from && gaps[i] > gaps[i - 1]) decreasing = false;
        }
        check(decreasing, "T3.1 margin gap decreasing on [T/" + fmt(tol.decrease_window()) + ", T]");
      } else {
        note(gap_text + " not checked (nu < " + fmt(tol.gap_check_min_nu()) + ": pre-asymptotic)");
      }
      check(m.angle_gap < tol.angle_gap_max(),
            "T3.1 angle_gap " + fmt(m.angle_gap) + " < " + fmt(tol.angle_gap_max()));
    } else if (c_.schedule == Schedule::NgdSqrt) {
      // T3.3, NGD-√: better than the fixed step, and gap·√t/ln t bounded (the ln t/√t rate).
      if (!c_.compare_fixed_step) {
        note("T3.3 comparison with the fixed step not run (compare_fixed_step: false)");
      } else if (!baseline_problem.empty()) {
        check(false, "T3.3 fixed-step baseline diverged: " + baseline_problem);
      } else {
        check(m.margin_gap < tol.ngd_sqrt_gap_ratio() * fixed_gap,
              "T3.3 margin_gap " + fmt(m.margin_gap) + " < " + fmt(tol.ngd_sqrt_gap_ratio()) + " x fixed-step gap " +
                  fmt(fixed_gap));
      }
      double worst = 0;
      for (std::size_t i = 0; i < steps.size(); ++i) {
        if (steps[i] < kRateCheckFrom) continue;
        const double t = static_cast<double>(steps[i]);
        worst = std::max(worst, gaps[i] * std::sqrt(t) / std::log(t));
      }
      if (c_.steps >= kRateCheckFrom) {
        check(worst < tol.ngd_sqrt_rate_max(),
              "T3.3 max over t in [1e3, T] of gap sqrt(t)/ln(t) = " + fmt(worst) + " < " + fmt(tol.ngd_sqrt_rate_max()));
      }
      note("C_1/g = " + fmt(pred_gap));
    } else {
      // T3.3, NGD-const: the O(1/t) law; the gap at T is small.
      check(m.margin_gap < tol.ngd_const_gap_max(),
            "T3.3 margin_gap " + fmt(m.margin_gap) + " < " + fmt(tol.ngd_const_gap_max()));
      note("C_1/g = " + fmt(pred_gap) + ", gap*eta0*T = " + fmt(m.margin_gap * t_.lr * T));
      if (c_.compare_fixed_step) note("fixed-step gap " + fmt(fixed_gap));
    }
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  LossTailsConfig c_;
  // Set by run(): the absorbed data and what is derived from them.
  const MatrixXd* xt_ = nullptr;
  LossTailsTruth t_;
};

class LossTailsKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "loss_tails"; }

  // Checks every field with bounded work: builds the data for the step-size check only when they
  // are cheap to build (SeparableDataSource::cheap_to_build), and solves no max margin unless the
  // data were read from a file. The ground truth of generated data (max margin, ρ̃, w̃, v*) is
  // computed by run().
  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::LossTailsSpec&>(message);
    LossTailsConfig c;
    switch (s.loss()) {
      case pb::LossTailsSpec::LOSS_POLYNOMIAL:
        c.loss.tail = Tail::Polynomial;
        break;
      case pb::LossTailsSpec::LOSS_EXPONENTIAL:
        c.loss.tail = Tail::Exponential;
        break;
      case pb::LossTailsSpec::LOSS_LOGISTIC:
        c.loss.tail = Tail::Logistic;
        break;
      default:
        c.loss.tail = Tail::PolyExponential;
    }
    if (s.has_nu() && c.loss.tail != Tail::PolyExponential)
      throw SpecError("nu", "is the exponent of loss: LOSS_POLY_EXPONENTIAL and is not used by this loss");
    if (s.has_k() && c.loss.tail != Tail::Polynomial)
      throw SpecError("k", "is the exponent of loss: LOSS_POLYNOMIAL and is not used by this loss");
    if (c.loss.tail == Tail::PolyExponential) {
      if (!(s.nu() > 0 && s.nu() <= kMaxExponent))
        throw SpecError("nu", "must be in (0, " + fmt(kMaxExponent) + "] (got " + fmt(s.nu()) + ")");
      c.loss.exponent = s.nu();
      c.loss_name = "poly_exponential(nu=" + fmt(s.nu()) + ")";
    } else if (c.loss.tail == Tail::Polynomial) {
      if (!(s.k() > 0 && s.k() <= kMaxExponent))
        throw SpecError("k", "must be in (0, " + fmt(kMaxExponent) + "] (got " + fmt(s.k()) + ")");
      c.loss.exponent = s.k();
      c.loss_name = "polynomial(k=" + fmt(s.k()) + ")";
    } else {
      c.loss.exponent = 1.0;
      c.loss_name = c.loss.tail == Tail::Exponential ? "exponential" : "logistic";
    }
    switch (s.schedule()) {
      case pb::LossTailsSpec::SCHEDULE_NGD_SQRT:
        c.schedule = Schedule::NgdSqrt;
        c.schedule_name = "ngd_sqrt";
        break;
      case pb::LossTailsSpec::SCHEDULE_NGD_CONST:
        c.schedule = Schedule::NgdConst;
        c.schedule_name = "ngd_const";
        break;
      default:
        c.schedule = Schedule::Fixed;
        c.schedule_name = "fixed";
    }
    c.compare_fixed_step = s.compare_fixed_step();

    if (!s.has_steps()) throw SpecError("steps", "required (number of GD steps, >= 1)");
    if (s.steps() < 1 || s.steps() > 1'000'000'000'000LL)
      throw SpecError("steps", "must be in [1, 1e12] (got " + std::to_string(s.steps()) + ")");
    c.steps = s.steps();
    if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
      throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
    c.points_per_decade = s.points_per_decade();

    c.source = std::make_shared<const SeparableDataSource>(s.dataset(), context, kDatasetStream);

    if (!s.has_lr()) throw SpecError("lr", "required (the step size eta or eta0, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    c.spec_lr = s.lr();
    c.lr_rule = s.lr_rule();
    c.allow_large_step = s.allow_large_step();
    switch (c.lr_rule) {
      case pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ:
        c.lr_description = fmt(s.lr()) + "/sigma_max^2";
        break;
      case pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM:
        c.lr_description = fmt(s.lr()) + "/max|x|^2";
        break;
      default:
        c.lr_rule = pb::LossTailsSpec::LR_ABSOLUTE;
        c.lr_description = "absolute";
    }
    // The step-size check with the data when they are cheap to build; otherwise only what it says
    // without them, and run() makes it in full (it always does).
    if (c.source->cheap_to_build())
      checked_step(c, c.source->data());
    else
      reject_step_above_any_bound(c);
    if (!c.source->generated()) c.source->checked_max_margin();

    c.tol = s.tolerance();
    const auto& tol = c.tol;
    const auto positive = [](double v) { return v > 0 && std::isfinite(v); };
    if (!positive(tol.margin_gap_rel())) throw SpecError("tolerance.margin_gap_rel", "must be > 0");
    if (!(tol.gap_check_min_nu() >= 0)) throw SpecError("tolerance.gap_check_min_nu", "must be >= 0");
    if (!(tol.decrease_window() >= 1) || !std::isfinite(tol.decrease_window()))
      throw SpecError("tolerance.decrease_window", "must be >= 1");
    if (!positive(tol.angle_gap_max())) throw SpecError("tolerance.angle_gap_max", "must be > 0");
    if (!positive(tol.vstar_angle_gap_max())) throw SpecError("tolerance.vstar_angle_gap_max", "must be > 0");
    if (!(tol.w_hat_angle_gap_min() >= 0)) throw SpecError("tolerance.w_hat_angle_gap_min", "must be >= 0");
    if (!positive(tol.ngd_sqrt_gap_ratio())) throw SpecError("tolerance.ngd_sqrt_gap_ratio", "must be > 0");
    if (!positive(tol.ngd_sqrt_rate_max())) throw SpecError("tolerance.ngd_sqrt_rate_max", "must be > 0");
    if (!positive(tol.ngd_const_gap_max())) throw SpecError("tolerance.ngd_const_gap_max", "must be > 0");

    return std::make_unique<LossTailsTask>(std::move(c));
  }
};

GDLAB_REGISTER_KIND(LossTailsKind);

}  // namespace
}  // namespace gdlab
