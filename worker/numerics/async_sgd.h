// Numerical core of the experiment kind `async_sgd`: Giladi, Nacson, Hoffer, Soudry, "At Stability's
// Edge: How to Adjust Hyperparameters to Preserve Minima Selection in Asynchronous Training of Neural
// Networks?" (ICLR 2020, arXiv:1909.12340); spec in shared/papers/stability.md §1 (and §0).
//
// Plain C++/Eigen, no protobuf. Four parts:
//  1. Problems behind one interface (Problem): a quadratic with a chosen Hessian spectrum (the exact
//     test bed of §1.4–§1.6), the 1-D loss with a sharp and a flat minimum (§1.11 T1.6), least
//     squares, L2-regularised logistic regression and a one-hidden-layer tanh MLP on synthetic data.
//     Each gives the loss, the full gradient, a minibatch gradient (randomness from gdlab::Rng), an
//     exact Hessian-vector product and an initial point.
//  2. The parameter server's optimiser (ServerOptimizer): plain A-SGD, PS heavy-ball momentum with
//     dampening (§1.5 (a), (b)), and shifted = per-worker momentum (§1.5 (c)). Used by the simulated
//     engine below and by the MPI parameter server (worker/parameter_server.h).
//  3. The simulated delayed-update engine (§1.9.3): the delay schedule is a sequence of
//     (worker, version read) pairs — constant τ, round robin over N workers, or a uniformly random
//     worker each update (the schedules of the released code `delay_stability`, §1.7), or a sequence
//     logged by a real MPI run — and run_delayed() applies it to a Problem. Bitwise reproducible.
//     For a linear problem (a noise-free quadratic) it renormalises the stacked state and measures
//     the growth rate with the estimator of §0.2.
//  4. Theory: h*(τ) = 2 sin(π/(4τ+2)) (§1.4), the characteristic polynomials of §1.5 with their
//     thresholds by root finding on the companion matrix (§0.1), the lr rule η_τ = η₀ sin(π/(4τ+2))
//     (§1.4), and the Lyapunov-exponent replay of a staleness sequence on the scalar quadratic (§1.9.2).
#pragma once

#include <Eigen/Dense>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"

namespace gdlab::async_sgd {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// ============================== 1. Problems ==============================

// A training loss L(w) on R^dim. Implementations are immutable after construction (thread- and
// rank-safe to share); every random draw comes from the Rng passed in.
class Problem {
 public:
  virtual ~Problem() = default;
  virtual std::string name() const = 0;
  virtual int dim() const = 0;
  virtual double loss(const VectorXd& w) const = 0;
  // g = ∇L(w) (full batch). `g` is resized.
  virtual void full_gradient(const VectorXd& w, VectorXd& g) const = 0;
  // A minibatch gradient: B samples drawn i.i.d. uniformly (with replacement) with `rng`, or, for the
  // quadratic, H(w − w*) plus Gaussian noise σ/√B. With full batches (B = 0) it is the full gradient
  // and draws nothing.
  virtual void stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const = 0;
  // out = ∇²L(w) v, exact (analytic). `out` is resized.
  virtual void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const = 0;
  // The problem's default initial point (deterministic from its seeds).
  virtual VectorXd initial_point() const = 0;
  // A minimiser known in closed form or by Newton's method, the one "nearest" to `near` where there
  // are several (the two-minima loss: the minimum of the basin containing `near`); nullopt when none
  // is known (the MLP: use find_minimum()).
  virtual std::optional<VectorXd> known_minimum(const VectorXd& near) const {
    (void)near;
    return std::nullopt;
  }
  // True iff ∇L(w) = H(w − w*) exactly and stochastic_gradient draws nothing: the dynamics are then
  // linear around w* and run_delayed() may renormalise them (§0.2).
  virtual bool is_linear() const { return false; }
  // True iff stochastic_gradient() is random (minibatches or gradient noise).
  virtual bool is_stochastic() const { return false; }
  // The dense Hessian at w from dim() HVPs (small problems, tests).
  MatrixXd hessian(const VectorXd& w) const;
};

// Quadratic L(w) = ½ (w − w*)ᵀ H (w − w*) with H = Q diag(λ) Qᵀ (§1.3: the linearisation is exact).
struct QuadraticConfig {
  VectorXd eigenvalues;             // λ_i ≥ 0, the Hessian spectrum (dim = its size ≥ 1)
  bool rotate = false;              // Q Haar-random orthogonal (from rotation_seed); else Q = I
  std::uint64_t rotation_seed = 0;
  VectorXd minimum;                 // w*; empty = 0
  double gradient_noise = 0;        // σ ≥ 0 of the additive gradient noise (per coordinate, /√B)
  int batch_size = 1;               // B ≥ 1, divides the noise variance
  VectorXd initial;                 // initial point; empty = w* + (1, …, 1)/√dim
};
// Eigenvalues log-spaced in [min_ratio, 1]·lambda_max, largest first (T1.2: d = 8, ratio 0.1).
VectorXd log_spaced_spectrum(int dim, double lambda_max, double min_ratio);

class QuadraticProblem : public Problem {
 public:
  explicit QuadraticProblem(QuadraticConfig config);
  std::string name() const override { return "quadratic"; }
  int dim() const override { return static_cast<int>(c_.eigenvalues.size()); }
  double loss(const VectorXd& w) const override;
  void full_gradient(const VectorXd& w, VectorXd& g) const override;
  void stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const override;
  void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const override;
  VectorXd initial_point() const override { return initial_; }
  std::optional<VectorXd> known_minimum(const VectorXd&) const override { return minimum_; }
  bool is_linear() const override { return c_.gradient_noise == 0; }
  bool is_stochastic() const override { return c_.gradient_noise > 0; }
  const VectorXd& eigenvalues() const { return c_.eigenvalues; }
  const MatrixXd& hessian_matrix() const { return H_; }
  const VectorXd& minimum() const { return minimum_; }

 private:
  QuadraticConfig c_;
  MatrixXd H_;
  VectorXd minimum_, initial_;
};

// The 1-D loss of §1.11 T1.6 with a sharp minimum at +1 (curvature λ_s) and a flat one at −1 (λ_f):
//   f(w) = ½λ_s(w − 1)²                      for w ≥ 0,
//   f(w) = ½λ_f(w + 1)² + ½(λ_s − λ_f)       for w < 0   (continuous at 0; both minima have f = 0 … ½(λ_s−λ_f)).
// The Hessian is λ_s on w ≥ 0 and λ_f on w < 0.
struct TwoMinimaConfig {
  double sharp_curvature = 4;  // λ_s > 0
  double flat_curvature = 1;   // λ_f > 0
  double initial = 1;          // default initial point
};
class TwoMinimaProblem : public Problem {
 public:
  explicit TwoMinimaProblem(TwoMinimaConfig config) : c_(config) {}
  std::string name() const override { return "two_minima"; }
  int dim() const override { return 1; }
  double loss(const VectorXd& w) const override;
  void full_gradient(const VectorXd& w, VectorXd& g) const override;
  void stochastic_gradient(const VectorXd& w, Rng&, VectorXd& g) const override { full_gradient(w, g); }
  void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const override;
  VectorXd initial_point() const override { return VectorXd::Constant(1, c_.initial); }
  // +1 for near ≥ 0, −1 otherwise.
  std::optional<VectorXd> known_minimum(const VectorXd& near) const override;
  static constexpr double kSharpMinimum = 1.0;
  static constexpr double kFlatMinimum = -1.0;
  const TwoMinimaConfig& config() const { return c_; }

 private:
  TwoMinimaConfig c_;
};

// Least squares L(w) = (1/2n)‖Xw − y‖², rows x_j ~ N(0, I_d), y = X w_true + noise·N(0, 1),
// w_true ~ N(0, I_d/d). Minimum by the normal equations. Initial point 0.
struct LeastSquaresConfig {
  int n = 100, d = 10;
  double noise = 0.1;
  int batch_size = 0;  // 0 = full batch
  std::uint64_t seed = 0;
};
class LeastSquaresProblem : public Problem {
 public:
  explicit LeastSquaresProblem(LeastSquaresConfig config);
  std::string name() const override { return "least_squares"; }
  int dim() const override { return c_.d; }
  double loss(const VectorXd& w) const override;
  void full_gradient(const VectorXd& w, VectorXd& g) const override;
  void stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const override;
  void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const override;
  VectorXd initial_point() const override { return VectorXd::Zero(c_.d); }
  std::optional<VectorXd> known_minimum(const VectorXd&) const override { return minimum_; }
  bool is_stochastic() const override { return c_.batch_size > 0; }
  const MatrixXd& X() const { return X_; }
  const VectorXd& y() const { return y_; }

 private:
  LeastSquaresConfig c_;
  MatrixXd X_;
  VectorXd y_, minimum_;
};

// L2-regularised logistic regression L(w) = (1/n)Σ log(1 + exp(−y_j x_jᵀw)) + (l2/2)‖w‖², rows
// x_j ~ N(0, I_d), labels y_j = sign(x_jᵀ w_true) flipped with probability label_flip. Minimum by
// Newton's method (strictly convex for l2 > 0). Initial point 0.
struct LogisticConfig {
  int n = 200, d = 10;
  double l2 = 1e-2;
  double label_flip = 0.1;
  int batch_size = 0;
  std::uint64_t seed = 0;
};
class LogisticProblem : public Problem {
 public:
  explicit LogisticProblem(LogisticConfig config);
  std::string name() const override { return "logistic"; }
  int dim() const override { return c_.d; }
  double loss(const VectorXd& w) const override;
  void full_gradient(const VectorXd& w, VectorXd& g) const override;
  void stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const override;
  void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const override;
  VectorXd initial_point() const override { return VectorXd::Zero(c_.d); }
  std::optional<VectorXd> known_minimum(const VectorXd&) const override { return minimum_; }
  bool is_stochastic() const override { return c_.batch_size > 0; }

 private:
  void gradient_on(const VectorXd& w, const std::vector<int>* rows, VectorXd& g) const;
  LogisticConfig c_;
  MatrixXd X_;
  VectorXd y_, minimum_;
};

// One-hidden-layer tanh network f(x) = vᵀ tanh(Wx + b) + c with the squared loss
// L = (1/2n)Σ_j (f(x_j) − y_j)², on x_j ~ N(0, I_d) labelled by a random teacher of the same form with
// `teacher_hidden` units (plus noise), or on given data (MlpConfig::inputs/targets, e.g. MNIST). Parameters packed as θ = (vec_rowmajor(W) [h×d], b [h], v [h], c).
// Initial point: W ~ N(0, init_scale²/d), b = 0, v ~ N(0, init_scale²/h), c = 0. The HVP is exact
// (Pearlmutter's R-operator on the backward pass).
struct MlpConfig {
  int n = 64, d = 2, hidden = 16, teacher_hidden = 4;
  double noise = 0;
  double init_scale = 1;
  int batch_size = 0;
  std::uint64_t data_seed = 0, init_seed = 0;
  // Given data instead of the teacher (IDX files, loaded by the kind with the loader of
  // worker/numerics/relu_minima_stability.h): n×d inputs and n targets; n and d are then theirs.
  std::shared_ptr<const MatrixXd> inputs;
  std::shared_ptr<const VectorXd> targets;
};
class MlpProblem : public Problem {
 public:
  explicit MlpProblem(MlpConfig config);
  std::string name() const override { return "mlp"; }
  int dim() const override { return c_.hidden * (c_.d + 2) + 1; }
  double loss(const VectorXd& w) const override;
  void full_gradient(const VectorXd& w, VectorXd& g) const override;
  void stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const override;
  void hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const override;
  VectorXd initial_point() const override { return initial_; }
  bool is_stochastic() const override { return c_.batch_size > 0; }

 private:
  // Gradient (and optionally the R-op of the gradient along `dir`) summed over `rows` (all if null),
  // divided by the number of rows.
  void backprop(const VectorXd& w, const std::vector<int>* rows, VectorXd& g, const VectorXd* dir, VectorXd* Hv) const;
  MlpConfig c_;
  MatrixXd X_;  // n×d
  VectorXd y_, initial_;
};

struct ProblemConfig {
  enum class Kind { Quadratic, TwoMinima, LeastSquares, Logistic, Mlp };
  Kind kind = Kind::Quadratic;
  QuadraticConfig quadratic;
  TwoMinimaConfig two_minima;
  LeastSquaresConfig least_squares;
  LogisticConfig logistic;
  MlpConfig mlp;
};
std::unique_ptr<Problem> make_problem(const ProblemConfig& config);

// Sharpness λ_max(∇²L(w)) of the full loss (§0.3): dense SelfAdjointEigenSolver for dim ≤ 64, else
// Lanczos with HVPs (worker/numerics/hessian.h) from a start vector drawn from `seed`.
double sharpness(const Problem& problem, const VectorXd& w, std::uint64_t seed = 1);

// A reference minimum for problems without a known one (the MLP), from `start`, until ‖∇L‖ ≤ grad_tol
// or max_steps iterations: Levenberg–Marquardt-damped Newton steps on the dense Hessian for
// dim ≤ 512 (each step decreases L), else GD with the step 1/λ_max re-estimated every 50 steps.
struct MinimumSearch {
  VectorXd w;
  double grad_norm = 0;
  std::int64_t steps = 0;
  bool converged = false;
};
MinimumSearch find_minimum(const Problem& problem, const VectorXd& start, std::int64_t max_steps, double grad_tol);

// ============================== 2. The server's optimiser ==============================

// §1.5: (a) PS heavy ball = one buffer at the server (the released code's HSGD/asgd server),
// buf ← γ buf + (1 − d) g, w ← w − η buf; (b) dampening d; (c) shifted momentum = one buffer per
// worker, updated only when that worker pushes (the released code's MSGD server):
// buf_k ← γ buf_k + (1 − d) g, w ← w − η buf_k. Buffers start at 0 (torch.optim.SGD instead copies
// the first gradient into the buffer undampened; the difference is one transient step).
enum class MomentumVariant { None, Server, Shifted };

struct OptimizerConfig {
  double lr = 0;                  // η > 0
  MomentumVariant variant = MomentumVariant::None;
  double momentum = 0;            // γ ∈ [0, 1)
  double dampening = 0;           // d ∈ [0, 1)
  int workers = 1;                // number of per-worker buffers (Shifted)
};

class ServerOptimizer {
 public:
  ServerOptimizer(const OptimizerConfig& config, int dim);
  // Applies the gradient `g` pushed by worker `worker` (1..workers) to w, in place. `g` may view a
  // message buffer (the parameter server applies gradients where they landed).
  void apply(int worker, Eigen::Ref<const VectorXd> g, VectorXd& w);
  // The same update out of place, w_next = w − η·step (bit for bit apply()'s result); w_next must
  // not alias w. The parameter server writes it straight into the buffer it sends the weights from.
  void apply_into(int worker, Eigen::Ref<const VectorXd> g, Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> w_next);
  // Multiplies every momentum buffer by `factor` (renormalisation of a linear run).
  void scale_state(double factor);
  // Σ‖buf‖² over all buffers (part of the stacked state of §0.2).
  double state_squared_norm() const;
  double buffer_norm() const { return std::sqrt(state_squared_norm()); }
  // The same norm without underflow for tiny buffers (scaled sums; Eigen's stableNorm per buffer).
  double buffer_stable_norm() const;
  const OptimizerConfig& config() const { return c_; }
  void reset();
  // The momentum buffers (none, one, or one per worker), for checkpoints of a parameter server.
  const std::vector<VectorXd>& buffers() const { return buffers_; }
  // Restores buffers() saved earlier; throws std::invalid_argument if their number or sizes differ.
  void set_buffers(const std::vector<VectorXd>& buffers);

 private:
  const VectorXd* momentum_step(int worker, Eigen::Ref<const VectorXd> g);
  OptimizerConfig c_;
  std::vector<VectorXd> buffers_;  // none, one (Server) or `workers` (Shifted)
};
std::unique_ptr<ServerOptimizer> make_optimizer(const OptimizerConfig& config, int dim);

// ============================== 3. Delay schedules and the engine ==============================

// One update of the server: the worker that pushes and the version (number of updates applied) of the
// weights its gradient was computed at. Staleness of update t (0-based) = t − version_read.
struct ScheduledUpdate {
  int worker = 1;                 // 1..workers
  std::int64_t version_read = 0;  // ≤ t; negative = a random history copy w_{version_read}
};

enum class ScheduleKind { Constant, RoundRobin, UniformRandom };
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Constant;
  int tau = 0;                  // Constant: the delay τ ≥ 0 (workers = τ + 1, worker t mod (τ+1) + 1)
  int workers = 1;              // RoundRobin / UniformRandom: N ≥ 1
  std::uint64_t seed = 0;       // UniformRandom: the worker choice
  bool random_history = false;  // Constant: version_read = t − τ also for t < τ (a random history)
};
// The schedule of `updates` updates (§1.7, §1.9.3). A worker pulls right after its push, so under
// round robin version_read = max(t − N + 1, 0) and staleness min(t, N − 1); under the uniform choice
// the staleness is ~Geometric(1/N) (mean N − 1).
std::vector<ScheduledUpdate> make_schedule(const ScheduleConfig& config, std::int64_t updates);
// Number of workers a schedule uses (Constant: τ + 1).
int schedule_workers(const ScheduleConfig& config);
// The constant delay the closed forms use: τ (Constant) or N − 1 (RoundRobin, and the mean staleness
// of UniformRandom).
int nominal_delay(const ScheduleConfig& config);
std::int64_t max_staleness(const std::vector<ScheduledUpdate>& schedule);

// Least-squares slope of log‖s_t‖ against t over t ∈ [from, to] (§0.2), accumulated online.
class GrowthEstimator {
 public:
  GrowthEstimator(std::int64_t from, std::int64_t to) : from_(from), to_(to) {}
  void add(std::int64_t t, double log_norm);  // non-finite values are skipped
  double slope() const;  // NaN with fewer than 2 points
  std::int64_t count() const { return n_; }

 private:
  std::int64_t from_, to_;
  std::int64_t n_ = 0;
  double st_ = 0, sy_ = 0, stt_ = 0, sty_ = 0;
};

struct EngineOptions {
  std::int64_t updates = 0;  // T: the engine applies schedule[0..T−1] (T ≤ schedule.size())
  // Linear mode (requires problem.is_linear()): the stacked state s_t = (w_t − w*, w_{t−1} − w*, …,
  // w_{t−L} − w*, momentum buffers) is divided by ‖s_t‖ whenever it leaves [1e-50, 1e50], and log‖s_t‖
  // is tracked exactly (§0.2). `center` = w*.
  bool linear = false;
  VectorXd center;
  // L of the stacked state; -1 = the schedule's maximum staleness.
  int state_lookback = -1;
  // Initial history w_{−1}, w_{−2}, … (versions read before the start); missing entries = w0.
  std::vector<VectorXd> history;
  // Non-linear mode: stop as diverged when w is not finite or ‖w‖ > divergence_bound.
  double divergence_bound = 1e8;
  // Minibatch gradients (problem.stochastic_gradient) from Rng(gradient_seed); else full gradients.
  bool stochastic = false;
  std::uint64_t gradient_seed = 0;
  // Growth-rate window [growth_from, T]; -1 = T/2 (§0.2).
  std::int64_t growth_from = -1;
};

// What the observer sees after each update.
struct StepView {
  std::int64_t t = 0;                 // updates applied so far (1..T); w is w_t
  const ScheduledUpdate* update = nullptr;  // the update just applied (index t − 1)
  std::int64_t staleness = 0;         // (t − 1) − version_read
  const VectorXd* w = nullptr;        // w_t; in linear mode the renormalised copy: w* + (w_t − w*)/e^{log_scale}
  double log_scale = 0;               // linear mode: log of the accumulated renormalisation factor
  double log_state_norm = 0;          // log‖s_t‖ (true scale); non-linear mode: log‖w_t − center‖ or log‖w_t‖
  const ServerOptimizer* optimizer = nullptr;
};

struct EngineResult {
  std::int64_t updates_done = 0;
  bool diverged = false;
  std::string divergence_reason;
  VectorXd w_final;                   // renormalised copy in linear mode (see StepView::w)
  double log_scale = 0;
  double log_state_norm_final = 0;
  double growth_rate = 0;             // LS slope of log‖s_t‖ over the window; NaN if < 2 points
  std::int64_t max_staleness = 0;
  // Linear mode: the stacked state became exactly 0 (exact cancellation, e.g. an integer-valued
  // recursion at η·a = 1); it stays 0, so the run stops there, converged. growth_rate then uses the
  // points before.
  bool reached_zero = false;
};

// Runs the delayed updates w_{t+1} = w_t − (optimizer step with gradient ĝ(w_{version_read(t)}) from
// worker(t)) (§1.3, §1.9). The observer may return false to stop early (counted as not diverged).
EngineResult run_delayed(const Problem& problem, ServerOptimizer& optimizer, const VectorXd& w0,
                         const std::vector<ScheduledUpdate>& schedule, const EngineOptions& options,
                         const std::function<bool(const StepView&)>& observe = nullptr);

// ============================== 4. Theory ==============================

// §1.4: the stability threshold of delayed GD, η·λ_max < h*(τ) = 2 sin(π/(4τ+2)).
double h_star(int tau);
// §1.4: the lr rule preserving the accessible set, η_τ = η₀ h*(τ)/2 = η₀ sin(π/(4τ+2)).
double delay_scaled_lr(double eta0, int tau);

// §1.3/§1.5: characteristic polynomial of the linearised recursion per Hessian eigenvalue with
// h = η·a, coefficients highest degree first, monic, degree τ + 2 (a spurious root at 0 for the plain
// and heavy-ball variants keeps one form for every τ ≥ 0):
//   None:    z(z^{τ+1} − z^τ + h)
//   Server:  z^{τ+2} − (1+γ) z^{τ+1} + γ z^τ + (1−d) h z
//   Shifted: z^{τ+2} − z^{τ+1} + ((1−d) h − γ) z + γ
VectorXd characteristic_polynomial(MomentumVariant variant, int tau, double h, double momentum, double dampening);
// max |root| from the companion matrix (Eigen EigenSolver, eigenvalues only) (§0.1).
double spectral_radius(const VectorXd& monic_coefficients);
// ρ of the variant's polynomial at h.
double spectral_radius(MomentumVariant variant, int tau, double h, double momentum, double dampening);

struct Threshold {
  double h = 0;                 // h* = sup{h : ρ(h) < 1} on the first interval
  bool single_interval = true;  // ρ ≥ 1 on the whole checked grid above h* (§0.1)
  int evaluations = 0;
};
// §0.1: log-spaced grid scan over (h_hi·1e-9, h_hi], h_hi = 2(1+γ)/(1−d) (the τ = 0 value), then 60
// bisection steps on ρ(h) − 1; then the check that ρ ≥ 1 on a grid above h*.
Threshold stability_threshold(MomentumVariant variant, int tau, double momentum, double dampening);

// Predicted growth rate log ρ of a constant-delay run: max over the Hessian eigenvalues a of
// log ρ(P(z; h = η a)) (§1.11 T1.2).
double predicted_log_rho(MomentumVariant variant, int tau, double eta, const VectorXd& eigenvalues, double momentum,
                         double dampening);

// §1.9.2 prediction rule: replay a (worker, version_read) sequence on the scalar quadratic ½ a x² with
// the run's optimiser bookkeeping, x₀ = 1 and history x = 1, renormalised, and return the growth rate
// (the top Lyapunov exponent estimate, §0.2 estimator). `state_lookback` as in EngineOptions.
struct ReplayOptions {
  MomentumVariant variant = MomentumVariant::None;
  double momentum = 0, dampening = 0;
  int workers = 1;
  int state_lookback = -1;
  std::int64_t updates = -1;  // -1 = the whole sequence
};
double replay_growth_rate(const std::vector<ScheduledUpdate>& sequence, double eta, double curvature,
                          const ReplayOptions& options);
// Bisection (60 steps after a grid scan) on the sign of the mean replayed growth rate over the
// sequences, with curvature 1 and η = h: the stability threshold h of these staleness sequences.
double replay_threshold(const std::vector<std::vector<ScheduledUpdate>>& sequences, const ReplayOptions& options);

}  // namespace gdlab::async_sgd
