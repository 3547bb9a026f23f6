#include "worker/kinds/separable_common.h"

#include <cstdio>

#include "common/errors.h"

namespace gdlab {

separable::Dataset load_separable_dataset(const pb::SeparableDataset& ds, const TaskContext& context,
                                          std::uint64_t dataset_stream) {
  separable::Dataset data;
  switch (ds.source_case()) {
    case pb::SeparableDataset::kFig1Replica: {
      const std::uint64_t seed =
          ds.fig1_replica().seed() ? ds.fig1_replica().seed() : context.experiment_seed(dataset_stream);
      data = separable::make_fig1_replica(seed);
      break;
    }
    case pb::SeparableDataset::kPlanted2: {
      const auto& p = ds.planted2();
      if (p.d() < 1 || p.d() > 10000) throw SpecError("dataset.planted2.d", "must be in [1, 10000]");
      if (p.n() < p.d() || p.n() > 10'000'000)
        throw SpecError("dataset.planted2.n", "must be in [d, 1e7] (got " + std::to_string(p.n()) + ")");
      const std::uint64_t seed = p.seed() ? p.seed() : context.experiment_seed(dataset_stream);
      data = separable::make_planted2(p.d(), p.n(), seed).data;
      break;
    }
    case pb::SeparableDataset::kCsv: {
      if (ds.csv().path().empty()) throw SpecError("dataset.csv.path", "required");
      try {
        data = separable::load_csv(context.resolve_path(ds.csv().path()));
      } catch (const InputError& e) {
        throw SpecError("dataset.csv.path", e.what());
      }
      break;
    }
    default:
      throw SpecError("dataset", "required: one of fig1_replica, planted2, csv");
  }
  if (data.X.rows() == 0) throw SpecError("dataset", "the dataset is empty");
  return data;
}

separable::MaxMargin solve_max_margin_of_dataset(const separable::MatrixXd& Xt) {
  try {
    return separable::solve_max_margin(Xt);
  } catch (const InputError& e) {
    throw SpecError("dataset", std::string("this kind needs separable data: ") + e.what());
  }
}

separable::VectorXd initial_w(const google::protobuf::RepeatedField<double>& w0, Eigen::Index d) {
  separable::VectorXd w;
  if (w0.size() == 0) {
    w = separable::VectorXd::Zero(d);
  } else if (w0.size() != d) {
    throw SpecError("w0", "has " + std::to_string(w0.size()) + " entries but the data have dimension " +
                              std::to_string(d));
  } else {
    w = Eigen::Map<const separable::VectorXd>(w0.data(), d);
  }
  if (!w.allFinite()) throw SpecError("w0", "must be finite");
  return w;
}

void record_measurements(Recorder& rec, const std::string& prefix, std::int64_t t, double time,
                         const separable::Measurements& m) {
  rec.append(prefix + "norm", t, time, m.norm);
  rec.append(prefix + "loss", t, time, m.loss);
  rec.append(prefix + "loss_ratio", t, time, m.loss_ratio);
  rec.append(prefix + "normalized_margin", t, time, m.normalized_margin);
  rec.append(prefix + "margin_gap", t, time, m.margin_gap);
  rec.append(prefix + "angle_gap", t, time, m.angle_gap);
  rec.append(prefix + "direction_error", t, time, m.direction_error);
  if (prefix == "observables/") rec.append(prefix + "residual", t, time, m.residual);
}

void put_max_margin_parameters(Recorder& rec, const separable::Dataset& data, const separable::MaxMargin& mm,
                               const separable::VectorXd* w_tilde, double sigma_max) {
  const auto n = static_cast<std::uint64_t>(data.X.rows());
  const auto d = static_cast<std::uint64_t>(data.X.cols());
  rec.put_array("parameters/X", {n, d}, to_vector(data.X));
  rec.put_array("parameters/y", {n}, as_span(data.y));
  rec.put_array("parameters/w_hat", {d}, as_span(mm.w_hat));
  if (w_tilde != nullptr) rec.put_array("parameters/w_tilde", {d}, as_span(*w_tilde));
  rec.put_array("parameters/alpha", {n}, as_span(mm.alpha));
  std::vector<double> support(mm.support.begin(), mm.support.end());
  rec.put_array("parameters/support", {support.size()}, support);
  rec.put_array("parameters/sigma_max", {}, std::vector<double>{sigma_max});
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::vector<double> to_vector(const separable::MatrixXd& m) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.push_back(m(r, c));
  return out;
}

}  // namespace gdlab
