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
#include <memory>
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
  std::shared_ptr<const SeparableDataSource> source;
  Loss loss = Loss::Logistic;
  std::string loss_name;
  double lr = 0;  // the spec's lr, read through lr_rule
  pb::SeparableGdSpec::LrRule lr_rule = pb::SeparableGdSpec::LR_ABSOLUTE;
  bool allow_large_step = false;
  double momentum = 0;     // heavy ball γ
  std::int64_t steps = 0;
  int points_per_decade = 10;
  bool mean_loss = false;
  VectorXd w0;
  double tol_residual = 0, tol_loss_ratio = 0, tol_gap_rel = 0, tol_gap_abs = 0;
  std::string lr_description;
};

// The step size η of the spec's lr_rule on data with largest singular value sigma_max, checked:
// η must be a finite number > 0 and, unless allow_large_step, below the Lemma 1 bound. Throws
// SpecError on "lr". prepare() and run() both call it, so the task runs with the η it was checked
// with.
double checked_step_size(const SeparableGdConfig& c, double sigma_max, Eigen::Index rows) {
  double eta = c.lr;
  switch (c.lr_rule) {
    case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX:
      eta = c.lr / sigma_max;
      break;
    case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ:
      eta = c.lr / (sigma_max * sigma_max);
      break;
    default:
      break;
  }
  if (!(eta > 0) || !std::isfinite(eta))
    throw SpecError("lr", "the step size eta = " + fmt(eta) + " (" + c.lr_description + ") is not a finite number > 0");
  // Lemma 1 of Soudry et al.: η < 2 β⁻¹ σ_max⁻²(X) guarantees L → 0 (separable.md §0.3). The
  // mean-loss control takes steps of η/N on the sum.
  const double step_on_sum = c.mean_loss ? eta / static_cast<double>(rows) : eta;
  const double bound = 2.0 / (separable::smoothness_beta(c.loss) * sigma_max * sigma_max);
  if (step_on_sum >= bound && !c.allow_large_step)
    throw SpecError("lr", "step size eta=" + fmt(eta) + " is not below 2/(beta sigma_max^2)=" + fmt(bound) +
                              " (Soudry et al. 2018, Lemma 1); set allow_large_step: true to run it anyway");
  return eta;
}

// The part of checked_step_size that needs no data, for generated data too large to build in
// prepare(): with LR_OVER_SIGMA_MAX_SQ, η = lr/σ² against the bound 2/(βσ²) is lr/N_mean against
// 2/β (N_mean = N with mean_loss, else 1), so a step above it fails on any data. Throws the
// SpecError on "lr" then; any other outcome is left to run()'s check.
void reject_step_above_any_bound(const SeparableGdConfig& c, Eigen::Index rows) {
  if (c.allow_large_step || c.lr_rule != pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ) return;
  const double per_sum = c.mean_loss ? static_cast<double>(rows) : 1.0;
  const double lr_bound = 2.0 / separable::smoothness_beta(c.loss) * per_sum;
  // The margin keeps clear of the last bits by which the check computed with σ may round.
  if (c.lr > lr_bound * (1.0 + kScaleFreeMargin))
    throw SpecError("lr", "step size eta=" + c.lr_description + " is not below 2/(beta sigma_max^2): lr must be below " +
                              (c.mean_loss ? "2N/beta=" : "2/beta=") + fmt(lr_bound) +
                              " (Soudry et al. 2018, Lemma 1); set allow_large_step: true to run it anyway");
}

class SeparableGdTask : public PreparedTask {
 public:
  explicit SeparableGdTask(SeparableGdConfig config) : c_(std::move(config)) {}

  // The configuration only: nothing here needs the data built.
  std::string summary() const override {
    std::ostringstream s;
    s << "N=" << c_.source->rows() << " d=" << c_.source->cols() << " " << c_.loss_name << " eta=";
    if (c_.lr_rule == pb::SeparableGdSpec::LR_ABSOLUTE)
      s << fmt(c_.lr) << " (" << c_.lr_description << ")";
    else
      s << c_.lr_description;
    if (c_.momentum > 0) s << " momentum=" << fmt(c_.momentum);
    s << " T=" << c_.steps;
    return s.str();
  }

  void run(Recorder& rec) override {
    const SeparableData& data = c_.source->data();
    const MatrixXd& Xt = data.Xt();
    const double sigma_max = data.sigma_max();
    const double eta = checked_step_size(c_, sigma_max, Xt.rows());
    const double eta_eff = eta / (1.0 - c_.momentum);  // η/(1−γ), the step entering w̃ (separable.md §0.5)
    const separable::MaxMargin& mm = data.max_margin();
    const VectorXd w_tilde = separable::solve_w_tilde(Xt, mm, eta_eff, c_.w0);

    put_max_margin_parameters(rec, data.dataset(), mm, &w_tilde, sigma_max);
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("lr", eta);
    rec.set_attribute("momentum", c_.momentum);
    rec.set_attribute("eta_eff", eta_eff);
    rec.set_attribute("steps", static_cast<double>(c_.steps));

    separable::GdOptions opt;
    opt.loss = c_.loss;
    opt.lr = eta;
    opt.momentum = c_.momentum;
    opt.steps = c_.steps;
    opt.mean_loss = c_.mean_loss;
    opt.w0 = c_.w0;
    const auto grid = separable::log_grid(c_.steps, c_.points_per_decade);
    separable::Measurements last, last_pred;
    separable::run_gd(Xt, opt, grid, [&](std::int64_t t, const VectorXd& w, double) {
      // Time axis: gradient-flow time η_eff·t.
      const double time = eta_eff * static_cast<double>(t);
      last = separable::measure(Xt, c_.loss, w, t, eta_eff, mm.w_hat, w_tilde);
      record_measurements(rec, "observables/", t, time, last);
      rec.append("observables/w", t, time, as_span(w));
      const VectorXd w_pred = separable::predicted_w(mm.w_hat, w_tilde, t);
      last_pred = separable::measure(Xt, c_.loss, w_pred, t, eta_eff, mm.w_hat, w_tilde);
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

  // Checks every field with bounded work: builds the data for the step-size check only when they
  // are cheap to build (SeparableDataSource::cheap_to_build), and solves no max margin unless the
  // data were read from a file (their separability is a property of the input). The max margin and
  // w̃ of generated data are computed by run().
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

    c.source = std::make_shared<const SeparableDataSource>(s.dataset(), context, kDatasetStream);
    c.w0 = initial_w(s.w0(), c.source->cols());

    if (!s.has_lr()) throw SpecError("lr", "required (the step size, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    c.lr = s.lr();
    c.lr_rule = s.lr_rule();
    c.allow_large_step = s.allow_large_step();
    switch (c.lr_rule) {
      case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX:
        c.lr_description = fmt(s.lr()) + "/sigma_max";
        break;
      case pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ:
        c.lr_description = fmt(s.lr()) + "/sigma_max^2";
        break;
      default:
        c.lr_rule = pb::SeparableGdSpec::LR_ABSOLUTE;
        c.lr_description = "absolute";
    }
    // The step-size check with the data when they are cheap to build; otherwise only what it says
    // without them, and run() makes it in full (it always does).
    if (c.source->cheap_to_build())
      checked_step_size(c, c.source->data().sigma_max(), c.source->rows());
    else
      reject_step_above_any_bound(c, c.source->rows());
    if (!c.source->generated()) c.source->checked_max_margin();

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
