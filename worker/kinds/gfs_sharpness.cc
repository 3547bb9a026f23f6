// Experiment kind `gfs_sharpness`: Kreisler, Nacson, Soudry, Carmon, "Gradient Descent Monotonically
// Decreases the Sharpness of Gradient Flow Solutions in Scalar Networks and Beyond" (ICML 2023,
// arXiv:2305.13064); spec in shared/papers/stability.md §3.
//
// Full-batch GD with a fixed step η on a scalar network L = (m/2)(Πw_i − y*)² (§3.4) or on the squared
// regression model L = (1/2n)Σ(⟨w⊙w, x_j⟩ − y_j)² (§3.7), started near a minimiser whose sharpness is
// slightly above 2/η (§3.10 T3.3) or at an explicit point. At every step the GFS sharpness
// ϕ(w) = λ_max(∇²L(S_GF(w))) is computed by the closed form (§3.4, scalar networks) or by integrating
// gradient flow to convergence (§3.7, Boost.Odeint), optionally both (the T3.1 cross-check).
//
// Records (§3.9) per recorded step: loss, π(w) (scalar) or ‖r‖ (regression), the sharpness λ_max(∇²L),
// ϕ, η·λ_max/2, η·ϕ/2, max|b_ij| (scalar), the loss-increase flag and the running counts of loss and ϕ
// increases, w; theory/: the edge of stability 2/η (normalised: 1). Per run under parameters/: w0, the
// start minimiser s, w_final, η, ρ₀, δ, ϕ(w0), the final sharpness, the reflection prediction 2 − ρ₀,
// the data (regression). A verdict on the §3.10 criteria (T3.1, T3.3, T3.5) at the end of the run.
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/gfs_sharpness.h"

namespace gdlab {
namespace {

using gfs::MatrixXd;
using gfs::VectorXd;

// Random streams of this kind (see TaskContext): the regression data and the random start direction
// are experiment-wide, so every task of a sweep over ρ₀ or δ starts from the same minimiser.
constexpr std::uint64_t kDataStream = 1;
constexpr std::uint64_t kInitStream = 2;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class ModelKind { ScalarNetwork, SquaredRegression };
enum class Route { ClosedForm, Flow };

struct GfsSharpnessConfig {
  ModelKind model = ModelKind::ScalarNetwork;
  std::string model_name;
  // Scalar network (§3.4).
  int depth = 0;
  double y_star = 1, x_sq_mean = 1;
  // Squared regression (§3.7).
  int n = 0, d = 0;
  std::uint64_t data_seed = 0;
  // Start.
  bool edge_start = false;
  double rho0 = kNaN, delta = 0;
  gfs::Branch branch = gfs::Branch::LargeB;
  double init_scale = 1;
  std::uint64_t init_seed = 0;
  VectorXd w0_explicit;
  double lr = kNaN;  // η; NaN for a regression edge start (derived in run())
  // Scalar edge start, computed in prepare().
  gfs::EdgeMinimiser edge;
  // GD.
  std::int64_t max_steps = 0;
  double stop_loss = 0;
  // GFS sharpness.
  Route route = Route::ClosedForm;
  int flow_every = 1, flow_check_every = 0;
  gfs::FlowOptions flow;
  std::string integrator_name;
  // Recording.
  std::int64_t dense_steps = 0;
  int points_per_decade = 50;
  // Tolerances.
  double tol_monotone = 0, tol_monotone_flow = 0, tol_edge = 0, tol_reflection = 0, reflection_rho_max = 0,
         reflection_delta_max = 0, tol_flow_check = 0;
  bool require_loss_increase = true;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::span<const double> span_of(const VectorXd& v) { return {v.data(), static_cast<size_t>(v.size())}; }

std::vector<double> to_vector(const MatrixXd& m) {
  // Row-major, as HDF5 and numpy expect.
  std::vector<double> out;
  out.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.push_back(m(r, c));
  return out;
}

void put_vector(Recorder& rec, const std::string& path, const VectorXd& v) {
  rec.put_array(path, {static_cast<std::uint64_t>(v.size())}, span_of(v));
}
void put_scalar(Recorder& rec, const std::string& path, double v) {
  rec.put_array(path, {}, std::span<const double>(&v, 1));
}

// Recording grid: every step up to dense_steps, then ~points_per_decade log-spaced steps per decade.
class RecordGrid {
 public:
  RecordGrid(std::int64_t dense, int per_decade)
      : dense_(dense), factor_(std::pow(10.0, 1.0 / per_decade)), next_(dense + 1) {}
  bool take(std::int64_t t, bool last) {
    if (t <= dense_) return true;
    if (t >= next_) {
      next_ = std::max<std::int64_t>(t + 1, static_cast<std::int64_t>(std::ceil(static_cast<double>(t) * factor_)));
      return true;
    }
    return last;
  }

 private:
  std::int64_t dense_;
  double factor_;
  std::int64_t next_;
};

class GfsSharpnessTask : public PreparedTask {
 public:
  explicit GfsSharpnessTask(GfsSharpnessConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    if (c_.model == ModelKind::ScalarNetwork) {
      s << "scalar network D=" << c_.depth;
      if (c_.y_star != 1 || c_.x_sq_mean != 1) s << " y*=" << fmt(c_.y_star) << " m=" << fmt(c_.x_sq_mean);
    } else {
      s << "squared regression n=" << c_.n << " d=" << c_.d;
    }
    s << " eta=" << (std::isnan(c_.lr) ? "2*rho0/phi(s)" : fmt(c_.lr));
    if (c_.edge_start) {
      s << " rho0=" << fmt(c_.rho0) << " delta=" << fmt(c_.delta);
      if (c_.branch == gfs::Branch::SmallB) s << " (small-b branch)";
    } else {
      s << " explicit w0";
    }
    s << " gfs=" << (c_.route == Route::ClosedForm ? "closed_form" : "flow/" + c_.integrator_name);
    if (c_.flow_check_every > 0) s << " flow_check_every=" << c_.flow_check_every;
    s << " max_steps=" << c_.max_steps;
    return s.str();
  }

  void run(Recorder& rec) override {
    // ---- the model, η and the start --------------------------------------------------------------
    std::unique_ptr<gfs::Model> model;
    std::unique_ptr<gfs::ScalarNetwork> net;
    VectorXd start_minimiser, w0;
    double eta = c_.lr;
    if (c_.model == ModelKind::ScalarNetwork) {
      net = std::make_unique<gfs::ScalarNetwork>(c_.depth, c_.y_star, c_.x_sq_mean);
      if (c_.edge_start) {
        start_minimiser = c_.edge.s;
        w0 = (1.0 + c_.delta) * start_minimiser;
      } else {
        w0 = c_.w0_explicit;
      }
      put_scalar(rec, "parameters/flattest_sharpness", net->flattest_sharpness());
    } else {
      const gfs::RegressionData data = gfs::make_regression_data(c_.n, c_.d, c_.data_seed);
      model = std::make_unique<gfs::SquaredRegression>(data.X, data.y);
      rec.put_array("parameters/X", {static_cast<std::uint64_t>(c_.n), static_cast<std::uint64_t>(c_.d)},
                    to_vector(data.X));
      put_vector(rec, "parameters/y", data.y);
      put_vector(rec, "parameters/w_star", data.w_star);
      if (c_.edge_start) {
        // §3.10 T3.3 carried over: s = S_GF(init_scale·g), η = 2ρ₀/ϕ(s), w0 = (1 + δ)s.
        const VectorXd w_random = gfs::gaussian_vector(c_.d, c_.init_scale, c_.init_seed);
        const gfs::FlowResult fr = gfs::integrate_gradient_flow(*model, w_random, c_.flow);
        if (!fr.converged)
          throw NumericError("the gradient flow from the random start did not converge within flow.max_steps (|grad L| = " +
                             fmt(fr.grad_norm) + ")");
        put_vector(rec, "parameters/init_direction", w_random);
        rec.set_attribute("start_flow_time", fr.time);
        rec.set_attribute("start_flow_steps", static_cast<double>(fr.steps));
        start_minimiser = fr.s;
        eta = 2.0 * c_.rho0 / fr.phi;
        w0 = (1.0 + c_.delta) * start_minimiser;
      } else {
        w0 = c_.w0_explicit;
      }
    }
    const gfs::Model& m = net ? static_cast<const gfs::Model&>(*net) : *model;
    const double edge = 2.0 / eta;

    put_vector(rec, "parameters/w0", w0);
    if (start_minimiser.size() > 0) {
      put_vector(rec, "parameters/start_minimiser", start_minimiser);
      put_scalar(rec, "parameters/start_sharpness", gfs::lambda_max(m.hessian(start_minimiser)));
    }
    put_scalar(rec, "parameters/eta", eta);
    put_scalar(rec, "parameters/two_over_eta", edge);
    rec.set_attribute("model", c_.model_name);
    rec.set_attribute("gfs_method", c_.route == Route::ClosedForm ? "closed_form" : "flow");
    rec.set_attribute("integrator", c_.integrator_name);
    rec.set_attribute("lr", eta);
    if (c_.model == ModelKind::ScalarNetwork) {
      rec.set_attribute("depth", static_cast<double>(c_.depth));
      rec.set_attribute("y_star", c_.y_star);
      rec.set_attribute("x_sq_mean", c_.x_sq_mean);
    } else {
      rec.set_attribute("n", static_cast<double>(c_.n));
      rec.set_attribute("d", static_cast<double>(c_.d));
    }
    if (c_.edge_start) {
      rec.set_attribute("rho0", c_.rho0);
      rec.set_attribute("delta", c_.delta);
      rec.set_attribute("branch", c_.branch == gfs::Branch::LargeB ? "large_b" : "small_b");
      put_scalar(rec, "parameters/rho0", c_.rho0);
      put_scalar(rec, "parameters/delta", c_.delta);
      // §3.6: near the threshold η·λ_max(w_∞)/2 ≈ 2 − ρ₀ (the "reflection").
      put_scalar(rec, "parameters/reflection_prediction", 2.0 - c_.rho0);
    }

    // ---- the GD run ------------------------------------------------------------------------------
    gfs::GdOptions gd;
    gd.eta = eta;
    gd.max_steps = c_.max_steps;
    gd.stop_loss = c_.stop_loss;
    gfs::IncreaseCounter phi_counter;
    phi_counter.rel_tol = c_.route == Route::ClosedForm ? c_.tol_monotone : c_.tol_monotone_flow;
    RecordGrid grid(c_.dense_steps, c_.points_per_decade);
    double prev_loss = kNaN, phi0 = kNaN, phi_last = kNaN;
    std::int64_t loss_increases = 0, undefined_steps = 0, flow_evaluations = 0, flow_failures = 0;
    double check_phi = 0, check_point = 0, check_drift = 0;  // worst flow-vs-closed-form errors (T3.1)
    std::int64_t flow_checks = 0;

    auto time_of = [&](std::int64_t t) { return eta * static_cast<double>(t); };
    auto flow_at = [&](const VectorXd& w, std::int64_t t) {
      gfs::FlowResult fr = gfs::integrate_gradient_flow(m, w, c_.flow);
      ++flow_evaluations;
      if (!fr.converged) {
        // No GFS within flow.max_steps: ϕ unknown here (NaN), and the verdict fails.
        ++flow_failures;
        fr.phi = kNaN;
        fr.s.setConstant(kNaN);
      }
      const double time = time_of(t);
      rec.append("observables/flow_time", t, time, fr.time);
      rec.append("observables/flow_steps", t, time, static_cast<double>(fr.steps));
      rec.append("observables/flow_grad_norm", t, time, fr.grad_norm);
      return fr;
    };
    auto record_phi = [&](const char* name, std::int64_t t, double phi) {
      const double time = time_of(t);
      rec.append(std::string("observables/") + name, t, time, phi);
      rec.append(std::string("observables/") + name + "_normalized", t, time, eta * phi / 2.0);
    };

    const gfs::GdSummary summary = gfs::run_gd(m, w0, gd, [&](std::int64_t t, const VectorXd& w, double loss, bool last) {
      const bool loss_up = t > 0 && loss > prev_loss;
      if (loss_up) ++loss_increases;
      prev_loss = loss;
      const bool record = grid.take(t, last);
      const double time = time_of(t);
      // A diverged iterate (the run's last) gets no GFS or sharpness evaluation.
      const bool usable = loss <= gd.divergence_loss && w.allFinite();
      double phi = kNaN;
      if (!usable) {
        if (record) record_phi("gfs_sharpness", t, kNaN);
        if (record && c_.route == Route::Flow) {
          rec.append("theory/gfs_sharpness", t, time, edge);
          rec.append("theory/gfs_sharpness_normalized", t, time, 1.0);
        }
      } else if (c_.route == Route::ClosedForm) {
        const gfs::ClosedFormGfs cf = gfs::closed_form_gfs(*net, w);
        if (cf.valid) {
          phi = cf.phi;
          phi_counter.add(phi);
        } else {
          ++undefined_steps;
        }
        if (record) record_phi("gfs_sharpness", t, phi);
        if (c_.flow_check_every > 0 && (t % c_.flow_check_every == 0 || last) && cf.valid) {
          // §3.10 T3.1: the closed form against the integrated flow, and the conserved balances.
          const gfs::FlowResult fr = flow_at(w, t);
          const double e_phi = std::abs(fr.phi - cf.phi);
          const double e_point = (fr.s - cf.s).cwiseAbs().maxCoeff();
          const double e_drift = (gfs::balances(fr.s) - gfs::balances(w)).cwiseAbs().maxCoeff();
          if (fr.s.allFinite()) {
            check_phi = std::max(check_phi, e_phi);
            check_point = std::max(check_point, e_point);
            check_drift = std::max(check_drift, e_drift);
          }
          ++flow_checks;
          record_phi("gfs_sharpness_flow", t, fr.phi);
          rec.append("observables/flow_phi_error", t, time, e_phi);
          rec.append("observables/flow_point_error", t, time, e_point);
          rec.append("observables/flow_balance_drift", t, time, e_drift);
        }
      } else if (t % c_.flow_every == 0 || last) {
        const gfs::FlowResult fr = flow_at(w, t);
        phi = fr.phi;
        if (!std::isnan(phi)) phi_counter.add(phi);
        record_phi("gfs_sharpness", t, phi);
        rec.append("theory/gfs_sharpness", t, time, edge);
        rec.append("theory/gfs_sharpness_normalized", t, time, 1.0);
      }
      if (t == 0) phi0 = phi;
      if (!std::isnan(phi)) phi_last = phi;
      if (!record) return;
      const double sharpness = usable ? gfs::lambda_max(m.hessian(w)) : kNaN;
      rec.append("observables/loss", t, time, loss);
      rec.append("observables/sharpness", t, time, sharpness);
      rec.append("observables/sharpness_normalized", t, time, eta * sharpness / 2.0);
      rec.append("observables/loss_increased", t, time, loss_up ? 1.0 : 0.0);
      rec.append("observables/loss_increases", t, time, static_cast<double>(loss_increases));
      rec.append("observables/gfs_increases", t, time, static_cast<double>(phi_counter.increases));
      rec.append("observables/w", t, time, span_of(w));
      if (net) {
        rec.append("observables/pi", t, time, gfs::product(w));
        rec.append("observables/max_balance", t, time, gfs::max_balance(w));
        rec.append("theory/pi", t, time, c_.y_star);
      } else {
        rec.append("observables/residual_norm", t, time, static_cast<const gfs::SquaredRegression&>(m).residual(w).norm());
      }
      rec.append("theory/sharpness", t, time, edge);
      rec.append("theory/sharpness_normalized", t, time, 1.0);
      if (c_.route == Route::ClosedForm) {
        rec.append("theory/gfs_sharpness", t, time, edge);
        rec.append("theory/gfs_sharpness_normalized", t, time, 1.0);
      }
    });

    // ---- per-run results and the verdict ---------------------------------------------------------
    const double final_sharpness =
        summary.w_final.allFinite() ? gfs::lambda_max(m.hessian(summary.w_final)) : kNaN;
    const double final_normalized = eta * final_sharpness / 2.0;
    put_vector(rec, "parameters/w_final", summary.w_final);
    put_scalar(rec, "parameters/phi0", phi0);
    put_scalar(rec, "parameters/phi0_normalized", eta * phi0 / 2.0);
    put_scalar(rec, "parameters/final_sharpness", final_sharpness);
    put_scalar(rec, "parameters/final_sharpness_normalized", final_normalized);
    rec.set_attribute("steps_taken", static_cast<double>(summary.steps));
    rec.set_attribute("converged", summary.converged ? "yes" : "no");
    rec.set_attribute("final_loss", summary.final_loss);
    rec.set_attribute("loss_increases", static_cast<double>(loss_increases));
    rec.set_attribute("gfs_increases", static_cast<double>(phi_counter.increases));
    rec.set_attribute("max_gfs_rel_increase", phi_counter.samples > 1 ? phi_counter.max_rel_increase : kNaN);
    rec.set_attribute("phi0_normalized", eta * phi0 / 2.0);
    rec.set_attribute("phi_final_normalized", eta * phi_last / 2.0);
    rec.set_attribute("final_sharpness_normalized", final_normalized);
    rec.set_attribute("flow_evaluations", static_cast<double>(flow_evaluations));
    rec.set_attribute("flow_failures", static_cast<double>(flow_failures));

    bool pass = true;
    std::string detail;
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      detail += (detail.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
    };
    check(!summary.diverged, summary.diverged ? "GD diverged at step " + std::to_string(summary.steps) : "no divergence");
    check(summary.converged, "converged: loss " + fmt(summary.final_loss) + " < " + fmt(c_.stop_loss) + " after " +
                                 std::to_string(summary.steps) + " steps (max " + std::to_string(c_.max_steps) + ")");
    if (c_.route == Route::ClosedForm)
      check(undefined_steps == 0, "closed form defined at every step (" + std::to_string(undefined_steps) +
                                      " steps on the pi = 0 saddle)");
    check(phi_counter.increases == 0,
          "GFS sharpness increases " + std::to_string(phi_counter.increases) + " over " +
              std::to_string(phi_counter.samples) + " values (max relative change " +
              fmt(phi_counter.samples > 1 ? phi_counter.max_rel_increase : kNaN) + ", tolerance " +
              fmt(phi_counter.rel_tol) + ")");
    if (c_.require_loss_increase)
      check(loss_increases >= 1, "loss increased " + std::to_string(loss_increases) + " times (EoS signature)");
    check(!(final_normalized > 1.0 + c_.tol_edge) && !std::isnan(final_normalized),
          "eta*lambda_max(w_final)/2 = " + fmt(final_normalized) + " <= 1 + " + fmt(c_.tol_edge));
    if (c_.edge_start && c_.rho0 <= c_.reflection_rho_max * (1 + 1e-12) &&
        std::abs(c_.delta) <= c_.reflection_delta_max * (1 + 1e-12)) {
      const double predicted = 2.0 - c_.rho0;
      check(std::abs(final_normalized - predicted) <= c_.tol_reflection,
            "reflection: eta*lambda_max(w_final)/2 = " + fmt(final_normalized) + " vs 2 - rho0 = " + fmt(predicted) +
                " (+-" + fmt(c_.tol_reflection) + ")");
    }
    if (flow_evaluations > 0)
      check(flow_failures == 0, "gradient flow converged (|grad L| < " + fmt(c_.flow.grad_tol) + ") in " +
                                    std::to_string(flow_evaluations - flow_failures) + " of " +
                                    std::to_string(flow_evaluations) + " integrations");
    if (flow_checks > 0) {
      rec.set_attribute("flow_check_phi_error", check_phi);
      rec.set_attribute("flow_check_point_error", check_point);
      rec.set_attribute("flow_check_balance_drift", check_drift);
      check(check_phi <= c_.tol_flow_check && check_point <= c_.tol_flow_check && check_drift <= c_.tol_flow_check,
            "flow vs closed form over " + std::to_string(flow_checks) + " checks: |dphi| " + fmt(check_phi) +
                ", |ds|_inf " + fmt(check_point) + ", balance drift " + fmt(check_drift) + " <= " +
                fmt(c_.tol_flow_check));
    }
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

 private:
  GfsSharpnessConfig c_;
};

class GfsSharpnessKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "gfs_sharpness"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::GfsSharpnessSpec&>(message);
    GfsSharpnessConfig c;
    const bool scalar = s.model() == pb::GfsSharpnessSpec::MODEL_SCALAR_NETWORK;
    c.model = scalar ? ModelKind::ScalarNetwork : ModelKind::SquaredRegression;
    c.model_name = scalar ? "scalar_network" : "squared_regression";
    Eigen::Index dimension = 0;

    // ---- the model ----
    if (scalar) {
      if (!s.has_depth()) throw SpecError("depth", "required for MODEL_SCALAR_NETWORK (the depth D, in [2, 64])");
      if (s.depth() < 2 || s.depth() > 64)
        throw SpecError("depth", "must be in [2, 64] (got " + std::to_string(s.depth()) + ")");
      if (!std::isfinite(s.y_star()) || s.y_star() == 0)
        throw SpecError("y_star", "must be finite and nonzero (got " + fmt(s.y_star()) +
                                      "); the minimisers are pi(w) = y*, and y* = 0 has no isolated-sharpness minimisers");
      if (!(s.x_sq_mean() > 0) || !std::isfinite(s.x_sq_mean()))
        throw SpecError("x_sq_mean", "must be a finite number > 0 (got " + fmt(s.x_sq_mean()) + ")");
      if (s.has_data()) throw SpecError("data", "only for MODEL_SQUARED_REGRESSION");
      c.depth = s.depth();
      c.y_star = s.y_star();
      c.x_sq_mean = s.x_sq_mean();
      dimension = c.depth;
    } else {
      if (s.has_depth()) throw SpecError("depth", "only for MODEL_SCALAR_NETWORK");
      if (s.has_y_star()) throw SpecError("y_star", "only for MODEL_SCALAR_NETWORK");
      if (s.has_x_sq_mean()) throw SpecError("x_sq_mean", "only for MODEL_SCALAR_NETWORK");
      const auto& data = s.data();
      if (data.d() < 1 || data.d() > 500)
        throw SpecError("data.d", "must be in [1, 500] (got " + std::to_string(data.d()) +
                                      "); the Hessian is dense");
      if (data.n() < 1 || data.n() > 100000)
        throw SpecError("data.n", "must be in [1, 1e5] (got " + std::to_string(data.n()) + ")");
      c.n = data.n();
      c.d = data.d();
      c.data_seed = data.seed() ? data.seed() : context.experiment_seed(kDataStream);
      dimension = c.d;
    }

    // ---- the GFS route and the integrator ----
    switch (s.gfs_method()) {
      case pb::GfsSharpnessSpec::GFS_CLOSED_FORM:
        if (!scalar) throw SpecError("gfs_method", "GFS_CLOSED_FORM exists only for MODEL_SCALAR_NETWORK");
        c.route = Route::ClosedForm;
        break;
      case pb::GfsSharpnessSpec::GFS_FLOW:
        c.route = Route::Flow;
        break;
      default:
        c.route = scalar ? Route::ClosedForm : Route::Flow;
    }
    if (s.flow_every() < 1) throw SpecError("flow_every", "must be >= 1 (got " + std::to_string(s.flow_every()) + ")");
    c.flow_every = s.flow_every();
    if (s.flow_check_every() < 0)
      throw SpecError("flow_check_every", "must be >= 0 (got " + std::to_string(s.flow_check_every()) + ")");
    if (s.flow_check_every() > 0 && c.route != Route::ClosedForm)
      throw SpecError("flow_check_every", "compares the closed form with the flow; only with the closed-form route");
    c.flow_check_every = s.flow_check_every();
    const auto& f = s.flow();
    const bool rk4 = f.integrator() == pb::GfsFlowOptions::INTEGRATOR_RK4;
    c.flow.integrator = rk4 ? gfs::Integrator::Rk4 : gfs::Integrator::Dopri5;
    c.integrator_name = rk4 ? "rk4" : "dopri5";
    if (!std::isfinite(f.dt_factor()) || f.dt_factor() < 0 || f.dt_factor() > 2.5)
      throw SpecError("flow.dt_factor", "must be in (0, 2.5], or 0 for the default (got " + fmt(f.dt_factor()) +
                                            "); explicit Runge-Kutta steps are unstable beyond ~2.8/lambda");
    c.flow.dt_factor = f.dt_factor() > 0 ? f.dt_factor() : (rk4 ? 0.05 : 1.0);
    if (f.eig_every() < 1) throw SpecError("flow.eig_every", "must be >= 1 (got " + std::to_string(f.eig_every()) + ")");
    c.flow.eig_every = f.eig_every();
    auto positive = [](double v, const char* field) {
      if (!(v > 0) || !std::isfinite(v)) throw SpecError(field, "must be a finite number > 0 (got " + fmt(v) + ")");
    };
    positive(f.grad_tol(), "flow.grad_tol");
    positive(f.abs_tol(), "flow.abs_tol");
    positive(f.rel_tol(), "flow.rel_tol");
    c.flow.grad_tol = f.grad_tol();
    c.flow.abs_tol = f.abs_tol();
    c.flow.rel_tol = f.rel_tol();
    if (f.max_steps() < 1) throw SpecError("flow.max_steps", "must be >= 1 (got " + std::to_string(f.max_steps()) + ")");
    c.flow.max_steps = f.max_steps();

    // ---- the step size and the start ----
    const bool has_w0 = s.w0_size() > 0;
    if (has_w0 && s.has_edge_start()) throw SpecError("w0", "must not be set together with edge_start");
    if (!has_w0 && !s.has_edge_start()) throw SpecError("edge_start", "required: one of edge_start or w0");
    c.edge_start = s.has_edge_start();
    const bool derived_lr = !scalar && c.edge_start;
    if (derived_lr) {
      if (s.has_lr())
        throw SpecError("lr", "must not be set for MODEL_SQUARED_REGRESSION with edge_start: eta = 2 rho0 / phi(s) is derived");
    } else {
      if (!s.has_lr()) throw SpecError("lr", "required (the GD step eta, > 0)");
      if (!(s.lr() > 0) || !std::isfinite(s.lr()))
        throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
      c.lr = s.lr();
    }
    if (c.edge_start) {
      const auto& e = s.edge_start();
      if (!e.has_rho0()) throw SpecError("edge_start.rho0", "required (eta*phi(s)/2 of the start minimiser, > 0)");
      if (!(e.rho0() > 0) || !std::isfinite(e.rho0()))
        throw SpecError("edge_start.rho0", "must be a finite number > 0 (got " + fmt(e.rho0()) + ")");
      if (!std::isfinite(e.delta()) || !(e.delta() > -1))
        throw SpecError("edge_start.delta", "must be finite and > -1 (got " + fmt(e.delta()) + ")");
      c.rho0 = e.rho0();
      c.delta = e.delta();
      if (scalar) {
        if (e.has_init_scale()) throw SpecError("edge_start.init_scale", "only for MODEL_SQUARED_REGRESSION");
        if (e.has_init_seed()) throw SpecError("edge_start.init_seed", "only for MODEL_SQUARED_REGRESSION");
        c.branch = e.branch() == pb::GfsEdgeStart::BRANCH_SMALL_B ? gfs::Branch::SmallB : gfs::Branch::LargeB;
        const gfs::ScalarNetwork net(c.depth, c.y_star, c.x_sq_mean);
        const double flattest = net.flattest_sharpness();
        if (!(2.0 * c.rho0 / c.lr >= flattest * (1 - 1e-12)))
          throw SpecError("edge_start.rho0", "must be >= eta*D*m*|y*|^(2-2/D)/2 = " + fmt(c.lr * flattest / 2) +
                                                 " (the flattest minimiser's eta*phi/2; got " + fmt(c.rho0) + ")");
        c.edge = gfs::edge_minimiser(net, 2.0 * c.rho0 / c.lr, c.branch);
      } else {
        if (e.has_branch()) throw SpecError("edge_start.branch", "only for MODEL_SCALAR_NETWORK");
        if (!(e.init_scale() > 0) || !std::isfinite(e.init_scale()))
          throw SpecError("edge_start.init_scale", "must be a finite number > 0 (got " + fmt(e.init_scale()) + ")");
        c.init_scale = e.init_scale();
        c.init_seed = e.init_seed() ? e.init_seed() : context.experiment_seed(kInitStream);
      }
    } else {
      if (s.w0_size() != dimension)
        throw SpecError("w0", "has " + std::to_string(s.w0_size()) + " entries but the model has " +
                                  std::to_string(dimension) + " parameters");
      c.w0_explicit.resize(dimension);
      for (int i = 0; i < s.w0_size(); ++i) {
        if (!std::isfinite(s.w0(i)))
          throw SpecError("w0[" + std::to_string(i) + "]", "must be finite (got " + fmt(s.w0(i)) + ")");
        c.w0_explicit(i) = s.w0(i);
      }
      if (scalar && !gfs::closed_form_gfs(gfs::ScalarNetwork(c.depth, c.y_star, c.x_sq_mean), c.w0_explicit).valid)
        throw SpecError("w0", "gradient flow from w0 stalls at a saddle on pi = 0 (pi(w0) = " +
                                  fmt(gfs::product(c.w0_explicit)) +
                                  " does not have the sign of y_star and two coordinates tie for the smallest "
                                  "|w_i|; stability.md §3.4)");
    }

    // ---- GD, recording and tolerances ----
    if (s.max_steps() < 1 || s.max_steps() > 1'000'000'000)
      throw SpecError("max_steps", "must be in [1, 1e9] (got " + std::to_string(s.max_steps()) + ")");
    c.max_steps = s.max_steps();
    positive(s.stop_loss(), "stop_loss");
    c.stop_loss = s.stop_loss();
    if (s.dense_steps() < 0) throw SpecError("dense_steps", "must be >= 0 (got " + std::to_string(s.dense_steps()) + ")");
    c.dense_steps = s.dense_steps();
    if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
      throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
    c.points_per_decade = s.points_per_decade();

    const auto& tol = s.tolerance();
    auto non_negative = [](double v, const char* field) {
      if (!(v >= 0) || !std::isfinite(v))
        throw SpecError(std::string("tolerance.") + field, "must be a finite number >= 0 (got " + fmt(v) + ")");
    };
    non_negative(tol.monotone_rel(), "monotone_rel");
    non_negative(tol.monotone_rel_flow(), "monotone_rel_flow");
    non_negative(tol.edge(), "edge");
    non_negative(tol.reflection_rho_max(), "reflection_rho_max");
    non_negative(tol.reflection_delta_max(), "reflection_delta_max");
    if (!(tol.reflection() > 0) || !std::isfinite(tol.reflection()))
      throw SpecError("tolerance.reflection", "must be a finite number > 0 (got " + fmt(tol.reflection()) + ")");
    if (!(tol.flow_check() > 0) || !std::isfinite(tol.flow_check()))
      throw SpecError("tolerance.flow_check", "must be a finite number > 0 (got " + fmt(tol.flow_check()) + ")");
    c.tol_monotone = tol.monotone_rel();
    c.tol_monotone_flow = tol.monotone_rel_flow();
    c.tol_edge = tol.edge();
    c.tol_reflection = tol.reflection();
    c.reflection_rho_max = tol.reflection_rho_max();
    c.reflection_delta_max = tol.reflection_delta_max();
    c.require_loss_increase = tol.require_loss_increase();
    c.tol_flow_check = tol.flow_check();
    return std::make_unique<GfsSharpnessTask>(std::move(c));
  }
};

GDLAB_REGISTER_KIND(GfsSharpnessKind);

}  // namespace
}  // namespace gdlab
