#include "coordinator/run_log.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/errors.h"

namespace gdlab {

RunLog::RunLog(const std::string& json_path, bool quiet, bool append) : quiet_(quiet) {
  if (!json_path.empty()) {
    out_.open(json_path, std::ios::out | (append ? std::ios::app : std::ios::trunc));
    if (!out_) throw InputError(json_path + ": cannot write the run log");
  }
}

std::string RunLog::json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o;
}

double RunLog::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void RunLog::json(const std::string& body) {
  if (!out_.is_open()) return;
  char t[32];
  std::snprintf(t, sizeof t, "%.3f", elapsed());
  out_ << "{\"t\": " << t << ", " << body << "}\n";
  out_.flush();
}

void RunLog::message(const std::string& text) {
  json("\"event\": \"message\", \"text\": \"" + json_escape(text) + "\"");
  if (!quiet_) std::cerr << "[gdlab] " << text << std::endl;
}

double RunLog::process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

void RunLog::start(const std::string& campaign, std::size_t tasks, int ranks, const std::string& out) {
  start_ = std::chrono::steady_clock::now();
  cpu_at_start_ = process_cpu_seconds();
  json("\"event\": \"start\", \"campaign\": \"" + json_escape(campaign) + "\", \"tasks\": " + std::to_string(tasks) +
       ", \"ranks\": " + std::to_string(ranks) + ", \"out\": \"" + json_escape(out) + "\", \"pid\": " +
       std::to_string(::getpid()));
  message("campaign " + campaign + ": " + std::to_string(tasks) + " tasks on " + std::to_string(ranks - 1) +
          " workers, writing " + out);
}

void RunLog::task_started(const std::string& task, const std::string& description, int worker) {
  json("\"event\": \"task_started\", \"task\": \"" + task + "\", \"worker\": " + std::to_string(worker));
  (void)description;
}

void RunLog::task_finished(const std::string& task, const std::string& description, bool ok, const std::string& detail,
                           double seconds, std::size_t finished, std::size_t total, std::size_t failed) {
  json(std::string("\"event\": \"") + (ok ? "task_done" : "task_failed") + "\", \"task\": \"" + task +
       "\", \"seconds\": " + std::to_string(seconds) + ", \"detail\": \"" + json_escape(detail) +
       "\", \"finished\": " + std::to_string(finished) + ", \"total\": " + std::to_string(total));
  const double e = elapsed();
  const double eta = finished > 0 ? e / static_cast<double>(finished) * static_cast<double>(total - finished) : 0.0;
  char progress[96];
  std::snprintf(progress, sizeof progress, "[%zu/%zu, %zu failed, %.1f s elapsed, ETA %.1f s] ", finished, total,
                failed, e, eta);
  message(std::string(progress) + task + " " + description + ": " + (ok ? "done" : "FAILED") +
          (detail.empty() ? "" : " (" + detail + ")"));
}

void RunLog::flushed(std::uint64_t rows_total) {
  json("\"event\": \"flush\", \"rows_total\": " + std::to_string(rows_total));
}

void RunLog::finish(const std::string& status, std::size_t done, std::size_t failed) {
  const double cpu = process_cpu_seconds() - cpu_at_start_;
  json("\"event\": \"finish\", \"status\": \"" + status + "\", \"done\": " + std::to_string(done) +
       ", \"failed\": " + std::to_string(failed) + ", \"wall_seconds\": " + std::to_string(elapsed()) +
       ", \"coordinator_cpu_seconds\": " + std::to_string(cpu));
  char buf[64];
  std::snprintf(buf, sizeof buf, " in %.1f s", elapsed());
  message("campaign " + status + ": " + std::to_string(done) + " tasks done, " + std::to_string(failed) + " failed" +
          buf);
}

}  // namespace gdlab
