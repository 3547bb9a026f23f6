// Guess-and-check sampling of random interpolators (shared/papers/interpolators.md): the contract
// between the experiment kind `random_interpolator` (which splits a run into blocks of guess
// indices, hands them to workers and merges the results in index order) and the samplers (which
// run one block). Plain C++; no protobuf here.
//
// Reproducibility (spec §6.2 item 9, §8): guess g of stream r is a pure function of (the stream's
// Philox key, g). Its random words are
//     word(4b + i) = Philox4x32-10(counter = {lo32(g), hi32(g), b, 0}, key = {key.k0, key.k1})[i]
// consumed in order (b = 0, 1, …), so a block's result depends only on (key, g0, g1) and the merge
// of blocks in index order is independent of how many ranks computed them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gdlab::interp {

struct StreamKey {
  std::uint32_t k0 = 0, k1 = 0;
};

// A guess that fits at least a grid N's training prefix, kept as an exact posterior sample.
struct KeptGuess {
  std::uint64_t guess = 0;   // global guess index within its stream
  std::int32_t fitted = 0;   // T: leading training points fitted (capped at N_max)
  double test_error = 0.0;   // exact (enumeration) or on the stream's test points
};

struct BlockResult {
  std::uint64_t guesses = 0;  // g1 − g0
  // survival[t] = number of guesses of the block with T == t, t = 0 … N_max (size N_max + 1).
  std::vector<std::int64_t> survival;
  // kept[i]: the first `keep` guesses of the block (ascending index) with T ≥ grid[i].
  std::vector<std::vector<KeptGuess>> kept;
  // Optional per-sampler extras, e.g. the SGD baseline's test errors (empty otherwise).
  std::vector<double> extra;
};

// One prepared problem: the prior, the teacher and the R training streams (data drawn at
// construction from the data seeds). Thread-compatible: run_block is const.
class GuessSampler {
 public:
  virtual ~GuessSampler() = default;
  virtual int streams() const = 0;
  virtual int n_max() const = 0;
  // Runs guesses [g0, g1) of stream `stream`.
  virtual BlockResult run_block(int stream, std::uint64_t g0, std::uint64_t g1, std::span<const int> grid,
                                int keep) const = 0;
  // Parameters of the student (for the record), e.g. "FC 8-4-1, Q=3 {-1,0,1}, tie sgn(0)=+1".
  virtual std::string describe() const = 0;
};

}  // namespace gdlab::interp
