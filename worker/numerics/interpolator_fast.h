// The fast guess-and-check path for the headline configuration (shared/papers/interpolators.md §6.2):
// a one-hidden-layer threshold network with quantized weights on ±1 inputs. Because a hidden
// unit's fan-in is small, its outputs over the whole training set form a bitmask that is computed
// once per unit code; a guess then becomes a few table look-ups and bitwise operations, while the
// parameters stay exactly those of the canonical mapping (worker/numerics/guess_sampler.h,
// interpolator_quantized.h), so the fast and the scalar path give bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "worker/numerics/guess_sampler.h"

namespace gdlab::interp {

class FastTwoLayerKernel;

// Instruction-set paths of the kernel, for tests and benchmarks (the kernel picks the fastest one
// the CPU supports; every path gives bit-identical results).
namespace fast_detail {
enum class Isa { kAuto, kPortable, kAvx512 };
// Whether this CPU (and this build) can run `isa`; kAuto and kPortable are always available.
bool isa_available(Isa isa);
// FastTwoLayerKernel::run on a forced path (throws std::invalid_argument if it is unavailable).
void run_with_isa(const FastTwoLayerKernel& kernel, Isa isa, std::uint64_t g0, std::uint64_t count, int min_report,
                  std::int64_t* survival, std::vector<std::pair<std::uint64_t, int>>& reported,
                  std::vector<std::uint64_t>& fallback);
// T of guess g on the full canonical word stream, rejections included (Lemire redraws): what the
// caller's scalar path computes for a `fallback` guess, from the kernel's tables (used by the
// benchmark for end-to-end rates; a caller may use it to evaluate its fallback list).
int fitted_exact(const FastTwoLayerKernel& kernel, std::uint64_t guess);
// fitted[i] = fitted_exact(kernel, guesses[i]) for i < count, faster for a whole fallback list (the
// Philox blocks of many guesses are computed first, so the guesses' dependency chains overlap).
void fitted_exact_many(const FastTwoLayerKernel& kernel, const std::uint64_t* guesses, std::size_t count, int* fitted);
}  // namespace fast_detail

struct FastTwoLayerProblem {
  int input_dim = 0;              // d
  int width = 0;                  // k hidden threshold units
  int q = 3;                      // number of levels
  std::vector<int> levels;        // ascending integer levels, size q
  bool tie_positive = true;       // sgn(0) = +1
  std::vector<std::uint32_t> train_x;  // training inputs in their fixed order, bit i = [x_i = +1]; size N_max
  std::vector<std::uint8_t> train_y;   // 1 for label +1, 0 for −1
  StreamKey key;
};

class FastTwoLayerKernel {
 public:
  // False when the problem is outside the fast path; the caller then uses the scalar path.
  static bool supports(const FastTwoLayerProblem& problem);
  explicit FastTwoLayerKernel(const FastTwoLayerProblem& problem);
  ~FastTwoLayerKernel();
  FastTwoLayerKernel(const FastTwoLayerKernel&) = delete;
  FastTwoLayerKernel& operator=(const FastTwoLayerKernel&) = delete;

  // Runs guesses [g0, g0 + count). For each guess decided exactly, adds 1 to survival[T] (T =
  // leading training points fitted, capped at N_max; survival has N_max + 1 entries) and, when
  // T >= min_report, appends (g, T) to `reported`. Guesses it cannot decide on the fast path (a
  // Lemire rejection shifted the word stream) are appended to `fallback` and not counted; the
  // caller evaluates them with the scalar path. Both lists come out in ascending g.
  void run(std::uint64_t g0, std::uint64_t count, int min_report, std::int64_t* survival,
           std::vector<std::pair<std::uint64_t, int>>& reported, std::vector<std::uint64_t>& fallback) const;

 private:
  friend void fast_detail::run_with_isa(const FastTwoLayerKernel&, fast_detail::Isa, std::uint64_t, std::uint64_t, int,
                                        std::int64_t*, std::vector<std::pair<std::uint64_t, int>>&,
                                        std::vector<std::uint64_t>&);
  friend int fast_detail::fitted_exact(const FastTwoLayerKernel&, std::uint64_t);
  friend void fast_detail::fitted_exact_many(const FastTwoLayerKernel&, const std::uint64_t*, std::size_t, int*);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gdlab::interp
