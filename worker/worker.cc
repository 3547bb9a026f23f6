#include "worker/worker.h"

#include <iostream>
#include <map>

#include "common/campaign.h"
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

// Buffers a task's results into TrajectoryChunk messages and ships them to the coordinator as
// they fill up or age, so worker memory stays bounded however long the task runs.
class ChunkingRecorder : public Recorder {
 public:
  ChunkingRecorder(Transport& transport, const WorkerOptions& options, std::int64_t campaign_id, std::int64_t task_id)
      : transport_(transport), options_(options), campaign_id_(campaign_id), task_id_(task_id) {
    reset();
  }

  void append(std::string_view path, std::int64_t step, double time, std::span<const double> value) override {
    auto it = index_.find(path);
    if (it == index_.end()) {
      auto* s = chunk().add_series();
      s->set_path(std::string(path));
      s->set_width(static_cast<std::int32_t>(value.size()));
      it = index_.emplace(std::string(path), chunk().series_size() - 1).first;
    }
    auto* s = chunk().mutable_series(it->second);
    if (static_cast<std::size_t>(s->width()) != value.size())
      throw Error("series " + std::string(path) + ": sample width changed");
    s->add_step(step);
    s->add_time(time);
    for (double v : value) s->add_value(v);
    bytes_ += 16 + 8 * value.size();
    maybe_send();
  }

  void put_array(std::string_view path, std::vector<std::uint64_t> shape, std::span<const double> data) override {
    auto* a = chunk().add_arrays();
    a->set_path(std::string(path));
    for (auto d : shape) a->add_shape(d);
    for (double v : data) a->add_value(v);
    bytes_ += 8 * data.size();
    maybe_send();
  }

  void set_attribute(std::string_view name, std::string_view text) override {
    auto* a = chunk().add_attributes();
    a->set_name(std::string(name));
    a->set_text(std::string(text));
  }

  void set_attribute(std::string_view name, double value) override {
    auto* a = chunk().add_attributes();
    a->set_name(std::string(name));
    a->set_number(value);
  }

  void send() {
    const auto& c = msg_.chunk();
    if (c.series_size() == 0 && c.arrays_size() == 0 && c.attributes_size() == 0) return;
    send_wire(transport_, options_.coordinator_rank, std::move(msg_));
    reset();
  }

  // While a task runs, the only message the coordinator sends this worker is a CancelTask: stop
  // at this chunk. Checked when a chunk is sent, and at most every 50 ms between chunks.
  void check_cancelled() {
    last_cancel_check_ = std::chrono::steady_clock::now();
    while (auto m = transport_.poll()) {
      const pb::WireMessage msg = decode_wire(*m);
      if (msg.has_cancel() && msg.cancel().campaign_id() == campaign_id_ && msg.cancel().task_id() == task_id_)
        throw TaskCancelled();
      if (!msg.has_cancel()) throw TransportError("worker got an unexpected message while running a task");
    }
  }

 private:
  pb::TrajectoryChunk& chunk() { return *msg_.mutable_chunk(); }
  void reset() {
    msg_.Clear();
    chunk().set_task_id(task_id_);
    chunk().set_campaign_id(campaign_id_);
    index_.clear();
    bytes_ = 0;
    born_ = std::chrono::steady_clock::now();
  }
  void maybe_send() {
    const auto now = std::chrono::steady_clock::now();
    if (bytes_ >= options_.chunk_bytes || now - born_ >= options_.chunk_age) {
      send();
      check_cancelled();
    } else if (now - last_cancel_check_ >= std::chrono::milliseconds(50)) {
      check_cancelled();
    }
  }

  Transport& transport_;
  const WorkerOptions& options_;
  std::int64_t campaign_id_;
  std::int64_t task_id_;
  std::chrono::steady_clock::time_point last_cancel_check_ = std::chrono::steady_clock::now();
  pb::WireMessage msg_;
  std::map<std::string, int, std::less<>> index_;
  std::size_t bytes_ = 0;
  std::chrono::steady_clock::time_point born_;
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
    if (msg.has_cancel()) continue;  // a cancel that arrived after its task finished: stale
    asked = false;
    if (!msg.has_assign()) throw TransportError("worker got an unexpected message from rank " + std::to_string(m->source));

    const pb::TaskAssignment& a = msg.assign();
    const auto started = std::chrono::steady_clock::now();
    ChunkingRecorder recorder(transport_, options_, a.campaign_id(), a.task_id());
    pb::WireMessage outcome;
    try {
      pb::Experiment experiment;
      if (!experiment.ParseFromString(a.experiment())) throw TransportError("malformed task assignment");
      std::string kind;
      const auto* spec = kind_message(experiment, &kind);
      const ExperimentKind* impl = spec ? KindRegistry::instance().find(kind) : nullptr;
      if (impl == nullptr) throw Error("unknown experiment kind '" + kind + "'");
      TaskContext context{a.campaign_seed(), a.experiment_index(), a.task_id(), a.spec_dir(),
                          {a.allowed_input_dirs().begin(), a.allowed_input_dirs().end()}};
      auto prepared = impl->prepare(*spec, context);
      if (a.group_ranks_size() > 1) {
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
      } else {
        prepared->run(recorder);
      }
      recorder.send();
      outcome.mutable_done()->set_task_id(a.task_id());
      outcome.mutable_done()->set_campaign_id(a.campaign_id());
      outcome.mutable_done()->set_wall_seconds(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    } catch (const TaskCancelled&) {
      outcome.mutable_failed()->set_task_id(a.task_id());
      outcome.mutable_failed()->set_campaign_id(a.campaign_id());
      outcome.mutable_failed()->set_cancelled(true);
    } catch (const TransportError& e) {
      if (a.group_ranks_size() <= 1) throw;  // the coordinator link is broken: nothing to report to
      recorder.send();  // a group task's own transport failed (a silent peer): the task failed
      outcome.mutable_failed()->set_task_id(a.task_id());
      outcome.mutable_failed()->set_campaign_id(a.campaign_id());
      outcome.mutable_failed()->set_error(e.what());
    } catch (const std::exception& e) {
      // The task failed; the worker goes on with the next one. Results already streamed stay in
      // the file next to the error.
      recorder.send();
      outcome.mutable_failed()->set_task_id(a.task_id());
      outcome.mutable_failed()->set_campaign_id(a.campaign_id());
      outcome.mutable_failed()->set_error(e.what());
    }
    send_wire(transport_, options_.coordinator_rank, std::move(outcome));
    ++ran;
  }
}

}  // namespace gdlab
