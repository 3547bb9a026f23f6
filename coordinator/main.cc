// gdlab: the one executable. `gdlab run` under mpirun makes rank 0 the coordinator and every other
// rank a worker; `gdlab validate` needs no MPI. This file is the boundary where exceptions become
// one clear message and an exit code: 0 success, 1 a failed run (any task failed, or a runtime
// error), 2 bad input (spec, arguments, output path), 3 interrupted by a signal, 4 a silent worker.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/campaign.h"
#include "common/campaign_store.h"
#include "common/errors.h"
#include "common/transport_mpi.h"
#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "coordinator/serve.h"
#include "coordinator/run_log.h"
#include "worker/worker.h"

namespace gdlab {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
// SIGTERM/SIGINT during `gdlab run`: the file was flushed and closed as "interrupted"; rerun the
// same command with --resume to finish it (schedulers: requeue on this code).
constexpr int kExitInterrupted = 3;
// A busy worker rank sent nothing for --worker-timeout seconds (stopped, hung, its node gone):
// the file was flushed and closed as "interrupted" (split tasks checkpointed); fix the node or
// resubmit, then rerun with --resume.
constexpr int kExitWorkerSilent = 4;

// Set by the signal handlers of rank 0 in `gdlab run`; read by the coordinator loop (a handler
// only stores to a lock-free atomic: no MPI, no HDF5, no allocation).
std::atomic<int> g_run_signals{0};
extern "C" void on_run_signal(int signal) {
  g_run_signals.fetch_or(signal == SIGUSR1 ? Coordinator::kFlushRequested : Coordinator::kStopRequested);
}

// One "gdlab: error: ..." line per problem (a spec can have several).
void print_error(const std::string& what) {
  std::string line;
  std::istringstream in(what);
  while (std::getline(in, line)) std::cerr << "gdlab: error: " << line << "\n";
  std::cerr.flush();
}

const char* kUsage = R"(gdlab - distributed experiments on the implicit bias and stability of gradient methods

Usage:
  mpirun -n N gdlab run SPEC --out FILE.h5 [--force | --resume] [--quiet]
      Run the campaign in SPEC (protobuf text format) on N >= 2 ranks: rank 0 coordinates and
      writes FILE.h5 (plus FILE.h5.log, JSON lines), ranks 1..N-1 run tasks.
      --force   replace FILE.h5 if it exists (otherwise an existing file is never touched)
      --resume  continue FILE.h5 (same spec only): done tasks are kept, the others run again
      --quiet   no progress lines on stderr
      --worker-timeout S  a busy worker silent for S seconds (default 120; 0: off) ends the run
                with exit 4 after closing the file as "interrupted" (workers send heartbeats)
      SIGUSR1 flushes the file and checkpoints long tasks; SIGTERM/SIGINT checkpoint, flush,
      close it as "interrupted", exit 3.
  mpirun -n N gdlab serve --data DIR [--listen 127.0.0.1:7878] [--inputs DIR2 ...] [--quiet]
        [--read-timeout-ms 10000]
      Run as a service: rank 0 serves campaigns submitted over TCP (docs/service.md), each written
      to DIR/campaign_<id>_<name>.h5; the token for submit/cancel/shutdown is written to DIR/token
      (mode 0600). Specs may read input files only from DIR/inputs and the --inputs directories.
      SIGTERM/SIGINT drain (running tasks finish, files are closed, exit 0); SIGUSR1 flushes.
  gdlab submit SPEC | list | status ID | watch ID | cancel ID | shutdown
        [--server HOST:PORT] [--token-file DIR/token]
      Talk to a running `gdlab serve` (defaults: $GDLAB_SERVER or 127.0.0.1:7878,
      $GDLAB_TOKEN_FILE). Exit codes: 0 ok (watch: campaign complete); 1 the server refused or
      the campaign failed/was cancelled; 2 bad input or refused token; 3 server unreachable.
  gdlab validate SPEC
      Check SPEC without running it and print the expanded task list (no MPI needed).
  gdlab kinds
      List the experiment kinds built into this gdlab.
  gdlab --help | --version

Exit codes: 0 success; 1 a task failed or the run failed; 2 bad input (spec, arguments, output path);
3 interrupted by SIGTERM/SIGINT (rerun with --resume); 4 a worker rank fell silent past
--worker-timeout (rerun with --resume).
Docs: README.md, docs/spec-reference.md, docs/hdf5-layout.md.
)";

struct RunArgs {
  std::string spec;
  std::string out;
  bool force = false;
  bool quiet = false;
  bool resume = false;
  double worker_timeout_s = 120;
};

RunArgs parse_run_args(const std::vector<std::string>& args) {
  RunArgs r;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--out") {
      if (i + 1 >= args.size()) throw InputError("--out needs a file name");
      r.out = args[++i];
    } else if (a.rfind("--out=", 0) == 0) {
      r.out = a.substr(6);
    } else if (a == "--force") {
      r.force = true;
    } else if (a == "--worker-timeout") {
      if (i + 1 >= args.size()) throw InputError("--worker-timeout needs a number of seconds");
      const std::string& v = args[++i];
      char* end = nullptr;
      r.worker_timeout_s = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(r.worker_timeout_s >= 0) || r.worker_timeout_s > 1e7)
        throw InputError("--worker-timeout: '" + v + "' is not a number of seconds in [0, 1e7] (0 turns the watchdog off)");
    } else if (a == "--quiet") {
      r.quiet = true;
    } else if (a == "--resume") {
      r.resume = true;
    } else if (!a.empty() && a[0] == '-') {
      throw InputError("unknown option " + a + " (see gdlab --help)");
    } else if (r.spec.empty()) {
      r.spec = a;
    } else {
      throw InputError("unexpected argument " + a + " (see gdlab --help)");
    }
  }
  if (r.spec.empty()) throw InputError("missing SPEC (usage: gdlab run SPEC --out FILE.h5)");
  if (r.out.empty()) throw InputError("missing --out FILE.h5");
  if (r.resume && r.force) throw InputError("--resume and --force contradict each other: choose one");
  return r;
}

// Checks the output location before anything is written, so a bad path never leaves a file
// that looks like a run.
void check_output_path(const RunArgs& args) {
  namespace fs = std::filesystem;
  const fs::path out(args.out);
  if (fs::exists(out) && args.resume) return;  // continued in place
  if (fs::exists(out)) {
    if (!args.force)
      throw InputError(args.out + ": output file exists; choose another --out or pass --force to replace it");
    if (fs::is_directory(out)) throw InputError(args.out + ": is a directory");
    fs::remove(out);
    fs::remove(args.out + ".log");
  }
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw InputError(args.out + ": directory " + dir.string() + " does not exist");
}

int run_coordinator(const RunArgs& args, MpiTransport& transport) {
  std::unique_ptr<CampaignRun> run;
  try {
    Campaign campaign = load_campaign(args.spec);
    campaign.check_fits(transport.size() - 1);
    check_output_path(args);
    const bool resume = args.resume && std::filesystem::exists(args.out);
    try {
      run = std::make_unique<CampaignRun>(0, std::move(campaign), args.out, args.quiet, resume);
    } catch (const StoreError& e) {
      throw InputError(args.out + ": cannot " + (resume ? "resume" : "create") + " the output file: " + e.what());
    }
  } catch (const InputError& e) {
    print_error(e.what());
    Coordinator::dismiss_workers(transport);
    return kExitBadInput;
  }
  Coordinator coordinator(transport);
  coordinator.set_worker_timeout(std::chrono::duration<double>(args.worker_timeout_s));
  coordinator.add(std::move(run));
  std::signal(SIGTERM, on_run_signal);
  std::signal(SIGINT, on_run_signal);
  std::signal(SIGUSR1, on_run_signal);
  const Coordinator::Result result = coordinator.run_to_completion(&g_run_signals);
  if (!result.silent_worker.empty()) {
    std::cerr << "gdlab: error: " << result.silent_worker << "; " << args.out << " is flushed and closed with "
              << result.done << " tasks done; finish it with: gdlab run " << args.spec << " --out " << args.out
              << " --resume" << std::endl;
    MPI_Abort(MPI_COMM_WORLD, kExitWorkerSilent);
  }
  if (result.interrupted) {
    std::cerr << "[gdlab] interrupted by a signal: " << args.out << " is flushed and closed with "
              << result.done << " tasks done; finish it with: gdlab run " << args.spec << " --out " << args.out
              << " --resume" << std::endl;
    // The workers may be mid-task; nothing of theirs is needed any more.
    MPI_Abort(MPI_COMM_WORLD, kExitInterrupted);
  }
  if (!args.quiet) std::cerr << "[gdlab] results: " << args.out << " (log: " << args.out << ".log)" << std::endl;
  return result.failed > 0 ? kExitFailed : kExitOk;
}

int command_run(int argc, char** argv, const std::vector<std::string>& args) {
  MpiSession mpi(&argc, &argv);
  int exit_code = kExitOk;
  {
    MpiTransport transport;
    try {
      if (transport.size() < 2) {
        std::cerr << "gdlab: error: gdlab run needs at least 2 MPI ranks (one coordinator, one or more workers); "
                     "start it as: mpirun -n 2 gdlab run SPEC --out FILE.h5"
                  << std::endl;
        return kExitBadInput;
      }
      if (transport.rank() == 0) {
        RunArgs run_args;
        try {
          run_args = parse_run_args(args);
        } catch (const InputError& e) {
          print_error(e.what());
          Coordinator::dismiss_workers(transport);
          return kExitBadInput;
        }
        exit_code = run_coordinator(run_args, transport);
      } else {
        // mpirun forwards SIGTERM/SIGINT/SIGUSR1 to every rank; rank 0 decides what happens.
        std::signal(SIGTERM, SIG_IGN);
        std::signal(SIGINT, SIG_IGN);
        std::signal(SIGUSR1, SIG_IGN);
        Worker(transport).run();
      }
    } catch (const std::exception& e) {
      // A broken transport or an unwritable file: no rank can recover (platform.md §8), so end the
      // whole job now rather than leave ranks waiting.
      std::cerr << "gdlab: rank " << transport.rank() << ": fatal: " << e.what() << std::endl;
      MPI_Abort(MPI_COMM_WORLD, kExitFailed);
    }
  }
  return exit_code;
}

ServiceOptions parse_serve_args(const std::vector<std::string>& args) {
  ServiceOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&] {
      if (i + 1 >= args.size()) throw InputError(a + " needs a value");
      return args[++i];
    };
    if (a == "--listen")
      o.listen = value();
    else if (a == "--data")
      o.data_dir = value();
    else if (a == "--inputs")
      o.input_dirs.push_back(value());
    else if (a == "--quiet")
      o.quiet = true;
    else if (a == "--read-timeout-ms") {
      const std::string v = value();
      char* end = nullptr;
      const long ms = std::strtol(v.c_str(), &end, 10);
      if (*end != '\0' || ms < 1 || ms > 3'600'000) throw InputError("--read-timeout-ms " + v + ": expected 1..3600000");
      o.read_timeout = std::chrono::milliseconds(ms);
    }
    else
      throw InputError("unknown argument " + a + " (see gdlab --help)");
  }
  namespace fs = std::filesystem;
  if (o.data_dir.empty()) throw InputError("gdlab serve needs --data DIR");
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (!fs::is_directory(o.data_dir)) throw InputError("--data " + o.data_dir + ": cannot create the directory");
  o.data_dir = fs::absolute(o.data_dir).lexically_normal().string();
  o.input_dirs.insert(o.input_dirs.begin(), (fs::path(o.data_dir) / "inputs").string());
  fs::create_directories(o.input_dirs.front(), ec);
  for (auto& dir : o.input_dirs) {
    if (!fs::is_directory(dir)) throw InputError("--inputs " + dir + ": not a directory");
    dir = fs::absolute(dir).lexically_normal().string();
  }
  return o;
}

int command_serve(int argc, char** argv, const std::vector<std::string>& args) {
  MpiSession mpi(&argc, &argv);
  int exit_code = kExitOk;
  {
    MpiTransport transport;
    try {
      if (transport.size() < 2) {
        std::cerr << "gdlab: error: gdlab serve needs at least 2 MPI ranks (one coordinator, one or more workers)"
                  << std::endl;
        return kExitBadInput;
      }
      if (transport.rank() == 0) {
        ServiceOptions options;
        try {
          options = parse_serve_args(args);
          exit_code = serve(options, transport, MpiSession::thread_level_name(mpi.provided_thread_level()));
        } catch (const InputError& e) {
          print_error(e.what());
          Coordinator::dismiss_workers(transport);
          return kExitBadInput;
        }
      } else {
        // mpirun forwards SIGTERM/SIGINT to every rank; the coordinator drains the service, and
        // tells the workers when to go, so they ignore these signals (and SIGUSR1).
        std::signal(SIGTERM, SIG_IGN);
        std::signal(SIGINT, SIG_IGN);
        std::signal(SIGUSR1, SIG_IGN);
        Worker(transport).run();
      }
    } catch (const std::exception& e) {
      std::cerr << "gdlab: rank " << transport.rank() << ": fatal: " << e.what() << std::endl;
      MPI_Abort(MPI_COMM_WORLD, kExitFailed);
    }
  }
  return exit_code;
}

int command_validate(const std::vector<std::string>& args) {
  if (args.size() != 1) throw InputError("usage: gdlab validate SPEC");
  const Campaign campaign = load_campaign(args[0]);
  std::cout << args[0] << ": OK, campaign " << campaign.spec.name() << ", seed " << campaign.spec.seed() << ", "
            << campaign.tasks.size() << " tasks\n";
  for (const auto& line : campaign.task_lines()) std::cout << "  " << line << "\n";
  return kExitOk;
}

int main_impl(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitBadInput : kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "gdlab " << gdlab_version() << "\n";
    return kExitOk;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "run") return command_run(argc, argv, args);
    if (command == "serve") return command_serve(argc, argv, args);
    if (is_client_command(command)) return client_main(command, args);
    if (command == "validate") return command_validate(args);
    if (command == "kinds") {
      for (const auto& k : KindRegistry::instance().names()) std::cout << k << "\n";
      return kExitOk;
    }
    throw InputError("unknown command '" + command + "' (see gdlab --help)");
  } catch (const InputError& e) {
    print_error(e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitFailed;
  }
}

}  // namespace
}  // namespace gdlab

int main(int argc, char** argv) { return gdlab::main_impl(argc, argv); }
