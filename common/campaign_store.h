// The campaign's HDF5 file, H5MD style (docs/hdf5-layout.md; platform.md §6). The coordinator is
// its only writer. The file is created with the whole plan (every task group, status "pending")
// before any task runs, then filled as trajectory chunks arrive, and flushed on a cadence so a
// run killed at any instant leaves a readable file holding every point up to the last flush.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "common/campaign.h"
#include "common/hdf5.h"
#include "proto/gdlab.pb.h"

namespace gdlab {

const char* gdlab_version();

class CampaignStore {
 public:
  // Creates `path` (which must not exist) and writes /h5md, /parameters and one group per task.
  static CampaignStore create(const std::string& path, const Campaign& campaign);
  // Reopens a file this campaign was written to: tasks marked done stay (their ids go to
  // `done_task_ids`), every other task group is reset to pending. Throws InputError if the file
  // holds a different spec.
  //
  // `cut_back` (task id -> series path -> rows) names unfinished tasks that continue from a
  // checkpoint (TaskCheckpointFile): their groups keep exactly those rows of those series, and
  // lose every other series, array and result attribute, instead of being reset. A task whose
  // group cannot be cut back (a series shorter than its checkpoint says, or missing) is reset
  // like any other; the ids of the tasks cut back go to `cut_back_done`.
  static CampaignStore resume(const std::string& path, const Campaign& campaign, std::set<std::int64_t>* done_task_ids,
                              const std::map<std::int64_t, std::map<std::string, std::uint64_t>>& cut_back = {},
                              std::set<std::int64_t>* cut_back_done = nullptr);

  void mark_running(std::int64_t task_id, int worker_rank);
  // Rows of every series of a running task in the file (for a task checkpoint).
  std::map<std::string, std::uint64_t> series_rows(std::int64_t task_id);
  void append(const pb::TrajectoryChunk& chunk);
  void mark_done(std::int64_t task_id, double wall_seconds);
  void mark_failed(std::int64_t task_id, const std::string& error);
  // The task's campaign was cancelled before or while it ran.
  void mark_cancelled(std::int64_t task_id);
  // Flushes HDF5's buffers to the file; returns the number of time-series rows now in the file.
  std::uint64_t flush();
  // Sets the root attribute gdlab_status ("complete", "failed", "cancelled" or "drained") and
  // flushes.
  void finish(const std::string& status);
  std::uint64_t rows_total() const { return rows_total_; }

 private:
  struct Series {
    h5::Dataset step, time, value;
    std::int32_t width = 1;
  };
  struct OpenTask {
    h5::Group group;
    std::map<std::string, Series> series;
  };
  CampaignStore(h5::File file, const Campaign& campaign);
  static void write_task_group(h5::Group& tasks, const Campaign& campaign, const PlannedTask& task);
  // See resume(); throws StoreError when the group does not hold the rows.
  static void cut_back_task_group(h5::Group& group, const std::map<std::string, std::uint64_t>& rows);
  OpenTask& open_task(std::int64_t task_id);
  h5::Group task_group(std::int64_t task_id) const;
  Series& series(OpenTask& task, const pb::SeriesChunk& chunk);

  h5::File file_;
  std::map<std::int64_t, std::string> task_names_;
  std::map<std::int64_t, OpenTask> open_;  // tasks currently running
  std::uint64_t rows_total_ = 0;
};

}  // namespace gdlab
