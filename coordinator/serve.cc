#include "coordinator/serve.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/campaign.h"
#include "common/errors.h"
#include "common/hdf5.h"
#include "coordinator/coordinator.h"

namespace gdlab {
namespace {

pb::ServerReply ok_reply() {
  pb::ServerReply r;
  r.set_schema_version(kServiceSchemaVersion);
  r.set_ok(true);
  return r;
}

pb::ServerReply error_reply(const std::string& code, const std::string& message) {
  pb::ServerReply r;
  r.set_schema_version(kServiceSchemaVersion);
  r.set_ok(false);
  r.set_error_code(code);
  r.set_error(message);
  return r;
}

// Streams every coordinator event to the campaign's watchers.
class WatchPublisher : public Coordinator::Listener {
 public:
  explicit WatchPublisher(FrontEnd& front) : front_(front) {}
  void on_event(const CampaignRun& run, const pb::ProgressEvent& event) override {
    pb::ServerReply r = ok_reply();
    r.set_campaign_id(run.id());
    *r.mutable_event() = event;
    const bool final = event.type() == "campaign_finished";
    r.set_end_of_stream(final);
    front_.publish(run.id(), std::move(r), final);
  }

 private:
  FrontEnd& front_;
};

class Server {
 public:
  Server(const ServiceOptions& options, Transport& transport, std::string thread_level, FrontEnd& front)
      : options_(options),
        coordinator_(transport),
        thread_level_(std::move(thread_level)),
        publisher_(front),
        workers_(transport.size() - 1) {
    coordinator_.set_keep_workers(true);
    coordinator_.set_listener(&publisher_);
  }

  // A server started on a DATA directory of an earlier one (after a crash, a drain, a preempted
  // job) takes up every campaign there that did not end: its file is reopened with --resume
  // semantics (done tasks kept, tasks with a checkpoint continue from it, the rest run again), under
  // its old id. Ids of new campaigns start after the highest there, so no file is ever replaced.
  void recover() {
    std::vector<std::pair<std::int64_t, std::string>> files;
    for (const auto& entry : std::filesystem::directory_iterator(options_.data_dir)) {
      const std::string name = entry.path().filename().string();
      long long id = 0;
      int consumed = 0;
      if (name.size() < 4 || name.compare(name.size() - 3, 3, ".h5") != 0) continue;
      if (std::sscanf(name.c_str(), "campaign_%lld_%n", &id, &consumed) != 1 || consumed == 0 || id < 1) continue;
      files.emplace_back(static_cast<std::int64_t>(id), entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& [id, path] : files) {
      next_id_ = std::max(next_id_, id + 1);
      try {
        std::string status, spec_text, spec_file;
        {
          const h5::File f = h5::File::open_read_only(path);
          status = f.has_attribute("gdlab_status") ? f.attribute_string("gdlab_status") : "";
          spec_text = f.open_dataset("parameters/spec_text").read_string();
          spec_file = f.open_group("parameters").attribute_string("spec_file");
        }
        if (status == "complete" || status == "failed" || status == "cancelled") continue;
        Campaign campaign = parse_campaign(spec_text, spec_file, options_.input_dirs.front(), options_.input_dirs);
        campaign.check_fits(workers_);
        coordinator_.add(std::make_unique<CampaignRun>(id, std::move(campaign), path, options_.quiet, /*resume=*/true));
        message("campaign " + std::to_string(id) + " was " + (status.empty() ? "unfinished" : status) +
                " when the last server stopped: resuming " + path);
      } catch (const std::exception& e) {
        message("cannot resume " + path + " (left as it is): " + e.what());
      }
    }
  }

  int run(CommandQueue& queue, FrontEnd& front) {
    Backoff backoff;
    while (!(stopping_ && !coordinator_.busy())) {
      bool worked = false;
      while (auto command = queue.pop()) {
        handle(*command);
        worked = true;
      }
      if (coordinator_.step()) worked = true;
      if (worked)
        backoff.reset();
      else
        backoff.sleep();
    }
    // Drained: every file is closed. Send the workers home, then stop the front end.
    front.stop_accepting();
    coordinator_.release_workers();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (coordinator_.live_workers() > 0 && std::chrono::steady_clock::now() < deadline) {
      if (coordinator_.step())
        backoff.reset();
      else
        backoff.sleep();
    }
    while (auto command = queue.pop())
      if (command->reply) command->reply(error_reply("shutting_down", "the server is shutting down"));
    message("drained; exiting");
    return 0;
  }

 private:
  void message(const std::string& text) const {
    if (!options_.quiet) std::cerr << "[gdlab serve] " << text << std::endl;
  }

  void stop(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    message(why + ": draining (no new tasks; running tasks finish; files are closed)");
    coordinator_.drain();
  }

  void handle(const ServiceCommand& command) {
    switch (command.kind) {
      case ServiceCommand::Kind::Drain:
        return stop("signal");
      case ServiceCommand::Kind::Checkpoint:
        coordinator_.flush_all();
        return message("SIGUSR1: flushed every open file");
      case ServiceCommand::Kind::Request:
        break;
    }
    pb::ServerReply reply;
    try {
      reply = answer(command.request);
    } catch (const std::exception& e) {
      reply = error_reply("internal", e.what());
    }
    command.reply(std::move(reply));
  }

  pb::ServerReply answer(const pb::ClientRequest& request) {
    const pb::ClientRequest::OpCase op = request.op_case();
    if (op == pb::ClientRequest::kSubmit) return submit(request.submit());
    if (op == pb::ClientRequest::kList) {
      pb::ServerReply r = ok_reply();
      r.set_mpi_thread_level(thread_level_);
      for (const auto& run : coordinator_.campaigns()) *r.add_campaigns() = run->info();
      return r;
    }
    if (op == pb::ClientRequest::kShutdown) {
      stop("shutdown request");
      return ok_reply();
    }
    const std::int64_t id = op == pb::ClientRequest::kStatus ? request.status().campaign_id()
                            : op == pb::ClientRequest::kWatch ? request.watch().campaign_id()
                                                              : request.cancel().campaign_id();
    CampaignRun* run = coordinator_.find(id);
    if (run == nullptr) return error_reply("not_found", "no campaign " + std::to_string(id));
    if (op == pb::ClientRequest::kCancel) {
      if (!coordinator_.cancel(id))
        return error_reply("not_running", "campaign " + std::to_string(id) + " already ended (" + run->state() + ")");
      message("campaign " + std::to_string(id) + ": cancelled");
    }
    pb::ServerReply r = ok_reply();
    r.set_campaign_id(id);
    r.set_mpi_thread_level(thread_level_);
    *r.add_campaigns() = run->info();
    if (op == pb::ClientRequest::kWatch) {
      auto* e = r.mutable_event();
      e->set_type("snapshot");
      *e->mutable_campaign() = run->info();
      r.set_end_of_stream(run->finished());
    }
    return r;
  }

  pb::ServerReply submit(const pb::SubmitCampaign& submit) {
    if (stopping_) return error_reply("shutting_down", "the server is draining and takes no new campaigns");
    const std::string name = submit.spec_name().empty() ? "submitted-spec" : submit.spec_name();
    Campaign campaign;
    try {
      // Relative input paths resolve against the first allowed input directory; nothing outside
      // the allowed input directories can be read, and the output file name is chosen here, in
      // DIR, never by the spec.
      campaign = parse_campaign(submit.spec_text(), name, options_.input_dirs.front(), options_.input_dirs);
      campaign.check_fits(workers_);
    } catch (const InputError& e) {
      return error_reply("invalid_spec", e.what());
    }
    std::int64_t id = 0;
    std::string out;
    do {  // never replaces a file: ids already used in DIR were skipped by recover()
      id = next_id_++;
      char file[64];
      std::snprintf(file, sizeof file, "campaign_%04lld_", static_cast<long long>(id));
      out = (std::filesystem::path(options_.data_dir) / (file + campaign.spec.name() + ".h5")).string();
    } while (std::filesystem::exists(out));
    CampaignRun& run = coordinator_.add(std::make_unique<CampaignRun>(id, std::move(campaign), out, options_.quiet));
    message("campaign " + std::to_string(id) + " (" + run.campaign().spec.name() + ", " +
            std::to_string(run.campaign().tasks.size()) + " tasks) queued -> " + out);
    pb::ServerReply r = ok_reply();
    r.set_campaign_id(id);
    *r.add_campaigns() = run.info();
    return r;
  }

  const ServiceOptions& options_;
  Coordinator coordinator_;
  std::string thread_level_;
  WatchPublisher publisher_;
  int workers_;
  bool stopping_ = false;
  std::int64_t next_id_ = 1;
};

}  // namespace

int serve(const ServiceOptions& options, Transport& transport, const std::string& mpi_thread_level) {
  CommandQueue queue;
  const std::string token = write_token_file(options.data_dir);
  FrontEnd front(options, token, queue);
  front.start();
  // Campaigns a previous server left unfinished in DATA are queued before anyone can connect
  // (the endpoint file appears after this).
  Server server(options, transport, mpi_thread_level, front);
  server.recover();
  {
    // Tests and scripts find the server here (useful with --listen 127.0.0.1:0).
    std::ofstream(std::filesystem::path(options.data_dir) / "endpoint") << front.endpoint() << "\n";
    // The coordinator's PID, for signals: SIGTERM drains, SIGUSR1 flushes.
    std::ofstream(std::filesystem::path(options.data_dir) / "pid") << ::getpid() << "\n";
  }
  if (!options.quiet)
    std::cerr << "[gdlab serve] listening on " << front.endpoint() << " with " << transport.size() - 1
              << " workers; MPI thread level " << mpi_thread_level << "; data " << options.data_dir << "; token "
              << options.data_dir << "/token" << std::endl;
  const int code = server.run(queue, front);
  front.stop();
  return code;
}

}  // namespace gdlab
