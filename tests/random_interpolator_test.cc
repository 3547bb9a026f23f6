// The experiment kind `random_interpolator` (shared/papers/interpolators.md): its units and merger
// (the result must not depend on the order in which units come back, nor on a checkpoint and
// restart in between), the prefix trick against direct per-N sampling (same distribution), the
// continuous prior's G&C-vs-SGD record, and bad specs. The numerics and the paper's §7.3 numbers
// are tested in interpolator_test.cc, interpolator_continuous_test.cc, interpolator_fast_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "tests/kind_test_util.h"
#include "worker/numerics/interpolator_quantized.h"
#include "worker/numerics/philox.h"

namespace gdlab {
namespace {

using test_util::MemoryRecorder;

const ExperimentKind& kind() { return test_util::find_kind("random_interpolator"); }

pb::RandomInterpolatorSpec small_spec() {
  pb::RandomInterpolatorSpec s;
  s.set_input_dim(8);
  s.set_width(1);
  s.mutable_teacher()->set_majority(3);
  for (int n : {0, 4, 8, 16, 24, 32}) s.add_n_grid(n);
  s.set_accepted_per_n(10);
  s.set_streams(6);
  s.set_guesses_per_unit(4096);  // small units: a stream spans many of them
  s.set_p_star_guesses(50000);
  return s;
}

TaskContext context() { return TaskContext{11, 0, 3, ".", {}}; }

// Runs every unit of `task` through its merger, delivering results in an order chosen by `rng`
// (0: hand-out order), with up to `in_flight` units out at once; optionally checkpoints and
// restarts the merger (a fresh one restored from the checkpoint) after `restart_after` merges.
MemoryRecorder run_units(const PreparedTask& task_const, unsigned seed, int in_flight, int restart_after = -1) {
  auto& task = const_cast<PreparedTask&>(task_const);
  MemoryRecorder rec;
  std::unique_ptr<UnitMerger> merger = task.merger();
  std::mt19937 rng(seed);
  std::deque<std::pair<std::string, std::string>> out;  // (unit, result)
  int merged = 0;
  while (!merger->complete()) {
    while (static_cast<int>(out.size()) < in_flight) {
      auto unit = merger->next_unit();
      if (!unit) break;
      out.emplace_back(*unit, task.run_unit(*unit));
    }
    EXPECT_FALSE(out.empty()) << "the merger is not complete but hands out nothing";
    if (out.empty()) break;
    std::size_t pick = seed == 0 ? 0 : rng() % out.size();
    merger->merge(out[pick].first, out[pick].second, rec);
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(pick));
    if (++merged == restart_after) {
      const std::string state = merger->checkpoint();
      EXPECT_FALSE(state.empty());
      merger = task.merger();
      merger->restore(state);
      out.clear();          // results out at the checkpoint are lost with the old coordinator,
      rec = MemoryRecorder();  // and --resume starts the task's group afresh
    }
  }
  merger->finish(rec);
  EXPECT_EQ(merger->next_unit(), std::nullopt);
  return rec;
}

void expect_same_results(const MemoryRecorder& a, const MemoryRecorder& b) {
  EXPECT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [path, values] : a.arrays) {
    ASSERT_TRUE(b.arrays.count(path)) << path;
    const auto& other = b.arrays.at(path);
    ASSERT_EQ(values.size(), other.size()) << path;
    for (std::size_t i = 0; i < values.size(); ++i)
      EXPECT_TRUE(values[i] == other[i] || (std::isnan(values[i]) && std::isnan(other[i])))
          << path << "[" << i << "]: " << values[i] << " vs " << other[i];
  }
  for (const auto& [path, series] : a.series) {
    if (path == "progress") continue;  // timing
    ASSERT_TRUE(b.series.count(path)) << path;
    EXPECT_EQ(series.step, b.series.at(path).step) << path;
    const auto& va = series.value;
    const auto& vb = b.series.at(path).value;
    ASSERT_EQ(va.size(), vb.size()) << path;
    for (std::size_t i = 0; i < va.size(); ++i)
      for (std::size_t j = 0; j < va[i].size(); ++j)
        EXPECT_TRUE(va[i][j] == vb[i][j] || (std::isnan(va[i][j]) && std::isnan(vb[i][j]))) << path;
  }
  EXPECT_EQ(a.text_attrs, b.text_attrs);
  EXPECT_EQ(a.number_attrs.size(), b.number_attrs.size());
  for (const auto& [name, v] : a.number_attrs)
    EXPECT_TRUE(v == b.number_attrs.at(name) || (std::isnan(v) && std::isnan(b.number_attrs.at(name)))) << name;
}

TEST(RandomInterpolatorKind, SplitsIntoUnits) {
  auto task = kind().prepare(small_spec(), context());
  EXPECT_TRUE(task->split_into_units());
  EXPECT_THROW({
    MemoryRecorder rec;
    task->run(rec);
  }, Error);
}

// The merge is order-independent: any arrival order and any number of units in flight (what
// different rank counts and schedules produce) give bitwise the same records.
TEST(RandomInterpolatorKind, ResultIndependentOfUnitOrder) {
  auto task = kind().prepare(small_spec(), context());
  const MemoryRecorder reference = run_units(*task, 0, 1);
  for (auto [seed, in_flight] : {std::pair{1u, 3}, std::pair{2u, 7}, std::pair{3u, 20}}) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", in flight " + std::to_string(in_flight));
    expect_same_results(reference, run_units(*task, seed, in_flight));
  }
  // Streams stop at the end of the block in which N_max got A samples: counts are exact.
  const auto& kept = reference.arrays.at("parameters/accepted_count");
  for (std::size_t r = 0; r < 6; ++r) EXPECT_EQ(kept[r * 6 + 5], 10.0) << "stream " << r;
  const auto& guesses = reference.arrays.at("parameters/guesses");
  for (double g : guesses) EXPECT_EQ(std::fmod(g, 4096.0), 0.0);
  EXPECT_EQ(reference.number_attrs.at("p_star_mc_guesses"), 50000.0);
}

// A checkpoint taken mid-run and restored into a fresh merger (what --resume does) continues to
// the same result, even though the units that were out at the checkpoint are lost.
TEST(RandomInterpolatorKind, CheckpointRestoreGivesSameResult) {
  auto task = kind().prepare(small_spec(), context());
  const MemoryRecorder reference = run_units(*task, 0, 1);
  for (int after : {1, 5, 17}) {
    SCOPED_TRACE("restart after " + std::to_string(after) + " merges");
    expect_same_results(reference, run_units(*task, 5, 4, after));
  }
  // A checkpoint of another shape is refused clearly.
  auto other_spec = small_spec();
  other_spec.set_streams(3);
  auto other = kind().prepare(other_spec, context());
  const std::string state = other->merger()->checkpoint();
  EXPECT_THROW(task->merger()->restore(state), StoreError);
  EXPECT_THROW(task->merger()->restore("garbage"), Error);
}

// Truncated or corrupt unit messages are errors, never silent garbage.
TEST(RandomInterpolatorKind, MalformedUnitsRejected) {
  auto task = kind().prepare(small_spec(), context());
  auto merger = task->merger();
  const std::string unit = *merger->next_unit();
  const std::string result = task->run_unit(unit);
  MemoryRecorder rec;
  EXPECT_THROW(task->run_unit(unit.substr(0, unit.size() - 1)), TransportError);
  EXPECT_THROW(merger->merge(unit, result.substr(0, result.size() / 2), rec), TransportError);
  EXPECT_THROW(merger->merge(unit, result + "x", rec), TransportError);
  std::string bad_type = unit;
  bad_type[0] = 9;
  EXPECT_THROW(task->run_unit(bad_type), TransportError);
}

// The prefix trick (one fixed point order, kept at every N with T >= N) samples the same
// posterior as direct G&C on S_N alone: compare the test-error means and the acceptance rates of
// both at N = 12 and 20 over independent guess keys, on the same training streams.
TEST(RandomInterpolatorKind, PrefixTrickMatchesDirectSampling) {
  interp::QuantizedProblem p;
  p.input_dim = 8;
  p.hidden_widths = {1};
  p.teacher.kind = interp::TeacherKind::kMajority;
  p.teacher.majority = 3;
  p.n_max = 32;
  const int streams = 60, keep = 20;
  for (int r = 0; r < streams; ++r) {
    p.data_seeds.push_back(derive_seed(5, 1, 2, static_cast<std::uint64_t>(r)));
    p.guess_keys.push_back(interp::stream_key(derive_seed(5, 1, 3, static_cast<std::uint64_t>(r))));
  }
  auto prefix = interp::make_quantized_sampler(p);
  // Direct sampling: a separate problem per N whose stream holds exactly S_N (the same first N
  // points: n_max = N draws the same prefix), with its own guess keys.
  for (int N : {12, 20}) {
    interp::QuantizedProblem q = p;
    q.n_max = N;
    for (int r = 0; r < streams; ++r)
      q.guess_keys[static_cast<std::size_t>(r)] = interp::stream_key(derive_seed(6, 1, 3, static_cast<std::uint64_t>(r)));
    auto direct = interp::make_quantized_sampler(q);
    const std::vector<int> grid_prefix = {N, 32}, grid_direct = {N};
    std::vector<double> mean_prefix, mean_direct, p_prefix, p_direct;
    for (int r = 0; r < streams; ++r) {
      const auto a = interp::run_stream(*prefix, r, grid_prefix, keep, 1 << 16, 1u << 26);
      const auto b = interp::run_stream(*direct, r, grid_direct, keep, 1 << 16, 1u << 26);
      ASSERT_EQ(a.kept[0].size(), static_cast<std::size_t>(keep));
      ASSERT_EQ(b.kept[0].size(), static_cast<std::size_t>(keep));
      double sa = 0, sb = 0;
      for (const auto& k : a.kept[0]) sa += k.test_error;
      for (const auto& k : b.kept[0]) sb += k.test_error;
      mean_prefix.push_back(sa / keep);
      mean_direct.push_back(sb / keep);
      p_prefix.push_back(static_cast<double>(interp::survivors(a.survival)[static_cast<std::size_t>(N)]) /
                         static_cast<double>(a.guesses));
      p_direct.push_back(static_cast<double>(interp::survivors(b.survival)[static_cast<std::size_t>(N)]) /
                         static_cast<double>(b.guesses));
    }
    // Paired over streams (each pair shares S_N): mean differences within 4 standard errors.
    auto paired = [&](const std::vector<double>& x, const std::vector<double>& y, const char* what) {
      double md = 0, sd = 0;
      for (int r = 0; r < streams; ++r) md += x[r] - y[r];
      md /= streams;
      for (int r = 0; r < streams; ++r) sd += std::pow(x[r] - y[r] - md, 2);
      const double se = std::sqrt(sd / (streams - 1) / streams);
      EXPECT_LE(std::fabs(md), 4 * se) << "N=" << N << ": prefix - direct " << what << " = " << md << " (SE " << se << ")";
    };
    paired(mean_prefix, mean_direct, "mean test error");
    paired(p_prefix, p_direct, "acceptance rate p(S_N)");
    // And the statistic is not vacuous: at N = 20 the error is far below the prior's 0.5.
    EXPECT_LT(std::accumulate(mean_direct.begin(), mean_direct.end(), 0.0) / streams, N == 12 ? 0.33 : 0.16);
  }
}

// The continuous prior records G&C and SGD test errors side by side.
TEST(RandomInterpolatorKind, ContinuousPriorWithSgdBaseline) {
  pb::RandomInterpolatorSpec s;
  s.set_prior(pb::RandomInterpolatorSpec::PRIOR_CONTINUOUS_RELU);
  s.set_inputs(pb::RandomInterpolatorSpec::INPUTS_KINK);
  s.set_input_dim(2);
  s.set_width(4);
  for (int n : {0, 4, 11}) s.add_n_grid(n);
  s.set_accepted_per_n(10);
  s.set_streams(4);
  s.set_test_points(1000);
  s.set_guesses_per_unit(8192);
  s.mutable_sgd()->set_runs(2);
  s.mutable_sgd()->set_epochs(50);
  auto task = kind().prepare(s, context());
  const MemoryRecorder rec = run_units(*task, 4, 5);
  ASSERT_TRUE(rec.series.count("observables/sgd_test_error"));
  ASSERT_TRUE(rec.series.count("observables/test_error"));
  const auto gc = rec.values("observables/test_error");
  const auto sgd = rec.values("observables/sgd_test_error");
  ASSERT_EQ(gc.size(), 3u);
  ASSERT_EQ(sgd.size(), 3u);
  EXPECT_NEAR(gc[0], 0.5, 0.1);   // the prior knows nothing
  EXPECT_LT(gc[2], gc[0] - 0.1);  // 11 points teach it
  for (double e : sgd) EXPECT_TRUE(e >= 0 && e <= 1) << e;
  EXPECT_EQ(rec.arrays.at("parameters/sgd_test_error").size(), 4u * 3u * 2u);
}

// Bad specs name their field.
TEST(RandomInterpolatorKind, BadSpecsNameTheField) {
  auto field_of = [](const pb::RandomInterpolatorSpec& s) {
    return test_util::spec_error_field(kind(), s, context(), "(no error)");
  };
  auto s = small_spec();
  s.set_q(1);
  EXPECT_EQ(field_of(s), "q");
  s = small_spec();
  s.set_width(0);
  EXPECT_EQ(field_of(s), "width");
  s = small_spec();
  s.clear_width();
  s.add_hidden_widths(3);
  s.add_hidden_widths(0);
  EXPECT_EQ(field_of(s), "hidden_widths");
  s = small_spec();  // 2^4 = 16 inputs cannot give 32 distinct training points
  s.set_input_dim(4);
  s.set_with_replacement(false);
  EXPECT_EQ(field_of(s), "n_grid");
  s = small_spec();  // a teacher wider than the student
  s.mutable_teacher()->mutable_random_network()->add_hidden_widths(2);
  EXPECT_EQ(field_of(s), "teacher.random_network.hidden_widths");
  s = small_spec();
  s.mutable_teacher()->set_majority(4);
  EXPECT_EQ(field_of(s), "teacher.majority");
  s = small_spec();
  s.clear_n_grid();
  s.add_n_grid(8);
  s.add_n_grid(4);
  EXPECT_EQ(field_of(s), "n_grid");
  s = small_spec();
  s.set_streams(0);
  EXPECT_EQ(field_of(s), "streams");
  s = small_spec();
  s.set_guesses_per_unit(10);
  EXPECT_EQ(field_of(s), "guesses_per_unit");
  s = small_spec();
  s.add_levels(-1);
  s.add_levels(1);
  s.add_levels(0);
  EXPECT_EQ(field_of(s), "levels");
  s = small_spec();
  s.clear_teacher();
  EXPECT_EQ(field_of(s), "teacher");
  s = small_spec();
  s.set_prior(pb::RandomInterpolatorSpec::PRIOR_CONTINUOUS_RELU);
  s.set_q(3);
  EXPECT_EQ(field_of(s), "q");
  s = small_spec();
  s.mutable_sgd()->set_runs(1);
  EXPECT_EQ(field_of(s), "sgd");
  s = small_spec();
  s.mutable_teacher()->set_file("no/such/teacher.txt");
  try {
    kind().prepare(s, context());
    ADD_FAILURE() << "a missing teacher file was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("teacher.txt"), std::string::npos) << e.what();
  }
  // In a campaign file the error carries file:line and the field path.
  const std::string msg = test_util::campaign_error(R"(schema_version: 1 name: "x"
experiments { name: "e" random_interpolator { q: 1 n_grid: [0, 4] teacher { majority: 3 } } })");
  EXPECT_NE(msg.find("spec.textproto:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("random_interpolator.q"), std::string::npos) << msg;
}

}  // namespace
}  // namespace gdlab
