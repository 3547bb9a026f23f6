// Seed derivation and a small portable generator.
//
// Every random draw in gdlab comes from a seed derived from (campaign seed, experiment index,
// task index, stream index), so results do not depend on the number of ranks or on the order in
// which tasks are scheduled. The generator and the distributions are our own (not <random>'s
// distributions, whose algorithms are implementation-defined), so files are bitwise identical
// across standard libraries.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace gdlab {

// SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Seed of draw stream `index` of task `task` of experiment `experiment` in campaign `campaign`.
constexpr std::uint64_t derive_seed(std::uint64_t campaign, std::uint64_t experiment,
                                    std::uint64_t task, std::uint64_t index) {
  std::uint64_t h = mix64(campaign);
  h = mix64(h ^ mix64(experiment + 0x1000));
  h = mix64(h ^ mix64(task + 0x2000));
  h = mix64(h ^ mix64(index + 0x3000));
  return h;
}

// xoshiro256** 1.0 (Blackman, Vigna 2018), seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t z = seed;
    for (auto& s : s_) {
      z += 0x9E3779B97F4A7C15ULL;
      std::uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
      s = x ^ (x >> 31);
    }
  }

  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Standard normal by the Box-Muller transform (one value per call; the pair's second value is
  // discarded so that each call consumes exactly two uniforms, which keeps streams easy to reason
  // about).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  // +1 or -1 with equal probability.
  double sign() { return (next_u64() >> 63) ? 1.0 : -1.0; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace gdlab
