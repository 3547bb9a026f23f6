// A worker rank's task loop: ask the coordinator for a task, prepare it through the kind
// registry, run it while streaming its results back in bounded chunks, report done or failed,
// repeat until told to shut down. It knows no experiment kind by name.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <memory>

#include "common/experiment_kind.h"
#include "common/transport.h"
#include "proto/gdlab.pb.h"

namespace gdlab {

struct WorkerOptions {
  int coordinator_rank = 0;
  // A chunk is sent when it holds this many bytes of values, or when it is this old.
  std::size_t chunk_bytes = 256 * 1024;
  std::chrono::milliseconds chunk_age{500};
  // A worker whose task sent nothing for this long sends a heartbeat (the coordinator's
  // --worker-timeout watches for silence).
  std::chrono::milliseconds heartbeat_interval{1000};
};

class Outbox;

class Worker {
 public:
  explicit Worker(Transport& transport, WorkerOptions options = {});
  ~Worker();
  // Returns the number of tasks (and units of split tasks) this worker ran.
  std::size_t run();

 private:
  // Runs one unit of a task split into units; returns the UnitResult or TaskFailed to send.
  pb::WireMessage run_unit(const pb::TaskAssignment& assignment, std::chrono::steady_clock::time_point started);
  // Runs `body` on a compute thread while this thread (the one that owns MPI) ships its messages,
  // sends heartbeats and passes on a cancel; returns the body's outcome message.
  pb::WireMessage run_on_compute_thread(const pb::TaskAssignment& assignment,
                                        const std::function<pb::WireMessage(Outbox&)>& body);
  std::unique_ptr<PreparedTask> prepare_task(const pb::TaskAssignment& assignment);
  static void set_done(pb::WireMessage& outcome, const pb::TaskAssignment& assignment,
                       std::chrono::steady_clock::time_point started);
  static void set_failed(pb::WireMessage& outcome, const pb::TaskAssignment& assignment, const std::string& error,
                         bool cancelled);
  std::unique_ptr<PreparedTask> unit_task_;
  std::int64_t unit_campaign_ = -1, unit_task_id_ = -1;

  Transport& transport_;
  WorkerOptions options_;
};

}  // namespace gdlab
