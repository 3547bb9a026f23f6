// The fast guess-and-check kernel (shared/papers/interpolators.md §6.2, tricks 1, 3, 5, 8 and 9; the
// headline configuration of §7.1 and issue 3 §3). See interpolator_fast.h for the contract and
// docs/performance.md ("Random interpolators (guess-and-check)") for the measured throughput.
//
// How a guess is evaluated, exactly as the canonical guess → parameters mapping of issue 3 (the
// shared contract of guess_sampler.h and interpolator_quantized.h; "mapping item n" below):
//   1. Words: Philox4x32-10 block b of guess g is philox({lo32(g), hi32(g), b, 0}, key) (philox.h).
//   2. Chunks: the units (hidden 0..k−1, then the output unit) are grouped greedily into chunks whose
//      radix (product of the units' radices Q^p) stays ≤ 2^32; chunk i takes word i by Lemire's
//      multiply-shift. A rejection (low word < 2^32 mod radix) would shift every later word: such a
//      guess is handed to the caller (`fallback`), never evaluated here.
//   3. Digits without division: Lemire's value is v = ⌊w·s/2^32⌋ with s = R_1·…·R_m (first unit least
//      significant). Writing w·R_m = a·2^32 + r gives v = a·(R_1…R_{m−1}) + ⌊r·(R_1…R_{m−1})/2^32⌋, so
//      the last unit's code is a = hi32(w·R_m) and the rest is Lemire's value of the word r = lo32(w·R_m)
//      on the smaller range. Each unit costs one 32×32→64 multiply, and the low word of the final
//      product is exactly the low word Lemire compares with its threshold.
//   4. Tables (§6.2 trick 5 taken to its limit): a hidden unit with code c outputs a fixed bit per
//      training point, so hidden_masks[c] holds its outputs on all N_max points (bit n = [h(x_n) = +1]).
//      The output unit with code o is a Boolean function of the k hidden bits: truth[o] is its truth
//      table over the 2^k hidden patterns. A guess is then k + 1 look-ups and a bit-sliced evaluation
//      of the truth table over all points at once; T = number of trailing zeros of the mismatch mask
//      (leading points fitted), capped at N_max.
//
// Paths: a portable scalar path (any supported problem) and an AVX-512 path (16 guesses per batch,
// Philox in 64-bit lanes, gathers, truth-table multiplexer tree on 32-bit lanes = the first 32 points;
// the rare guesses that fit all 32 go to the scalar path for the rest). Both give identical results
// (tests/interpolator_fast_test.cc).
#include "worker/numerics/interpolator_fast.h"

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

#include "worker/numerics/philox.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GDLAB_NO_AVX512_KERNEL)
#define GDLAB_FAST_AVX512 1
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* helpers (GCC
// bug 105593); the pragma covers the header's lines, where the diagnostic is located.
#if defined(__clang__)
#include <immintrin.h>
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#endif

namespace gdlab::interp {
namespace {

constexpr int kMaxWidth = 8;
constexpr int kMaxUnits = kMaxWidth + 1;
constexpr int kMaxPoints = 64;
constexpr int kMaxInputDim = 31;
constexpr std::uint64_t kMaxHiddenCodes = std::uint64_t{1} << 22;  // 4 Mi masks, 32 MiB
constexpr std::uint64_t kMaxOutputCodes = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxOutputTableBytes = std::uint64_t{1} << 26;
constexpr int kMaxWords = 4 * 3;  // ≤ 9 single-unit chunks → 3 Philox blocks

// base^exp, or cap + 1 when it exceeds cap.
std::uint64_t capped_pow(std::uint64_t base, int exp, std::uint64_t cap) {
  std::uint64_t r = 1;
  for (int i = 0; i < exp; ++i) {
    if (r > cap / base) return cap + 1;
    r *= base;
  }
  return r;
}

// sgn under the tie rule (mapping item 4; spec §7.1): +1 ⇔ z ≥ 0 (TIE_POSITIVE) or z > 0.
inline bool positive(std::int64_t z, bool tie_positive) { return tie_positive ? z >= 0 : z > 0; }

// Everything the kernel precomputes from a problem (FastTwoLayerKernel::Impl wraps it).
struct Kernel {
  struct Chunk {
    int first_unit = 0;
    int units = 0;
    std::uint64_t radix = 0;      // product of the units' radices, ≤ 2^32
    std::uint32_t threshold = 0;  // 2^32 mod radix: Lemire rejects a word whose low product is below it
  };

  int n = 0;  // N_max
  int k = 0;  // width
  int d = 0;
  int q = 0;
  bool tie_positive = true;
  StreamKey key;
  std::uint64_t labels = 0;  // bit n = [y_n = +1]
  std::array<std::uint32_t, kMaxUnits> unit_radix{};
  std::vector<Chunk> chunks;
  int blocks = 0;  // Philox blocks per guess (words = chunks.size())
  std::uint32_t hidden_codes = 0, output_codes = 0;
  std::vector<std::uint64_t> hidden_masks;  // [hidden code] → outputs on all points
  int truth_words = 1;                      // 64-bit words per truth table
  std::vector<std::uint64_t> truth;         // [output code · truth_words + pattern / 64]

  // AVX-512 path data.
  bool vector_eligible = false;          // k ≤ 5 and ≤ 2 Philox blocks
  std::vector<std::uint32_t> hidden_low;  // [hidden code] → outputs on the first 32 points
  std::vector<std::uint32_t> truth32;     // [output code] → truth table (≤ 32 patterns), padded to 32·2^i entries
  int truth_pairs = 0;                    // 32-entry table pairs for in-register look-up (1, 2, 4, 8), 0 = gather
  std::vector<std::uint16_t> truth16;     // k ≤ 4, ≤ 256 output codes: 16-bit truth tables, padded to 64·2^i
  int truth_word_pairs = 0;               // 64-entry word-table pairs (1, 2, 4), 0 = none
  // Regular chunk plan: hidden units in consecutive groups of `hidden_per_chunk` (1–3), the output
  // unit joining the last group (output_joins) or alone; 0 when the plan is not of this form.
  int hidden_per_chunk = 0;
  bool output_joins = false;

  explicit Kernel(const FastTwoLayerProblem& p);
  int fitted_scalar(std::uint64_t g) const;
  int fitted_exact(std::uint64_t g) const;
  void fitted_exact_many(const std::uint64_t* guesses, std::size_t count, int* fitted) const;
  int fitted_from_codes(const std::uint32_t* code) const;
  void run_scalar(std::uint64_t g0, std::uint64_t count, int min_report, std::int64_t* survival,
                  std::vector<std::pair<std::uint64_t, int>>& reported, std::vector<std::uint64_t>& fallback) const;
  void run(fast_detail::Isa isa, std::uint64_t g0, std::uint64_t count, int min_report, std::int64_t* survival,
           std::vector<std::pair<std::uint64_t, int>>& reported, std::vector<std::uint64_t>& fallback) const;
};

Kernel::Kernel(const FastTwoLayerProblem& p)
    : n(static_cast<int>(p.train_x.size())),
      k(p.width),
      d(p.input_dim),
      q(p.q),
      tie_positive(p.tie_positive),
      key(p.key) {
  for (int i = 0; i < n; ++i)
    if (p.train_y[static_cast<std::size_t>(i)] != 0) labels |= std::uint64_t{1} << i;

  // Unit radices (canonical order: hidden units 0..k−1, then the output unit) and the greedy chunks
  // (mapping item 2). Every radix here is ≤ 2^22, so no unit is split.
  hidden_codes = static_cast<std::uint32_t>(capped_pow(static_cast<std::uint64_t>(q), d + 1, kMaxHiddenCodes));
  output_codes = static_cast<std::uint32_t>(capped_pow(static_cast<std::uint64_t>(q), k + 1, kMaxOutputCodes));
  for (int j = 0; j < k; ++j) unit_radix[static_cast<std::size_t>(j)] = hidden_codes;
  unit_radix[static_cast<std::size_t>(k)] = output_codes;
  for (int u = 0; u <= k; ++u) {
    const std::uint64_t r = unit_radix[static_cast<std::size_t>(u)];
    if (!chunks.empty() && chunks.back().radix * r <= (std::uint64_t{1} << 32)) {
      chunks.back().radix *= r;
      ++chunks.back().units;
    } else {
      chunks.push_back({u, 1, r, 0});
    }
  }
  for (Chunk& chunk : chunks) chunk.threshold = static_cast<std::uint32_t>((std::uint64_t{1} << 32) % chunk.radix);
  blocks = static_cast<int>((chunks.size() + 3) / 4);

  // Level index of parameter m of a unit with code c: (c / Q^m) % Q (mapping item 1).
  auto level = [&](std::uint64_t code, int m) {
    for (int i = 0; i < m; ++i) code /= static_cast<std::uint64_t>(q);
    return static_cast<std::int64_t>(p.levels[static_cast<std::size_t>(code % static_cast<std::uint64_t>(q))]);
  };

  // Hidden masks. A hidden code splits into its first `lo_digits` weights and the rest (remaining
  // weights and the bias); the pre-activation on point n is the sum of the two partial sums.
  const int lo_digits = (d + 1) / 2;
  const auto lo_codes = static_cast<std::uint32_t>(capped_pow(static_cast<std::uint64_t>(q), lo_digits, kMaxHiddenCodes));
  const std::uint32_t hi_codes = hidden_codes / lo_codes;
  auto x_sign = [&](int point, int input) -> std::int64_t {
    return (p.train_x[static_cast<std::size_t>(point)] >> input) & 1u ? 1 : -1;
  };
  std::vector<std::int64_t> z_lo(static_cast<std::size_t>(lo_codes) * static_cast<std::size_t>(n));
  std::vector<std::int64_t> z_hi(static_cast<std::size_t>(hi_codes) * static_cast<std::size_t>(n));
  for (std::uint32_t c = 0; c < lo_codes; ++c)
    for (int t = 0; t < n; ++t) {
      std::int64_t z = 0;
      for (int i = 0; i < lo_digits; ++i) z += level(c, i) * x_sign(t, i);
      z_lo[static_cast<std::size_t>(c) * static_cast<std::size_t>(n) + static_cast<std::size_t>(t)] = z;
    }
  for (std::uint32_t c = 0; c < hi_codes; ++c)
    for (int t = 0; t < n; ++t) {
      std::int64_t z = level(c, d - lo_digits);  // bias: parameter d of the unit
      for (int i = lo_digits; i < d; ++i) z += level(c, i - lo_digits) * x_sign(t, i);
      z_hi[static_cast<std::size_t>(c) * static_cast<std::size_t>(n) + static_cast<std::size_t>(t)] = z;
    }
  hidden_masks.assign(hidden_codes, 0);
  for (std::uint32_t c = 0; c < hidden_codes; ++c) {
    const std::int64_t* a = &z_lo[static_cast<std::size_t>(c % lo_codes) * static_cast<std::size_t>(n)];
    const std::int64_t* b = &z_hi[static_cast<std::size_t>(c / lo_codes) * static_cast<std::size_t>(n)];
    std::uint64_t mask = 0;
    for (int t = 0; t < n; ++t)
      if (positive(a[t] + b[t], tie_positive)) mask |= std::uint64_t{1} << t;
    hidden_masks[c] = mask;
  }

  // Output truth tables: pattern bit j = [h_j = +1]; f = sgn(Σ_j v_j h_j + c).
  const int patterns = 1 << k;
  truth_words = std::max(1, patterns / 64);
  truth.assign(static_cast<std::size_t>(output_codes) * static_cast<std::size_t>(truth_words), 0);
  for (std::uint32_t o = 0; o < output_codes; ++o)
    for (int pat = 0; pat < patterns; ++pat) {
      std::int64_t z = level(o, k);
      for (int j = 0; j < k; ++j) z += level(o, j) * ((pat >> j) & 1 ? 1 : -1);
      if (positive(z, tie_positive))
        truth[static_cast<std::size_t>(o) * static_cast<std::size_t>(truth_words) + static_cast<std::size_t>(pat / 64)] |=
            std::uint64_t{1} << (pat % 64);
    }

  vector_eligible = k <= 5 && blocks <= 2;
  if (vector_eligible) {
    hidden_low.resize(hidden_codes);
    for (std::uint32_t c = 0; c < hidden_codes; ++c) hidden_low[c] = static_cast<std::uint32_t>(hidden_masks[c]);
    std::size_t padded = 32;
    while (padded < output_codes) padded *= 2;
    truth32.assign(padded, 0);
    for (std::uint32_t o = 0; o < output_codes; ++o)
      truth32[o] = static_cast<std::uint32_t>(truth[static_cast<std::size_t>(o) * static_cast<std::size_t>(truth_words)]);
    truth_pairs = padded <= 256 ? static_cast<int>(padded / 32) : 0;
    if (k <= 4 && output_codes > 32 && output_codes <= 256) {  // (≤ 32 codes: one dword permute)
      const std::size_t words = std::max<std::size_t>(64, padded);
      truth16.assign(words, 0);
      for (std::uint32_t o = 0; o < output_codes; ++o) truth16[o] = static_cast<std::uint16_t>(truth32[o]);
      truth_word_pairs = static_cast<int>(words / 64);
    }
    // Recognise the regular plan (the greedy chunking of mapping item 2 with equal hidden radices).
    for (int group = 1; group <= std::min(3, k) && hidden_per_chunk == 0; ++group)
      for (bool joins : {false, true}) {
        std::vector<std::pair<int, int>> plan;  // (first unit, units)
        for (int first = 0; first < k; first += group) plan.emplace_back(first, std::min(group, k - first));
        if (joins)
          ++plan.back().second;
        else
          plan.emplace_back(k, 1);
        bool same = plan.size() == chunks.size();
        for (std::size_t c = 0; same && c < plan.size(); ++c)
          same = plan[c].first == chunks[c].first_unit && plan[c].second == chunks[c].units;
        if (same) {
          hidden_per_chunk = group;
          output_joins = joins;
        }
      }
  }
}

// T of guess g, or −1 when a Lemire rejection shifted its word stream.
int Kernel::fitted_scalar(std::uint64_t g) const {
  std::array<std::uint32_t, kMaxWords> word;
  for (int b = 0; b < blocks; ++b) {
    const PhiloxBlock block = philox4x32_10(
        {static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32), static_cast<std::uint32_t>(b), 0u}, key);
    std::copy(block.begin(), block.end(), word.begin() + 4 * b);
  }
  std::array<std::uint32_t, kMaxUnits> code;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = chunks[c];
    std::uint32_t w = word[c];
    for (int u = chunk.first_unit + chunk.units - 1; u >= chunk.first_unit; --u) {
      const std::uint64_t prod = std::uint64_t{w} * unit_radix[static_cast<std::size_t>(u)];
      code[static_cast<std::size_t>(u)] = static_cast<std::uint32_t>(prod >> 32);
      w = static_cast<std::uint32_t>(prod);
    }
    if (w < chunk.threshold) return -1;
  }
  return fitted_from_codes(code.data());
}

// The full word stream of guess g: a chunk's word whose low product falls below the threshold is
// redrawn from the next word (exactly uniform_below's loop), then decoded by the same digit chain.
int Kernel::fitted_exact(std::uint64_t g) const {
  GuessWords words(key, g);
  std::array<std::uint32_t, kMaxUnits> code;
  for (const Chunk& chunk : chunks) {
    std::uint32_t w = words.next();
    while (static_cast<std::uint32_t>(std::uint64_t{w} * chunk.radix) < chunk.threshold) w = words.next();
    for (int u = chunk.first_unit + chunk.units - 1; u >= chunk.first_unit; --u) {
      const std::uint64_t prod = std::uint64_t{w} * unit_radix[static_cast<std::size_t>(u)];
      code[static_cast<std::size_t>(u)] = static_cast<std::uint32_t>(prod >> 32);
      w = static_cast<std::uint32_t>(prod);
    }
  }
  return fitted_from_codes(code.data());
}

constexpr std::size_t kGroup = 64;  // guesses per group in fitted_exact_many
using GroupCodes = std::array<std::array<std::uint32_t, kGroup>, kMaxUnits>;

// fitted[i] for the first `size` guesses of a group from their unit codes with the AVX-512 look-ups
// and evaluation; false when that path is not available (then the caller evaluates them).
bool fitted_from_codes_avx512(const Kernel& im, const GroupCodes& code, std::size_t size, int* fitted);

void Kernel::fitted_exact_many(const std::uint64_t* guesses, std::size_t count, int* fitted) const {
  std::array<PhiloxBlock, kGroup> first_block;
  GroupCodes group_code{};
  std::array<bool, kGroup> decoded;
  for (std::size_t start = 0; start < count; start += kGroup) {
    const std::size_t size = std::min(kGroup, count - start);
    for (std::size_t i = 0; i < size; ++i) {
      const std::uint64_t g = guesses[start + i];
      first_block[i] = philox4x32_10({static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32), 0u, 0u}, key);
    }
    for (std::size_t i = 0; i < size; ++i) {
      // Words of block 0, a chunk's word chosen without a branch: one redraw at most per chunk (a
      // second redraw, or running past block 0, takes the general path).
      const PhiloxBlock& block = first_block[i];
      std::array<std::uint32_t, kMaxUnits> code{};
      unsigned next_word = 0;
      bool in_block = true;
      for (const Chunk& chunk : chunks) {
        const std::uint32_t w1 = block[next_word & 3u], w2 = block[(next_word + 1) & 3u];
        const bool redraw = static_cast<std::uint32_t>(std::uint64_t{w1} * chunk.radix) < chunk.threshold;
        const bool redraw_again = static_cast<std::uint32_t>(std::uint64_t{w2} * chunk.radix) < chunk.threshold;
        in_block &= next_word + (redraw ? 1u : 0u) < 4 && !(redraw && redraw_again);
        std::uint32_t w = redraw ? w2 : w1;
        next_word += redraw ? 2u : 1u;
        for (int u = chunk.first_unit + chunk.units - 1; u >= chunk.first_unit; --u) {
          const std::uint64_t prod = std::uint64_t{w} * unit_radix[static_cast<std::size_t>(u)];
          code[static_cast<std::size_t>(u)] = static_cast<std::uint32_t>(prod >> 32);
          w = static_cast<std::uint32_t>(prod);
        }
      }
      decoded[i] = in_block;
      for (int u = 0; u <= k; ++u)
        group_code[static_cast<std::size_t>(u)][i] = in_block ? code[static_cast<std::size_t>(u)] : 0;
    }
    if (!fitted_from_codes_avx512(*this, group_code, size, fitted + start))
      for (std::size_t i = 0; i < size; ++i) {
        std::array<std::uint32_t, kMaxUnits> code;
        for (int u = 0; u <= k; ++u) code[static_cast<std::size_t>(u)] = group_code[static_cast<std::size_t>(u)][i];
        fitted[start + i] = fitted_from_codes(code.data());
      }
    for (std::size_t i = 0; i < size; ++i)
      if (!decoded[i]) fitted[start + i] = fitted_exact(guesses[start + i]);
  }
}

int Kernel::fitted_from_codes(const std::uint32_t* code) const {
  std::array<std::uint64_t, kMaxWidth> mask;
  for (int j = 0; j < k; ++j) mask[static_cast<std::size_t>(j)] = hidden_masks[code[static_cast<std::size_t>(j)]];
  const std::uint64_t* table = &truth[static_cast<std::size_t>(code[static_cast<std::size_t>(k)]) * static_cast<std::size_t>(truth_words)];
  if (k <= 4) {
    // Branch-free: the truth table as a multiplexer tree over the masks (all points at once); the
    // level-1 node for leaves 2i, 2i+1 is m0 ? leaf(2i+1) : leaf(2i) with all-ones/zero leaves.
    std::array<std::uint64_t, 8> node;
    const int leaves = 1 << (k - 1);
    for (int i = 0; i < leaves; ++i) {
      const std::uint64_t when_zero = 0 - ((table[0] >> (2 * i)) & 1u), when_one = 0 - ((table[0] >> (2 * i + 1)) & 1u);
      node[static_cast<std::size_t>(i)] = (mask[0] & when_one) | (~mask[0] & when_zero);
    }
    for (int level = 1; level < k; ++level)
      for (int i = 0; i < (leaves >> level); ++i) {
        const std::uint64_t select = mask[static_cast<std::size_t>(level)];
        node[static_cast<std::size_t>(i)] = (select & node[static_cast<std::size_t>(2 * i + 1)]) |
                                            (~select & node[static_cast<std::size_t>(2 * i)]);
      }
    const std::uint64_t miss = node[0] ^ labels;
    const std::uint64_t valid = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    return (miss & valid) == 0 ? n : __builtin_ctzll(miss & valid);
  }
  // Early rejection point by point (spec §6.2 trick 1): a guess usually dies on its first points.
  for (int t = 0; t < n; ++t) {
    unsigned pattern = 0;
    for (int j = 0; j < k; ++j) pattern |= static_cast<unsigned>((mask[static_cast<std::size_t>(j)] >> t) & 1u) << j;
    if (((table[pattern / 64] >> (pattern % 64)) & 1u) != ((labels >> t) & 1u)) return t;
  }
  return n;
}

void Kernel::run_scalar(std::uint64_t g0, std::uint64_t count, int min_report, std::int64_t* survival,
                                          std::vector<std::pair<std::uint64_t, int>>& reported,
                                          std::vector<std::uint64_t>& fallback) const {
  for (std::uint64_t g = g0; g != g0 + count; ++g) {
    const int t = fitted_scalar(g);
    if (t < 0) {
      fallback.push_back(g);
      continue;
    }
    ++survival[t];
    if (t >= min_report) reported.emplace_back(g, t);
  }
}

#ifdef GDLAB_FAST_AVX512

#define GDLAB_AVX512 __attribute__((target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,bmi,bmi2,popcnt")))
#define GDLAB_AVX512_INLINE __attribute__((target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,bmi,bmi2,popcnt"), always_inline)) inline

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2");
  return has;
}

// Philox4x32-10 block `block` of 8·H guesses at once, one guess per 64-bit lane, H independent
// vectors advanced round by round in lockstep: lane i of vector h has counter {lo32 = low dword of
// lo[h][i], hi32 = hi, block, 0}. Each 32-bit state word lives in the low dword of its lane (the high
// dword is don't-care: _mm512_mul_epu32 reads only low dwords). Rounds 1 and 2 are specialised:
// counter words 1, 2, 3 are the same for all lanes, so one of each round's two products is a scalar.
template <int H>
GDLAB_AVX512_INLINE void philox_lockstep(const __m512i* lo, std::uint32_t hi, std::uint32_t block, StreamKey key,
                                         __m512i (*out)[4]) {
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  std::uint32_t k0 = key.k0, k1 = key.k1;
  // Round 1: counter {lo, hi, block, 0}; the second product M1·block is a scalar.
  const std::uint64_t c1 = std::uint64_t{kPhiloxM1} * block;
  const std::uint32_t x0 = static_cast<std::uint32_t>(c1 >> 32) ^ hi ^ k0;
  const std::uint32_t x1 = static_cast<std::uint32_t>(c1);
  __m512i y0[H], y1[H], y2[H], y3[H];
  for (int h = 0; h < H; ++h) {
    const __m512i p0 = _mm512_mul_epu32(lo[h], m0);
    y2[h] = _mm512_xor_si512(_mm512_srli_epi64(p0, 32), _mm512_set1_epi64(k1));
    y3[h] = p0;
  }
  k0 += kPhiloxW0;
  k1 += kPhiloxW1;
  // Round 2: the first product x0·M0 is a scalar.
  const std::uint64_t c0 = std::uint64_t{kPhiloxM0} * x0;
  for (int h = 0; h < H; ++h) {
    const __m512i p1 = _mm512_mul_epu32(y2[h], m1);
    y0[h] = _mm512_xor_si512(_mm512_srli_epi64(p1, 32), _mm512_set1_epi64(x1 ^ k0));
    y1[h] = p1;
    y2[h] = _mm512_xor_si512(y3[h], _mm512_set1_epi64(static_cast<std::uint32_t>(c0 >> 32) ^ k1));
    y3[h] = _mm512_set1_epi64(static_cast<std::uint32_t>(c0));
  }
  k0 += kPhiloxW0;
  k1 += kPhiloxW1;
  // Rounds 3..10.
  for (int round = 2; round < 10; ++round) {
    const __m512i key0 = _mm512_set1_epi64(k0), key1 = _mm512_set1_epi64(k1);
    for (int h = 0; h < H; ++h) {
      const __m512i p0 = _mm512_mul_epu32(y0[h], m0);
      const __m512i p1 = _mm512_mul_epu32(y2[h], m1);
      y0[h] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), y1[h], key0, 0x96);
      y1[h] = p1;
      y2[h] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), y3[h], key1, 0x96);
      y3[h] = p0;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  for (int h = 0; h < H; ++h) {
    out[h][0] = y0[h];
    out[h][1] = y1[h];
    out[h][2] = y2[h];
    out[h][3] = y3[h];
  }
}

// Per-chunk constants of the vector decode.
struct DecodeConstants {
  __m512i hidden_radix, output_radix, low32;
  __m512i threshold[8];
};

// One multiply of the digit chain (see the file comment): code = hi32(w·radix), w ← the product
// (its low dword is the next word of the chain).
GDLAB_AVX512_INLINE __m512i digit(__m512i& w, __m512i radix) {
  w = _mm512_mul_epu32(w, radix);
  return _mm512_srli_epi64(w, 32);
}

GDLAB_AVX512_INLINE __mmask8 rejected_lanes(__m512i w, __m512i low32, __m512i threshold) {
  return _mm512_cmplt_epu64_mask(_mm512_and_si512(w, low32), threshold);
}

// Words → unit codes for 8 guesses (64-bit lanes) under the regular plan <K, G, J> (Kernel::
// hidden_per_chunk, output_joins); returns the lanes with a Lemire rejection. Within a chunk the last
// unit is the most significant, so the chain runs from the last unit to the first.
template <int K, int G, bool J>
GDLAB_AVX512_INLINE __mmask8 decode_regular(const DecodeConstants& dc, const __m512i* words, __m512i* code) {
  constexpr int kHiddenChunks = (K + G - 1) / G;
  __mmask8 rejected = 0;
  for (int c = 0; c < kHiddenChunks; ++c) {
    __m512i w = words[c];
    if (J && c == kHiddenChunks - 1) code[K] = digit(w, dc.output_radix);
    for (int u = std::min(K, (c + 1) * G) - 1; u >= c * G; --u) code[u] = digit(w, dc.hidden_radix);
    rejected |= rejected_lanes(w, dc.low32, dc.threshold[c]);
  }
  if (!J) {
    __m512i w = words[kHiddenChunks];
    code[K] = digit(w, dc.output_radix);
    rejected |= rejected_lanes(w, dc.low32, dc.threshold[kHiddenChunks]);
  }
  return rejected;
}

// Any plan, read at run time (G = 0).
GDLAB_AVX512_INLINE __mmask8 decode_generic(const Kernel& im, const DecodeConstants& dc, const __m512i* words,
                                            __m512i* code) {
  __mmask8 rejected = 0;
  for (std::size_t c = 0; c < im.chunks.size(); ++c) {
    const auto& chunk = im.chunks[c];
    __m512i w = words[c];
    for (int u = chunk.first_unit + chunk.units - 1; u >= chunk.first_unit; --u)
      code[u] = digit(w, _mm512_set1_epi64(im.unit_radix[static_cast<std::size_t>(u)]));
    rejected |= rejected_lanes(w, dc.low32, dc.threshold[c]);
  }
  return rejected;
}

// Truth tables by code: `pairs` pairs of 32-entry tables held in vectors (index bits 0–4 pick within
// a pair by a two-table permute, bits 5–7 pick the pair), or a gather when pairs == 0.
GDLAB_AVX512_INLINE __m512i truth_lookup(__m512i idx, const __m512i* tables, int pairs, const int* truth) {
  switch (pairs) {
    case 1: return _mm512_permutex2var_epi32(tables[0], idx, tables[1]);
    case 2:
    case 4:
    case 8: {
      __m512i r[8];
      for (int p = 0; p < pairs; ++p) r[p] = _mm512_permutex2var_epi32(tables[2 * p], idx, tables[2 * p + 1]);
      for (int bit = 5, width = pairs; width > 1; ++bit, width /= 2) {
        const __mmask16 upper = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(1 << bit));
        for (int p = 0; p < width / 2; ++p) r[p] = _mm512_mask_mov_epi32(r[2 * p], upper, r[2 * p + 1]);
      }
      return r[0];
    }
    default: return _mm512_i32gather_epi32(idx, truth, 4);
  }
}

// Truth tables of ≤ 16 bits by code from `pairs` pairs of 32-word tables (index bits 0–5 pick within
// a pair by a two-table word permute, bits 6–7 pick the pair). The result's low word is the table;
// the high word (looked up with index 0) is never read.
GDLAB_AVX512_INLINE __m512i truth_lookup_words(__m512i idx, const __m512i* tables, int pairs) {
  __m512i r[4];
  for (int p = 0; p < pairs; ++p) r[p] = _mm512_permutex2var_epi16(tables[2 * p], idx, tables[2 * p + 1]);
  for (int bit = 6, width = pairs; width > 1; ++bit, width /= 2) {
    const __mmask16 upper = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(1 << bit));
    for (int p = 0; p < width / 2; ++p) r[p] = _mm512_mask_mov_epi32(r[2 * p], upper, r[2 * p + 1]);
  }
  return r[0];
}

// Truth table of K ≤ 5 inputs applied bit-sliced: lane i holds guess i's masks m[j] (bit n = hidden
// unit j's output on point n) and its truth table tt (bit p = output for hidden pattern p). A
// multiplexer tree: level 1 picks, per pair of leaves (p = 2i, 2i+1), one of 0, ~m0, m0, ~0 with
// per-lane masks from the table bits; higher levels select by m1, m2, ….
template <int K>
GDLAB_AVX512_INLINE __m512i truth_table_x16(const __m512i* m, __m512i tt) {
  constexpr int kLeaves = 1 << (K - 1);
  __m512i node[kLeaves];
  const __m512i not_m0 = _mm512_ternarylogic_epi32(m[0], m[0], m[0], 0x55);
  for (int i = 0; i < kLeaves; ++i) {
    const __mmask16 when_one = _mm512_test_epi32_mask(tt, _mm512_set1_epi32(static_cast<int>(1u << (2 * i + 1))));
    const __mmask16 when_zero = _mm512_test_epi32_mask(tt, _mm512_set1_epi32(static_cast<int>(1u << (2 * i))));
    node[i] = _mm512_maskz_mov_epi32(when_one, m[0]);
    node[i] = _mm512_mask_or_epi32(node[i], when_zero, node[i], not_m0);
  }
  for (int level = 1; level < K; ++level)
    for (int i = 0; i < (kLeaves >> level); ++i)
      node[i] = _mm512_ternarylogic_epi32(m[level], node[2 * i + 1], node[2 * i], 0xCA);  // m ? one : zero
  return node[0];
}

constexpr int kNibbleCounted = 8;  // T < 8 is counted in 4-bit per-lane counters

// nibbles lane i, bits 4t..4t+3: how many of lane i's guesses since the last flush had T = t (≤ 15).
GDLAB_AVX512_INLINE void flush_nibbles(__m512i& nibbles, __m512i* counted) {
  for (int t = 0; t < kNibbleCounted; ++t)
    counted[t] = _mm512_add_epi32(counted[t], _mm512_and_si512(_mm512_srli_epi32(nibbles, 4 * t), _mm512_set1_epi32(15)));
  nibbles = _mm512_setzero_si512();
}

GDLAB_AVX512_INLINE void drain_counts(__m512i* counted, int n, std::int64_t* survival) {
  for (int t = 0; t < kNibbleCounted; ++t) {
    alignas(64) std::uint32_t lanes[16];
    _mm512_store_si512(lanes, counted[t]);
    if (t <= n)
      for (std::uint32_t v : lanes) survival[t] += v;
    counted[t] = _mm512_setzero_si512();
  }
}

// The AVX-512 path: batches of 16 guesses g, g+1, …, g+15 (lanes 0–7 and 8–15 in two 64-bit-lane
// halves for Philox and the decode, then packed to 32-bit lanes for the look-ups and the evaluation).
// Two batches share one lockstep Philox pass, so that four independent multiply chains keep the
// multiplier busy (one Philox round is a dependent multiply → shift → xor chain).
template <int K, int G, bool J>
struct Avx512Runner {
  const Kernel& im;
  const int n;
  const int min_report;
  std::int64_t* survival;
  std::vector<std::pair<std::uint64_t, int>>& reported;
  std::vector<std::uint64_t>& fallback;
  __m512i pack, one, labels, cap, thirty_two, rare_from;
  const int* hidden_low;
  const int* truth;
  int truth_pairs;
  __m512i truth_tables[16];
  int word_pairs;
  __m512i word_tables[8];
  DecodeConstants dc;
  __m512i nibbles;
  __m512i counted[kNibbleCounted];
  int since_flush = 0;
  std::uint64_t batches_since_drain = 0;
  static constexpr int kBuffer = 512;
  static constexpr std::uint64_t kMaxOffset = std::uint64_t{1} << 30;
  __m512i lane_index;
  std::uint64_t buffer_base = 0;  // guess of offset 0 in the buffers
  int rare_count = 0, rejected_count = 0;
  alignas(64) std::uint32_t rare_offset[kBuffer + 16];
  alignas(64) std::uint32_t rare_fitted[kBuffer + 16];
  alignas(64) std::uint32_t rejected_offset[kBuffer + 16];

  GDLAB_AVX512 Avx512Runner(const Kernel& kernel, int min_report_, std::int64_t* survival_,
                            std::vector<std::pair<std::uint64_t, int>>& reported_, std::vector<std::uint64_t>& fallback_)
      : im(kernel), n(kernel.n), min_report(min_report_), survival(survival_), reported(reported_), fallback(fallback_) {
    pack = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    one = _mm512_set1_epi32(1);
    labels = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(im.labels)));
    cap = _mm512_set1_epi32(n < 32 ? static_cast<int>(1u << n) : 0);
    thirty_two = _mm512_set1_epi32(32);
    rare_from = _mm512_set1_epi32(std::clamp(min_report, 0, kNibbleCounted));
    hidden_low = reinterpret_cast<const int*>(im.hidden_low.data());
    truth = reinterpret_cast<const int*>(im.truth32.data());
    truth_pairs = im.truth_pairs;
    for (int i = 0; i < 2 * truth_pairs; ++i) truth_tables[i] = _mm512_loadu_si512(im.truth32.data() + 16 * i);
    word_pairs = im.truth_word_pairs;
    for (int i = 0; i < 2 * word_pairs; ++i) word_tables[i] = _mm512_loadu_si512(im.truth16.data() + 32 * i);
    dc.hidden_radix = _mm512_set1_epi64(im.unit_radix[0]);
    dc.output_radix = _mm512_set1_epi64(im.unit_radix[static_cast<std::size_t>(K)]);
    dc.low32 = _mm512_set1_epi64(0xFFFFFFFFll);
    for (std::size_t c = 0; c < 8; ++c)
      dc.threshold[c] = _mm512_set1_epi64(c < im.chunks.size() ? im.chunks[c].threshold : 0);
    nibbles = _mm512_setzero_si512();
    for (auto& c : counted) c = _mm512_setzero_si512();
    lane_index = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  }

  // Words of `halves` groups of 8 guesses starting at lo32 = lo (no carry into hi32 within them).
  template <int kHalves>
  GDLAB_AVX512_INLINE void words(std::uint32_t lo, std::uint32_t hi, __m512i (*out)[8]) const {
    const __m512i base = _mm512_set1_epi64(lo);
    if (im.blocks == 1) {  // the usual case, without the block loop (keeps the words in registers)
      __m512i counter[kHalves];
      for (int h = 0; h < kHalves; ++h)
        counter[h] = _mm512_add_epi64(base, _mm512_set_epi64(8 * h + 7, 8 * h + 6, 8 * h + 5, 8 * h + 4, 8 * h + 3,
                                                             8 * h + 2, 8 * h + 1, 8 * h));
      __m512i w[kHalves][4];
      philox_lockstep<kHalves>(counter, hi, 0u, im.key, w);
      for (int h = 0; h < kHalves; ++h)
        for (int i = 0; i < 4; ++i) out[h][i] = w[h][i];
      return;
    }
    for (int b = 0; b < im.blocks; ++b) {
      __m512i counter[kHalves];
      __m512i w[kHalves][4];
      for (int h = 0; h < kHalves; ++h)
        counter[h] = _mm512_add_epi64(base, _mm512_set_epi64(8 * h + 7, 8 * h + 6, 8 * h + 5, 8 * h + 4, 8 * h + 3,
                                                             8 * h + 2, 8 * h + 1, 8 * h));
      philox_lockstep<kHalves>(counter, hi, static_cast<std::uint32_t>(b), im.key, w);
      for (int h = 0; h < kHalves; ++h)
        for (int i = 0; i < 4; ++i) out[h][4 * b + i] = w[h][i];
    }
  }

  // Decode, look up, evaluate and count the batch of guesses g … g+15 from its words.
  GDLAB_AVX512_INLINE void batch(std::uint64_t g, const __m512i* words_a, const __m512i* words_b) {
    __m512i code_a[K + 1], code_b[K + 1];
    unsigned rejected_a, rejected_b;
    if constexpr (G == 0) {
      rejected_a = decode_generic(im, dc, words_a, code_a);
      rejected_b = decode_generic(im, dc, words_b, code_b);
    } else {
      rejected_a = decode_regular<K, G, J>(dc, words_a, code_a);
      rejected_b = decode_regular<K, G, J>(dc, words_b, code_b);
    }
    const auto rejected = static_cast<__mmask16>(rejected_a | (rejected_b << 8));
    __m512i mask[K];
    for (int j = 0; j < K; ++j)
      mask[j] = _mm512_i32gather_epi32(_mm512_permutex2var_epi32(code_a[j], pack, code_b[j]), hidden_low, 4);
    const __m512i out_code = _mm512_permutex2var_epi32(code_a[K], pack, code_b[K]);
    __m512i tt;
    if constexpr (K >= 3 && K <= 4) {  // 33–256 codes: word tables (half the permutes of dword tables)
      if (word_pairs > 0)
        tt = truth_lookup_words(out_code, word_tables, word_pairs);
      else
        tt = truth_lookup(out_code, truth_tables, truth_pairs, truth);
    } else {
      tt = truth_lookup(out_code, truth_tables, truth_pairs, truth);
    }
    const __m512i f = truth_table_x16<K>(mask, tt);
    // Mismatch on the first min(N, 32) points, with a stop bit at N; T = its trailing zeros.
    const __m512i miss = _mm512_ternarylogic_epi32(f, labels, cap, 0xBE);  // (f ^ y) | cap
    const __m512i below = _mm512_andnot_si512(miss, _mm512_sub_epi32(miss, one));
    const __m512i t_vec = _mm512_sub_epi32(thirty_two, _mm512_lzcnt_epi32(below));
    // Count T < 8 in per-lane nibbles (a shift by ≥ 32 adds nothing); the rest go to the scalar loop.
    nibbles = _mm512_add_epi32(nibbles, _mm512_maskz_sllv_epi32(static_cast<__mmask16>(~rejected), one,
                                                                _mm512_slli_epi32(t_vec, 2)));
    if (++since_flush == 15) {
      flush_nibbles(nibbles, counted);
      since_flush = 0;
    }
    const __mmask16 rare = _mm512_mask_cmpge_epu32_mask(static_cast<__mmask16>(~rejected), t_vec, rare_from);
    // Rare and rejected lanes are appended to small buffers without a branch (a data-dependent branch
    // per batch would mispredict on a good fraction of batches) and handled when a buffer fills.
    const __m512i offset = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(g - buffer_base)), lane_index);
    _mm512_storeu_si512(rare_offset + rare_count, _mm512_maskz_compress_epi32(rare, offset));
    _mm512_storeu_si512(rare_fitted + rare_count, _mm512_maskz_compress_epi32(rare, t_vec));
    _mm512_storeu_si512(rejected_offset + rejected_count, _mm512_maskz_compress_epi32(rejected, offset));
    rare_count += __builtin_popcount(rare);
    rejected_count += __builtin_popcount(rejected);
    if (__builtin_expect(rare_count > kBuffer - 16 || rejected_count > kBuffer - 16 || g - buffer_base > kMaxOffset, 0))
      flush_buffers(g + 16);
    if (++batches_since_drain == (std::uint64_t{1} << 26)) drain();
  }

  // Handles the buffered lanes in guess order; the next buffered guess will be ≥ next_guess.
  GDLAB_AVX512 void flush_buffers(std::uint64_t next_guess) {
    for (int i = 0; i < rare_count; ++i) {
      const std::uint64_t guess = buffer_base + rare_offset[i];
      int t = static_cast<int>(rare_fitted[i]);
      if (t == 32 && n > 32) t = im.fitted_scalar(guess);  // fits the first 32 points: finish
      if (t >= kNibbleCounted) ++survival[t];
      if (t >= min_report) reported.emplace_back(guess, t);
    }
    for (int i = 0; i < rejected_count; ++i) fallback.push_back(buffer_base + rejected_offset[i]);
    rare_count = 0;
    rejected_count = 0;
    buffer_base = next_guess;
  }

  GDLAB_AVX512_INLINE void drain() {
    flush_nibbles(nibbles, counted);
    since_flush = 0;
    drain_counts(counted, n, survival);
    batches_since_drain = 0;
  }

  GDLAB_AVX512 void run(std::uint64_t g0, std::uint64_t count) {
    std::uint64_t g = g0;
    buffer_base = g0;
    const std::uint64_t end = g0 + count;
    __m512i w[4][8];
    while (end - g >= 16) {
      const auto lo = static_cast<std::uint32_t>(g);
      const auto hi = static_cast<std::uint32_t>(g >> 32);
      if (end - g >= 32 && lo <= 0xFFFFFFFFu - 31) {
        words<4>(lo, hi, w);
        batch(g, w[0], w[1]);
        batch(g + 16, w[2], w[3]);
        g += 32;
      } else if (lo <= 0xFFFFFFFFu - 15) {
        words<2>(lo, hi, w);
        batch(g, w[0], w[1]);
        g += 16;
      } else {  // the batch would cross a change of hi32(g): scalar
        flush_buffers(g + 16);
        im.run_scalar(g, 16, min_report, survival, reported, fallback);
        g += 16;
      }
    }
    flush_buffers(g);
    drain();
    im.run_scalar(g, end - g, min_report, survival, reported, fallback);
  }
};

template <int K, int G, bool J>
GDLAB_AVX512 void run_avx512(const Kernel& im, std::uint64_t g0, std::uint64_t count, int min_report,
                             std::int64_t* survival, std::vector<std::pair<std::uint64_t, int>>& reported,
                             std::vector<std::uint64_t>& fallback) {
  Avx512Runner<K, G, J> runner(im, min_report, survival, reported, fallback);
  runner.run(g0, count);
}

using Avx512Fn = void (*)(const Kernel&, std::uint64_t, std::uint64_t, int, std::int64_t*,
                          std::vector<std::pair<std::uint64_t, int>>&, std::vector<std::uint64_t>&);

template <int K>
Avx512Fn pick_plan(int g, bool joins) {
  if (g == 1) return joins ? &run_avx512<K, 1, true> : &run_avx512<K, 1, false>;
  if constexpr (K >= 2)
    if (g == 2) return joins ? &run_avx512<K, 2, true> : &run_avx512<K, 2, false>;
  if constexpr (K >= 3)
    if (g == 3) return joins ? &run_avx512<K, 3, true> : &run_avx512<K, 3, false>;
  return &run_avx512<K, 0, false>;
}

Avx512Fn pick_avx512(const Kernel& im) {
  switch (im.k) {
    case 1: return pick_plan<1>(im.hidden_per_chunk, im.output_joins);
    case 2: return pick_plan<2>(im.hidden_per_chunk, im.output_joins);
    case 3: return pick_plan<3>(im.hidden_per_chunk, im.output_joins);
    case 4: return pick_plan<4>(im.hidden_per_chunk, im.output_joins);
    default: return pick_plan<5>(im.hidden_per_chunk, im.output_joins);
  }
}

template <int K>
GDLAB_AVX512 void fitted_from_codes_x16(const Kernel& im, const GroupCodes& code, std::size_t size, int* fitted) {
  const int n = im.n;
  const __m512i labels = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(im.labels)));
  const __m512i cap = _mm512_set1_epi32(n < 32 ? static_cast<int>(1u << n) : 0);
  const int* hidden_low = reinterpret_cast<const int*>(im.hidden_low.data());
  const int* truth = reinterpret_cast<const int*>(im.truth32.data());
  for (std::size_t start = 0; start < size; start += 16) {
    __m512i mask[K];
    for (int j = 0; j < K; ++j)
      mask[j] = _mm512_i32gather_epi32(_mm512_loadu_si512(code[static_cast<std::size_t>(j)].data() + start), hidden_low, 4);
    const __m512i tt = _mm512_i32gather_epi32(_mm512_loadu_si512(code[K].data() + start), truth, 4);
    const __m512i miss = _mm512_ternarylogic_epi32(truth_table_x16<K>(mask, tt), labels, cap, 0xBE);
    const __m512i below = _mm512_andnot_si512(miss, _mm512_sub_epi32(miss, _mm512_set1_epi32(1)));
    alignas(64) std::int32_t t[16];
    _mm512_store_si512(t, _mm512_sub_epi32(_mm512_set1_epi32(32), _mm512_lzcnt_epi32(below)));
    for (std::size_t i = start; i < std::min(size, start + 16); ++i) {
      fitted[i] = t[i - start];
      if (fitted[i] == 32 && n > 32) {  // fits the first 32 points: finish
        std::array<std::uint32_t, kMaxUnits> one;
        for (int u = 0; u <= K; ++u) one[static_cast<std::size_t>(u)] = code[static_cast<std::size_t>(u)][i];
        fitted[i] = im.fitted_from_codes(one.data());
      }
    }
  }
}

#endif  // GDLAB_FAST_AVX512

bool fitted_from_codes_avx512([[maybe_unused]] const Kernel& im, [[maybe_unused]] const GroupCodes& code,
                              [[maybe_unused]] std::size_t size, [[maybe_unused]] int* fitted) {
#ifdef GDLAB_FAST_AVX512
  if (!im.vector_eligible || !cpu_has_avx512()) return false;
  switch (im.k) {
    case 1: fitted_from_codes_x16<1>(im, code, size, fitted); return true;
    case 2: fitted_from_codes_x16<2>(im, code, size, fitted); return true;
    case 3: fitted_from_codes_x16<3>(im, code, size, fitted); return true;
    case 4: fitted_from_codes_x16<4>(im, code, size, fitted); return true;
    default: fitted_from_codes_x16<5>(im, code, size, fitted); return true;
  }
#else
  return false;
#endif
}

void Kernel::run(fast_detail::Isa isa, std::uint64_t g0, std::uint64_t count, int min_report,
                                   std::int64_t* survival, std::vector<std::pair<std::uint64_t, int>>& reported,
                                   std::vector<std::uint64_t>& fallback) const {
  if (count > std::numeric_limits<std::uint64_t>::max() - g0)
    throw std::invalid_argument("FastTwoLayerKernel::run: guess range overflows 64 bits");
  if (!fast_detail::isa_available(isa))
    throw std::invalid_argument("FastTwoLayerKernel::run: instruction set not available on this CPU");
#ifdef GDLAB_FAST_AVX512
  if (isa != fast_detail::Isa::kPortable && vector_eligible && cpu_has_avx512()) {
    pick_avx512(*this)(*this, g0, count, min_report, survival, reported, fallback);
    return;
  }
#endif
  run_scalar(g0, count, min_report, survival, reported, fallback);
}

}  // namespace

struct FastTwoLayerKernel::Impl {
  explicit Impl(const FastTwoLayerProblem& p) : kernel(p) {}
  Kernel kernel;
};

int fast_detail::fitted_exact(const FastTwoLayerKernel& kernel, std::uint64_t guess) {
  return kernel.impl_->kernel.fitted_exact(guess);
}

void fast_detail::fitted_exact_many(const FastTwoLayerKernel& kernel, const std::uint64_t* guesses, std::size_t count,
                                    int* fitted) {
  kernel.impl_->kernel.fitted_exact_many(guesses, count, fitted);
}

bool fast_detail::isa_available(Isa isa) {
  switch (isa) {
    case Isa::kAuto:
    case Isa::kPortable: return true;
    case Isa::kAvx512:
#ifdef GDLAB_FAST_AVX512
      return cpu_has_avx512();
#else
      return false;
#endif
  }
  return false;
}

void fast_detail::run_with_isa(const FastTwoLayerKernel& kernel, Isa isa, std::uint64_t g0, std::uint64_t count,
                               int min_report, std::int64_t* survival,
                               std::vector<std::pair<std::uint64_t, int>>& reported,
                               std::vector<std::uint64_t>& fallback) {
  kernel.impl_->kernel.run(isa, g0, count, min_report, survival, reported, fallback);
}

bool FastTwoLayerKernel::supports(const FastTwoLayerProblem& p) {
  if (p.width < 1 || p.width > kMaxWidth) return false;
  if (p.input_dim < 1 || p.input_dim > kMaxInputDim) return false;
  if (p.q < 2 || p.levels.size() != static_cast<std::size_t>(p.q)) return false;
  for (int v : p.levels)
    if (v < -(1 << 24) || v > (1 << 24)) return false;
  if (p.train_x.empty() || p.train_x.size() > kMaxPoints || p.train_y.size() != p.train_x.size()) return false;
  if (capped_pow(static_cast<std::uint64_t>(p.q), p.input_dim + 1, kMaxHiddenCodes) > kMaxHiddenCodes) return false;
  const std::uint64_t out_codes = capped_pow(static_cast<std::uint64_t>(p.q), p.width + 1, kMaxOutputCodes);
  if (out_codes > kMaxOutputCodes) return false;
  const std::uint64_t table_bytes = out_codes * static_cast<std::uint64_t>(std::max(8, (1 << p.width) / 8));
  return table_bytes <= kMaxOutputTableBytes;
}

FastTwoLayerKernel::FastTwoLayerKernel(const FastTwoLayerProblem& problem) {
  if (!supports(problem)) throw std::invalid_argument("FastTwoLayerKernel: problem outside the fast path (see supports())");
  impl_ = std::make_unique<Impl>(problem);
}

FastTwoLayerKernel::~FastTwoLayerKernel() = default;

void FastTwoLayerKernel::run(std::uint64_t g0, std::uint64_t count, int min_report, std::int64_t* survival,
                             std::vector<std::pair<std::uint64_t, int>>& reported,
                             std::vector<std::uint64_t>& fallback) const {
  impl_->kernel.run(fast_detail::Isa::kAuto, g0, count, min_report, survival, reported, fallback);
}

}  // namespace gdlab::interp
