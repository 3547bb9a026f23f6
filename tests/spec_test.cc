// Spec parsing, validation and sweep expansion: good specs expand to the exact task list; bad
// specs give one error line naming the file, line and field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/campaign.h"
#include "common/errors.h"

namespace gdlab {
namespace {

const char* kGood = R"(schema_version: 1
name: "t"
seed: 7
experiments {
  name: "a"
  sweep { field: "lr" numbers: [1, 2, 4] }
  sweep { field: "dataset.planted2.seed" numbers: [11, 12] }
  separable_gd {
    lr_rule: LR_OVER_SIGMA_MAX_SQ
    steps: 100
    dataset { planted2 { d: 3 n: 10 } }
  }
}
experiments {
  name: "b"
  sweep { field: "loss" values: ["LOSS_LOGISTIC", "LOSS_EXPONENTIAL"] }
  separable_gd { lr: 0.01 steps: 10 dataset { fig1_replica {} } }
}
)";

std::string error_of(const std::string& text) {
  try {
    parse_campaign(text, "spec.textproto", "");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Spec, GoodSpecExpandsSweepsInOrder) {
  const Campaign c = parse_campaign(kGood, "spec.textproto", "");
  ASSERT_EQ(c.tasks.size(), 3u * 2u + 2u);
  EXPECT_EQ(c.tasks[0].task_name, "task_000000");
  EXPECT_EQ(c.tasks[0].sweep_point, "lr=1 dataset.planted2.seed=11");
  EXPECT_EQ(c.tasks[1].sweep_point, "lr=1 dataset.planted2.seed=12");
  EXPECT_EQ(c.tasks[5].sweep_point, "lr=4 dataset.planted2.seed=12");
  EXPECT_EQ(c.tasks[5].experiment.separable_gd().lr(), 4.0);
  EXPECT_EQ(c.tasks[5].experiment.separable_gd().dataset().planted2().seed(), 12u);
  EXPECT_EQ(c.tasks[5].experiment.sweep_size(), 0);
  EXPECT_EQ(c.tasks[6].experiment_name, "b");
  EXPECT_EQ(c.tasks[7].experiment.separable_gd().loss(), pb::SeparableGdSpec::LOSS_EXPONENTIAL);
  EXPECT_EQ(c.tasks[7].task_id, 7);
  EXPECT_EQ(c.tasks[7].kind, "separable_gd");
  // Seeds depend on (campaign, experiment, task, stream) only.
  EXPECT_EQ(c.context_for(c.tasks[3]).task_seed(0), derive_seed(7, 0, 3, 0));
}

TEST(Spec, UnknownFieldNamesLineAndField) {
  const std::string e = error_of("schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd { lrr: 1 }\n}\n");
  EXPECT_NE(e.find("spec.textproto:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("lrr"), std::string::npos) << e;
}

TEST(Spec, WrongTypeNamesLineAndField) {
  const std::string e = error_of("schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd {\n    steps: \"many\"\n  }\n}\n");
  EXPECT_NE(e.find("spec.textproto:6:"), std::string::npos) << e;
  EXPECT_NE(e.find("steps"), std::string::npos) << e;
}

TEST(Spec, NegativeStepSizeNamesLineAndField) {
  const std::string e = error_of(
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd {\n    steps: 10\n    lr: -0.1\n"
      "    dataset { fig1_replica {} }\n  }\n}\n");
  EXPECT_NE(e.find("spec.textproto:7:5: experiments[0].separable_gd.lr: must be a finite number > 0 (got -0.1)"),
            std::string::npos)
      << e;
}

TEST(Spec, ZeroStepSizeInSweepPointsAtTheAxis) {
  const std::string e = error_of(
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  sweep { field: \"lr\" numbers: [0.01, 0] }\n"
      "  separable_gd { steps: 10 dataset { fig1_replica {} } }\n}\n");
  EXPECT_NE(e.find("spec.textproto:5:3: experiments[0].sweep[0]: must be a finite number > 0 (got 0) [sweep point lr=0]"),
            std::string::npos)
      << e;
}

TEST(Spec, StepAboveStabilityBoundIsAnErrorUnlessAllowed) {
  const std::string base =
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd {\n    steps: 10\n    lr: 9\n"
      "    lr_rule: LR_OVER_SIGMA_MAX_SQ\n    dataset { planted2 {} }\n";
  const std::string e = error_of(base + "  }\n}\n");
  EXPECT_NE(e.find("spec.textproto:7:5: experiments[0].separable_gd.lr: step size"), std::string::npos) << e;
  EXPECT_NE(e.find("allow_large_step"), std::string::npos) << e;
  EXPECT_EQ(error_of(base + "    allow_large_step: true\n  }\n}\n"), "");
}

TEST(Spec, MissingSchemaVersionNameAndKind) {
  const std::string e = error_of("experiments { name: \"a\" }\n");
  EXPECT_NE(e.find("spec.textproto: schema_version: required"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.textproto: name: required"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.textproto:1:1: experiments[0]: no experiment kind set; set exactly one of: "),
            std::string::npos)
      << e;
}

TEST(Spec, NonSeparableCsvIsRejected) {
  const auto dir = std::filesystem::temp_directory_path() / "gdlab_spec_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "xor.csv") << "1,1,1\n-1,-1,1\n1,-1,-1\n-1,1,-1\n";
  const std::string spec =
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd {\n    steps: 10\n    lr: 0.01\n"
      "    dataset {\n      csv { path: \"xor.csv\" }\n    }\n  }\n}\n";
  std::string e;
  try {
    parse_campaign(spec, "spec.textproto", dir.string());
  } catch (const InputError& err) {
    e = err.what();
  }
  EXPECT_NE(e.find("spec.textproto:8:5: experiments[0].separable_gd.dataset:"), std::string::npos) << e;
  EXPECT_NE(e.find("not linearly separable"), std::string::npos) << e;
}

TEST(Spec, MissingCsvFileNamesThePath) {
  const std::string e = error_of(
      "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  separable_gd {\n    steps: 10\n    lr: 0.01\n"
      "    dataset { csv { path: \"/nonexistent/points.csv\" } }\n  }\n}\n");
  EXPECT_NE(e.find("spec.textproto:8:"), std::string::npos) << e;
  EXPECT_NE(e.find("dataset.csv.path"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/points.csv"), std::string::npos) << e;
}

TEST(Spec, BadSweepAxes) {
  auto spec = [](const std::string& axis) {
    return "schema_version: 1\nname: \"t\"\nexperiments {\n  name: \"a\"\n  " + axis +
           "\n  separable_gd { lr: 0.01 steps: 10 dataset { fig1_replica {} } }\n}\n";
  };
  EXPECT_NE(error_of(spec("sweep { field: \"nope\" numbers: [1] }")).find("'nope' is not a field of SeparableGdSpec"),
            std::string::npos);
  EXPECT_NE(error_of(spec("sweep { field: \"steps\" numbers: [1.5] }")).find("not a valid int64"), std::string::npos);
  EXPECT_NE(error_of(spec("sweep { field: \"loss\" values: [\"LOSS_NOPE\"] }")).find("'LOSS_NOPE' is not a valid enum"),
            std::string::npos);
  EXPECT_NE(error_of(spec("sweep { field: \"lr\" }")).find("exactly one of `numbers` or `values`"), std::string::npos);
  EXPECT_NE(error_of(spec("sweep { field: \"w0\" numbers: [1] }")).find("repeated field"), std::string::npos);
}

TEST(Spec, DuplicateExperimentNamesAndBadSchemaVersion) {
  const std::string one = "experiments { name: \"a\" separable_gd { lr: 0.01 steps: 10 dataset { fig1_replica {} } } }\n";
  const std::string e = error_of("schema_version: 2\nname: \"t\"\n" + one + one);
  EXPECT_NE(e.find("spec.textproto:1:1: schema_version: unsupported version 2"), std::string::npos) << e;
  EXPECT_NE(e.find("experiments[1].name: duplicate experiment name 'a'"), std::string::npos) << e;
}

TEST(Spec, MissingFile) {
  try {
    load_campaign("/nonexistent/spec.textproto");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/spec.textproto: cannot read the spec file"), std::string::npos);
  }
}

}  // namespace
}  // namespace gdlab
