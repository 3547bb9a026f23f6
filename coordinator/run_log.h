// The run's progress, for people and for programs: one human line per event on stderr and one
// JSON object per line in FILE.h5.log (the "flush" lines carry rows_total, the number of
// time-series rows the file held at that flush, which the crash test checks against).
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace gdlab {

class RunLog {
 public:
  // `json_path` empty: no JSON log. `quiet`: no human lines.
  RunLog(const std::string& json_path, bool quiet, bool append = false);
  void start(const std::string& campaign, std::size_t tasks, int ranks, const std::string& out);
  void task_started(const std::string& task, const std::string& description, int worker);
  void task_finished(const std::string& task, const std::string& description, bool ok, const std::string& detail,
                     double seconds, std::size_t finished, std::size_t total, std::size_t failed);
  void flushed(std::uint64_t rows_total);
  // Also records the coordinator's CPU time since start(): it polls with backoff and should stay
  // near idle while workers compute.
  void finish(const std::string& status, std::size_t done, std::size_t failed);
  void message(const std::string& text);
  static std::string json_escape(const std::string& s);

 private:
  void json(const std::string& body);
  double elapsed() const;
  static double process_cpu_seconds();
  double cpu_at_start_ = 0;
  std::ofstream out_;
  bool quiet_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace gdlab
