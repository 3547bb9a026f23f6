// Experiment kind `async_sgd`: Giladi, Nacson, Hoffer, Soudry, "At Stability's Edge: How to Adjust
// Hyperparameters to Preserve Minima Selection in Asynchronous Training of Neural Networks?" (ICLR 2020,
// arXiv:1909.12340); spec in shared/papers/stability.md §1.
//
// Asynchronous SGD at a parameter server, w_{t+1} = w_t − η ĝ(w_{t−τ_t}) (§1.3), plain, with PS
// heavy-ball momentum (§1.5 (a), (b)) or with shifted = per-worker momentum (§1.5 (c)), on a quadratic,
// the two-minima loss of T1.6, least squares, logistic regression or a small MLP. The delays come
// from a simulated schedule (MODE_SIMULATED: constant τ, round robin, uniformly random worker —
// deterministic, bitwise reproducible, §1.9.3) or from a real parameter server on 1 + k MPI ranks
// (MODE_MPI, worker/parameter_server.h; staleness measured per update, §1.9.1), free-running or
// with the forced round-robin order (staleness exactly min(t, k − 1): the closed forms apply, T1.3).
//
// Records (§0.5, §1.10): per recorded update the loss, the distance to the reference minimum, log‖s_t‖
// of the stacked state (§0.2), the momentum-buffer norm, w (dim ≤ 16), the sharpness on a cadence;
// per update the worker id, the version read and the staleness (MPI: also the version applied, the
// latency and its injected part); theory/: the predicted log‖s_t‖ line (noise-free quadratic) and the
// sharpness threshold h*/η; parameters/: η, h*(τ), the variant's threshold, f = η λ_max / h*, the
// predicted log ρ, the measured and replayed growth rates, the replay threshold, the staleness
// histogram, w0, the reference minimum, w_final. Attributes: outcome (converged | diverged; a diverged
// run ends cleanly with status_detail "diverged"), minimum_reached, verdict, verdict_detail.
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "common/byte_codec.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/async_sgd.h"
#include "worker/numerics/relu_minima_stability.h"
#include "worker/parameter_server.h"
#include "worker/parameter_server_mpi.h"

namespace gdlab {
namespace {

namespace as = async_sgd;
using as::MatrixXd;
using as::VectorXd;

// Random streams of this kind (see TaskContext). The problem's data and rotation are experiment-wide
// so every task of a sweep (over τ, η, γ, …) sees the same landscape; the start, the minibatches and
// the schedule are per task.
constexpr std::uint64_t kProblemStream = 1;
constexpr std::uint64_t kInitStream = 2;
constexpr std::uint64_t kStartStream = 3;
constexpr std::uint64_t kGradientStream = 4;
constexpr std::uint64_t kScheduleStream = 5;
constexpr std::uint64_t kLatencyStream = 6;
constexpr std::uint64_t kSharpnessStream = 7;
constexpr std::uint64_t kWorkerStreamBase = 100;  // + worker rank 1..k

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// MODE_MPI, noise-free quadratic: stop once ‖w − w*‖ < e^{−500} (no renormalisation is possible with
// copies in flight; the growth rate is measured up to there).
constexpr double kMpiLogFloor = -500.0;

enum class Mode { Simulated, Mpi };
enum class LrRule { Absolute, DelayScaled, OverSharpness, ThresholdFraction };
enum class StartBase { ProblemDefault, Minimum, Explicit };

struct AsyncSgdConfig {
  Mode mode = Mode::Simulated;
  as::ProblemConfig problem;
  std::string problem_name;
  std::string data_name;  // problem.mlp.idx: where the data came from
  int dim = 0;
  bool stochastic = false;  // the gradient draws randomness (minibatches or noise)
  bool convex = false;      // quadratic, least squares, logistic: one minimum
  std::int64_t pretrain_steps = 0;
  double pretrain_grad_tol = 0;
  // Learning rate.
  double lr = 0;
  LrRule lr_rule = LrRule::Absolute;
  std::string lr_rule_name;
  // Optimiser.
  as::MomentumVariant variant = as::MomentumVariant::None;
  std::string variant_name;
  double momentum = 0, dampening = 0;
  std::int64_t updates = 0;
  // Start.
  StartBase base = StartBase::ProblemDefault;
  VectorXd w0_explicit;
  double perturbation = 0;
  std::uint64_t start_seed = 0;
  bool random_history = false;
  // Simulated delays.
  as::ScheduleConfig schedule;
  std::string schedule_name;
  // MPI.
  int mpi_workers = 0;
  int staleness_bound = -1;
  ps::LatencyModel latency;
  std::string latency_name;
  double peer_timeout_s = 10;
  std::uint64_t latency_seed = 0;
  std::vector<std::uint64_t> worker_seeds;  // index = worker rank 1..k (0 unused)
  bool mpi_round_robin = false;             // mpi.schedule = SCHEDULE_ROUND_ROBIN
  // Common.
  std::uint64_t gradient_seed = 0, sharpness_seed = 0;
  std::int64_t record_every = 0, sharpness_every = 0;
  double divergence_bound = 1e8;
  bool measure_growth = true;
  std::int64_t replay_max_updates = 100000;
  double tol_growth_rel = 0.02, tol_growth_abs = 2e-4, tol_margin = 0.05, tol_converged = 1e-6, tol_replay = 1e-9, tol_escape = 10;

  int nominal_tau() const { return mode == Mode::Mpi ? mpi_workers - 1 : as::nominal_delay(schedule); }
  int workers() const { return mode == Mode::Mpi ? mpi_workers : as::schedule_workers(schedule); }
  // Random (or real, free-running) delays: the closed forms do not apply, the replay does (§1.6, §1.9.2).
  bool random_delays() const {
    return (mode == Mode::Mpi && !mpi_round_robin) ||
           (mode == Mode::Simulated && schedule.kind == as::ScheduleKind::UniformRandom);
  }
  std::string schedule_attribute() const {
    return mode == Mode::Mpi ? (mpi_round_robin ? "mpi_round_robin" : "mpi") : schedule_name;
  }
};

// CPU seconds of the calling thread.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::span<const double> span_of(const VectorXd& v) { return {v.data(), static_cast<size_t>(v.size())}; }
void put_vector(Recorder& rec, const std::string& path, const VectorXd& v) {
  rec.put_array(path, {static_cast<std::uint64_t>(v.size())}, span_of(v));
}
void put_scalar(Recorder& rec, const std::string& path, double v) {
  rec.put_array(path, {}, std::span<const double>(&v, 1));
}

VectorXd normal_vector(Rng& rng, int n) {
  VectorXd v(n);
  for (int i = 0; i < n; ++i) v(i) = rng.normal();
  return v;
}

// Everything a run needs before its first update: the problem, the reference minimum, λ_max, η, the
// start and the theory at the nominal delay.
struct Setup {
  std::unique_ptr<as::Problem> problem;
  std::optional<VectorXd> reference;  // the reference minimum (distance, λ_max, "stays")
  double lambda_ref = kNaN;           // λ_max(∇²L) at the reference (at w0 without one)
  VectorXd spectrum;                  // the Hessian spectrum for the per-mode predictions (quadratic)
  bool linear = false;                // renormalised linear run with a growth rate (simulated)
  double eta = 0;
  int tau = 0;                        // nominal constant delay
  double h_closed = kNaN;             // h*(τ), §1.4
  double h_variant = kNaN;            // the variant's threshold at τ (§1.5 charpoly)
  bool single_interval = true;
  VectorXd w0;
  std::vector<VectorXd> history;
  // MLP pretraining.
  std::int64_t pretrain_steps = 0;
  double pretrain_grad_norm = kNaN;
  bool pretrain_converged = false;
};

class AsyncSgdTask : public PreparedTask {
 public:
  explicit AsyncSgdTask(AsyncSgdConfig config) : c_(std::move(config)) {}

  int ranks_needed() const override { return c_.mode == Mode::Mpi ? 1 + c_.mpi_workers : 1; }

  // MODE_MPI runs (a real parameter server, possibly for days) checkpoint the server's whole state
  // when the coordinator asks, and --resume continues from it (see run_server).
  bool checkpointable() const override { return c_.mode == Mode::Mpi; }
  void resume_from(const std::string& state, std::int64_t step) override {
    resume_state_ = state;
    resume_step_ = step;
  }

  std::string summary() const override {
    std::ostringstream s;
    s << c_.problem_name << (c_.data_name.empty() ? "" : " " + c_.data_name) << " dim=" << c_.dim;
    if (c_.problem.kind == as::ProblemConfig::Kind::Quadratic)
      s << " lambda_max=" << fmt(c_.problem.quadratic.eigenvalues.maxCoeff());
    if (c_.mode == Mode::Simulated) {
      s << " " << c_.schedule_name;
      if (c_.schedule.kind == as::ScheduleKind::Constant) s << " tau=" << c_.schedule.tau;
      else s << " N=" << c_.schedule.workers;
    } else {
      s << " MPI k=" << c_.mpi_workers << (c_.mpi_round_robin ? " round_robin" : " S=" + std::to_string(c_.staleness_bound))
        << " latency=" << c_.latency_name;
    }
    s << " lr=" << fmt(c_.lr) << " (" << c_.lr_rule_name << ") " << c_.variant_name;
    if (c_.variant != as::MomentumVariant::None) s << " gamma=" << fmt(c_.momentum) << " d=" << fmt(c_.dampening);
    s << " T=" << c_.updates;
    if (c_.stochastic) s << " B=" << batch_size();
    return s.str();
  }

  void run(Recorder& rec) override {
    if (c_.mode == Mode::Mpi)
      throw Error("async_sgd: MODE_MPI runs on a group of 1 + " + std::to_string(c_.mpi_workers) +
                  " ranks (a parameter server and its workers), not on one rank");
    run_simulated(rec);
  }

  void run_group(Recorder& rec, GroupContext& group) override {
    if (c_.mode != Mode::Mpi) {
      run(rec);
      return;
    }
    if (group.group_size() != 1 + c_.mpi_workers)
      throw Error("async_sgd: MODE_MPI needs a group of " + std::to_string(1 + c_.mpi_workers) + " ranks, got " +
                  std::to_string(group.group_size()));
    if (group.group_rank() == 0) {
      run_server(rec, group);
    } else {
      run_worker(group);
    }
  }

 private:
  // ---- setup ----------------------------------------------------------------------------------------

  Setup setup(Recorder& rec) const {
    Setup s;
    s.problem = as::make_problem(c_.problem);
    const as::Problem& p = *s.problem;
    // The base point of the start and the reference minimum.
    VectorXd base = c_.base == StartBase::Explicit ? c_.w0_explicit : p.initial_point();
    if (c_.problem.kind == as::ProblemConfig::Kind::Mlp) {
      if (c_.pretrain_steps > 0) {
        const as::MinimumSearch m = as::find_minimum(p, p.initial_point(), c_.pretrain_steps, c_.pretrain_grad_tol);
        s.reference = m.w;
        s.pretrain_steps = m.steps;
        s.pretrain_grad_norm = m.grad_norm;
        s.pretrain_converged = m.converged;
      }
    } else {
      s.reference = p.known_minimum(base);
    }
    if (c_.base == StartBase::Minimum) base = *s.reference;  // prepare() ensures a reference exists
    Rng start_rng(c_.start_seed);
    s.w0 = base;
    if (c_.perturbation > 0) s.w0 += c_.perturbation * normal_vector(start_rng, c_.dim);
    if (c_.random_history)
      for (int j = 0; j < c_.schedule.tau; ++j) s.history.push_back(base + c_.perturbation * normal_vector(start_rng, c_.dim));
    // The two-minima loss: the reference is the minimum of the basin the run starts in.
    if (c_.problem.kind == as::ProblemConfig::Kind::TwoMinima) s.reference = p.known_minimum(s.w0);

    // λ_max at the reference, and the spectrum for the per-mode predictions.
    if (c_.problem.kind == as::ProblemConfig::Kind::Quadratic) {
      s.spectrum = c_.problem.quadratic.eigenvalues;
      s.lambda_ref = s.spectrum.maxCoeff();
    } else {
      s.lambda_ref = as::sharpness(p, s.reference ? *s.reference : s.w0, c_.sharpness_seed);
      s.spectrum = VectorXd::Constant(1, s.lambda_ref);
    }
    s.linear = c_.mode == Mode::Simulated && c_.measure_growth && p.is_linear();

    // Theory at the nominal delay (§1.4, §1.5) and η.
    s.tau = c_.nominal_tau();
    s.h_closed = as::h_star(s.tau);
    const as::Threshold th = as::stability_threshold(c_.variant, s.tau, c_.momentum, c_.dampening);
    s.h_variant = th.h;
    s.single_interval = th.single_interval;
    switch (c_.lr_rule) {
      case LrRule::Absolute:
        s.eta = c_.lr;
        break;
      case LrRule::DelayScaled:
        s.eta = as::delay_scaled_lr(c_.lr, s.tau);
        break;
      case LrRule::OverSharpness:
        s.eta = c_.lr / s.lambda_ref;
        break;
      case LrRule::ThresholdFraction:
        s.eta = c_.lr * s.h_variant / s.lambda_ref;
        break;
    }
    if (!(s.eta > 0) || !std::isfinite(s.eta))
      throw NumericError("async_sgd: the learning rate from lr_rule is not a finite positive number (lambda_max = " +
                         fmt(s.lambda_ref) + ")");

    // Parameters (§1.10).
    put_scalar(rec, "parameters/eta", s.eta);
    put_scalar(rec, "parameters/lr", c_.lr);
    put_scalar(rec, "parameters/tau", s.tau);
    put_scalar(rec, "parameters/workers", c_.workers());
    put_scalar(rec, "parameters/momentum", c_.momentum);
    put_scalar(rec, "parameters/dampening", c_.dampening);
    put_scalar(rec, "parameters/lambda_max", s.lambda_ref);
    put_vector(rec, "parameters/spectrum", s.spectrum);
    put_scalar(rec, "parameters/h_star_closed_form", s.h_closed);
    put_scalar(rec, "parameters/h_star_variant", s.h_variant);
    put_scalar(rec, "parameters/lr_threshold_variant", s.h_variant / s.lambda_ref);
    put_scalar(rec, "parameters/f", s.eta * s.lambda_ref / s.h_variant);
    put_vector(rec, "parameters/w0", s.w0);
    if (s.reference) put_vector(rec, "parameters/reference_minimum", *s.reference);
    if (c_.problem.kind == as::ProblemConfig::Kind::TwoMinima) {
      put_scalar(rec, "parameters/sharp_curvature", c_.problem.two_minima.sharp_curvature);
      put_scalar(rec, "parameters/flat_curvature", c_.problem.two_minima.flat_curvature);
    }
    if (c_.problem.kind == as::ProblemConfig::Kind::Mlp && c_.pretrain_steps > 0) {
      put_scalar(rec, "parameters/pretrain_steps", static_cast<double>(s.pretrain_steps));
      put_scalar(rec, "parameters/pretrain_grad_norm", s.pretrain_grad_norm);
      rec.set_attribute("pretrain_converged", s.pretrain_converged ? "yes" : "no");
    }
    rec.set_attribute("mode", c_.mode == Mode::Mpi ? "mpi" : "simulated");
    rec.set_attribute("problem", c_.problem_name);
    if (!c_.data_name.empty()) rec.set_attribute("data", c_.data_name);
    rec.set_attribute("dim", static_cast<double>(c_.dim));
    rec.set_attribute("schedule", c_.schedule_attribute());
    rec.set_attribute("variant", c_.variant_name);
    rec.set_attribute("lr_rule", c_.lr_rule_name);
    rec.set_attribute("lr", s.eta);
    rec.set_attribute("lr_input", c_.lr);
    rec.set_attribute("tau", static_cast<double>(s.tau));
    rec.set_attribute("workers", static_cast<double>(c_.workers()));
    rec.set_attribute("momentum", c_.momentum);
    rec.set_attribute("dampening", c_.dampening);
    rec.set_attribute("batch_size", static_cast<double>(batch_size()));
    rec.set_attribute("updates", static_cast<double>(c_.updates));
    rec.set_attribute("lambda_max", s.lambda_ref);
    rec.set_attribute("h_star", s.h_closed);
    rec.set_attribute("h_star_variant", s.h_variant);
    rec.set_attribute("f", s.eta * s.lambda_ref / s.h_variant);
    if (c_.mode == Mode::Mpi) {
      rec.set_attribute("staleness_bound", static_cast<double>(c_.staleness_bound));
      rec.set_attribute("latency", c_.latency_name);
    }
    return s;
  }

  int batch_size() const {
    switch (c_.problem.kind) {
      case as::ProblemConfig::Kind::Quadratic:
        return c_.problem.quadratic.batch_size;
      case as::ProblemConfig::Kind::LeastSquares:
        return c_.problem.least_squares.batch_size;
      case as::ProblemConfig::Kind::Logistic:
        return c_.problem.logistic.batch_size;
      case as::ProblemConfig::Kind::Mlp:
        return c_.problem.mlp.batch_size;
      default:
        return 0;
    }
  }

  as::OptimizerConfig optimizer_config(double eta) const {
    as::OptimizerConfig oc;
    oc.lr = eta;
    oc.variant = c_.variant;
    oc.momentum = c_.momentum;
    oc.dampening = c_.dampening;
    oc.workers = c_.workers();
    return oc;
  }

  // ---- recording --------------------------------------------------------------------------------------

  // Loss, distance, log‖s‖, buffer norm, w and (on its cadence) the sharpness at update t.
  struct StateRecorder {
    StateRecorder(const AsyncSgdConfig& config, const Setup& setup, Recorder& recorder)
        : c(config), s(setup), rec(recorder) {}
    const AsyncSgdConfig& c;
    const Setup& s;
    Recorder& rec;
    std::int64_t last_recorded = -1, last_sharpness = -1;
    std::vector<std::pair<std::int64_t, double>> log_norms;  // (t, log‖s_t‖) at recorded steps
    std::vector<std::pair<std::int64_t, double>> sharpness_points;  // (t, time) of the sharpness samples
    double initial_distance = kNaN;

    void record(std::int64_t t, double time, const VectorXd& w, double log_scale, double log_state_norm,
                double buffer_norm) {
      if (t == last_recorded) return;
      last_recorded = t;
      const as::Problem& p = *s.problem;
      double loss, distance = kNaN, log_distance = kNaN;
      if (s.linear) {
        // Renormalised copy: w = w* + (w_t − w*)/e^{log_scale}; L is homogeneous of degree 2 in w − w*.
        const double dev = (w - *s.reference).norm();
        log_distance = log_scale + std::log(dev);
        distance = std::exp(log_distance);
        loss = std::exp(2.0 * log_scale) * p.loss(w);
        buffer_norm *= std::exp(log_scale);
      } else {
        loss = p.loss(w);
        if (s.reference) {
          distance = (w - *s.reference).stableNorm();
          log_distance = std::log(distance);
        }
        if (c.dim <= 16) rec.append("observables/w", t, time, span_of(w));
      }
      if (t == 0) initial_distance = distance;
      rec.append("observables/loss", t, time, loss);
      if (s.reference) {
        rec.append("observables/distance", t, time, distance);
        rec.append("observables/log_distance", t, time, log_distance);
      }
      rec.append("observables/log_state_norm", t, time, log_state_norm);
      if (c.variant != as::MomentumVariant::None) rec.append("observables/buffer_norm", t, time, buffer_norm);
      log_norms.emplace_back(t, log_state_norm);
      if (t == 0) record_sharpness(t, time, w);
    }

    // At t = 0, every sharpness_every updates, and at the end (call with last = true).
    void maybe_record_sharpness(std::int64_t t, double time, const VectorXd& w, bool last) {
      if ((c.sharpness_every > 0 && t % c.sharpness_every == 0) || last) record_sharpness(t, time, w);
    }

    void record_sharpness(std::int64_t t, double time, const VectorXd& w) {
      if (t == last_sharpness) return;
      last_sharpness = t;
      const double lambda = std::isfinite(w.norm()) ? as::sharpness(*s.problem, w, c.sharpness_seed) : kNaN;
      rec.append("observables/sharpness", t, time, lambda);
      sharpness_points.emplace_back(t, time);
    }
  };

  bool record_now(std::int64_t t) const {
    const std::int64_t every = c_.record_every > 0 ? c_.record_every : std::max<std::int64_t>(1, c_.updates / 2000);
    return t % every == 0 || t == c_.updates;
  }

  // ---- simulated mode --------------------------------------------------------------------------------

  void run_simulated(Recorder& rec) const {
    const Setup s = setup(rec);
    const as::Problem& p = *s.problem;
    const std::vector<as::ScheduledUpdate> schedule = as::make_schedule(c_.schedule, c_.updates);
    as::ServerOptimizer optimizer(optimizer_config(s.eta), c_.dim);
    as::EngineOptions eo;
    eo.updates = c_.updates;
    eo.linear = s.linear;
    if (s.reference) eo.center = *s.reference;
    eo.history = s.history;
    eo.divergence_bound = c_.divergence_bound;
    eo.stochastic = c_.stochastic;
    eo.gradient_seed = c_.gradient_seed;

    StateRecorder sr(c_, s, rec);
    const double eta = s.eta;
    {
      // The initial state: log‖s_0‖ as the engine computes it (with the history in linear mode).
      double ss = 0;
      const VectorXd center = s.reference ? *s.reference : VectorXd::Zero(c_.dim);
      ss += (s.w0 - center).squaredNorm();
      if (s.linear) {
        const std::int64_t L = as::max_staleness(schedule);
        for (std::int64_t j = 1; j <= L; ++j) {
          const size_t h = static_cast<size_t>(j - 1);
          ss += ((h < s.history.size() ? s.history[h] : s.w0) - center).squaredNorm();
        }
      }
      sr.record(0, 0.0, s.w0, 0.0, 0.5 * std::log(ss), 0.0);
    }
    const as::EngineResult r = as::run_delayed(p, optimizer, s.w0, schedule, eo, [&](const as::StepView& v) {
      const double time = eta * static_cast<double>(v.t);
      rec.append("observables/staleness", v.t, time, static_cast<double>(v.staleness));
      rec.append("observables/worker_id", v.t, time, static_cast<double>(v.update->worker));
      rec.append("observables/read_version", v.t, time, static_cast<double>(v.update->version_read));
      if (record_now(v.t)) sr.record(v.t, time, *v.w, v.log_scale, v.log_state_norm, v.optimizer->buffer_norm());
      sr.maybe_record_sharpness(v.t, time, *v.w, false);
      return true;
    });
    const double t_end = eta * static_cast<double>(r.updates_done);
    sr.record(r.updates_done, t_end, r.w_final, r.log_scale, r.log_state_norm_final, optimizer.buffer_norm());
    sr.maybe_record_sharpness(r.updates_done, t_end, r.w_final, true);

    std::vector<as::ScheduledUpdate> done(schedule.begin(), schedule.begin() + r.updates_done);
    Outcome o;
    o.updates_done = r.updates_done;
    o.engine_diverged = r.diverged;
    o.divergence_reason = r.divergence_reason;
    o.growth_rate = s.linear ? r.growth_rate : kNaN;
    o.reached_zero = r.reached_zero;
    o.w_final = r.w_final;
    o.final_log_distance = s.reference && s.linear ? r.log_scale + std::log((r.w_final - *s.reference).norm()) : kNaN;
    o.state_lookback = -1;  // the engine's: the maximum staleness
    finish(rec, s, sr, done, o);
  }

  // ---- MPI mode ----------------------------------------------------------------------------------------

  ps::Options ps_options() const {
    ps::Options o;
    o.workers = c_.mpi_workers;
    o.updates = c_.updates;
    o.staleness_bound = c_.staleness_bound;
    o.latency = c_.latency;
    o.seed = c_.latency_seed;
    o.order = c_.mpi_round_robin ? ps::Order::RoundRobin : ps::Order::Free;
    o.peer_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(c_.peer_timeout_s * 1000)));
    return o;
  }

  void run_worker(GroupContext& group) const {
    const std::unique_ptr<as::Problem> problem = as::make_problem(c_.problem);
    const int worker = group.group_rank();
    // A run resumed at update t draws its minibatches (and injected latencies) from streams of its
    // own, keyed by t: reproducible from that checkpoint, and not a replay of the draws before it.
    const std::uint64_t seed = c_.worker_seeds.at(static_cast<size_t>(worker));
    Rng rng(resume_step_ > 0 ? derive_seed(seed, static_cast<std::uint64_t>(resume_step_), 0, 0) : seed);
    ps::Options options = ps_options();
    options.first_push_index = resume_step_;
    VectorXd w_read(c_.dim), g(c_.dim);  // the Problem interface takes vectors: one copy each way
    ps::run_worker(group.transport(), options, worker,
                   [&](Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> out) {
                     w_read = w;
                     problem->stochastic_gradient(w_read, rng, g);
                     out = g;
                   });
  }

  void run_server(Recorder& rec, GroupContext& group) const {
    const Setup s = setup(rec);
    const as::Problem& p = *s.problem;
    const bool linear = p.is_linear() && s.reference.has_value();
    as::ServerOptimizer optimizer(optimizer_config(s.eta), c_.dim);
    StateRecorder sr(c_, s, rec);
    const VectorXd center = s.reference ? *s.reference : VectorXd::Zero(c_.dim);
    // The growth-rate state s_t = (w_t − w*, …, w_{t−L} − w*, buffers) with L = k − 1, without
    // renormalisation; the replay below uses the same L (§1.9.2, T1.4).
    const int L = c_.mpi_workers - 1;
    std::vector<VectorXd> ring(static_cast<size_t>(L + 1), s.w0);
    std::vector<double> log_norms;
    log_norms.reserve(static_cast<size_t>(std::min<std::int64_t>(c_.updates + 1, 10'000'000)));
    // log‖s_t‖ with the components scaled by their largest magnitude first: without renormalisation a
    // stable run reaches |x| < 1e-154, where plain sums of squares underflow.
    VectorXd stacked((L + 1) * c_.dim);
    auto state_log_norm = [&](std::int64_t t) {
      for (int j = 0; j <= L; ++j)
        stacked.segment(j * c_.dim, c_.dim) = ring[static_cast<size_t>(((t - j) % (L + 1) + (L + 1)) % (L + 1))] - center;
      const double b = optimizer.buffer_stable_norm();
      const double m = std::max(stacked.cwiseAbs().maxCoeff(), b);
      if (!(m > 0)) return -std::numeric_limits<double>::infinity();
      const double ss = (stacked / m).squaredNorm() + (b / m) * (b / m);
      return std::log(m) + 0.5 * std::log(ss);
    };
    std::vector<as::ScheduledUpdate> sequence;
    sequence.reserve(static_cast<size_t>(std::min<std::int64_t>(c_.updates, 10'000'000)));
    VectorXd w = s.w0;
    ps::ServerPosition position;
    std::optional<ps::ResumePoint> resume;
    std::map<std::int64_t, VectorXd> held_weights;  // resumed: the weights of the versions the workers held
    double time_offset = 0;
    if (resume_state_.empty()) {
      log_norms.push_back(state_log_norm(0));
      sr.record(0, 0.0, s.w0, 0.0, log_norms.back(), 0.0);
    } else {
      // Continue from the checkpoint: the file already holds every row up to its update t.
      const std::int64_t t = restore_server_state(resume_state_, position, ring, optimizer, log_norms, sequence, sr,
                                                  time_offset);
      w = ring[static_cast<size_t>(t % (L + 1))];
      for (int i = 1; i <= c_.mpi_workers; ++i) {
        const std::int64_t v = position.held[static_cast<size_t>(i)];
        if (v >= 0 && v < t && t - v <= L) held_weights[v] = ring[static_cast<size_t>(v % (L + 1))];
      }
      resume = ps::ResumePoint{position, [&held_weights](std::int64_t v) -> const VectorXd* {
                                 auto it = held_weights.find(v);
                                 return it == held_weights.end() ? nullptr : &it->second;
                               }};
    }
    TaskCheckpointing* checkpoints = rec.checkpointing();
    Outcome o;
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return time_offset + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    // The per-update log (§1.9.1): kept in a preallocated buffer and written in chunks (4096 updates,
    // or 0.25 s: the recorder's appends are also when the worker ships chunks to the coordinator and
    // notices a cancel), so that the recorder is not called inside every exchange.
    constexpr size_t kLogChunk = 4096;
    constexpr double kLogFlushSeconds = 0.25;
    std::vector<std::pair<ps::Update, double>> log;
    log.reserve(kLogChunk);
    double last_flush = time_offset;
    auto flush_log = [&] {
      last_flush = seconds();
      for (const auto& [u, time] : log) {
        const std::int64_t t = u.index + 1;
        rec.append("observables/staleness", t, time, static_cast<double>(u.staleness));
        rec.append("observables/worker_id", t, time, static_cast<double>(u.worker));
        rec.append("observables/read_version", t, time, static_cast<double>(u.version_read));
        rec.append("observables/applied_version", t, time, static_cast<double>(u.version_applied));
        rec.append("observables/latency_ms", t, time, u.latency_ms);
        rec.append("observables/injected_ms", t, time, u.injected_ms);
      }
      log.clear();
    };
    double last_time = time_offset;
    const double cpu_start = thread_cpu_seconds();
    const std::int64_t applied = ps::run_server(
        group.transport(), ps_options(), w,
        [&](const ps::Update& u, Eigen::Ref<const VectorXd> g, VectorXd& wt) { optimizer.apply(u.worker, g, wt); },
        [&](const ps::Update& u, Eigen::Ref<const VectorXd> w_now) {
          const std::int64_t t = u.index + 1;
          const double time = seconds();
          last_time = time;
          log.emplace_back(u, time);
          if (log.size() == kLogChunk || time - last_flush >= kLogFlushSeconds) flush_log();
          sequence.push_back({u.worker, u.version_read});
          // w_t (in the server's send buffer over the MPI link) goes into the ring of the stacked state.
          VectorXd& wt = ring[static_cast<size_t>(t % (L + 1))];
          wt = w_now;
          log_norms.push_back(state_log_norm(t));
          if (record_now(t)) sr.record(t, time, wt, 0.0, log_norms.back(), optimizer.buffer_norm());
          sr.maybe_record_sharpness(t, time, wt, false);
          const double norm = wt.norm();
          if (!std::isfinite(norm) || norm > c_.divergence_bound) {
            o.engine_diverged = true;
            o.divergence_reason = std::isfinite(norm) ? "|w| = " + fmt(norm) + " > " + fmt(c_.divergence_bound)
                                                      : "w is not finite";
            return false;
          }
          if (linear && (wt - center).norm() < std::exp(kMpiLogFloor)) return false;
          if (checkpoints != nullptr && checkpoints->due()) {
            flush_log();  // the rows up to t go before the state that has seen them
            checkpoints->save(t, encode_server_state(t, time, position, ring, optimizer, log_norms, sequence, sr));
          }
          return true;
        },
        // Out of place over the MPI link: the new weights are written where they are sent from.
        [&](const ps::Update& u, Eigen::Ref<const VectorXd> g, Eigen::Ref<const VectorXd> wt, Eigen::Ref<VectorXd> next) {
          optimizer.apply_into(u.worker, g, wt, next);
        },
        resume ? &*resume : nullptr, &position);
    // The server rank's CPU time against the wall time (idle ranks must not spin: platform.md §2).
    const double server_cpu = thread_cpu_seconds() - cpu_start;
    const double server_wall = seconds();
    rec.set_attribute("server_cpu_seconds", server_cpu);
    rec.set_attribute("server_wall_seconds", server_wall);
    flush_log();
    o.updates_done = applied;
    sr.record(applied, last_time, w, 0.0, log_norms.back(), optimizer.buffer_norm());
    sr.maybe_record_sharpness(applied, last_time, w, true);
    o.w_final = w;
    if (linear) {
      as::GrowthEstimator growth(applied / 2, applied);
      for (size_t t = 0; t < log_norms.size(); ++t) growth.add(static_cast<std::int64_t>(t), log_norms[t]);
      o.growth_rate = growth.slope();
    }
    o.state_lookback = L;
    if (sequence.size() > static_cast<size_t>(applied)) sequence.resize(static_cast<size_t>(applied));
    if (c_.mpi_round_robin) {
      // T1.3 check 1: under the forced order, update t is worker (t mod k) + 1's gradient at version
      // max(t − k + 1, 0), i.e. staleness min(t, k − 1), exactly the simulated round robin's.
      as::ScheduleConfig rr;
      rr.kind = as::ScheduleKind::RoundRobin;
      rr.workers = c_.mpi_workers;
      const std::vector<as::ScheduledUpdate> expected = as::make_schedule(rr, applied);
      o.order_mismatches = 0;
      for (size_t t = 0; t < sequence.size(); ++t)
        if (sequence[t].worker != expected[t].worker || sequence[t].version_read != expected[t].version_read)
          ++o.order_mismatches;
    }
    if (!c_.stochastic) {
      // T1.3 check 2 (and the plumbing of T1.4): the offline replay of the logged (worker, version)
      // sequence with the same optimiser, in the same operation order, must reproduce w bit for bit.
      as::ServerOptimizer replay_optimizer(optimizer_config(s.eta), c_.dim);
      as::EngineOptions eo;
      eo.updates = applied;
      eo.divergence_bound = std::numeric_limits<double>::infinity();
      const as::EngineResult r = as::run_delayed(p, replay_optimizer, s.w0, sequence, eo);
      o.replay_w_checked = true;
      o.replay_w_bitwise = r.w_final.size() == w.size() &&
                           std::memcmp(r.w_final.data(), w.data(), sizeof(double) * static_cast<size_t>(w.size())) == 0;
      o.replay_w_rel_error = (r.w_final - w).norm() / std::max(w.norm(), std::numeric_limits<double>::min());
    }
    finish(rec, s, sr, sequence, o);
  }

  // ---- checkpoints of the server (MPI mode) ---------------------------------------------------------

  // The server's whole state after update t: where the engine is (the version each worker holds,
  // whose turn it is), the last k weights (the ring: the weights the workers hold are among them),
  // the momentum buffers, and what the final analysis needs (log‖s_t‖ of every update, the
  // (worker, version read) sequence, the recorder's marks). 20 bytes per update applied plus
  // (k + buffers)·P doubles: a run of 10⁷ updates checkpoints about 200 MB.
  static constexpr std::uint32_t kServerStateMagic = 0x31535341;  // "ASS1"

  std::string encode_server_state(std::int64_t t, double time, const ps::ServerPosition& position,
                                  const std::vector<VectorXd>& ring, const as::ServerOptimizer& optimizer,
                                  const std::vector<double>& log_norms, const std::vector<as::ScheduledUpdate>& sequence,
                                  const StateRecorder& sr) const {
    ByteWriter out;
    out.put(kServerStateMagic);
    out.put(static_cast<std::int32_t>(c_.dim));
    out.put(static_cast<std::int32_t>(c_.mpi_workers));
    out.put(t);
    out.put(time);
    out.put_array(position.held.data(), position.held.size());
    out.put(static_cast<std::int32_t>(position.next_in_turn));
    for (const VectorXd& v : ring) out.put_array(v.data(), static_cast<size_t>(v.size()));
    out.put(static_cast<std::uint32_t>(optimizer.buffers().size()));
    for (const VectorXd& b : optimizer.buffers()) out.put_array(b.data(), static_cast<size_t>(b.size()));
    out.put_array(log_norms.data(), log_norms.size());
    std::vector<std::int32_t> workers(sequence.size());
    std::vector<std::int64_t> versions(sequence.size());
    for (size_t i = 0; i < sequence.size(); ++i) {
      workers[i] = sequence[i].worker;
      versions[i] = sequence[i].version_read;
    }
    out.put_array(workers.data(), workers.size());
    out.put_array(versions.data(), versions.size());
    out.put(sr.last_recorded);
    out.put(sr.last_sharpness);
    out.put(sr.initial_distance);
    for (const auto* points : {&sr.log_norms, &sr.sharpness_points}) {
      std::vector<std::int64_t> steps;
      std::vector<double> values;
      for (const auto& [step, value] : *points) {
        steps.push_back(step);
        values.push_back(value);
      }
      out.put_array(steps.data(), steps.size());
      out.put_array(values.data(), values.size());
    }
    return out.take();
  }

  // Restores what encode_server_state saved; returns t. Throws StoreError for a state that does
  // not belong to this task (another dimension or worker count) or is damaged.
  std::int64_t restore_server_state(const std::string& state, ps::ServerPosition& position, std::vector<VectorXd>& ring,
                                    as::ServerOptimizer& optimizer, std::vector<double>& log_norms,
                                    std::vector<as::ScheduledUpdate>& sequence, StateRecorder& sr,
                                    double& time) const {
    try {
      ByteReader in(state, "async_sgd checkpoint");
      if (in.get<std::uint32_t>() != kServerStateMagic) throw StoreError("async_sgd: not a parameter-server checkpoint");
      if (in.get<std::int32_t>() != c_.dim || in.get<std::int32_t>() != c_.mpi_workers)
        throw StoreError("async_sgd: the checkpoint is of another dimension or worker count");
      const std::int64_t t = in.get<std::int64_t>();
      time = in.get<double>();
      position.version = t;
      position.held = in.get_array<std::int64_t>();
      position.next_in_turn = in.get<std::int32_t>();
      if (t < 0 || t > c_.updates || position.held.size() != static_cast<size_t>(c_.mpi_workers + 1))
        throw StoreError("async_sgd: damaged checkpoint (update count or workers)");
      auto vector_of = [&](std::vector<double> values) {
        if (values.size() != static_cast<size_t>(c_.dim)) throw StoreError("async_sgd: damaged checkpoint (vector size)");
        return VectorXd(Eigen::Map<const VectorXd>(values.data(), c_.dim));
      };
      for (VectorXd& v : ring) v = vector_of(in.get_array<double>());
      std::vector<VectorXd> buffers(in.get<std::uint32_t>());
      for (VectorXd& b : buffers) b = vector_of(in.get_array<double>());
      try {
        optimizer.set_buffers(buffers);
      } catch (const std::invalid_argument& e) {
        throw StoreError(std::string("async_sgd checkpoint: ") + e.what());
      }
      log_norms = in.get_array<double>();
      const std::vector<std::int32_t> workers = in.get_array<std::int32_t>();
      const std::vector<std::int64_t> versions = in.get_array<std::int64_t>();
      if (log_norms.size() != static_cast<size_t>(t + 1) || workers.size() != static_cast<size_t>(t) ||
          versions.size() != workers.size())
        throw StoreError("async_sgd: damaged checkpoint (per-update logs)");
      sequence.clear();
      for (size_t i = 0; i < workers.size(); ++i) sequence.push_back({workers[i], versions[i]});
      sr.last_recorded = in.get<std::int64_t>();
      sr.last_sharpness = in.get<std::int64_t>();
      sr.initial_distance = in.get<double>();
      for (auto* points : {&sr.log_norms, &sr.sharpness_points}) {
        const std::vector<std::int64_t> steps = in.get_array<std::int64_t>();
        const std::vector<double> values = in.get_array<double>();
        if (steps.size() != values.size()) throw StoreError("async_sgd: damaged checkpoint (recorder marks)");
        points->clear();
        for (size_t i = 0; i < steps.size(); ++i) points->emplace_back(steps[i], values[i]);
      }
      in.expect_end();
      return t;
    } catch (const TransportError& e) {
      throw StoreError(e.what());
    }
  }

  // ---- results, predictions and the verdict (both modes) ---------------------------------------------

  struct Outcome {
    std::int64_t updates_done = 0;
    bool engine_diverged = false;
    std::string divergence_reason;
    double growth_rate = kNaN;  // measured (noise-free quadratic)
    VectorXd w_final;
    double final_log_distance = kNaN;  // linear mode
    int state_lookback = -1;
    bool reached_zero = false;  // linear mode: the state became exactly 0 (converged exactly)
    std::int64_t order_mismatches = -1;  // MPI round robin: updates off the round-robin schedule
    bool replay_w_checked = false;       // MPI, deterministic gradients: w_T against the offline replay
    bool replay_w_bitwise = false;
    double replay_w_rel_error = kNaN;
  };

  void finish(Recorder& rec, const Setup& s, const StateRecorder& sr, const std::vector<as::ScheduledUpdate>& sequence,
              const Outcome& o) const {
    const as::Problem& p = *s.problem;
    const bool mpi = c_.mode == Mode::Mpi;
    const bool growth_run = !std::isnan(o.growth_rate);  // a noise-free quadratic (renormalised, or MPI)

    // Staleness statistics (§1.9.1): mean, max, histogram.
    std::int64_t max_stale = 0;
    double mean_stale = 0;
    for (size_t t = 0; t < sequence.size(); ++t) {
      const std::int64_t st = static_cast<std::int64_t>(t) - sequence[t].version_read;
      max_stale = std::max(max_stale, st);
      mean_stale += static_cast<double>(st);
    }
    if (!sequence.empty()) mean_stale /= static_cast<double>(sequence.size());
    std::vector<double> histogram(static_cast<size_t>(max_stale + 1), 0.0);
    for (size_t t = 0; t < sequence.size(); ++t)
      histogram[static_cast<size_t>(static_cast<std::int64_t>(t) - sequence[t].version_read)] += 1;
    rec.put_array("parameters/staleness_histogram", {histogram.size()}, histogram);
    put_scalar(rec, "parameters/staleness_mean", mean_stale);
    put_scalar(rec, "parameters/staleness_max", static_cast<double>(max_stale));
    rec.set_attribute("staleness_mean", mean_stale);
    rec.set_attribute("staleness_max", static_cast<double>(max_stale));

    // The threshold for this run's delays: the closed form / charpoly for constant delays; the replay
    // of the staleness sequence for random or real delays (§1.6, §1.9.2).
    as::ReplayOptions ro;
    ro.variant = c_.variant;
    ro.momentum = c_.momentum;
    ro.dampening = c_.dampening;
    ro.workers = c_.workers();
    ro.state_lookback = o.state_lookback;
    double h_threshold = s.h_variant;
    std::string threshold_source = c_.variant == as::MomentumVariant::None ? "h*(tau) = 2 sin(pi/(4 tau + 2))"
                                                                           : "charpoly threshold of the variant";
    if (c_.random_delays() && !sequence.empty()) {
      const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(sequence.size()), c_.replay_max_updates);
      const std::vector<as::ScheduledUpdate> head(sequence.begin(), sequence.begin() + n);
      as::ReplayOptions tro = ro;
      tro.state_lookback = -1;
      const double h_replay = as::replay_threshold({head}, tro);
      put_scalar(rec, "parameters/replay_threshold", h_replay);
      put_scalar(rec, "parameters/replay_lr_threshold", h_replay / s.lambda_ref);
      rec.set_attribute("replay_threshold", h_replay);
      h_threshold = h_replay;
      threshold_source = "replay of the staleness sequence (" + std::to_string(n) + " updates)";
    }
    const double f = s.eta * s.lambda_ref / h_threshold;
    // A minimum is linearly stable at this η iff its sharpness is below h/η (§1.4, §1.5; the replay
    // threshold for random or real delays, §1.6).
    for (const auto& [t, time] : sr.sharpness_points) rec.append("theory/sharpness_threshold", t, time, h_threshold / s.eta);
    put_scalar(rec, "parameters/threshold_h", h_threshold);
    put_scalar(rec, "parameters/f_run", f);
    rec.set_attribute("threshold_h", h_threshold);
    rec.set_attribute("f_run", f);

    bool pass = true;
    std::string detail;
    auto check = [&](bool ok, const std::string& text) {
      pass = pass && ok;
      detail += (detail.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
    };
    auto note = [&](const std::string& text) { detail += (detail.empty() ? "" : "; ") + text; };
    if (!s.single_interval) note("warning: the stable set of the charpoly is not one interval");
    if (o.order_mismatches >= 0) {
      rec.set_attribute("order_mismatches", static_cast<double>(o.order_mismatches));
      check(o.order_mismatches == 0,
            "round-robin order: " + std::to_string(o.order_mismatches) + " of " + std::to_string(sequence.size()) +
                " updates off the schedule worker (t mod k) + 1, staleness min(t, k - 1) = " +
                std::to_string(c_.mpi_workers - 1) + " after warm-up");
    }
    if (o.replay_w_checked) {
      rec.set_attribute("replay_w_bitwise", o.replay_w_bitwise ? "yes" : "no");
      put_scalar(rec, "parameters/replay_w_rel_error", o.replay_w_rel_error);
      check(o.replay_w_bitwise || o.replay_w_rel_error <= 1e-12,
            std::string("w_T equals the offline replay of the logged (worker, version) sequence ") +
                (o.replay_w_bitwise ? "bit for bit" : "to a relative error of " + fmt(o.replay_w_rel_error)));
    }

    bool diverged = o.engine_diverged;
    std::string minimum_reached;
    if (growth_run) {
      // ---- noise-free quadratic: the measured growth rate against log ρ or the replay (T1.2-T1.5, T1.7).
      double predicted;
      std::string source;
      const double replayed = replay_max(sequence, s, ro, o.updates_done);
      put_scalar(rec, "parameters/replay_growth_rate", replayed);
      rec.set_attribute("replay_growth_rate", replayed);
      if (!c_.random_delays()) {
        predicted = as::predicted_log_rho(c_.variant, s.tau, s.eta, s.spectrum, c_.momentum, c_.dampening);
        source = "log rho of the charpoly";
        put_scalar(rec, "parameters/predicted_log_rho", predicted);
        rec.set_attribute("predicted_log_rho", predicted);
      } else {
        predicted = replayed;
        source = "Lyapunov replay";
      }
      put_scalar(rec, "parameters/measured_growth_rate", o.growth_rate);
      rec.set_attribute("growth_rate", o.growth_rate);
      rec.set_attribute("predicted_growth_rate", predicted);
      const bool one_mode = s.spectrum.size() == 1;
      // Free-running MPI on a 1-D quadratic: the run is exactly its replay (T1.4); else T1.2's tolerance.
      const double bound = mpi && c_.random_delays() && one_mode
                               ? c_.tol_replay
                               : c_.tol_growth_rel * std::abs(predicted) + c_.tol_growth_abs;
      if (o.reached_zero) {
        rec.set_attribute("reached_zero", "yes");
        check(predicted < 0, "the state became exactly 0 at update " + std::to_string(o.updates_done) +
                                 " (exact cancellation; converged); " + source + " " + fmt(predicted) + " < 0");
      } else {
        // The signs must agree unless the prediction is marginal (|predicted| within the absolute
        // tolerance: η λ at the threshold itself).
        const bool marginal = std::abs(predicted) <= c_.tol_growth_abs;
        check(std::abs(o.growth_rate - predicted) <= bound && (marginal || (o.growth_rate > 0) == (predicted > 0)),
              "growth rate " + fmt(o.growth_rate) + " vs " + source + " " + fmt(predicted) + " (+-" + fmt(bound) +
                  (marginal ? ", marginal: at the threshold)" : ", same sign)"));
      }
      if (!c_.random_delays() && mpi && one_mode && !o.reached_zero)
        check(std::abs(o.growth_rate - replayed) <= c_.tol_replay,
              "growth rate " + fmt(o.growth_rate) + " vs the replay of the logged sequence " + fmt(replayed) + " (+-" +
                  fmt(c_.tol_replay) + ")");
      else if (!c_.random_delays())
        note("replayed growth rate " + fmt(replayed));
      diverged = diverged || o.growth_rate > 0;
      // Theory line: the predicted slope through the measured points of the window.
      theory_line(rec, sr, predicted, o.updates_done);
      if (s.linear) put_scalar(rec, "parameters/final_log_distance", o.final_log_distance);
    } else {
      // ---- stability of the reference minimum: f = η λ_max / h* below or above 1 (§1.4, T1.6).
      // Isolated minima (convex problems, the two-minima loss) with exact gradients: "stays" = converges
      // to the reference within converged_distance. Otherwise (minibatch noise, or the MLP's
      // non-isolated minima): "stays" = bounded within escape_factor × the initial distance.
      const bool isolated = !c_.stochastic && (c_.convex || c_.problem.kind == as::ProblemConfig::Kind::TwoMinima);
      const double d_final = s.reference ? (o.w_final - *s.reference).norm() : kNaN;
      const double d_escape = c_.tol_escape * std::max(sr.initial_distance, c_.tol_converged);
      const bool at_reference = !diverged && d_final < c_.tol_converged;
      const bool near_reference = !diverged && d_final <= d_escape;
      if (c_.problem.kind == as::ProblemConfig::Kind::TwoMinima) {
        const double w = o.w_final(0);
        minimum_reached = diverged                                                       ? "diverged"
                          : std::abs(w - as::TwoMinimaProblem::kSharpMinimum) < c_.tol_converged ? "sharp"
                          : std::abs(w - as::TwoMinimaProblem::kFlatMinimum) < c_.tol_converged  ? "flat"
                                                                                                   : "none";
      } else {
        minimum_reached = diverged ? "diverged" : at_reference ? "reference" : near_reference ? "near_reference" : "none";
      }
      rec.set_attribute("minimum_reached", minimum_reached);
      put_scalar(rec, "parameters/final_distance", d_final);
      rec.set_attribute("final_distance", d_final);
      const bool mlp_at_minimum = c_.problem.kind == as::ProblemConfig::Kind::Mlp && c_.base == StartBase::Minimum &&
                                  s.pretrain_converged;
      const bool assert_prediction = s.reference && (c_.convex || c_.problem.kind == as::ProblemConfig::Kind::TwoMinima ||
                                                     mlp_at_minimum);
      const std::string fdesc = "f = eta lambda_max / h = " + fmt(s.eta) + "*" + fmt(s.lambda_ref) + "/" +
                                fmt(h_threshold) + " = " + fmt(f) + " (h from " + threshold_source + ")";
      if (!assert_prediction) {
        note(fdesc + "; no prediction asserted (MLP not started at a converged pretrained minimum)");
      } else if (f < 1 - c_.tol_margin) {
        if (isolated) {
          check(at_reference, fdesc + " < 1: predicted to converge to the reference minimum; final distance " +
                                  fmt(d_final) + " < " + fmt(c_.tol_converged));
        } else {
          check(near_reference, fdesc + " < 1: predicted stable; final distance " + fmt(d_final) + " <= " +
                                    fmt(c_.tol_escape) + " x initial = " + fmt(d_escape) +
                                    (diverged ? " (diverged: " + o.divergence_reason + ")" : ""));
        }
      } else if (f > 1 + c_.tol_margin) {
        if (c_.problem.kind == as::ProblemConfig::Kind::TwoMinima) {
          // T1.6: the unstable minimum is left; the run ends at the other minimum if that one is
          // stable, else diverges.
          const auto& tm = c_.problem.two_minima;
          const bool at_sharp = (*s.reference)(0) > 0;
          const double lambda_other = at_sharp ? tm.flat_curvature : tm.sharp_curvature;
          const double f_other = s.eta * lambda_other / h_threshold;
          const std::string other = at_sharp ? "flat" : "sharp";
          if (f_other < 1 - c_.tol_margin) {
            // T1.6's criterion: the linearly unstable minimum is left. The other one is linearly
            // stable, which predicts where the run can end but not that the escape reaches it: with
            // f there near 1 the escape can overshoot and diverge, and rare starts oscillate across
            // the kink at w = 0 (reported, not asserted).
            check(minimum_reached != (at_sharp ? "sharp" : "flat"),
                  fdesc + " > 1: predicted to leave the " + std::string(at_sharp ? "sharp" : "flat") +
                      " minimum; the " + other + " one is stable (f there " + fmt(f_other) + "); reached " +
                      minimum_reached + (minimum_reached == "none" ? " (a bounded oscillation across the kink)" : ""));
          } else if (f_other > 1 + c_.tol_margin) {
            check(diverged, fdesc + " > 1 and f = " + fmt(f_other) + " > 1 at the " + other +
                                " minimum: predicted to diverge; reached " + minimum_reached);
          } else {
            check(minimum_reached != (at_sharp ? "sharp" : "flat"),
                  fdesc + " > 1: predicted to leave; reached " + minimum_reached);
          }
        } else if (isolated) {
          check(!at_reference, fdesc + " > 1: predicted not to converge to the reference minimum; final distance " +
                                   fmt(d_final));
        } else {
          check(!near_reference, fdesc + " > 1: predicted unstable; final distance " + fmt(d_final) + " > " +
                                     fmt(c_.tol_escape) + " x initial = " + fmt(d_escape) + " or diverged");
        }
      } else {
        note(fdesc + " within 1 +- " + fmt(c_.tol_margin) + ": no prediction asserted");
      }
      if (c_.problem.kind != as::ProblemConfig::Kind::TwoMinima)
        note("reached: " + minimum_reached + " (final distance " + fmt(d_final) + ")");
      else
        note("reached the " + minimum_reached + " minimum");
    }

    // Outcome and final values.
    if (!growth_run || !s.linear) put_vector(rec, "parameters/w_final", o.w_final);
    put_scalar(rec, "parameters/updates_done", static_cast<double>(o.updates_done));
    rec.set_attribute("updates_done", static_cast<double>(o.updates_done));
    rec.set_attribute("outcome", diverged ? "diverged" : "converged");
    if (diverged) {
      rec.set_attribute("status_detail", "diverged");
      note(o.engine_diverged ? "diverged at update " + std::to_string(o.updates_done) + ": " + o.divergence_reason
                             : "diverged (positive growth rate)");
    }
    if (!s.linear && o.w_final.allFinite()) {
      const double final_sharpness = as::sharpness(p, o.w_final, c_.sharpness_seed);
      put_scalar(rec, "parameters/final_sharpness", final_sharpness);
      rec.set_attribute("final_sharpness", final_sharpness);
    }
    rec.set_attribute("verdict", pass ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail);
  }

  // The replayed growth rate (§1.9.2): the maximum over the Hessian eigenvalues of the growth rate of
  // the scalar recursion driven by the same (worker, version) sequence.
  double replay_max(const std::vector<as::ScheduledUpdate>& sequence, const Setup& s, const as::ReplayOptions& ro,
                    std::int64_t updates) const {
    as::ReplayOptions r = ro;
    r.updates = updates;
    double best = -std::numeric_limits<double>::infinity();
    for (Eigen::Index i = 0; i < s.spectrum.size(); ++i)
      if (s.spectrum(i) > 0) best = std::max(best, as::replay_growth_rate(sequence, s.eta, s.spectrum(i), r));
    return best;
  }

  // theory/log_state_norm: the predicted slope through the mean of the measured points of the window.
  static void theory_line(Recorder& rec, const StateRecorder& sr, double slope, std::int64_t T) {
    double st = 0, sy = 0;
    int n = 0;
    for (const auto& [t, y] : sr.log_norms)
      if (t >= T / 2 && std::isfinite(y)) {
        st += static_cast<double>(t);
        sy += y;
        ++n;
      }
    if (n == 0) return;
    const double intercept = sy / n - slope * st / n;
    for (const auto& [t, y] : sr.log_norms)
      rec.append("theory/log_state_norm", t, sr.s.eta * static_cast<double>(t), intercept + slope * static_cast<double>(t));
  }

  AsyncSgdConfig c_;
  // Set by resume_from(): the server's saved state (group rank 0) and the update it was saved at.
  std::string resume_state_;
  std::int64_t resume_step_ = 0;
};

// ---- prepare(): validation and conversion --------------------------------------------------------------

void require_positive(double v, const std::string& field) {
  if (!(v > 0) || !std::isfinite(v)) throw SpecError(field, "must be a finite number > 0 (got " + fmt(v) + ")");
}
void require_non_negative(double v, const std::string& field) {
  if (!(v >= 0) || !std::isfinite(v)) throw SpecError(field, "must be a finite number >= 0 (got " + fmt(v) + ")");
}
void require_range(std::int64_t v, std::int64_t lo, std::int64_t hi, const std::string& field) {
  if (v < lo || v > hi)
    throw SpecError(field, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] (got " +
                               std::to_string(v) + ")");
}

VectorXd read_vector(const google::protobuf::RepeatedField<double>& values, const std::string& field) {
  VectorXd v(values.size());
  for (int i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values.Get(i)))
      throw SpecError(field + "[" + std::to_string(i) + "]", "must be finite (got " + fmt(values.Get(i)) + ")");
    v(i) = values.Get(i);
  }
  return v;
}

// problem.mlp.idx: the data of the MLP from IDX files (MNIST's format), read with
// relu_minima_stability's loader (worker/numerics/relu_minima_stability.h).
void load_mlp_idx(const pb::AsyncSgdMlp& m, const TaskContext& context, AsyncSgdConfig& c) {
  namespace rs = relu_stability;
  const auto& p = m.idx();
  if (m.has_n() || m.has_d() || m.has_teacher_hidden() || m.has_noise() || m.has_seed())
    throw SpecError("problem.mlp.idx", "n, d, teacher_hidden, noise and seed describe the synthetic teacher data: "
                                       "leave them unset with idx (n = idx.num_samples, d = the pixels of an image)");
  if (p.images().empty()) throw SpecError("problem.mlp.idx.images", "required (path of an IDX image file)");
  if (p.labels().empty()) throw SpecError("problem.mlp.idx.labels", "required (path of an IDX label file)");
  if (p.classes_size() == 0)
    throw SpecError("problem.mlp.idx.classes", "the class subset is empty: list the labels to use (e.g. [0, 1])");
  for (int i = 0; i < p.classes_size(); ++i) {
    const int cl = p.classes(i);
    if (cl < 0 || cl > 255)
      throw SpecError("problem.mlp.idx.classes", "labels are bytes: must be in [0, 255] (got " + std::to_string(cl) + ")");
    for (int j = 0; j < i; ++j)
      if (p.classes(j) == cl)
        throw SpecError("problem.mlp.idx.classes", "class " + std::to_string(cl) + " is listed twice");
  }
  if (p.target() == pb::AsyncSgdIdx::TARGET_PLUS_MINUS_ONE && p.classes_size() != 2)
    throw SpecError("problem.mlp.idx.classes", "TARGET_PLUS_MINUS_ONE needs exactly two classes (got " +
                                                   std::to_string(p.classes_size()) + ")");
  if (p.num_samples() < 1 || p.num_samples() > 100'000)
    throw SpecError("problem.mlp.idx.num_samples", "required, in [1, 100000] (got " + std::to_string(p.num_samples()) + ")");
  require_positive(p.pixel_scale(), "problem.mlp.idx.pixel_scale");
  auto resolve = [&](const std::string& path, const char* field) {
    try {
      return context.resolve_path(path);
    } catch (const InputError& e) {
      throw SpecError(field, e.what());
    }
  };
  rs::IdxOptions o;
  o.images_path = resolve(p.images(), "problem.mlp.idx.images");
  o.labels_path = resolve(p.labels(), "problem.mlp.idx.labels");
  o.classes.assign(p.classes().begin(), p.classes().end());
  o.num_samples = p.num_samples();
  o.pixel_scale = p.pixel_scale();
  o.target = p.target() == pb::AsyncSgdIdx::TARGET_LABEL ? rs::IdxTarget::Label : rs::IdxTarget::PlusMinusOne;
  o.selection = p.selection() == pb::AsyncSgdIdx::SELECTION_RANDOM ? rs::IdxSelection::Random : rs::IdxSelection::First;
  o.seed = p.seed() ? p.seed() : context.experiment_seed(kProblemStream);
  o.standardize = p.standardize_targets();
  rs::RegressionData data = rs::load_idx(o);  // InputError naming the file on a bad or short file
  if (data.X.cols() > 100'000) throw SpecError("problem.mlp.idx.images", "images of more than 100000 pixels");
  auto& mc = c.problem.mlp;
  mc.n = static_cast<int>(data.X.rows());
  mc.d = static_cast<int>(data.X.cols());
  mc.inputs = std::make_shared<const MatrixXd>(std::move(data.X));
  mc.targets = std::make_shared<const VectorXd>(std::move(data.y));
  std::string classes;
  for (int cl : o.classes) {
    if (!classes.empty()) classes.push_back(',');
    classes.append(std::to_string(cl));
  }
  c.data_name = "idx(" + p.images() + ", classes {" + classes + "}, n = " + std::to_string(mc.n) + ", d = " +
                std::to_string(mc.d) + ")";
}

class AsyncSgdKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "async_sgd"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const pb::AsyncSgdSpec&>(message);
    AsyncSgdConfig c;
    c.mode = s.mode() == pb::AsyncSgdSpec::MODE_MPI ? Mode::Mpi : Mode::Simulated;

    // ---- the problem ----
    if (s.batch_size() < 0 || s.batch_size() > 1'000'000)
      throw SpecError("batch_size", "must be in [0, 1e6] (got " + std::to_string(s.batch_size()) + "); 0 = full batch");
    const int batch = s.batch_size();
    const auto& pr = s.problem();
    switch (pr.kind_case()) {
      case pb::AsyncSgdProblem::kQuadratic: {
        const auto& q = pr.quadratic();
        c.problem.kind = as::ProblemConfig::Kind::Quadratic;
        c.problem_name = "quadratic";
        auto& qc = c.problem.quadratic;
        if (q.eigenvalues_size() > 0) {
          if (q.has_dim() && q.dim() != q.eigenvalues_size())
            throw SpecError("problem.quadratic.dim", "is " + std::to_string(q.dim()) + " but " +
                                                         std::to_string(q.eigenvalues_size()) + " eigenvalues are given");
          if (q.eigenvalues_size() > 10000) throw SpecError("problem.quadratic.eigenvalues", "at most 10000");
          qc.eigenvalues = read_vector(q.eigenvalues(), "problem.quadratic.eigenvalues");
          for (int i = 0; i < q.eigenvalues_size(); ++i)
            if (q.eigenvalues(i) < 0)
              throw SpecError("problem.quadratic.eigenvalues[" + std::to_string(i) + "]",
                              "must be >= 0 (got " + fmt(q.eigenvalues(i)) + "); the quadratic must have a minimum");
          if (!(qc.eigenvalues.maxCoeff() > 0))
            throw SpecError("problem.quadratic.eigenvalues", "at least one eigenvalue must be > 0");
        } else {
          require_range(q.dim(), 1, 10000, "problem.quadratic.dim");
          require_positive(q.lambda_max(), "problem.quadratic.lambda_max");
          if (!(q.min_ratio() > 0 && q.min_ratio() <= 1))
            throw SpecError("problem.quadratic.min_ratio", "must be in (0, 1] (got " + fmt(q.min_ratio()) + ")");
          qc.eigenvalues = as::log_spaced_spectrum(q.dim(), q.lambda_max(), q.min_ratio());
        }
        const auto d = qc.eigenvalues.size();
        require_non_negative(q.gradient_noise(), "problem.quadratic.gradient_noise");
        qc.gradient_noise = q.gradient_noise();
        qc.batch_size = std::max(batch, 1);
        if (q.minimum_size() > 0) {
          if (q.minimum_size() != d)
            throw SpecError("problem.quadratic.minimum", "has " + std::to_string(q.minimum_size()) +
                                                             " entries but the quadratic has dimension " + std::to_string(d));
          qc.minimum = read_vector(q.minimum(), "problem.quadratic.minimum");
        }
        qc.rotate = q.rotate();
        qc.rotation_seed = q.seed() ? q.seed() : context.experiment_seed(kProblemStream);
        c.dim = static_cast<int>(d);
        c.stochastic = qc.gradient_noise > 0;
        c.convex = true;
        break;
      }
      case pb::AsyncSgdProblem::kTwoMinima: {
        const auto& t = pr.two_minima();
        c.problem.kind = as::ProblemConfig::Kind::TwoMinima;
        c.problem_name = "two_minima";
        require_positive(t.sharp_curvature(), "problem.two_minima.sharp_curvature");
        require_positive(t.flat_curvature(), "problem.two_minima.flat_curvature");
        if (batch != 0) throw SpecError("batch_size", "must be 0 for two_minima (its gradient is deterministic)");
        c.problem.two_minima.sharp_curvature = t.sharp_curvature();
        c.problem.two_minima.flat_curvature = t.flat_curvature();
        c.dim = 1;
        break;
      }
      case pb::AsyncSgdProblem::kLeastSquares: {
        const auto& l = pr.least_squares();
        c.problem.kind = as::ProblemConfig::Kind::LeastSquares;
        c.problem_name = "least_squares";
        require_range(l.n(), 1, 1'000'000, "problem.least_squares.n");
        require_range(l.d(), 1, 10000, "problem.least_squares.d");
        if (static_cast<std::int64_t>(l.n()) * l.d() > 100'000'000)
          throw SpecError("problem.least_squares", "n*d must be <= 1e8");
        require_non_negative(l.noise(), "problem.least_squares.noise");
        auto& lc = c.problem.least_squares;
        lc.n = l.n();
        lc.d = l.d();
        lc.noise = l.noise();
        lc.batch_size = batch;
        lc.seed = l.seed() ? l.seed() : context.experiment_seed(kProblemStream);
        c.dim = l.d();
        c.stochastic = batch > 0;
        c.convex = true;
        break;
      }
      case pb::AsyncSgdProblem::kLogistic: {
        const auto& l = pr.logistic();
        c.problem.kind = as::ProblemConfig::Kind::Logistic;
        c.problem_name = "logistic";
        require_range(l.n(), 1, 1'000'000, "problem.logistic.n");
        require_range(l.d(), 1, 10000, "problem.logistic.d");
        if (static_cast<std::int64_t>(l.n()) * l.d() > 100'000'000) throw SpecError("problem.logistic", "n*d must be <= 1e8");
        require_positive(l.l2(), "problem.logistic.l2");
        if (!(l.label_flip() >= 0 && l.label_flip() <= 0.5))
          throw SpecError("problem.logistic.label_flip", "must be in [0, 0.5] (got " + fmt(l.label_flip()) + ")");
        auto& lc = c.problem.logistic;
        lc.n = l.n();
        lc.d = l.d();
        lc.l2 = l.l2();
        lc.label_flip = l.label_flip();
        lc.batch_size = batch;
        lc.seed = l.seed() ? l.seed() : context.experiment_seed(kProblemStream);
        c.dim = l.d();
        c.stochastic = batch > 0;
        c.convex = true;
        break;
      }
      case pb::AsyncSgdProblem::kMlp: {
        const auto& m = pr.mlp();
        c.problem.kind = as::ProblemConfig::Kind::Mlp;
        c.problem_name = "mlp";
        require_range(m.n(), 1, 100'000, "problem.mlp.n");
        require_range(m.d(), 1, 1000, "problem.mlp.d");
        require_range(m.hidden(), 1, 1000, "problem.mlp.hidden");
        require_range(m.teacher_hidden(), 1, 1000, "problem.mlp.teacher_hidden");
        require_non_negative(m.noise(), "problem.mlp.noise");
        require_positive(m.init_scale(), "problem.mlp.init_scale");
        require_range(m.pretrain_steps(), 0, 100'000'000, "problem.mlp.pretrain_steps");
        require_positive(m.pretrain_grad_tol(), "problem.mlp.pretrain_grad_tol");
        auto& mc = c.problem.mlp;
        mc.n = m.n();
        mc.d = m.d();
        mc.hidden = m.hidden();
        mc.teacher_hidden = m.teacher_hidden();
        mc.noise = m.noise();
        mc.init_scale = m.init_scale();
        mc.batch_size = batch;
        mc.data_seed = m.seed() ? m.seed() : context.experiment_seed(kProblemStream);
        mc.init_seed = m.init_seed() ? m.init_seed() : context.experiment_seed(kInitStream);
        c.pretrain_steps = m.pretrain_steps();
        c.pretrain_grad_tol = m.pretrain_grad_tol();
        int d = m.d();
        if (m.has_idx()) {
          load_mlp_idx(m, context, c);
          d = c.problem.mlp.d;
        }
        c.dim = m.hidden() * (d + 2) + 1;
        c.stochastic = batch > 0;
        break;
      }
      default:
        throw SpecError("problem", "required: one of quadratic, two_minima, least_squares, logistic, mlp");
    }

    // ---- learning rate and optimiser ----
    if (!s.has_lr()) throw SpecError("lr", "required (the learning rate, > 0; see lr_rule)");
    require_positive(s.lr(), "lr");
    c.lr = s.lr();
    switch (s.lr_rule()) {
      case pb::AsyncSgdSpec::LR_DELAY_SCALED:
        c.lr_rule = LrRule::DelayScaled;
        c.lr_rule_name = "delay_scaled";
        break;
      case pb::AsyncSgdSpec::LR_OVER_SHARPNESS:
        c.lr_rule = LrRule::OverSharpness;
        c.lr_rule_name = "over_sharpness";
        break;
      case pb::AsyncSgdSpec::LR_THRESHOLD_FRACTION:
        c.lr_rule = LrRule::ThresholdFraction;
        c.lr_rule_name = "threshold_fraction";
        break;
      default:
        c.lr_rule = LrRule::Absolute;
        c.lr_rule_name = "absolute";
    }
    if (!(s.momentum() >= 0 && s.momentum() < 1))
      throw SpecError("momentum", "must be in [0, 1) (got " + fmt(s.momentum()) + ")");
    if (!(s.dampening() >= 0 && s.dampening() < 1))
      throw SpecError("dampening", "must be in [0, 1) (got " + fmt(s.dampening()) + ")");
    switch (s.momentum_variant()) {
      case pb::AsyncSgdSpec::MOMENTUM_SERVER:
        c.variant = as::MomentumVariant::Server;
        c.variant_name = "server_momentum";
        break;
      case pb::AsyncSgdSpec::MOMENTUM_SHIFTED:
        c.variant = as::MomentumVariant::Shifted;
        c.variant_name = "shifted_momentum";
        break;
      default:
        c.variant = as::MomentumVariant::None;
        c.variant_name = "no_momentum";
        if (s.momentum() != 0)
          throw SpecError("momentum", "must be 0 with MOMENTUM_NONE (got " + fmt(s.momentum()) +
                                          "); set momentum_variant to MOMENTUM_SERVER or MOMENTUM_SHIFTED");
        if (s.dampening() != 0) throw SpecError("dampening", "must be 0 with MOMENTUM_NONE (got " + fmt(s.dampening()) + ")");
    }
    c.momentum = s.momentum();
    c.dampening = s.dampening();
    if (!s.has_updates()) throw SpecError("updates", "required (the number of server updates T, >= 1)");
    require_range(s.updates(), 1, 1'000'000'000, "updates");
    c.updates = s.updates();

    // ---- delays ----
    if (c.mode == Mode::Simulated) {
      if (s.has_mpi()) throw SpecError("mpi", "only for MODE_MPI");
      const auto& d = s.delay();
      switch (d.schedule()) {
        case pb::AsyncSgdDelay::SCHEDULE_ROUND_ROBIN:
          c.schedule.kind = as::ScheduleKind::RoundRobin;
          c.schedule_name = "round_robin";
          break;
        case pb::AsyncSgdDelay::SCHEDULE_UNIFORM_RANDOM:
          c.schedule.kind = as::ScheduleKind::UniformRandom;
          c.schedule_name = "uniform_random";
          break;
        default:
          c.schedule.kind = as::ScheduleKind::Constant;
          c.schedule_name = "constant";
      }
      if (c.schedule.kind == as::ScheduleKind::Constant) {
        if (d.tau() < 0) throw SpecError("delay.tau", "must be >= 0 (got " + std::to_string(d.tau()) + ")");
        require_range(d.tau(), 0, 10000, "delay.tau");
        if (d.has_workers())
          throw SpecError("delay.workers", "only for SCHEDULE_ROUND_ROBIN / SCHEDULE_UNIFORM_RANDOM (the constant "
                                           "schedule uses tau + 1 workers)");
        c.schedule.tau = d.tau();
      } else {
        if (d.has_tau()) throw SpecError("delay.tau", "only for SCHEDULE_CONSTANT (here the delay is set by workers)");
        if (d.workers() < 1) throw SpecError("delay.workers", "must be >= 1 (got " + std::to_string(d.workers()) + ")");
        require_range(d.workers(), 1, 10000, "delay.workers");
        c.schedule.workers = d.workers();
      }
      c.schedule.seed = d.seed() ? d.seed() : context.task_seed(kScheduleStream);
    } else {
      if (s.has_delay()) throw SpecError("delay", "only for MODE_SIMULATED (MODE_MPI's delays are real)");
      if (!s.has_mpi()) throw SpecError("mpi", "required for MODE_MPI (at least mpi.workers)");
      const auto& m = s.mpi();
      if (!m.has_workers()) throw SpecError("mpi.workers", "required (the number of worker ranks k, >= 1)");
      if (m.workers() < 1) throw SpecError("mpi.workers", "must be >= 1 (got " + std::to_string(m.workers()) + ")");
      require_range(m.workers(), 1, 1024, "mpi.workers");
      c.mpi_workers = m.workers();
      if (m.staleness_bound() < -1)
        throw SpecError("mpi.staleness_bound", "must be >= 0, or -1 for no bound (got " +
                                                   std::to_string(m.staleness_bound()) + ")");
      c.staleness_bound = m.staleness_bound();
      require_positive(m.peer_timeout_s(), "mpi.peer_timeout_s");
      if (m.peer_timeout_s() > 3600) throw SpecError("mpi.peer_timeout_s", "must be <= 3600");
      c.peer_timeout_s = m.peer_timeout_s();
      const auto& l = m.latency();
      require_non_negative(l.constant_ms(), "mpi.latency.constant_ms");
      require_non_negative(l.low_ms(), "mpi.latency.low_ms");
      require_non_negative(l.high_ms(), "mpi.latency.high_ms");
      require_non_negative(l.mean_ms(), "mpi.latency.mean_ms");
      require_non_negative(l.slow_ms(), "mpi.latency.slow_ms");
      switch (l.model()) {
        case pb::AsyncSgdLatency::LATENCY_CONSTANT:
          c.latency.kind = ps::LatencyModel::Kind::Constant;
          c.latency.a_ms = l.constant_ms();
          c.latency_name = "constant " + fmt(l.constant_ms()) + " ms";
          break;
        case pb::AsyncSgdLatency::LATENCY_UNIFORM:
          if (l.low_ms() > l.high_ms())
            throw SpecError("mpi.latency.high_ms", "must be >= low_ms (" + fmt(l.low_ms()) + ")");
          c.latency.kind = ps::LatencyModel::Kind::Uniform;
          c.latency.a_ms = l.low_ms();
          c.latency.b_ms = l.high_ms();
          c.latency_name = "uniform [" + fmt(l.low_ms()) + ", " + fmt(l.high_ms()) + "] ms";
          break;
        case pb::AsyncSgdLatency::LATENCY_EXPONENTIAL:
          c.latency.kind = ps::LatencyModel::Kind::Exponential;
          c.latency.a_ms = l.mean_ms();
          c.latency_name = "exponential mean " + fmt(l.mean_ms()) + " ms";
          break;
        case pb::AsyncSgdLatency::LATENCY_SLOW_WORKER:
          if (l.slow_worker() < 1 || l.slow_worker() > c.mpi_workers)
            throw SpecError("mpi.latency.slow_worker", "must be in [1, mpi.workers = " + std::to_string(c.mpi_workers) +
                                                           "] (got " + std::to_string(l.slow_worker()) + ")");
          c.latency.kind = ps::LatencyModel::Kind::SlowWorker;
          c.latency.a_ms = l.slow_ms();
          c.latency.slow_worker = l.slow_worker();
          c.latency_name = "worker " + std::to_string(l.slow_worker()) + " slow by " + fmt(l.slow_ms()) + " ms";
          break;
        default:
          c.latency.kind = ps::LatencyModel::Kind::None;
          c.latency_name = "none";
      }
      c.latency_seed = m.seed() ? m.seed() : context.task_seed(kLatencyStream);
      c.mpi_round_robin = m.schedule() == pb::AsyncSgdMpi::SCHEDULE_ROUND_ROBIN;
      if (c.mpi_round_robin && c.staleness_bound != -1)
        throw SpecError("mpi.staleness_bound", "must be -1 with schedule SCHEDULE_ROUND_ROBIN (the order already fixes "
                                               "the staleness at k - 1 = " + std::to_string(c.mpi_workers - 1) + ")");
      c.worker_seeds.resize(static_cast<size_t>(c.mpi_workers) + 1, 0);
      for (int k = 1; k <= c.mpi_workers; ++k)
        c.worker_seeds[static_cast<size_t>(k)] = context.task_seed(kWorkerStreamBase + static_cast<std::uint64_t>(k));
    }

    // ---- the start ----
    const auto& st = s.start();
    switch (st.base()) {
      case pb::AsyncSgdStart::BASE_MINIMUM:
        c.base = StartBase::Minimum;
        if (c.problem.kind == as::ProblemConfig::Kind::Mlp && c.pretrain_steps == 0)
          throw SpecError("start.base", "BASE_MINIMUM needs a reference minimum: set problem.mlp.pretrain_steps > 0");
        break;
      case pb::AsyncSgdStart::BASE_EXPLICIT:
        c.base = StartBase::Explicit;
        if (st.w0_size() != c.dim)
          throw SpecError("start.w0", "has " + std::to_string(st.w0_size()) + " entries but the problem has " +
                                          std::to_string(c.dim) + " parameters");
        c.w0_explicit = read_vector(st.w0(), "start.w0");
        break;
      default:
        c.base = StartBase::ProblemDefault;
    }
    if (c.base != StartBase::Explicit && st.w0_size() > 0)
      throw SpecError("start.w0", "only with base: BASE_EXPLICIT");
    require_non_negative(st.perturbation(), "start.perturbation");
    c.perturbation = st.perturbation();
    c.start_seed = st.seed() ? st.seed() : context.task_seed(kStartStream);
    if (st.random_history()) {
      if (c.mode != Mode::Simulated || c.schedule.kind != as::ScheduleKind::Constant)
        throw SpecError("start.random_history", "only with MODE_SIMULATED and SCHEDULE_CONSTANT");
      if (!(c.perturbation > 0)) throw SpecError("start.random_history", "needs start.perturbation > 0");
      c.random_history = true;
      c.schedule.random_history = true;
    }
    if (c.problem.kind == as::ProblemConfig::Kind::Quadratic && c.base == StartBase::Minimum && c.perturbation == 0)
      throw SpecError("start.perturbation", "must be > 0 when starting at the quadratic's minimum (else nothing moves)");

    // ---- recording, divergence, replay, tolerances ----
    c.gradient_seed = s.seed() ? s.seed() : context.task_seed(kGradientStream);
    c.sharpness_seed = context.experiment_seed(kSharpnessStream);
    if (s.record_every() < 0) throw SpecError("record_every", "must be >= 0 (got " + std::to_string(s.record_every()) + ")");
    c.record_every = s.record_every();
    if (s.sharpness_every() < 0)
      throw SpecError("sharpness_every", "must be >= 0 (got " + std::to_string(s.sharpness_every()) + ")");
    c.sharpness_every = s.sharpness_every();
    require_positive(s.divergence_bound(), "divergence_bound");
    c.divergence_bound = s.divergence_bound();
    c.measure_growth = s.measure_growth_rate();
    require_range(s.replay_max_updates(), 1, 100'000'000, "replay_max_updates");
    c.replay_max_updates = s.replay_max_updates();
    const auto& tol = s.tolerance();
    require_non_negative(tol.growth_rel(), "tolerance.growth_rel");
    require_non_negative(tol.growth_abs(), "tolerance.growth_abs");
    if (!(tol.margin() >= 0 && tol.margin() < 1))
      throw SpecError("tolerance.margin", "must be in [0, 1) (got " + fmt(tol.margin()) + ")");
    require_positive(tol.converged_distance(), "tolerance.converged_distance");
    require_non_negative(tol.replay_abs(), "tolerance.replay_abs");
    if (!(tol.escape_factor() > 1) || !std::isfinite(tol.escape_factor()))
      throw SpecError("tolerance.escape_factor", "must be a finite number > 1 (got " + fmt(tol.escape_factor()) + ")");
    c.tol_escape = tol.escape_factor();
    c.tol_growth_rel = tol.growth_rel();
    c.tol_growth_abs = tol.growth_abs();
    c.tol_margin = tol.margin();
    c.tol_converged = tol.converged_distance();
    c.tol_replay = tol.replay_abs();
    return std::make_unique<AsyncSgdTask>(std::move(c));
  }
};

GDLAB_REGISTER_KIND(AsyncSgdKind);

}  // namespace
}  // namespace gdlab
