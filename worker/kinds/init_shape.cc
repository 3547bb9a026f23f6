// Experiment kind `init_shape`: the implicit bias of the initialization shape, Azulay, Moroshko,
// Nacson, Woodworth, Srebro, Globerson, Soudry, "On the Implicit Bias of Initialization Shape:
// Beyond Infinitesimal Mirror Descent" (ICML 2021); spec in shared/papers/separable.md §5.
//
// A diagonal linear net (§5.5) or a single hidden neuron (§5.6), initialised with scale α and shape
// s (§5.4), is trained on underdetermined Gaussian regression (§5.3) by GD (the released code's
// update) or by the gradient flow itself (Boost.Odeint dopri5 with error control). Its limit is
// compared with the minimiser of the paper's closed-form regulariser Q subject to Xβ = y (Theorem 4.1
// / Theorem 6.1), computed independently (dual Newton for the diagonal net, the 1-D fixed point of
// §5.8 for the neuron), and with controls that ignore the shape: the symmetric (s = 0) potential at
// the same scale, the minimum-L2 interpolator, and for the neuron the mirror-flow guess of §5.10 T5.2.
//
// Records on a log grid (separable.md §5.9): β (or w̃), train and test MSE, population error
// ‖β − w*‖², the relative distances to β_Q and to each control, the KKT residual of Theorem 4.1/6.1,
// the drift of the conserved quantities, Q(β(t)), and for the neuron the null-space ratio; the
// theory values at the same steps under theory/; data, κ or δ, β_Q and the controls under
// parameters/; a verdict (§5.10 T5.1/T5.2 criteria at the final point). METHOD_CLOSED_FORM skips the
// dynamics (§5.10 T5.3, the Section 7 population-error table).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/init_shape.h"

namespace gdlab {
namespace {

using init_shape::MatrixXd;
using init_shape::Model;
using init_shape::VectorXd;

// Random streams of this kind (see TaskContext): data and the neuron's random init direction are
// experiment-wide, so every task of a sweep over (α, s) sees the same data and the same direction.
constexpr std::uint64_t kDatasetStream = 1;
constexpr std::uint64_t kInitStream = 2;

enum class Method { Gd, Ode, ClosedForm };

struct InitShapeConfig {
  Model model = Model::Diagonal;
  std::string model_name;
  Method method = Method::Gd;
  std::string method_name;
  // Dataset (§5.3).
  int d = 0, n = 0, sparsity = 0, n_test = 0;
  double noise_std = 0;
  std::uint64_t data_seed = 0;
  // Initialization (§5.4): from (alpha, s), or explicit.
  bool explicit_init = false;
  double alpha = 0, s = 0;
  VectorXd u0, v0;  // diagonal, explicit
  VectorXd w0;      // neuron, explicit (empty: random direction)
  double a0 = 0;
  std::uint64_t init_seed = 0;
  init_shape::FlowOptions flow;
  double tol_distance = 0, tol_kkt = 0, tol_null_ratio = 0, tol_null_cos = 0, tol_q_solver = 0;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::vector<double> to_vector(const MatrixXd& m) {
  // Row-major, as HDF5 and numpy expect.
  std::vector<double> out;
  out.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.push_back(m(r, c));
  return out;
}

std::span<const double> span_of(const VectorXd& v) { return {v.data(), static_cast<size_t>(v.size())}; }

void put_vector(Recorder& rec, const std::string& path, const VectorXd& v) {
  rec.put_array(path, {static_cast<std::uint64_t>(v.size())}, span_of(v));
}
void put_scalar(Recorder& rec, const std::string& path, double v) {
  rec.put_array(path, {}, std::span<const double>(&v, 1));
}

// Everything the theory says about one task, computed at the start of run().
struct Theory {
  init_shape::RegressionData data;
  VectorXd theta0;
  // Diagonal.
  VectorXd kappa, kappa_blind;
  int newton_iterations = 0, newton_iterations_blind = 0;
  // Neuron.
  VectorXd w_tilde0, null_w_tilde0;
  double dbar = 0, a0 = 0, c_q = 0, c_blind = 0, c_mirror = 0, r_inf = 0;
  VectorXd beta_mirror;
  // Both: β_Q and the controls.
  VectorXd beta_q, beta_blind, beta_l2;
  double feasibility = 0, stationarity = 0;  // KKT check of β_Q
  double pop_q = 0, pop_blind = 0, pop_l2 = 0;
  double test_q = 0, test_blind = 0, test_l2 = 0;
  double q_of_beta_q = 0;
  double sep_blind = 0, sep_l2 = 0, sep_mirror = 0;  // ‖control − β_Q‖/‖β_Q‖
};

class InitShapeTask : public PreparedTask {
 public:
  explicit InitShapeTask(InitShapeConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    s << c_.model_name << " " << c_.method_name << " N=" << c_.n << " d=" << c_.d;
    if (c_.explicit_init) {
      s << " explicit init";
    } else {
      s << " alpha=" << fmt(c_.alpha) << " s=" << fmt(c_.s);
    }
    if (c_.method == Method::Gd) s << " lr=" << fmt(c_.flow.lr) << " max_steps=" << c_.flow.max_steps;
    if (c_.method == Method::Ode) s << " t_max=" << fmt(c_.flow.t_max) << " rtol=" << fmt(c_.flow.rel_tol);
    if (c_.method != Method::ClosedForm) s << " stop_mse=" << fmt(c_.flow.stop_mse);
    return s.str();
  }

  void run(Recorder& rec) override {
    const Theory th = compute_theory();
    const init_shape::RowSpace rows(th.data.X);
    record_parameters(rec, th);
    if (c_.method == Method::ClosedForm) {
      closed_form_verdict(rec, th);
      return;
    }
    const init_shape::FlowProblem problem(c_.model, th.data.X, th.data.y);
    const double bq_norm = th.beta_q.norm();
    Final last;
    auto on_record = [&](std::int64_t step, double time, const VectorXd& theta, double mse) {
      const VectorXd b = problem.predictor(theta);
      auto series = [&](const char* name, double measured, double theory) {
        rec.append(std::string("observables/") + name, step, time, measured);
        rec.append(std::string("theory/") + name, step, time, theory);
      };
      rec.append("observables/beta", step, time, span_of(b));
      rec.append("observables/mse", step, time, mse);
      if (th.data.X_test.rows() > 0) {
        const double test = (th.data.X_test * b - th.data.y_test).squaredNorm() / static_cast<double>(c_.n_test);
        series("test_mse", test, th.test_q);
      }
      series("population_error", (b - th.data.w_star).squaredNorm(), th.pop_q);
      last.distance_q = (b - th.beta_q).norm() / bq_norm;
      rec.append("observables/distance_q", step, time, last.distance_q);
      last.distance_blind = (b - th.beta_blind).norm() / bq_norm;
      series("distance_shape_blind", last.distance_blind, th.sep_blind);
      last.distance_l2 = (b - th.beta_l2).norm() / bq_norm;
      series("distance_min_l2", last.distance_l2, th.sep_l2);
      last.balance = init_shape::balance_drift(c_.model, theta, th.theta0);
      series("balance_drift", last.balance, 0.0);
      last.mse = mse;
      if (c_.model == Model::Diagonal) {
        last.kkt = init_shape::diagonal_kkt_residual(rows, b, th.kappa);
        series("kkt_residual", last.kkt, 0.0);
        series("q_value", init_shape::q_diagonal(b, th.kappa), th.q_of_beta_q);
      } else {
        last.kkt = init_shape::neuron_kkt_residual(rows, b, th.w_tilde0, th.dbar);
        series("kkt_residual", last.kkt, 0.0);
        series("q_value", init_shape::q_neuron(b, th.w_tilde0, th.dbar), th.q_of_beta_q);
        const VectorXd null_b = rows.null_part(b);
        const double n0 = th.null_w_tilde0.norm();
        last.null_ratio = null_b.norm() / n0;
        const double nb = null_b.norm();
        last.null_cos = nb > 0 ? null_b.dot(th.null_w_tilde0) / (nb * n0) : 0.0;
        series("null_ratio", last.null_ratio, th.c_q);
        series("null_cos", last.null_cos, 1.0);
        last.distance_mirror = (b - th.beta_mirror).norm() / bq_norm;
        series("distance_mirror", last.distance_mirror, th.sep_mirror);
        // The flow keeps P_null w, so a(t)/a₀ = c(t); the limit is a∞ = c_Q·a₀ (Theorem 6.1).
        series("a", theta(c_.d), th.c_q * th.a0);
      }
    };
    const init_shape::FlowResult result = init_shape::run_flow(problem, th.theta0, c_.flow, on_record);
    rec.set_attribute("steps_taken", static_cast<double>(result.steps));
    rec.set_attribute("flow_time", result.time);
    rec.set_attribute("final_mse", result.mse);
    rec.set_attribute("converged", result.converged ? "yes" : "no");
    rec.set_attribute("field_evaluations", static_cast<double>(result.field_evaluations));
    if (c_.method == Method::Ode) rec.set_attribute("ode_rejected_steps", static_cast<double>(result.rejected_steps));
    put_vector(rec, "parameters/beta_final", problem.predictor(result.theta));
    put_vector(rec, "parameters/theta_final", result.theta);
    dynamics_verdict(rec, th, last, result);
  }

 private:
  struct Final {
    double mse = NAN, distance_q = NAN, distance_blind = NAN, distance_l2 = NAN, distance_mirror = NAN;
    double kkt = NAN, balance = NAN, null_ratio = NAN, null_cos = NAN;
  };

  Theory compute_theory() const {
    Theory th;
    th.data = init_shape::make_gaussian_regression(c_.d, c_.n, c_.sparsity, c_.noise_std, c_.n_test, c_.data_seed);
    const auto& X = th.data.X;
    const auto& y = th.data.y;
    const init_shape::RowSpace rows(X);  // throws NumericError if X is rank deficient
    th.beta_l2 = init_shape::min_norm_interpolator(X, y);
    if (c_.model == Model::Diagonal) {
      VectorXd u0 = c_.u0, v0 = c_.v0;
      if (!c_.explicit_init) {
        const auto init = init_shape::scale_shape_init(c_.alpha, c_.s);
        u0 = VectorXd::Constant(c_.d, init.u0);
        v0 = VectorXd::Constant(c_.d, init.v0);
      }
      th.theta0 = init_shape::diagonal_initial_state(u0, v0);
      // κ = u₀² + v₀² (§5.5); the shape-blind control uses the symmetric init at the same scale
      // α_i = |u₀ᵢv₀ᵢ|, i.e. κ = 2α (Woodworth et al. 2020's potential).
      th.kappa = (u0.array().square() + v0.array().square()).matrix();
      th.kappa_blind = (2 * (u0.array() * v0.array()).abs()).matrix();
      const auto sol = init_shape::solve_q_diagonal(X, y, th.kappa);
      th.beta_q = sol.beta;
      th.newton_iterations = sol.iterations;
      const auto blind = init_shape::solve_q_diagonal(X, y, th.kappa_blind);
      th.beta_blind = blind.beta;
      th.newton_iterations_blind = blind.iterations;
      const auto kkt = init_shape::dense_kkt_check_diagonal(X, y, th.beta_q, th.kappa);
      th.feasibility = kkt.feasibility;
      th.stationarity = kkt.stationarity;
      th.q_of_beta_q = init_shape::q_diagonal(th.beta_q, th.kappa);
    } else {
      VectorXd w0 = c_.w0;
      double a0 = c_.a0;
      if (!c_.explicit_init) {
        // §5.6: w₀ has a random direction and norm √(α(1−s)/(1+s)); a₀ = +√(α(1+s)/(1−s)).
        const auto init = init_shape::scale_shape_init(c_.alpha, c_.s);
        Rng rng(c_.init_seed);
        w0.resize(c_.d);
        for (int i = 0; i < c_.d; ++i) w0(i) = rng.normal();
        w0 *= init.u0 / w0.norm();
        a0 = init.v0;
      }
      th.theta0 = init_shape::neuron_initial_state(w0, a0);
      th.a0 = a0;
      th.w_tilde0 = a0 * w0;
      th.null_w_tilde0 = rows.null_part(th.w_tilde0);
      // δ = a₀² − ‖w₀‖² = 4αs/(1−s²), d̄ = δ/2 (§5.6).
      th.dbar = 0.5 * (a0 * a0 - w0.squaredNorm());
      const auto sol = init_shape::solve_q_neuron(X, y, th.w_tilde0, th.dbar);
      th.beta_q = sol.w_tilde;
      th.c_q = sol.c;
      th.r_inf = sol.r_inf;
      const auto blind = init_shape::solve_q_neuron(X, y, th.w_tilde0, 0.0);
      th.beta_blind = blind.w_tilde;
      th.c_blind = blind.c;
      th.c_mirror = init_shape::neuron_mirror_guess(sol.r_inf, th.w_tilde0.norm(), th.dbar);
      th.beta_mirror = th.beta_l2 + th.c_mirror * th.null_w_tilde0;
      th.feasibility = (X * th.beta_q - y).norm() / y.norm();
      th.stationarity = init_shape::neuron_kkt_residual(rows, th.beta_q, th.w_tilde0, th.dbar);
      th.q_of_beta_q = init_shape::q_neuron(th.beta_q, th.w_tilde0, th.dbar);
    }
    auto pop = [&](const VectorXd& b) { return (b - th.data.w_star).squaredNorm(); };
    auto test = [&](const VectorXd& b) {
      return c_.n_test > 0 ? (th.data.X_test * b - th.data.y_test).squaredNorm() / static_cast<double>(c_.n_test) : NAN;
    };
    th.pop_q = pop(th.beta_q);
    th.pop_blind = pop(th.beta_blind);
    th.pop_l2 = pop(th.beta_l2);
    th.test_q = test(th.beta_q);
    th.test_blind = test(th.beta_blind);
    th.test_l2 = test(th.beta_l2);
    const double bq = th.beta_q.norm();
    th.sep_blind = (th.beta_blind - th.beta_q).norm() / bq;
    th.sep_l2 = (th.beta_l2 - th.beta_q).norm() / bq;
    if (c_.model == Model::SingleNeuron) th.sep_mirror = (th.beta_mirror - th.beta_q).norm() / bq;
    return th;
  }

  void record_parameters(Recorder& rec, const Theory& th) const {
    const auto n = static_cast<std::uint64_t>(c_.n), d = static_cast<std::uint64_t>(c_.d);
    rec.put_array("parameters/X", {n, d}, to_vector(th.data.X));
    put_vector(rec, "parameters/y", th.data.y);
    put_vector(rec, "parameters/w_star", th.data.w_star);
    put_vector(rec, "parameters/theta0", th.theta0);
    put_vector(rec, "parameters/beta_q", th.beta_q);
    put_vector(rec, "parameters/beta_shape_blind", th.beta_blind);
    put_vector(rec, "parameters/beta_min_l2", th.beta_l2);
    put_scalar(rec, "parameters/population_error_q", th.pop_q);
    put_scalar(rec, "parameters/population_error_shape_blind", th.pop_blind);
    put_scalar(rec, "parameters/population_error_min_l2", th.pop_l2);
    if (c_.n_test > 0) {
      put_scalar(rec, "parameters/test_mse_q", th.test_q);
      put_scalar(rec, "parameters/test_mse_shape_blind", th.test_blind);
      put_scalar(rec, "parameters/test_mse_min_l2", th.test_l2);
    }
    put_scalar(rec, "parameters/separation_shape_blind", th.sep_blind);
    put_scalar(rec, "parameters/separation_min_l2", th.sep_l2);
    put_scalar(rec, "parameters/q_of_beta_q", th.q_of_beta_q);
    rec.set_attribute("model", c_.model_name);
    rec.set_attribute("method", c_.method_name);
    rec.set_attribute("init", c_.explicit_init ? "explicit" : "alpha_s");
    if (!c_.explicit_init) {
      rec.set_attribute("alpha", c_.alpha);
      rec.set_attribute("s", c_.s);
    }
    rec.set_attribute("q_feasibility", th.feasibility);
    rec.set_attribute("q_stationarity", th.stationarity);
    if (c_.method == Method::Gd) rec.set_attribute("lr", c_.flow.lr);
    if (c_.method == Method::Ode) {
      rec.set_attribute("ode_stepper", "boost::numeric::odeint controlled runge_kutta_dopri5");
      rec.set_attribute("ode_abs_tol", c_.flow.abs_tol);
      rec.set_attribute("ode_rel_tol", c_.flow.rel_tol);
      rec.set_attribute("t_max", c_.flow.t_max);
    }
    if (c_.method != Method::ClosedForm) rec.set_attribute("stop_mse", c_.flow.stop_mse);
    if (c_.model == Model::Diagonal) {
      rec.set_attribute("loss_convention", "(1/2N)|y - X beta|^2 (diagonal_linear_networks.py)");
      put_vector(rec, "parameters/kappa", th.kappa);
      put_vector(rec, "parameters/kappa_shape_blind", th.kappa_blind);
      rec.set_attribute("newton_iterations", static_cast<double>(th.newton_iterations));
      rec.set_attribute("newton_iterations_shape_blind", static_cast<double>(th.newton_iterations_blind));
      if (!c_.explicit_init) rec.set_attribute("kappa", init_shape::kappa_of_scale_shape(c_.alpha, c_.s));
    } else {
      rec.set_attribute("loss_convention", "(1/N)|y - X w_tilde|^2 (torch F.mse_loss)");
      put_vector(rec, "parameters/w_tilde0", th.w_tilde0);
      put_vector(rec, "parameters/beta_mirror", th.beta_mirror);
      put_scalar(rec, "parameters/delta", 2 * th.dbar);
      put_scalar(rec, "parameters/c_q", th.c_q);
      put_scalar(rec, "parameters/c_shape_blind", th.c_blind);
      put_scalar(rec, "parameters/c_mirror", th.c_mirror);
      put_scalar(rec, "parameters/separation_mirror", th.sep_mirror);
      rec.set_attribute("delta", 2 * th.dbar);
      rec.set_attribute("c_q", th.c_q);
      rec.set_attribute("c_mirror", th.c_mirror);
    }
  }

  struct VerdictBuilder {
    bool pass = true;
    std::string detail;
    void check(bool ok, const std::string& text) {
      pass = pass && ok;
      detail += (detail.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
    }
    void note(const std::string& text) { detail += (detail.empty() ? "" : "; ") + text; }
    void write(Recorder& rec) const {
      rec.set_attribute("verdict", pass ? "pass" : "fail");
      rec.set_attribute("verdict_detail", detail);
    }
  };

  void q_solver_checks(VerdictBuilder& v, const Theory& th) const {
    v.check(th.feasibility < c_.tol_q_solver,
            "Q-minimiser |X beta_Q - y|/|y| " + fmt(th.feasibility) + " < " + fmt(c_.tol_q_solver));
    v.check(th.stationarity < c_.tol_q_solver,
            "Q-minimiser KKT stationarity " + fmt(th.stationarity) + " < " + fmt(c_.tol_q_solver));
  }

  void closed_form_verdict(Recorder& rec, const Theory& th) const {
    VerdictBuilder v;
    q_solver_checks(v, th);
    v.note("population error |beta_Q - w*|^2 " + fmt(th.pop_q) + " (shape-blind " + fmt(th.pop_blind) + ", min-L2 " +
           fmt(th.pop_l2) + ")");
    v.write(rec);
  }

  // A control is "rejected" when the measured limit is farther from it than the tolerance. Controls
  // that coincide with β_Q (the shape-blind one at s = 0) cannot be rejected and are only noted.
  void control(VerdictBuilder& v, const char* name, double separation, double distance) const {
    if (separation > 2 * c_.tol_distance) {
      v.check(distance > c_.tol_distance, std::string(name) + " control missed by " + fmt(distance) + " > " +
                                              fmt(c_.tol_distance) + " (|control - beta_Q|/|beta_Q| " +
                                              fmt(separation) + ")");
    } else {
      v.note(std::string(name) + " control coincides with beta_Q (separation " + fmt(separation) + ")");
    }
  }

  void dynamics_verdict(Recorder& rec, const Theory& th, const Final& f, const init_shape::FlowResult& r) const {
    VerdictBuilder v;
    v.check(r.converged, "train MSE " + fmt(r.mse) + " < stop_mse " + fmt(c_.flow.stop_mse) + " after " +
                             std::to_string(r.steps) + (c_.method == Method::Gd ? " steps" : " ODE steps"));
    q_solver_checks(v, th);
    v.check(f.distance_q < c_.tol_distance,
            "|beta - beta_Q|/|beta_Q| " + fmt(f.distance_q) + " < " + fmt(c_.tol_distance));
    if (c_.model == Model::Diagonal) {
      v.check(f.kkt < c_.tol_kkt,
              "KKT residual |P_null asinh(beta/kappa)|/|.| " + fmt(f.kkt) + " < " + fmt(c_.tol_kkt));
    } else {
      const double rel = std::abs(f.null_ratio - th.c_q) / th.c_q;
      v.check(rel < c_.tol_null_ratio, "null-space ratio c_GD " + fmt(f.null_ratio) + " vs c_Q " + fmt(th.c_q) +
                                           " (rel " + fmt(rel) + " < " + fmt(c_.tol_null_ratio) + ")");
      v.check(1 - f.null_cos < c_.tol_null_cos,
              "1 - cos(P_null w(T), P_null w(0)) " + fmt(1 - f.null_cos) + " < " + fmt(c_.tol_null_cos));
      const double mirror_sep = std::abs(th.c_mirror - th.c_q) / th.c_q;
      if (mirror_sep > 2 * c_.tol_null_ratio) {
        const double miss = std::abs(th.c_mirror - f.null_ratio) / f.null_ratio;
        v.check(miss > c_.tol_null_ratio, "mirror guess c " + fmt(th.c_mirror) + " missed by rel " + fmt(miss) +
                                              " > " + fmt(c_.tol_null_ratio));
      } else {
        v.note("mirror guess c " + fmt(th.c_mirror) + " coincides with c_Q");
      }
    }
    control(v, "shape-blind", th.sep_blind, f.distance_blind);
    control(v, "min-L2", th.sep_l2, f.distance_l2);
    v.write(rec);
  }

  InitShapeConfig c_;
};

class InitShapeKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "init_shape"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::InitShapeSpec&>(message);
    InitShapeConfig c;
    c.model = s.model() == pb::InitShapeSpec::MODEL_SINGLE_NEURON ? Model::SingleNeuron : Model::Diagonal;
    c.model_name = c.model == Model::Diagonal ? "diagonal" : "single_neuron";
    switch (s.method()) {
      case pb::InitShapeSpec::METHOD_ODE:
        c.method = Method::Ode;
        c.method_name = "ode";
        break;
      case pb::InitShapeSpec::METHOD_CLOSED_FORM:
        c.method = Method::ClosedForm;
        c.method_name = "closed_form";
        break;
      default:
        c.method = Method::Gd;
        c.method_name = "gd";
    }

    validate_dataset(s.dataset(), context, c);
    validate_init(s, context, c);
    validate_method(s, c);

    const auto& tol = s.tolerance();
    auto positive_tol = [](const char* field, double v) {
      if (!(v > 0) || !std::isfinite(v))
        throw SpecError(std::string("tolerance.") + field, "must be a finite number > 0 (got " + fmt(v) + ")");
      return v;
    };
    c.tol_distance = positive_tol("distance", tol.distance());
    c.tol_kkt = positive_tol("kkt", tol.kkt());
    c.tol_null_ratio = positive_tol("null_ratio", tol.null_ratio());
    c.tol_null_cos = positive_tol("null_cos", tol.null_cos());
    c.tol_q_solver = positive_tol("q_solver", tol.q_solver());
    return std::make_unique<InitShapeTask>(std::move(c));
  }

 private:
  static void validate_dataset(const pb::GaussianRegression& ds, const TaskContext& context, InitShapeConfig& c) {
    if (ds.d() < 2 || ds.d() > 100000)
      throw SpecError("dataset.d", "must be in [2, 100000] (got " + std::to_string(ds.d()) + ")");
    if (ds.n() < 1 || ds.n() >= ds.d())
      throw SpecError("dataset.n", "must be in [1, d-1] (got n=" + std::to_string(ds.n()) + ", d=" +
                                       std::to_string(ds.d()) +
                                       "): Theorems 4.1 and 6.1 are about the underdetermined regime N < d, where "
                                       "X beta = y has many solutions");
    if (ds.sparsity() < 1 || ds.sparsity() > ds.d())
      throw SpecError("dataset.sparsity", "must be in [1, d] (got " + std::to_string(ds.sparsity()) + ")");
    if (!(ds.noise_std() >= 0) || !std::isfinite(ds.noise_std()))
      throw SpecError("dataset.noise_std", "must be a finite number >= 0 (got " + fmt(ds.noise_std()) + ")");
    if (ds.n_test() < 0 || ds.n_test() > 1'000'000)
      throw SpecError("dataset.n_test", "must be in [0, 1e6] (got " + std::to_string(ds.n_test()) + ")");
    const double cells = static_cast<double>(ds.d()) * (static_cast<double>(ds.n()) + ds.n_test());
    if (cells > 5e7)
      throw SpecError("dataset.n_test", "d*(n + n_test) = " + fmt(cells) + " exceeds 5e7 values");
    c.d = ds.d();
    c.n = ds.n();
    c.sparsity = ds.sparsity();
    c.noise_std = ds.noise_std();
    c.n_test = ds.n_test();
    c.data_seed = ds.seed() ? ds.seed() : context.experiment_seed(kDatasetStream);
  }

  static void validate_init(const pb::InitShapeSpec& s, const TaskContext& context, InitShapeConfig& c) {
    const bool diag = c.model == Model::Diagonal;
    const bool has_uv = s.u0_size() > 0 || s.v0_size() > 0;
    const bool has_wa = s.w0_size() > 0 || s.has_a0();
    if (diag && has_wa) throw SpecError(s.w0_size() > 0 ? "w0" : "a0", "only for MODEL_SINGLE_NEURON");
    if (!diag && has_uv)
      throw SpecError(s.u0_size() > 0 ? "u0" : "v0", "only for MODEL_DIAGONAL (the neuron uses w0, a0)");
    c.explicit_init = has_uv || has_wa;
    if (c.explicit_init) {
      if (s.has_alpha()) throw SpecError("alpha", "must not be set together with an explicit initialization");
      if (s.has_s()) throw SpecError("s", "must not be set together with an explicit initialization");
    } else {
      if (!s.has_alpha())
        throw SpecError("alpha", std::string("required (the initialization scale |u0|*|v0|, > 0) unless ") +
                                     (diag ? "u0 and v0" : "w0 and a0") + " are given");
      if (!(s.alpha() > 0) || !std::isfinite(s.alpha()))
        throw SpecError("alpha", "must be a finite number > 0 (got " + fmt(s.alpha()) + ")");
      if (!(s.s() > -1 && s.s() < 1))
        throw SpecError("s", "must be in (-1, 1) (got " + fmt(s.s()) + "): s = (|v0|-|u0|)/(|v0|+|u0|)");
      c.alpha = s.alpha();
      c.s = s.s();
      c.init_seed = s.init_seed() ? s.init_seed() : context.experiment_seed(kInitStream);
      return;
    }
    auto read_vector = [&](const char* field, const google::protobuf::RepeatedField<double>& values) {
      if (values.size() != c.d)
        throw SpecError(field, "has " + std::to_string(values.size()) + " entries but the data have dimension d=" +
                                   std::to_string(c.d));
      VectorXd v(c.d);
      for (int i = 0; i < c.d; ++i) {
        if (!std::isfinite(values[i]) || (diag && values[i] == 0))
          throw SpecError(std::string(field) + "[" + std::to_string(i) + "]",
                          std::string("must be finite") + (diag ? " and nonzero" : "") + " (got " + fmt(values[i]) +
                              ")");
        v(i) = values[i];
      }
      return v;
    };
    if (diag) {
      if (s.u0_size() == 0) throw SpecError("u0", "required together with v0");
      if (s.v0_size() == 0) throw SpecError("v0", "required together with u0");
      c.u0 = read_vector("u0", s.u0());
      c.v0 = read_vector("v0", s.v0());
    } else {
      if (s.w0_size() == 0) throw SpecError("w0", "required together with a0");
      if (!s.has_a0()) throw SpecError("a0", "required together with w0");
      c.w0 = read_vector("w0", s.w0());
      if (!(c.w0.norm() > 0)) throw SpecError("w0", "must not be the zero vector");
      if (!std::isfinite(s.a0()) || s.a0() == 0)
        throw SpecError("a0", "must be finite and nonzero (got " + fmt(s.a0()) + ")");
      c.a0 = s.a0();
    }
  }

  static void validate_method(const pb::InitShapeSpec& s, InitShapeConfig& c) {
    auto& f = c.flow;
    f.method = c.method == Method::Ode ? init_shape::Method::Ode : init_shape::Method::GradientDescent;
    if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
      throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
    f.points_per_decade = s.points_per_decade();
    if (s.max_steps() < 1 || s.max_steps() > 10'000'000'000LL)
      throw SpecError("max_steps", "must be in [1, 1e10] (got " + std::to_string(s.max_steps()) + ")");
    f.max_steps = s.max_steps();
    // §5.10: stop at MSE < 1e-14 (T5.1, diagonal) and < 1e-20 (T5.2, neuron).
    f.stop_mse = s.has_stop_mse() ? s.stop_mse() : (c.model == Model::Diagonal ? 1e-14 : 1e-20);
    if (!(f.stop_mse > 0) || !std::isfinite(f.stop_mse))
      throw SpecError("stop_mse", "must be a finite number > 0 (got " + fmt(f.stop_mse) + ")");
    if (c.method == Method::Gd) {
      if (!s.has_lr()) throw SpecError("lr", "required for METHOD_GD (the step size, > 0)");
      if (!(s.lr() > 0) || !std::isfinite(s.lr()))
        throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
      f.lr = s.lr();
    } else if (c.method == Method::Ode) {
      if (!s.has_t_max()) throw SpecError("t_max", "required for METHOD_ODE (the flow time to integrate to, > 0)");
      if (!(s.t_max() > 0) || !std::isfinite(s.t_max()))
        throw SpecError("t_max", "must be a finite number > 0 (got " + fmt(s.t_max()) + ")");
      f.t_max = s.t_max();
      if (!(s.t_first() > 0) || !(s.t_first() <= s.t_max()))
        throw SpecError("t_first", "must be in (0, t_max] (got " + fmt(s.t_first()) + ")");
      f.t_first = s.t_first();
      if (!(s.ode_abs_tol() > 0) || !(s.ode_abs_tol() < 1))
        throw SpecError("ode_abs_tol", "must be in (0, 1) (got " + fmt(s.ode_abs_tol()) + ")");
      if (!(s.ode_rel_tol() >= 1e-15) || !(s.ode_rel_tol() < 1))
        throw SpecError("ode_rel_tol", "must be in [1e-15, 1) (got " + fmt(s.ode_rel_tol()) + ")");
      f.abs_tol = s.ode_abs_tol();
      f.rel_tol = s.ode_rel_tol();
    }
  }
};

GDLAB_REGISTER_KIND(InitShapeKind);

}  // namespace
}  // namespace gdlab
