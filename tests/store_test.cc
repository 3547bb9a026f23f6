// The HDF5 layer and the campaign store: write a campaign file, read every piece back through the
// C API layer, and check that HDF5 failures surface as StoreError with HDF5's message.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "common/campaign.h"
#include "common/campaign_store.h"
#include "common/errors.h"
#include "common/hdf5.h"

namespace gdlab {
namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "gdlab_store_test";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::filesystem::remove(p);
  return p.string();
}

const char* kSpec = R"(schema_version: 1
name: "store"
experiments {
  name: "a"
  sweep { field: "lr" numbers: [0.01, 0.02] }
  separable_gd { steps: 10 dataset { fig1_replica {} } }
}
)";

TEST(Hdf5, SeriesAndAttributesRoundTrip) {
  const std::string path = temp_path("roundtrip.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Group g = f.require_group("a/b");
    g.set_attribute("text", std::string_view("héllo"));
    g.set_attribute("number", 2.5);
    g.set_attribute("count", std::int64_t{-3});
    h5::Dataset s = g.create_series("value", h5::ElementType::Float64, 3, 4);
    const std::vector<double> rows = {1, 2, 3, 4, 5, 6};
    s.append(rows, 2);
    s.append(std::vector<double>{7, 8, 9}, 1);
    h5::Dataset steps = g.create_series("step", h5::ElementType::Int64, 0, 16);
    steps.append(std::vector<std::int64_t>{1, 10, 100}, 3);
    g.write_strings("lines", {"x", "yy"});
    f.flush();
  }
  h5::File f = h5::File::open_read_only(path);
  h5::Group g = f.open_group("a/b");
  EXPECT_EQ(g.attribute_string("text"), "héllo");
  EXPECT_EQ(g.attribute_double("number"), 2.5);
  EXPECT_EQ(g.attribute_int("count"), -3);
  h5::Dataset s = g.open_dataset("value");
  EXPECT_EQ(s.shape(), (std::vector<hsize_t>{3, 3}));
  EXPECT_EQ(s.read_doubles(), (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(g.open_dataset("step").read_ints(), (std::vector<std::int64_t>{1, 10, 100}));
  EXPECT_EQ(g.open_dataset("lines").read_strings(), (std::vector<std::string>{"x", "yy"}));
  EXPECT_TRUE(f.exists("a/b/value"));
  EXPECT_FALSE(f.exists("a/c/value"));
}

TEST(Hdf5, FailuresCarryTheHdf5Message) {
  try {
    h5::File::open_read_only("/nonexistent/file.h5");
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot open HDF5 file /nonexistent/file.h5"), std::string::npos) << m;
    EXPECT_NE(m.find("HDF5:"), std::string::npos) << m;
  }
  const std::string path = temp_path("exists.h5");
  h5::File::create(path);
  EXPECT_THROW(h5::File::create(path), StoreError);  // never clobbers an existing file
}

TEST(CampaignStore, WritesPlanChunksAndStatuses) {
  const std::string path = temp_path("campaign.h5");
  const Campaign campaign = parse_campaign(kSpec, "spec.textproto", "");
  {
    CampaignStore store = CampaignStore::create(path, campaign);
    store.mark_running(0, 1);
    pb::TrajectoryChunk chunk;
    chunk.set_task_id(0);
    auto* s = chunk.add_series();
    s->set_path("observables/loss");
    s->set_width(1);
    for (int i = 1; i <= 3; ++i) {
      s->add_step(i);
      s->add_time(0.5 * i);
      s->add_value(1.0 / i);
    }
    auto* w = chunk.add_series();
    w->set_path("observables/w");
    w->set_width(2);
    w->add_step(1);
    w->add_time(0.5);
    w->add_value(3);
    w->add_value(4);
    auto* a = chunk.add_arrays();
    a->set_path("parameters/w_hat");
    a->add_shape(2);
    a->add_value(0.5);
    a->add_value(0.5);
    auto* attr = chunk.add_attributes();
    attr->set_name("verdict");
    attr->set_text("pass");
    store.append(chunk);
    store.mark_done(0, 1.5);
    store.mark_running(1, 2);
    store.mark_failed(1, "boom");
    EXPECT_EQ(store.flush(), 4u);
    store.finish("failed");
  }
  h5::File f = h5::File::open_read_only(path);
  EXPECT_EQ(f.attribute_string("gdlab_status"), "failed");
  EXPECT_EQ(f.open_group("h5md/creator").attribute_string("name"), "gdlab");
  EXPECT_EQ(f.open_dataset("parameters/spec_text").read_string(), kSpec);
  EXPECT_EQ(f.open_dataset("parameters/tasks").read_strings().size(), 2u);
  h5::Group t0 = f.open_group("tasks/task_000000");
  EXPECT_EQ(t0.attribute_string("status"), "done");
  EXPECT_EQ(t0.attribute_string("verdict"), "pass");
  EXPECT_EQ(t0.attribute_string("sweep_point"), "lr=0.01");
  EXPECT_EQ(t0.attribute_int("worker_rank"), 1);
  EXPECT_EQ(t0.open_dataset("observables/loss/step").read_ints(), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(t0.open_dataset("observables/loss/value").read_doubles(), (std::vector<double>{1.0, 0.5, 1.0 / 3}));
  EXPECT_EQ(t0.open_dataset("observables/w/value").shape(), (std::vector<hsize_t>{1, 2}));
  EXPECT_EQ(t0.open_dataset("parameters/w_hat").read_doubles(), (std::vector<double>{0.5, 0.5}));
  EXPECT_NE(t0.open_dataset("config").read_string().find("lr: 0.01"), std::string::npos);
  h5::Group t1 = f.open_group("tasks/task_000001");
  EXPECT_EQ(t1.attribute_string("status"), "failed");
  EXPECT_EQ(t1.attribute_string("error"), "boom");
}

TEST(CampaignStore, RejectsPathsOutsideTheTaskGroup) {
  const std::string path = temp_path("escape.h5");
  const Campaign campaign = parse_campaign(kSpec, "spec.textproto", "");
  CampaignStore store = CampaignStore::create(path, campaign);
  pb::TrajectoryChunk chunk;
  chunk.set_task_id(0);
  auto* s = chunk.add_series();
  s->set_path("../task_000001/observables/x");
  s->set_width(1);
  s->add_step(1);
  s->add_time(1);
  s->add_value(1);
  EXPECT_THROW(store.append(chunk), StoreError);
}

// A task that checkpoints itself: on resume its group is cut back to the rows its checkpoint
// lists (issue 8 §2); arrays, later series and result attributes go; the planned attributes stay;
// appends then continue the cut-back series. A checkpoint whose rows the file lacks resets the task.
TEST(CampaignStore, ResumeCutsACheckpointedTaskBackToItsRows) {
  const std::string path = temp_path("cut_back.h5");
  const Campaign campaign = parse_campaign(kSpec, "spec.textproto", "");
  auto chunk = [](std::int64_t task, const std::string& series, std::vector<std::int64_t> steps) {
    pb::TrajectoryChunk c;
    c.set_task_id(task);
    auto* s = c.add_series();
    s->set_path(series);
    s->set_width(1);
    for (auto t : steps) {
      s->add_step(t);
      s->add_time(0.5 * static_cast<double>(t));
      s->add_value(10.0 * static_cast<double>(t));
    }
    return c;
  };
  std::map<std::string, std::uint64_t> rows;
  {
    CampaignStore store = CampaignStore::create(path, campaign);
    store.mark_running(0, 1);
    store.append(chunk(0, "observables/loss", {0, 1, 2}));
    store.append(chunk(0, "observables/sharpness", {0}));
    store.flush();
    rows = store.series_rows(0);  // the checkpoint
    pb::TrajectoryChunk later = chunk(0, "observables/loss", {3, 4});
    auto* a = later.add_arrays();
    a->set_path("parameters/w_final");
    a->add_shape(1);
    a->add_value(1.0);
    auto* attr = later.add_attributes();
    attr->set_name("verdict");
    attr->set_text("pass");
    store.append(later);
    store.append(chunk(0, "observables/late", {4}));
    store.flush();
  }
  EXPECT_EQ(rows, (std::map<std::string, std::uint64_t>{{"observables/loss", 3}, {"observables/sharpness", 1}}));
  std::set<std::int64_t> done, cut;
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> cut_back{{0, rows}, {1, {{"observables/loss", 7}}}};
  {
    CampaignStore store = CampaignStore::resume(path, campaign, &done, cut_back, &cut);
    EXPECT_TRUE(done.empty());
    EXPECT_EQ(cut, (std::set<std::int64_t>{0}));  // task 1 has no such rows: reset instead
    store.mark_running(0, 1);
    store.append(chunk(0, "observables/loss", {3}));
    store.flush();
  }
  h5::File f = h5::File::open_read_only(path);
  h5::Group g = f.open_group("tasks/task_000000");
  EXPECT_EQ(g.open_dataset("observables/loss/step").read_ints(), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(g.open_dataset("observables/loss/value").read_doubles(), (std::vector<double>{0, 10, 20, 30}));
  EXPECT_EQ(g.open_dataset("observables/sharpness/step").read_ints(), (std::vector<std::int64_t>{0}));
  EXPECT_FALSE(g.exists("observables/late"));
  EXPECT_FALSE(g.exists("parameters/w_final"));
  EXPECT_FALSE(g.has_attribute("verdict"));
  EXPECT_EQ(g.attribute_string("kind"), "separable_gd");
  EXPECT_TRUE(g.exists("config"));
  EXPECT_FALSE(f.open_group("tasks/task_000001").exists("observables"));
}

}  // namespace
}  // namespace gdlab
