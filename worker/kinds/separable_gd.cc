// Experiment kind `separable_gd`: gradient descent (optionally heavy ball) on linearly separable
// data with a linear homogeneous model, checked against the implicit-bias prediction of
// Soudry, Hoffer, Nacson, Gunasekar, Srebro, "The Implicit Bias of Gradient Descent on Separable
// Data" (ICLR 2018 / JMLR 2018): w(t) = ŵ ln t + w̃ + o(1) (Thm 3, Thm 4), with ŵ the L2
// max-margin vector and w̃ defined in separable.md §0.5.
//
// Records on a log-spaced grid (separable.md §0.6): w, ‖w‖, loss, loss ratio, normalised margin,
// margin gap, angle gap, direction error, residual ‖w − ŵ ln t − w̃‖; the same measurements of
// w_pred(t) = ŵ ln t + w̃ under theory/ (the overlay); ŵ, w̃, α, the support set and the data under
// parameters/; and a verdict attribute (§1.6 criteria at the final step).
#include <cmath>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/separable.h"

namespace gdlab {
namespace {

using separable::Loss;
using separable::MatrixXd;
using separable::VectorXd;

// Random streams of this kind (see TaskContext): the dataset is drawn from an experiment-wide
// stream so all tasks of a sweep see the same data.
constexpr std::uint64_t kDatasetStream = 1;

struct SeparableGdConfig {
  separable::Dataset data;
  MatrixXd Xt;  // absorbed points
  Loss loss = Loss::Logistic;
  std::string loss_name;
  double eta = 0;          // step size η after lr_rule
  double momentum = 0;     // heavy ball γ
  double eta_eff = 0;      // η/(1−γ), the step entering w̃ (separable.md §0.5)
  double sigma_max = 0;
  std::int64_t steps = 0;
  int points_per_decade = 10;
  bool mean_loss = false;
  VectorXd w0;
  separable::MaxMargin max_margin;
  VectorXd w_tilde;
  double tol_residual = 0, tol_loss_ratio = 0, tol_gap_rel = 0, tol_gap_abs = 0;
  std::string lr_description;
};

class SeparableGdTask : public PreparedTask {
 public:
  explicit SeparableGdTask(SeparableGdConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    s << "N=" << c_.Xt.rows() << " d=" << c_.Xt.cols() << " " << c_.loss_name << " eta=" << fmt(c_.eta) << " ("
      << c_.lr_description << ")";
    if (c_.momentum > 0) s << " momentum=" << fmt(c_.momentum);
    s << " T=" << c_.steps << " |S|=" << c_.max_margin.support.size() << " |w_hat|=" << fmt(c_.max_margin.w_hat.norm());
    return s.str();
  }

  void run(Recorder& rec) override {
    const auto& mm = c_.max_margin;
    put_max_margin_parameters(rec, c_.data, mm, &c_.w_tilde, c_.sigma_max);
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("lr", c_.eta);
    rec.set_attribute("momentum", c_.momentum);
    rec.set_attribute("eta_eff", c_.eta_eff);
    rec.set_attribute("steps", static_cast<double>(c_.steps));

    separable::GdOptions opt;
    opt.loss = c_.loss;
    opt.lr = c_.eta;
    opt.momentum = c_.momentum;
    opt.steps = c_.steps;
    opt.mean_loss = c_.mean_loss;
    opt.w0 = c_.w0;
    const auto grid = separable::log_grid(c_.steps, c_.points_per_decade);
    separable::Measurements last, last_pred;
    separable::run_gd(c_.Xt, opt, grid, [&](std::int64_t t, const VectorXd& w, double) {
      // Time axis: gradient-flow time η_eff·t.
      const double time = c_.eta_eff * static_cast<double>(t);
      last = separable::measure(c_.Xt, c_.loss, w, t, c_.eta_eff, mm.w_hat, c_.w_tilde);
      record_measurements(rec, "observables/", t, time, last);
      rec.append("observables/w", t, time, as_span(w));
      const VectorXd w_pred = separable::predicted_w(mm.w_hat, c_.w_tilde, t);
      last_pred = separable::measure(c_.Xt, c_.loss, w_pred, t, c_.eta_eff, mm.w_hat, c_.w_tilde);
      record_measurements(rec, "theory/", t, time, last_pred);
    });
    verdict(rec, last, last_pred);
  }

 private:
  // The acceptance criteria of separable.md §1.6 (T1.1 (a)-(b), T1.2 (a)-(c)) at the final step.
  void verdict(Recorder& rec, const separable::Measurements& m, const separable::Measurements& p) const {
    bool pass = true;
    std::string detail;
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      detail += (detail.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
    };
    check(m.residual < c_.tol_residual, "residual " + fmt(m.residual) + " < " + fmt(c_.tol_residual));
    check(std::abs(m.loss_ratio - 1) < c_.tol_loss_ratio,
          "loss_ratio " + fmt(m.loss_ratio) + " within " + fmt(c_.tol_loss_ratio) + " of 1");
    auto gap = [&](const char* name, double measured, double predicted) {
      const double bound = c_.tol_gap_rel * std::abs(predicted) + c_.tol_gap_abs;
      check(std::abs(measured - predicted) <= bound,
            std::string(name) + " " + fmt(measured) + " vs predicted " + fmt(predicted) + " (+-" + fmt(bound) + ")");
    };
    gap("margin_gap", m.margin_gap, p.margin_gap);
    gap("angle_gap", m.angle_gap, p.angle_gap);
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  SeparableGdConfig c_;
};

class SeparableGdKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "separable_gd"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::SeparableGdSpec&>(message);
    SeparableGdConfig c;
    c.loss = s.loss() == pb::SeparableGdSpec::LOSS_EXPONENTIAL ? Loss::Exponential : Loss::Logistic;
    c.loss_name = c.loss == Loss::Exponential ? "exponential" : "logistic";

    if (!s.has_steps()) throw SpecError("steps", "required (number of GD steps, >= 1)");
    if (s.steps() < 1 || s.steps() > 1'000'000'000'000LL)
      throw SpecError("steps", "must be in [1, 1e12] (got " + std::to_string(s.steps()) + ")");
    c.steps = s.steps();
    if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
      throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
    c.points_per_decade = s.points_per_decade();
    if (!(s.momentum() >= 0 && s.momentum() < 1))
      throw SpecError("momentum", "must be in [0, 1) (got " + fmt(s.momentum()) + ")");
    c.momentum = s.momentum();
    c.mean_loss = s.mean_loss();

    c.data = load_separable_dataset(s.dataset(), context, kDatasetStream);
    c.Xt = c.data.absorbed();
    c.w0 = initial_w(s.w0(), c.Xt.cols());

    if (!s.has_lr()) throw SpecError("lr", "required (the step size, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    c.sigma_max = separable::sigma_max(c.Xt);
    switch (s.lr_rule()) {
      case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX:
        c.eta = s.lr() / c.sigma_max;
        c.lr_description = fmt(s.lr()) + "/sigma_max";
        break;
      case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ:
        c.eta = s.lr() / (c.sigma_max * c.sigma_max);
        c.lr_description = fmt(s.lr()) + "/sigma_max^2";
        break;
      default:
        c.eta = s.lr();
        c.lr_description = "absolute";
    }
    // Lemma 1 of Soudry et al.: η < 2 β⁻¹ σ_max⁻²(X) guarantees L → 0 (separable.md §0.3). The
    // mean-loss control takes steps of η/N on the sum.
    const double step_on_sum = c.mean_loss ? c.eta / static_cast<double>(c.Xt.rows()) : c.eta;
    const double bound = 2.0 / (separable::smoothness_beta(c.loss) * c.sigma_max * c.sigma_max);
    if (step_on_sum >= bound && !s.allow_large_step())
      throw SpecError("lr", "step size eta=" + fmt(c.eta) + " is not below 2/(beta sigma_max^2)=" + fmt(bound) +
                                " (Soudry et al. 2018, Lemma 1); set allow_large_step: true to run it anyway");

    c.max_margin = solve_max_margin_of_dataset(c.Xt);
    c.eta_eff = c.eta / (1.0 - c.momentum);
    c.w_tilde = separable::solve_w_tilde(c.Xt, c.max_margin, c.eta_eff, c.w0);

    const auto& tol = s.tolerance();
    c.tol_residual = tol.residual();
    c.tol_loss_ratio = tol.loss_ratio();
    c.tol_gap_rel = tol.gap_rel();
    c.tol_gap_abs = tol.gap_abs();
    if (!(c.tol_residual > 0) || !(c.tol_loss_ratio > 0) || !(c.tol_gap_rel >= 0) || !(c.tol_gap_abs >= 0))
      throw SpecError("tolerance", "tolerances must be positive");
    return std::make_unique<SeparableGdTask>(std::move(c));
  }
};

GDLAB_REGISTER_KIND(SeparableGdKind);

}  // namespace
}  // namespace gdlab
