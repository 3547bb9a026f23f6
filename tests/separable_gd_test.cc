// Tests of the experiment kind `separable_gd` as a kind (its numerics and the paper checks are in
// separable_numerics_test.cc and separable_paper_test.cc) and of the data handling it shares with
// sgd_separable and loss_tails (worker/kinds/separable_common.h):
//
//  * a dataset source knows its shape without building generated data, reads and checks a CSV
//    file when constructed, bounds planted2's size, and shares built data through the cache;
//  * validation (parse_campaign, i.e. `gdlab validate` and the coordinator's start) builds no
//    generated data and solves no max margin when the step-size rule makes the Lemma 1 check
//    scale-free, builds a data set once for a sweep over other fields, and solves the max margin
//    of read data once (their separability is checked at validation);
//  * that shortcut decides exactly as the check computed with the data, on a grid of step sizes
//    around the bound;
//  * run() records the numbers of the direct computation (σ_max, ŵ, w̃, η), bitwise, whether its
//    data come from the cache or not;
//  * every field error of a campaign is still reported, the data-dependent ones included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/campaign.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "tests/kind_test_util.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/separable.h"

namespace gdlab {
namespace {

using separable::MatrixXd;
using separable::VectorXd;
using test_util::MemoryRecorder;

const ExperimentKind& kind() { return test_util::find_kind("separable_gd"); }

TaskContext context() {
  TaskContext c;
  c.campaign_seed = 2018;
  return c;
}

// A CSV file of separable points under the temp directory (the Fig. 1 support vectors, the
// given extra point and its mirror image).
std::string write_csv(const std::string& name, double extra_x, double extra_y) {
  const auto dir = std::filesystem::temp_directory_path() / "gdlab_separable_gd_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream out(path);
  out << "0.5,1.5,1\n1.5,0.5,1\n-0.5,-1.5,-1\n-1.5,-0.5,-1\n";
  out << extra_x << "," << extra_y << ",1\n" << -extra_x << "," << -extra_y << ",-1\n";
  return path.string();
}

pb::SeparableGdSpec planted2_spec(int d, int n, std::uint64_t seed, double lr,
                                  pb::SeparableGdSpec::LrRule rule = pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ) {
  pb::SeparableGdSpec s;
  s.set_lr(lr);
  s.set_lr_rule(rule);
  s.set_steps(2000);
  auto* p = s.mutable_dataset()->mutable_planted2();
  p->set_d(d);
  p->set_n(n);
  p->set_seed(seed);
  return s;
}

// a and b hold the same doubles bit for bit (NaN included, which == would not accept).
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Two recorders hold the same records, bit for bit.
void expect_same_records(const MemoryRecorder& a, const MemoryRecorder& b) {
  EXPECT_EQ(a.text_attrs, b.text_attrs);
  ASSERT_EQ(a.number_attrs.size(), b.number_attrs.size());
  for (const auto& [name, value] : a.number_attrs)
    EXPECT_TRUE(same_bits({value}, {b.number_attrs.at(name)})) << name;
  ASSERT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [path, values] : a.arrays) EXPECT_TRUE(same_bits(values, b.arrays.at(path))) << path;
  ASSERT_EQ(a.series.size(), b.series.size());
  for (const auto& [path, series] : a.series) {
    const auto& other = b.series.at(path);
    EXPECT_EQ(series.step, other.step) << path;
    EXPECT_TRUE(same_bits(series.time, other.time)) << path;
    ASSERT_EQ(series.value.size(), other.value.size()) << path;
    for (std::size_t i = 0; i < series.value.size(); ++i)
      EXPECT_TRUE(same_bits(series.value[i], other.value[i])) << path << " sample " << i;
  }
}

// A campaign of one separable_gd experiment with a sweep line (may be empty) and a kind body.
std::string campaign(const std::string& sweep, const std::string& body) {
  return "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n" + sweep + "  separable_gd {\n" + body +
         "  }\n}\n";
}

// ---- The dataset source and the cache ---------------------------------------------------------------

TEST(SeparableDataSource, ShapeIsKnownWithoutBuildingTheData) {
  pb::SeparableDataset fig1;
  fig1.mutable_fig1_replica()->set_seed(424201);
  pb::SeparableDataset planted;
  auto* p = planted.mutable_planted2();
  p->set_d(7);
  p->set_n(33);
  p->set_seed(424202);
  for (const auto* ds : {&fig1, &planted}) {
    std::optional<SeparableDataSource> source;
    const auto checked = separable_work_of([&] { source.emplace(*ds, context(), 1); });
    EXPECT_EQ(checked.datasets_built, 0u);
    const auto built = separable_work_of([&] { (void)source->data(); });
    EXPECT_EQ(built.datasets_built, 1u);
    EXPECT_EQ(built.max_margin_solves, 0u);
    EXPECT_TRUE(source->generated());
    EXPECT_EQ(source->data().Xt().rows(), source->rows());
    EXPECT_EQ(source->data().Xt().cols(), source->cols());
  }
}

TEST(SeparableDataSource, SameDataAreBuiltOnceAndShared) {
  pb::SeparableDataset ds;
  auto* p = ds.mutable_planted2();
  p->set_d(4);
  p->set_n(20);
  p->set_seed(424203);
  const SeparableDataSource a(ds, context(), 1);
  const SeparableDataSource b(ds, context(), 1);
  EXPECT_EQ(separable_work_of([&] { (void)a.data(); }).datasets_built, 1u);
  EXPECT_EQ(separable_work_of([&] { (void)b.data(); }).datasets_built, 0u);
  EXPECT_EQ(&a.data(), &b.data());
  // Its max margin is solved once for both, and is the direct solution.
  EXPECT_EQ(separable_work_of([&] { (void)a.data().max_margin(); }).max_margin_solves, 1u);
  EXPECT_EQ(separable_work_of([&] { (void)b.data().max_margin(); }).max_margin_solves, 0u);
  const MatrixXd Xt = separable::make_planted2(4, 20, 424203).data.absorbed();
  EXPECT_EQ(b.data().max_margin().w_hat, separable::solve_max_margin(Xt).w_hat);
  EXPECT_EQ(b.data().sigma_max(), separable::sigma_max(Xt));
  // Other points, other data.
  p->set_seed(424204);
  const SeparableDataSource c(ds, context(), 1);
  EXPECT_EQ(separable_work_of([&] { (void)c.data(); }).datasets_built, 1u);
  EXPECT_NE(&c.data(), &a.data());
}

TEST(SeparableDataSource, CsvIsReadAndCheckedWhenConstructed) {
  pb::SeparableDataset ds;
  ds.mutable_csv()->set_path(write_csv("shape.csv", 2.0, 2.5));
  const SeparableDataSource source(ds, context(), 1);
  EXPECT_FALSE(source.generated());
  EXPECT_EQ(source.rows(), 6);
  EXPECT_EQ(source.cols(), 2);
  ds.mutable_csv()->set_path(write_csv("shape.csv", 2.0, 2.5) + ".missing");
  try {
    SeparableDataSource missing(ds, context(), 1);
    FAIL() << "no error";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), "dataset.csv.path");
  }
  // The same points from another file are the same data (the cache compares contents).
  pb::SeparableDataset copy;
  copy.mutable_csv()->set_path(write_csv("shape_copy.csv", 2.0, 2.5));
  const SeparableDataSource again(copy, context(), 1);
  EXPECT_EQ(&source.data(), &again.data());
}

TEST(SeparableDataSource, Planted2SizeIsBoundedButResearchSizesPass) {
  pb::SeparableDataset ds;
  auto* p = ds.mutable_planted2();
  p->set_d(10000);
  p->set_n(10'000'000);  // 1e11 values: 800 GB
  try {
    SeparableDataSource absurd(ds, context(), 1);
    FAIL() << "no error";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), "dataset.planted2.n");
    EXPECT_NE(std::string(e.what()).find("n*d = 1e+11 exceeds 1e+08"), std::string::npos) << e.what();
  }
  // Large but legal sizes are checked without being built.
  for (const auto& [d, n] : {std::pair{1000, 100'000}, std::pair{10, 10'000'000}, std::pair{10000, 10000}}) {
    p->set_d(d);
    p->set_n(n);
    const auto work = separable_work_of([&] {
      const SeparableDataSource big(ds, context(), 1);
      EXPECT_EQ(big.rows(), n);
      EXPECT_EQ(big.cols(), d);
    });
    EXPECT_EQ(work.datasets_built, 0u) << d << "x" << n;
  }
}

// ---- Validation -----------------------------------------------------------------------------------

// The spec that stopped the spec fuzzer (docs/fuzzing.md): 44 tasks, one planted2 data set each.
TEST(SeparableGdValidation, SeedSweepBuildsNoDataAndSolvesNoMaxMargin) {
  std::string seeds;
  for (int i = 1; i <= 44; ++i) seeds += (i > 1 ? ", " : "") + std::to_string(i);
  const std::string text =
      campaign("  sweep { field: \"dataset.planted2.seed\" numbers: [" + seeds + "] }\n",
               "    lr: 1 lr_rule: LR_OVER_SIGMA_MAX_SQ steps: 2000000 dataset { planted2 { d: 50 n: 140 } }\n");
  Campaign c;
  const auto work = separable_work_of([&] { c = parse_campaign(text, "spec.textproto", ""); });
  ASSERT_EQ(c.tasks.size(), 44u);
  EXPECT_EQ(work.datasets_built, 0u);
  EXPECT_EQ(work.max_margin_solves, 0u);
  EXPECT_EQ(c.tasks[0].summary, "N=140 d=50 logistic eta=1/sigma_max^2 T=2000000");
}

TEST(SeparableGdValidation, LargePlanted2ValidatesWithoutBeingBuilt) {
  const std::string text =
      campaign("", "    lr: 4 lr_rule: LR_OVER_SIGMA_MAX_SQ steps: 10 dataset { planted2 { d: 2000 n: 50000 } }\n");
  const auto work = separable_work_of([&] { EXPECT_EQ(test_util::campaign_error(text), ""); });
  EXPECT_EQ(work.datasets_built, 0u);
}

// The input that stopped the first spec fuzz run after the fix: the seed sweep with lr = 81 and
// N = 1400. Every task fails Lemma 1 whatever its data, and says so without building them.
TEST(SeparableGdValidation, ScaleFreeStepErrorNeedsNoData) {
  std::string seeds;
  for (int i = 1; i <= 44; ++i) seeds += (i > 1 ? ", " : "") + std::to_string(i);
  const std::string text =
      campaign("  sweep { field: \"dataset.planted2.seed\" numbers: [" + seeds + "] }\n",
               "    lr: 81 lr_rule: LR_OVER_SIGMA_MAX_SQ steps: 2000000 dataset { planted2 { d: 50 n: 1400 } }\n");
  std::string e;
  const auto work = separable_work_of([&] { e = test_util::campaign_error(text); });
  EXPECT_EQ(work.datasets_built, 0u);
  EXPECT_NE(e.find("spec.textproto:7:5: experiments[0].separable_gd.lr: step size eta=81/sigma_max^2 is not below "
                   "2/(beta sigma_max^2): lr must be below 2/beta=8"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("[sweep point dataset.planted2.seed=44]"), std::string::npos) << e;
  // With the mean loss the bound is on lr/N: 81 < 8·1400 holds.
  const std::string mean = campaign(
      "", "    lr: 81 lr_rule: LR_OVER_SIGMA_MAX_SQ mean_loss: true steps: 10 dataset { planted2 { d: 50 n: 1400 } }\n");
  EXPECT_EQ(test_util::campaign_error(mean), "");
}

// An absolute step on planted2 data too large to build at validation: the Lemma 1 check, which
// needs σ_max of the data, is made when the task runs, with the same error.
TEST(SeparableGdValidation, StepOnLargeDataIsCheckedWhenTheTaskRuns) {
  pb::SeparableGdSpec s = planted2_spec(20, 100, 424210, 1.0, pb::SeparableGdSpec::LR_ABSOLUTE);
  ASSERT_GT(100.0 * 20 * 20, kValidationBuildWork);
  std::unique_ptr<PreparedTask> task;
  EXPECT_EQ(separable_work_of([&] { task = kind().prepare(s, context()); }).datasets_built, 0u);
  MemoryRecorder rec;
  try {
    task->run(rec);
    FAIL() << "no error";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), "lr");
    EXPECT_NE(std::string(e.what()).find("step size eta=1 is not below 2/(beta sigma_max^2)="), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(rec.arrays.empty());  // nothing recorded before the check
  // The same spec on data small enough to build is rejected by validation.
  s.mutable_dataset()->mutable_planted2()->set_d(3);
  s.mutable_dataset()->mutable_planted2()->set_n(9);
  EXPECT_EQ(test_util::spec_error_field(kind(), s, context(), ""), "lr");
}

TEST(SeparableGdValidation, StepOnTheDataScaleBuildsTheDataOncePerSweep) {
  // An absolute step is checked against 2/(β σ_max²) of the data: built once for the sweep.
  const std::string text =
      campaign("  sweep { field: \"lr\" numbers: [0.001, 0.002, 0.004] }\n",
               "    steps: 10 dataset { planted2 { d: 6 n: 30 seed: 424205 } }\n");
  const auto work = separable_work_of([&] { EXPECT_EQ(test_util::campaign_error(text), ""); });
  EXPECT_EQ(work.datasets_built, 1u);
  EXPECT_EQ(work.max_margin_solves, 0u);
}

TEST(SeparableGdValidation, ReadDataAreCheckedForSeparabilityOncePerSweep) {
  const std::string path = write_csv("sweep.csv", 2.25, 2.75);
  const std::string text = campaign("  sweep { field: \"lr\" numbers: [0.01, 0.02, 0.05] }\n",
                                    "    steps: 10 dataset { csv { path: \"" + path + "\" } }\n");
  const auto work = separable_work_of([&] { EXPECT_EQ(test_util::campaign_error(text), ""); });
  EXPECT_EQ(work.datasets_built, 1u);
  EXPECT_EQ(work.max_margin_solves, 1u);
}

TEST(SeparableGdValidation, EveryFieldErrorIsReported) {
  const auto dir = std::filesystem::temp_directory_path() / "gdlab_separable_gd_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "xor.csv") << "1,1,1\n-1,-1,1\n1,-1,-1\n-1,1,-1\n";
  const std::string text =
      "schema_version: 1\nname: \"t\"\n"
      "experiments {\n  name: \"a\"\n  separable_gd {\n    steps: 10\n    lr: 9\n    lr_rule: LR_OVER_SIGMA_MAX_SQ\n"
      "    dataset { planted2 { seed: 424206 } }\n  }\n}\n"
      "experiments {\n  name: \"b\"\n  separable_gd {\n    steps: 10\n    lr: 0.01\n"
      "    dataset { csv { path: \"" + (dir / "xor.csv").string() + "\" } }\n  }\n}\n"
      "experiments {\n  name: \"c\"\n  separable_gd {\n    steps: 10\n    lr: 0.01\n    w0: [1, 2]\n"
      "    dataset { planted2 { d: 3 n: 9 } }\n  }\n}\n"
      "experiments {\n  name: \"d\"\n  separable_gd {\n    steps: 10\n    lr: 1\n"
      "    dataset { planted2 { d: 3 n: 9 seed: 424207 } }\n  }\n}\n";
  const std::string e = test_util::campaign_error(text);
  // Lemma 1 on data small enough to build in prepare: the message has their numbers.
  EXPECT_NE(e.find("spec.textproto:7:5: experiments[0].separable_gd.lr: step size eta="), std::string::npos) << e;
  EXPECT_NE(e.find("is not below 2/(beta sigma_max^2)="), std::string::npos) << e;
  EXPECT_NE(e.find("spec.textproto:17:5: experiments[1].separable_gd.dataset: this kind needs separable data"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("spec.textproto:25:5: experiments[2].separable_gd.w0: has 2 entries but the data have dimension 3"),
            std::string::npos)
      << e;
  // An absolute step above the bound of the data.
  EXPECT_NE(e.find("spec.textproto:33:5: experiments[3].separable_gd.lr: step size eta=1 is not below"),
            std::string::npos)
      << e;
}

// On planted2 data too large to build in prepare(), the step-size check is split: prepare()
// rejects the steps that fail on any data, run() makes the check with the data. Together they
// must decide exactly as the check computed with the data (as prepare() did before), on a grid of
// steps around the bound.
TEST(SeparableGdValidation, SplitStepCheckAgreesWithTheDataCheck) {
  const double ulp = std::numeric_limits<double>::epsilon();
  constexpr int kD = 20, kN = 60;  // n·d² = 24000: above kValidationBuildWork
  ASSERT_GT(static_cast<double>(kN) * kD * kD, kValidationBuildWork);
  std::uint64_t seed = 425000;
  int rejected_by_prepare = 0;
  for (const auto rule : {pb::SeparableGdSpec::LR_ABSOLUTE, pb::SeparableGdSpec::LR_OVER_SIGMA_MAX,
                          pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ}) {
    for (const auto loss : {pb::SeparableGdSpec::LOSS_LOGISTIC, pb::SeparableGdSpec::LOSS_EXPONENTIAL}) {
      for (const bool mean_loss : {false, true}) {
        for (const bool allow : {false, true}) {
          for (const double factor : {1e-3, 1 - 1e-9, 1 - ulp, 1.0, 1 + ulp, 1 + 1e-9, 1 + 1e-8, 2.0}) {
            ++seed;  // data of its own, so nothing comes from the cache
            const double sigma = separable::sigma_max(separable::make_planted2(kD, kN, seed).data.absorbed());
            const double beta = loss == pb::SeparableGdSpec::LOSS_LOGISTIC ? 0.25 : 1.0;
            const double per_sum = mean_loss ? static_cast<double>(kN) : 1.0;
            // The lr at which the step meets the bound exactly, for each rule.
            double edge = 2.0 / beta * per_sum;
            if (rule == pb::SeparableGdSpec::LR_ABSOLUTE) edge = 2.0 / (beta * sigma * sigma) * per_sum;
            if (rule == pb::SeparableGdSpec::LR_OVER_SIGMA_MAX) edge = 2.0 / (beta * sigma) * per_sum;
            const double lr = edge * factor;
            pb::SeparableGdSpec s = planted2_spec(kD, kN, seed, lr, rule);
            s.set_steps(10);
            s.set_loss(loss);
            s.set_mean_loss(mean_loss);
            s.set_allow_large_step(allow);
            double eta = lr;
            if (rule == pb::SeparableGdSpec::LR_OVER_SIGMA_MAX) eta = lr / sigma;
            if (rule == pb::SeparableGdSpec::LR_OVER_SIGMA_MAX_SQ) eta = lr / (sigma * sigma);
            const double step_on_sum = mean_loss ? eta / per_sum : eta;
            const bool rejected =
                !(eta > 0) || !std::isfinite(eta) || (step_on_sum >= 2.0 / (beta * sigma * sigma) && !allow);
            std::string where;
            const auto work = separable_work_of([&] {
              std::unique_ptr<PreparedTask> ignored;
              try {
                ignored = kind().prepare(s, context());
              } catch (const SpecError&) {
              }
            });
            EXPECT_EQ(work.datasets_built, 0u);
            where = test_util::rejected_at(kind(), s, context(), "lr");
            EXPECT_EQ(!where.empty(), rejected) << "rule " << rule << " loss " << loss << " mean " << mean_loss
                                                << " allow " << allow << " lr " << lr << " rejected at " << where;
            if (where == "prepare") ++rejected_by_prepare;
          }
        }
      }
    }
  }
  // lr/σ² above its bound: factors 1 + 1e-8 and 2, for both losses and both loss forms.
  EXPECT_EQ(rejected_by_prepare, 8);
}

// ---- Run --------------------------------------------------------------------------------------------

TEST(SeparableGdRun, RecordsTheDirectComputationBitwise) {
  const pb::SeparableGdSpec s = planted2_spec(5, 40, 424209, 4.0);
  std::unique_ptr<PreparedTask> task;
  // Data this small are built for the step-size check; their max margin waits for run().
  const auto prepared = separable_work_of([&] { task = kind().prepare(s, context()); });
  EXPECT_EQ(prepared.datasets_built, 1u);
  EXPECT_EQ(prepared.max_margin_solves, 0u);
  MemoryRecorder first;
  const auto work = separable_work_of([&] { task->run(first); });
  EXPECT_EQ(work.datasets_built, 0u);
  EXPECT_EQ(work.max_margin_solves, 1u);

  const separable::Dataset data = separable::make_planted2(5, 40, 424209).data;
  const MatrixXd Xt = data.absorbed();
  const double sigma = separable::sigma_max(Xt);
  const double eta = 4.0 / (sigma * sigma);
  const separable::MaxMargin mm = separable::solve_max_margin(Xt);
  const VectorXd w_tilde = separable::solve_w_tilde(Xt, mm, eta, VectorXd::Zero(5));
  const auto as_vector = [](const VectorXd& v) { return std::vector<double>(v.data(), v.data() + v.size()); };
  EXPECT_EQ(first.arrays.at("parameters/sigma_max"), std::vector<double>{sigma});
  EXPECT_EQ(first.arrays.at("parameters/X"), to_vector(data.X));
  EXPECT_EQ(first.arrays.at("parameters/w_hat"), as_vector(mm.w_hat));
  EXPECT_EQ(first.arrays.at("parameters/alpha"), as_vector(mm.alpha));
  EXPECT_EQ(first.arrays.at("parameters/w_tilde"), as_vector(w_tilde));
  EXPECT_EQ(first.number_attrs.at("lr"), eta);
  EXPECT_EQ(first.number_attrs.at("eta_eff"), eta);

  // A second task on the same data takes them, and their max margin, from the cache: same records.
  MemoryRecorder second;
  const auto again = separable_work_of([&] { kind().prepare(s, context())->run(second); });
  EXPECT_EQ(again.datasets_built, 0u);
  EXPECT_EQ(again.max_margin_solves, 0u);
  expect_same_records(first, second);
}

}  // namespace
}  // namespace gdlab
