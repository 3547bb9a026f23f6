#include "worker/kinds/separable_common.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <list>
#include <utility>

#include "common/errors.h"

namespace gdlab {

namespace {

// Shape of make_fig1_replica's data (separable.md §0.7): 4 support vectors and 6 points per class.
constexpr Eigen::Index kFig1Rows = 16;
constexpr Eigen::Index kFig1Cols = 2;

// The cache keeps the most recently used data sets up to this many bytes: enough for the data of
// every experiment of a typical campaign, small next to a worker rank's memory.
constexpr std::size_t kCacheBytes = std::size_t{128} << 20;

std::atomic<std::uint64_t> g_datasets_built{0};
std::atomic<std::uint64_t> g_max_margin_solves{0};

// FNV-1a over bytes, to find cached data sets by content (a hit is confirmed by comparing them).
std::uint64_t fnv1a(const void* data, std::size_t size, std::uint64_t hash) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::uint64_t content_hash(const separable::Dataset& data) {
  const Eigen::Index shape[2] = {data.X.rows(), data.X.cols()};
  std::uint64_t h = fnv1a(shape, sizeof shape, 0xcbf29ce484222325ULL);
  h = fnv1a(data.X.data(), static_cast<std::size_t>(data.X.size()) * sizeof(double), h);
  return fnv1a(data.y.data(), static_cast<std::size_t>(data.y.size()) * sizeof(double), h);
}

bool same_points(const separable::Dataset& a, const separable::Dataset& b) {
  return a.X.rows() == b.X.rows() && a.X.cols() == b.X.cols() && a.y.size() == b.y.size() && a.X == b.X &&
         a.y == b.y;
}

// Least-recently-used data sets by key. A key names generated data completely (source, shape,
// seed); read data are keyed by a hash of their points and compared on a hit.
class DataCache {
 public:
  static DataCache& instance() {
    static DataCache cache;
    return cache;
  }

  // The cached data for `key`, or nullptr. When `points` is given, a hit must hold exactly them.
  std::shared_ptr<const SeparableData> find(const std::string& key, const separable::Dataset* points) {
    const std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->key != key) continue;
      if (points != nullptr && !same_points(it->data->dataset(), *points)) return nullptr;
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().data;
    }
    return nullptr;
  }

  void insert(const std::string& key, std::shared_ptr<const SeparableData> data) {
    const std::size_t bytes = data->bytes();
    if (bytes > kCacheBytes) return;  // too large to keep; the tasks holding it still share it
    const std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->key == key) {
        bytes_ -= it->bytes;
        entries_.erase(it);
        break;
      }
    }
    entries_.push_front({key, std::move(data), bytes});
    bytes_ += bytes;
    while (bytes_ > kCacheBytes) {
      bytes_ -= entries_.back().bytes;
      entries_.pop_back();
    }
  }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const SeparableData> data;
    std::size_t bytes = 0;
  };
  std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  std::size_t bytes_ = 0;
};

std::shared_ptr<const SeparableData> build_and_cache(const std::string& key, separable::Dataset data) {
  auto built = std::make_shared<const SeparableData>(std::move(data));
  g_datasets_built.fetch_add(1, std::memory_order_relaxed);
  DataCache::instance().insert(key, built);
  return built;
}

std::string content_key(const separable::Dataset& data) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "points %016llx", static_cast<unsigned long long>(content_hash(data)));
  return buf;
}

}  // namespace

// ---- SeparableData ------------------------------------------------------------------------------

SeparableData::SeparableData(separable::Dataset data) : data_(std::move(data)), xt_(data_.absorbed()) {}

double SeparableData::sigma_max() const {
  const std::lock_guard lock(mutex_);
  if (!sigma_max_) sigma_max_ = separable::sigma_max(xt_);
  return *sigma_max_;
}

double SeparableData::max_sq_norm() const {
  const std::lock_guard lock(mutex_);
  if (!max_sq_norm_) max_sq_norm_ = xt_.rowwise().squaredNorm().maxCoeff();
  return *max_sq_norm_;
}

const separable::MaxMargin& SeparableData::max_margin() const {
  const std::lock_guard lock(mutex_);
  if (!max_margin_) {
    g_max_margin_solves.fetch_add(1, std::memory_order_relaxed);
    max_margin_ = separable::solve_max_margin(xt_);
  }
  return *max_margin_;
}

std::size_t SeparableData::bytes() const {
  return (static_cast<std::size_t>(data_.X.size()) + static_cast<std::size_t>(xt_.size()) +
          static_cast<std::size_t>(data_.y.size())) *
         sizeof(double);
}

std::shared_ptr<const SeparableData> shared_separable_data(separable::Dataset data) {
  const std::string key = content_key(data);
  if (auto hit = DataCache::instance().find(key, &data)) return hit;
  return build_and_cache(key, std::move(data));
}

SeparableWorkCounts separable_work_counts() {
  return {g_datasets_built.load(std::memory_order_relaxed), g_max_margin_solves.load(std::memory_order_relaxed)};
}

// ---- SeparableDataSource -------------------------------------------------------------------------

SeparableDataSource::SeparableDataSource(const pb::SeparableDataset& ds, const TaskContext& context,
                                         std::uint64_t dataset_stream) {
  switch (ds.source_case()) {
    case pb::SeparableDataset::kFig1Replica:
      kind_ = Kind::Fig1Replica;
      seed_ = ds.fig1_replica().seed() ? ds.fig1_replica().seed() : context.experiment_seed(dataset_stream);
      rows_ = kFig1Rows;
      cols_ = kFig1Cols;
      break;
    case pb::SeparableDataset::kPlanted2: {
      const auto& p = ds.planted2();
      if (p.d() < 1 || p.d() > 10000) throw SpecError("dataset.planted2.d", "must be in [1, 10000]");
      if (p.n() < p.d() || p.n() > 10'000'000)
        throw SpecError("dataset.planted2.n", "must be in [d, 1e7] (got " + std::to_string(p.n()) + ")");
      const double entries = static_cast<double>(p.n()) * static_cast<double>(p.d());
      if (entries > kMaxPlanted2Entries)
        throw SpecError("dataset.planted2.n", "n*d = " + fmt(entries) + " exceeds " + fmt(kMaxPlanted2Entries) +
                                                  " values (got n=" + std::to_string(p.n()) +
                                                  ", d=" + std::to_string(p.d()) + ")");
      kind_ = Kind::Planted2;
      planted2_d_ = p.d();
      planted2_n_ = p.n();
      seed_ = p.seed() ? p.seed() : context.experiment_seed(dataset_stream);
      rows_ = p.n();
      cols_ = p.d();
      break;
    }
    case pb::SeparableDataset::kCsv: {
      if (ds.csv().path().empty()) throw SpecError("dataset.csv.path", "required");
      separable::Dataset points;
      try {
        points = separable::load_csv(context.resolve_path(ds.csv().path()));
      } catch (const InputError& e) {
        throw SpecError("dataset.csv.path", e.what());
      }
      if (points.X.rows() == 0) throw SpecError("dataset", "the dataset is empty");
      kind_ = Kind::Csv;
      rows_ = points.X.rows();
      cols_ = points.X.cols();
      csv_ = std::make_shared<const separable::Dataset>(std::move(points));
      break;
    }
    default:
      throw SpecError("dataset", "required: one of fig1_replica, planted2, csv");
  }
}

bool SeparableDataSource::cheap_to_build() const {
  if (kind_ != Kind::Planted2) return true;
  return static_cast<double>(planted2_n_) * planted2_d_ * planted2_d_ <= kValidationBuildWork;
}

const SeparableData& SeparableDataSource::data() const {
  if (data_) return *data_;
  switch (kind_) {
    case Kind::Fig1Replica: {
      const std::string key = "fig1_replica seed " + std::to_string(seed_);
      data_ = DataCache::instance().find(key, nullptr);
      if (!data_) data_ = build_and_cache(key, separable::make_fig1_replica(seed_));
      break;
    }
    case Kind::Planted2: {
      const std::string key = "planted2 d " + std::to_string(planted2_d_) + " n " + std::to_string(planted2_n_) +
                              " seed " + std::to_string(seed_);
      data_ = DataCache::instance().find(key, nullptr);
      if (!data_) data_ = build_and_cache(key, separable::make_planted2(planted2_d_, planted2_n_, seed_).data);
      break;
    }
    case Kind::Csv:
      data_ = shared_separable_data(*csv_);
      break;
  }
  return *data_;
}

const separable::MaxMargin& SeparableDataSource::checked_max_margin() const {
  try {
    return data().max_margin();
  } catch (const InputError& e) {
    throw SpecError("dataset", std::string("this kind needs separable data: ") + e.what());
  } catch (const NumericError& e) {
    // Separable in principle, but with a margin too small next to the data's scale for the solver.
    throw SpecError("dataset", std::string("the max-margin solution of these data cannot be computed: ") + e.what());
  }
}

// ---- Helpers --------------------------------------------------------------------------------------

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
