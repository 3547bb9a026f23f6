#include "worker/worker.h"

#include <atomic>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "common/campaign.h"
#include "common/chunk_builder.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "common/wire.h"

namespace gdlab {
namespace {

// Thrown out of a running task when its campaign is cancelled.
class TaskCancelled : public Error {
 public:
  TaskCancelled() : Error("cancelled") {}
};

}  // namespace

// Where a running task's messages go and where it learns that it was cancelled: straight onto
// the transport (tasks that run on the MPI thread: multi-rank groups), or into a queue that the
// MPI thread drains (tasks on a compute thread), so only one thread ever calls MPI.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void ship(pb::WireMessage message) = 0;
  // Throws TaskCancelled if the coordinator cancelled the task.
  virtual void check_cancelled() = 0;
  // The coordinator asked the task for a checkpoint (noticed when check_cancelled() polls, or by
  // the MPI thread for a task on a compute thread); cleared once one is saved.
  bool checkpoint_requested() const { return checkpoint_requested_.load(std::memory_order_relaxed); }
  void request_checkpoint() { checkpoint_requested_.store(true, std::memory_order_relaxed); }
  void checkpoint_saved() { checkpoint_requested_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> checkpoint_requested_{false};
};

class DirectOutbox : public Outbox {
 public:
  DirectOutbox(Transport& transport, int coordinator, std::int64_t campaign_id, std::int64_t task_id)
      : transport_(transport), coordinator_(coordinator), campaign_id_(campaign_id), task_id_(task_id) {}
  void ship(pb::WireMessage message) override { send_wire(transport_, coordinator_, std::move(message)); }
  // While a task runs, the coordinator sends this worker only a CancelTask or a CheckpointRequest.
  void check_cancelled() override {
    while (auto m = transport_.poll()) {
      const pb::WireMessage msg = decode_wire(*m);
      if (msg.has_checkpoint_request()) {
        if (msg.checkpoint_request().campaign_id() == campaign_id_ && msg.checkpoint_request().task_id() == task_id_)
          request_checkpoint();
        continue;
      }
      if (msg.has_cancel() && msg.cancel().campaign_id() == campaign_id_ && msg.cancel().task_id() == task_id_)
        throw TaskCancelled();
      if (!msg.has_cancel()) throw TransportError("worker got an unexpected message while running a task");
    }
  }

 private:
  Transport& transport_;
  int coordinator_;
  std::int64_t campaign_id_, task_id_;
};

class QueuedOutbox : public Outbox {
 public:
  void ship(pb::WireMessage message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(message));
  }
  void check_cancelled() override {
    if (cancelled_.load(std::memory_order_relaxed)) throw TaskCancelled();
  }
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  std::deque<pb::WireMessage> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::deque<pb::WireMessage> out;
    out.swap(queue_);
    return out;
  }

 private:
  std::mutex mutex_;
  std::deque<pb::WireMessage> queue_;
  std::atomic<bool> cancelled_{false};
};

namespace {

// Buffers a task's results into TrajectoryChunk messages and ships them to the coordinator as
// they fill up or age, so worker memory stays bounded however long the task runs.
class ChunkingRecorder : public Recorder, public TaskCheckpointing {
 public:
  ChunkingRecorder(Outbox& outbox, const WorkerOptions& options, std::int64_t campaign_id, std::int64_t task_id,
                   bool checkpointable = false)
      : outbox_(outbox),
        options_(options),
        campaign_id_(campaign_id),
        task_id_(task_id),
        checkpointable_(checkpointable),
        builder_(campaign_id, task_id) {}

  TaskCheckpointing* checkpointing() override { return checkpointable_ ? this : nullptr; }
  bool due() const override { return outbox_.checkpoint_requested(); }
  // The chunks before the checkpoint go first: the coordinator commits the state together with
  // the rows those chunks put in the file.
  void save(std::int64_t step, std::string state) override {
    send();
    // One MPI message carries the state (an int count of bytes): beyond 1 GiB the checkpoint is
    // skipped with a warning, and a resume continues from the previous one.
    constexpr std::size_t kMaxStateBytes = std::size_t{1} << 30;
    if (state.size() > kMaxStateBytes) {
      std::cerr << "gdlab: task " << task_id_ << ": checkpoint state of " << state.size()
                << " bytes is over 1 GiB; not saved (the previous checkpoint stays)" << std::endl;
      outbox_.checkpoint_saved();
      return;
    }
    pb::WireMessage msg;
    auto* c = msg.mutable_task_checkpoint();
    c->set_campaign_id(campaign_id_);
    c->set_task_id(task_id_);
    c->set_step(step);
    c->set_state(std::move(state));
    outbox_.ship(std::move(msg));
    outbox_.checkpoint_saved();
  }

  void append(std::string_view path, std::int64_t step, double time, std::span<const double> value) override {
    builder_.append(path, step, time, value);
    maybe_send();
  }

  void put_array(std::string_view path, std::vector<std::uint64_t> shape, std::span<const double> data) override {
    builder_.put_array(path, shape, data);
    maybe_send();
  }

  void set_attribute(std::string_view name, std::string_view text) override { builder_.set_attribute(name, text); }
  void set_attribute(std::string_view name, double value) override { builder_.set_attribute(name, value); }

  void send() {
    if (builder_.empty()) return;
    pb::WireMessage msg;
    *msg.mutable_chunk() = builder_.take();
    outbox_.ship(std::move(msg));
    born_ = std::chrono::steady_clock::now();
  }

 private:
  // Cancellation is checked when a chunk is sent, and at most every 50 ms between chunks.
  void maybe_send() {
    const auto now = std::chrono::steady_clock::now();
    if (builder_.bytes() >= options_.chunk_bytes || now - born_ >= options_.chunk_age) {
      send();
      last_cancel_check_ = now;
      outbox_.check_cancelled();
    } else if (now - last_cancel_check_ >= std::chrono::milliseconds(50)) {
      last_cancel_check_ = now;
      outbox_.check_cancelled();
    }
  }

  Outbox& outbox_;
  const WorkerOptions& options_;
  std::int64_t campaign_id_;
  std::int64_t task_id_;
  bool checkpointable_;
  std::chrono::steady_clock::time_point last_cancel_check_ = std::chrono::steady_clock::now();
  ChunkBuilder builder_;
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
};

// The recorder of group ranks other than 0: their results do not go to the file.
class DiscardingRecorder : public Recorder {
 public:
  void append(std::string_view, std::int64_t, double, std::span<const double>) override {}
  void put_array(std::string_view, std::vector<std::uint64_t>, std::span<const double>) override {}
  void set_attribute(std::string_view, std::string_view) override {}
  void set_attribute(std::string_view, double) override {}
};

class TaskGroup : public GroupContext {
 public:
  TaskGroup(std::unique_ptr<Transport> transport) : transport_(std::move(transport)) {}
  int group_rank() const override { return transport_->rank(); }
  int group_size() const override { return transport_->size(); }
  Transport& transport() override { return *transport_; }

 private:
  std::unique_ptr<Transport> transport_;
};

}  // namespace

Worker::Worker(Transport& transport, WorkerOptions options) : transport_(transport), options_(options) {}

Worker::~Worker() = default;

pb::WireMessage Worker::run_unit(const pb::TaskAssignment& a, std::chrono::steady_clock::time_point started) {
  pb::WireMessage outcome;
  try {
    // Consecutive units of one task reuse its prepared form (datasets, tables).
    if (!unit_task_ || unit_campaign_ != a.campaign_id() || unit_task_id_ != a.task_id()) {
      unit_task_.reset();
      unit_task_ = prepare_task(a);
      unit_campaign_ = a.campaign_id();
      unit_task_id_ = a.task_id();
    }
    auto* r = outcome.mutable_unit_result();
    r->set_result(unit_task_->run_unit(a.unit()));
    r->set_task_id(a.task_id());
    r->set_campaign_id(a.campaign_id());
    r->set_unit(a.unit());
    r->set_wall_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  } catch (const std::exception& e) {
    unit_task_.reset();
    outcome.Clear();
    outcome.mutable_failed()->set_task_id(a.task_id());
    outcome.mutable_failed()->set_campaign_id(a.campaign_id());
    outcome.mutable_failed()->set_error(e.what());
  }
  return outcome;
}

void Worker::set_done(pb::WireMessage& outcome, const pb::TaskAssignment& a,
                      std::chrono::steady_clock::time_point started) {
  outcome.Clear();
  outcome.mutable_done()->set_task_id(a.task_id());
  outcome.mutable_done()->set_campaign_id(a.campaign_id());
  outcome.mutable_done()->set_wall_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

void Worker::set_failed(pb::WireMessage& outcome, const pb::TaskAssignment& a, const std::string& error,
                        bool cancelled) {
  outcome.Clear();
  outcome.mutable_failed()->set_task_id(a.task_id());
  outcome.mutable_failed()->set_campaign_id(a.campaign_id());
  if (cancelled)
    outcome.mutable_failed()->set_cancelled(true);
  else
    outcome.mutable_failed()->set_error(error);
}

std::unique_ptr<PreparedTask> Worker::prepare_task(const pb::TaskAssignment& a) {
  pb::Experiment experiment;
  if (!experiment.ParseFromString(a.experiment())) throw TransportError("malformed task assignment");
  std::string kind;
  const auto* spec = kind_message(experiment, &kind);
  const ExperimentKind* impl = spec ? KindRegistry::instance().find(kind) : nullptr;
  if (impl == nullptr) throw Error("unknown experiment kind '" + kind + "'");
  TaskContext context{a.campaign_seed(), a.experiment_index(), a.task_id(), a.spec_dir(),
                      {a.allowed_input_dirs().begin(), a.allowed_input_dirs().end()}};
  std::unique_ptr<PreparedTask> prepared = impl->prepare(*spec, context);
  if (a.resume_step() > 0 || !a.resume_state().empty()) prepared->resume_from(a.resume_state(), a.resume_step());
  return prepared;
}

pb::WireMessage Worker::run_on_compute_thread(const pb::TaskAssignment& a,
                                              const std::function<pb::WireMessage(Outbox&)>& body) {
  QueuedOutbox outbox;
  std::atomic<bool> finished{false};
  pb::WireMessage outcome;
  std::thread compute([&] {
    outcome = body(outbox);  // body catches everything and reports it in the outcome
    finished.store(true, std::memory_order_release);
  });
  // This thread owns MPI: it ships the task's chunks, sends a heartbeat when nothing else went
  // out for heartbeat_interval, and passes a CancelTask on to the task.
  Backoff backoff(std::chrono::microseconds(100), std::chrono::microseconds(5000));
  auto last_sent = std::chrono::steady_clock::now();
  try {
    while (true) {
      const bool done = finished.load(std::memory_order_acquire);
      for (auto& m : outbox.take()) {
        send_wire(transport_, options_.coordinator_rank, std::move(m));
        last_sent = std::chrono::steady_clock::now();
        backoff.reset();
      }
      if (done) break;
      if (std::chrono::steady_clock::now() - last_sent >= options_.heartbeat_interval) {
        pb::WireMessage beat;
        beat.mutable_heartbeat()->set_task_id(a.task_id());
        beat.mutable_heartbeat()->set_campaign_id(a.campaign_id());
        send_wire(transport_, options_.coordinator_rank, std::move(beat));
        last_sent = std::chrono::steady_clock::now();
      }
      while (auto m = transport_.poll()) {
        const pb::WireMessage msg = decode_wire(*m);
        if (msg.has_checkpoint_request()) {
          if (msg.checkpoint_request().campaign_id() == a.campaign_id() && msg.checkpoint_request().task_id() == a.task_id())
            outbox.request_checkpoint();
          continue;
        }
        if (!msg.has_cancel()) throw TransportError("worker got an unexpected message while running a task");
        if (msg.cancel().campaign_id() == a.campaign_id() && msg.cancel().task_id() == a.task_id()) outbox.cancel();
      }
      backoff.sleep();
    }
  } catch (...) {
    outbox.cancel();
    compute.join();
    throw;
  }
  compute.join();
  return outcome;
}

std::size_t Worker::run() {
  std::size_t ran = 0;
  Backoff backoff;
  bool asked = false;  // one request outstanding at a time
  while (true) {
    if (!asked) {
      pb::WireMessage request;
      request.mutable_request();
      send_wire(transport_, options_.coordinator_rank, std::move(request));
      asked = true;
    }
    std::optional<Message> m;
    while (!(m = transport_.poll())) backoff.sleep();
    backoff.reset();
    const pb::WireMessage msg = decode_wire(*m);
    if (msg.has_shutdown()) return ran;
    // A cancel or checkpoint request that arrived after its task finished: stale.
    if (msg.has_cancel() || msg.has_checkpoint_request()) continue;
    asked = false;
    if (!msg.has_assign()) throw TransportError("worker got an unexpected message from rank " + std::to_string(m->source));

    const pb::TaskAssignment& a = msg.assign();
    const auto started = std::chrono::steady_clock::now();
    pb::WireMessage outcome;
    if (a.group_ranks_size() > 1) {
      // A multi-rank task talks MPI inside run_group, so it runs on this (the MPI) thread.
      DirectOutbox outbox(transport_, options_.coordinator_rank, a.campaign_id(), a.task_id());
      std::unique_ptr<PreparedTask> prepared;
      try {
        prepared = prepare_task(a);
      } catch (const std::exception& e) {
        set_failed(outcome, a, e.what(), false);
        send_wire(transport_, options_.coordinator_rank, std::move(outcome));
        ++ran;
        continue;
      }
      ChunkingRecorder recorder(outbox, options_, a.campaign_id(), a.task_id(), prepared->checkpointable());
      try {
        TaskGroup group(transport_.create_group({a.group_ranks().begin(), a.group_ranks().end()}));
        if (group.group_rank() != 0) {
          // A member other than rank 0: its part ends when the task does; rank 0 reports.
          DiscardingRecorder discard;
          try {
            prepared->run_group(discard, group);
          } catch (const std::exception& e) {
            std::cerr << "gdlab: worker rank " << transport_.rank() << ", " << a.task_name()
                      << " (group rank " << group.group_rank() << "): " << e.what() << std::endl;
          }
          ++ran;
          continue;
        }
        prepared->run_group(recorder, group);
        recorder.send();
        set_done(outcome, a, started);
      } catch (const TaskCancelled&) {
        set_failed(outcome, a, "", true);
      } catch (const std::exception& e) {
        // A group task's own transport failed (a silent peer), or the task failed; the worker goes
        // on with the next one. Results already streamed stay in the file next to the error.
        recorder.send();
        set_failed(outcome, a, e.what(), false);
      }
    } else if (a.has_unit()) {
      outcome = run_on_compute_thread(a, [&](Outbox&) { return run_unit(a, started); });
    } else {
      outcome = run_on_compute_thread(a, [&](Outbox& outbox) {
        pb::WireMessage result;
        try {
          std::unique_ptr<PreparedTask> prepared = prepare_task(a);
          ChunkingRecorder recorder(outbox, options_, a.campaign_id(), a.task_id(), prepared->checkpointable());
          try {
            prepared->run(recorder);
            recorder.send();
            set_done(result, a, started);
          } catch (const TaskCancelled&) {
            set_failed(result, a, "", true);
          } catch (const std::exception& e) {
            recorder.send();
            set_failed(result, a, e.what(), false);
          }
        } catch (const std::exception& e) {
          set_failed(result, a, e.what(), false);
        }
        return result;
      });
    }
    send_wire(transport_, options_.coordinator_rank, std::move(outcome));
    ++ran;
  }
}

}  // namespace gdlab
