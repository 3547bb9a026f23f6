// Guess-and-check under Chiang et al.'s continuous prior and its SGD baseline
// (shared/papers/interpolators.md §3). Conventions, the canonical parameter mapping and the data are
// documented in interpolator_continuous.h.
#include "worker/numerics/interpolator_continuous.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/errors.h"
#include "common/random.h"
#include "worker/numerics/philox.h"

namespace gdlab::interp {
namespace {

constexpr int kKinkPoints = 4000;  // spec §3.4: 2 polylines × 2,000 points
constexpr int kExactTestMaxDim = 16;
constexpr int kMaxWidth = 1 << 16;
constexpr int kMaxInputDim = 1 << 12;
constexpr int kMaxTestPoints = 1 << 24;

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Exactly uniform integer in [0, range), range ≥ 1, by masked rejection (gdlab::Rng has no bounded
// integer draw; masking keeps it exact and simple).
std::uint64_t rng_below(Rng& rng, std::uint64_t range) {
  if (range <= 1) return 0;
  std::uint64_t mask = range - 1;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  for (;;) {
    const std::uint64_t v = rng.next_u64() & mask;
    if (v < range) return v;
  }
}

// The model of spec §3.2 (see the header): returns the class 0/1. D > 0 fixes the input dimension at
// compile time (the kink data's d = 2); D == 0 reads it at run time. Both perform the same floating
// point operations in the same order, so they agree bitwise.
template <int D>
inline int predict_impl(const double* params, int d_runtime, int width, const double* x) {
  const int d = D > 0 ? D : d_runtime;
  const double* w1 = params;
  const double* w2 = params + static_cast<std::ptrdiff_t>(d) * width;
  const double* b2 = w2 + 2 * width;
  double z0 = b2[0], z1 = b2[1];
  for (int h = 0; h < width; ++h) {
    double a = x[0] * w1[h];
    for (int i = 1; i < d; ++i) a += x[i] * w1[static_cast<std::ptrdiff_t>(i) * width + h];
    const double r = a > 0.0 ? a : 0.0;
    z0 += r * w2[2 * h];
    z1 += r * w2[2 * h + 1];
  }
  return z1 > z0 ? 1 : 0;  // argmax; a tie goes to class 0
}

template <int D>
int fitted_prefix_impl(const double* params, int d, int width, const double* xs, const std::uint8_t* ys,
                       int limit) {
  const int dd = D > 0 ? D : d;
  int t = 0;
  while (t < limit && predict_impl<D>(params, d, width, xs + static_cast<std::ptrdiff_t>(t) * dd) == ys[t]) ++t;
  return t;
}

double test_error_impl(const double* params, int width, const ContinuousData& data) {
  const int d = data.input_dim, m = data.test_size();
  if (m == 0) return 0.0;
  std::int64_t wrong = 0;
  if (d == 2) {
    for (int n = 0; n < m; ++n)
      wrong += predict_impl<2>(params, d, width, data.test_x.data() + 2 * static_cast<std::ptrdiff_t>(n)) !=
               data.test_y[n];
  } else {
    for (int n = 0; n < m; ++n)
      wrong += predict_impl<0>(params, d, width, data.test_x.data() + static_cast<std::ptrdiff_t>(n) * d) !=
               data.test_y[n];
  }
  return static_cast<double>(wrong) / m;
}

// Majority teacher sgn(x_1 + … + x_k) as a class (ties, possible only for Gaussian inputs with
// probability 0, go to class 1, i.e. sgn(0) = +1).
std::uint8_t majority_class(const double* x, int k) {
  double s = 0.0;
  for (int i = 0; i < k; ++i) s += x[i];
  return s >= 0.0 ? 1 : 0;
}

// Philox words of `count` consecutive guesses starting at g0, mapped to parameters:
// params[j·P + p] = θ_p of guess g0 + j. Lanes run over guesses so the round loop vectorises.
constexpr int kBatch = 64;

// (Measured: baseline SSE2 code is as fast as AVX2 / AVX-512 clones of this loop, so no dispatch.)
void batch_parameters(StreamKey key, std::uint64_t g0, int count, int num_params, double* params) {
  alignas(64) std::uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
  const int blocks = (num_params + 3) / 4;
  for (int b = 0; b < blocks; ++b) {
    for (int j = 0; j < kBatch; ++j) {
      const std::uint64_t g = g0 + static_cast<std::uint64_t>(j);
      c0[j] = static_cast<std::uint32_t>(g);
      c1[j] = static_cast<std::uint32_t>(g >> 32);
      c2[j] = static_cast<std::uint32_t>(b);
      c3[j] = 0u;
    }
    std::uint32_t k0 = key.k0, k1 = key.k1;
    for (int round = 0; round < 10; ++round) {  // philox4x32_10 (philox.h), lane-parallel
      for (int j = 0; j < kBatch; ++j) {
        const std::uint64_t p0 = std::uint64_t{kPhiloxM0} * c0[j];
        const std::uint64_t p1 = std::uint64_t{kPhiloxM1} * c2[j];
        const auto n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[j] ^ k0;
        const auto n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[j] ^ k1;
        c1[j] = static_cast<std::uint32_t>(p1);
        c3[j] = static_cast<std::uint32_t>(p0);
        c0[j] = n0;
        c2[j] = n2;
      }
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const int base = 4 * b;
    const int in_block = std::min(4, num_params - base);
    for (int j = 0; j < count; ++j) {
      double* out = params + static_cast<std::ptrdiff_t>(j) * num_params + base;
      out[0] = uniform_from_word(c0[j]);
      if (in_block > 1) out[1] = uniform_from_word(c1[j]);
      if (in_block > 2) out[2] = uniform_from_word(c2[j]);
      if (in_block > 3) out[3] = uniform_from_word(c3[j]);
    }
  }
}

class ContinuousSampler final : public GuessSampler {
 public:
  explicit ContinuousSampler(const ContinuousProblem& problem) : problem_(problem) {
    validate(problem_);
    num_params_ = continuous_parameter_count(problem_.input_dim, problem_.width);
    data_.reserve(problem_.data_seeds.size());
    for (int r = 0; r < static_cast<int>(problem_.data_seeds.size()); ++r)
      data_.push_back(make_continuous_data(problem_, r));
  }

  int streams() const override { return static_cast<int>(data_.size()); }
  int n_max() const override { return problem_.n_max; }

  BlockResult run_block(int stream, std::uint64_t g0, std::uint64_t g1, std::span<const int> grid,
                        int keep) const override {
    if (stream < 0 || stream >= streams()) throw std::out_of_range("run_block: stream out of range");
    if (g1 < g0) throw std::invalid_argument("run_block: g1 < g0");
    const ContinuousData& data = data_[static_cast<std::size_t>(stream)];
    const StreamKey key = problem_.guess_keys[static_cast<std::size_t>(stream)];
    const int n_max = problem_.n_max, d = problem_.input_dim, u = problem_.width;
    BlockResult result;
    result.guesses = g1 - g0;
    result.survival.assign(static_cast<std::size_t>(n_max) + 1, 0);
    result.kept.resize(grid.size());
    const std::size_t keep_n = keep > 0 ? static_cast<std::size_t>(keep) : 0;
    // Smallest grid N whose kept list is still open (a guess with smaller T needs no test error).
    auto min_open = [&]() {
      int m = n_max + 1;
      for (std::size_t i = 0; i < grid.size(); ++i)
        if (result.kept[i].size() < keep_n) m = std::min(m, grid[i]);
      return m;
    };
    int open_from = min_open();
    std::vector<double> params(static_cast<std::size_t>(kBatch) * num_params_);
    const double* xs = data.train_x.data();
    const std::uint8_t* ys = data.train_y.data();
    for (std::uint64_t g = g0; g < g1; g += kBatch) {
      const int count = static_cast<int>(std::min<std::uint64_t>(kBatch, g1 - g));
      batch_parameters(key, g, count, num_params_, params.data());
      for (int j = 0; j < count; ++j) {
        const double* p = params.data() + static_cast<std::ptrdiff_t>(j) * num_params_;
        const int t = d == 2 ? fitted_prefix_impl<2>(p, d, u, xs, ys, n_max)
                             : fitted_prefix_impl<0>(p, d, u, xs, ys, n_max);
        ++result.survival[static_cast<std::size_t>(t)];
        if (t < open_from) continue;
        double err = -1.0;
        for (std::size_t i = 0; i < grid.size(); ++i) {
          if (t < grid[i] || result.kept[i].size() >= keep_n) continue;
          if (err < 0.0) err = test_error_impl(p, u, data);
          result.kept[i].push_back({g + static_cast<std::uint64_t>(j), t, err});
        }
        open_from = min_open();
      }
    }
    return result;
  }

  std::string describe() const override {
    std::ostringstream s;
    s << "ReLU MLP " << problem_.input_dim << "-" << problem_.width << "-2 (no hidden bias, output bias), "
      << num_params_ << " params i.i.d. U[-1,1] (Chiang et al.), argmax acceptance, tie -> class 0, inputs "
      << (problem_.inputs == ContinuousInputs::kKink       ? "kink"
          : problem_.inputs == ContinuousInputs::kGaussian ? "gaussian"
                                                           : "binary");
    if (problem_.inputs != ContinuousInputs::kKink) s << ", teacher majority-" << problem_.majority;
    return s.str();
  }

 private:
  ContinuousProblem problem_;
  int num_params_ = 0;
  std::vector<ContinuousData> data_;
};

// ---- SGD (spec §3.6) ----------------------------------------------------------------------------

void init_parameters(const ContinuousProblem& pr, Rng& rng, std::vector<double>& theta) {
  const int d = pr.input_dim, u = pr.width;
  theta.resize(static_cast<std::size_t>(continuous_parameter_count(d, u)));
  const std::size_t w2_start = static_cast<std::size_t>(d) * u;
  for (std::size_t j = 0; j < theta.size(); ++j) {
    double bound = 1.0;  // Chiang's U[−1, 1]
    if (pr.sgd.init == SgdInit::kDefault) bound = 1.0 / std::sqrt(static_cast<double>(j < w2_start ? d : u));
    theta[j] = rng.uniform(-bound, bound);
  }
}

}  // namespace

int continuous_parameter_count(int input_dim, int width) { return input_dim * width + 2 * width + 2; }

void validate(const ContinuousProblem& p) {
  if (p.input_dim < 1 || p.input_dim > kMaxInputDim)
    throw SpecError("input_dim", "must be in [1, " + std::to_string(kMaxInputDim) + "] (got " +
                                     std::to_string(p.input_dim) + ")");
  if (p.width < 1 || p.width > kMaxWidth)
    throw SpecError("width", "must be in [1, " + std::to_string(kMaxWidth) + "] (got " + std::to_string(p.width) + ")");
  if (p.inputs == ContinuousInputs::kKink) {
    if (p.input_dim != 2)
      throw SpecError("input_dim", "inputs INPUTS_KINK requires input_dim 2 (got " + std::to_string(p.input_dim) + ")");
    if (!(p.kink_margin > 0.0) || !std::isfinite(p.kink_margin))
      throw SpecError("inputs", "kink margin must be a finite number > 0 (got " + fmt(p.kink_margin) + ")");
    if (p.n_max >= kKinkPoints)
      throw SpecError("n_grid", "INPUTS_KINK has " + std::to_string(kKinkPoints) +
                                    " points: the largest N must be < that (got " + std::to_string(p.n_max) + ")");
  } else {
    if (p.majority < 1 || p.majority % 2 == 0 || p.majority > p.input_dim)
      throw SpecError("teacher.majority", "must be odd and in [1, input_dim = " + std::to_string(p.input_dim) +
                                              "] (got " + std::to_string(p.majority) + ")");
  }
  if (!p.with_replacement) {
    if (p.inputs != ContinuousInputs::kBinary)
      throw SpecError("with_replacement", "false is supported for binary inputs only");
    if (p.input_dim > 62 || (std::uint64_t{1} << p.input_dim) < static_cast<std::uint64_t>(std::max(p.n_max, 0)))
      throw SpecError("with_replacement", "false needs N_max <= 2^input_dim (got N_max " + std::to_string(p.n_max) +
                                              ", input_dim " + std::to_string(p.input_dim) + ")");
  }
  if (p.n_max < 0) throw SpecError("n_grid", "values must be >= 0 (got " + std::to_string(p.n_max) + ")");
  const bool exact = p.inputs == ContinuousInputs::kBinary && p.input_dim <= kExactTestMaxDim;
  if (!exact && (p.test_points < 1 || p.test_points > kMaxTestPoints))
    throw SpecError("test_points", "must be in [1, " + std::to_string(kMaxTestPoints) + "] (got " +
                                       std::to_string(p.test_points) + ")");
  if (p.data_seeds.empty()) throw SpecError("streams", "must be >= 1");
  if (p.data_seeds.size() != p.guess_keys.size())
    throw SpecError("streams", "one data seed and one guess key per stream (got " +
                                   std::to_string(p.data_seeds.size()) + " and " + std::to_string(p.guess_keys.size()) +
                                   ")");
  const SgdConfig& s = p.sgd;
  if (s.runs < 0) throw SpecError("sgd.runs", "must be >= 0 (got " + std::to_string(s.runs) + ")");
  if (!(s.lr > 0.0) || !std::isfinite(s.lr))
    throw SpecError("sgd.lr", "must be a finite number > 0 (got " + fmt(s.lr) + ")");
  if (s.epochs < 0 || s.epochs > 1000000)
    throw SpecError("sgd.epochs", "must be in [0, 1e6] (got " + std::to_string(s.epochs) + ")");
  if (s.batch_size < 1) throw SpecError("sgd.batch_size", "must be >= 1 (got " + std::to_string(s.batch_size) + ")");
  for (std::size_t i = 0; i < s.n_grid.size(); ++i) {
    if (s.n_grid[i] < 0 || s.n_grid[i] > p.n_max)
      throw SpecError("n_grid", "SGD training-set sizes must be in [0, N_max = " + std::to_string(p.n_max) + "] (got " +
                                    std::to_string(s.n_grid[i]) + ")");
    if (i > 0 && s.n_grid[i] <= s.n_grid[i - 1]) throw SpecError("n_grid", "must be strictly ascending");
  }
}

void continuous_guess_parameters(StreamKey key, std::uint64_t guess, std::span<double> out) {
  GuessWords words(key, guess);
  for (double& v : out) v = uniform_from_word(words.next());
}

int continuous_predict(std::span<const double> params, int input_dim, int width, const double* x) {
  if (params.size() != static_cast<std::size_t>(continuous_parameter_count(input_dim, width)))
    throw std::invalid_argument("continuous_predict: wrong parameter count");
  return predict_impl<0>(params.data(), input_dim, width, x);
}

int continuous_fitted_prefix(std::span<const double> params, int width, const ContinuousData& data, int limit) {
  if (params.size() != static_cast<std::size_t>(continuous_parameter_count(data.input_dim, width)))
    throw std::invalid_argument("continuous_fitted_prefix: wrong parameter count");
  limit = std::min(limit, data.train_size());
  return fitted_prefix_impl<0>(params.data(), data.input_dim, width, data.train_x.data(), data.train_y.data(), limit);
}

double continuous_test_error(std::span<const double> params, int width, const ContinuousData& data) {
  if (params.size() != static_cast<std::size_t>(continuous_parameter_count(data.input_dim, width)))
    throw std::invalid_argument("continuous_test_error: wrong parameter count");
  return test_error_impl(params.data(), width, data);
}

ContinuousData make_continuous_data(const ContinuousProblem& p, int stream) {
  if (stream < 0 || stream >= static_cast<int>(p.data_seeds.size()))
    throw std::out_of_range("make_continuous_data: stream out of range");
  Rng rng(p.data_seeds[static_cast<std::size_t>(stream)]);
  ContinuousData data;
  const int d = p.input_dim, n = p.n_max;
  data.input_dim = d;
  data.train_x.resize(static_cast<std::size_t>(n) * d);
  data.train_y.resize(static_cast<std::size_t>(n));

  if (p.inputs == ContinuousInputs::kKink) {
    // Chiang et al. datasets.py `Kink` (spec §3.4): class 1 (label 1) on y = −|x|, class 0 on
    // y = −|x| + margin; x = linspace(−1, 0, 1000) ++ linspace(0, 1, 1000) on each polyline.
    constexpr int kHalf = 1000;
    std::vector<double> px(kKinkPoints), py(kKinkPoints);
    std::vector<std::uint8_t> pc(kKinkPoints);
    auto linspace = [](double a, double b, int k, int m) { return k == m - 1 ? b : a + k * ((b - a) / (m - 1)); };
    for (int line = 0; line < 2; ++line) {
      const double offset = line == 0 ? 0.0 : p.kink_margin;
      for (int k = 0; k < 2 * kHalf; ++k) {
        const int idx = line * 2 * kHalf + k;
        const double x = k < kHalf ? linspace(-1.0, 0.0, k, kHalf) : linspace(0.0, 1.0, k - kHalf, kHalf);
        px[idx] = x;
        py[idx] = -std::abs(x) + offset;
        pc[idx] = line == 0 ? 1 : 0;
      }
    }
    std::vector<int> order(kKinkPoints);
    for (int i = 0; i < kKinkPoints; ++i) order[i] = i;
    for (int i = kKinkPoints - 1; i > 0; --i)  // Fisher–Yates with the stream's Rng
      std::swap(order[i], order[rng_below(rng, static_cast<std::uint64_t>(i) + 1)]);
    for (int t = 0; t < n; ++t) {
      data.train_x[2 * t] = px[order[t]];
      data.train_x[2 * t + 1] = py[order[t]];
      data.train_y[t] = pc[order[t]];
    }
    const int m = std::min(p.test_points, kKinkPoints - n);
    data.test_x.resize(2 * static_cast<std::size_t>(m));
    data.test_y.resize(static_cast<std::size_t>(m));
    for (int t = 0; t < m; ++t) {
      const int src = order[kKinkPoints - m + t];
      data.test_x[2 * t] = px[src];
      data.test_x[2 * t + 1] = py[src];
      data.test_y[t] = pc[src];
    }
    if (p.random_train_labels)
      for (auto& y : data.train_y) y = static_cast<std::uint8_t>(rng.next_u64() >> 63);
    return data;
  }

  const int k = p.majority;
  auto draw_point = [&](double* x) {
    if (p.inputs == ContinuousInputs::kBinary)
      for (int i = 0; i < d; ++i) x[i] = rng.sign();
    else
      for (int i = 0; i < d; ++i) x[i] = rng.normal();
  };
  if (p.inputs == ContinuousInputs::kBinary && !p.with_replacement) {
    std::set<std::uint64_t> seen;
    for (int t = 0; t < n; ++t) {
      std::uint64_t idx;
      do idx = rng.next_u64() >> (64 - d);
      while (!seen.insert(idx).second);
      for (int i = 0; i < d; ++i) data.train_x[static_cast<std::size_t>(t) * d + i] = (idx >> i) & 1 ? 1.0 : -1.0;
    }
  } else {
    for (int t = 0; t < n; ++t) draw_point(data.train_x.data() + static_cast<std::size_t>(t) * d);
  }
  for (int t = 0; t < n; ++t) data.train_y[t] = majority_class(data.train_x.data() + static_cast<std::size_t>(t) * d, k);
  if (p.random_train_labels)
    for (auto& y : data.train_y) y = static_cast<std::uint8_t>(rng.next_u64() >> 63);

  if (p.inputs == ContinuousInputs::kBinary && d <= kExactTestMaxDim) {
    const std::size_t m = std::size_t{1} << d;  // exact: every input once (uniform D)
    data.test_x.resize(m * d);
    data.test_y.resize(m);
    for (std::size_t idx = 0; idx < m; ++idx) {
      for (int i = 0; i < d; ++i) data.test_x[idx * d + i] = (idx >> i) & 1 ? 1.0 : -1.0;
      data.test_y[idx] = majority_class(data.test_x.data() + idx * d, k);
    }
  } else {
    const std::size_t m = static_cast<std::size_t>(p.test_points);
    data.test_x.resize(m * d);
    data.test_y.resize(m);
    for (std::size_t t = 0; t < m; ++t) {
      draw_point(data.test_x.data() + t * d);
      data.test_y[t] = majority_class(data.test_x.data() + t * d, k);
    }
  }
  return data;
}

std::unique_ptr<GuessSampler> make_continuous_sampler(const ContinuousProblem& problem) {
  return std::make_unique<ContinuousSampler>(problem);
}

std::vector<SgdRun> sgd_runs(const ContinuousProblem& pr, const ContinuousData& data, int n, std::uint64_t seed) {
  validate(pr);
  if (n < 0 || n > data.train_size()) throw std::invalid_argument("sgd_runs: n out of range");
  const int d = pr.input_dim, u = pr.width;
  const int num_params = continuous_parameter_count(d, u);
  const std::size_t w2_off = static_cast<std::size_t>(d) * u, b2_off = w2_off + 2 * static_cast<std::size_t>(u);
  std::vector<SgdRun> out;
  out.reserve(static_cast<std::size_t>(pr.sgd.runs));
  std::vector<double> theta, grad(static_cast<std::size_t>(num_params)), act(static_cast<std::size_t>(u));
  std::vector<int> order(static_cast<std::size_t>(n));
  for (int run = 0; run < pr.sgd.runs; ++run) {
    Rng rng(mix64(seed ^ mix64(static_cast<std::uint64_t>(run) + 1)));
    init_parameters(pr, rng, theta);
    for (int t = 0; t < n; ++t) order[t] = t;
    auto train_fits = [&]() { return continuous_fitted_prefix(theta, u, data, n) == n; };
    SgdRun result;
    bool fits = train_fits();
    int epoch = 0;
    for (; epoch < pr.sgd.epochs && !fits; ++epoch) {
      for (int i = n - 1; i > 0; --i) std::swap(order[i], order[rng_below(rng, static_cast<std::uint64_t>(i) + 1)]);
      for (int start = 0; start < n; start += pr.sgd.batch_size) {
        const int stop = std::min(n, start + pr.sgd.batch_size);
        std::fill(grad.begin(), grad.end(), 0.0);
        for (int b = start; b < stop; ++b) {
          const double* x = data.train_x.data() + static_cast<std::size_t>(order[b]) * d;
          const int y = data.train_y[static_cast<std::size_t>(order[b])];
          // Forward (spec §3.2).
          double z0 = theta[b2_off], z1 = theta[b2_off + 1];
          for (int h = 0; h < u; ++h) {
            double a = x[0] * theta[h];
            for (int i = 1; i < d; ++i) a += x[i] * theta[static_cast<std::size_t>(i) * u + h];
            act[h] = a;
            const double r = a > 0.0 ? a : 0.0;
            z0 += r * theta[w2_off + 2 * h];
            z1 += r * theta[w2_off + 2 * h + 1];
          }
          // Cross-entropy of softmax(z) with class y: ∂/∂z_c = p_c − [c = y]; p_1 = σ(z_1 − z_0).
          const double p1 = 1.0 / (1.0 + std::exp(z0 - z1));
          const double g1 = p1 - (y == 1 ? 1.0 : 0.0), g0 = -g1;
          grad[b2_off] += g0;
          grad[b2_off + 1] += g1;
          for (int h = 0; h < u; ++h) {
            const double a = act[h];
            if (a <= 0.0) continue;  // ReLU: no gradient through an inactive unit (and r_h = 0)
            grad[w2_off + 2 * h] += a * g0;
            grad[w2_off + 2 * h + 1] += a * g1;
            const double da = theta[w2_off + 2 * h] * g0 + theta[w2_off + 2 * h + 1] * g1;
            for (int i = 0; i < d; ++i) grad[static_cast<std::size_t>(i) * u + h] += x[i] * da;
          }
        }
        const double step = pr.sgd.lr / (stop - start);  // mean loss over the batch
        for (int j = 0; j < num_params; ++j) theta[j] -= step * grad[j];
      }
      fits = train_fits();
    }
    for (double v : theta)
      if (!std::isfinite(v)) throw NumericError("sgd_runs: parameters diverged (lr too large?)");
    result.epochs = epoch;
    result.interpolated = fits;
    result.test_error = continuous_test_error(theta, u, data);
    out.push_back(result);
  }
  return out;
}

std::vector<SgdRun> sgd_runs(const ContinuousProblem& problem, int stream, int n, std::uint64_t seed) {
  return sgd_runs(problem, make_continuous_data(problem, stream), n, seed);
}

std::vector<double> sgd_test_errors(const ContinuousProblem& problem, int stream, int n, std::uint64_t seed) {
  std::vector<double> errors;
  for (const SgdRun& r : sgd_runs(problem, stream, n, seed)) errors.push_back(r.test_error);
  return errors;
}

}  // namespace gdlab::interp
