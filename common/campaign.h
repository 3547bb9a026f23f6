// Campaign specs: parse the protobuf text format, validate, expand sweep axes into tasks.
// Errors name the file, line and field: "spec.textproto:12:5: experiments[0].separable_gd.lr:
// must be > 0 (got -0.1)". Every task is prepared once by its kind here, so a spec that loads is
// a spec whose every task passed its kind's validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"

namespace gdlab {

inline constexpr int kSchemaVersion = 1;

struct PlannedTask {
  std::int64_t task_id = 0;
  std::string task_name;  // "task_000003"
  std::int64_t experiment_index = 0;
  std::string experiment_name;
  std::string kind;
  std::string sweep_point;  // "lr=0.5 dataset.planted2.seed=3", or "" without sweeps
  pb::Experiment experiment;  // sweep values applied, sweep axes cleared
  std::string summary;        // the kind's one-line description of the prepared task
  int ranks_needed = 1;       // worker ranks the task runs on at once
  bool split_into_units = false;  // runs as units on any idle workers, merged on rank 0
  bool checkpointable = false;    // checkpoints itself on request (PreparedTask::checkpointable)
};

struct Campaign {
  std::string spec_path;  // as given by the user
  std::string spec_dir;   // directory of the spec file (for relative input paths)
  std::string spec_text;  // the file's text, stored verbatim in the output
  std::vector<std::string> allowed_input_dirs;  // empty: inputs may be read from anywhere
  pb::CampaignSpec spec;
  std::vector<PlannedTask> tasks;

  TaskContext context_for(const PlannedTask& task) const;
  // The task's kind sub-message in text format (stored next to its results).
  static std::string kind_config_text(const pb::Experiment& experiment);
  // One human-readable line per task.
  std::vector<std::string> task_lines() const;
  // Throws InputError if a task needs more worker ranks than `workers`.
  void check_fits(int workers) const;
};

// The kind sub-message that is set in `experiment`'s oneof, or nullptr; `kind_name` receives the
// oneof field name.
const google::protobuf::Message* kind_message(const pb::Experiment& experiment, std::string* kind_name);

// Reads and loads a spec file. Throws InputError whose message holds one line per problem.
Campaign load_campaign(const std::string& path);
// Same, from text; `display_path` is used in messages.
// `allowed_input_dirs` (if not empty) confines every input file the tasks read.
Campaign parse_campaign(const std::string& text, const std::string& display_path, const std::string& spec_dir,
                        const std::vector<std::string>& allowed_input_dirs = {});

}  // namespace gdlab
