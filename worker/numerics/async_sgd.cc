// Numerical core of the experiment kind `async_sgd` (Giladi et al., ICLR 2020; stability.md §1).
// See async_sgd.h for the contents and conventions.
#include "worker/numerics/async_sgd.h"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include "worker/numerics/hessian.h"

namespace gdlab::async_sgd {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

VectorXd gaussian_vector(Rng& rng, Eigen::Index n, double scale) {
  VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = scale * rng.normal();
  return v;
}

MatrixXd gaussian_matrix(Rng& rng, Eigen::Index rows, Eigen::Index cols, double scale) {
  // Row by row, so the draw order is the row-major order of the matrix.
  MatrixXd m(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r)
    for (Eigen::Index c = 0; c < cols; ++c) m(r, c) = scale * rng.normal();
  return m;
}

// Uniform index in [0, n).
int uniform_index(Rng& rng, int n) {
  const int i = static_cast<int>(rng.uniform() * n);
  return std::min(i, n - 1);
}

std::vector<int> draw_batch(Rng& rng, int n, int batch) {
  std::vector<int> rows(static_cast<size_t>(batch));
  for (auto& r : rows) r = uniform_index(rng, n);
  return rows;
}

// log(1 + e^x) without overflow.
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
// 1/(1 + e^{−x}).
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

}  // namespace

// ============================== Problems ==============================

MatrixXd Problem::hessian(const VectorXd& w) const {
  const int n = dim();
  MatrixXd H(n, n);
  VectorXd e = VectorXd::Zero(n), col;
  for (int j = 0; j < n; ++j) {
    e(j) = 1;
    hessian_vector(w, e, col);
    H.col(j) = col;
    e(j) = 0;
  }
  return 0.5 * (H + H.transpose());
}

VectorXd log_spaced_spectrum(int dim, double lambda_max, double min_ratio) {
  if (dim < 1) throw std::invalid_argument("log_spaced_spectrum: dim must be >= 1");
  VectorXd l(dim);
  for (int i = 0; i < dim; ++i) {
    const double frac = dim == 1 ? 0.0 : static_cast<double>(i) / (dim - 1);
    l(i) = lambda_max * std::pow(min_ratio, frac);  // λ_max · ratio^{i/(d−1)}: largest first
  }
  return l;
}

// ---- quadratic ----

QuadraticProblem::QuadraticProblem(QuadraticConfig config) : c_(std::move(config)) {
  const auto d = c_.eigenvalues.size();
  if (d < 1) throw std::invalid_argument("QuadraticProblem: at least one eigenvalue");
  if (c_.batch_size < 1) c_.batch_size = 1;
  minimum_ = c_.minimum.size() == 0 ? VectorXd::Zero(d) : c_.minimum;
  if (minimum_.size() != d) throw std::invalid_argument("QuadraticProblem: minimum has the wrong size");
  if (c_.rotate) {
    // Haar-random orthogonal Q: QR of a Gaussian matrix with the signs of diag(R) fixed.
    Rng rng(c_.rotation_seed);
    const MatrixXd G = gaussian_matrix(rng, d, d, 1.0);
    Eigen::HouseholderQR<MatrixXd> qr(G);
    MatrixXd Q = qr.householderQ();
    const MatrixXd R = qr.matrixQR().triangularView<Eigen::Upper>();
    for (Eigen::Index j = 0; j < d; ++j)
      if (R(j, j) < 0) Q.col(j) = -Q.col(j);
    H_ = Q * c_.eigenvalues.asDiagonal() * Q.transpose();
    H_ = 0.5 * (H_ + H_.transpose());
  } else {
    H_ = c_.eigenvalues.asDiagonal();
  }
  initial_ = c_.initial.size() == 0 ? VectorXd(minimum_ + VectorXd::Constant(d, 1.0 / std::sqrt(static_cast<double>(d))))
                                    : c_.initial;
  if (initial_.size() != d) throw std::invalid_argument("QuadraticProblem: initial point has the wrong size");
}

double QuadraticProblem::loss(const VectorXd& w) const {
  const VectorXd x = w - minimum_;
  if (!c_.rotate) return 0.5 * (c_.eigenvalues.array() * x.array().square()).sum();
  return 0.5 * x.dot(H_ * x);
}

void QuadraticProblem::full_gradient(const VectorXd& w, VectorXd& g) const {
  if (!c_.rotate) {
    g = c_.eigenvalues.cwiseProduct(w - minimum_);
  } else {
    g.noalias() = H_ * (w - minimum_);
  }
}

void QuadraticProblem::stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const {
  full_gradient(w, g);
  if (c_.gradient_noise > 0) {
    const double s = c_.gradient_noise / std::sqrt(static_cast<double>(c_.batch_size));
    for (Eigen::Index i = 0; i < g.size(); ++i) g(i) += s * rng.normal();
  }
}

void QuadraticProblem::hessian_vector(const VectorXd&, const VectorXd& v, VectorXd& out) const {
  if (!c_.rotate) {
    out = c_.eigenvalues.cwiseProduct(v);
  } else {
    out.noalias() = H_ * v;
  }
}

// ---- two minima (T1.6) ----

double TwoMinimaProblem::loss(const VectorXd& w) const {
  const double x = w(0);
  if (x >= 0) return 0.5 * c_.sharp_curvature * (x - 1) * (x - 1);
  return 0.5 * c_.flat_curvature * (x + 1) * (x + 1) + 0.5 * (c_.sharp_curvature - c_.flat_curvature);
}

void TwoMinimaProblem::full_gradient(const VectorXd& w, VectorXd& g) const {
  const double x = w(0);
  g.resize(1);
  g(0) = x >= 0 ? c_.sharp_curvature * (x - 1) : c_.flat_curvature * (x + 1);
}

void TwoMinimaProblem::hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const {
  out.resize(1);
  out(0) = (w(0) >= 0 ? c_.sharp_curvature : c_.flat_curvature) * v(0);
}

std::optional<VectorXd> TwoMinimaProblem::known_minimum(const VectorXd& near) const {
  return VectorXd::Constant(1, near.size() > 0 && near(0) >= 0 ? kSharpMinimum : kFlatMinimum);
}

// ---- least squares ----

LeastSquaresProblem::LeastSquaresProblem(LeastSquaresConfig config) : c_(config) {
  if (c_.n < 1 || c_.d < 1) throw std::invalid_argument("LeastSquaresProblem: n, d must be >= 1");
  Rng rng(c_.seed);
  X_ = gaussian_matrix(rng, c_.n, c_.d, 1.0);
  const VectorXd w_true = gaussian_vector(rng, c_.d, 1.0 / std::sqrt(static_cast<double>(c_.d)));
  y_ = X_ * w_true;
  for (int j = 0; j < c_.n; ++j) y_(j) += c_.noise * rng.normal();
  // The minimum-norm least-squares solution (the unique minimum when X has full column rank).
  minimum_ = X_.completeOrthogonalDecomposition().solve(y_);
}

double LeastSquaresProblem::loss(const VectorXd& w) const {
  return 0.5 * (X_ * w - y_).squaredNorm() / c_.n;
}

void LeastSquaresProblem::full_gradient(const VectorXd& w, VectorXd& g) const {
  g.noalias() = X_.transpose() * (X_ * w - y_);
  g /= c_.n;
}

void LeastSquaresProblem::stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const {
  if (c_.batch_size <= 0) return full_gradient(w, g);
  g = VectorXd::Zero(c_.d);
  for (const int j : draw_batch(rng, c_.n, c_.batch_size)) g += (X_.row(j).dot(w) - y_(j)) * X_.row(j).transpose();
  g /= c_.batch_size;
}

void LeastSquaresProblem::hessian_vector(const VectorXd&, const VectorXd& v, VectorXd& out) const {
  out.noalias() = X_.transpose() * (X_ * v);
  out /= c_.n;
}

// ---- logistic regression ----

LogisticProblem::LogisticProblem(LogisticConfig config) : c_(config) {
  if (c_.n < 1 || c_.d < 1) throw std::invalid_argument("LogisticProblem: n, d must be >= 1");
  if (!(c_.l2 > 0)) throw std::invalid_argument("LogisticProblem: l2 must be > 0");
  Rng rng(c_.seed);
  X_ = gaussian_matrix(rng, c_.n, c_.d, 1.0);
  const VectorXd w_true = gaussian_vector(rng, c_.d, 1.0);
  y_.resize(c_.n);
  for (int j = 0; j < c_.n; ++j) {
    double label = X_.row(j).dot(w_true) >= 0 ? 1.0 : -1.0;
    if (rng.uniform() < c_.label_flip) label = -label;
    y_(j) = label;
  }
  // Newton's method from 0 (L is l2-strongly convex).
  VectorXd w = VectorXd::Zero(c_.d), g;
  for (int it = 0; it < 100; ++it) {
    full_gradient(w, g);
    if (g.norm() < 1e-14) break;
    MatrixXd H = c_.l2 * MatrixXd::Identity(c_.d, c_.d);
    for (int j = 0; j < c_.n; ++j) {
      const double m = y_(j) * X_.row(j).dot(w);
      const double s = sigmoid(m) * sigmoid(-m);
      H.noalias() += (s / c_.n) * X_.row(j).transpose() * X_.row(j);
    }
    w -= H.ldlt().solve(g);
  }
  minimum_ = w;
}

double LogisticProblem::loss(const VectorXd& w) const {
  const VectorXd margins = (X_ * w).cwiseProduct(y_);
  double s = 0;
  for (Eigen::Index j = 0; j < margins.size(); ++j) s += softplus(-margins(j));
  return s / c_.n + 0.5 * c_.l2 * w.squaredNorm();
}

void LogisticProblem::gradient_on(const VectorXd& w, const std::vector<int>* rows, VectorXd& g) const {
  g = VectorXd::Zero(c_.d);
  const int count = rows ? static_cast<int>(rows->size()) : c_.n;
  for (int k = 0; k < count; ++k) {
    const int j = rows ? (*rows)[static_cast<size_t>(k)] : k;
    const double m = y_(j) * X_.row(j).dot(w);
    g -= (y_(j) * sigmoid(-m)) * X_.row(j).transpose();  // d/dw log(1 + e^{−m}) = −y σ(−m) x
  }
  g /= count;
  g += c_.l2 * w;
}

void LogisticProblem::full_gradient(const VectorXd& w, VectorXd& g) const { gradient_on(w, nullptr, g); }

void LogisticProblem::stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const {
  if (c_.batch_size <= 0) return full_gradient(w, g);
  const std::vector<int> rows = draw_batch(rng, c_.n, c_.batch_size);
  gradient_on(w, &rows, g);
}

void LogisticProblem::hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const {
  out = c_.l2 * v;
  VectorXd acc = VectorXd::Zero(c_.d);
  for (int j = 0; j < c_.n; ++j) {
    const double m = y_(j) * X_.row(j).dot(w);
    acc += (sigmoid(m) * sigmoid(-m) * X_.row(j).dot(v)) * X_.row(j).transpose();
  }
  out += acc / c_.n;
}

// ---- one-hidden-layer tanh MLP ----

MlpProblem::MlpProblem(MlpConfig config) : c_(config) {
  if (c_.inputs) {
    // Given data (IDX files): n and d are the data's.
    if (!c_.targets || c_.targets->size() != c_.inputs->rows() || c_.inputs->rows() < 1 || c_.inputs->cols() < 1)
      throw std::invalid_argument("MlpProblem: the given inputs and targets must be n×d and n with n, d >= 1");
    X_ = *c_.inputs;
    y_ = *c_.targets;
    c_.n = static_cast<int>(X_.rows());
    c_.d = static_cast<int>(X_.cols());
  }
  if (c_.n < 1 || c_.d < 1 || c_.hidden < 1 || c_.teacher_hidden < 1)
    throw std::invalid_argument("MlpProblem: n, d, hidden, teacher_hidden must be >= 1");
  if (!c_.inputs) {
    Rng rng(c_.data_seed);
    X_ = gaussian_matrix(rng, c_.n, c_.d, 1.0);
    const int ht = c_.teacher_hidden;
    const MatrixXd Wt = gaussian_matrix(rng, ht, c_.d, 1.0 / std::sqrt(static_cast<double>(c_.d)));
    const VectorXd bt = gaussian_vector(rng, ht, 0.1);
    const VectorXd vt = gaussian_vector(rng, ht, 1.0 / std::sqrt(static_cast<double>(ht)));
    y_.resize(c_.n);
    for (int j = 0; j < c_.n; ++j) {
      const VectorXd a = (Wt * X_.row(j).transpose() + bt).array().tanh().matrix();
      y_(j) = vt.dot(a) + c_.noise * rng.normal();
    }
  }
  const int h = c_.hidden, d = c_.d;
  Rng init(c_.init_seed);
  initial_ = VectorXd::Zero(dim());
  for (int i = 0; i < h * d; ++i) initial_(i) = c_.init_scale / std::sqrt(static_cast<double>(d)) * init.normal();
  for (int i = 0; i < h; ++i) initial_(h * d + h + i) = c_.init_scale / std::sqrt(static_cast<double>(h)) * init.normal();
}

void MlpProblem::backprop(const VectorXd& w, const std::vector<int>* rows, VectorXd& g, const VectorXd* dir,
                          VectorXd* Hv) const {
  const int h = c_.hidden, d = c_.d;
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> W(w.data(), h, d);
  const auto b = w.segment(h * d, h);
  const auto v = w.segment(h * d + h, h);
  g = VectorXd::Zero(dim());
  Eigen::Map<RowMajor> gW(g.data(), h, d);
  if (Hv) *Hv = VectorXd::Zero(dim());
  const int count = rows ? static_cast<int>(rows->size()) : c_.n;
  VectorXd z(h), a(h), delta(h), Rz(h), Ra(h), Rdelta(h);
  for (int k = 0; k < count; ++k) {
    const int j = rows ? (*rows)[static_cast<size_t>(k)] : k;
    const auto x = X_.row(j).transpose();
    z.noalias() = W * x;
    z += b;
    a = z.array().tanh().matrix();
    const double r = v.dot(a) + w(dim() - 1) - y_(j);  // residual f(x) − y; ℓ = ½r²
    const VectorXd slope = (1.0 - a.array().square()).matrix();  // tanh' = 1 − a²
    delta = r * v.cwiseProduct(slope);                             // ∂ℓ/∂z
    gW.noalias() += delta * x.transpose();
    g.segment(h * d, h) += delta;
    g.segment(h * d + h, h) += r * a;
    g(dim() - 1) += r;
    if (Hv) {
      // Pearlmutter's R-operator along dir = (dW, db, dv, dc).
      const Eigen::Map<const RowMajor> dW(dir->data(), h, d);
      const auto db = dir->segment(h * d, h);
      const auto dv = dir->segment(h * d + h, h);
      const double dc = (*dir)(dim() - 1);
      Rz.noalias() = dW * x;
      Rz += db;
      Ra = slope.cwiseProduct(Rz);
      const double Rr = dv.dot(a) + v.dot(Ra) + dc;
      // δ = r v ⊙ (1 − a²): Rδ = Rr v⊙(1−a²) + r dv⊙(1−a²) − 2 r v⊙a⊙Ra.
      Rdelta = Rr * v.cwiseProduct(slope) + r * dv.cwiseProduct(slope) -
               2.0 * r * v.cwiseProduct(a).cwiseProduct(Ra);
      Eigen::Map<RowMajor> HW(Hv->data(), h, d);
      HW.noalias() += Rdelta * x.transpose();
      Hv->segment(h * d, h) += Rdelta;
      Hv->segment(h * d + h, h) += Rr * a + r * Ra;
      (*Hv)(dim() - 1) += Rr;
    }
  }
  g /= count;
  if (Hv) *Hv /= count;
}

double MlpProblem::loss(const VectorXd& w) const {
  const int h = c_.hidden, d = c_.d;
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> W(w.data(), h, d);
  const MatrixXd Z = (X_ * W.transpose()).rowwise() + w.segment(h * d, h).transpose();
  const VectorXd f = Z.array().tanh().matrix() * w.segment(h * d + h, h) + VectorXd::Constant(c_.n, w(dim() - 1));
  return 0.5 * (f - y_).squaredNorm() / c_.n;
}

void MlpProblem::full_gradient(const VectorXd& w, VectorXd& g) const { backprop(w, nullptr, g, nullptr, nullptr); }

void MlpProblem::stochastic_gradient(const VectorXd& w, Rng& rng, VectorXd& g) const {
  if (c_.batch_size <= 0) return full_gradient(w, g);
  const std::vector<int> rows = draw_batch(rng, c_.n, c_.batch_size);
  backprop(w, &rows, g, nullptr, nullptr);
}

void MlpProblem::hessian_vector(const VectorXd& w, const VectorXd& v, VectorXd& out) const {
  VectorXd g;
  backprop(w, nullptr, g, &v, &out);
}

std::unique_ptr<Problem> make_problem(const ProblemConfig& config) {
  switch (config.kind) {
    case ProblemConfig::Kind::Quadratic:
      return std::make_unique<QuadraticProblem>(config.quadratic);
    case ProblemConfig::Kind::TwoMinima:
      return std::make_unique<TwoMinimaProblem>(config.two_minima);
    case ProblemConfig::Kind::LeastSquares:
      return std::make_unique<LeastSquaresProblem>(config.least_squares);
    case ProblemConfig::Kind::Logistic:
      return std::make_unique<LogisticProblem>(config.logistic);
    case ProblemConfig::Kind::Mlp:
      return std::make_unique<MlpProblem>(config.mlp);
  }
  throw std::invalid_argument("make_problem: unknown problem kind");
}

double sharpness(const Problem& problem, const VectorXd& w, std::uint64_t seed) {
  if (problem.dim() <= 64) {
    Eigen::SelfAdjointEigenSolver<MatrixXd> es(problem.hessian(w), Eigen::EigenvaluesOnly);
    return es.eigenvalues().maxCoeff();
  }
  Rng rng(seed);
  const VectorXd start = gaussian_vector(rng, problem.dim(), 1.0);
  hessian::EigenOptions options;
  options.max_iterations = std::min(problem.dim(), 300);
  const auto result = hessian::lanczos_max(
      [&](const VectorXd& v, VectorXd& out) { problem.hessian_vector(w, v, out); }, start, options);
  return result.value;
}

MinimumSearch find_minimum(const Problem& problem, const VectorXd& start, std::int64_t max_steps, double grad_tol) {
  MinimumSearch r;
  r.w = start;
  VectorXd g;
  if (problem.dim() <= 512) {
    // Levenberg–Marquardt: δ = −(H + μI)⁻¹ g on the eigenbasis of H, with μ above −λ_min; a step is
    // accepted when it lowers L (μ shrinks), else μ grows.
    double mu = 1e-3;
    double loss = problem.loss(r.w);
    for (r.steps = 0;; ++r.steps) {
      problem.full_gradient(r.w, g);
      r.grad_norm = g.norm();
      if (!(r.grad_norm > grad_tol)) {
        r.converged = std::isfinite(r.grad_norm);
        break;
      }
      if (r.steps >= max_steps) break;
      Eigen::SelfAdjointEigenSolver<MatrixXd> es(problem.hessian(r.w));
      const VectorXd& lam = es.eigenvalues();
      const VectorXd coeff = es.eigenvectors().transpose() * g;
      const double scale = std::max(lam.cwiseAbs().maxCoeff(), 1e-300);
      bool accepted = false;
      for (int attempt = 0; attempt < 60 && !accepted; ++attempt) {
        const double shift = std::max(0.0, -lam.minCoeff()) + mu * scale;
        VectorXd delta = VectorXd::Zero(problem.dim());
        for (Eigen::Index i = 0; i < lam.size(); ++i) delta -= coeff(i) / (lam(i) + shift) * es.eigenvectors().col(i);
        const VectorXd trial = r.w + delta;
        const double trial_loss = problem.loss(trial);
        if (trial_loss <= loss) {
          // Accept ties too: at the floor of double precision the loss no longer changes.
          accepted = true;
          r.w = trial;
          loss = trial_loss;
          mu = std::max(mu / 4, 1e-15);
        } else {
          mu *= 4;
        }
      }
      if (!accepted) {
        problem.full_gradient(r.w, g);
        r.grad_norm = g.norm();
        r.converged = !(r.grad_norm > grad_tol);
        break;
      }
    }
    return r;
  }
  double step = 0;
  for (r.steps = 0;; ++r.steps) {
    problem.full_gradient(r.w, g);
    r.grad_norm = g.norm();
    if (!(r.grad_norm > grad_tol)) {
      r.converged = std::isfinite(r.grad_norm);
      break;
    }
    if (r.steps >= max_steps) break;
    if (r.steps % 50 == 0) step = 1.0 / std::max(sharpness(problem, r.w), 1e-8);
    r.w -= step * g;
  }
  return r;
}

// ============================== Server optimiser ==============================

ServerOptimizer::ServerOptimizer(const OptimizerConfig& config, int dim) : c_(config) {
  if (!(c_.lr > 0)) throw std::invalid_argument("ServerOptimizer: lr must be > 0");
  if (!(c_.momentum >= 0 && c_.momentum < 1)) throw std::invalid_argument("ServerOptimizer: momentum must be in [0, 1)");
  if (!(c_.dampening >= 0 && c_.dampening < 1))
    throw std::invalid_argument("ServerOptimizer: dampening must be in [0, 1)");
  if (c_.workers < 1) throw std::invalid_argument("ServerOptimizer: workers must be >= 1");
  switch (c_.variant) {
    case MomentumVariant::None:
      break;
    case MomentumVariant::Server:
      buffers_.assign(1, VectorXd::Zero(dim));
      break;
    case MomentumVariant::Shifted:
      buffers_.assign(static_cast<size_t>(c_.workers), VectorXd::Zero(dim));
      break;
  }
}

// §1.5: updates the momentum buffer the step uses and returns it; nullptr without momentum (the step
// is then the gradient itself).
const VectorXd* ServerOptimizer::momentum_step(int worker, Eigen::Ref<const VectorXd> g) {
  switch (c_.variant) {
    case MomentumVariant::None:
      return nullptr;  // A-SGD: w_{t+1} = w_t − η ĝ(w_{t−τ_t}) (§1.3)
    case MomentumVariant::Server: {
      // §1.5 (a)+(b): buf ← γ buf + (1 − d) g; w ← w − η buf.
      VectorXd& buf = buffers_[0];
      buf = c_.momentum * buf + (1.0 - c_.dampening) * g;
      return &buf;
    }
    case MomentumVariant::Shifted: {
      // §1.5 (c): worker k's own buffer, updated only when k pushes.
      if (worker < 1 || worker > c_.workers)
        throw std::out_of_range("ServerOptimizer: worker " + std::to_string(worker) + " outside 1.." +
                                std::to_string(c_.workers));
      VectorXd& buf = buffers_[static_cast<size_t>(worker - 1)];
      buf = c_.momentum * buf + (1.0 - c_.dampening) * g;
      return &buf;
    }
  }
  return nullptr;
}

void ServerOptimizer::apply(int worker, Eigen::Ref<const VectorXd> g, VectorXd& w) {
  if (const VectorXd* buf = momentum_step(worker, g))
    w.noalias() -= c_.lr * *buf;
  else
    w.noalias() -= c_.lr * g;
}

void ServerOptimizer::apply_into(int worker, Eigen::Ref<const VectorXd> g, Eigen::Ref<const VectorXd> w,
                                 Eigen::Ref<VectorXd> w_next) {
  // The same operations as apply(), element by element, so both give the same bits.
  if (const VectorXd* buf = momentum_step(worker, g))
    w_next.noalias() = w - c_.lr * *buf;
  else
    w_next.noalias() = w - c_.lr * g;
}

void ServerOptimizer::scale_state(double factor) {
  for (auto& b : buffers_) b *= factor;
}

double ServerOptimizer::state_squared_norm() const {
  double s = 0;
  for (const auto& b : buffers_) s += b.squaredNorm();
  return s;
}

double ServerOptimizer::buffer_stable_norm() const {
  double m = 0;
  for (const auto& b : buffers_) m = std::max(m, b.stableNorm());
  if (!(m > 0)) return m;
  double s = 0;
  for (const auto& b : buffers_) {
    const double r = b.stableNorm() / m;
    s += r * r;
  }
  return m * std::sqrt(s);
}

void ServerOptimizer::set_buffers(const std::vector<VectorXd>& buffers) {
  if (buffers.size() != buffers_.size()) throw std::invalid_argument("optimizer state: wrong number of momentum buffers");
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (buffers[i].size() != buffers_[i].size()) throw std::invalid_argument("optimizer state: wrong momentum buffer size");
    buffers_[i] = buffers[i];
  }
}

void ServerOptimizer::reset() {
  for (auto& b : buffers_) b.setZero();
}

std::unique_ptr<ServerOptimizer> make_optimizer(const OptimizerConfig& config, int dim) {
  return std::make_unique<ServerOptimizer>(config, dim);
}

// ============================== Schedules and the engine ==============================

std::vector<ScheduledUpdate> make_schedule(const ScheduleConfig& c, std::int64_t updates) {
  if (updates < 0) throw std::invalid_argument("make_schedule: updates must be >= 0");
  std::vector<ScheduledUpdate> s(static_cast<size_t>(updates));
  switch (c.kind) {
    case ScheduleKind::Constant: {
      if (c.tau < 0) throw std::invalid_argument("make_schedule: tau must be >= 0");
      const std::int64_t period = c.tau + 1;
      for (std::int64_t t = 0; t < updates; ++t) {
        auto& u = s[static_cast<size_t>(t)];
        u.worker = static_cast<int>(t % period) + 1;
        u.version_read = c.random_history ? t - c.tau : std::max<std::int64_t>(t - c.tau, 0);
      }
      break;
    }
    case ScheduleKind::RoundRobin: {
      if (c.workers < 1) throw std::invalid_argument("make_schedule: workers must be >= 1");
      for (std::int64_t t = 0; t < updates; ++t) {
        auto& u = s[static_cast<size_t>(t)];
        u.worker = static_cast<int>(t % c.workers) + 1;
        u.version_read = std::max<std::int64_t>(t - c.workers + 1, 0);
      }
      break;
    }
    case ScheduleKind::UniformRandom: {
      if (c.workers < 1) throw std::invalid_argument("make_schedule: workers must be >= 1");
      // delay_stability's `random` schedule (§1.7): a uniformly chosen worker pushes the gradient at
      // its snapshot, taken when it last pushed (version 0 before its first push).
      Rng rng(c.seed);
      std::vector<std::int64_t> snapshot(static_cast<size_t>(c.workers), 0);
      for (std::int64_t t = 0; t < updates; ++t) {
        const int k = uniform_index(rng, c.workers);
        auto& u = s[static_cast<size_t>(t)];
        u.worker = k + 1;
        u.version_read = snapshot[static_cast<size_t>(k)];
        snapshot[static_cast<size_t>(k)] = t + 1;
      }
      break;
    }
  }
  return s;
}

int schedule_workers(const ScheduleConfig& c) { return c.kind == ScheduleKind::Constant ? c.tau + 1 : c.workers; }

int nominal_delay(const ScheduleConfig& c) { return c.kind == ScheduleKind::Constant ? c.tau : c.workers - 1; }

std::int64_t max_staleness(const std::vector<ScheduledUpdate>& schedule) {
  std::int64_t m = 0;
  for (size_t t = 0; t < schedule.size(); ++t) m = std::max(m, static_cast<std::int64_t>(t) - schedule[t].version_read);
  return m;
}

void GrowthEstimator::add(std::int64_t t, double log_norm) {
  if (t < from_ || t > to_ || !std::isfinite(log_norm)) return;
  const double x = static_cast<double>(t - from_);
  ++n_;
  st_ += x;
  sy_ += log_norm;
  stt_ += x * x;
  sty_ += x * log_norm;
}

double GrowthEstimator::slope() const {
  if (n_ < 2) return kNaN;
  const double n = static_cast<double>(n_);
  return (sty_ - st_ * sy_ / n) / (stt_ - st_ * st_ / n);
}

EngineResult run_delayed(const Problem& problem, ServerOptimizer& optimizer, const VectorXd& w0,
                         const std::vector<ScheduledUpdate>& schedule, const EngineOptions& options,
                         const std::function<bool(const StepView&)>& observe) {
  const std::int64_t T = options.updates;
  if (T < 0 || static_cast<size_t>(T) > schedule.size())
    throw std::invalid_argument("run_delayed: updates must be in [0, schedule size]");
  const Eigen::Index d = problem.dim();
  if (w0.size() != d) throw std::invalid_argument("run_delayed: w0 has the wrong size");
  if (options.linear && !problem.is_linear())
    throw std::invalid_argument("run_delayed: linear mode needs a linear problem (a noise-free quadratic)");
  const bool centered = options.center.size() == d;
  if (options.linear && !centered) throw std::invalid_argument("run_delayed: linear mode needs center = w*");

  // Ring of the versions that may still be read, w_{t−R+1..t} (§1.9.3 delay buffer).
  std::int64_t S = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    const auto& u = schedule[static_cast<size_t>(t)];
    if (u.version_read > t) throw std::invalid_argument("run_delayed: update " + std::to_string(t) + " reads a future version");
    S = std::max(S, t - u.version_read);
  }
  const std::int64_t L = options.state_lookback < 0 ? S : options.state_lookback;
  const std::int64_t R = std::max(S, L) + 1;
  auto slot = [R](std::int64_t v) { return static_cast<size_t>(((v % R) + R) % R); };
  std::vector<VectorXd> ring(static_cast<size_t>(R));
  ring[slot(0)] = w0;
  for (std::int64_t j = 1; j < R; ++j) {
    const size_t h = static_cast<size_t>(j - 1);
    const VectorXd& value = h < options.history.size() ? options.history[h] : w0;
    if (value.size() != d) throw std::invalid_argument("run_delayed: a history vector has the wrong size");
    ring[slot(-j)] = value;
  }

  EngineResult result;
  result.max_staleness = S;
  const std::int64_t from = options.growth_from >= 0 ? options.growth_from : T / 2;
  GrowthEstimator growth(from, T);
  double log_scale = 0;

  // log‖s_t‖ of the stacked state (§0.2); renormalises in linear mode.
  auto state_log_norm = [&](std::int64_t t) {
    if (!options.linear) {
      const VectorXd& w = ring[slot(t)];
      return std::log(centered ? (w - options.center).stableNorm() : w.stableNorm());
    }
    double ss = optimizer.state_squared_norm();
    for (std::int64_t j = 0; j <= L; ++j) ss += (ring[slot(t - j)] - options.center).squaredNorm();
    const double norm = std::sqrt(ss);
    if (norm > 0 && std::isfinite(norm) && (norm < 1e-50 || norm > 1e50)) {
      for (auto& r : ring) r = options.center + (r - options.center) / norm;
      optimizer.scale_state(1.0 / norm);
      log_scale += std::log(norm);
      return log_scale;
    }
    return log_scale + std::log(norm);
  };

  double log_norm = state_log_norm(0);
  growth.add(0, log_norm);
  Rng rng(options.gradient_seed);
  VectorXd g(d);
  std::int64_t t = 0;
  for (; t < T; ++t) {
    const ScheduledUpdate& u = schedule[static_cast<size_t>(t)];
    const VectorXd& w_read = ring[slot(u.version_read)];
    if (options.stochastic) {
      problem.stochastic_gradient(w_read, rng, g);
    } else {
      problem.full_gradient(w_read, g);
    }
    VectorXd& w_next = ring[slot(t + 1)];
    if (slot(t + 1) != slot(t)) w_next = ring[slot(t)];
    optimizer.apply(u.worker, g, w_next);
    log_norm = state_log_norm(t + 1);
    growth.add(t + 1, log_norm);
    const VectorXd& w = ring[slot(t + 1)];
    if (!options.linear) {
      const double norm = w.norm();
      if (!std::isfinite(norm) || norm > options.divergence_bound) {
        result.diverged = true;
        result.divergence_reason = std::isfinite(norm) ? "|w| = " + std::to_string(norm) + " > " +
                                                             std::to_string(options.divergence_bound)
                                                       : "w is not finite";
      }
    } else if (log_norm == -std::numeric_limits<double>::infinity()) {
      result.reached_zero = true;
    } else if (!std::isfinite(log_norm)) {
      result.diverged = true;
      result.divergence_reason = "the state is not finite";
    }
    bool go_on = true;
    if (observe) {
      StepView view;
      view.t = t + 1;
      view.update = &u;
      view.staleness = t - u.version_read;
      view.w = &w;
      view.log_scale = log_scale;
      view.log_state_norm = log_norm;
      view.optimizer = &optimizer;
      go_on = observe(view);
    }
    if (result.diverged || result.reached_zero || !go_on) {
      ++t;
      break;
    }
  }
  result.updates_done = t;
  result.w_final = ring[slot(t)];
  result.log_scale = log_scale;
  result.log_state_norm_final = log_norm;
  result.growth_rate = growth.slope();
  return result;
}

// ============================== Theory ==============================

double h_star(int tau) {
  if (tau < 0) throw std::invalid_argument("h_star: tau must be >= 0");
  return 2.0 * std::sin(std::numbers::pi / (4.0 * tau + 2.0));
}

double delay_scaled_lr(double eta0, int tau) { return eta0 * h_star(tau) / 2.0; }

VectorXd characteristic_polynomial(MomentumVariant variant, int tau, double h, double momentum, double dampening) {
  if (tau < 0) throw std::invalid_argument("characteristic_polynomial: tau must be >= 0");
  // Index i holds the coefficient of z^{τ+2−i}.
  const int n = tau + 2;
  VectorXd c = VectorXd::Zero(n + 1);
  auto at = [&](int power) -> double& { return c(n - power); };
  const double g = variant == MomentumVariant::None ? 0.0 : momentum;
  const double hd = variant == MomentumVariant::None ? h : (1.0 - dampening) * h;
  at(n) = 1.0;
  switch (variant) {
    case MomentumVariant::None:  // §1.3: z^{τ+1} − z^τ + h, times z
      at(tau + 1) += -1.0;
      at(1) += hd;
      break;
    case MomentumVariant::Server:  // §1.5 (a), (b): z^{τ+1} − (1+γ) z^τ + γ z^{τ−1} + (1−d)h, times z
      at(tau + 1) += -(1.0 + g);
      at(tau) += g;
      at(1) += hd;
      break;
    case MomentumVariant::Shifted:  // §1.5 (c): z^{τ+2} − z^{τ+1} + ((1−d)h − γ) z + γ
      at(tau + 1) += -1.0;
      at(1) += hd - g;
      at(0) += g;
      break;
  }
  return c;
}

double spectral_radius(const VectorXd& c) {
  const Eigen::Index n = c.size() - 1;
  if (n < 1 || c(0) == 0) throw std::invalid_argument("spectral_radius: need a monic polynomial of degree >= 1");
  // Companion matrix: first row −c_1..c_n (/c_0), ones on the subdiagonal (§0.1).
  MatrixXd C = MatrixXd::Zero(n, n);
  for (Eigen::Index j = 0; j < n; ++j) C(0, j) = -c(j + 1) / c(0);
  for (Eigen::Index i = 1; i < n; ++i) C(i, i - 1) = 1.0;
  Eigen::EigenSolver<MatrixXd> es(C, false);
  if (es.info() != Eigen::Success) return kNaN;
  return es.eigenvalues().cwiseAbs().maxCoeff();
}

double spectral_radius(MomentumVariant variant, int tau, double h, double momentum, double dampening) {
  return spectral_radius(characteristic_polynomial(variant, tau, h, momentum, dampening));
}

Threshold stability_threshold(MomentumVariant variant, int tau, double momentum, double dampening) {
  const double g = variant == MomentumVariant::None ? 0.0 : momentum;
  const double dd = variant == MomentumVariant::None ? 0.0 : dampening;
  const double h_hi = 2.0 * (1.0 + g) / (1.0 - dd);  // the τ = 0 threshold bounds every τ
  Threshold th;
  auto unstable = [&](double h) {
    ++th.evaluations;
    const double rho = spectral_radius(variant, tau, h, momentum, dampening);
    return !(rho < 1.0);
  };
  // Log grid over (h_hi·1e-9, 1.5·h_hi].
  constexpr int kGrid = 100;
  std::vector<double> grid(kGrid + 1);
  for (int k = 0; k <= kGrid; ++k) grid[static_cast<size_t>(k)] = 1.5 * h_hi * std::pow(10.0, -9.0 * (kGrid - k) / kGrid);
  int first = -1;
  for (int k = 0; k <= kGrid; ++k) {
    if (unstable(grid[static_cast<size_t>(k)])) {
      first = k;
      break;
    }
  }
  if (first < 0) {  // stable on the whole grid (does not happen for §1.5's polynomials)
    th.h = grid.back();
    th.single_interval = false;
    return th;
  }
  double lo = first == 0 ? 0.0 : grid[static_cast<size_t>(first - 1)], hi = grid[static_cast<size_t>(first)];
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (unstable(mid) ? hi : lo) = mid;
  }
  th.h = 0.5 * (lo + hi);
  // The stable set must be one interval (0, h*): ρ ≥ 1 on the rest of the grid.
  for (int k = first + 1; k <= kGrid; ++k)
    if (!unstable(grid[static_cast<size_t>(k)])) th.single_interval = false;
  return th;
}

double predicted_log_rho(MomentumVariant variant, int tau, double eta, const VectorXd& eigenvalues, double momentum,
                         double dampening) {
  double best = -std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i < eigenvalues.size(); ++i)
    best = std::max(best, std::log(spectral_radius(variant, tau, eta * eigenvalues(i), momentum, dampening)));
  return best;
}

double replay_growth_rate(const std::vector<ScheduledUpdate>& sequence, double eta, double curvature,
                          const ReplayOptions& options) {
  QuadraticConfig qc;
  qc.eigenvalues = VectorXd::Constant(1, curvature);
  qc.initial = VectorXd::Constant(1, 1.0);
  const QuadraticProblem problem(qc);
  OptimizerConfig oc;
  oc.lr = eta;
  oc.variant = options.variant;
  oc.momentum = options.momentum;
  oc.dampening = options.dampening;
  oc.workers = options.workers;
  ServerOptimizer optimizer(oc, 1);
  EngineOptions eo;
  eo.updates = options.updates < 0 ? static_cast<std::int64_t>(sequence.size()) : options.updates;
  eo.linear = true;
  eo.center = VectorXd::Zero(1);
  eo.state_lookback = options.state_lookback;
  return run_delayed(problem, optimizer, problem.initial_point(), sequence, eo).growth_rate;
}

double replay_threshold(const std::vector<std::vector<ScheduledUpdate>>& sequences, const ReplayOptions& options) {
  if (sequences.empty()) throw std::invalid_argument("replay_threshold: no sequences");
  auto mean_rate = [&](double h) {
    double s = 0;
    for (const auto& seq : sequences) s += replay_growth_rate(seq, h, 1.0, options);
    return s / static_cast<double>(sequences.size());
  };
  const double g = options.variant == MomentumVariant::None ? 0.0 : options.momentum;
  const double dd = options.variant == MomentumVariant::None ? 0.0 : options.dampening;
  const double h_hi = 2.0 * (1.0 + g) / (1.0 - dd);
  constexpr int kGrid = 40;
  double lo = 0, hi = -1;
  for (int k = 0; k <= kGrid; ++k) {
    const double h = 1.5 * h_hi * std::pow(10.0, -4.0 * (kGrid - k) / kGrid);
    if (mean_rate(h) > 0) {
      hi = h;
      break;
    }
    lo = h;
  }
  if (hi < 0) return kNaN;
  for (int i = 0; i < 50; ++i) {
    const double mid = 0.5 * (lo + hi);
    (mean_rate(mid) > 0 ? hi : lo) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace gdlab::async_sgd
