// Parameter-server throughput over real MPI: rank 0 serves, ranks 1..k push gradients of the
// quadratic f(w) = ½‖w‖² (the cheapest problem, so the exchange itself is measured).
//   mpirun -n 4 build/bench/ps_bench [options] [P ...]        (default P = 10 1000 100000)
// Options:
//   --transport      the Transport link (raw binary messages over common/transport_mpi.h) instead of
//                    the direct MPI link (worker/parameter_server_mpi.h)
//   --round-robin    the forced round-robin order (staleness exactly k - 1)
//   --log            keep the per-update log as the kind does (a preallocated chunk buffer)
//   --in-place       apply the step in place and copy the weights into a send buffer (as the kind's
//                    optimiser does) instead of writing them out of place into the send buffer
//   --yield-us N     the Waiter's yield window (µs) before idle ranks sleep
//   --updates N      updates per P (default: about one second at the targets)
// Prints updates/s per P and the server's CPU seconds; compare with bench/ps_mpi4py.py
// (bench/ps_compare.sh runs both).
#include <mpi.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/transport_mpi.h"
#include "worker/parameter_server_mpi.h"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  gdlab::MpiSession mpi(&argc, &argv);
  gdlab::MpiTransport world;
  std::vector<long> sizes;
  bool transport_link = false, round_robin = false, log = false, in_place = false;
  long yield_us = -1, updates = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--transport") transport_link = true;
    else if (a == "--round-robin") round_robin = true;
    else if (a == "--log") log = true;
    else if (a == "--in-place") in_place = true;
    else if (a == "--yield-us" && i + 1 < argc) yield_us = std::atol(argv[++i]);
    else if (a == "--updates" && i + 1 < argc) updates = std::atol(argv[++i]);
    else sizes.push_back(std::atol(argv[i]));
  }
  if (sizes.empty()) sizes = {10, 1000, 100000};
  for (long P : sizes) {
    gdlab::ps::Options o;
    o.workers = world.size() - 1;
    // About one second of work at the targets (4e5, 2.5e5, 5e3 updates/s).
    o.updates = updates > 0 ? updates : P <= 10 ? 400000 : P <= 1000 ? 250000 : 5000;
    o.direct_mpi = !transport_link;
    o.order = round_robin ? gdlab::ps::Order::RoundRobin : gdlab::ps::Order::Free;
    if (yield_us >= 0) o.yield_window = std::chrono::microseconds(yield_us);
    Eigen::VectorXd w = Eigen::VectorXd::Constant(P, 1.0);
    MPI_Barrier(MPI_COMM_WORLD);
    const double cpu0 = cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    if (world.rank() == 0) {
      // The kind's per-update log: a preallocated chunk, emptied when full.
      std::vector<gdlab::ps::Update> chunk;
      chunk.reserve(4096);
      std::int64_t logged = 0;
      gdlab::ps::run_server(
          world, o, w,
          [](const gdlab::ps::Update&, Eigen::Ref<const Eigen::VectorXd> g, Eigen::VectorXd& x) { x -= 1e-6 * g; },
          [&](const gdlab::ps::Update& u, Eigen::Ref<const Eigen::VectorXd>) {
            if (log) {
              chunk.push_back(u);
              if (chunk.size() == chunk.capacity()) {
                logged += static_cast<std::int64_t>(chunk.size());
                chunk.clear();
              }
            }
            return true;
          },
          // The same step out of place, written straight into the buffer the weights are sent from.
          in_place ? gdlab::ps::ApplyIntoFn()
                   : [](const gdlab::ps::Update&, Eigen::Ref<const Eigen::VectorXd> g, Eigen::Ref<const Eigen::VectorXd> x,
                        Eigen::Ref<Eigen::VectorXd> next) { next = x - 1e-6 * g; });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("gdlab ps (%s link%s%s%s): P=%ld workers=%d updates=%lld in %.3f s: %.0f updates/s, server CPU %.2f s\n",
                  o.direct_mpi ? "direct MPI" : "transport", round_robin ? ", round robin" : "", log ? ", logged" : "",
                  in_place ? ", in place" : "",
                  P, o.workers, static_cast<long long>(o.updates), s, static_cast<double>(o.updates) / s,
                  cpu_seconds() - cpu0);
      std::fflush(stdout);
    } else {
      gdlab::ps::run_worker(world, o, world.rank(),
                            [](Eigen::Ref<const Eigen::VectorXd> x, Eigen::Ref<Eigen::VectorXd> g) { g = x; });
    }
  }
  return 0;
}
