// GD throughput of the numerical core (worker/numerics/separable.h): logistic loss on planted2 with
// d = 5, N = 40 (separable.md §0.8, the T1.2 setting), η = 4/σ_max². Reported as items_per_second,
// one item = one GD step. Compare with bench/numpy_gd.py through bench/compare.sh; numbers and
// commands in docs/performance.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "worker/numerics/separable.h"

namespace {

using gdlab::separable::GdOptions;
using gdlab::separable::MatrixXd;
using gdlab::separable::VectorXd;

struct Problem {
  MatrixXd Xt;
  double eta;
};

Problem planted_problem() {
  const gdlab::separable::Planted planted = gdlab::separable::make_planted2(5, 40, 1);
  const double s = gdlab::separable::sigma_max(planted.data.X);
  return {planted.data.absorbed(), 4.0 / (s * s)};
}

// The step cost alone: 1000 steps from w(0) = 0 per iteration, no records.
void BM_GdStep(benchmark::State& state) {
  const Problem problem = planted_problem();
  GdOptions opt;
  opt.lr = problem.eta;
  opt.steps = 1000;
  for (auto _ : state) {
    VectorXd w = gdlab::separable::run_gd(problem.Xt, opt, {}, nullptr);
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * opt.steps);
}
BENCHMARK(BM_GdStep);

// A full T1.2-sized run: 1e6 steps recorded on a log grid of 10 points per decade (58 records),
// each record storing w and L as an experiment kind would.
void BM_GdFullRun(benchmark::State& state) {
  const Problem problem = planted_problem();
  GdOptions opt;
  opt.lr = problem.eta;
  opt.steps = 1'000'000;
  const std::vector<std::int64_t> grid = gdlab::separable::log_grid(opt.steps, 10);
  std::vector<VectorXd> ws;
  std::vector<double> losses;
  ws.reserve(grid.size());
  losses.reserve(grid.size());
  for (auto _ : state) {
    ws.clear();
    losses.clear();
    const VectorXd w = gdlab::separable::run_gd(problem.Xt, opt, grid,
                                                [&](std::int64_t, const VectorXd& w_t, double loss) {
                                                  ws.push_back(w_t);
                                                  losses.push_back(loss);
                                                });
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * opt.steps);
}
BENCHMARK(BM_GdFullRun)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
