#include "worker/numerics/interpolator_quantized.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/errors.h"
#include "common/random.h"
#include "worker/numerics/interpolator_fast.h"
#include "worker/numerics/philox.h"

namespace gdlab::interp {

namespace {

__extension__ typedef unsigned __int128 u128;

constexpr std::uint64_t kTwo32 = std::uint64_t{1} << 32;
constexpr int kMaxExactDim = 16;           // exact test sets / p* over {±1}^d (proto test_points)
constexpr std::uint64_t kMaxEnumerate = std::uint64_t{1} << 24;  // Q^P limit of exact enumeration
constexpr int kFastSubBlock = 4096;        // guesses per FastTwoLayerKernel::run call

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// ---- layout of a student: layers, parameters, chunks -------------------------------------------

struct LayerShape {
  int fan_in = 0;
  int units = 0;
  bool scaled = false;  // SFC hidden layer: each unit carries a scale after its bias
};

struct Layout {
  int input_dim = 0;
  int q = 0;
  std::vector<double> levels;
  bool sfc = false;
  bool tie_positive = true;
  std::vector<LayerShape> layers;
  int params = 0;
  std::vector<Chunk> chunks;
  // Integer/bitmask evaluation is possible: integral levels (|level| ≤ 2^20) and fan-ins ≤ 64.
  bool integer_levels = false;
  bool bitmask_ok = false;
  std::vector<std::int64_t> int_levels;
  std::vector<int> nonzero_levels;            // level indices with a nonzero value
  std::vector<std::int64_t> two_levels;       // 2·level
  std::vector<std::size_t> mask_offset, eff_offset, unit_offset;
  std::size_t mask_total = 0, eff_total = 0, unit_total = 0;
  int max_width = 0;
  std::int64_t tie_threshold = 0;  // integer pre-activations: sgn = +1 iff pre ≥ this (0 or 1)
  std::uint64_t div_magic = 0;  // ⌈2^64/Q⌉: n/Q = (magic·n) >> 64 for every 32-bit n (Lemire et al. 2019)
};

// Q^p, saturated at 2^32 + 1.
std::uint64_t radix_of(int q, int p) {
  std::uint64_t r = 1;
  for (int i = 0; i < p; ++i) {
    r *= static_cast<std::uint64_t>(q);
    if (r > kTwo32) return kTwo32 + 1;
  }
  return r;
}

// Contract item 2: greedy chunks of whole units, radix ≤ 2^32; a unit with radix > 2^32 is split
// into sub-chunks of m = max{m : Q^m ≤ 2^32} parameters (the last shorter), each its own chunk.
std::vector<Chunk> make_chunks(int q, const std::vector<LayerShape>& layers) {
  int max_m = 0;
  while (radix_of(q, max_m + 1) <= kTwo32) ++max_m;
  std::vector<Chunk> chunks;
  Chunk current;
  for (const auto& layer : layers) {
    const int p = layer.fan_in + 1 + (layer.scaled ? 1 : 0);
    for (int u = 0; u < layer.units; ++u) {
      if (p > max_m) {
        if (current.params > 0) chunks.push_back(current);
        current = Chunk{};
        for (int left = p; left > 0;) {
          const int m = std::min(max_m, left);
          chunks.push_back(Chunk{radix_of(q, m), m});
          left -= m;
        }
        continue;
      }
      const std::uint64_t unit_radix = radix_of(q, p);
      if (current.radix <= kTwo32 / unit_radix) {
        current.radix *= unit_radix;
        current.params += p;
      } else {
        chunks.push_back(current);
        current = Chunk{unit_radix, p};
      }
    }
  }
  if (current.params > 0) chunks.push_back(current);
  return chunks;
}

Layout make_layout(int input_dim, const std::vector<int>& hidden_widths, int q, std::vector<double> levels,
                   bool sfc, bool tie_positive) {
  Layout lay;
  lay.input_dim = input_dim;
  lay.q = q;
  lay.levels = std::move(levels);
  lay.sfc = sfc;
  lay.tie_positive = tie_positive;
  int fan_in = input_dim;
  for (int w : hidden_widths) {
    lay.layers.push_back({fan_in, w, sfc});
    fan_in = w;
  }
  lay.layers.push_back({fan_in, 1, false});
  for (const auto& l : lay.layers) lay.params += l.units * (l.fan_in + 1 + (l.scaled ? 1 : 0));
  lay.chunks = make_chunks(q, lay.layers);
  lay.integer_levels = true;
  for (double v : lay.levels) {
    if (!(std::abs(v) <= 1048576.0) || v != std::floor(v)) lay.integer_levels = false;
  }
  lay.bitmask_ok = lay.integer_levels;
  for (const auto& l : lay.layers) {
    if (l.fan_in > 64 || l.units > 64) lay.bitmask_ok = false;
    lay.max_width = std::max(lay.max_width, std::max(l.units, l.fan_in));
  }
  if (lay.integer_levels) {
    for (int i = 0; i < q; ++i) {
      lay.int_levels.push_back(static_cast<std::int64_t>(lay.levels[static_cast<std::size_t>(i)]));
      lay.two_levels.push_back(2 * lay.int_levels.back());
      if (lay.int_levels.back() != 0) lay.nonzero_levels.push_back(i);
    }
  }
  for (std::size_t l = 0; l < lay.layers.size(); ++l) {
    const auto& s = lay.layers[l];
    const bool mask_mode = !(sfc && l > 0);
    lay.mask_offset.push_back(lay.mask_total);
    lay.eff_offset.push_back(lay.eff_total);
    lay.unit_offset.push_back(lay.unit_total);
    if (mask_mode) {
      lay.mask_total += static_cast<std::size_t>(s.units) * static_cast<std::size_t>(q);
    } else {
      lay.eff_total += static_cast<std::size_t>(s.units) * static_cast<std::size_t>(s.fan_in);
    }
    lay.unit_total += static_cast<std::size_t>(s.units);
  }
  lay.tie_threshold = tie_positive ? 0 : 1;
  lay.div_magic = std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(q) + 1;
  return lay;
}

Layout layout_of(const QuantizedProblem& p) {
  return make_layout(p.input_dim, p.hidden_widths, p.q, resolved_levels(p), p.scaled_neurons, p.tie_positive);
}

// Draws the level indices of guess g (canonical order) into `digits` (size params): each chunk
// value by uniform_below from the guess's words, then its base-Q digits, least significant first
// (contract items 1–3: unit codes c = Σ_m digit_m·Q^m, chunk value c_first + Q^{p_first}·(…)).
inline void draw_digits(const Layout& lay, StreamKey key, std::uint64_t guess, std::uint32_t* digits) {
  GuessWords words(key, guess);
  const auto q = static_cast<std::uint32_t>(lay.q);
  for (const Chunk& c : lay.chunks) {
    std::uint32_t v = uniform_below(words, c.radix);
    for (int m = 0; m < c.params; ++m) {
      const auto quotient = static_cast<std::uint32_t>((static_cast<u128>(lay.div_magic) * v) >> 64);
      *digits++ = v - quotient * q;
      v = quotient;
    }
  }
}

// ---- evaluators --------------------------------------------------------------------------------

// Population count without the POPCNT instruction (the build targets baseline x86-64, where
// std::popcount is a libgcc call): the SWAR reduction of Warren, "Hacker's Delight" §5-1.
inline int popcount64(std::uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int>((x * 0x0101010101010101ull) >> 56);
}

// The double-precision forward pass shared by evaluate_network and the real-input scalar path.
int forward(const QuantizedNetwork& net, const double* x, double* buf_a, double* buf_b) {
  const double* in = x;
  double* out = buf_a;
  for (const auto& layer : net.layers) {
    for (int u = 0; u < layer.units; ++u) {
      const double* w = layer.weights.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(layer.fan_in);
      double s = 0.0;
      for (int i = 0; i < layer.fan_in; ++i) s += w[i] * in[i];
      s += layer.biases[static_cast<std::size_t>(u)];
      const double sign = net.tie_positive ? (s >= 0.0 ? 1.0 : -1.0) : (s > 0.0 ? 1.0 : -1.0);
      out[u] = layer.scales.empty() ? sign : layer.scales[static_cast<std::size_t>(u)] * sign;
    }
    in = out;
    out = (out == buf_a) ? buf_b : buf_a;
  }
  return in[0] > 0.0 ? 1 : -1;
}

// The network shape of a layout with zero parameters (buffers reused for every guess).
QuantizedNetwork empty_network(const Layout& lay) {
  QuantizedNetwork net;
  net.tie_positive = lay.tie_positive;
  for (const auto& s : lay.layers) {
    QuantizedLayer l;
    l.fan_in = s.fan_in;
    l.units = s.units;
    l.weights.assign(static_cast<std::size_t>(s.fan_in) * static_cast<std::size_t>(s.units), 0.0);
    l.biases.assign(static_cast<std::size_t>(s.units), 0.0);
    if (s.scaled) l.scales.assign(static_cast<std::size_t>(s.units), 0.0);
    net.layers.push_back(std::move(l));
  }
  return net;
}

void fill_network(const Layout& lay, const std::uint32_t* digits, QuantizedNetwork& net) {
  for (std::size_t l = 0; l < lay.layers.size(); ++l) {
    auto& layer = net.layers[l];
    const bool scaled = lay.layers[l].scaled;
    for (int u = 0; u < layer.units; ++u) {
      double* w = layer.weights.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(layer.fan_in);
      for (int i = 0; i < layer.fan_in; ++i) w[i] = lay.levels[*digits++];
      layer.biases[static_cast<std::size_t>(u)] = lay.levels[*digits++];
      if (scaled) layer.scales[static_cast<std::size_t>(u)] = lay.levels[*digits++];
    }
  }
}

// One guess decoded for evaluation: bitmask/integer form for binary inputs (spec §6.2 item 5:
// w·x = Σ_levels level·(2·popcount(mask_level & X) − popcount(mask_level)), exact integers) and/or
// the double-precision network.
struct Workspace {
  explicit Workspace(const Layout& lay)
      : digits(static_cast<std::size_t>(lay.params)),
        masks(lay.mask_total),
        eff(lay.eff_total),
        base(lay.unit_total),
        alpha_prev(static_cast<std::size_t>(lay.max_width) + 1),
        alpha_cur(static_cast<std::size_t>(lay.max_width) + 1),
        net(empty_network(lay)),
        buf_a(static_cast<std::size_t>(lay.max_width) + 1),
        buf_b(static_cast<std::size_t>(lay.max_width) + 1) {}
  std::vector<std::uint32_t> digits;
  std::vector<std::uint64_t> masks;
  std::vector<std::int64_t> eff, base, alpha_prev, alpha_cur;
  QuantizedNetwork net;
  std::vector<double> buf_a, buf_b;
};

// Bitmask form. Layer 0 (and every layer of a non-SFC student, whose inputs are ±1) keeps one input
// mask per level; SFC layers l ≥ 1 see α_j·s_j and keep effective weights e_j = w_j·α_j instead:
// pre = b − Σ_j e_j + Σ_{j : s_j = +1} 2e_j.
void build_bits(const Layout& lay, Workspace& ws) {
  const std::uint32_t* dg = ws.digits.data();
  const std::size_t q = static_cast<std::size_t>(lay.q);
  for (std::size_t l = 0; l < lay.layers.size(); ++l) {
    const auto& s = lay.layers[l];
    const bool mask_mode = !(lay.sfc && l > 0);
    for (int u = 0; u < s.units; ++u) {
      std::int64_t base = 0;
      if (mask_mode) {
        std::uint64_t* m = ws.masks.data() + lay.mask_offset[l] + static_cast<std::size_t>(u) * q;
        for (int lv : lay.nonzero_levels) m[lv] = 0;  // masks of level 0 are never read
        for (int i = 0; i < s.fan_in; ++i) {
          const std::uint32_t d = *dg++;
          m[d] |= std::uint64_t{1} << i;
          base -= lay.int_levels[d];
        }
      } else {
        std::int64_t* e = ws.eff.data() + lay.eff_offset[l] + static_cast<std::size_t>(u) * static_cast<std::size_t>(s.fan_in);
        for (int i = 0; i < s.fan_in; ++i) {
          const std::int64_t ei = lay.int_levels[*dg++] * ws.alpha_prev[static_cast<std::size_t>(i)];
          e[i] = 2 * ei;
          base -= ei;
        }
      }
      base += lay.int_levels[*dg++];
      if (s.scaled) ws.alpha_cur[static_cast<std::size_t>(u)] = lay.int_levels[*dg++];
      ws.base[lay.unit_offset[l] + static_cast<std::size_t>(u)] = base;
    }
    if (s.scaled) std::swap(ws.alpha_prev, ws.alpha_cur);
  }
}

// f(x) = +1 → 1, −1 → 0, for x stored as a mask (bit i = [x_i = +1]).
inline int eval_bits(const Layout& lay, const Workspace& ws, std::uint64_t x) {
  std::uint64_t in = x;
  const std::size_t q = static_cast<std::size_t>(lay.q);
  for (std::size_t l = 0; l < lay.layers.size(); ++l) {
    const auto& s = lay.layers[l];
    const bool mask_mode = !(lay.sfc && l > 0);
    std::uint64_t out = 0;
    for (int u = 0; u < s.units; ++u) {
      std::int64_t pre = ws.base[lay.unit_offset[l] + static_cast<std::size_t>(u)];
      if (mask_mode) {
        const std::uint64_t* m = ws.masks.data() + lay.mask_offset[l] + static_cast<std::size_t>(u) * q;
        for (int lv : lay.nonzero_levels) {
          pre += lay.two_levels[static_cast<std::size_t>(lv)] * popcount64(m[lv] & in);
        }
      } else {
        const std::int64_t* e = ws.eff.data() + lay.eff_offset[l] + static_cast<std::size_t>(u) * static_cast<std::size_t>(s.fan_in);
        for (int i = 0; i < s.fan_in; ++i) pre += e[i] & -static_cast<std::int64_t>((in >> i) & 1u);
      }
      out |= static_cast<std::uint64_t>(pre >= lay.tie_threshold) << u;
    }
    in = out;
  }
  return static_cast<int>(in & 1u);
}

// ---- data --------------------------------------------------------------------------------------

// Exactly uniform on [0, n), n ≥ 1 (Lemire's multiply-shift with rejection, 64-bit).
std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  u128 m = static_cast<u128>(rng.next_u64()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<u128>(rng.next_u64()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

std::uint64_t random_bits(Rng& rng, int d) { return rng.next_u64() >> (64 - d); }

void bits_to_pm1(std::uint64_t bits, int d, double* x) {
  for (int i = 0; i < d; ++i) x[i] = ((bits >> i) & 1u) ? 1.0 : -1.0;
}

// A set of points with labels: masks (binary) and ±1/real coordinates (n × d), labels 1 ↔ +1.
struct PointSet {
  std::vector<std::uint64_t> bits;
  std::vector<double> x;
  std::vector<std::uint8_t> y;
  std::size_t size() const { return y.size(); }
};

// The teacher's labels (majority computed directly, networks through evaluate_network).
struct Teacher {
  TeacherKind kind = TeacherKind::kMajority;
  int majority = 0;
  bool tie_positive = true;
  std::optional<QuantizedNetwork> net;
  int label(const double* x, int d, std::uint64_t bits, bool binary) const {
    if (kind == TeacherKind::kMajority) {
      if (binary) {
        const std::uint64_t mask = (std::uint64_t{1} << majority) - 1;  // majority ≤ 32
        const int s = 2 * std::popcount(bits & mask) - majority;
        return (tie_positive ? s >= 0 : s > 0) ? 1 : -1;
      }
      double s = 0.0;
      for (int i = 0; i < majority; ++i) s += x[i];
      return (tie_positive ? s >= 0.0 : s > 0.0) ? 1 : -1;
    }
    return evaluate_network(*net, std::span<const double>(x, static_cast<std::size_t>(d)));
  }
};

void label_points(const Teacher& teacher, int d, bool binary, PointSet& ps) {
  const std::size_t n = binary ? ps.bits.size() : ps.x.size() / static_cast<std::size_t>(d);
  ps.y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double* x = ps.x.data() + i * static_cast<std::size_t>(d);
    ps.y[i] = teacher.label(x, d, binary ? ps.bits[i] : 0, binary) > 0 ? 1 : 0;
  }
}

void add_binary_point(PointSet& ps, std::uint64_t bits, int d) {
  ps.bits.push_back(bits);
  const std::size_t off = ps.x.size();
  ps.x.resize(off + static_cast<std::size_t>(d));
  bits_to_pm1(bits, d, ps.x.data() + off);
}

PointSet all_binary_inputs(int d) {
  PointSet ps;
  const std::uint64_t n = std::uint64_t{1} << d;
  ps.bits.reserve(n);
  ps.x.reserve(n * static_cast<std::uint64_t>(d));
  for (std::uint64_t b = 0; b < n; ++b) add_binary_point(ps, b, d);
  return ps;
}

// i.i.d. points from D.
void draw_points(Rng& rng, int d, bool binary, int n, PointSet& ps) {
  for (int i = 0; i < n; ++i) {
    if (binary) {
      add_binary_point(ps, random_bits(rng, d), d);
    } else {
      for (int j = 0; j < d; ++j) ps.x.push_back(rng.normal());
    }
  }
}

// n distinct uniform binary points in random order (partial Fisher–Yates over an implicit
// permutation of 0 … 2^d − 1; the displaced entries live in a hash map).
void draw_points_without_replacement(Rng& rng, int d, int n, PointSet& ps) {
  const std::uint64_t domain = std::uint64_t{1} << d;
  std::unordered_map<std::uint64_t, std::uint64_t> moved;
  auto at = [&](std::uint64_t i) {
    auto it = moved.find(i);
    return it == moved.end() ? i : it->second;
  };
  for (int i = 0; i < n; ++i) {
    const auto ui = static_cast<std::uint64_t>(i);
    const std::uint64_t j = ui + uniform_index(rng, domain - ui);
    const std::uint64_t pick = at(j);
    moved[j] = at(ui);
    add_binary_point(ps, pick, d);
  }
}

// ---- the teacher network ------------------------------------------------------------------------

std::optional<QuantizedNetwork> random_teacher(const QuantizedProblem& p) {
  QuantizedProblem tp = p;
  tp.hidden_widths = p.teacher.random_hidden_widths;
  const Layout lay = layout_of(tp);
  const bool binary = p.inputs == QuantizedInputs::kBinary;
  PointSet probe;
  if (binary && p.input_dim <= kMaxExactDim) {
    probe = all_binary_inputs(p.input_dim);
  } else {
    Rng probe_rng(mix64(p.teacher.random_seed));
    draw_points(probe_rng, p.input_dim, binary, 4096, probe);
  }
  const std::size_t n = probe.x.size() / static_cast<std::size_t>(p.input_dim);
  Rng rng(p.teacher.random_seed);
  std::vector<std::uint32_t> digits(static_cast<std::size_t>(lay.params));
  QuantizedNetwork net = empty_network(lay);
  for (int attempt = 0; attempt < 10000; ++attempt) {
    for (auto& dg : digits) dg = static_cast<std::uint32_t>(uniform_index(rng, static_cast<std::uint64_t>(p.q)));
    fill_network(lay, digits.data(), net);
    bool seen_pos = false, seen_neg = false;
    for (std::size_t i = 0; i < n && !(seen_pos && seen_neg); ++i) {
      const int f = evaluate_network(net, std::span<const double>(probe.x.data() + i * static_cast<std::size_t>(p.input_dim),
                                                                  static_cast<std::size_t>(p.input_dim)));
      (f > 0 ? seen_pos : seen_neg) = true;
    }
    if (seen_pos && seen_neg) return net;
  }
  throw SpecError("teacher.random_network", "10000 draws from seed " + std::to_string(p.teacher.random_seed) +
                                                " gave only constant networks");
}

Teacher make_teacher(const QuantizedProblem& p) {
  Teacher t;
  t.kind = p.teacher.kind;
  t.majority = p.teacher.majority;
  t.tie_positive = p.tie_positive;
  t.net = teacher_network(p);
  return t;
}

// ---- the sampler -------------------------------------------------------------------------------

struct Stream {
  StreamKey key;
  PointSet train;
  PointSet test;  // empty when the test set is the shared exact one
};

// Stream r's training points (n_max, fixed order) and, when `draw_test`, its fresh test points,
// all from Rng(data_seeds[r]) in that order.
Stream make_stream(const QuantizedProblem& problem, const Teacher& teacher, std::size_t r, bool draw_test) {
  Stream s;
  const int d = problem.input_dim;
  const bool binary = problem.inputs == QuantizedInputs::kBinary;
  s.key = problem.guess_keys[r];
  Rng rng(problem.data_seeds[r]);
  if (binary && !problem.with_replacement) {
    draw_points_without_replacement(rng, d, problem.n_max, s.train);
  } else {
    draw_points(rng, d, binary, problem.n_max, s.train);
  }
  label_points(teacher, d, binary, s.train);
  if (draw_test) {
    draw_points(rng, d, binary, problem.test_points, s.test);
    label_points(teacher, d, binary, s.test);
  }
  return s;
}

LabeledPoints to_labeled(const PointSet& ps, int d) {
  LabeledPoints lp;
  lp.dim = d;
  lp.bits = ps.bits;
  lp.x = ps.x;
  for (auto v : ps.y) lp.y.push_back(v ? 1 : -1);
  return lp;
}

class QuantizedSampler final : public GuessSampler {
 public:
  QuantizedSampler(const QuantizedProblem& problem, bool full_domain)
      : problem_(problem), layout_(layout_of(problem)), binary_(problem.inputs == QuantizedInputs::kBinary) {
    const Teacher teacher = make_teacher(problem);
    const int d = problem.input_dim;
    use_bits_ = binary_ && layout_.bitmask_ok;
    if (binary_ && d <= kMaxExactDim) {
      exact_test_ = all_binary_inputs(d);
      label_points(teacher, d, true, exact_test_);
    }
    if (full_domain) {
      n_max_ = 1 << d;
      for (StreamKey key : problem.guess_keys) {
        Stream s;
        s.key = key;
        s.train = exact_test_;
        streams_.push_back(std::move(s));
      }
    } else {
      n_max_ = problem.n_max;
      for (std::size_t r = 0; r < problem.data_seeds.size(); ++r) {
        Stream s = make_stream(problem, teacher, r, exact_test_.size() == 0);
        streams_.push_back(std::move(s));
      }
    }
    // The fast kernel (interpolator_fast.h): one hidden layer, binary inputs, integer levels.
    kernels_.resize(streams_.size());
    kernel_once_ = std::make_unique<std::once_flag[]>(streams_.size());
    fast_ok_ = problem.allow_fast_path && binary_ && problem.hidden_widths.size() == 1 && !problem.scaled_neurons &&
               layout_.integer_levels && d <= 32 && !streams_.empty() && FastTwoLayerKernel::supports(fast_problem(0));
  }

  int streams() const override { return static_cast<int>(streams_.size()); }
  int n_max() const override { return n_max_; }

  std::string describe() const override {
    std::ostringstream s;
    s << (problem_.scaled_neurons ? "SFC " : "FC ") << problem_.input_dim;
    for (int w : problem_.hidden_widths) s << "-" << w;
    s << "-1, Q=" << problem_.q << " {";
    for (std::size_t i = 0; i < layout_.levels.size(); ++i) s << (i ? "," : "") << layout_.levels[i];
    s << "}, tie sgn(0)=" << (problem_.tie_positive ? "+1" : "-1") << ", teacher ";
    switch (problem_.teacher.kind) {
      case TeacherKind::kMajority: s << "maj" << problem_.teacher.majority; break;
      case TeacherKind::kNetwork: s << "network " << problem_.teacher.network_source; break;
      case TeacherKind::kRandomNetwork:
        s << "random network";
        for (int w : problem_.teacher.random_hidden_widths) s << " " << w;
        s << " seed " << problem_.teacher.random_seed;
        break;
    }
    s << ", " << (binary_ ? "binary" : "gaussian") << " inputs, P=" << layout_.params;
    return s.str();
  }

  BlockResult run_block(int stream, std::uint64_t g0, std::uint64_t g1, std::span<const int> grid,
                        int keep) const override {
    if (stream < 0 || stream >= streams()) throw std::out_of_range("run_block: no stream " + std::to_string(stream));
    if (g1 < g0) throw std::invalid_argument("run_block: g1 < g0");
    for (std::size_t i = 0; i < grid.size(); ++i) {
      if (grid[i] < 0 || grid[i] > n_max_ || (i > 0 && grid[i] < grid[i - 1])) {
        throw std::invalid_argument("run_block: grid must be ascending within [0, n_max]");
      }
    }
    const Stream& s = streams_[static_cast<std::size_t>(stream)];
    BlockResult r;
    r.guesses = g1 - g0;
    r.survival.assign(static_cast<std::size_t>(n_max_) + 1, 0);
    r.kept.resize(grid.size());
    Workspace ws(layout_);
    KeptTracker tracker(grid, keep, r.kept);
    if (fast_ok_) {
      const FastTwoLayerKernel& kernel = kernel_for(stream);
      std::vector<std::pair<std::uint64_t, int>> reported, fallback_reported;
      std::vector<std::uint64_t> fallback;
      std::vector<int> fallback_fitted;
      for (std::uint64_t g = g0; g < g1;) {
        const std::uint64_t count = std::min<std::uint64_t>(kFastSubBlock, g1 - g);
        const int min_report = tracker.min_open(n_max_);
        reported.clear();
        fallback.clear();
        fallback_reported.clear();
        kernel.run(g, count, min_report, r.survival.data(), reported, fallback);
        // Guesses whose word stream had a Lemire rejection (1.5% at width 4): the kernel's exact
        // table-based evaluation (≈25 ns) instead of the general scalar path (≈250 ns);
        // interpolator_fast_test checks it against an independent reference on every guess.
        fallback_fitted.resize(fallback.size());
        fast_detail::fitted_exact_many(kernel, fallback.data(), fallback.size(), fallback_fitted.data());
        for (std::size_t i = 0; i < fallback.size(); ++i) {
          const int t = fallback_fitted[i];
          ++r.survival[static_cast<std::size_t>(t)];
          if (t >= min_report) fallback_reported.emplace_back(fallback[i], t);
        }
        // Merge both report lists by guess index.
        std::size_t a = 0, b = 0;
        while (a < reported.size() || b < fallback_reported.size()) {
          const bool take_a = b == fallback_reported.size() ||
                              (a < reported.size() && reported[a].first < fallback_reported[b].first);
          const auto& rep = take_a ? reported[a++] : fallback_reported[b++];
          tracker.offer(rep.first, rep.second);
        }
        g += count;
      }
    } else {
      for (std::uint64_t g = g0; g < g1; ++g) {
        const int t = fitted(s, g, ws);
        ++r.survival[static_cast<std::size_t>(t)];
        if (t >= tracker.threshold()) tracker.offer(g, t);
      }
    }
    // Exact test errors of the kept guesses (each distinct guess once).
    std::unordered_map<std::uint64_t, double> error_of;
    for (auto& list : r.kept) {
      for (auto& k : list) {
        auto it = error_of.find(k.guess);
        if (it == error_of.end()) it = error_of.emplace(k.guess, test_error(s, k.guess, ws)).first;
        k.test_error = it->second;
      }
    }
    return r;
  }

 private:
  // The first `keep` guesses (ascending index) with T ≥ grid[i], per i. A guess with T ≥ grid[i]
  // also has T ≥ grid[j] for j < i, so the full lists are always a prefix of the grid.
  class KeptTracker {
   public:
    KeptTracker(std::span<const int> grid, int keep, std::vector<std::vector<KeptGuess>>& kept)
        : grid_(grid), keep_(std::max(keep, 0)), kept_(kept) {
      advance();
    }
    int threshold() const { return threshold_; }
    int min_open(int n_max) const { return first_open_ < grid_.size() ? grid_[first_open_] : n_max + 1; }
    void offer(std::uint64_t g, int t) {
      for (std::size_t i = first_open_; i < grid_.size() && grid_[i] <= t; ++i) {
        kept_[i].push_back(KeptGuess{g, t, 0.0});
      }
      advance();
    }

   private:
    void advance() {
      while (first_open_ < grid_.size() && static_cast<int>(kept_[first_open_].size()) >= keep_) ++first_open_;
      threshold_ = first_open_ < grid_.size() ? grid_[first_open_] : std::numeric_limits<int>::max();
    }
    std::span<const int> grid_;
    int keep_;
    std::vector<std::vector<KeptGuess>>& kept_;
    std::size_t first_open_ = 0;
    int threshold_ = 0;
  };

  // T: leading training points fitted, with early rejection (spec §6.2 item 1).
  int fitted(const Stream& s, std::uint64_t g, Workspace& ws) const {
    draw_digits(layout_, s.key, g, ws.digits.data());
    const int n = n_max_;
    if (use_bits_) {
      build_bits(layout_, ws);
      const std::uint64_t* x = s.train.bits.data();
      const std::uint8_t* y = s.train.y.data();
      int t = 0;
      while (t < n && eval_bits(layout_, ws, x[t]) == y[t]) ++t;
      return t;
    }
    fill_network(layout_, ws.digits.data(), ws.net);
    const std::size_t d = static_cast<std::size_t>(problem_.input_dim);
    int t = 0;
    while (t < n && (forward(ws.net, s.train.x.data() + static_cast<std::size_t>(t) * d, ws.buf_a.data(),
                             ws.buf_b.data()) > 0 ? 1 : 0) == s.train.y[static_cast<std::size_t>(t)]) {
      ++t;
    }
    return t;
  }

  double test_error(const Stream& s, std::uint64_t g, Workspace& ws) const {
    const PointSet& test = exact_test_.size() > 0 ? exact_test_ : s.test;
    if (test.size() == 0) return 0.0;
    draw_digits(layout_, s.key, g, ws.digits.data());
    std::size_t wrong = 0;
    if (use_bits_) {
      build_bits(layout_, ws);
      for (std::size_t i = 0; i < test.size(); ++i) wrong += eval_bits(layout_, ws, test.bits[i]) != test.y[i];
    } else {
      fill_network(layout_, ws.digits.data(), ws.net);
      const std::size_t d = static_cast<std::size_t>(problem_.input_dim);
      for (std::size_t i = 0; i < test.size(); ++i) {
        const int f = forward(ws.net, test.x.data() + i * d, ws.buf_a.data(), ws.buf_b.data()) > 0 ? 1 : 0;
        wrong += f != test.y[i];
      }
    }
    return static_cast<double>(wrong) / static_cast<double>(test.size());
  }

  FastTwoLayerProblem fast_problem(int stream) const {
    const Stream& s = streams_[static_cast<std::size_t>(stream)];
    FastTwoLayerProblem fp;
    fp.input_dim = problem_.input_dim;
    fp.width = problem_.hidden_widths.empty() ? 0 : problem_.hidden_widths[0];
    fp.q = problem_.q;
    for (auto v : layout_.int_levels) fp.levels.push_back(static_cast<int>(v));
    fp.tie_positive = problem_.tie_positive;
    for (auto b : s.train.bits) fp.train_x.push_back(static_cast<std::uint32_t>(b));
    fp.train_y = s.train.y;
    fp.key = s.key;
    return fp;
  }

  const FastTwoLayerKernel& kernel_for(int stream) const {
    const auto r = static_cast<std::size_t>(stream);
    std::call_once(kernel_once_[r], [&] { kernels_[r] = std::make_unique<FastTwoLayerKernel>(fast_problem(stream)); });
    return *kernels_[r];
  }

  QuantizedProblem problem_;
  Layout layout_;
  bool binary_ = true;
  bool use_bits_ = false;
  bool fast_ok_ = false;
  int n_max_ = 0;
  PointSet exact_test_;
  std::vector<Stream> streams_;
  mutable std::vector<std::unique_ptr<FastTwoLayerKernel>> kernels_;
  mutable std::unique_ptr<std::once_flag[]> kernel_once_;
};

// Number of parameterizations of `lay` equal to `labels` on all 2^d binary inputs, by enumeration.
std::uint64_t count_equal_on_domain(const Layout& lay, const PointSet& domain) {
  Workspace ws(lay);
  std::fill(ws.digits.begin(), ws.digits.end(), 0u);
  const std::uint64_t total = radix_of(lay.q, lay.params);
  std::uint64_t hits = 0;
  const std::size_t n = domain.size();
  const std::size_t d = static_cast<std::size_t>(lay.input_dim);
  for (std::uint64_t c = 0; c < total; ++c) {
    bool equal = true;
    if (lay.bitmask_ok) {
      build_bits(lay, ws);
      for (std::size_t i = 0; i < n && equal; ++i) equal = eval_bits(lay, ws, domain.bits[i]) == domain.y[i];
    } else {
      fill_network(lay, ws.digits.data(), ws.net);
      for (std::size_t i = 0; i < n && equal; ++i) {
        equal = (forward(ws.net, domain.x.data() + i * d, ws.buf_a.data(), ws.buf_b.data()) > 0 ? 1 : 0) == domain.y[i];
      }
    }
    hits += equal ? 1 : 0;
    // Odometer over the level indices.
    for (auto& dg : ws.digits) {
      if (++dg < static_cast<std::uint32_t>(lay.q)) break;
      dg = 0;
    }
  }
  return hits;
}

std::optional<std::uint64_t> enumerate_equal(const QuantizedProblem& p) {
  if (p.inputs != QuantizedInputs::kBinary || p.input_dim > kMaxExactDim) return std::nullopt;
  const Layout lay = layout_of(p);
  if (radix_of(p.q, lay.params) > kMaxEnumerate) return std::nullopt;
  PointSet domain = all_binary_inputs(p.input_dim);
  label_points(make_teacher(p), p.input_dim, true, domain);
  return count_equal_on_domain(lay, domain);
}

double mean_of(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

MeanSe mean_se(const std::vector<double>& v) {
  MeanSe r;
  r.count = static_cast<int>(v.size());
  r.mean = mean_of(v);
  if (v.size() > 1) {
    double ss = 0.0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.se = std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
  }
  return r;
}

std::int64_t survivors_at(const std::vector<std::int64_t>& survival, int n) {
  std::int64_t c = 0;
  for (std::size_t t = static_cast<std::size_t>(std::max(n, 0)); t < survival.size(); ++t) c += survival[t];
  return c;
}

}  // namespace

// ---- public: networks --------------------------------------------------------------------------

int evaluate_network(const QuantizedNetwork& net, std::span<const double> x) {
  std::size_t width = 1;
  for (const auto& l : net.layers) width = std::max(width, static_cast<std::size_t>(l.units));
  std::vector<double> a(width), b(width);
  return forward(net, x.data(), a.data(), b.data());
}

int evaluate_network_bits(const QuantizedNetwork& net, std::uint64_t x_bits) {
  const int d = net.layers.empty() ? 0 : net.layers[0].fan_in;
  std::vector<double> x(static_cast<std::size_t>(d));
  bits_to_pm1(x_bits, d, x.data());
  return evaluate_network(net, x);
}

std::vector<double> default_levels(int q) {
  std::vector<double> levels;
  for (int i = 0; i < q; ++i) {
    levels.push_back(q % 2 == 1 ? static_cast<double>(i - (q - 1) / 2) : static_cast<double>(2 * i - (q - 1)));
  }
  return levels;
}

std::vector<double> resolved_levels(const QuantizedProblem& problem) {
  return problem.levels.empty() ? default_levels(problem.q) : problem.levels;
}

bool exact_test_set(const QuantizedProblem& problem) {
  return problem.inputs == QuantizedInputs::kBinary && problem.input_dim <= kMaxExactDim;
}

namespace {

bool is_level(double v, const std::vector<double>& levels) {
  return std::find(levels.begin(), levels.end(), v) != levels.end();
}

void validate_teacher_network(const QuantizedProblem& p, const std::vector<double>& levels) {
  const auto& net = p.teacher.network;
  const std::string field = "teacher.file";
  const std::string src = p.teacher.network_source.empty() ? "teacher network" : p.teacher.network_source;
  if (net.layers.size() != p.hidden_widths.size() + 1) {
    throw SpecError(field, src + " has " + std::to_string(net.layers.size()) + " layers; the student has " +
                               std::to_string(p.hidden_widths.size() + 1) + " (the teacher must have the same depth)");
  }
  int fan_in = p.input_dim;
  for (std::size_t l = 0; l < net.layers.size(); ++l) {
    const auto& layer = net.layers[l];
    const bool hidden = l + 1 < net.layers.size();
    const std::string where = src + " layer " + std::to_string(l + 1);
    if (layer.fan_in != fan_in) {
      throw SpecError(field, where + " has fan_in " + std::to_string(layer.fan_in) + ", expected " + std::to_string(fan_in));
    }
    if (layer.units < 1) throw SpecError(field, where + " has no units");
    if (hidden && layer.units > p.hidden_widths[l]) {
      throw SpecError(field, where + " has " + std::to_string(layer.units) + " units, wider than the student's " +
                                 std::to_string(p.hidden_widths[l]));
    }
    if (!hidden && layer.units != 1) throw SpecError(field, where + " (the output) must have 1 unit");
    if (layer.weights.size() != static_cast<std::size_t>(layer.units) * static_cast<std::size_t>(layer.fan_in) ||
        layer.biases.size() != static_cast<std::size_t>(layer.units) ||
        (!layer.scales.empty() && layer.scales.size() != static_cast<std::size_t>(layer.units))) {
      throw SpecError(field, where + ": inconsistent parameter counts");
    }
    for (double w : layer.weights) {
      if (!is_level(w, levels)) throw SpecError(field, where + ": weight " + fmt(w) + " is not one of the levels");
    }
    for (double b : layer.biases) {
      if (!is_level(b, levels)) throw SpecError(field, where + ": bias " + fmt(b) + " is not one of the levels");
    }
    for (double a : layer.scales) {
      if (!hidden) throw SpecError(field, where + ": the output layer has no scales");
      if (!p.scaled_neurons && a != 1.0) {
        throw SpecError(field, where + ": scale " + fmt(a) + " needs a scaled-neuron student (scaled_neurons)");
      }
      if (p.scaled_neurons && !is_level(a, levels)) {
        throw SpecError(field, where + ": scale " + fmt(a) + " is not one of the levels");
      }
    }
    fan_in = layer.units;
  }
}

void validate_common(const QuantizedProblem& p) {
  if (p.q < 2) throw SpecError("q", "must be ≥ 2 (got " + std::to_string(p.q) + ")");
  if (p.q > 65536) throw SpecError("q", "must be ≤ 65536 (got " + std::to_string(p.q) + ")");
  if (!p.levels.empty()) {
    if (static_cast<int>(p.levels.size()) != p.q) {
      throw SpecError("levels", "has " + std::to_string(p.levels.size()) + " values; q = " + std::to_string(p.q));
    }
    for (std::size_t i = 0; i < p.levels.size(); ++i) {
      if (!std::isfinite(p.levels[i])) throw SpecError("levels", "must be finite (got " + fmt(p.levels[i]) + ")");
      if (i > 0 && !(p.levels[i] > p.levels[i - 1])) {
        throw SpecError("levels", "must be ascending and distinct (" + fmt(p.levels[i - 1]) + " then " +
                                      fmt(p.levels[i]) + ")");
      }
    }
  }
  if (p.input_dim < 1) throw SpecError("input_dim", "must be ≥ 1 (got " + std::to_string(p.input_dim) + ")");
  if (p.inputs == QuantizedInputs::kBinary && p.input_dim > 32) {
    throw SpecError("input_dim", "binary inputs need input_dim ≤ 32 (got " + std::to_string(p.input_dim) + ")");
  }
  if (p.input_dim > 4096) throw SpecError("input_dim", "must be ≤ 4096 (got " + std::to_string(p.input_dim) + ")");
  if (p.hidden_widths.empty()) throw SpecError(p.widths_field, "the student needs at least one hidden layer");
  for (int w : p.hidden_widths) {
    if (w < 1) throw SpecError(p.widths_field, "widths must be ≥ 1 (got " + std::to_string(w) + ")");
    if (w > 4096) throw SpecError(p.widths_field, "widths must be ≤ 4096 (got " + std::to_string(w) + ")");
  }
  const std::vector<double> levels = resolved_levels(p);
  switch (p.teacher.kind) {
    case TeacherKind::kMajority: {
      const int k = p.teacher.majority;
      if (k < 1 || k % 2 == 0) throw SpecError("teacher.majority", "must be odd and ≥ 1 (got " + std::to_string(k) + ")");
      if (k > p.input_dim) {
        throw SpecError("teacher.majority", "must be ≤ input_dim = " + std::to_string(p.input_dim) + " (got " +
                                                std::to_string(k) + ")");
      }
      break;
    }
    case TeacherKind::kRandomNetwork: {
      const auto& tw = p.teacher.random_hidden_widths;
      const std::string field = "teacher.random_network.hidden_widths";
      if (tw.size() != p.hidden_widths.size()) {
        throw SpecError(field, "has " + std::to_string(tw.size()) + " layers; the student has " +
                                   std::to_string(p.hidden_widths.size()) + " (same depth needed)");
      }
      for (std::size_t l = 0; l < tw.size(); ++l) {
        if (tw[l] < 1) throw SpecError(field, "widths must be ≥ 1 (got " + std::to_string(tw[l]) + ")");
        if (tw[l] > p.hidden_widths[l]) {
          throw SpecError(field, "teacher layer " + std::to_string(l + 1) + " has width " + std::to_string(tw[l]) +
                                     ", wider than the student's " + std::to_string(p.hidden_widths[l]));
        }
      }
      break;
    }
    case TeacherKind::kNetwork: validate_teacher_network(p, levels); break;
  }
  QuantizedProblem copy = p;
  copy.levels = levels;
  const Layout lay = layout_of(copy);
  if (lay.params > (1 << 26)) {
    throw SpecError(p.widths_field, "the student has " + std::to_string(lay.params) + " parameters (limit 2^26)");
  }
  if (p.guess_keys.empty()) throw SpecError("streams", "must be ≥ 1");
}

}  // namespace

void validate(const QuantizedProblem& p) {
  validate_common(p);
  if (p.data_seeds.size() != p.guess_keys.size()) {
    throw SpecError("streams", "data seeds (" + std::to_string(p.data_seeds.size()) + ") and guess keys (" +
                                   std::to_string(p.guess_keys.size()) + ") differ in number");
  }
  if (p.n_max < 1) throw SpecError("n_grid", "the largest N must be ≥ 1 (got " + std::to_string(p.n_max) + ")");
  if (!p.with_replacement) {
    if (p.inputs != QuantizedInputs::kBinary) {
      throw SpecError("with_replacement", "false needs binary inputs (a Gaussian sample has no repeats)");
    }
    if (static_cast<double>(p.n_max) > std::ldexp(1.0, p.input_dim)) {
      throw SpecError("n_grid", "N_max = " + std::to_string(p.n_max) + " exceeds the 2^" + std::to_string(p.input_dim) +
                                    " distinct inputs (with_replacement is false)");
    }
  }
  if (!exact_test_set(p) && p.test_points < 1) {
    throw SpecError("test_points", "must be ≥ 1 when the test set is not enumerated (got " +
                                       std::to_string(p.test_points) + ")");
  }
}

std::optional<QuantizedNetwork> teacher_network(const QuantizedProblem& problem) {
  switch (problem.teacher.kind) {
    case TeacherKind::kMajority: return std::nullopt;
    case TeacherKind::kNetwork: {
      QuantizedNetwork net = problem.teacher.network;
      net.tie_positive = problem.tie_positive;
      return net;
    }
    case TeacherKind::kRandomNetwork: return random_teacher(problem);
  }
  return std::nullopt;
}

std::vector<int> teacher_hidden_widths(const QuantizedProblem& problem) {
  switch (problem.teacher.kind) {
    case TeacherKind::kMajority: return std::vector<int>(problem.hidden_widths.size(), 1);
    case TeacherKind::kRandomNetwork: return problem.teacher.random_hidden_widths;
    case TeacherKind::kNetwork: {
      std::vector<int> w;
      for (std::size_t l = 0; l + 1 < problem.teacher.network.layers.size(); ++l) {
        w.push_back(problem.teacher.network.layers[l].units);
      }
      return w;
    }
  }
  return {};
}

QuantizedNetwork load_teacher_file(const std::string& path, bool tie_positive) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the teacher file");
  QuantizedNetwork net;
  net.tie_positive = tie_positive;
  std::string line;
  int line_no = 0;
  int units_seen = 0;
  int header_line = 0;
  auto fail = [&](int at, const std::string& what) { throw InputError(path + ":" + std::to_string(at) + ": " + what); };
  auto parse_number = [&](const std::string& token) {
    std::size_t used = 0;
    double v = 0.0;
    try {
      v = std::stod(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size() || !std::isfinite(v)) fail(line_no, "'" + token + "' is not a number");
    return v;
  };
  auto close_layer = [&](int at) {
    if (!net.layers.empty() && units_seen != net.layers.back().units) {
      fail(at, "layer declared at line " + std::to_string(header_line) + " has " + std::to_string(net.layers.back().units) +
                   " units but " + std::to_string(units_seen) + " unit lines follow");
    }
  };
  while (std::getline(in, line)) {
    ++line_no;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    std::istringstream ss(line);
    std::vector<std::string> tokens;
    for (std::string t; ss >> t;) tokens.push_back(t);
    if (tokens.empty()) continue;
    if (tokens[0] == "layer") {
      close_layer(line_no);
      if (tokens.size() != 3) fail(line_no, "expected 'layer <fan_in> <units>'");
      const double fan_in = parse_number(tokens[1]), units = parse_number(tokens[2]);
      if (fan_in < 1 || units < 1 || fan_in != std::floor(fan_in) || units != std::floor(units) || fan_in > 4096 ||
          units > 4096) {
        fail(line_no, "fan_in and units must be integers in [1, 4096]");
      }
      QuantizedLayer layer;
      layer.fan_in = static_cast<int>(fan_in);
      layer.units = static_cast<int>(units);
      if (!net.layers.empty() && layer.fan_in != net.layers.back().units) {
        fail(line_no, "fan_in " + std::to_string(layer.fan_in) + " differs from the previous layer's " +
                          std::to_string(net.layers.back().units) + " units");
      }
      net.layers.push_back(std::move(layer));
      units_seen = 0;
      header_line = line_no;
      continue;
    }
    if (net.layers.empty()) fail(line_no, "a unit line before the first 'layer' header");
    auto& layer = net.layers.back();
    if (units_seen == layer.units) fail(line_no, "more unit lines than the " + std::to_string(layer.units) + " declared");
    const auto n = static_cast<int>(tokens.size());
    if (n != layer.fan_in + 1 && n != layer.fan_in + 2) {
      fail(line_no, "expected " + std::to_string(layer.fan_in) + " weights, a bias and an optional scale (got " +
                        std::to_string(n) + " numbers)");
    }
    for (int i = 0; i < layer.fan_in; ++i) layer.weights.push_back(parse_number(tokens[static_cast<std::size_t>(i)]));
    layer.biases.push_back(parse_number(tokens[static_cast<std::size_t>(layer.fan_in)]));
    if (n == layer.fan_in + 2) {
      if (layer.scales.empty()) layer.scales.assign(static_cast<std::size_t>(units_seen), 1.0);
      layer.scales.push_back(parse_number(tokens.back()));
    } else if (!layer.scales.empty()) {
      layer.scales.push_back(1.0);
    }
    ++units_seen;
  }
  close_layer(line_no);
  if (net.layers.empty()) fail(line_no, "no 'layer' header");
  if (net.layers.back().units != 1) fail(header_line, "the last layer (the output) must have 1 unit");
  if (!net.layers.back().scales.empty()) fail(header_line, "the output layer has no scales");
  return net;
}

int parameter_count(const QuantizedProblem& problem) { return layout_of(problem).params; }

std::vector<Chunk> chunk_plan(const QuantizedProblem& problem) { return layout_of(problem).chunks; }

std::vector<int> decode_level_indices(const QuantizedProblem& problem, StreamKey key, std::uint64_t guess) {
  const Layout lay = layout_of(problem);
  std::vector<std::uint32_t> digits(static_cast<std::size_t>(lay.params));
  draw_digits(lay, key, guess, digits.data());
  return {digits.begin(), digits.end()};
}

QuantizedNetwork network_from_level_indices(const QuantizedProblem& problem, std::span<const int> level_indices) {
  const Layout lay = layout_of(problem);
  if (level_indices.size() != static_cast<std::size_t>(lay.params)) {
    throw std::invalid_argument("network_from_level_indices: expected " + std::to_string(lay.params) + " indices");
  }
  std::vector<std::uint32_t> digits;
  for (int i : level_indices) {
    if (i < 0 || i >= lay.q) throw std::invalid_argument("network_from_level_indices: level index out of range");
    digits.push_back(static_cast<std::uint32_t>(i));
  }
  QuantizedNetwork net = empty_network(lay);
  fill_network(lay, digits.data(), net);
  return net;
}

QuantizedNetwork decode_guess(const QuantizedProblem& problem, StreamKey key, std::uint64_t guess) {
  const std::vector<int> idx = decode_level_indices(problem, key, guess);
  return network_from_level_indices(problem, idx);
}

std::unique_ptr<GuessSampler> make_quantized_sampler(const QuantizedProblem& problem) {
  validate(problem);
  return std::make_unique<QuantizedSampler>(problem, false);
}

LabeledPoints training_points(const QuantizedProblem& problem, int stream) {
  validate(problem);
  if (stream < 0 || static_cast<std::size_t>(stream) >= problem.data_seeds.size()) {
    throw std::out_of_range("training_points: no stream " + std::to_string(stream));
  }
  const Stream s = make_stream(problem, make_teacher(problem), static_cast<std::size_t>(stream), false);
  return to_labeled(s.train, problem.input_dim);
}

LabeledPoints test_points_of(const QuantizedProblem& problem, int stream) {
  validate(problem);
  const Teacher teacher = make_teacher(problem);
  if (exact_test_set(problem)) {
    PointSet all = all_binary_inputs(problem.input_dim);
    label_points(teacher, problem.input_dim, true, all);
    return to_labeled(all, problem.input_dim);
  }
  if (stream < 0 || static_cast<std::size_t>(stream) >= problem.data_seeds.size()) {
    throw std::out_of_range("test_points_of: no stream " + std::to_string(stream));
  }
  const Stream s = make_stream(problem, teacher, static_cast<std::size_t>(stream), true);
  return to_labeled(s.test, problem.input_dim);
}

std::unique_ptr<GuessSampler> make_full_domain_sampler(const QuantizedProblem& problem) {
  validate_common(problem);
  if (problem.inputs != QuantizedInputs::kBinary || problem.input_dim > kMaxExactDim) {
    throw SpecError("input_dim", "p* over the whole domain needs binary inputs with input_dim ≤ 16 (got " +
                                     std::to_string(problem.input_dim) + ")");
  }
  return std::make_unique<QuantizedSampler>(problem, true);
}

void merge_block(BlockResult& into, const BlockResult& next, int keep) {
  if (into.survival.empty() && into.kept.empty() && into.guesses == 0) {
    into = next;
    for (auto& list : into.kept) {
      if (static_cast<int>(list.size()) > keep) list.resize(static_cast<std::size_t>(std::max(keep, 0)));
    }
    return;
  }
  if (into.survival.size() != next.survival.size() || into.kept.size() != next.kept.size()) {
    throw std::invalid_argument("merge_block: blocks of different shapes");
  }
  into.guesses += next.guesses;
  for (std::size_t t = 0; t < into.survival.size(); ++t) into.survival[t] += next.survival[t];
  for (std::size_t i = 0; i < into.kept.size(); ++i) {
    auto& list = into.kept[i];
    for (const auto& k : next.kept[i]) {
      if (static_cast<int>(list.size()) >= keep) break;
      list.push_back(k);
    }
  }
  into.extra.insert(into.extra.end(), next.extra.begin(), next.extra.end());
}

BlockResult run_stream(const GuessSampler& sampler, int stream, std::span<const int> grid, int keep,
                       std::uint64_t block, std::uint64_t max_guesses) {
  BlockResult total;
  if (block == 0) throw std::invalid_argument("run_stream: block must be ≥ 1");
  for (std::uint64_t g = 0; g < max_guesses;) {
    const std::uint64_t g1 = std::min(max_guesses, g + block);
    merge_block(total, sampler.run_block(stream, g, g1, grid, keep), keep);
    g = g1;
    if (grid.empty() || static_cast<int>(total.kept.back().size()) >= keep) break;
  }
  return total;
}

// ---- theory ------------------------------------------------------------------------------------

std::optional<double> teacher_equivalent_count(const QuantizedProblem& problem) {
  QuantizedProblem narrow = problem;
  narrow.hidden_widths = teacher_hidden_widths(problem);
  const auto count = enumerate_equal(narrow);
  if (!count) return std::nullopt;
  return static_cast<double>(*count);
}

double counting_bound_neg_ln_p_star(const QuantizedProblem& problem) {
  const std::vector<int> tw = teacher_hidden_widths(problem);
  const std::size_t hidden = problem.hidden_widths.size();
  std::vector<double> d_student{static_cast<double>(problem.input_dim)}, d_teacher{static_cast<double>(problem.input_dim)};
  for (std::size_t l = 0; l < hidden; ++l) {
    d_student.push_back(problem.hidden_widths[l]);
    d_teacher.push_back(tw[l]);
  }
  d_student.push_back(1.0);
  d_teacher.push_back(1.0);
  const std::optional<double> m_star = teacher_equivalent_count(problem);
  if (m_star && *m_star == 0.0) return std::numeric_limits<double>::infinity();
  bool wider = false;
  for (std::size_t l = 1; l <= hidden; ++l) wider = wider || d_student[l] > d_teacher[l];
  if (wider && !is_level(0.0, resolved_levels(problem))) return std::numeric_limits<double>::infinity();
  const std::size_t L = hidden + 1;
  double params = 0.0;
  if (!problem.scaled_neurons) {
    for (std::size_t l = 1; l <= L; ++l) params += d_teacher[l] * (d_student[l - 1] + 1.0);
  } else {
    for (std::size_t l = 1; l <= L; ++l) params += d_teacher[l] * (d_teacher[l - 1] + 1.0);
    for (std::size_t l = 1; l < L; ++l) params += d_teacher[l] + (d_student[l] - d_teacher[l]);
  }
  double ln_perm = 0.0;
  for (std::size_t l = 1; l < L; ++l) {
    const double n = d_student[l], k = d_teacher[l];
    ln_perm += std::lgamma(n + 1.0) - std::lgamma(n - k + 1.0) - (m_star ? std::lgamma(k + 1.0) : 0.0);
  }
  return std::log(static_cast<double>(problem.q)) * params - ln_perm - std::log(m_star ? *m_star : 1.0);
}

std::optional<double> exact_p_star(const QuantizedProblem& problem) {
  const auto count = enumerate_equal(problem);
  if (!count) return std::nullopt;
  const Layout lay = layout_of(problem);
  return static_cast<double>(*count) / static_cast<double>(radix_of(problem.q, lay.params));
}

// ---- summaries ---------------------------------------------------------------------------------

std::vector<std::int64_t> survivors(std::span<const std::int64_t> survival) {
  std::vector<std::int64_t> c(survival.size(), 0);
  std::int64_t acc = 0;
  for (std::size_t t = survival.size(); t-- > 0;) {
    acc += survival[t];
    c[t] = acc;
  }
  return c;
}

MeanSe mean_test_error(const std::vector<std::vector<double>>& errors) {
  std::vector<double> per_stream;
  for (const auto& e : errors) {
    if (!e.empty()) per_stream.push_back(mean_of(e));
  }
  return mean_se(per_stream);
}

MeanSe bayes_error(const std::vector<std::vector<std::int64_t>>& survival, int n) {
  std::vector<double> v;
  for (const auto& s : survival) {
    if (n < 0 || static_cast<std::size_t>(n) + 1 >= s.size()) continue;  // C_{N+1} needs N < N_max
    const std::int64_t c0 = survivors_at(s, n), c1 = survivors_at(s, n + 1);
    if (c0 > 0) v.push_back(1.0 - static_cast<double>(c1) / static_cast<double>(c0));
  }
  return mean_se(v);
}

MeanSe mean_log_inverse_acceptance(const std::vector<std::vector<std::int64_t>>& survival,
                                   std::span<const std::uint64_t> guesses, int n) {
  std::vector<double> v;
  for (std::size_t r = 0; r < survival.size() && r < guesses.size(); ++r) {
    const std::int64_t c = survivors_at(survival[r], n);
    if (c > 0) v.push_back(std::log(static_cast<double>(guesses[r]) / static_cast<double>(c)));
  }
  return mean_se(v);
}

MeanSe cumulative_bayes_error(const std::vector<std::vector<std::int64_t>>& survival, int n) {
  std::vector<double> v;
  for (const auto& s : survival) {
    const std::vector<std::int64_t> c = survivors(s);
    double sum = 0.0;
    bool ok = true;
    for (int m = 0; m < n && ok; ++m) {
      const auto i = static_cast<std::size_t>(m);
      if (i + 1 >= c.size() || c[i] == 0) {
        ok = false;
        break;
      }
      sum += 1.0 - static_cast<double>(c[i + 1]) / static_cast<double>(c[i]);
    }
    if (ok) v.push_back(sum);
  }
  return mean_se(v);
}

double expected_error_bound(double neg_ln_p_star, int n) {
  return n <= 0 ? std::numeric_limits<double>::infinity() : (neg_ln_p_star + 1.0) / static_cast<double>(n);
}

Interval binomial_ci(std::uint64_t successes, std::uint64_t trials, double z) {
  Interval r;
  if (trials == 0) return Interval{0.0, 0.0, 1.0};
  const double n = static_cast<double>(trials), p = static_cast<double>(successes) / n;
  const double z2 = z * z, denom = 1.0 + z2 / n;
  const double center = (p + z2 / (2.0 * n)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
  r.estimate = p;
  r.lower = std::max(0.0, center - half);
  r.upper = std::min(1.0, center + half);
  return r;
}

}  // namespace gdlab::interp
