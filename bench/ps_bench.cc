// Parameter-server throughput over real MPI: rank 0 serves, ranks 1..k push gradients of the
// quadratic f(w) = ½‖w‖² (the cheapest problem, so the exchange itself is measured).
//   mpirun -n 4 build/bench/ps_bench [P ...]        (default P = 10 1000 100000)
// Prints updates/s per P; compare with bench/ps_mpi4py.py (bench/ps_compare.sh runs both).
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/transport_mpi.h"
#include "worker/parameter_server.h"

int main(int argc, char** argv) {
  gdlab::MpiSession mpi(&argc, &argv);
  gdlab::MpiTransport world;
  std::vector<long> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atol(argv[i]));
  if (sizes.empty()) sizes = {10, 1000, 100000};
  for (long P : sizes) {
    gdlab::ps::Options o;
    o.workers = world.size() - 1;
    // About one second of work at the targets (4e5, 2.5e5, 5e3 updates/s).
    o.updates = P <= 10 ? 400000 : P <= 1000 ? 200000 : 5000;
    Eigen::VectorXd w = Eigen::VectorXd::Constant(P, 1.0);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    if (world.rank() == 0) {
      gdlab::ps::run_server(
          world, o, w, [](const gdlab::ps::Update&, const Eigen::VectorXd& g, Eigen::VectorXd& x) { x -= 1e-6 * g; },
          [](const gdlab::ps::Update&, const Eigen::VectorXd&) { return true; });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("gdlab ps: P=%ld workers=%d updates=%lld in %.3f s: %.0f updates/s\n", P, o.workers,
                  static_cast<long long>(o.updates), s, static_cast<double>(o.updates) / s);
      std::fflush(stdout);
    } else {
      gdlab::ps::run_worker(world, o, world.rank(), [](const Eigen::VectorXd& x, Eigen::VectorXd& g) { g = x; });
    }
  }
  return 0;
}
