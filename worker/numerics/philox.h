// Counter-based randomness for guess-and-check (shared/papers/interpolators.md §6.2 item 9):
// Philox4x32-10 of Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011 — bit-identical to Random123's philox4x32 (tests/interpolator_test.cc checks it against
// Debian's librandom123-dev), and Lemire's exact bounded integers ("Fast random integer generation
// in an interval", ACM TOMACS 2019) drawn from a guess's word stream.
#pragma once

#include <array>
#include <cstdint>

#include "worker/numerics/guess_sampler.h"

namespace gdlab::interp {

inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) − 1

using PhiloxBlock = std::array<std::uint32_t, 4>;

// Philox4x32 with 10 rounds (Random123's default).
inline PhiloxBlock philox4x32_10(PhiloxBlock ctr, StreamKey key) {
  std::uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{kPhiloxM0} * ctr[0];
    const std::uint64_t p1 = std::uint64_t{kPhiloxM1} * ctr[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ k0, lo1, hi0 ^ ctr[3] ^ k1, lo0};
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return ctr;
}

// The random words of one guess: word(4b + i) = Philox4x32-10({lo32(g), hi32(g), b, 0}, key)[i].
class GuessWords {
 public:
  GuessWords(StreamKey key, std::uint64_t guess) : key_(key), guess_(guess) {}
  std::uint32_t next() {
    if (used_ == 4) {
      block_ = philox4x32_10({static_cast<std::uint32_t>(guess_), static_cast<std::uint32_t>(guess_ >> 32),
                              next_block_++, 0u},
                             key_);
      used_ = 0;
    }
    return block_[used_++];
  }

 private:
  StreamKey key_;
  std::uint64_t guess_;
  std::uint32_t next_block_ = 0;
  int used_ = 4;
  PhiloxBlock block_{};
};

// Exactly uniform on [0, range), 1 ≤ range ≤ 2^32 (range == 2^32 returns the word itself):
// Lemire's multiply-shift with the rejection that removes its bias.
inline std::uint32_t uniform_below(GuessWords& words, std::uint64_t range) {
  if (range == (std::uint64_t{1} << 32)) return words.next();
  const auto s = static_cast<std::uint32_t>(range);
  std::uint64_t m = std::uint64_t{words.next()} * s;
  auto low = static_cast<std::uint32_t>(m);
  if (low < s) {
    const std::uint32_t threshold = static_cast<std::uint32_t>(-s) % s;  // 2^32 mod s
    while (low < threshold) {
      m = std::uint64_t{words.next()} * s;
      low = static_cast<std::uint32_t>(m);
    }
  }
  return static_cast<std::uint32_t>(m >> 32);
}

// The key of a stream from a 64-bit derived seed.
inline StreamKey stream_key(std::uint64_t seed) {
  return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

}  // namespace gdlab::interp
