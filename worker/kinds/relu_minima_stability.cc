// Experiment kind `relu_minima_stability`: Nacson, Mulayoff, Ongie, Michaeli, Soudry, "The Implicit
// Bias of Minima Stability in Multivariate Shallow ReLU Networks", ICLR 2023 (stability.md §2).
//
// One task = one step size η: train f(x) = Σ v_i σ(w_iᵀx + b_i) + c on L = (1/2n)Σ(f − y)² with GD
// (or SGD) until the loss stays below interp_loss for hold_steps steps (T2.4's "stays small" rule) or
// max_steps, then evaluate the paper's quantities (§2.10): λ_max of the Hessian (Lanczos on exact
// Hessian-vector products) and of its Gauss–Newton form ΦΦᵀ/n, η·λ_max/2, the weighted norm
// Σ_j|a_j| g(u_j, t_j) with g from the empirical input distribution (§2.5–§2.6), the bound 1/η − ½,
// λ_max/2 − ½, and the non-interpolating extension λ_max/2 − ½ + (R+1)√(2L) (Liang et al. Thm 3.2).
//
// Records: observables/loss every record_every steps; observables/{lambda_max, sharpness_ratio,
// weighted_norm} every sharpness_every steps with theory/sharpness_ratio = 1 (the stability edge
// 2/η) and theory/weighted_norm = 1/η − ½ (the bound) at the same steps; the data, the
// standardisation constants, the final θ, the neuron normal forms and every end-of-run scalar under
// parameters/; a verdict from T2.4 (i)–(iii).
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/relu_minima_stability.h"

namespace gdlab {
namespace {

namespace rs = relu_stability;
using rs::MatrixXd;
using rs::VectorXd;

// Random streams (TaskContext): the data and the init are experiment-wide, so every task of an η
// sweep sees the same data and starts from the same network; SGD batches and the Lanczos start
// vector are per task.
constexpr std::uint64_t kDatasetStream = 1;
constexpr std::uint64_t kInitStream = 2;
constexpr std::uint64_t kSgdStream = 3;
constexpr std::uint64_t kLanczosStream = 4;

// Largest synthetic data set, n·d values.
constexpr double kMaxSyntheticEntries = 1e8;

struct ReluConfig {
  rs::RegressionData data;
  std::string dataset_description;
  int width = 0;
  rs::InitOptions init;
  std::uint64_t init_seed = 0;
  rs::TrainOptions train;
  std::int64_t record_every = 100;
  std::int64_t sharpness_every = 1000;
  rs::SharpnessOptions sharpness;
  double kink_tol = 1e-6;
  double tol_stability = 1e-3;
  double tol_bound = 1e-9;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::vector<double> row_major(const MatrixXd& m) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.push_back(m(r, c));
  return out;
}

std::vector<double> as_vector(const VectorXd& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

class ReluMinimaStabilityTask : public PreparedTask {
 public:
  explicit ReluMinimaStabilityTask(ReluConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    s << c_.dataset_description << " n=" << c_.data.X.rows() << " d=" << c_.data.X.cols() << " k=" << c_.width
      << " eta=" << fmt(c_.train.eta) << " (bound 1/eta-1/2=" << fmt(1.0 / c_.train.eta - 0.5) << ") "
      << (c_.train.optimizer == rs::Optimizer::SGD ? "SGD B=" + std::to_string(c_.train.batch_size) : "GD")
      << " T<=" << c_.train.max_steps;
    return s.str();
  }

  void run(Recorder& rec) override {
    const auto n = static_cast<std::uint64_t>(c_.data.X.rows());
    const auto d = static_cast<std::uint64_t>(c_.data.X.cols());
    const auto k = static_cast<std::uint64_t>(c_.width);
    const double eta = c_.train.eta;
    rec.put_array("parameters/X", {n, d}, row_major(c_.data.X));
    rec.put_array("parameters/y", {n}, as_vector(c_.data.y));
    rec.put_array("parameters/y_mean", {}, std::vector<double>{c_.data.y_mean});
    rec.put_array("parameters/y_scale", {}, std::vector<double>{c_.data.y_scale});
    rec.set_attribute("dataset", c_.dataset_description);
    rec.set_attribute("lr", eta);
    rec.set_attribute("width", static_cast<double>(c_.width));
    rec.set_attribute("optimizer", c_.train.optimizer == rs::Optimizer::SGD ? "sgd" : "gd");
    rec.set_attribute("batch_size", static_cast<double>(c_.train.optimizer == rs::Optimizer::SGD
                                                            ? c_.train.batch_size
                                                            : static_cast<int>(n)));
    rec.set_attribute("loss_normalization", "1/(2n)");
    rec.set_attribute("kink_convention", c_.kink_tol > 0 ? "1[z > kink_tol*(|w||x|+|b|)] (limit point)" : "1[z > 0]");
    rec.set_attribute("kink_tol", c_.kink_tol);
    rec.set_attribute("init_seed", std::to_string(c_.init_seed));

    rs::Network net = rs::init_network(c_.width, static_cast<int>(d), c_.init, c_.init_seed);
    const double bound = 1.0 / eta - 0.5;
    std::int64_t last_sharpness_step = -1, last_loss_step = -1;
    auto measure_sharpness = [&](std::int64_t t, const rs::Network& state) {
      if (!state.pack().allFinite()) return;
      const double time = eta * static_cast<double>(t);
      const double lam = rs::sharpness(state, c_.data, c_.train.norm, c_.sharpness, c_.kink_tol).value;
      rec.append("observables/lambda_max", t, time, lam);
      rec.append("observables/sharpness_ratio", t, time, eta * lam / 2.0);
      rec.append("observables/weighted_norm", t, time, rs::weighted_norm(state, c_.data.X, c_.kink_tol));
      rec.append("theory/sharpness_ratio", t, time, 1.0);
      rec.append("theory/weighted_norm", t, time, bound);
      last_sharpness_step = t;
    };
    const std::int64_t every = std::gcd(c_.record_every, c_.sharpness_every);
    const rs::TrainResult res =
        rs::train(net, c_.data, c_.train, every, [&](std::int64_t t, const rs::Network& state, double loss) {
          // Called at step 0, every gcd(record_every, sharpness_every) steps and at the last step; the
          // loss is NaN at SGD steps where the full-batch loss was not evaluated.
          if (t % c_.record_every == 0 && !std::isnan(loss)) {
            rec.append("observables/loss", t, eta * static_cast<double>(t), loss);
            last_loss_step = t;
          }
          if (t % c_.sharpness_every == 0) measure_sharpness(t, state);
        });
    if (last_loss_step != res.steps)
      rec.append("observables/loss", res.steps, eta * static_cast<double>(res.steps), res.final_loss);
    // The last step is always measured (train() calls the observer there; make sure of the sharpness).
    if (last_sharpness_step != res.steps) measure_sharpness(res.steps, net);

    rec.put_array("parameters/W", {k, d}, row_major(net.W));
    rec.put_array("parameters/b", {k}, as_vector(net.b));
    rec.put_array("parameters/v", {k}, as_vector(net.v));
    rec.put_array("parameters/c", {}, std::vector<double>{net.c});
    const std::string status = res.diverged ? "diverged" : res.interpolated ? "interpolated" : "max_steps";
    rec.set_attribute("train_status", status);
    rec.set_attribute("steps", static_cast<double>(res.steps));
    put_scalar(rec, "steps", static_cast<double>(res.steps));
    put_scalar(rec, "final_loss", res.final_loss);
    put_scalar(rec, "interpolated", res.interpolated ? 1.0 : 0.0);
    put_scalar(rec, "diverged", res.diverged ? 1.0 : 0.0);
    put_scalar(rec, "first_below_step", static_cast<double>(res.first_below_step));
    put_scalar(rec, "bound", bound);

    if (res.diverged || !net.pack().allFinite()) {
      rec.set_attribute("verdict", "pass");
      rec.set_attribute("verdict_detail", "diverged at step " + std::to_string(res.steps) + " (loss " +
                                              fmt(res.final_loss) + "): no minimum reached, no check applies");
      return;
    }

    const rs::StabilityReport r = rs::evaluate(net, c_.data, eta, c_.train.norm, c_.sharpness, c_.kink_tol);
    const rs::NeuronForms nf = rs::neuron_forms(net, c_.data.X, c_.kink_tol);
    rec.put_array("parameters/neuron_a", {k}, as_vector(nf.a));
    rec.put_array("parameters/neuron_u", {k, d}, row_major(nf.u));
    rec.put_array("parameters/neuron_t", {k}, as_vector(nf.t));
    rec.put_array("parameters/neuron_g", {k}, as_vector(nf.g));
    // The limit-point values (kink_tol) are the headline ones; *_raw use 1[z > 0] on the iterate as is.
    put_scalar(rec, "lambda_max", r.lambda_max_snapped);
    put_scalar(rec, "lambda_max_raw", r.lambda_max);
    put_scalar(rec, "lambda_gauss_newton", r.lambda_gauss_newton_snapped);
    put_scalar(rec, "lambda_gauss_newton_raw", r.lambda_gauss_newton);
    put_scalar(rec, "lambda_converged", r.lambda_snapped_converged ? 1.0 : 0.0);
    put_scalar(rec, "lambda_iterations", r.lambda_iterations);
    put_scalar(rec, "sharpness_ratio", r.sharpness_ratio_snapped);
    put_scalar(rec, "sharpness_ratio_raw", r.sharpness_ratio);
    put_scalar(rec, "weighted_norm", r.weighted_norm_snapped);
    put_scalar(rec, "weighted_norm_raw", r.weighted_norm);
    put_scalar(rec, "lambda_bound", r.lambda_bound_snapped);
    put_scalar(rec, "data_radius", r.data_radius);
    put_scalar(rec, "residual_term", r.residual_term);
    put_scalar(rec, "nonint_bound", r.lambda_bound_snapped + r.residual_term);
    put_scalar(rec, "stable_nonint_bound", r.stable_nonint_bound);
    put_scalar(rec, "min_kink_distance", r.min_kink_distance);
    put_scalar(rec, "kink_pairs", r.kink_pairs);
    put_scalar(rec, "active_neurons", r.active_neurons);
    put_scalar(rec, "tightness", r.weighted_norm_snapped / bound);
    verdict(rec, res, r);
  }

 private:
  static void put_scalar(Recorder& rec, const std::string& name, double value) {
    rec.put_array("parameters/" + name, {}, std::vector<double>{value});
  }

  // T2.4 (i)–(iii) and the non-interpolating extension, on the limit-point values.
  void verdict(Recorder& rec, const rs::TrainResult& res, const rs::StabilityReport& r) const {
    bool pass = true;
    std::string detail = res.interpolated ? "interpolated (L<" + fmt(c_.train.interp_loss) + " for " +
                                                std::to_string(c_.train.hold_steps) + " steps) at step " +
                                                std::to_string(res.steps)
                                          : "not interpolated (L=" + fmt(res.final_loss) + " after " +
                                                std::to_string(res.steps) + " steps)";
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      detail += "; " + text + (ok ? "" : " FAIL");
    };
    const double wn = r.weighted_norm_snapped;
    const double ratio = r.sharpness_ratio_snapped;
    const bool stable = ratio <= 1.0 + c_.tol_stability;
    // Liang et al. Thm 3.2 form, any θ (holds by the §2.7 chain plus |residual Hessian| ≤ (R+1)√(2L)).
    check(wn <= r.lambda_bound_snapped + r.residual_term + c_.tol_bound,
          "sum|a|g " + fmt(wn) + " <= lambda/2-1/2+(R+1)sqrt(2L) " + fmt(r.lambda_bound_snapped + r.residual_term));
    if (res.interpolated) {
      check(stable, "(i) eta*lambda/2 " + fmt(ratio) + " <= 1+" + fmt(c_.tol_stability));
      const double gn_bound = r.lambda_gauss_newton_snapped / 2.0 - 0.5;
      check(wn <= gn_bound + c_.tol_bound, "(iii) sum|a|g " + fmt(wn) + " <= lambda_GN/2-1/2 " + fmt(gn_bound));
    } else {
      detail += "; (i),(iii) need interpolation (eta*lambda/2 = " + fmt(ratio) + ")";
    }
    if (stable) {
      check(wn <= r.stable_nonint_bound + c_.tol_bound,
            "(ii) sum|a|g " + fmt(wn) + " <= 1/eta-1/2+(R+1)sqrt(2L) " + fmt(r.stable_nonint_bound));
    } else {
      detail += "; (ii) needs a stable point";
    }
    detail += "; 1/eta-1/2 = " + fmt(r.bound) + ", tightness " + fmt(wn / r.bound);
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  ReluConfig c_;
};

class ReluMinimaStabilityKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "relu_minima_stability"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::ReluMinimaStabilitySpec&>(message);
    ReluConfig c;

    // The loss and the model the bound is derived for (§2.3): checked first, they change the meaning
    // of everything else.
    if (s.loss_normalization() != pb::ReluMinimaStabilitySpec::LOSS_HALF_MEAN)
      throw SpecError("loss_normalization",
                      "must be LOSS_HALF_MEAN: the bound 1/eta - 1/2 is derived for L = (1/2n) sum (f - y)^2 "
                      "(stability.md §2.3); with 1/n every Hessian doubles");
    if (!s.output_bias())
      throw SpecError("output_bias", "must be true: the trainable output bias c gives the '1' of the identity "
                                     "lambda_max >= 1 + 2 sum|a|g (stability.md §2.7)");

    if (!s.has_lr()) throw SpecError("lr", "required (the step size eta, > 0)");
    if (!(s.lr() > 0) || !std::isfinite(s.lr()))
      throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
    if (s.width() < 1 || s.width() > 1'000'000)
      throw SpecError("width", "must be in [1, 1e6] (got " + std::to_string(s.width()) + ")");
    c.width = s.width();
    if (s.max_steps() < 1 || s.max_steps() > 10'000'000'000LL)
      throw SpecError("max_steps", "must be in [1, 1e10] (got " + std::to_string(s.max_steps()) + ")");
    if (!(s.interp_loss() > 0) || !std::isfinite(s.interp_loss()))
      throw SpecError("interp_loss", "must be a finite number > 0 (got " + fmt(s.interp_loss()) + ")");
    if (s.hold_steps() < 0) throw SpecError("hold_steps", "must be >= 0 (got " + std::to_string(s.hold_steps()) + ")");
    if (s.record_every() < 1)
      throw SpecError("record_every", "must be >= 1 (got " + std::to_string(s.record_every()) + ")");
    if (s.sharpness_every() < 1)
      throw SpecError("sharpness_every", "must be >= 1 (got " + std::to_string(s.sharpness_every()) + ")");
    if (!(s.divergence_loss() > 0))
      throw SpecError("divergence_loss", "must be > 0 (got " + fmt(s.divergence_loss()) + ")");
    if (s.check_every() < 0)
      throw SpecError("check_every", "must be >= 0 (got " + std::to_string(s.check_every()) + ")");
    if (!(s.kink_tol() >= 0 && s.kink_tol() <= 1e-2))
      throw SpecError("kink_tol", "must be in [0, 1e-2] (got " + fmt(s.kink_tol()) + ")");
    c.kink_tol = s.kink_tol();

    const auto& in = s.init();
    if (!(in.w_scale() > 0) || !std::isfinite(in.w_scale()))
      throw SpecError("init.w_scale", "must be a finite number > 0 (got " + fmt(in.w_scale()) + ")");
    if (!(in.b_std() >= 0) || !std::isfinite(in.b_std()))
      throw SpecError("init.b_std", "must be a finite number >= 0 (got " + fmt(in.b_std()) + ")");
    if (!(in.v_std() >= 0) || !std::isfinite(in.v_std()))
      throw SpecError("init.v_std", "must be a finite number >= 0 (got " + fmt(in.v_std()) + ")");
    c.init = {in.w_scale(), in.b_std(), in.v_std()};
    c.init_seed = s.init_seed() ? s.init_seed() : context.experiment_seed(kInitStream);

    const auto& lz = s.lanczos();
    if (!(lz.rel_tol() > 0 && lz.rel_tol() < 1))
      throw SpecError("lanczos.rel_tol", "must be in (0, 1) (got " + fmt(lz.rel_tol()) + ")");
    if (lz.max_iterations() < 1)
      throw SpecError("lanczos.max_iterations", "must be >= 1 (got " + std::to_string(lz.max_iterations()) + ")");
    c.sharpness.lanczos.rel_tol = lz.rel_tol();
    c.sharpness.lanczos.max_iterations = lz.max_iterations();
    c.sharpness.start_seed = context.task_seed(kLanczosStream);

    const auto& tol = s.tolerance();
    if (!(tol.stability() >= 0) || !std::isfinite(tol.stability()))
      throw SpecError("tolerance.stability", "must be a finite number >= 0 (got " + fmt(tol.stability()) + ")");
    if (!(tol.bound_abs() >= 0) || !std::isfinite(tol.bound_abs()))
      throw SpecError("tolerance.bound_abs", "must be a finite number >= 0 (got " + fmt(tol.bound_abs()) + ")");
    c.tol_stability = tol.stability();
    c.tol_bound = tol.bound_abs();

    load_dataset(s, context, c);
    const auto n = c.data.X.rows();
    if (static_cast<double>(c.width) * static_cast<double>(c.data.X.cols() + 2) > 5e8)
      throw SpecError("width", "k(d+2) = " + fmt(static_cast<double>(c.width) * static_cast<double>(c.data.X.cols() + 2)) +
                                   " parameters is more than this kind supports (5e8)");

    c.train.eta = s.lr();
    c.train.max_steps = s.max_steps();
    c.train.interp_loss = s.interp_loss();
    c.train.hold_steps = s.hold_steps();
    c.train.divergence_loss = s.divergence_loss();
    c.train.check_every = s.check_every();
    c.train.norm = rs::LossNormalization::HalfMean;
    if (s.optimizer() == pb::ReluMinimaStabilitySpec::OPTIMIZER_SGD) {
      if (s.batch_size() < 1 || s.batch_size() > n)
        throw SpecError("batch_size", "OPTIMIZER_SGD needs a batch size in [1, n = " + std::to_string(n) + "] (got " +
                                          std::to_string(s.batch_size()) + ")");
      c.train.optimizer = rs::Optimizer::SGD;
      c.train.batch_size = s.batch_size();
      c.train.sgd_seed = s.sgd_seed() ? s.sgd_seed() : context.task_seed(kSgdStream);
    } else if (s.batch_size() != 0) {
      throw SpecError("batch_size", "only with OPTIMIZER_SGD (full-batch GD uses all n points)");
    }
    c.record_every = s.record_every();
    c.sharpness_every = s.sharpness_every();
    return std::make_unique<ReluMinimaStabilityTask>(std::move(c));
  }

 private:
  // A path outside the allowed input directories is a spec problem of that field; an unreadable or
  // malformed file is the loader's InputError naming the file.
  static std::string resolve(const TaskContext& context, const std::string& path, const std::string& field) {
    try {
      return context.resolve_path(path);
    } catch (const InputError& e) {
      throw SpecError(field, e.what());
    }
  }

  static void load_dataset(const pb::ReluMinimaStabilitySpec& s, const TaskContext& context, ReluConfig& c) {
    const auto& ds = s.dataset();
    switch (ds.source_case()) {
      case pb::ReluDataset::kSynthetic: {
        const auto& p = ds.synthetic();
        if (p.n() < 1 || p.n() > 1'000'000)
          throw SpecError("dataset.synthetic.n", "must be in [1, 1e6] (got " + std::to_string(p.n()) + ")");
        if (p.d() < 1 || p.d() > 100'000)
          throw SpecError("dataset.synthetic.d", "must be in [1, 1e5] (got " + std::to_string(p.d()) + ")");
        // n and d may each be large, not both: the data are drawn here, for every task (0.8 GB at 1e8).
        if (static_cast<double>(p.n()) * static_cast<double>(p.d()) > kMaxSyntheticEntries)
          throw SpecError("dataset.synthetic.n", "n*d = " + fmt(static_cast<double>(p.n()) * static_cast<double>(p.d())) +
                                                     " exceeds " + fmt(kMaxSyntheticEntries) + " values (got n=" +
                                                     std::to_string(p.n()) + ", d=" + std::to_string(p.d()) + ")");
        const std::uint64_t seed = p.seed() ? p.seed() : context.experiment_seed(kDatasetStream);
        c.data = rs::make_synthetic(p.n(), p.d(), seed, p.standardize_targets());
        c.dataset_description = "synthetic(sin(2x1)+0.5x2^2, seed " + std::to_string(seed) + ")";
        return;
      }
      case pb::ReluDataset::kIdx: {
        const auto& p = ds.idx();
        if (p.images().empty()) throw SpecError("dataset.idx.images", "required (path of an IDX image file)");
        if (p.labels().empty()) throw SpecError("dataset.idx.labels", "required (path of an IDX label file)");
        if (p.classes_size() == 0)
          throw SpecError("dataset.idx.classes", "the class subset is empty: list the labels to use (e.g. [0, 1])");
        std::set<int> seen;
        for (int i = 0; i < p.classes_size(); ++i) {
          const int cl = p.classes(i);
          if (cl < 0 || cl > 255)
            throw SpecError("dataset.idx.classes", "labels are bytes: must be in [0, 255] (got " + std::to_string(cl) + ")");
          if (!seen.insert(cl).second)
            throw SpecError("dataset.idx.classes", "class " + std::to_string(cl) + " is listed twice");
        }
        if (p.target() == pb::ReluIdxDataset::TARGET_PLUS_MINUS_ONE && p.classes_size() != 2)
          throw SpecError("dataset.idx.classes", "TARGET_PLUS_MINUS_ONE needs exactly two classes (got " +
                                                     std::to_string(p.classes_size()) + ")");
        if (!p.has_num_samples() || p.num_samples() < 1)
          throw SpecError("dataset.idx.num_samples", "required, >= 1 (got " + std::to_string(p.num_samples()) + ")");
        if (!(p.pixel_scale() > 0) || !std::isfinite(p.pixel_scale()))
          throw SpecError("dataset.idx.pixel_scale", "must be a finite number > 0 (got " + fmt(p.pixel_scale()) + ")");
        rs::IdxOptions o;
        o.images_path = resolve(context, p.images(), "dataset.idx.images");
        o.labels_path = resolve(context, p.labels(), "dataset.idx.labels");
        o.classes.assign(p.classes().begin(), p.classes().end());
        o.num_samples = p.num_samples();
        o.pixel_scale = p.pixel_scale();
        o.target = p.target() == pb::ReluIdxDataset::TARGET_LABEL ? rs::IdxTarget::Label : rs::IdxTarget::PlusMinusOne;
        o.selection =
            p.selection() == pb::ReluIdxDataset::SELECTION_RANDOM ? rs::IdxSelection::Random : rs::IdxSelection::First;
        o.seed = p.seed() ? p.seed() : context.experiment_seed(kDatasetStream);
        o.standardize = p.standardize_targets();
        c.data = rs::load_idx(o);  // InputError naming the file on a bad or short file
        std::string cls;
        for (int cl : o.classes) {
          if (!cls.empty()) cls.push_back(',');
          cls.append(std::to_string(cl));
        }
        c.dataset_description = "idx(" + p.images() + ", classes {" + cls + "})";
        return;
      }
      case pb::ReluDataset::kPoints: {
        const auto& p = ds.points();
        if (p.d() < 1) throw SpecError("dataset.points.d", "must be >= 1 (got " + std::to_string(p.d()) + ")");
        if (p.y_size() == 0) throw SpecError("dataset.points.y", "no points");
        if (static_cast<std::int64_t>(p.x_size()) != static_cast<std::int64_t>(p.y_size()) * p.d())
          throw SpecError("dataset.points.x", "has " + std::to_string(p.x_size()) + " values; n*d = " +
                                                  std::to_string(p.y_size()) + "*" + std::to_string(p.d()) + " expected");
        c.data.X.resize(p.y_size(), p.d());
        c.data.y.resize(p.y_size());
        for (int j = 0; j < p.y_size(); ++j) {
          c.data.y(j) = p.y(j);
          for (int l = 0; l < p.d(); ++l) c.data.X(j, l) = p.x(j * p.d() + l);
        }
        if (!c.data.X.allFinite()) throw SpecError("dataset.points.x", "must be finite");
        if (!c.data.y.allFinite()) throw SpecError("dataset.points.y", "must be finite");
        if (p.standardize_targets()) rs::standardize_targets(c.data);
        c.dataset_description = "points";
        return;
      }
      default:
        throw SpecError("dataset", "required: one of synthetic, idx, points");
    }
  }
};

GDLAB_REGISTER_KIND(ReluMinimaStabilityKind);

}  // namespace
}  // namespace gdlab
