// The plug-in point for experiment kinds. One kind = one source file that defines an
// ExperimentKind and registers it with GDLAB_REGISTER_KIND; the coordinator, the spec loader and
// the worker's task loop only ever see this interface and never name a kind.
//
// A kind converts its protobuf spec (the edge) into a plain C++ config once, in prepare(), which
// also validates it and throws SpecError naming the offending field. The same prepare() runs in
// `gdlab validate`, on the coordinator before anything is written, and on the worker.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/random.h"

namespace gdlab {

// Where a task sits in its campaign; the source of all of its seeds.
struct TaskContext {
  std::uint64_t campaign_seed = 0;
  std::int64_t experiment_index = 0;
  std::int64_t task_id = 0;
  std::string spec_dir;  // relative input paths are resolved against it
  // When not empty, input files must lie inside one of these directories (a served coordinator
  // only reads from its allowed input directories).
  std::vector<std::string> allowed_input_dirs;

  // Seed of random stream `stream` of this task.
  std::uint64_t task_seed(std::uint64_t stream) const {
    return derive_seed(campaign_seed, static_cast<std::uint64_t>(experiment_index),
                       static_cast<std::uint64_t>(task_id), stream);
  }
  // Seed shared by every task of the experiment (e.g. its dataset), so a sweep over a step size
  // sees the same data in every task.
  std::uint64_t experiment_seed(std::uint64_t stream) const {
    return derive_seed(campaign_seed, static_cast<std::uint64_t>(experiment_index), ~std::uint64_t{0}, stream);
  }
  // Resolves `path` against spec_dir; throws InputError if it lies outside allowed_input_dirs.
  std::string resolve_path(const std::string& path) const;
};

// How a long task that runs in one piece (a parameter server) checkpoints itself. The task asks
// due() at points where its state is consistent (cheap: a flag), and when it is true calls save()
// with its whole state; the coordinator then commits that state atomically next to the row counts
// of the task's series in the file, so --resume cuts the task's results back to exactly what the
// state has seen and continues from it (nothing lost, nothing appended twice).
class TaskCheckpointing {
 public:
  virtual ~TaskCheckpointing() = default;
  // True when a checkpoint is wanted now (the coordinator asked: its cadence, SIGUSR1, SIGTERM).
  virtual bool due() const = 0;
  // Ships everything recorded so far, then `state` as the checkpoint at `step` (progress, e.g.
  // updates applied; shown in the log).
  virtual void save(std::int64_t step, std::string state) = 0;
};

// Where a running task puts its results. Paths are relative to the task's group in the file:
// time series under "observables/<name>" (measured) or "theory/<name>" (predicted), fixed arrays
// under "parameters/<name>", attributes on the task group.
class Recorder {
 public:
  virtual ~Recorder() = default;
  // One sample of a time series; all samples of a series have the same width; steps increase.
  virtual void append(std::string_view path, std::int64_t step, double time, std::span<const double> value) = 0;
  void append(std::string_view path, std::int64_t step, double time, double value) {
    append(path, step, time, std::span<const double>(&value, 1));
  }
  // A time-independent array; shape {} is a scalar.
  virtual void put_array(std::string_view path, std::vector<std::uint64_t> shape, std::span<const double> data) = 0;
  virtual void set_attribute(std::string_view name, std::string_view text) = 0;
  virtual void set_attribute(std::string_view name, double value) = 0;
  // Non-null when the task may checkpoint itself (PreparedTask::checkpointable, on the recording rank).
  virtual TaskCheckpointing* checkpointing() { return nullptr; }
};

// The ranks a multi-rank task runs on (e.g. a parameter server and its workers), connected by a
// transport of their own: group ranks 0..size-1, rank 0 being the one whose recorder writes to
// the campaign file.
class Transport;
class GroupContext {
 public:
  virtual ~GroupContext() = default;
  virtual int group_rank() const = 0;
  virtual int group_size() const = 0;
  // Point-to-point messages between the ranks of this group only.
  virtual Transport& transport() = 0;
};

// The coordinator-side half of a task split into units (PreparedTask::split_into_units): it
// decides which units to hand out, merges their results, and writes the task's results. Units
// are opaque byte strings made by the merger and run by PreparedTask::run_unit on any idle worker,
// in any order; the merger must make its result independent of the arrival order (e.g. by
// merging in unit order), so the file does not depend on the number of ranks or the schedule.
// It lives on the coordinator's (MPI) thread only.
class UnitMerger {
 public:
  virtual ~UnitMerger() = default;
  // The next unit to hand out, or nullopt when none is needed now (enough are out, or the task
  // is complete). Must return nullopt after complete().
  virtual std::optional<std::string> next_unit() = 0;
  // The result of a unit handed out earlier, in any order. A result no longer needed is ignored.
  virtual void merge(const std::string& unit, const std::string& result, Recorder& recorder) = 0;
  virtual bool complete() const = 0;
  // Writes the task's final results (once, after complete()).
  virtual void finish(Recorder& recorder) = 0;
  // A one-line progress report (e.g. guesses, accepted, rate, ETA) for the log and watchers, and
  // its numbers; empty when there is nothing new to say.
  virtual std::string progress_line() { return {}; }
  // The merged state, for an atomic checkpoint; restore() continues from it (a unit handed out
  // before the checkpoint but not merged in it is handed out again). Empty: not checkpointable.
  virtual std::string checkpoint() const { return {}; }
  virtual void restore(const std::string& state) { (void)state; }
};

class PreparedTask {
 public:
  virtual ~PreparedTask() = default;
  // How many worker ranks the task runs on at once. With more than 1 the coordinator gathers
  // that many idle workers and calls run_group() on each instead of run().
  virtual int ranks_needed() const { return 1; }
  // Runs the task, streaming its results into `recorder`. Throws on failure.
  virtual void run(Recorder& recorder) = 0;
  // Runs this rank's part of a multi-rank task. Only group rank 0's `recorder` reaches the file;
  // the others' recorders accept nothing. Throws on failure (rank 0's error is the task's).
  virtual void run_group(Recorder& recorder, GroupContext& group) {
    (void)group;
    run(recorder);
  }
  // Tasks split into units: true here, merger() makes the coordinator's half, run_unit() runs
  // one unit on a worker and returns its result.
  virtual bool split_into_units() const { return false; }
  virtual std::unique_ptr<UnitMerger> merger() const { return nullptr; }
  virtual std::string run_unit(const std::string& unit) {
    (void)unit;
    return {};
  }
  // Tasks that checkpoint themselves (through Recorder::checkpointing) and can continue from a
  // saved state: the coordinator asks them for checkpoints and, on --resume, calls resume_from()
  // before run()/run_group() on every rank of the task: `state` is the last saved state on the
  // recording rank (group rank 0) and empty on the others; `step` is the step it was saved at.
  virtual bool checkpointable() const { return false; }
  virtual void resume_from(const std::string& state, std::int64_t step) {
    (void)state;
    (void)step;
  }
  // One line describing the prepared task (shown by `gdlab validate`).
  virtual std::string summary() const = 0;
};

class ExperimentKind {
 public:
  virtual ~ExperimentKind() = default;
  // The kind's field name in Experiment's `kind` oneof (proto/gdlab.proto).
  virtual std::string_view name() const = 0;
  // Validates `spec` (the kind's sub-message) and converts it. Throws SpecError(field, problem)
  // with `field` relative to the kind's message, or InputError for unreadable inputs.
  virtual std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& spec,
                                                const TaskContext& context) const = 0;
};

class KindRegistry {
 public:
  static KindRegistry& instance();
  void add(std::unique_ptr<ExperimentKind> kind);
  // nullptr if unknown.
  const ExperimentKind* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::unique_ptr<ExperimentKind>, std::less<>> kinds_;
};

struct KindRegistration {
  explicit KindRegistration(std::unique_ptr<ExperimentKind> kind) { KindRegistry::instance().add(std::move(kind)); }
};

#define GDLAB_REGISTER_KIND(KindClass) \
  static const ::gdlab::KindRegistration gdlab_kind_registration_##KindClass(std::make_unique<KindClass>())

}  // namespace gdlab
