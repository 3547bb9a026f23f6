// The coordinator: rank 0. Hands out tasks dynamically (an idle worker asks, the coordinator
// answers, never waiting on a particular worker), writes every chunk it receives into the
// campaign's HDF5 file (it is the file's only writer), flushes on a cadence, and records failed
// tasks without stopping the others. It knows no experiment kind by name.
//
// It runs any number of campaigns at once (`gdlab serve` queues them; `gdlab run` has one):
// tasks are taken round-robin across the campaigns that have work, so a long campaign does not
// starve a short one submitted later. All of it runs on the one thread that owns MPI.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/campaign.h"
#include "common/campaign_store.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "common/transport.h"
#include "coordinator/run_log.h"
#include "proto/service.pb.h"

namespace gdlab {

// One campaign being run: its plan, its file, its progress.
class CampaignRun {
 public:
  // Creates the HDF5 file at `out_path` (which must not exist) and the log next to it; with
  // `resume`, reopens an existing file of the same campaign and queues only its unfinished tasks.
  CampaignRun(std::int64_t id, Campaign campaign, std::string out_path, bool quiet, bool resume = false);

  std::int64_t id() const { return id_; }
  const Campaign& campaign() const { return campaign_; }
  const std::string& out_path() const { return out_path_; }
  // queued | running | complete | failed | cancelled | drained
  const std::string& state() const { return state_; }
  bool finished() const;
  pb::CampaignInfo info() const;

 private:
  friend class Coordinator;
  std::int64_t id_;
  Campaign campaign_;
  std::string out_path_;
  std::unique_ptr<CampaignStore> store_;
  std::unique_ptr<RunLog> log_;
  std::map<std::int64_t, std::size_t> index_of_;  // task id -> index in campaign_.tasks
  std::deque<std::size_t> pending_;
  std::map<std::int64_t, int> running_;  // task id -> worker rank
  std::map<std::int64_t, std::string> verdict_;
  // Numeric attributes worth showing in progress events (a parameter server's staleness summary).
  std::map<std::int64_t, std::map<std::string, double>> summary_;
  // Tasks split into units, being run: the coordinator-side merger and the units out. A unit
  // task also sits in running_ (under rank 0) until it finishes.
  struct UnitTask {
    std::size_t index = 0;
    std::unique_ptr<PreparedTask> prepared;
    std::unique_ptr<UnitMerger> merger;
    std::map<int, std::string> out;  // worker rank -> the unit it runs
    std::chrono::steady_clock::time_point started, last_checkpoint, last_progress;
  };
  std::map<std::int64_t, UnitTask> unit_tasks_;
  // Tasks that checkpoint themselves (PlannedTask::checkpointable): when each running one was
  // last asked for a checkpoint, the ones whose checkpoint is awaited before the run stops, and
  // the saved states of tasks resumed from their checkpoint (handed to the task when it starts).
  std::map<std::int64_t, std::chrono::steady_clock::time_point> checkpoint_asked_;
  std::set<std::int64_t> checkpoints_awaited_;
  struct SavedState {
    std::string state;
    std::int64_t step = 0;
  };
  std::map<std::int64_t, SavedState> resume_from_;
  std::string checkpoint_path(const PlannedTask& task) const { return out_path_ + ".ckpt/" + task.task_name + ".ckpt"; }
  std::size_t done_ = 0, failed_ = 0, cancelled_ = 0;
  bool cancel_requested_ = false;
  std::string state_ = "queued";
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_flush_ = started_;
};

// A busy worker sent nothing for longer than the worker timeout.
class WorkerSilentError : public Error {
 public:
  using Error::Error;
};

class Coordinator {
 public:
  // Receives progress events, on the coordinator's (MPI) thread.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_event(const CampaignRun& run, const pb::ProgressEvent& event) = 0;
  };
  struct Result {
    std::size_t done = 0;
    std::size_t failed = 0;
    bool interrupted = false;
    // Set when the run stopped because a busy worker fell silent (see set_worker_timeout).
    std::string silent_worker;
  };

  explicit Coordinator(Transport& transport);
  void set_listener(Listener* listener) { listener_ = listener; }
  // Serve mode: an idle worker waits for the next campaign instead of being sent home.
  void set_keep_workers(bool keep) { keep_workers_ = keep; }
  // A worker running a task or unit that sends nothing (no chunk, no heartbeat) for this long is
  // taken for stopped or hung: run_to_completion then closes the files as "interrupted" and
  // returns with Result::silent_worker set (step() throws WorkerSilentError). Zero: no watchdog.
  void set_worker_timeout(std::chrono::duration<double> timeout) { worker_timeout_ = timeout; }

  CampaignRun& add(std::unique_ptr<CampaignRun> run);
  // Cancels a campaign: pending tasks are marked cancelled, running ones are told to stop at
  // their next chunk; the file is closed once none runs. False if unknown or already finished.
  bool cancel(std::int64_t campaign_id);
  // Stops starting tasks; running ones finish; unfinished campaigns end as "drained".
  void drain();
  // Flushes every open file now (SIGUSR1 in `gdlab serve`).
  void flush_all();
  // Handles one message or one piece of due work; false if there was nothing to do.
  bool step();
  // True while any task runs.
  bool busy() const;
  bool all_finished() const;
  // From now on every worker that asks for work is sent home; idle ones are sent home now.
  void release_workers();
  int live_workers() const { return live_workers_; }
  CampaignRun* find(std::int64_t campaign_id);
  const std::vector<std::unique_ptr<CampaignRun>>& campaigns() const { return campaigns_; }

  // `gdlab run`: runs everything added to completion and sends every worker home. `signals`
  // (optional) is polled every iteration: kFlushRequested flushes every file; kStopRequested
  // closes every file as "interrupted" (unfinished tasks are redone by --resume) and returns at
  // once, leaving the workers to the caller.
  static constexpr int kFlushRequested = 1;
  static constexpr int kStopRequested = 2;
  Result run_to_completion(std::atomic<int>* signals = nullptr);
  // Tells every worker to shut down without running anything (used when a run cannot start);
  // answers each worker's first request so no message is left unreceived.
  static void dismiss_workers(Transport& transport);

 private:
  void handle(const Message& m);
  bool assign_to(int worker);
  CampaignRun& run_of(std::int64_t campaign_id);
  const PlannedTask& task_of(CampaignRun& run, std::int64_t task_id);
  void task_finished(CampaignRun& run, const PlannedTask& task, const std::string& type, const std::string& detail,
                     double seconds);
  void maybe_finalize(CampaignRun& run);
  void emit(const CampaignRun& run, const std::string& type, const std::string& task, const std::string& detail,
            const std::map<std::string, double>* summary = nullptr);
  void send_home(int worker);
  void dispatch(CampaignRun& run, std::size_t index, const std::vector<int>& ranks);
  void release_reservation();
  // Tasks split into units.
  bool start_unit_task(CampaignRun& run, std::size_t index, int worker);
  bool hand_out_unit(CampaignRun& run, CampaignRun::UnitTask& task, std::int64_t task_id, int worker);
  void on_unit_result(const pb::UnitResult& result, int worker);
  void end_unit_task(CampaignRun& run, std::int64_t task_id, const std::string& type, const std::string& detail);
  void checkpoint_unit_task(CampaignRun& run, std::int64_t task_id, CampaignRun::UnitTask& task);
  // Checkpoints every task that can: tasks split into units at once, tasks that checkpoint
  // themselves by asking them (their state arrives as a TaskCheckpoint message).
  void checkpoint_all();
  void request_checkpoint(CampaignRun& run, std::int64_t task_id);
  void on_task_checkpoint(const pb::TaskCheckpoint& checkpoint, int worker);
  // SIGTERM: waits (at most `limit`) for the checkpoints asked for, handling messages meanwhile.
  void await_checkpoints(std::chrono::duration<double> limit);
  void offer_idle_workers();
  // Writes a chunk produced on this rank (a merger's results) or received from a worker.
  void absorb_chunk(CampaignRun& run, const pb::TrajectoryChunk& chunk);

  void check_silent_workers();
  // Closes every file as "interrupted"; first collects fresh checkpoints when `wait_for_checkpoints`.
  void interrupt_all(Result& result, bool wait_for_checkpoints);

  Transport& transport_;
  std::chrono::duration<double> worker_timeout_{0};
  std::map<int, std::chrono::steady_clock::time_point> last_heard_;
  std::chrono::steady_clock::time_point last_watchdog_check_ = std::chrono::steady_clock::now();
  Listener* listener_ = nullptr;
  bool keep_workers_ = false;
  bool draining_ = false;
  bool stopping_ = false;  // interrupt_all: collecting the last checkpoints before closing the files
  bool releasing_ = false;
  int live_workers_;
  std::deque<int> idle_workers_;
  std::vector<std::unique_ptr<CampaignRun>> campaigns_;
  std::size_t round_robin_ = 0;
  // A multi-rank task gathering its workers: they wait here until there are enough.
  struct Reservation {
    CampaignRun* run = nullptr;
    std::size_t index = 0;
    std::vector<int> ranks;
  };
  std::optional<Reservation> reservation_;
};

}  // namespace gdlab
