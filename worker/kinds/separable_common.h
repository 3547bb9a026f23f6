// Pieces shared by the experiment kinds on linearly separable data with a linear homogeneous model
// (separable_gd, sgd_separable, loss_tails; lexicographic_margin uses the shared data): the
// SeparableDataset source (proto/separable.proto), checked without building generated data; the
// built data with its scales and max-margin solution, shared through a small process-wide cache;
// the w0 check, the recording of separable::Measurements and of the max-margin ground truth, and
// small formatting helpers.
//
// Why the split between SeparableDataSource and SeparableData: prepare() runs for every task of a
// campaign in `gdlab validate`, on the coordinator before anything is written, and again on the
// worker, so it must not do the work of the task. A source knows the shape of its data from the
// spec (fig1_replica, planted2) or from the file it has read and checked (csv); the data, its
// σ_max and its max-margin solution are built when a check or the run needs them, once per data
// set and process.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>

#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/separable.h"

namespace gdlab {

// Generated sources reject planted2 data with more than this many entries n·d: at 1e8 one copy of
// X is 0.8 GB and a task holds several (X, X̃, the solvers' copies); GD on such data costs 2e8
// flops per step.
inline constexpr double kMaxPlanted2Entries = 1e8;

// A data set once built: the points, the absorbed matrix X̃ (rows y_n x_n) and, each computed on
// first use and kept, σ_max(X̃), max_n ‖x̃_n‖² and the L2 max-margin solution. Read-only after
// construction apart from those caches, which are guarded, so one object can serve every task on
// the same data (also from several threads).
class SeparableData {
 public:
  explicit SeparableData(separable::Dataset data);

  const separable::Dataset& dataset() const { return data_; }
  const separable::MatrixXd& Xt() const { return xt_; }
  // Largest singular value of X̃ (separable::sigma_max).
  double sigma_max() const;
  // max_n ‖x̃_n‖².
  double max_sq_norm() const;
  // separable::solve_max_margin(X̃), solved on the first call. Throws what the solver throws:
  // InputError when the data are not separable through the origin, NumericError when it does not
  // converge (a failed solve is retried by the next call).
  const separable::MaxMargin& max_margin() const;
  // Approximate memory held (the two n×d matrices and the labels), for the cache's budget.
  std::size_t bytes() const;

 private:
  separable::Dataset data_;
  separable::MatrixXd xt_;
  mutable std::mutex mutex_;
  mutable std::optional<double> sigma_max_;
  mutable std::optional<double> max_sq_norm_;
  mutable std::optional<separable::MaxMargin> max_margin_;
};

// `data` as a SeparableData, taken from the process-wide cache when the same points (compared
// exactly) were built recently, so that a sweep over other fields solves the max margin once.
std::shared_ptr<const SeparableData> shared_separable_data(separable::Dataset data);

// The `dataset` field of a kind: fig1_replica, planted2 or csv. A seed left at 0 is
// context.experiment_seed(dataset_stream), so every task of an experiment sees the same data.
// Construction checks the field and reads a csv file; it builds no generated data. Throws
// SpecError naming "dataset", "dataset.planted2.d", "dataset.planted2.n" or "dataset.csv.path"
// (also when the file has no point).
class SeparableDataSource {
 public:
  SeparableDataSource(const pb::SeparableDataset& ds, const TaskContext& context, std::uint64_t dataset_stream);

  // N and d of the data, known without building them.
  Eigen::Index rows() const { return rows_; }
  Eigen::Index cols() const { return cols_; }
  // True for fig1_replica and planted2: drawn from a seed and separable by construction (their
  // max margin is left to run()).
  bool generated() const { return kind_ != Kind::Csv; }
  // Whether prepare() may build the data for a check that needs them: read data (in memory
  // already), fig1_replica (16×2), and planted2 data of at most kValidationBuildWork. Larger
  // planted2 data are drawn when the task runs, and run() makes the check.
  bool cheap_to_build() const;
  // The data: built on the first call (or taken from the process-wide cache) and kept.
  const SeparableData& data() const;
  // The data's max-margin solution for a check in prepare(): a non-separable data set, or one on
  // which the solver does not converge, is a SpecError on "dataset".
  const separable::MaxMargin& checked_max_margin() const;

 private:
  enum class Kind { Fig1Replica, Planted2, Csv };
  Kind kind_ = Kind::Csv;
  int planted2_d_ = 0;
  int planted2_n_ = 0;
  std::uint64_t seed_ = 0;
  std::shared_ptr<const separable::Dataset> csv_;  // the points read and checked by the constructor
  Eigen::Index rows_ = 0;
  Eigen::Index cols_ = 0;
  mutable std::shared_ptr<const SeparableData> data_;
};

// The most work (n·d², the order of drawing planted2 data and of σ_max) prepare() spends on
// building one planted2 data set for a check: about 0.1 ms, so that validating a sweep over many
// data sets stays cheap (d = 5 up to N = 800, d = 10 up to N = 200).
inline constexpr double kValidationBuildWork = 2e4;

// Relative margin by which a step must exceed a bound that holds for any data for prepare() to
// reject it without the data: far above the few ulps by which the check computed with the data
// (which run() makes) can differ from its exact value, so both agree.
inline constexpr double kScaleFreeMargin = 1e-9;

// Counts of the expensive steps since the process started, so tests can assert which of them
// validation performs.
struct SeparableWorkCounts {
  std::uint64_t datasets_built = 0;      // SeparableData objects made (generated or read), cache misses
  std::uint64_t max_margin_solves = 0;   // separable::solve_max_margin calls by SeparableData
};
SeparableWorkCounts separable_work_counts();
// The expensive steps `work()` performs (the difference of the counts around it).
template <typename Work>
SeparableWorkCounts separable_work_of(Work&& work) {
  const SeparableWorkCounts before = separable_work_counts();
  work();
  const SeparableWorkCounts after = separable_work_counts();
  return {after.datasets_built - before.datasets_built, after.max_margin_solves - before.max_margin_solves};
}

// The initial point of a spec's `w0` field for data of dimension d: the origin when empty;
// otherwise it must have d finite entries (SpecError on "w0").
separable::VectorXd initial_w(const google::protobuf::RepeatedField<double>& w0, Eigen::Index d);

// Appends the measurements m at step t under prefix ("observables/" or "theory/"): norm, loss,
// loss_ratio, normalized_margin, margin_gap, angle_gap, direction_error, and for "observables/"
// the residual.
void record_measurements(Recorder& rec, const std::string& prefix, std::int64_t t, double time,
                         const separable::Measurements& m);

// Writes the data and the max-margin ground truth under parameters/: X, y, w_hat, w_tilde (when
// given), alpha, support, sigma_max.
void put_max_margin_parameters(Recorder& rec, const separable::Dataset& data, const separable::MaxMargin& mm,
                               const separable::VectorXd* w_tilde, double sigma_max);

// v with "%.6g".
std::string fmt(double v);

// The entries of m row-major, as HDF5 and numpy expect.
std::vector<double> to_vector(const separable::MatrixXd& m);

inline std::span<const double> as_span(const separable::VectorXd& v) {
  return {v.data(), static_cast<size_t>(v.size())};
}

}  // namespace gdlab
