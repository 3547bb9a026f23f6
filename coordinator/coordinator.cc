#include "coordinator/coordinator.h"

#include <deque>
#include <map>

#include "common/errors.h"
#include "common/wire.h"

namespace gdlab {

Coordinator::Coordinator(Transport& transport, const Campaign& campaign, CampaignStore& store, RunLog& log)
    : transport_(transport), campaign_(campaign), store_(store), log_(log) {}

namespace {

pb::WireMessage shutdown_message(pb::Shutdown::Reason reason) {
  pb::WireMessage msg;
  msg.mutable_shutdown()->set_reason(reason);
  return msg;
}

std::string describe(const PlannedTask& t) {
  return t.kind + (t.sweep_point.empty() ? "" : " " + t.sweep_point);
}

}  // namespace

void Coordinator::dismiss_workers(Transport& transport) {
  int remaining = transport.size() - 1;
  Backoff backoff;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    auto m = transport.poll();
    if (!m) {
      backoff.sleep();
      continue;
    }
    backoff.reset();
    if (decode_wire(*m).has_request()) {
      send_wire(transport, m->source, shutdown_message(pb::Shutdown::ABORT));
      --remaining;
    }
  }
}

Coordinator::Result Coordinator::run() {
  const auto& tasks = campaign_.tasks;
  std::deque<std::size_t> queue;
  for (std::size_t i = 0; i < tasks.size(); ++i) queue.push_back(i);
  std::map<std::int64_t, std::size_t> index_of;
  for (std::size_t i = 0; i < tasks.size(); ++i) index_of[tasks[i].task_id] = i;
  std::map<std::int64_t, std::string> verdict;  // a kind's "verdict" attribute, shown in progress lines

  Result result;
  int active_workers = transport_.size() - 1;
  const auto flush_interval = std::chrono::duration<double>(campaign_.spec.store().flush_interval_s());
  auto last_flush = std::chrono::steady_clock::now();
  Backoff backoff;

  auto lookup = [&](std::int64_t id) -> const PlannedTask& {
    auto it = index_of.find(id);
    if (it == index_of.end()) throw TransportError("message about unknown task id " + std::to_string(id));
    return tasks[it->second];
  };

  while (active_workers > 0) {
    if (std::chrono::steady_clock::now() - last_flush >= flush_interval) {
      log_.flushed(store_.flush());
      last_flush = std::chrono::steady_clock::now();
    }
    std::optional<Message> m = transport_.poll();
    if (!m) {
      backoff.sleep();
      continue;
    }
    backoff.reset();
    const pb::WireMessage msg = decode_wire(*m);
    switch (msg.body_case()) {
      case pb::WireMessage::kRequest: {
        if (queue.empty()) {
          send_wire(transport_, m->source, shutdown_message(pb::Shutdown::NO_MORE_TASKS));
          --active_workers;
          break;
        }
        const PlannedTask& t = tasks[queue.front()];
        queue.pop_front();
        pb::WireMessage assign;
        auto* a = assign.mutable_assign();
        a->set_task_id(t.task_id);
        a->set_task_name(t.task_name);
        a->set_experiment(t.experiment.SerializeAsString());
        a->set_campaign_seed(campaign_.spec.seed());
        a->set_experiment_index(t.experiment_index);
        a->set_spec_dir(campaign_.spec_dir);
        store_.mark_running(t.task_id, m->source);
        send_wire(transport_, m->source, std::move(assign));
        log_.task_started(t.task_name, describe(t), m->source);
        break;
      }
      case pb::WireMessage::kChunk:
        lookup(msg.chunk().task_id());
        for (const auto& attr : msg.chunk().attributes())
          if (attr.name() == "verdict") verdict[msg.chunk().task_id()] = attr.text();
        store_.append(msg.chunk());
        break;
      case pb::WireMessage::kDone: {
        const PlannedTask& t = lookup(msg.done().task_id());
        store_.mark_done(t.task_id, msg.done().wall_seconds());
        ++result.done;
        const std::string detail = verdict.count(t.task_id) ? "verdict " + verdict[t.task_id] : "";
        log_.task_finished(t.task_name, describe(t), true, detail, msg.done().wall_seconds(),
                           result.done + result.failed, tasks.size(), result.failed);
        break;
      }
      case pb::WireMessage::kFailed: {
        const PlannedTask& t = lookup(msg.failed().task_id());
        store_.mark_failed(t.task_id, msg.failed().error());
        ++result.failed;
        log_.task_finished(t.task_name, describe(t), false, msg.failed().error(), 0.0, result.done + result.failed,
                           tasks.size(), result.failed);
        break;
      }
      default:
        throw TransportError("unexpected message from rank " + std::to_string(m->source));
    }
  }
  return result;
}

}  // namespace gdlab
