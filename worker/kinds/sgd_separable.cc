// Experiment kind `sgd_separable`: minibatch SGD with a fixed step on linearly separable data with a
// linear homogeneous model, checked against Nacson, Srebro, Soudry, "Stochastic Gradient Descent on
// Separable Data: Exact Convergence with a Fixed Learning Rate" (AISTATS 2019, arXiv:1806.01796), in
// the calibrated form of separable.md §2.4: with time counted in epochs k and c the per-sample step,
//   w(k) = ŵ ln k + w̃(c) + o(1),   k c L(w(k))/‖ŵ‖² → 1,
// for every batch size B and both samplers (w̃(c) is w̃ of separable.md §0.5 with η := c).
//
// Records on a log grid in epochs (separable.md §0.6, §2.5): w, ‖w‖, loss, loss ratio, normalised
// margin, margin gap, angle gap, direction error, residual ‖w − ŵ ln k − w̃(c)‖; under theory/ the
// same measurements of w_pred(k) = ŵ ln k + w̃(c) and w_pred itself; ŵ, w̃(c), α, the support set and
// the data under parameters/; the sampler, B, the minibatch form, c and the sampler seed as
// attributes; and a verdict attribute (criteria (a)–(c) of §2.6 at the last epoch). Criterion (d),
// batch-size invariance, compares tasks: tests/sgd_separable_test.cc asserts it and the report
// plugin (analysis/kinds/sgd_separable.py) tabulates it per experiment.
#include <cmath>
#include <memory>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/separable.h"
#include "worker/numerics/sgd_separable.h"

namespace gdlab {
namespace {

using separable::Loss;
using separable::MatrixXd;
using separable::VectorXd;
using sgd_separable::MinibatchForm;
using sgd_separable::Sampler;

// Random streams of this kind (see TaskContext). The dataset comes from an experiment-wide stream
// (the same stream as separable_gd), so all tasks of a sweep see the same data; the sampler from a
// per-task stream.
constexpr std::uint64_t kDatasetStream = 1;
constexpr std::uint64_t kSamplerStream = 2;

// The step condition c·β·λ ≤ 2 is checked with this relative slack, because the spec's own setting
// (c = 1/max‖x̃‖², B = 8, with replacement, logistic) sits exactly on it (separable.md §2.6).
constexpr double kStepBoundSlack = 1e-12;

struct SgdSeparableConfig {
  std::shared_ptr<const SeparableDataSource> source;
  Loss loss = Loss::Logistic;
  std::string loss_name;
  Sampler sampler = Sampler::Reshuffle;
  std::string sampler_name;
  MinibatchForm form = MinibatchForm::Sum;
  std::string form_name;
  int batch_size = 1;
  bool no_lr_scaling = false;
  double lr = 0;  // the spec's lr, read through lr_rule
  pb::SgdSeparableSpec::LrRule lr_rule = pb::SgdSeparableSpec::LR_ABSOLUTE;
  bool allow_large_step = false;
  std::string lr_description;
  std::int64_t epochs = 0;
  int points_per_decade = 10;
  std::uint64_t seed = 0;
  VectorXd w0;
  double tol_residual = 0, tol_loss_ratio_min = 0, tol_loss_ratio_max = 0, tol_margin_gap_rel = 0;
};

// The step sizes of the spec's lr_rule on `data`, checked: the per-sample step c must be a finite
// number > 0 and, unless allow_large_step, meet the minibatch smoothness bound. Throws SpecError on
// "lr". prepare() and run() both call it, so the task runs with the steps it was checked with.
sgd_separable::StepSizes checked_step_sizes(const SgdSeparableConfig& c, const SeparableData& data) {
  double per_sample = c.lr;
  switch (c.lr_rule) {
    case pb::SgdSeparableSpec::LR_OVER_MAX_SQ_NORM:
      per_sample = c.lr / data.max_sq_norm();
      break;
    case pb::SgdSeparableSpec::LR_OVER_SIGMA_MAX_SQ:
      per_sample = c.lr / (data.sigma_max() * data.sigma_max());
      break;
    default:
      break;
  }
  if (!(per_sample > 0) || !std::isfinite(per_sample))
    throw SpecError("lr", "the per-sample step c = " + fmt(per_sample) + " is not a finite number > 0");
  const auto steps = sgd_separable::step_sizes(c.form, per_sample, c.batch_size, c.no_lr_scaling);

  // Each minibatch step is a descent step on its minibatch loss when c_applied·β·λ_max(X̃_BᵀX̃_B) ≤ 2
  // (the minibatch form of Soudry et al. Lemma 1; separable.md §2.3 quotes the sufficient
  // η < 2β⁻¹B⁻¹max‖x̃‖⁻², which is the with-replacement case of the bound used here).
  if (!c.allow_large_step) {
    const double curvature = sgd_separable::batch_curvature_bound(data.Xt(), c.batch_size, c.sampler);
    const double product = steps.per_sample_actual * separable::smoothness_beta(c.loss) * curvature;
    if (product > 2.0 * (1.0 + kStepBoundSlack))
      throw SpecError("lr", "per-sample step c=" + fmt(steps.per_sample_actual) + " with B=" +
                                std::to_string(c.batch_size) + " gives c*beta*lambda_max(minibatch)=" + fmt(product) +
                                " > 2 (minibatch smoothness bound, separable.md §2.3); set allow_large_step: true "
                                "to run it anyway");
  }
  return steps;
}

// The part of checked_step_sizes that needs no data, for generated data too large to build in
// prepare(): with replacement and c = lr/max‖x̃‖², the curvature bound is B max‖x̃‖², so
// c_applied·β·λ = f·lr·β·B (f = 1/B for the unscaled mean form, else 1) on any data, and a step
// above 2 fails on all of them. Throws the SpecError on "lr" then; any other outcome is left to
// run()'s check.
void reject_step_above_any_bound(const SgdSeparableConfig& c) {
  if (c.allow_large_step || c.lr_rule != pb::SgdSeparableSpec::LR_OVER_MAX_SQ_NORM ||
      c.sampler != Sampler::WithReplacement)
    return;
  const double b = static_cast<double>(c.batch_size);
  const bool unscaled = c.form == MinibatchForm::Mean && c.no_lr_scaling;
  const double product = (unscaled ? 1.0 / b : 1.0) * c.lr * separable::smoothness_beta(c.loss) * b;
  // The margin keeps clear of the last bits by which the check computed with the data may round.
  if (product > 2.0 * (1.0 + kScaleFreeMargin))
    throw SpecError("lr", "per-sample step c=" + c.lr_description + (unscaled ? "/B" : "") + " with B=" +
                              std::to_string(c.batch_size) + " gives c*beta*lambda_max(minibatch)=" + fmt(product) +
                              " > 2 (minibatch smoothness bound, separable.md §2.3); set allow_large_step: true "
                              "to run it anyway");
}

class SgdSeparableTask : public PreparedTask {
 public:
  explicit SgdSeparableTask(SgdSeparableConfig config) : c_(std::move(config)) {}

  // The configuration only: nothing here needs the data built.
  std::string summary() const override {
    std::ostringstream s;
    s << "N=" << c_.source->rows() << " d=" << c_.source->cols() << " " << c_.loss_name
      << " sampler=" << c_.sampler_name << " B=" << c_.batch_size << " form=" << c_.form_name << " c=";
    if (c_.lr_rule == pb::SgdSeparableSpec::LR_ABSOLUTE)
      s << fmt(c_.lr) << " (" << c_.lr_description << ")";
    else
      s << c_.lr_description;
    if (c_.no_lr_scaling) s << " no_lr_scaling (applied c/" << c_.batch_size << ")";
    s << " K=" << c_.epochs;
    return s.str();
  }

  void run(Recorder& rec) override {
    const SeparableData& data = c_.source->data();
    const MatrixXd& Xt = data.Xt();
    const double sigma_max = data.sigma_max();
    const sgd_separable::StepSizes steps = checked_step_sizes(c_, data);
    const separable::MaxMargin& mm = data.max_margin();
    // w̃(c): separable.md §0.5 with η := c, the nominal per-sample step (§2.4).
    const VectorXd w_tilde = separable::solve_w_tilde(Xt, mm, steps.per_sample_nominal, c_.w0);

    put_max_margin_parameters(rec, data.dataset(), mm, &w_tilde, sigma_max);
    rec.put_array("parameters/max_sq_norm", {}, std::vector<double>{data.max_sq_norm()});
    rec.put_array("parameters/c", {}, std::vector<double>{steps.per_sample_nominal});
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("loss_convention", "sum");
    rec.set_attribute("sampler", c_.sampler_name);
    rec.set_attribute("batch_size", static_cast<double>(c_.batch_size));
    rec.set_attribute("minibatch_form", c_.form_name);
    rec.set_attribute("lr", steps.minibatch_lr);
    rec.set_attribute("c", steps.per_sample_nominal);
    rec.set_attribute("c_applied", steps.per_sample_actual);
    rec.set_attribute("eta_eff", steps.per_sample_nominal);
    rec.set_attribute("no_lr_scaling", c_.no_lr_scaling ? "true" : "false");
    rec.set_attribute("epochs", static_cast<double>(c_.epochs));
    rec.set_attribute("sampler_seed", std::to_string(c_.seed));

    sgd_separable::SgdOptions opt;
    opt.loss = c_.loss;
    opt.sampler = c_.sampler;
    opt.batch_size = c_.batch_size;
    opt.per_sample_step = steps.per_sample_actual;
    opt.epochs = c_.epochs;
    opt.seed = c_.seed;
    opt.w0 = c_.w0;
    const double c = steps.per_sample_nominal;
    const auto grid = separable::log_grid(c_.epochs, c_.points_per_decade);
    separable::Measurements last, last_pred;
    sgd_separable::run_sgd(Xt, opt, grid, [&](std::int64_t k, const VectorXd& w) {
      // Step axis: epochs k; time axis: gradient-flow time c·k (as separable_gd's η_eff·t).
      const double time = c * static_cast<double>(k);
      last = separable::measure(Xt, c_.loss, w, k, c, mm.w_hat, w_tilde);
      record_measurements(rec, "observables/", k, time, last);
      rec.append("observables/w", k, time, as_span(w));
      // Theory: w_pred(k) = ŵ ln k + w̃(c) (separable.md §2.4).
      const VectorXd w_pred = separable::predicted_w(mm.w_hat, w_tilde, k);
      last_pred = separable::measure(Xt, c_.loss, w_pred, k, c, mm.w_hat, w_tilde);
      record_measurements(rec, "theory/", k, time, last_pred);
      rec.append("theory/w", k, time, as_span(w_pred));
    });
    verdict(rec, last, last_pred, steps);
  }

 private:
  // Criteria (a)–(c) of separable.md §2.6 at the last epoch K.
  void verdict(Recorder& rec, const separable::Measurements& m, const separable::Measurements& p,
               const sgd_separable::StepSizes& steps) const {
    bool pass = true;
    std::string detail;
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      detail += (detail.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
    };
    check(m.residual < c_.tol_residual, "(a) residual " + fmt(m.residual) + " < " + fmt(c_.tol_residual));
    check(m.loss_ratio >= c_.tol_loss_ratio_min && m.loss_ratio <= c_.tol_loss_ratio_max,
          "(b) loss_ratio " + fmt(m.loss_ratio) + " in [" + fmt(c_.tol_loss_ratio_min) + ", " +
              fmt(c_.tol_loss_ratio_max) + "]");
    const double rel = std::abs(m.margin_gap - p.margin_gap) / std::abs(p.margin_gap);
    check(rel < c_.tol_margin_gap_rel, "(c) margin_gap " + fmt(m.margin_gap) + " vs predicted " + fmt(p.margin_gap) +
                                           " (rel. error " + fmt(rel) + " < " + fmt(c_.tol_margin_gap_rel) + ")");
    if (c_.no_lr_scaling) detail += "; negative control: eta_B = c, applied c = " + fmt(steps.per_sample_actual);
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  SgdSeparableConfig c_;
};

class SgdSeparableKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "sgd_separable"; }

  // Checks every field with bounded work: builds the data for the step-size check only when they
  // are cheap to build (SeparableDataSource::cheap_to_build), and solves no max margin unless the
  // data were read from a file. The max margin and w̃ of generated data are computed by run().
  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::SgdSeparableSpec&>(message);
    SgdSeparableConfig c;
    c.loss = s.loss() == pb::SgdSeparableSpec::LOSS_EXPONENTIAL ? Loss::Exponential : Loss::Logistic;
    c.loss_name = c.loss == Loss::Exponential ? "exponential" : "logistic";
    c.sampler = s.sampler() == pb::SgdSeparableSpec::SAMPLER_WITH_REPLACEMENT ? Sampler::WithReplacement
                                                                               : Sampler::Reshuffle;
    c.sampler_name = c.sampler == Sampler::WithReplacement ? "with_replacement" : "reshuffle";
    c.form = s.minibatch_form() == pb::SgdSeparableSpec::MINIBATCH_MEAN ? MinibatchForm::Mean : MinibatchForm::Sum;
    c.form_name = c.form == MinibatchForm::Mean ? "mean" : "sum";

    if (!s.has_epochs()) throw SpecError("epochs", "required (number of epochs K, >= 1)");
    if (s.epochs() < 1 || s.epochs() > 10'000'000'000LL)
      throw SpecError("epochs", "must be in [1, 1e10] (got " + std::to_string(s.epochs()) + ")");
    c.epochs = s.epochs();
    if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
      throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
    c.points_per_decade = s.points_per_decade();
    if (s.no_lr_scaling() && c.form != MinibatchForm::Mean)
      throw SpecError("no_lr_scaling", "applies to minibatch_form: MINIBATCH_MEAN only (the summed form has eta = c "
                                       "for every batch size)");
    c.no_lr_scaling = s.no_lr_scaling();

    c.source = std::make_shared<const SeparableDataSource>(s.dataset(), context, kDatasetStream);
    const auto n = c.source->rows();
    const auto d = c.source->cols();

    if (s.batch_size() < 1 || s.batch_size() > n)
      throw SpecError("batch_size", "must be in [1, N] with N = " + std::to_string(n) + " samples (got " +
                                        std::to_string(s.batch_size()) + ")");
    if (n % s.batch_size() != 0)
      throw SpecError("batch_size", "must divide N = " + std::to_string(n) + " so that an epoch is N/B whole "
                                    "minibatches (got " + std::to_string(s.batch_size()) + ")");
    c.batch_size = s.batch_size();

    c.w0 = initial_w(s.w0(), d);

    if (!s.has_lr()) throw SpecError("lr", "required (the per-sample step c, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    c.lr = s.lr();
    c.lr_rule = s.lr_rule();
    c.allow_large_step = s.allow_large_step();
    switch (c.lr_rule) {
      case pb::SgdSeparableSpec::LR_OVER_MAX_SQ_NORM:
        c.lr_description = fmt(s.lr()) + "/max|x|^2";
        break;
      case pb::SgdSeparableSpec::LR_OVER_SIGMA_MAX_SQ:
        c.lr_description = fmt(s.lr()) + "/sigma_max^2";
        break;
      default:
        c.lr_rule = pb::SgdSeparableSpec::LR_ABSOLUTE;
        c.lr_description = "absolute";
    }
    // The step-size check with the data when they are cheap to build; otherwise only what it says
    // without them, and run() makes it in full (it always does).
    if (c.source->cheap_to_build())
      checked_step_sizes(c, c.source->data());
    else
      reject_step_above_any_bound(c);

    c.seed = s.seed() ? s.seed() : context.task_seed(kSamplerStream);
    if (!c.source->generated()) c.source->checked_max_margin();

    const auto& tol = s.tolerance();
    c.tol_residual = tol.residual();
    c.tol_loss_ratio_min = tol.loss_ratio_min();
    c.tol_loss_ratio_max = tol.loss_ratio_max();
    c.tol_margin_gap_rel = tol.margin_gap_rel();
    if (!(c.tol_residual > 0)) throw SpecError("tolerance.residual", "must be > 0");
    if (!(c.tol_margin_gap_rel > 0)) throw SpecError("tolerance.margin_gap_rel", "must be > 0");
    if (!(c.tol_loss_ratio_min < c.tol_loss_ratio_max) || !std::isfinite(c.tol_loss_ratio_min) ||
        !std::isfinite(c.tol_loss_ratio_max))
      throw SpecError("tolerance.loss_ratio_max", "must be finite and above loss_ratio_min (got [" +
                                                      fmt(c.tol_loss_ratio_min) + ", " + fmt(c.tol_loss_ratio_max) + "])");
    return std::make_unique<SgdSeparableTask>(std::move(c));
  }
};

GDLAB_REGISTER_KIND(SgdSeparableKind);

}  // namespace
}  // namespace gdlab
