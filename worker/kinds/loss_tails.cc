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
  separable::Dataset data;
  MatrixXd Xt;
  TailLoss loss;
  std::string loss_name;
  Schedule schedule = Schedule::Fixed;
  std::string schedule_name;
  double lr = 0;  // η or η₀
  std::string lr_description;
  std::int64_t steps = 0;
  int points_per_decade = 10;
  bool compare_fixed_step = true;
  double sigma_max = 0;
  double max_sq_norm = 0;
  separable::MaxMargin max_margin;
  loss_tails::TailPrediction prediction;  // super-polynomial tails
  VectorXd v_star;                        // polynomial tails
  double vstar_angle_gap = 0;             // 1 − cos(v*, ŵ)
  double vstar_margin = 0;                // min_n x̃_nᵀv*
  VectorXd w_tilde;                       // fixed step with an e^{−u} tail: w̃(η) of §0.5
  pb::LossTailsTolerance tol;
};

// True when the tail is e^{−u} asymptotically (so Soudry et al.'s w̃ and ρ_L apply to fixed steps).
bool exponential_tail(const TailLoss& loss) {
  return loss.tail == Tail::Exponential || loss.tail == Tail::Logistic ||
         (loss.tail == Tail::PolyExponential && loss.exponent == 1.0);
}

class LossTailsTask : public PreparedTask {
 public:
  explicit LossTailsTask(LossTailsConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    s << "N=" << c_.Xt.rows() << " d=" << c_.Xt.cols() << " " << c_.loss_name << " " << c_.schedule_name
      << " lr=" << fmt(c_.lr) << " (" << c_.lr_description << ") T=" << c_.steps
      << " |S|=" << c_.max_margin.support.size() << " |w_hat|=" << fmt(c_.max_margin.w_hat.norm());
    return s.str();
  }

  void run(Recorder& rec) override {
    const auto& mm = c_.max_margin;
    const auto d = static_cast<std::uint64_t>(c_.Xt.cols());
    const bool super_poly = c_.loss.super_polynomial();
    const double nu = c_.loss.tail_nu();
    put_max_margin_parameters(rec, c_.data, mm, nullptr, c_.sigma_max);
    rec.put_array("parameters/max_sq_norm", {}, std::vector<double>{c_.max_sq_norm});
    if (super_poly) {
      rec.put_array("parameters/rho_tilde", {d}, as_span(c_.prediction.rho_tilde));
      rec.put_array("parameters/gap_constant", {}, std::vector<double>{c_.prediction.gap_constant});
      rec.put_array("parameters/angle_constant", {}, std::vector<double>{c_.prediction.angle_constant});
    } else {
      rec.put_array("parameters/v_star", {d}, as_span(c_.v_star));
    }
    if (c_.w_tilde.size()) rec.put_array("parameters/w_tilde", {d}, as_span(c_.w_tilde));
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("tail_exponent", c_.loss.exponent);
    rec.set_attribute("tail_nu", super_poly ? nu : std::numeric_limits<double>::quiet_NaN());
    rec.set_attribute("schedule", c_.schedule_name);
    rec.set_attribute("lr", c_.lr);
    rec.set_attribute("steps", static_cast<double>(c_.steps));

    const auto grid = separable::log_grid(c_.steps, c_.points_per_decade);
    loss_tails::TailGdOptions opt;
    opt.loss = c_.loss;
    opt.schedule = c_.schedule;
    opt.lr = c_.lr;
    opt.steps = c_.steps;

    // NGD: the fixed-step baseline with η = η₀ first (separable.md §3.7 T3.3 compares the two).
    double fixed_gap_at_end = std::numeric_limits<double>::quiet_NaN();
    std::string baseline_problem;
    if (c_.schedule != Schedule::Fixed && c_.compare_fixed_step) {
      loss_tails::TailGdOptions base = opt;
      base.schedule = Schedule::Fixed;
      try {
        loss_tails::run_tail_gd(c_.Xt, base, grid, [&](std::int64_t t, const VectorXd& w) {
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
    loss_tails::run_tail_gd(c_.Xt, opt, grid, [&](std::int64_t t, const VectorXd& w) {
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
        last_pred_gap = c_.prediction.margin_gap(m.g);
        rec.append("theory/margin_gap", t, time, last_pred_gap);
        rec.append("theory/angle_gap", t, time, c_.prediction.angle_gap(m.g));
      } else {
        // T3.2 theory: the constants of the limit direction v*.
        rec.append("observables/angle_gap_vstar", t, time, m.angle_gap_vstar);
        rec.append("theory/angle_gap", t, time, c_.vstar_angle_gap);
        rec.append("theory/normalized_margin", t, time, c_.vstar_margin);
        rec.append("theory/margin_gap", t, time, 1.0 / mm.w_hat.norm() - c_.vstar_margin);
      }
      if (c_.w_tilde.size() && t >= 1) {
        // separable.md §0.6 for the e^{−u} tail with a fixed step: r = w − ŵ ln t − w̃(η), ρ_L = tηL/‖ŵ‖².
        rec.append("observables/residual", t, time,
                   (w - separable::predicted_w(mm.w_hat, c_.w_tilde, t)).norm());
        rec.append("observables/loss_ratio", t, time,
                   static_cast<double>(t) * c_.lr * m.loss / mm.w_hat.squaredNorm());
      }
    });
    verdict(rec, steps_seen, gaps, last, last_pred_gap, fixed_gap_at_end, baseline_problem);
  }

 private:
  loss_tails::TailMeasurements measure(const VectorXd& w) const {
    return loss_tails::measure(c_.Xt, c_.loss, w, c_.max_margin.w_hat, c_.v_star, c_.prediction.rho_tilde,
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
                " (1-cos(v*,w_hat) = " + fmt(c_.vstar_angle_gap) + ")");
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
      note("C_1/g = " + fmt(pred_gap) + ", gap*eta0*T = " + fmt(m.margin_gap * c_.lr * T));
      if (c_.compare_fixed_step) note("fixed-step gap " + fmt(fixed_gap));
    }
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  LossTailsConfig c_;
};

class LossTailsKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "loss_tails"; }

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

    c.data = load_separable_dataset(s.dataset(), context, kDatasetStream);
    c.Xt = c.data.absorbed();

    if (!s.has_lr()) throw SpecError("lr", "required (the step size eta or eta0, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    c.sigma_max = separable::sigma_max(c.Xt);
    c.max_sq_norm = c.Xt.rowwise().squaredNorm().maxCoeff();
    switch (s.lr_rule()) {
      case pb::LossTailsSpec::LR_OVER_SIGMA_MAX_SQ:
        c.lr = s.lr() / (c.sigma_max * c.sigma_max);
        c.lr_description = fmt(s.lr()) + "/sigma_max^2";
        break;
      case pb::LossTailsSpec::LR_OVER_MAX_SQ_NORM:
        c.lr = s.lr() / c.max_sq_norm;
        c.lr_description = fmt(s.lr()) + "/max|x|^2";
        break;
      default:
        c.lr = s.lr();
        c.lr_description = "absolute";
    }
    if (!(c.lr > 0) || !std::isfinite(c.lr))
      throw SpecError("lr", "the step size " + fmt(c.lr) + " is not a finite number > 0");
    if (c.schedule == Schedule::Fixed) {
      // Soudry et al. Lemma 1 (separable.md §0.3) with β = sup ℓ″ of the chosen loss.
      const double beta = c.loss.smoothness();
      const double bound = 2.0 / (beta * c.sigma_max * c.sigma_max);
      if (c.lr >= bound && !s.allow_large_step())
        throw SpecError("lr", "step size eta=" + fmt(c.lr) + " is not below 2/(beta sigma_max^2)=" + fmt(bound) +
                                  " (beta=" + fmt(beta) + " for " + c.loss_name +
                                  "; Lemma 1, separable.md §0.3); set allow_large_step: true to run it anyway");
    }

    c.max_margin = solve_max_margin_of_dataset(c.Xt);
    if (c.loss.super_polynomial()) {
      c.prediction = loss_tails::poly_exponential_prediction(c.Xt, c.max_margin, c.loss.tail_nu());
      if (c.schedule == Schedule::Fixed && exponential_tail(c.loss))
        c.w_tilde = separable::solve_w_tilde(c.Xt, c.max_margin, c.lr, VectorXd::Zero(c.Xt.cols()));
    } else {
      c.v_star = loss_tails::polynomial_limit_direction(c.Xt, c.loss.exponent, c.max_margin.w_hat);
      const VectorXd w_hat_unit = c.max_margin.w_hat.normalized();
      c.vstar_angle_gap = 0.5 * (c.v_star - w_hat_unit).squaredNorm();
      c.vstar_margin = (c.Xt * c.v_star).minCoeff();
    }

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
