// Minibatch SGD on separable data (separable.md §2; Nacson, Srebro, Soudry, AISTATS 2019).
#include "worker/numerics/sgd_separable.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "common/errors.h"

namespace gdlab::sgd_separable {

namespace {

// Row-major copy of the absorbed points: a minibatch step touches whole rows x̃_n.
using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// −ℓ′(u) ≥ 0 (separable.md §0.2), scalar: logistic 1/(1+e^u) ∈ [0, 1] for every u (e^u = inf gives
// 0); exp e^{−u}.
inline double neg_loss_derivative(bool logistic, double u) {
  return logistic ? 1.0 / (1.0 + std::exp(u)) : std::exp(-u);
}

// One minibatch step in the summed form: s_j = −ℓ′(x̃_{n_j}ᵀw) for every j at the OLD w, then
// w ← w + c Σ_j s_j x̃_{n_j} (separable.md §2.3). `weights` has room for B values.
inline void minibatch_step(const double* x, Eigen::Index d, const int* batch, int batch_size, bool logistic,
                           double step, double* w, double* weights) {
  for (int j = 0; j < batch_size; ++j) {
    const double* row = x + static_cast<Eigen::Index>(batch[j]) * d;
    double margin = 0.0;
    for (Eigen::Index i = 0; i < d; ++i) margin += row[i] * w[i];
    weights[j] = step * neg_loss_derivative(logistic, margin);
  }
  for (int j = 0; j < batch_size; ++j) {
    const double* row = x + static_cast<Eigen::Index>(batch[j]) * d;
    const double s = weights[j];
    for (Eigen::Index i = 0; i < d; ++i) w[i] += s * row[i];
  }
}

}  // namespace

StepSizes step_sizes(MinibatchForm form, double c, int batch_size, bool no_lr_scaling) {
  if (!(c > 0) || !std::isfinite(c)) throw InputError("step_sizes: c must be finite and > 0");
  if (batch_size < 1) throw InputError("step_sizes: batch size must be >= 1");
  if (no_lr_scaling && form == MinibatchForm::Sum) {
    throw InputError("step_sizes: no_lr_scaling applies to the averaged minibatch form only");
  }
  const double b = static_cast<double>(batch_size);
  StepSizes s;
  s.per_sample_nominal = c;
  if (form == MinibatchForm::Sum) {
    // Summed form: η = c (separable.md §2.4).
    s.minibatch_lr = c;
    s.per_sample_actual = c;
  } else {
    // Averaged form: η_B = cB gives per-sample step η_B/B = c; without the LR scaling η_B = c and the
    // per-sample step is c/B (the negative control of §2.6).
    s.minibatch_lr = no_lr_scaling ? c : c * b;
    s.per_sample_actual = s.minibatch_lr / b;
  }
  return s;
}

double batch_curvature_bound(const MatrixXd& Xt, int batch_size, Sampler sampler) {
  if (Xt.rows() == 0 || batch_size < 1 || batch_size > Xt.rows()) {
    throw InputError("batch_curvature_bound: need 1 <= B <= N");
  }
  VectorXd sq_norms = Xt.rowwise().squaredNorm();
  if (sampler == Sampler::WithReplacement) return batch_size * sq_norms.maxCoeff();
  // Distinct rows: λ_max(X̃_BᵀX̃_B) ≤ ‖X̃_B‖_F² ≤ the B largest ‖x̃_n‖², and ≤ σ_max(X̃)² because X̃_B
  // is a row subset of X̃.
  std::sort(sq_norms.data(), sq_norms.data() + sq_norms.size(), std::greater<>());
  const double frobenius = sq_norms.head(batch_size).sum();
  const double sigma = separable::sigma_max(Xt);
  return std::min(frobenius, sigma * sigma);
}

std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  // Lemire, "Fast Random Integer Generation in an Interval" (ACM TOMACS 2019): the high word of the
  // 128-bit product x·n is uniform on [0, n) once the products whose low word falls below
  // 2^64 mod n are rejected; the division runs only on the rare near-rejection path.
  __extension__ using Uint128 = unsigned __int128;
  Uint128 product = static_cast<Uint128>(rng.next_u64()) * n;
  auto low = static_cast<std::uint64_t>(product);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (low < threshold) {
      product = static_cast<Uint128>(rng.next_u64()) * n;
      low = static_cast<std::uint64_t>(product);
    }
  }
  return static_cast<std::uint64_t>(product >> 64);
}

VectorXd run_sgd(const MatrixXd& Xt, const SgdOptions& opt, const std::vector<std::int64_t>& record_epochs,
                 const RecordFn& on_record) {
  const Eigen::Index n_points = Xt.rows();
  const Eigen::Index d = Xt.cols();
  if (n_points == 0 || d == 0) throw InputError("run_sgd: empty data");
  if (!Xt.allFinite()) throw InputError("run_sgd: data contain NaN or inf");
  if (opt.batch_size < 1 || opt.batch_size > n_points || n_points % opt.batch_size != 0) {
    throw InputError("run_sgd: batch size " + std::to_string(opt.batch_size) + " must divide N = " +
                     std::to_string(n_points));
  }
  if (!(opt.per_sample_step > 0) || !std::isfinite(opt.per_sample_step)) {
    throw InputError("run_sgd: per_sample_step must be finite and > 0");
  }
  if (opt.epochs < 0) throw InputError("run_sgd: epochs must be >= 0");
  if (opt.w0.size() != 0 && opt.w0.size() != d) throw InputError("run_sgd: w0 has the wrong length");
  if (!std::is_sorted(record_epochs.begin(), record_epochs.end()) ||
      (!record_epochs.empty() && (record_epochs.front() < 0 || record_epochs.back() > opt.epochs))) {
    throw InputError("run_sgd: record_epochs must be sorted and within [0, epochs]");
  }
  if (!record_epochs.empty() && !on_record) throw InputError("run_sgd: record_epochs given without on_record");

  VectorXd w = opt.w0.size() == 0 ? VectorXd::Zero(d) : opt.w0;
  if (!w.allFinite()) throw InputError("run_sgd: w0 contains NaN or inf");
  // Everything the loop touches is allocated here.
  const RowMajorMatrix x = Xt;
  const int batch = opt.batch_size;
  const auto batches_per_epoch = static_cast<std::int64_t>(n_points / batch);
  std::vector<int> order(static_cast<std::size_t>(n_points));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::vector<int> drawn(static_cast<std::size_t>(batch));
  std::vector<double> weights(static_cast<std::size_t>(batch));
  const bool logistic = opt.loss == Loss::Logistic;
  const double step = opt.per_sample_step;
  const auto n_u64 = static_cast<std::uint64_t>(n_points);
  Rng rng(opt.seed);

  auto next_record = record_epochs.begin();
  while (next_record != record_epochs.end() && *next_record == 0) {
    on_record(0, w);
    ++next_record;
  }
  // Non-finite values are absorbing, so a periodic check plus the check at every record suffice.
  constexpr std::int64_t kFiniteCheckEvery = 1 << 10;
  for (std::int64_t epoch = 1; epoch <= opt.epochs; ++epoch) {
    if (opt.sampler == Sampler::Reshuffle) {
      // Fisher–Yates on the previous permutation: a uniformly random permutation every epoch.
      for (std::size_t i = order.size() - 1; i > 0; --i) {
        std::swap(order[i], order[uniform_index(rng, i + 1)]);
      }
      for (std::int64_t b = 0; b < batches_per_epoch; ++b) {
        minibatch_step(x.data(), d, order.data() + b * batch, batch, logistic, step, w.data(), weights.data());
      }
    } else {
      for (std::int64_t b = 0; b < batches_per_epoch; ++b) {
        for (int j = 0; j < batch; ++j) drawn[static_cast<std::size_t>(j)] = static_cast<int>(uniform_index(rng, n_u64));
        minibatch_step(x.data(), d, drawn.data(), batch, logistic, step, w.data(), weights.data());
      }
    }
    const bool record_now = next_record != record_epochs.end() && *next_record == epoch;
    if (record_now || epoch % kFiniteCheckEvery == 0) {
      if (!w.allFinite()) {
        throw NumericError("run_sgd: w became non-finite by epoch " + std::to_string(epoch) +
                           " (per-sample step too large?)");
      }
    }
    while (next_record != record_epochs.end() && *next_record == epoch) {
      on_record(epoch, w);
      ++next_record;
    }
  }
  if (!w.allFinite()) throw NumericError("run_sgd: w is non-finite at the end");
  return w;
}

}  // namespace gdlab::sgd_separable
