// Pieces shared by the experiment kinds on linearly separable data with a linear homogeneous model
// (separable_gd, sgd_separable, loss_tails): the SeparableDataset loader (proto/separable.proto),
// the max-margin solve with its spec error, the w0 check, the recording of separable::Measurements
// and of the max-margin ground truth, and small formatting helpers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>

#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/separable.h"

namespace gdlab {

// The dataset of `ds`, a kind's `dataset` field: fig1_replica, planted2 or csv. A seed left at 0
// is context.experiment_seed(dataset_stream), so every task of an experiment sees the same data.
// Throws SpecError naming "dataset", "dataset.planted2.d", "dataset.planted2.n" or
// "dataset.csv.path" (also when the dataset has no point).
separable::Dataset load_separable_dataset(const pb::SeparableDataset& ds, const TaskContext& context,
                                          std::uint64_t dataset_stream);

// The L2 max-margin solution of the absorbed points Xt; non-separable data is a SpecError on
// "dataset".
separable::MaxMargin solve_max_margin_of_dataset(const separable::MatrixXd& Xt);

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
