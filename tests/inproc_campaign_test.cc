// The coordinator and worker loops over the in-process transport (threads and queues): a small
// campaign runs to completion, a task that fails at run time is recorded with its error while the
// others go on, and the file's observables do not depend on the number of workers.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/campaign.h"
#include "common/campaign_store.h"
#include "common/hdf5.h"
#include "common/transport_inproc.h"
#include "coordinator/coordinator.h"
#include "worker/worker.h"

namespace gdlab {
namespace {

// Task 3 diverges (exp loss, huge step, started on the wrong side): its w overflows and the
// numerical core throws.
const char* kSpec = R"(schema_version: 1
name: "inproc"
seed: 5
store { flush_interval_s: 0.05 }
experiments {
  name: "sweep"
  sweep { field: "lr" numbers: [1, 2, 4] }
  separable_gd { lr_rule: LR_OVER_SIGMA_MAX_SQ steps: 20000 dataset { planted2 { d: 4 n: 20 } } }
}
experiments {
  name: "diverges"
  separable_gd {
    loss: LOSS_EXPONENTIAL lr: 1000 allow_large_step: true steps: 1000
    w0: [-400, -400] dataset { fig1_replica {} }
  }
}
)";

std::string run_campaign(int workers, const std::string& name, Coordinator::Result* result) {
  const auto dir = std::filesystem::temp_directory_path() / "gdlab_inproc_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::filesystem::remove(path);
  InProcNetwork net(workers + 1);
  std::vector<std::thread> threads;
  for (int r = 1; r <= workers; ++r)
    threads.emplace_back([&net, r] {
      // Tiny chunks so that a task's results arrive in many pieces.
      WorkerOptions options;
      options.chunk_bytes = 512;
      Worker(net.endpoint(r), options).run();
    });
  Coordinator coordinator(net.endpoint(0));
  coordinator.add(std::make_unique<CampaignRun>(0, parse_campaign(kSpec, "spec.textproto", ""), path, true));
  *result = coordinator.run_to_completion();
  for (auto& t : threads) t.join();
  return path;
}

TEST(InProcCampaign, FailedTaskIsRecordedAndOthersFinish) {
  Coordinator::Result r;
  const std::string path = run_campaign(3, "three.h5", &r);
  EXPECT_EQ(r.done, 3u);
  EXPECT_EQ(r.failed, 1u);
  h5::File f = h5::File::open_read_only(path);
  EXPECT_EQ(f.attribute_string("gdlab_status"), "failed");
  for (int i = 0; i < 3; ++i) {
    h5::Group t = f.open_group("tasks/task_00000" + std::to_string(i));
    EXPECT_EQ(t.attribute_string("status"), "done");
    EXPECT_EQ(t.attribute_string("verdict").empty(), false);
    // log grid of 2e4 at 10 per decade: the same number of rows in every series.
    const auto steps = t.open_dataset("observables/margin_gap/step").read_ints();
    EXPECT_EQ(steps.front(), 1);
    EXPECT_EQ(steps.back(), 20000);
    EXPECT_EQ(t.open_dataset("theory/margin_gap/value").shape()[0], steps.size());
    EXPECT_EQ(t.open_dataset("observables/w/value").shape(), (std::vector<hsize_t>{steps.size(), 4}));
  }
  h5::Group bad = f.open_group("tasks/task_000003");
  EXPECT_EQ(bad.attribute_string("status"), "failed");
  EXPECT_NE(bad.attribute_string("error").find("non-finite"), std::string::npos) << bad.attribute_string("error");
}

TEST(InProcCampaign, ObservablesDoNotDependOnTheNumberOfWorkers) {
  Coordinator::Result r1, r3;
  const std::string one = run_campaign(1, "one.h5", &r1);
  const std::string three = run_campaign(3, "three_again.h5", &r3);
  h5::File a = h5::File::open_read_only(one);
  h5::File b = h5::File::open_read_only(three);
  for (int i = 0; i < 3; ++i) {
    const std::string t = "tasks/task_00000" + std::to_string(i);
    for (const std::string& series : a.open_group(t + "/observables").children()) {
      const std::string p = t + "/observables/" + series + "/value";
      EXPECT_EQ(a.open_dataset(p).read_doubles(), b.open_dataset(p).read_doubles()) << p;
    }
    EXPECT_EQ(a.open_dataset(t + "/parameters/w_tilde").read_doubles(),
              b.open_dataset(t + "/parameters/w_tilde").read_doubles());
  }
}

}  // namespace
}  // namespace gdlab
