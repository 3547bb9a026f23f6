#include "coordinator/coordinator.h"

#include <cstdio>
#include <filesystem>

#include "common/checkpoint.h"
#include "common/chunk_builder.h"
#include "common/errors.h"
#include "common/wire.h"

namespace gdlab {

namespace {

pb::WireMessage shutdown_message(pb::Shutdown::Reason reason) {
  pb::WireMessage msg;
  msg.mutable_shutdown()->set_reason(reason);
  return msg;
}

std::string describe(const PlannedTask& t) { return t.kind + (t.sweep_point.empty() ? "" : " " + t.sweep_point); }

std::string format_seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The recorder of a merger on rank 0: it builds the same TrajectoryChunk a worker would send.
class ChunkRecorder : public Recorder {
 public:
  ChunkRecorder(std::int64_t campaign_id, std::int64_t task_id) : builder_(campaign_id, task_id) {}
  void append(std::string_view path, std::int64_t step, double time, std::span<const double> value) override {
    builder_.append(path, step, time, value);
  }
  void put_array(std::string_view path, std::vector<std::uint64_t> shape, std::span<const double> data) override {
    builder_.put_array(path, shape, data);
  }
  void set_attribute(std::string_view name, std::string_view text) override { builder_.set_attribute(name, text); }
  void set_attribute(std::string_view name, double value) override { builder_.set_attribute(name, value); }
  bool empty() const { return builder_.empty(); }
  const pb::TrajectoryChunk& chunk() const { return builder_.chunk(); }

 private:
  ChunkBuilder builder_;
};

}  // namespace

// ------------------------------------------------------------------------------------ CampaignRun

CampaignRun::CampaignRun(std::int64_t id, Campaign campaign, std::string out_path, bool quiet, bool resume)
    : id_(id), campaign_(std::move(campaign)), out_path_(std::move(out_path)) {
  std::set<std::int64_t> done;
  // Tasks that checkpoint themselves continue from their checkpoint: their groups in the file are
  // cut back to the rows the checkpoint has seen.
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> cut_back;
  std::map<std::int64_t, pb::TaskCheckpointFile> saved;
  std::vector<std::string> notes;
  if (resume) {
    for (const auto& t : campaign_.tasks) {
      if (!t.checkpointable || t.split_into_units) continue;
      try {
        std::optional<std::string> payload = read_checkpoint(checkpoint_path(t));
        if (!payload) continue;
        pb::TaskCheckpointFile f;
        if (!f.ParseFromString(*payload) || f.task_id() != t.task_id)
          throw StoreError(checkpoint_path(t) + ": not a checkpoint of " + t.task_name);
        for (const auto& s : f.series()) cut_back[t.task_id][s.path()] = s.rows();
        if (f.series_size() == 0) cut_back[t.task_id];  // a checkpoint before any row
        saved.emplace(t.task_id, std::move(f));
      } catch (const StoreError& e) {
        notes.push_back(std::string(e.what()) + "; " + t.task_name + " starts from scratch");
      }
    }
  }
  std::set<std::int64_t> cut;
  store_ = std::make_unique<CampaignStore>(resume ? CampaignStore::resume(out_path_, campaign_, &done, cut_back, &cut)
                                                  : CampaignStore::create(out_path_, campaign_));
  log_ = std::make_unique<RunLog>(out_path_ + ".log", quiet, /*append=*/resume);
  if (!resume) {
    // Checkpoints of an earlier file of this name belong to it, not to this campaign.
    std::error_code ignored;
    std::filesystem::remove_all(out_path_ + ".ckpt", ignored);
  }
  for (const auto& note : notes) log_->message(note);
  for (std::size_t i = 0; i < campaign_.tasks.size(); ++i) {
    index_of_[campaign_.tasks[i].task_id] = i;
    if (done.count(campaign_.tasks[i].task_id))
      ++done_;
    else
      pending_.push_back(i);
  }
  for (auto& [task_id, f] : saved) {
    const PlannedTask& t = campaign_.tasks[index_of_.at(task_id)];
    if (done.count(task_id)) {
      // Finished after its last checkpoint (killed before the checkpoint was removed).
      try {
        remove_checkpoint(checkpoint_path(t));
      } catch (const StoreError&) {
      }
    } else if (cut.count(task_id)) {
      log_->message(t.task_name + ": continues from its checkpoint at step " + std::to_string(f.step()) + " (" +
                    checkpoint_path(t) + ")");
      resume_from_[task_id] = SavedState{std::move(*f.mutable_state()), f.step()};
    } else {
      log_->message(t.task_name + ": the file does not hold the rows of its checkpoint " + checkpoint_path(t) +
                    "; the task starts from scratch");
    }
  }
  if (resume)
    log_->message("resuming " + out_path_ + ": " + std::to_string(done_) + " tasks already done, " +
                  std::to_string(pending_.size()) + " to run");
}

bool CampaignRun::finished() const {
  return state_ == "complete" || state_ == "failed" || state_ == "cancelled" || state_ == "drained";
}

pb::CampaignInfo CampaignRun::info() const {
  pb::CampaignInfo info;
  info.set_campaign_id(id_);
  info.set_name(campaign_.spec.name());
  info.set_state(state_);
  info.set_tasks_total(static_cast<std::int64_t>(campaign_.tasks.size()));
  info.set_tasks_done(static_cast<std::int64_t>(done_));
  info.set_tasks_failed(static_cast<std::int64_t>(failed_));
  info.set_tasks_running(static_cast<std::int64_t>(running_.size()));
  info.set_tasks_cancelled(static_cast<std::int64_t>(cancelled_));
  info.set_file(out_path_);
  const double elapsed = seconds_since(started_);
  info.set_elapsed_s(elapsed);
  const std::size_t finished_tasks = done_ + failed_;
  const std::size_t left = campaign_.tasks.size() - finished_tasks - cancelled_;
  info.set_eta_s(finished() ? 0.0
                 : finished_tasks > 0
                     ? elapsed / static_cast<double>(finished_tasks) * static_cast<double>(left)
                     : -1.0);
  return info;
}

// ------------------------------------------------------------------------------------ Coordinator

Coordinator::Coordinator(Transport& transport) : transport_(transport), live_workers_(transport.size() - 1) {}

CampaignRun& Coordinator::add(std::unique_ptr<CampaignRun> run) {
  CampaignRun& r = *run;
  campaigns_.push_back(std::move(run));
  r.log_->start(r.campaign_.spec.name(), r.campaign_.tasks.size(), transport_.size(), r.out_path_);
  emit(r, "snapshot", "", "queued");
  maybe_finalize(r);  // a campaign without tasks is complete at once
  // Workers waiting for work get it now.
  while (!idle_workers_.empty() && assign_to(idle_workers_.front())) idle_workers_.pop_front();
  return r;
}

CampaignRun* Coordinator::find(std::int64_t campaign_id) {
  for (auto& r : campaigns_)
    if (r->id_ == campaign_id) return r.get();
  return nullptr;
}

CampaignRun& Coordinator::run_of(std::int64_t campaign_id) {
  CampaignRun* r = find(campaign_id);
  if (r == nullptr || r->store_ == nullptr)
    throw TransportError("message about unknown or closed campaign " + std::to_string(campaign_id));
  return *r;
}

const PlannedTask& Coordinator::task_of(CampaignRun& run, std::int64_t task_id) {
  auto it = run.index_of_.find(task_id);
  if (it == run.index_of_.end()) throw TransportError("message about unknown task id " + std::to_string(task_id));
  return run.campaign_.tasks[it->second];
}

bool Coordinator::cancel(std::int64_t campaign_id) {
  CampaignRun* r = find(campaign_id);
  if (r == nullptr || r->finished()) return false;
  if (r->cancel_requested_) return true;
  r->cancel_requested_ = true;
  if (reservation_ && reservation_->run == r) release_reservation();
  for (std::size_t i : r->pending_) {
    r->store_->mark_cancelled(r->campaign_.tasks[i].task_id);
    ++r->cancelled_;
  }
  r->pending_.clear();
  // A task split into units ends at once: its units still out finish soon and are ignored.
  std::vector<std::int64_t> unit_ids;
  for (const auto& [task_id, ut] : r->unit_tasks_) unit_ids.push_back(task_id);
  for (std::int64_t task_id : unit_ids) end_unit_task(*r, task_id, "task_cancelled", "");
  if (r->finished()) return true;
  for (const auto& [task_id, worker] : r->running_) {
    pb::WireMessage msg;
    msg.mutable_cancel()->set_campaign_id(r->id_);
    msg.mutable_cancel()->set_task_id(task_id);
    send_wire(transport_, worker, std::move(msg));
  }
  r->log_->message("campaign " + r->campaign_.spec.name() + ": cancel requested");
  maybe_finalize(*r);
  return true;
}

void Coordinator::drain() {
  draining_ = true;
  release_reservation();
  for (auto& r : campaigns_) maybe_finalize(*r);
}

bool Coordinator::busy() const {
  for (const auto& r : campaigns_)
    if (!r->running_.empty()) return true;
  return false;
}

bool Coordinator::all_finished() const {
  for (const auto& r : campaigns_)
    if (!r->finished()) return false;
  return true;
}

void Coordinator::send_home(int worker) {
  send_wire(transport_, worker, shutdown_message(pb::Shutdown::NO_MORE_TASKS));
  --live_workers_;
}

void Coordinator::release_workers() {
  releasing_ = true;
  release_reservation();
  while (!idle_workers_.empty()) {
    send_home(idle_workers_.front());
    idle_workers_.pop_front();
  }
}

bool Coordinator::assign_to(int worker) {
  if (draining_ || stopping_ || campaigns_.empty()) return false;
  if (reservation_) {
    reservation_->ranks.push_back(worker);
    const PlannedTask& t = reservation_->run->campaign_.tasks[reservation_->index];
    if (static_cast<int>(reservation_->ranks.size()) == t.ranks_needed) {
      const Reservation r = *reservation_;
      reservation_.reset();
      dispatch(*r.run, r.index, r.ranks);
    }
    return true;
  }
  // Round robin over the campaigns that have work: units of a running split task first (so it
  // finishes and frees its memory), then the next pending task.
  for (std::size_t k = 0; k < campaigns_.size(); ++k) {
    CampaignRun& r = *campaigns_[(round_robin_ + k) % campaigns_.size()];
    if (r.cancel_requested_ || r.finished()) continue;
    bool handed = false;
    for (auto& [task_id, ut] : r.unit_tasks_)
      if ((handed = hand_out_unit(r, ut, task_id, worker))) break;
    if (handed) {
      round_robin_ = (round_robin_ + k + 1) % campaigns_.size();
      return true;
    }
    if (r.pending_.empty()) continue;
    round_robin_ = (round_robin_ + k + 1) % campaigns_.size();
    const std::size_t index = r.pending_.front();
    r.pending_.pop_front();
    if (r.campaign_.tasks[index].split_into_units) {
      if (start_unit_task(r, index, worker)) return true;
      return assign_to(worker);  // it ended at once (failed to prepare, or restored complete)
    }
    if (r.campaign_.tasks[index].ranks_needed > 1) {
      reservation_ = Reservation{&r, index, {worker}};
      return true;
    }
    dispatch(r, index, {worker});
    return true;
  }
  return false;
}

void Coordinator::dispatch(CampaignRun& r, std::size_t index, const std::vector<int>& ranks) {
  const PlannedTask& t = r.campaign_.tasks[index];
  pb::WireMessage assign;
  auto* a = assign.mutable_assign();
  a->set_task_id(t.task_id);
  a->set_campaign_id(r.id_);
  a->set_task_name(t.task_name);
  a->set_experiment(t.experiment.SerializeAsString());
  a->set_campaign_seed(r.campaign_.spec.seed());
  a->set_experiment_index(t.experiment_index);
  a->set_spec_dir(r.campaign_.spec_dir);
  for (const auto& dir : r.campaign_.allowed_input_dirs) a->add_allowed_input_dirs(dir);
  if (ranks.size() > 1)
    for (int rank : ranks) a->add_group_ranks(rank);
  std::string resume_state;
  if (auto saved = r.resume_from_.find(t.task_id); saved != r.resume_from_.end()) {
    a->set_resume_step(saved->second.step);
    resume_state = std::move(saved->second.state);
    r.resume_from_.erase(saved);
  }
  r.store_->mark_running(t.task_id, ranks.front());
  r.running_[t.task_id] = ranks.front();  // group rank 0 reports the outcome
  r.state_ = "running";
  if (t.checkpointable) r.checkpoint_asked_[t.task_id] = std::chrono::steady_clock::now();
  for (int rank : ranks) {
    if (rank == ranks.front() && !resume_state.empty()) {
      pb::WireMessage with_state = assign;  // the state goes to the recording rank only
      with_state.mutable_assign()->set_resume_state(resume_state);
      send_wire(transport_, rank, std::move(with_state));
    } else {
      send_wire(transport_, rank, assign);
    }
    last_heard_[rank] = std::chrono::steady_clock::now();
  }
  r.log_->task_started(t.task_name, describe(t), ranks.front());
  emit(r, "task_started", t.task_name, describe(t));
}

void Coordinator::release_reservation() {
  if (!reservation_) return;
  const Reservation r = *reservation_;
  reservation_.reset();
  r.run->pending_.push_front(r.index);
  for (int rank : r.ranks) {
    if (keep_workers_ && !draining_ && !releasing_)
      idle_workers_.push_back(rank);
    else
      send_home(rank);
  }
}

void Coordinator::emit(const CampaignRun& run, const std::string& type, const std::string& task,
                       const std::string& detail, const std::map<std::string, double>* summary) {
  if (listener_ == nullptr) return;
  pb::ProgressEvent e;
  e.set_type(type);
  e.set_task(task);
  e.set_detail(detail);
  if (summary != nullptr) {
    if (auto it = summary->find("staleness_mean"); it != summary->end()) e.set_staleness_mean(it->second);
    if (auto it = summary->find("staleness_max"); it != summary->end()) e.set_staleness_max(it->second);
  }
  *e.mutable_campaign() = run.info();
  listener_->on_event(run, e);
}

void Coordinator::task_finished(CampaignRun& run, const PlannedTask& t, const std::string& type,
                                const std::string& detail, double seconds) {
  run.running_.erase(t.task_id);
  if (t.checkpointable && !t.split_into_units) {
    run.checkpoint_asked_.erase(t.task_id);
    run.checkpoints_awaited_.erase(t.task_id);
    try {
      remove_checkpoint(run.checkpoint_path(t));  // the task is over: its results are final
    } catch (const StoreError& e) {
      run.log_->message(e.what());
    }
  }
  const bool ok = type == "task_done";
  if (type != "task_cancelled")
    run.log_->task_finished(t.task_name, describe(t), ok, detail, seconds, run.done_ + run.failed_,
                            run.campaign_.tasks.size(), run.failed_);
  auto summary = run.summary_.find(t.task_id);
  emit(run, type, t.task_name, detail, summary == run.summary_.end() ? nullptr : &summary->second);
  run.summary_.erase(t.task_id);
  maybe_finalize(run);
}

void Coordinator::maybe_finalize(CampaignRun& run) {
  if (stopping_ || run.finished() || !run.running_.empty()) return;
  if (reservation_ && reservation_->run == &run) return;  // a task is gathering its workers
  std::string status;
  if (run.cancel_requested_)
    status = "cancelled";
  else if (!run.pending_.empty())
    status = draining_ ? "drained" : "";
  else
    status = run.failed_ > 0 ? "failed" : "complete";
  if (status.empty()) return;
  run.store_->finish(status);
  run.log_->flushed(run.store_->rows_total());
  run.log_->finish(status, run.done_, run.failed_);
  run.store_.reset();  // closes the file
  std::error_code ignored;
  std::filesystem::remove(run.out_path_ + ".ckpt", ignored);  // only if no checkpoint is left in it
  run.state_ = status;
  emit(run, "campaign_finished", "", status);
}

void Coordinator::handle(const Message& m) {
  const pb::WireMessage msg = decode_wire(m);
  switch (msg.body_case()) {
    case pb::WireMessage::kRequest:
      if (releasing_) {
        send_home(m.source);
      } else if (!assign_to(m.source)) {
        bool units_may_come = false;  // a split task waits for units out; it may want more later
        for (const auto& r : campaigns_) units_may_come = units_may_come || !r->unit_tasks_.empty();
        if ((keep_workers_ || units_may_come) && !draining_)
          idle_workers_.push_back(m.source);
        else
          send_home(m.source);
      }
      break;
    case pb::WireMessage::kChunk: {
      CampaignRun& r = run_of(msg.chunk().campaign_id());
      task_of(r, msg.chunk().task_id());
      absorb_chunk(r, msg.chunk());
      break;
    }
    case pb::WireMessage::kHeartbeat:
      break;  // step() noted when this worker was last heard from
    case pb::WireMessage::kTaskCheckpoint:
      on_task_checkpoint(msg.task_checkpoint(), m.source);
      break;
    case pb::WireMessage::kUnitResult:
      on_unit_result(msg.unit_result(), m.source);
      break;
    case pb::WireMessage::kDone: {
      CampaignRun& r = run_of(msg.done().campaign_id());
      const PlannedTask& t = task_of(r, msg.done().task_id());
      r.store_->mark_done(t.task_id, msg.done().wall_seconds());
      ++r.done_;
      std::string detail = r.verdict_.count(t.task_id) ? "verdict " + r.verdict_[t.task_id] : "";
      if (auto it = r.summary_.find(t.task_id); it != r.summary_.end() && it->second.count("staleness_max")) {
        char text[96];
        std::snprintf(text, sizeof text, "staleness mean %.3g max %.0f", it->second["staleness_mean"],
                      it->second["staleness_max"]);
        detail += (detail.empty() ? "" : ", ") + std::string(text);
      }
      task_finished(r, t, "task_done", detail, msg.done().wall_seconds());
      break;
    }
    case pb::WireMessage::kFailed: {
      CampaignRun* found = find(msg.failed().campaign_id());
      if (found != nullptr && found->store_ != nullptr && found->index_of_.count(msg.failed().task_id()) &&
          !found->running_.count(msg.failed().task_id()))
        break;  // a unit of a split task that has already ended
      CampaignRun& r = run_of(msg.failed().campaign_id());
      const PlannedTask& t = task_of(r, msg.failed().task_id());
      if (auto ut = r.unit_tasks_.find(t.task_id); ut != r.unit_tasks_.end()) {
        ut->second.out.erase(m.source);
        end_unit_task(r, t.task_id, "task_failed", "unit on rank " + std::to_string(m.source) + ": " + msg.failed().error());
        break;
      }
      if (msg.failed().cancelled()) {
        r.store_->mark_cancelled(t.task_id);
        ++r.cancelled_;
        task_finished(r, t, "task_cancelled", "", 0.0);
      } else {
        r.store_->mark_failed(t.task_id, msg.failed().error());
        ++r.failed_;
        task_finished(r, t, "task_failed", msg.failed().error(), 0.0);
      }
      break;
    }
    default:
      throw TransportError("unexpected message from rank " + std::to_string(m.source));
  }
}

void Coordinator::flush_all() {
  checkpoint_all();
  for (auto& r : campaigns_) {
    if (r->store_ == nullptr) continue;
    r->log_->flushed(r->store_->flush());
    r->last_flush_ = std::chrono::steady_clock::now();
  }
}

bool Coordinator::step() {
  // Flush every open file on its campaign's cadence.
  const auto now = std::chrono::steady_clock::now();
  for (auto& r : campaigns_) {
    if (r->store_ == nullptr) continue;
    const auto interval = std::chrono::duration<double>(r->campaign_.spec.store().flush_interval_s());
    if (now - r->last_flush_ >= interval) {
      r->log_->flushed(r->store_->flush());
      r->last_flush_ = now;
    }
    const auto every = std::chrono::duration<double>(r->campaign_.spec.store().checkpoint_interval_s());
    for (auto& [task_id, ut] : r->unit_tasks_)
      if (now - ut.last_checkpoint >= every) checkpoint_unit_task(*r, task_id, ut);
    std::vector<std::int64_t> due;
    for (const auto& [task_id, asked] : r->checkpoint_asked_)
      if (now - asked >= every) due.push_back(task_id);
    for (std::int64_t task_id : due) request_checkpoint(*r, task_id);
  }
  if (worker_timeout_.count() > 0 && now - last_watchdog_check_ >= std::chrono::milliseconds(500)) {
    last_watchdog_check_ = now;
    check_silent_workers();
  }
  std::optional<Message> m = transport_.poll();
  if (!m) return false;
  last_heard_[m->source] = std::chrono::steady_clock::now();
  handle(*m);
  return true;
}

void Coordinator::check_silent_workers() {
  const auto now = std::chrono::steady_clock::now();
  auto check = [&](int rank, const std::string& what) {
    auto it = last_heard_.find(rank);
    if (it == last_heard_.end()) return;
    const double silent = std::chrono::duration<double>(now - it->second).count();
    if (silent > worker_timeout_.count()) {
      char text[64];
      std::snprintf(text, sizeof text, "%.1f", silent);
      throw WorkerSilentError("worker rank " + std::to_string(rank) + " has sent nothing for " + text + " s while running " +
                              what + " (stopped, hung, or its node is gone; --worker-timeout " +
                              format_seconds(worker_timeout_.count()) + " s)");
    }
  };
  for (const auto& r : campaigns_) {
    if (r->store_ == nullptr) continue;
    for (const auto& [task_id, rank] : r->running_)
      if (rank > 0) check(rank, r->campaign_.tasks[r->index_of_.at(task_id)].task_name);
    for (const auto& [task_id, ut] : r->unit_tasks_)
      for (const auto& [rank, unit] : ut.out) check(rank, "a unit of " + r->campaign_.tasks[ut.index].task_name);
  }
}

void Coordinator::interrupt_all(Result& result, bool wait_for_checkpoints) {
  stopping_ = true;  // nothing new starts, and no file is closed, while the checkpoints come in
  release_reservation();
  checkpoint_all();  // so --resume continues split tasks and self-checkpointing tasks where they are
  if (wait_for_checkpoints) await_checkpoints(std::chrono::seconds(10));
  result.interrupted = true;
  for (auto& r : campaigns_) {
    if (r->store_ == nullptr) continue;
    r->store_->finish("interrupted");
    r->log_->flushed(r->store_->rows_total());
    r->log_->finish("interrupted", r->done_, r->failed_);
    r->store_.reset();
    r->state_ = "interrupted";
    result.done += r->done_;
    result.failed += r->failed_;
  }
}

Coordinator::Result Coordinator::run_to_completion(std::atomic<int>* signals) {
  Backoff backoff;
  while (!all_finished() || live_workers_ > 0) {
    if (signals != nullptr) {
      const int s = signals->exchange(0);
      if (s & kFlushRequested) flush_all();
      if (s & kStopRequested) {
        Result result;
        interrupt_all(result, /*wait_for_checkpoints=*/true);
        return result;
      }
    }
    if (all_finished()) release_workers();
    try {
      if (step())
        backoff.reset();
      else
        backoff.sleep();
    } catch (const WorkerSilentError& e) {
      Result result;
      for (auto& r : campaigns_)
        if (r->log_) r->log_->message(std::string("error: ") + e.what());
      interrupt_all(result, /*wait_for_checkpoints=*/false);  // a silent rank would not answer
      result.silent_worker = e.what();
      return result;
    }
  }
  Result result;
  for (const auto& r : campaigns_) {
    result.done += r->done_;
    result.failed += r->failed_;
  }
  return result;
}

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

// ------------------------------------------------------------------------- tasks split into units

void Coordinator::absorb_chunk(CampaignRun& r, const pb::TrajectoryChunk& chunk) {
  for (const auto& attr : chunk.attributes()) {
    if (attr.name() == "verdict") r.verdict_[chunk.task_id()] = attr.text();
    if (attr.name() == "staleness_mean" || attr.name() == "staleness_max")
      r.summary_[chunk.task_id()][attr.name()] = attr.number();
  }
  r.store_->append(chunk);
}

bool Coordinator::start_unit_task(CampaignRun& r, std::size_t index, int worker) {
  const PlannedTask& t = r.campaign_.tasks[index];
  CampaignRun::UnitTask ut;
  ut.index = index;
  ut.started = ut.last_checkpoint = ut.last_progress = std::chrono::steady_clock::now();
  r.store_->mark_running(t.task_id, 0);
  r.running_[t.task_id] = 0;  // the coordinator runs it, its units go anywhere
  r.state_ = "running";
  r.log_->task_started(t.task_name, describe(t), 0);
  emit(r, "task_started", t.task_name, describe(t));
  try {
    std::string kind;
    const auto* spec = kind_message(t.experiment, &kind);
    const ExperimentKind* impl = spec ? KindRegistry::instance().find(kind) : nullptr;
    if (impl == nullptr) throw Error("unknown experiment kind '" + kind + "'");
    ut.prepared = impl->prepare(*spec, r.campaign_.context_for(t));
    ut.merger = ut.prepared->merger();
    if (ut.merger == nullptr) throw Error("kind '" + kind + "' splits tasks into units but made no merger");
    std::optional<std::string> saved;
    try {
      saved = read_checkpoint(r.checkpoint_path(t));
    } catch (const StoreError& e) {
      r.log_->message(std::string(e.what()) + "; the task starts from scratch");
    }
    if (saved) {
      ut.merger->restore(*saved);
      r.log_->message(t.task_name + ": continues from its checkpoint " + r.checkpoint_path(t));
    }
  } catch (const std::exception& e) {
    r.unit_tasks_.emplace(t.task_id, std::move(ut));
    end_unit_task(r, t.task_id, "task_failed", e.what());
    return false;
  }
  auto& placed = r.unit_tasks_.emplace(t.task_id, std::move(ut)).first->second;
  if (placed.merger->complete()) {
    end_unit_task(r, t.task_id, "task_done", "");
    return false;
  }
  if (hand_out_unit(r, placed, t.task_id, worker)) return true;
  // Nothing to hand out although not complete: a merger bug; fail rather than wait forever.
  end_unit_task(r, t.task_id, "task_failed", "the merger handed out no unit");
  return false;
}

bool Coordinator::hand_out_unit(CampaignRun& r, CampaignRun::UnitTask& ut, std::int64_t task_id, int worker) {
  std::optional<std::string> unit = ut.merger->next_unit();
  if (!unit) return false;
  const PlannedTask& t = r.campaign_.tasks[ut.index];
  pb::WireMessage assign;
  auto* a = assign.mutable_assign();
  a->set_task_id(task_id);
  a->set_campaign_id(r.id_);
  a->set_task_name(t.task_name);
  a->set_experiment(t.experiment.SerializeAsString());
  a->set_campaign_seed(r.campaign_.spec.seed());
  a->set_experiment_index(t.experiment_index);
  a->set_spec_dir(r.campaign_.spec_dir);
  for (const auto& dir : r.campaign_.allowed_input_dirs) a->add_allowed_input_dirs(dir);
  a->set_unit(*unit);
  ut.out[worker] = std::move(*unit);
  send_wire(transport_, worker, std::move(assign));
  last_heard_[worker] = std::chrono::steady_clock::now();
  return true;
}

void Coordinator::on_unit_result(const pb::UnitResult& result, int worker) {
  CampaignRun* r = find(result.campaign_id());
  if (r == nullptr || r->store_ == nullptr) return;  // its campaign has ended: a late result
  auto it = r->unit_tasks_.find(result.task_id());
  if (it == r->unit_tasks_.end()) return;  // its task has ended
  CampaignRun::UnitTask& ut = it->second;
  ut.out.erase(worker);
  const PlannedTask& t = r->campaign_.tasks[ut.index];
  try {
    ChunkRecorder recorder(r->id_, t.task_id);
    ut.merger->merge(result.unit(), result.result(), recorder);
    const bool complete = ut.merger->complete();
    if (complete) ut.merger->finish(recorder);
    if (!recorder.empty()) absorb_chunk(*r, recorder.chunk());
    const auto now = std::chrono::steady_clock::now();
    if (complete || now - ut.last_progress >= std::chrono::seconds(2)) {
      const std::string line = ut.merger->progress_line();
      if (!line.empty()) {
        r->log_->message(t.task_name + ": " + line);
        emit(*r, "task_progress", t.task_name, line);
      }
      ut.last_progress = now;
    }
    if (complete) {
      end_unit_task(*r, t.task_id, "task_done", "");
      return;
    }
  } catch (const std::exception& e) {
    end_unit_task(*r, t.task_id, "task_failed", std::string("merging a unit: ") + e.what());
    return;
  }
  offer_idle_workers();
}

void Coordinator::end_unit_task(CampaignRun& r, std::int64_t task_id, const std::string& type,
                                const std::string& detail) {
  auto it = r.unit_tasks_.find(task_id);
  const double seconds = it == r.unit_tasks_.end() ? 0.0 : seconds_since(it->second.started);
  if (it != r.unit_tasks_.end()) r.unit_tasks_.erase(it);
  const PlannedTask& t = task_of(r, task_id);
  try {
    remove_checkpoint(r.checkpoint_path(t));
  } catch (const StoreError& e) {
    r.log_->message(e.what());
  }
  std::string shown = detail;
  if (type == "task_done") {
    r.store_->mark_done(task_id, seconds);
    ++r.done_;
    if (r.verdict_.count(task_id)) shown = "verdict " + r.verdict_[task_id];
  } else if (type == "task_cancelled") {
    r.store_->mark_cancelled(task_id);
    ++r.cancelled_;
  } else {
    r.store_->mark_failed(task_id, detail);
    ++r.failed_;
  }
  task_finished(r, t, type, shown, seconds);
  offer_idle_workers();
}

void Coordinator::checkpoint_unit_task(CampaignRun& r, std::int64_t task_id, CampaignRun::UnitTask& ut) {
  ut.last_checkpoint = std::chrono::steady_clock::now();
  const std::string state = ut.merger->checkpoint();
  if (state.empty()) return;
  const PlannedTask& t = task_of(r, task_id);
  try {
    write_checkpoint(r.checkpoint_path(t), state);
  } catch (const StoreError& e) {
    // A failed checkpoint loses nothing already committed; say so and go on.
    r.log_->message(std::string("checkpoint not written: ") + e.what());
  }
}

void Coordinator::checkpoint_all() {
  for (auto& r : campaigns_) {
    if (r->store_ == nullptr) continue;
    for (auto& [task_id, ut] : r->unit_tasks_) checkpoint_unit_task(*r, task_id, ut);
    std::vector<std::int64_t> asked;
    for (const auto& [task_id, when] : r->checkpoint_asked_) asked.push_back(task_id);
    for (std::int64_t task_id : asked) request_checkpoint(*r, task_id);
  }
}

// ------------------------------------------------------------------ tasks that checkpoint themselves

void Coordinator::request_checkpoint(CampaignRun& r, std::int64_t task_id) {
  auto running = r.running_.find(task_id);
  if (running == r.running_.end() || running->second <= 0) return;
  pb::WireMessage msg;
  msg.mutable_checkpoint_request()->set_campaign_id(r.id_);
  msg.mutable_checkpoint_request()->set_task_id(task_id);
  send_wire(transport_, running->second, std::move(msg));
  r.checkpoint_asked_[task_id] = std::chrono::steady_clock::now();
  r.checkpoints_awaited_.insert(task_id);
}

void Coordinator::on_task_checkpoint(const pb::TaskCheckpoint& checkpoint, int worker) {
  CampaignRun* r = find(checkpoint.campaign_id());
  if (r == nullptr || r->store_ == nullptr) return;  // its campaign has ended
  auto running = r->running_.find(checkpoint.task_id());
  if (running == r->running_.end() || running->second != worker) return;  // its task has ended
  const PlannedTask& t = task_of(*r, checkpoint.task_id());
  r->checkpoints_awaited_.erase(t.task_id);
  try {
    // The rows the checkpoint has seen must be on disk before the checkpoint that names them is
    // (a kill in between leaves the previous checkpoint, whose rows are a prefix of these).
    r->log_->flushed(r->store_->flush());
    r->last_flush_ = std::chrono::steady_clock::now();
    pb::TaskCheckpointFile f;
    f.set_schema_version(kSchemaVersion);
    f.set_task_id(t.task_id);
    f.set_step(checkpoint.step());
    f.set_state(checkpoint.state());
    for (const auto& [path, rows] : r->store_->series_rows(t.task_id)) {
      auto* s = f.add_series();
      s->set_path(path);
      s->set_rows(rows);
    }
    write_checkpoint(r->checkpoint_path(t), f.SerializeAsString());
    r->log_->message(t.task_name + ": checkpoint at step " + std::to_string(checkpoint.step()));
  } catch (const StoreError& e) {
    r->log_->message(std::string("checkpoint not written: ") + e.what());
  }
}

void Coordinator::await_checkpoints(std::chrono::duration<double> limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  Backoff backoff;
  auto awaited = [&] {
    for (const auto& r : campaigns_)
      if (r->store_ != nullptr && !r->checkpoints_awaited_.empty()) return true;
    return false;
  };
  while (awaited() && std::chrono::steady_clock::now() < deadline) {
    std::optional<Message> m = transport_.poll();
    if (!m) {
      backoff.sleep();
      continue;
    }
    backoff.reset();
    last_heard_[m->source] = std::chrono::steady_clock::now();
    try {
      handle(*m);
    } catch (const Error& e) {
      // Stopping anyway: a bad message must not keep the files from being closed.
      for (auto& r : campaigns_)
        if (r->log_) r->log_->message(std::string("while collecting checkpoints: ") + e.what());
    }
  }
  for (auto& r : campaigns_) {
    if (r->store_ == nullptr || r->checkpoints_awaited_.empty()) continue;
    for (std::int64_t task_id : r->checkpoints_awaited_)
      r->log_->message(task_of(*r, task_id).task_name +
                       ": no checkpoint came before the stop; --resume continues from its previous one");
    r->checkpoints_awaited_.clear();
  }
}

void Coordinator::offer_idle_workers() {
  while (!idle_workers_.empty() && !releasing_ && assign_to(idle_workers_.front())) idle_workers_.pop_front();
}

}  // namespace gdlab
