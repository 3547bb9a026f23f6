// Experiment kind `random_interpolator`: guess-and-check (G&C) sampling of random interpolating
// networks (shared/papers/interpolators.md). Buzaglo et al., ICML 2024: a random network that
// fits the data typically generalizes when a narrow teacher labels it; Chiang et al., ICLR 2023:
// G&C with continuous uniform weights vs SGD.
//
// A task is split into units of `guesses_per_unit` guess indices of one training stream; any idle
// worker runs any unit (PreparedTask::run_unit), and the coordinator's merger (UnitMerger) merges
// each stream's blocks strictly in block order and stops a stream at the end of the block in
// which its N_max got A accepted samples (spec §7.1). So the file depends only on the spec, never
// on the number of ranks or the schedule. Per stream the merged state is the survival histogram
// (C_N = #{T ≥ N}, spec §6.2 item 3: the prefix trick), the guess count G, and the first A
// accepted samples per N with their exact test errors — bounded memory however long the run.
//
// Records: the learning curve ε̄_N ± SE (observables/test_error), E[ln G/C_N] (observables/
// ln_inverse_acceptance), the Bayes-identity estimate 1 − C_{N+1}/C_N ± SE (observables/
// bayes_error), Σ_{n<N} of it (observables/cumulative_error), the pooled acceptance rate with a
// Wilson interval (observables/acceptance), the theory overlay (ln(1/p*) + 1)/N (theory/
// error_bound) and ln(1/p*) (theory/ln_inverse_p_star), every stream's survival histogram and
// accepted samples under parameters/, the SGD baseline's test errors (continuous prior), and a
// verdict against the master inequalities (spec §2.4 (A), §7.3). Progress rows (guesses,
// accepted, rate against elapsed seconds) go to progress/, outside the compared results, since
// they depend on timing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <limits>
#include <map>
#include <sstream>

#include "common/byte_codec.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/numerics/guess_sampler.h"
#include "worker/numerics/interpolator_continuous.h"
#include "worker/numerics/interpolator_quantized.h"
#include "worker/numerics/philox.h"

namespace gdlab {
namespace {

using interp::BlockResult;
using interp::KeptGuess;

// The prepared task: plain C++ from the spec (the protobuf stays in prepare()).
struct RandomInterpolatorConfig {
  std::string description;
  int streams = 0;
  int accepted_per_n = 0;
  int n_max = 0;
  std::vector<int> n_grid;
  std::uint64_t guesses_per_unit = 0;
  std::uint64_t max_guesses_per_stream = 0;
  std::uint64_t p_star_guesses = 0;  // 0: no p* Monte Carlo
  int full_domain_points = 0;        // 2^d, the p* sampler's N_max
  // ln(1/p*) by exact enumeration (NaN when too large) and by the counting bound: computed by the
  // merger at the end (enumeration can take seconds; prepare() also runs in `gdlab validate`).
  std::function<double()> exact_ln_inverse_p_star;
  std::function<double()> counting_ln_inverse_p_star;
  double tolerance = 0.05;
  // The master inequalities need a teacher inside the student's prior (p* > 0).
  bool check_bounds = false;
  int sgd_runs = 0;  // SGD networks per (stream, N) (continuous prior)
  std::shared_ptr<const interp::GuessSampler> sampler;
  std::shared_ptr<const interp::GuessSampler> full_domain_sampler;
  // Test errors of the SGD baseline of stream r: sgd_runs per grid N, N-major.
  std::function<std::vector<double>(int stream)> sgd_errors;
};

std::shared_ptr<const RandomInterpolatorConfig> make_random_interpolator_config(const pb::RandomInterpolatorSpec& spec,
                                                                               const TaskContext& context);

// Units, their results and checkpoints use common/byte_codec.h.
class Writer : public ByteWriter {};
class Reader : public ByteReader {
 public:
  explicit Reader(const std::string& in) : ByteReader(in, "random_interpolator unit message") {}
};

// Which sampler a unit runs: the learning-curve streams, the p* Monte Carlo over the whole
// domain, or the SGD baseline of the continuous prior.
enum class UnitType : std::uint8_t { Curve = 0, PStar = 1, Sgd = 2 };

struct Unit {
  UnitType type = UnitType::Curve;
  std::uint32_t stream = 0;
  std::uint64_t block = 0;
  // Grid sizes before this index already hold A samples in the stream's merged prefix when the
  // unit is handed out (lists fill in order of N, since C_N falls with N), so the worker skips
  // them: their samples from this block could never be used. It changes only wasted work, never
  // the result (a list full then is full at this block's merge).
  std::uint32_t first_open = 0;
};

std::string encode_unit(const Unit& u) {
  Writer w;
  w.put(static_cast<std::uint8_t>(u.type));
  w.put(u.stream);
  w.put(u.block);
  w.put(u.first_open);
  return w.take();
}

Unit decode_unit(const std::string& s) {
  Reader r(s);
  Unit u;
  const auto type = r.get<std::uint8_t>();
  if (type > 2) throw TransportError("random_interpolator: unknown unit type " + std::to_string(type));
  u.type = static_cast<UnitType>(type);
  u.stream = r.get<std::uint32_t>();
  u.block = r.get<std::uint64_t>();
  u.first_open = r.get<std::uint32_t>();
  r.expect_end();
  return u;
}

void encode_block(Writer& w, const BlockResult& b) {
  w.put(b.guesses);
  w.put(static_cast<std::uint32_t>(b.survival.size()));
  for (auto c : b.survival) w.put(c);
  w.put(static_cast<std::uint32_t>(b.kept.size()));
  for (const auto& list : b.kept) {
    w.put(static_cast<std::uint32_t>(list.size()));
    for (const auto& k : list) {
      w.put(k.guess);
      w.put(k.fitted);
      w.put(k.test_error);
    }
  }
  w.put(static_cast<std::uint32_t>(b.extra.size()));
  for (double x : b.extra) w.put(x);
}

BlockResult decode_block(Reader& r) {
  constexpr std::uint32_t kSane = 1u << 24;
  BlockResult b;
  b.guesses = r.get<std::uint64_t>();
  const auto ns = r.get<std::uint32_t>();
  if (ns > kSane) throw TransportError("random_interpolator: implausible survival length");
  b.survival.resize(ns);
  for (auto& c : b.survival) c = r.get<std::int64_t>();
  const auto nk = r.get<std::uint32_t>();
  if (nk > kSane) throw TransportError("random_interpolator: implausible kept count");
  b.kept.resize(nk);
  for (auto& list : b.kept) {
    const auto n = r.get<std::uint32_t>();
    if (n > kSane) throw TransportError("random_interpolator: implausible kept list");
    list.resize(n);
    for (auto& k : list) {
      k.guess = r.get<std::uint64_t>();
      k.fitted = r.get<std::int32_t>();
      k.test_error = r.get<double>();
    }
  }
  const auto ne = r.get<std::uint32_t>();
  if (ne > kSane) throw TransportError("random_interpolator: implausible extra length");
  b.extra.resize(ne);
  for (auto& x : b.extra) x = r.get<double>();
  return b;
}

// ------------------------------------------------------------------ per-stream merged state

// One stream of guesses, merged in block order.
struct StreamState {
  std::uint64_t handed = 0;  // blocks handed out: 0 … handed−1
  std::uint64_t merged = 0;  // blocks merged: 0 … merged−1
  bool done = false;
  std::uint64_t guesses = 0;
  std::vector<std::int64_t> survival;
  std::vector<std::vector<KeptGuess>> kept;  // per grid N, at most A, ascending guess index
  std::map<std::uint64_t, BlockResult> waiting;  // results that arrived ahead of their turn

  void init(std::size_t n_max, std::size_t grid_size) {
    survival.assign(n_max + 1, 0);
    kept.assign(grid_size, {});
  }
  std::uint64_t outstanding() const { return handed - merged; }
};

void write_stream(Writer& w, const StreamState& s) {
  w.put(s.merged);
  w.put(static_cast<std::uint8_t>(s.done));
  BlockResult b;
  b.guesses = s.guesses;
  b.survival = s.survival;
  b.kept = s.kept;
  encode_block(w, b);
}

void read_stream(Reader& r, StreamState& s) {
  s.merged = r.get<std::uint64_t>();
  s.handed = s.merged;  // units out at the checkpoint are handed out again
  s.done = r.get<std::uint8_t>() != 0;
  BlockResult b = decode_block(r);
  if (b.survival.size() != s.survival.size() || b.kept.size() != s.kept.size())
    throw StoreError("random_interpolator checkpoint does not match the task's N grid");
  s.guesses = b.guesses;
  s.survival = std::move(b.survival);
  s.kept = std::move(b.kept);
  s.waiting.clear();
}

// Learning-curve statistics over the streams, per grid N (spec §7.1 "Report per N").
struct LearningCurve {
  std::vector<double> error_mean, error_se;  // mean over streams of the per-stream mean test error
  std::vector<double> ln_inverse_acceptance, ln_inverse_acceptance_se;  // E[ln G/C_N]
  std::vector<double> bayes_error, bayes_error_se;  // stream mean of 1 − C_{N+1}/C_N
  std::vector<double> cumulative_error;  // Σ_{n<N} stream mean of (1 − C_{n+1}/C_n)
  std::vector<double> acceptance, acceptance_low, acceptance_high;  // pooled C_N/G, Wilson 95%
};

LearningCurve summarize(const RandomInterpolatorConfig& c, const std::vector<StreamState>& streams);

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(v.size());
}

double standard_error(const std::vector<double>& v) {
  if (v.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const double m = mean_of(v);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v;
  return s.str();
}

LearningCurve summarize(const RandomInterpolatorConfig& c, const std::vector<StreamState>& streams) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<std::int64_t>> survival;
  std::vector<std::uint64_t> guesses;
  for (const auto& s : streams) {
    survival.push_back(s.survival);
    guesses.push_back(s.guesses);
  }
  auto value = [&](const interp::MeanSe& m) { return m.count > 0 ? m.mean : nan; };
  LearningCurve out;
  for (std::size_t i = 0; i < c.n_grid.size(); ++i) {
    const int N = c.n_grid[i];
    std::vector<std::vector<double>> errors;
    std::uint64_t pooled_c = 0, pooled_g = 0;
    for (std::size_t r = 0; r < streams.size(); ++r) {
      std::vector<double> e;
      for (const auto& k : streams[r].kept[i]) e.push_back(k.test_error);
      errors.push_back(std::move(e));
      pooled_c += static_cast<std::uint64_t>(interp::survivors(streams[r].survival)[static_cast<std::size_t>(N)]);
      pooled_g += streams[r].guesses;
    }
    const interp::MeanSe err = interp::mean_test_error(errors);
    out.error_mean.push_back(value(err));
    out.error_se.push_back(err.count > 1 ? err.se : 0.0);
    const interp::MeanSe lnp = interp::mean_log_inverse_acceptance(survival, guesses, N);
    out.ln_inverse_acceptance.push_back(value(lnp));
    out.ln_inverse_acceptance_se.push_back(lnp.count > 1 ? lnp.se : 0.0);
    const interp::MeanSe bayes = interp::bayes_error(survival, N);
    out.bayes_error.push_back(value(bayes));
    out.bayes_error_se.push_back(bayes.count > 1 ? bayes.se : 0.0);
    out.cumulative_error.push_back(value(interp::cumulative_bayes_error(survival, N)));
    const interp::Interval p = interp::binomial_ci(pooled_c, pooled_g);
    out.acceptance.push_back(p.estimate);
    out.acceptance_low.push_back(p.lower);
    out.acceptance_high.push_back(p.upper);
  }
  return out;
}

// ------------------------------------------------------------------ the coordinator's merger

class InterpolatorMerger : public UnitMerger {
 public:
  explicit InterpolatorMerger(std::shared_ptr<const RandomInterpolatorConfig> config) : c_(std::move(config)) {
    curve_.resize(static_cast<std::size_t>(c_->streams));
    for (auto& s : curve_) s.init(static_cast<std::size_t>(c_->n_max), c_->n_grid.size());
    if (c_->p_star_guesses > 0) {
      p_star_.init(static_cast<std::size_t>(c_->full_domain_points), 1);
      p_star_blocks_ = (c_->p_star_guesses + c_->guesses_per_unit - 1) / c_->guesses_per_unit;
    } else {
      p_star_.done = true;
    }
    sgd_.assign(static_cast<std::size_t>(c_->streams), {});
    sgd_done_.assign(static_cast<std::size_t>(c_->streams), c_->sgd_runs == 0);
    sgd_handed_.assign(static_cast<std::size_t>(c_->streams), c_->sgd_runs == 0);
    started_ = std::chrono::steady_clock::now();
  }

  std::optional<std::string> next_unit() override {
    if (complete()) return std::nullopt;
    // Bounded memory: at most this many units out per stream and in all.
    constexpr std::uint64_t kPerStream = 4, kTotal = 64;
    if (outstanding_total() >= kTotal) return std::nullopt;
    // Streams in order, so early streams finish first and their memory is released.
    for (std::size_t r = 0; r < curve_.size(); ++r) {
      StreamState& s = curve_[r];
      if (s.done || s.outstanding() >= kPerStream) continue;
      if (s.handed * c_->guesses_per_unit >= c_->max_guesses_per_stream) continue;
      std::uint32_t first_open = 0;
      while (first_open + 1 < s.kept.size() && s.kept[first_open].size() >= static_cast<std::size_t>(c_->accepted_per_n))
        ++first_open;
      return encode_unit({UnitType::Curve, static_cast<std::uint32_t>(r), s.handed++, first_open});
    }
    if (!p_star_.done && p_star_.handed < p_star_blocks_ && p_star_.outstanding() < kTotal / 2)
      return encode_unit({UnitType::PStar, 0, p_star_.handed++, 0});
    for (std::size_t r = 0; r < sgd_.size(); ++r)
      if (!sgd_handed_[r]) {
        sgd_handed_[r] = true;
        return encode_unit({UnitType::Sgd, static_cast<std::uint32_t>(r), 0, 0});
      }
    return std::nullopt;
  }

  void merge(const std::string& unit_bytes, const std::string& result_bytes, Recorder& rec) override {
    const Unit unit = decode_unit(unit_bytes);
    Reader reader(result_bytes);
    BlockResult block = decode_block(reader);
    reader.expect_end();
    units_merged_ += 1;
    switch (unit.type) {
      case UnitType::Curve: {
        if (unit.stream >= curve_.size()) throw TransportError("random_interpolator: unit of an unknown stream");
        StreamState& s = curve_[unit.stream];
        if (s.done || unit.block < s.merged) return;  // no longer needed
        s.waiting.emplace(unit.block, std::move(block));
        merge_in_order(s, /*is_curve=*/true);
        break;
      }
      case UnitType::PStar:
        if (p_star_.done || unit.block < p_star_.merged) return;
        p_star_.waiting.emplace(unit.block, std::move(block));
        merge_in_order(p_star_, /*is_curve=*/false);
        break;
      case UnitType::Sgd:
        if (unit.stream >= sgd_.size()) throw TransportError("random_interpolator: SGD unit of an unknown stream");
        sgd_[unit.stream] = std::move(block.extra);
        sgd_done_[unit.stream] = true;
        break;
    }
    record_progress(rec);
  }

  bool complete() const override {
    for (const auto& s : curve_)
      if (!s.done) return false;
    if (!p_star_.done) return false;
    for (bool d : sgd_done_)
      if (!d) return false;
    return true;
  }

  void finish(Recorder& rec) override;

  std::string progress_line() override {
    std::uint64_t guesses = p_star_.guesses, accepted = 0;
    std::size_t streams_done = 0;
    for (const auto& s : curve_) {
      guesses += s.guesses;
      accepted += s.kept.empty() ? 0 : s.kept.back().size();
      streams_done += s.done ? 1 : 0;
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count() + elapsed_before_;
    const double rate = elapsed > 0 ? static_cast<double>(guesses - guesses_at_start_) / (elapsed - elapsed_before_) : 0;
    const double fraction = static_cast<double>(streams_done) / static_cast<double>(std::max<std::size_t>(1, curve_.size()));
    std::ostringstream line;
    line << "guesses " << fmt(static_cast<double>(guesses)) << ", streams done " << streams_done << "/" << curve_.size()
         << ", accepted at N_max " << accepted << "/" << curve_.size() * static_cast<std::size_t>(c_->accepted_per_n)
         << ", rate " << fmt(rate) << " guesses/s";
    if (fraction > 0 && fraction < 1) line << ", eta " << fmt(elapsed * (1 - fraction) / fraction) << " s";
    return line.str();
  }

  std::string checkpoint() const override {
    Writer w;
    w.put(std::uint32_t{0x52494331});  // "RIC1"
    w.put(static_cast<std::uint32_t>(curve_.size()));
    for (const auto& s : curve_) write_stream(w, s);
    write_stream(w, p_star_);
    w.put(static_cast<std::uint32_t>(sgd_.size()));
    for (std::size_t r = 0; r < sgd_.size(); ++r) {
      w.put(static_cast<std::uint8_t>(sgd_done_[r]));
      w.put(static_cast<std::uint32_t>(sgd_[r].size()));
      for (double x : sgd_[r]) w.put(x);
    }
    w.put(static_cast<std::uint32_t>(progress_rows_.size()));
    for (const auto& row : progress_rows_)
      for (double x : row) w.put(x);
    w.put(current_elapsed());
    return w.take();
  }

  void restore(const std::string& state) override {
    Reader r(state);
    if (r.get<std::uint32_t>() != 0x52494331) throw StoreError("not a random_interpolator checkpoint");
    if (r.get<std::uint32_t>() != curve_.size()) throw StoreError("random_interpolator checkpoint: stream count differs");
    for (auto& s : curve_) read_stream(r, s);
    read_stream(r, p_star_);
    if (r.get<std::uint32_t>() != sgd_.size()) throw StoreError("random_interpolator checkpoint: SGD streams differ");
    for (std::size_t k = 0; k < sgd_.size(); ++k) {
      sgd_done_[k] = r.get<std::uint8_t>() != 0;
      sgd_handed_[k] = sgd_done_[k];
      sgd_[k].resize(r.get<std::uint32_t>());
      for (auto& x : sgd_[k]) x = r.get<double>();
    }
    progress_rows_.resize(r.get<std::uint32_t>());
    for (auto& row : progress_rows_)
      for (auto& x : row) x = r.get<double>();
    elapsed_before_ = r.get<double>();
    r.expect_end();
    started_ = std::chrono::steady_clock::now();
    guesses_at_start_ = total_guesses();
    replay_progress_ = true;
  }

 private:
  std::uint64_t outstanding_total() const {
    std::uint64_t n = p_star_.outstanding();
    for (const auto& s : curve_) n += s.outstanding();
    return n;
  }
  std::uint64_t total_guesses() const {
    std::uint64_t g = p_star_.guesses;
    for (const auto& s : curve_) g += s.guesses;
    return g;
  }
  double current_elapsed() const {
    return elapsed_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  // Merges the waiting blocks that are next in order; stops the stream when its criterion holds.
  void merge_in_order(StreamState& s, bool is_curve) {
    while (!s.done) {
      auto it = s.waiting.find(s.merged);
      if (it == s.waiting.end()) break;
      const BlockResult& b = it->second;
      if (b.survival.size() != s.survival.size() || b.kept.size() != s.kept.size())
        throw TransportError("random_interpolator: a unit result has the wrong shape");
      s.guesses += b.guesses;
      for (std::size_t t = 0; t < b.survival.size(); ++t) s.survival[t] += b.survival[t];
      const std::size_t keep = is_curve ? static_cast<std::size_t>(c_->accepted_per_n) : 0;
      for (std::size_t i = 0; i < b.kept.size(); ++i)
        for (const auto& k : b.kept[i])
          if (s.kept[i].size() < keep) s.kept[i].push_back(k);
      s.waiting.erase(it);
      ++s.merged;
      if (is_curve) {
        if (s.kept.back().size() >= keep || s.guesses >= c_->max_guesses_per_stream) s.done = true;
      } else if (s.merged >= p_star_blocks_) {
        s.done = true;
      }
    }
    if (s.done) s.waiting.clear();
  }

  void record_progress(Recorder& rec) {
    if (replay_progress_) {
      // After a restart the task's group was reset: write the rows merged before it again.
      for (const auto& row : progress_rows_)
        rec.append("progress", static_cast<std::int64_t>(row[0]), row[1],
                   std::span<const double>(row.data() + 2, 3));
      replay_progress_ = false;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress_row_ < std::chrono::seconds(1) && !complete()) return;
    last_progress_row_ = now;
    std::uint64_t accepted = 0;
    for (const auto& s : curve_) accepted += s.kept.empty() ? 0 : s.kept.back().size();
    const double elapsed = current_elapsed();
    const double guesses = static_cast<double>(total_guesses());
    std::array<double, 5> row = {static_cast<double>(progress_rows_.size()), elapsed, guesses,
                                 static_cast<double>(accepted), elapsed > 0 ? guesses / elapsed : 0.0};
    progress_rows_.push_back(row);
    // columns: guesses, accepted samples at N_max, mean rate (guesses/s); time = elapsed seconds
    rec.append("progress", static_cast<std::int64_t>(row[0]), row[1],
               std::span<const double>(row.data() + 2, 3));
  }

  std::shared_ptr<const RandomInterpolatorConfig> c_;
  std::vector<StreamState> curve_;
  StreamState p_star_;
  std::uint64_t p_star_blocks_ = 0;
  std::vector<std::vector<double>> sgd_;
  std::vector<bool> sgd_done_, sgd_handed_;
  std::vector<std::array<double, 5>> progress_rows_;
  bool replay_progress_ = false;
  std::uint64_t units_merged_ = 0;
  std::uint64_t guesses_at_start_ = 0;
  double elapsed_before_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_progress_row_{};
};

void InterpolatorMerger::finish(Recorder& rec) {
  const RandomInterpolatorConfig& c = *c_;
  const std::size_t R = curve_.size(), G = c.n_grid.size(), A = static_cast<std::size_t>(c.accepted_per_n);
  const std::size_t S = static_cast<std::size_t>(c.n_max) + 1;
  const double nan = std::numeric_limits<double>::quiet_NaN();

  std::vector<double> grid(c.n_grid.begin(), c.n_grid.end());
  rec.put_array("parameters/n_grid", {G}, grid);
  std::vector<double> survival(R * S), guesses(R), kept_error(R * G * A, nan), kept_index(R * G * A, nan),
      kept_fitted(R * G * A, nan), kept_count(R * G);
  for (std::size_t r = 0; r < R; ++r) {
    guesses[r] = static_cast<double>(curve_[r].guesses);
    for (std::size_t t = 0; t < S; ++t) survival[r * S + t] = static_cast<double>(curve_[r].survival[t]);
    for (std::size_t i = 0; i < G; ++i) {
      const auto& list = curve_[r].kept[i];
      kept_count[r * G + i] = static_cast<double>(list.size());
      for (std::size_t a = 0; a < list.size(); ++a) {
        kept_error[(r * G + i) * A + a] = list[a].test_error;
        kept_index[(r * G + i) * A + a] = static_cast<double>(list[a].guess);
        kept_fitted[(r * G + i) * A + a] = list[a].fitted;
      }
    }
  }
  rec.put_array("parameters/survival", {R, S}, survival);
  rec.put_array("parameters/guesses", {R}, guesses);
  rec.put_array("parameters/accepted_test_error", {R, G, A}, kept_error);
  rec.put_array("parameters/accepted_guess_index", {R, G, A}, kept_index);
  rec.put_array("parameters/accepted_fitted", {R, G, A}, kept_fitted);
  rec.put_array("parameters/accepted_count", {R, G}, kept_count);

  // Learning-curve statistics over streams (spec §7.1 "Report per N").
  LearningCurve curve = summarize(c, curve_);
  for (std::size_t i = 0; i < G; ++i) {
    const auto N = static_cast<std::int64_t>(c.n_grid[i]);
    const double t = static_cast<double>(N);
    rec.append("observables/test_error", N, t, std::array<double, 2>{curve.error_mean[i], curve.error_se[i]});
    rec.append("observables/ln_inverse_acceptance", N, t, curve.ln_inverse_acceptance[i]);
    rec.append("observables/bayes_error", N, t, std::array<double, 2>{curve.bayes_error[i], curve.bayes_error_se[i]});
    rec.append("observables/cumulative_error", N, t, curve.cumulative_error[i]);
    rec.append("observables/acceptance", N, t,
               std::array<double, 3>{curve.acceptance[i], curve.acceptance_low[i], curve.acceptance_high[i]});
    if (c.sgd_runs > 0) {
      std::vector<double> errors;
      for (std::size_t r = 0; r < R; ++r)
        for (int k = 0; k < c.sgd_runs; ++k) {
          const std::size_t at = i * static_cast<std::size_t>(c.sgd_runs) + static_cast<std::size_t>(k);
          if (at < sgd_[r].size() && std::isfinite(sgd_[r][at])) errors.push_back(sgd_[r][at]);
        }
      rec.append("observables/sgd_test_error", N, t, std::array<double, 2>{mean_of(errors), standard_error(errors)});
    }
  }
  if (c.sgd_runs > 0) {
    std::vector<double> flat(R * G * static_cast<std::size_t>(c.sgd_runs), nan);
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < sgd_[r].size() && k < G * static_cast<std::size_t>(c.sgd_runs); ++k)
        flat[r * G * static_cast<std::size_t>(c.sgd_runs) + k] = sgd_[r][k];
    rec.put_array("parameters/sgd_test_error", {R, G, static_cast<std::uint64_t>(c.sgd_runs)}, flat);
  }

  // Theory: ln(1/p*) from exact enumeration, else the p* Monte Carlo, else the counting bound.
  double ln_inv_p_star = nan;
  std::string p_star_source = "none";
  const double nan_value = std::numeric_limits<double>::quiet_NaN();
  const double exact = c.exact_ln_inverse_p_star ? c.exact_ln_inverse_p_star() : nan_value;
  const double counting = c.counting_ln_inverse_p_star ? c.counting_ln_inverse_p_star() : nan_value;
  if (std::isfinite(exact)) {
    ln_inv_p_star = exact;
    p_star_source = "exact enumeration";
  }
  if (c.p_star_guesses > 0) {
    const double hits = static_cast<double>(p_star_.survival.back());
    const double mc = hits > 0 ? std::log(static_cast<double>(p_star_.guesses) / hits) : nan;
    rec.set_attribute("p_star_mc_hits", hits);
    rec.set_attribute("p_star_mc_guesses", static_cast<double>(p_star_.guesses));
    rec.set_attribute("ln_inverse_p_star_mc", mc);
    if (!std::isfinite(ln_inv_p_star) && std::isfinite(mc)) {
      ln_inv_p_star = mc;
      p_star_source = "Monte Carlo over the whole domain";
    }
  }
  if (std::isfinite(counting)) {
    rec.set_attribute("ln_inverse_p_star_counting", counting);
    if (!std::isfinite(ln_inv_p_star)) {
      ln_inv_p_star = counting;
      p_star_source = "redundancy-counting bound (spec §2.4 (B))";
    }
  }
  rec.set_attribute("ln_inverse_p_star", ln_inv_p_star);
  rec.set_attribute("ln_inverse_p_star_source", p_star_source);
  if (std::isfinite(ln_inv_p_star)) {
    for (std::size_t i = 0; i < G; ++i) {
      const auto N = static_cast<std::int64_t>(c.n_grid[i]);
      if (N > 0) rec.append("theory/error_bound", N, static_cast<double>(N), std::min(1.0, (ln_inv_p_star + 1) / N));
      rec.append("theory/ln_inverse_p_star", N, static_cast<double>(N), ln_inv_p_star);
    }
  }
  rec.set_attribute("student", c.description);
  rec.set_attribute("streams", static_cast<double>(R));
  rec.set_attribute("accepted_per_n", static_cast<double>(A));
  rec.set_attribute("guesses_per_unit", static_cast<double>(c.guesses_per_unit));
  rec.set_attribute("total_guesses", static_cast<double>(total_guesses()));

  // Verdict (spec §7.3): the master inequalities and the Bayes identity, within the tolerance.
  std::vector<std::string> failures;
  const double tol = c.tolerance;
  for (std::size_t i = 0; i < G; ++i) {
    const double N = c.n_grid[i];
    if (!std::isfinite(curve.error_mean[i])) continue;
    // The Bayes identity E[p(S_{N+1})]/p(S_N) = 1 − ε̄_N (spec §2.4 (A)); one next point per
    // stream makes its estimate noisy, hence its own standard error in the tolerance.
    if (std::isfinite(curve.bayes_error[i]) &&
        std::fabs(curve.bayes_error[i] - curve.error_mean[i]) > tol + 3 * (curve.error_se[i] + curve.bayes_error_se[i]))
      failures.push_back("Bayes identity at N=" + fmt(N) + ": 1-C_{N+1}/C_N=" + fmt(curve.bayes_error[i]) +
                         " vs error " + fmt(curve.error_mean[i]));
    if (c.check_bounds && std::isfinite(ln_inv_p_star) && N > 0 &&
        N * (curve.error_mean[i] - 3 * curve.error_se[i]) > ln_inv_p_star + 1)
      failures.push_back("master inequality N*err <= ln(1/p*)+1 fails at N=" + fmt(N));
    if (c.check_bounds && std::isfinite(ln_inv_p_star) && curve.ln_inverse_acceptance[i] > ln_inv_p_star + 0.2 + 3 * curve.ln_inverse_acceptance_se[i])
      failures.push_back("E[ln 1/p(S_N)] = " + fmt(curve.ln_inverse_acceptance[i]) + " exceeds ln(1/p*) + 0.2 at N=" + fmt(N));
    if (curve.cumulative_error[i] > curve.ln_inverse_acceptance[i] + tol * std::max(1.0, curve.ln_inverse_acceptance[i]) + 3 * curve.ln_inverse_acceptance_se[i])
      failures.push_back("cumulative Gibbs bound sum err_n <= E[ln 1/p(S_N)] fails at N=" + fmt(N));
    if (i > 0 && std::isfinite(curve.error_mean[i - 1]) &&
        curve.error_mean[i] > curve.error_mean[i - 1] + tol + 3 * (curve.error_se[i] + curve.error_se[i - 1]))
      failures.push_back("test error increases from N=" + fmt(c.n_grid[i - 1]) + " to N=" + fmt(N));
  }
  std::size_t short_streams = 0;
  for (const auto& s : curve_) short_streams += s.kept.back().size() < A ? 1 : 0;
  std::ostringstream detail;
  detail << "err(N=" << c.n_grid.front() << ")=" << fmt(curve.error_mean.front()) << ", err(N=" << c.n_grid.back()
         << ")=" << fmt(curve.error_mean.back()) << ", E[ln 1/p(S_Nmax)]=" << fmt(curve.ln_inverse_acceptance.back())
         << ", ln(1/p*)=" << fmt(ln_inv_p_star) << " (" << p_star_source << ")";
  if (short_streams > 0) detail << "; " << short_streams << " streams hit max_guesses_per_stream before A samples at N_max";
  for (const auto& f : failures) detail << "; " << f;
  rec.set_attribute("verdict", failures.empty() ? "pass" : "fail");
  rec.set_attribute("verdict_detail", detail.str());
}

// ------------------------------------------------------------------ the task and the kind

class RandomInterpolatorTask : public PreparedTask {
 public:
  RandomInterpolatorTask(std::shared_ptr<const RandomInterpolatorConfig> config) : c_(std::move(config)) {}

  bool split_into_units() const override { return true; }
  std::unique_ptr<UnitMerger> merger() const override { return std::make_unique<InterpolatorMerger>(c_); }

  std::string run_unit(const std::string& unit_bytes) override {
    const Unit unit = decode_unit(unit_bytes);
    BlockResult b;
    switch (unit.type) {
      case UnitType::Curve: {
        if (unit.stream >= static_cast<std::uint32_t>(c_->streams)) throw TransportError("unit of an unknown stream");
        if (unit.first_open >= c_->n_grid.size()) throw TransportError("unit with an unknown grid index");
        const std::uint64_t g0 = unit.block * c_->guesses_per_unit;
        const std::span<const int> open(c_->n_grid.data() + unit.first_open, c_->n_grid.size() - unit.first_open);
        b = c_->sampler->run_block(static_cast<int>(unit.stream), g0, g0 + c_->guesses_per_unit, open,
                                   c_->accepted_per_n);
        b.kept.insert(b.kept.begin(), unit.first_open, {});  // the full lists: nothing kept
        break;
      }
      case UnitType::PStar: {
        const std::uint64_t g0 = unit.block * c_->guesses_per_unit;
        const std::uint64_t g1 = std::min(g0 + c_->guesses_per_unit, c_->p_star_guesses);
        const int full = c_->full_domain_points;
        b = c_->full_domain_sampler->run_block(0, g0, g1, std::span<const int>(&full, 1), 0);
        break;
      }
      case UnitType::Sgd:
        b.extra = c_->sgd_errors(static_cast<int>(unit.stream));
        break;
    }
    Writer w;
    encode_block(w, b);
    return w.take();
  }

  void run(Recorder&) override { throw Error("random_interpolator runs as units (split_into_units)"); }

  std::string summary() const override {
    std::ostringstream s;
    s << c_->description << ", N grid " << c_->n_grid.front() << ".." << c_->n_max << " (" << c_->n_grid.size()
      << " sizes), R=" << c_->streams << " streams, A=" << c_->accepted_per_n << ", units of "
      << c_->guesses_per_unit << " guesses";
    return s.str();
  }

 private:
  std::shared_ptr<const RandomInterpolatorConfig> c_;
};

// Streams of randomness (TaskContext): the guesses of stream r come from task_seed(kGuessStream +
// r) — so every task has its own guesses — and its data from experiment_seed(kDataStream + r), so
// every task of a sweep (e.g. over the student width) sees the same training streams.
constexpr std::uint64_t kGuessStream = 1000;
constexpr std::uint64_t kDataStream = 2000;
constexpr std::uint64_t kPStarStream = 999;

std::shared_ptr<const RandomInterpolatorConfig> make_random_interpolator_config(const pb::RandomInterpolatorSpec& spec,
                                                                               const TaskContext& context) {
  auto c = std::make_shared<RandomInterpolatorConfig>();
  if (spec.n_grid_size() == 0) throw SpecError("n_grid", "give at least one training-set size");
  for (int i = 0; i < spec.n_grid_size(); ++i) {
    if (spec.n_grid(i) < 0) throw SpecError("n_grid", "sizes must be >= 0 (got " + std::to_string(spec.n_grid(i)) + ")");
    if (i > 0 && spec.n_grid(i) <= spec.n_grid(i - 1)) throw SpecError("n_grid", "sizes must be strictly ascending");
    c->n_grid.push_back(spec.n_grid(i));
  }
  c->n_max = c->n_grid.back();
  if (c->n_max > 4096) throw SpecError("n_grid", "the largest size must be <= 4096 (got " + std::to_string(c->n_max) + ")");
  if (spec.accepted_per_n() < 1 || spec.accepted_per_n() > 100000)
    throw SpecError("accepted_per_n", "must be in [1, 100000] (got " + std::to_string(spec.accepted_per_n()) + ")");
  if (spec.streams() < 1 || spec.streams() > 100000)
    throw SpecError("streams", "must be in [1, 100000] (got " + std::to_string(spec.streams()) + ")");
  if (spec.guesses_per_unit() < 1024 || spec.guesses_per_unit() > (std::uint64_t{1} << 36))
    throw SpecError("guesses_per_unit", "must be in [1024, 2^36] (got " + std::to_string(spec.guesses_per_unit()) + ")");
  if (spec.max_guesses_per_stream() < 1) throw SpecError("max_guesses_per_stream", "must be >= 1");
  if (!(spec.tolerance() > 0 && spec.tolerance() < 1)) throw SpecError("tolerance", "must be in (0, 1)");
  // Every stream's data is drawn when a task is prepared (on each rank): keep it bounded.
  const double points = static_cast<double>(spec.streams()) * (c->n_max + std::max(0, spec.test_points()));
  if (points > 2e7)
    throw SpecError("streams", "streams x (N_max + test_points) = " + fmt(points) +
                                   " data points; at most 2e7 per task (split the streams over tasks)");
  c->accepted_per_n = spec.accepted_per_n();
  c->streams = spec.streams();
  c->guesses_per_unit = spec.guesses_per_unit();
  c->max_guesses_per_stream = spec.max_guesses_per_stream();
  c->tolerance = spec.tolerance();

  std::vector<std::uint64_t> data_seeds;
  std::vector<interp::StreamKey> guess_keys;
  for (int r = 0; r < c->streams; ++r) {
    data_seeds.push_back(context.experiment_seed(kDataStream + static_cast<std::uint64_t>(r)));
    guess_keys.push_back(interp::stream_key(context.task_seed(kGuessStream + static_cast<std::uint64_t>(r))));
  }

  if (spec.prior() == pb::RandomInterpolatorSpec::PRIOR_CONTINUOUS_RELU) {
    interp::ContinuousProblem p;
    if (spec.hidden_widths_size() > 0 || spec.depth() != 1)
      throw SpecError(spec.hidden_widths_size() > 0 ? "hidden_widths" : "depth",
                      "the continuous prior (Chiang et al.) has exactly one hidden layer: set width only");
    if (spec.has_q() || spec.levels_size() > 0 || spec.scaled_neurons())
      throw SpecError(spec.has_q() ? "q" : spec.levels_size() > 0 ? "levels" : "scaled_neurons",
                      "only the quantized prior has levels and scales");
    p.input_dim = spec.input_dim();
    p.width = spec.width();
    switch (spec.inputs()) {
      case pb::RandomInterpolatorSpec::INPUTS_BINARY: p.inputs = interp::ContinuousInputs::kBinary; break;
      case pb::RandomInterpolatorSpec::INPUTS_GAUSSIAN: p.inputs = interp::ContinuousInputs::kGaussian; break;
      case pb::RandomInterpolatorSpec::INPUTS_KINK: p.inputs = interp::ContinuousInputs::kKink; break;
    }
    if (p.inputs == interp::ContinuousInputs::kKink) {
      if (spec.has_teacher()) throw SpecError("teacher", "KINK data carry their own labels; remove the teacher");
    } else {
      if (!spec.teacher().has_majority())
        throw SpecError("teacher", "the continuous prior supports the majority teacher (teacher { majority: k })");
      p.majority = spec.teacher().majority();
    }
    p.with_replacement = spec.with_replacement();
    p.n_max = c->n_max;
    p.test_points = spec.test_points();
    p.data_seeds = data_seeds;
    p.guess_keys = guess_keys;
    p.sgd.runs = spec.sgd().runs();
    p.sgd.lr = spec.sgd().lr();
    p.sgd.epochs = spec.sgd().epochs();
    p.sgd.batch_size = spec.sgd().batch_size();
    p.sgd.init = spec.sgd().init() == pb::SgdBaseline::INIT_DEFAULT ? interp::SgdInit::kDefault : interp::SgdInit::kUniform;
    p.sgd.n_grid = c->n_grid;
    interp::validate(p);
    c->sampler = interp::make_continuous_sampler(p);
    c->sgd_runs = p.sgd.runs;
    if (c->sgd_runs > 0) {
      auto problem = std::make_shared<const interp::ContinuousProblem>(p);
      const std::uint64_t sgd_seed = context.task_seed(3000);
      c->sgd_errors = [problem, sgd_seed](int stream) {
        const interp::ContinuousData data = interp::make_continuous_data(*problem, stream);
        std::vector<double> errors;
        for (int n : problem->sgd.n_grid) {
          const auto runs = interp::sgd_runs(*problem, data, n,
                                             derive_seed(sgd_seed, static_cast<std::uint64_t>(stream),
                                                         static_cast<std::uint64_t>(n), 0));
          for (const auto& run : runs) errors.push_back(run.test_error);
        }
        return errors;
      };
    }
    if (spec.p_star_guesses() > 0) throw SpecError("p_star_guesses", "p* applies to the quantized prior only");
    std::ostringstream d;
    d << "continuous U[-1,1] ReLU MLP " << p.input_dim << "-" << p.width << "-2 (argmax), "
      << (p.inputs == interp::ContinuousInputs::kKink ? std::string("kink data")
                                                       : "majority-" + std::to_string(p.majority) + " teacher");
    if (c->sgd_runs > 0) d << ", SGD baseline " << c->sgd_runs << " runs lr " << fmt(p.sgd.lr);
    c->description = d.str();
    return c;
  }

  // ---- quantized prior (Buzaglo et al.)
  if (spec.has_sgd()) throw SpecError("sgd", "the SGD baseline belongs to the continuous prior");
  interp::QuantizedProblem p;
  p.input_dim = spec.input_dim();
  if (spec.hidden_widths_size() > 0) {
    p.hidden_widths.assign(spec.hidden_widths().begin(), spec.hidden_widths().end());
    p.widths_field = "hidden_widths";
  } else {
    if (spec.depth() < 1 || spec.depth() > 16) throw SpecError("depth", "must be in [1, 16] (got " + std::to_string(spec.depth()) + ")");
    p.hidden_widths.assign(static_cast<std::size_t>(spec.depth()), spec.width());
    p.widths_field = "width";
  }
  p.q = spec.q();
  p.levels.assign(spec.levels().begin(), spec.levels().end());
  p.scaled_neurons = spec.scaled_neurons();
  p.tie_positive = spec.tie_rule() == pb::RandomInterpolatorSpec::TIE_POSITIVE;
  switch (spec.inputs()) {
    case pb::RandomInterpolatorSpec::INPUTS_BINARY: p.inputs = interp::QuantizedInputs::kBinary; break;
    case pb::RandomInterpolatorSpec::INPUTS_GAUSSIAN: p.inputs = interp::QuantizedInputs::kGaussian; break;
    case pb::RandomInterpolatorSpec::INPUTS_KINK:
      throw SpecError("inputs", "INPUTS_KINK belongs to the continuous prior (PRIOR_CONTINUOUS_RELU)");
  }
  const auto& t = spec.teacher();
  switch (t.kind_case()) {
    case pb::InterpolatorTeacher::kMajority:
      p.teacher.kind = interp::TeacherKind::kMajority;
      p.teacher.majority = t.majority();
      break;
    case pb::InterpolatorTeacher::kRandomNetwork:
      p.teacher.kind = interp::TeacherKind::kRandomNetwork;
      p.teacher.random_hidden_widths.assign(t.random_network().hidden_widths().begin(),
                                            t.random_network().hidden_widths().end());
      p.teacher.random_seed = t.random_network().seed() != 0 ? t.random_network().seed() : context.experiment_seed(4000);
      break;
    case pb::InterpolatorTeacher::kFile: {
      p.teacher.kind = interp::TeacherKind::kNetwork;
      const std::string path = context.resolve_path(t.file());
      p.teacher.network = interp::load_teacher_file(path, p.tie_positive);
      p.teacher.network_source = path;
      break;
    }
    case pb::InterpolatorTeacher::KIND_NOT_SET:
      throw SpecError("teacher", "give a teacher: majority, random_network or file");
  }
  p.with_replacement = spec.with_replacement();
  p.test_points = spec.test_points();
  p.data_seeds = data_seeds;
  p.guess_keys = guess_keys;
  p.n_max = c->n_max;
  interp::validate(p);
  c->sampler = interp::make_quantized_sampler(p);
  c->check_bounds = true;
  auto problem = std::make_shared<const interp::QuantizedProblem>(p);
  c->exact_ln_inverse_p_star = [problem] {
    const auto exact = interp::exact_p_star(*problem);
    return exact && *exact > 0 ? -std::log(*exact) : std::numeric_limits<double>::quiet_NaN();
  };
  c->counting_ln_inverse_p_star = [problem] { return interp::counting_bound_neg_ln_p_star(*problem); };
  if (spec.p_star_guesses() > 0) {
    if (p.inputs != interp::QuantizedInputs::kBinary || p.input_dim > 16)
      throw SpecError("p_star_guesses", "the p* Monte Carlo needs binary inputs with input_dim <= 16");
    interp::QuantizedProblem full = p;
    full.guess_keys = {interp::stream_key(context.task_seed(kPStarStream))};
    c->full_domain_sampler = interp::make_full_domain_sampler(full);
    c->full_domain_points = 1 << p.input_dim;
    c->p_star_guesses = spec.p_star_guesses();
  }
  std::ostringstream d;
  d << (p.scaled_neurons ? "SFC " : "FC ") << p.input_dim;
  for (int w : p.hidden_widths) d << "-" << w;
  d << "-1 threshold net, Q=" << p.q << " levels {";
  const auto levels = interp::resolved_levels(p);
  for (std::size_t i = 0; i < levels.size(); ++i) d << (i ? "," : "") << fmt(levels[i]);
  d << "}, sgn(0)=" << (p.tie_positive ? "+1" : "-1") << ", teacher "
    << (t.has_majority() ? "majority-" + std::to_string(t.majority())
                         : t.has_file() ? "file " + t.file() : std::string("random network"))
    << (p.inputs == interp::QuantizedInputs::kGaussian ? ", Gaussian inputs" : ", binary inputs");
  c->description = d.str();
  return c;
}

class RandomInterpolatorKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "random_interpolator"; }
  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& spec = dynamic_cast<const pb::RandomInterpolatorSpec&>(message);
    return std::make_unique<RandomInterpolatorTask>(make_random_interpolator_config(spec, context));
  }
};

GDLAB_REGISTER_KIND(RandomInterpolatorKind);

}  // namespace
}  // namespace gdlab
