// Guess-and-check throughput of the fast random-interpolator kernel (worker/numerics/interpolator_fast.h)
// on the headline configuration of issue 3 §3 and shared/papers/interpolators.md §7.1: a one-hidden-
// layer ternary threshold student (Q = 3 levels {−1, 0, 1}, sgn(0) = +1) on d = 8 inputs, the
// majority-of-3 teacher, training points uniform on {±1}^8 in a fixed order. items_per_second =
// guesses per second.
//
//   BM_Kernel/<width>/<N>            one thread, the kernel alone (fallback guesses listed, not evaluated)
//   BM_EndToEnd/<width>/<N>          one thread, the kernel + exact evaluation of its fallback guesses
//   BM_EndToEndPortable/<width>/<N>  the same on the forced portable (scalar) path
//   BM_QuantizedSampler/<width>/<N>  the service's sampler (make_quantized_sampler → run_block): the
//                                    kernel, the sampler's own scalar path for fallback guesses, kept
//                                    samples with exact test errors
//   BM_EndToEndThreads/<width>/<N>/<threads>  std::thread workers over disjoint guess ranges, wall time;
//                                    counters cores_used (process CPU time / wall time) and
//                                    per_cpu_second (guesses per process CPU-second)
//
// bench/gc_compare.sh runs these next to the PyTorch batched guess-and-check (bench/gc_torch.py).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <thread>
#include <utility>
#include <vector>

#include "common/random.h"
#include "worker/numerics/interpolator_fast.h"
#include "worker/numerics/interpolator_quantized.h"
#include "worker/numerics/philox.h"

namespace {

using gdlab::interp::FastTwoLayerKernel;
using gdlab::interp::FastTwoLayerProblem;
namespace fast_detail = gdlab::interp::fast_detail;

// The §7.1 problem: x uniform on {±1}^8 (bit i = [x_i = +1]), y = maj(x_1, x_2, x_3).
FastTwoLayerProblem headline_problem(int width, int n) {
  FastTwoLayerProblem p;
  p.input_dim = 8;
  p.width = width;
  p.q = 3;
  p.levels = {-1, 0, 1};
  p.tie_positive = true;
  gdlab::Rng rng(20240611);
  for (int t = 0; t < n; ++t) {
    const auto x = static_cast<std::uint32_t>(rng.next_u64() & 0xFFu);
    p.train_x.push_back(x);
    p.train_y.push_back(__builtin_popcount(x & 7u) >= 2 ? 1 : 0);
  }
  p.key = gdlab::interp::stream_key(gdlab::derive_seed(1, 0, 0, 1000));
  return p;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// One worker's share: guesses [g0, g0 + count) in slices of `slice`, fallback guesses evaluated
// exactly when `end_to_end`. Returns the number of guesses with T = N (kept so the work is not dead).
std::int64_t run_range(const FastTwoLayerKernel& kernel, fast_detail::Isa isa, int n, std::uint64_t g0,
                       std::uint64_t count, bool end_to_end) {
  constexpr std::uint64_t kSlice = std::uint64_t{1} << 16;
  std::vector<std::int64_t> survival(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::pair<std::uint64_t, int>> reported;
  std::vector<std::uint64_t> fallback;
  std::vector<int> fitted;
  reported.reserve(1024);
  fallback.reserve(4096);
  for (std::uint64_t g = g0; g < g0 + count; g += kSlice) {
    reported.clear();
    fallback.clear();
    fast_detail::run_with_isa(kernel, isa, g, std::min(kSlice, g0 + count - g), n, survival.data(), reported, fallback);
    if (end_to_end) {
      fitted.resize(fallback.size());
      fast_detail::fitted_exact_many(kernel, fallback.data(), fallback.size(), fitted.data());
      for (int t : fitted) ++survival[static_cast<std::size_t>(t)];
    }
  }
  return survival[static_cast<std::size_t>(n)];
}

void single_thread(benchmark::State& state, fast_detail::Isa isa, bool end_to_end) {
  const int width = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const FastTwoLayerKernel kernel(headline_problem(width, n));
  const std::uint64_t per_iteration = std::uint64_t{1} << 20;
  std::uint64_t g = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(run_range(kernel, isa, n, g, per_iteration, end_to_end));
    g += per_iteration;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_iteration));
}

void BM_Kernel(benchmark::State& state) { single_thread(state, fast_detail::Isa::kAuto, false); }
void BM_EndToEnd(benchmark::State& state) { single_thread(state, fast_detail::Isa::kAuto, true); }
void BM_EndToEndPortable(benchmark::State& state) { single_thread(state, fast_detail::Isa::kPortable, true); }

// Several std::threads over disjoint guess ranges (the whole machine); rate from wall-clock time.
void BM_EndToEndThreads(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const int threads = static_cast<int>(state.range(2));
  const FastTwoLayerKernel kernel(headline_problem(width, n));
  const std::uint64_t per_thread = std::uint64_t{1} << 24;
  std::uint64_t g = 0;
  const double cpu_start = process_cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::vector<std::thread> workers;
    std::vector<std::int64_t> hits(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i)
      workers.emplace_back([&, i, start = g + static_cast<std::uint64_t>(i) * per_thread] {
        hits[static_cast<std::size_t>(i)] = run_range(kernel, fast_detail::Isa::kAuto, n, start, per_thread, true);
      });
    for (auto& w : workers) w.join();
    benchmark::DoNotOptimize(hits.data());
    g += per_thread * static_cast<std::uint64_t>(threads);
  }
  const double cpu = process_cpu_seconds() - cpu_start;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const auto guesses = static_cast<double>(state.iterations() * per_thread * static_cast<std::uint64_t>(threads));
  state.SetItemsProcessed(static_cast<std::int64_t>(guesses));
  // The machine is shared: how many cores the workers actually got, and the rate per CPU-second
  // (× 2 = the whole-machine rate of an otherwise idle 2-core machine).
  state.counters["cores_used"] = cpu / wall;
  state.counters["per_cpu_second"] = guesses / cpu;
}

// The whole sampler of the service (worker/numerics/interpolator_quantized.h): GuessSampler::run_block
// on one stream, the fast kernel inside, its fallback guesses on the sampler's own scalar path, the
// first 20 guesses with T ≥ N kept with their exact test errors.
void BM_QuantizedSampler(benchmark::State& state) {
  const int width = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  gdlab::interp::QuantizedProblem problem;
  problem.input_dim = 8;
  problem.hidden_widths = {width};
  problem.q = 3;
  problem.n_max = n;
  problem.data_seeds = {gdlab::derive_seed(1, 0, 0, 0)};
  problem.guess_keys = {gdlab::interp::stream_key(gdlab::derive_seed(1, 0, 0, 1000))};
  const auto sampler = gdlab::interp::make_quantized_sampler(problem);
  const std::vector<int> grid = {n};
  const std::uint64_t per_iteration = std::uint64_t{1} << 20;
  std::uint64_t g = 0;
  for (auto _ : state) {
    const auto block = sampler->run_block(0, g, g + per_iteration, grid, 20);
    benchmark::DoNotOptimize(block.survival.data());
    g += per_iteration;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_iteration));
}

void widths(benchmark::internal::Benchmark* b) {
  b->Args({1, 16})->Args({2, 32})->Args({4, 32})->Args({8, 32});
}

BENCHMARK(BM_Kernel)->Apply(widths);
BENCHMARK(BM_EndToEnd)->Apply(widths);
BENCHMARK(BM_EndToEndPortable)->Args({1, 16})->Args({4, 32});
BENCHMARK(BM_QuantizedSampler)->Args({1, 16})->Args({4, 32});
BENCHMARK(BM_EndToEndThreads)->Args({1, 16, 1})->Args({1, 16, 2})->Args({4, 32, 1})->Args({4, 32, 2})->UseRealTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
