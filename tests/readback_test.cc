// Reads back, in C++, the file written by the `mpirun -n 3 gdlab run` integration test
// (tests/data/small_sweep.textproto) and checks its layout and contents exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "common/hdf5.h"

namespace gdlab {
namespace {

std::string file_under_test() {
  const char* p = std::getenv("GDLAB_READBACK_FILE");
  return p ? p : "";
}

TEST(Readback, LayoutAndContents) {
  const std::string path = file_under_test();
  ASSERT_FALSE(path.empty()) << "set GDLAB_READBACK_FILE";
  h5::File f = h5::File::open_read_only(path);
  EXPECT_EQ(f.attribute_string("gdlab_status"), "complete");
  EXPECT_EQ(f.open_group("h5md/creator").attribute_string("name"), "gdlab");
  EXPECT_EQ(f.open_group("parameters").attribute_string("campaign_name"), "small_sweep");
  const auto tasks = f.open_group("tasks").children();
  ASSERT_EQ(tasks.size(), 7u);  // 1 fig1 + 3 lr x 2 seeds
  EXPECT_EQ(f.open_dataset("parameters/tasks").read_strings().size(), tasks.size());
  for (const auto& name : tasks) {
    h5::Group t = f.open_group("tasks/" + name);
    EXPECT_EQ(t.attribute_string("status"), "done") << name;
    EXPECT_EQ(t.attribute_string("kind"), "separable_gd") << name;
    const auto steps = t.open_dataset("observables/loss/step").read_ints();
    ASSERT_GE(steps.size(), 2u);
    for (size_t i = 1; i < steps.size(); ++i) EXPECT_LT(steps[i - 1], steps[i]) << name;
    for (const auto& series : t.open_group("observables").children()) {
      EXPECT_EQ(t.open_dataset("observables/" + series + "/step").read_ints(), steps) << name << " " << series;
      for (double v : t.open_dataset("observables/" + series + "/value").read_doubles())
        EXPECT_TRUE(std::isfinite(v)) << name << " " << series;
    }
    // The final w equals the last row of observables/w and matches the stored norm.
    const auto w = t.open_dataset("observables/w/value");
    const auto shape = w.shape();
    ASSERT_EQ(shape.size(), 2u);
    const auto values = w.read_doubles();
    double norm2 = 0;
    for (hsize_t j = 0; j < shape[1]; ++j) norm2 += std::pow(values[(shape[0] - 1) * shape[1] + j], 2);
    EXPECT_NEAR(std::sqrt(norm2), t.open_dataset("observables/norm/value").read_doubles().back(), 1e-12);
    EXPECT_EQ(t.open_dataset("parameters/w_hat").shape()[0], shape[1]);
  }
  // The planted2 sweep (tasks 1..6) reaches the T = 1e5 quick-variant criteria of separable.md
  // §1.6 T1.2: |r| < 0.15 and loss ratio in [0.97, 1.0].
  for (int i = 1; i <= 6; ++i) {
    h5::Group t = f.open_group("tasks/task_00000" + std::to_string(i));
    EXPECT_LT(t.open_dataset("observables/residual/value").read_doubles().back(), 0.15);
    const double rho = t.open_dataset("observables/loss_ratio/value").read_doubles().back();
    EXPECT_GE(rho, 0.97);
    EXPECT_LE(rho, 1.0);
  }
}

}  // namespace
}  // namespace gdlab
