// Numerical core for linear classifiers on separable data. Formulas and dataset recipes follow
// ../shared/papers/separable.md (§0 shared conventions, §1 Soudry, Hoffer, Nacson, Gunasekar,
// Srebro 2018, "The Implicit Bias of Gradient Descent on Separable Data", arXiv:1710.10345).

// GCC 12 reports a spurious -Wmaybe-uninitialized inside Eigen 3.4's triangular matrix-vector
// kernel (reached from HouseholderQR::householderQ) when Eigen is included with -I instead of
// -isystem. The CMake target includes Eigen as a system header; this keeps plain -I builds clean.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "worker/numerics/separable.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/errors.h"
#include "common/random.h"

namespace gdlab::separable {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Relative tolerance of the support set S = {n : x̃_nᵀŵ = 1} (separable.md §0.4): after dual
// coordinate ascent has converged the support margins equal 1 to a few ulps, and the non-support
// margins of the generators are ≥ 1.5, so 1e-9 separates the two with a wide gap on both sides.
constexpr double kSupportTolerance = 1e-9;

// Data whose normalised margin γ = 1/‖ŵ‖ is below this fraction of max_n ‖x̃_n‖ are reported as
// not linearly separable. The certificate is rigorous: for any β ≥ 0,
//   γ Σβ_n ≤ (ŵ/‖ŵ‖)ᵀ Σβ_n x̃_n ≤ ‖Σβ_n x̃_n‖,
// so a nonnegative β with ‖Σβ_n x̃_n‖ ≤ ε Σβ_n max‖x̃_n‖ proves γ ≤ ε max‖x̃_n‖ (for ε → 0 this is
// Gordan's alternative: 0 lies in the convex hull of the absorbed points).
constexpr double kInseparableRelativeMargin = 1e-9;
// Sweeps between two non-separability checks in solve_max_margin.
constexpr int kSeparabilityCheckEvery = 16;

std::string shape_string(const MatrixXd& m) {
  return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
}

// ---- CSV parsing helpers ----------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Parses a whole field as a finite double. A leading '+' is accepted (from_chars rejects it).
bool parse_double(std::string_view field, double& value) {
  field = trim(field);
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return false;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  return ec == std::errc() && ptr == end && std::isfinite(value);
}

std::vector<std::string_view> split_commas(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return fields;
    }
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

// ---- Vectorised kernels -----------------------------------------------------------------------
//
// A GD step at N = 40, d = 5 is dominated by its N exponentials (−ℓ′, separable.md §0.2): glibc's
// scalar exp and Eigen's SSE2 exp both cost about 5 ns per value on the benchmark machine, which
// caps GD near 3e6 steps/s. The kernels below evaluate exp on SIMD vectors (GCC / Clang vector
// extensions) and do the whole step (margins, −ℓ′, descent, update) on a zero-padded copy of X̃.
// They are instantiated for 2-lane vectors (baseline x86-64 SSE2, or NEON) and, on x86-64, also
// for 4-lane vectors in a function compiled for AVX2 that is chosen at run time when the CPU has
// it, so the binary needs no -march flag. Every operation is elementwise except the sums of the
// descent direction, which both instantiations accumulate in the same 4 partial sums (rows
// n ≡ 0, 1, 2, 3 mod 4) combined as (s0 + s1) + (s2 + s3); and there is no FMA (neither variant
// enables it, unless the whole build adds -march flags that do; GCC in ISO C++ mode does not
// contract anyway). Hence results are bitwise identical whichever variant runs (checked: AVX2,
// SSE2-only and clang builds hash to the same w after 1e5 steps). Define GDLAB_NO_AVX2_KERNEL to
// build the baseline only.

#if !defined(__GNUC__)
#error "separable.cc needs the GCC / Clang vector extensions"
#endif
#if defined(__x86_64__) && !defined(GDLAB_NO_AVX2_KERNEL)
#define GDLAB_AVX2_KERNEL 1
#else
#define GDLAB_AVX2_KERNEL 0
#endif

// Rows are padded to a multiple of kRowGroup (the number of partial sums of the descent direction).
constexpr Eigen::Index kRowGroup = 4;
using Lanes2 = double __attribute__((vector_size(2 * sizeof(double))));
using Lanes4 = double __attribute__((vector_size(4 * sizeof(double))));
using LaneBits2 = std::int64_t __attribute__((vector_size(2 * sizeof(double))));
using LaneBits4 = std::int64_t __attribute__((vector_size(4 * sizeof(double))));
// The integer vector with the lanes of V (for the exponent-bit manipulation of exp_lanes).
template <typename V>
struct LaneBitsOf;
template <>
struct LaneBitsOf<Lanes2> {
  using type = LaneBits2;
};
template <>
struct LaneBitsOf<Lanes4> {
  using type = LaneBits4;
};
template <typename V>
constexpr Eigen::Index kLanes = static_cast<Eigen::Index>(sizeof(V) / sizeof(double));

Eigen::Index padded_rows(Eigen::Index n) { return (n + kRowGroup - 1) / kRowGroup * kRowGroup; }

// Vectors are passed by reference only: passing 32-byte vectors by value from code compiled
// without AVX changes the ABI (GCC -Wpsabi, a hard error in Clang).
template <typename V>
[[gnu::always_inline]] inline void load(const double* from, V& to) {
  std::memcpy(&to, from, sizeof(V));
}
template <typename V>
[[gnu::always_inline]] inline void store(const V& from, double* to) {
  std::memcpy(to, &from, sizeof(V));
}

// exp(x) lane by lane, to within 2 ulp (checked against long double expl on [−745, 745]):
//  * Cody–Waite reduction x = n ln2 + r, |r| ≤ ln2/2, with n = round(x/ln2) by the 1.5·2^52
//    shifter, and ln2 split as in fdlibm's e_exp.c (ln2_hi has 32 trailing zero bits, so n·ln2_hi
//    is exact);
//  * e^r by its Taylor polynomial of degree 13 (truncation error (ln2/2)^14/14! ≈ 4e-18 relative),
//    evaluated by Estrin's scheme for instruction-level parallelism;
//  * the factor 2^n added to the exponent bits (no overflow for x in [−708, ln DBL_MAX]).
// Special values: +inf above ln(DBL_MAX); 0 below −708 (where e^x < 3.3e-308, so the absolute
// error is below that); NaN stays NaN.
constexpr double kExpUnderflow = -708.0;
constexpr double kExpOverflow = 709.782712893383973;  // ln(DBL_MAX)
constexpr double kLog2e = 1.44269504088896338700;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kShifter = 0x1.8p52;
constexpr std::int64_t kShifterBits = 0x4338000000000000;  // bit pattern of kShifter

template <typename V>
[[gnu::always_inline]] inline void exp_lanes(const V& x, V& out) {
  using Bits = typename LaneBitsOf<V>::type;
  const V xc = x < kExpUnderflow ? kExpUnderflow : (x > kExpOverflow ? kExpOverflow : x);
  const V shifted = xc * kLog2e + kShifter;  // 1.5·2^52 + n, n = round(x/ln2)
  const V n = shifted - kShifter;
  const V r = (xc - n * kLn2Hi) - n * kLn2Lo;
  const V r2 = r * r;
  const V r4 = r2 * r2;
  const V r8 = r4 * r4;
  // Σ_{k=0}^{13} r^k/k! = Σ_i (c_{2i} + c_{2i+1} r) r^{2i}, grouped by powers r², r⁴, r⁸.
  const V p01 = 1.0 + r;
  const V p23 = 1.0 / 2 + (1.0 / 6) * r;
  const V p45 = 1.0 / 24 + (1.0 / 120) * r;
  const V p67 = 1.0 / 720 + (1.0 / 5040) * r;
  const V p89 = 1.0 / 40320 + (1.0 / 362880) * r;
  const V p1011 = 1.0 / 3628800 + (1.0 / 39916800) * r;
  const V p1213 = 1.0 / 479001600 + (1.0 / 6227020800) * r;
  const V q0 = p01 + p23 * r2;
  const V q1 = p45 + p67 * r2;
  const V q2 = p89 + p1011 * r2;
  const V s0 = q0 + q1 * r4;
  const V s1 = q2 + p1213 * r4;
  const V exp_r = s0 + s1 * r8;
  const Bits n_bits = __builtin_bit_cast(Bits, shifted) - kShifterBits;
  const V scaled = __builtin_bit_cast(V, __builtin_bit_cast(Bits, exp_r) + (n_bits << 52));
  out = x < kExpUnderflow ? 0.0 : scaled;
  out = x > kExpOverflow ? std::numeric_limits<double>::infinity() : out;
  out = x != x ? x : out;
}

// −ℓ′(u) lane by lane (separable.md §0.2): logistic 1/(1+e^u), which lies in [0, 1] for every u
// (u = +inf gives 0, u ≤ −708 gives exactly 1); exp e^{−u}, +inf for u < −ln(DBL_MAX).
template <typename V>
[[gnu::always_inline]] inline void neg_loss_derivative_lanes(bool logistic, const V& u, V& out) {
  if (logistic) {
    V e;
    exp_lanes(u, e);
    out = 1.0 / (1.0 + e);
  } else {
    const V minus_u = -u;
    exp_lanes(minus_u, out);
  }
}

// out = −ℓ′(margins) for n_padded (a multiple of kRowGroup) values.
template <typename V>
[[gnu::always_inline]] inline void neg_loss_derivative_impl(bool logistic, const double* margins,
                                                            double* out, Eigen::Index n_padded) {
  for (Eigen::Index i = 0; i < n_padded; i += kLanes<V>) {
    V u;
    V s;
    load(margins + i, u);
    neg_loss_derivative_lanes(logistic, u, s);
    store(s, out + i);
  }
}

// Σ_n a_n b_n over n_padded values in the fixed order of the file comment: partial sums over the
// rows n ≡ k (mod 4), k = 0..3, then (s0 + s1) + (s2 + s3).
template <typename V>
[[gnu::always_inline]] inline double grouped_dot(const double* a, const double* b,
                                                 Eigen::Index n_padded) {
  constexpr Eigen::Index kVectors = kRowGroup / kLanes<V>;
  V sums[kVectors] = {};
  for (Eigen::Index i = 0; i < n_padded; i += kRowGroup) {
    for (Eigen::Index k = 0; k < kVectors; ++k) {
      V va;
      V vb;
      load(a + i + k * kLanes<V>, va);
      load(b + i + k * kLanes<V>, vb);
      sums[k] += va * vb;
    }
  }
  double partial[kRowGroup];
  std::memcpy(partial, sums, sizeof(partial));
  return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

// `count` steps of GD, or of heavy ball when velocity != nullptr, on the zero-padded column-major
// X̃ (n_padded × d, n_padded a multiple of kRowGroup; the padding rows are zero, so they add exact
// zeros to every sum). `weights` is an n_padded work buffer. Nothing here allocates.
//   GD (Soudry et al. §1.2):   w ← w − η∇L(w),  −∇L(w) = Σ_n (−ℓ′(x̃_nᵀw)) x̃_n  (eq. 2.1)
//   heavy ball (§1.3, §0.5):   v ← γv − η∇L(w);  w ← w + v
template <typename V>
[[gnu::always_inline]] inline void gd_steps_impl(const double* x, Eigen::Index n_padded, Eigen::Index d,
                                                 bool logistic, double step, double momentum,
                                                 std::int64_t count, double* w, double* velocity,
                                                 double* weights) {
  for (std::int64_t c = 0; c < count; ++c) {
    // weights = −ℓ′(X̃w), a vector of rows at a time; margins accumulate column by column.
    for (Eigen::Index i = 0; i < n_padded; i += kLanes<V>) {
      V column;
      load(x + i, column);
      V margin = column * w[0];
      for (Eigen::Index j = 1; j < d; ++j) {
        load(x + j * n_padded + i, column);
        margin += column * w[j];
      }
      V s;
      neg_loss_derivative_lanes(logistic, margin, s);
      store(s, weights + i);
    }
    // Descent direction −∂L/∂w_j = Σ_n x̃_nj (−ℓ′(u_n)), then the update of coordinate j (the
    // weights hold −ℓ′ at the old w, so updating w_j in place is the simultaneous update).
    for (Eigen::Index j = 0; j < d; ++j) {
      const double descent = grouped_dot<V>(x + j * n_padded, weights, n_padded);
      if (velocity != nullptr) {
        velocity[j] = momentum * velocity[j] + step * descent;
        w[j] += velocity[j];
      } else {
        w[j] += step * descent;
      }
    }
  }
}

#if GDLAB_AVX2_KERNEL
__attribute__((target("avx2"))) void neg_loss_derivative_avx2(bool logistic, const double* margins,
                                                              double* out, Eigen::Index n_padded) {
  neg_loss_derivative_impl<Lanes4>(logistic, margins, out, n_padded);
}
__attribute__((target("avx2"))) void gd_steps_avx2(const double* x, Eigen::Index n_padded,
                                                   Eigen::Index d, bool logistic, double step,
                                                   double momentum, std::int64_t count, double* w,
                                                   double* velocity, double* weights) {
  gd_steps_impl<Lanes4>(x, n_padded, d, logistic, step, momentum, count, w, velocity, weights);
}
bool cpu_has_avx2() {
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2;
}
#endif

void neg_loss_derivative_kernel(bool logistic, const double* margins, double* out,
                                Eigen::Index n_padded) {
#if GDLAB_AVX2_KERNEL
  if (cpu_has_avx2()) return neg_loss_derivative_avx2(logistic, margins, out, n_padded);
#endif
  neg_loss_derivative_impl<Lanes2>(logistic, margins, out, n_padded);
}

void gd_steps_kernel(const double* x, Eigen::Index n_padded, Eigen::Index d, bool logistic, double step,
                     double momentum, std::int64_t count, double* w, double* velocity, double* weights) {
#if GDLAB_AVX2_KERNEL
  if (cpu_has_avx2()) {
    return gd_steps_avx2(x, n_padded, d, logistic, step, momentum, count, w, velocity, weights);
  }
#endif
  gd_steps_impl<Lanes2>(x, n_padded, d, logistic, step, momentum, count, w, velocity, weights);
}

void check_finite(const VectorXd& w, std::int64_t t) {
  if (!w.allFinite()) {
    throw NumericError("run_gd: w became non-finite by step " + std::to_string(t) +
                       " (step size too large? separable.md §0.3 needs lr < 2/(beta sigma_max^2))");
  }
}

}  // namespace

// ---- Data -------------------------------------------------------------------------------------

MatrixXd Dataset::absorbed() const {
  if (X.rows() != y.size()) {
    throw InputError("Dataset::absorbed: X is " + shape_string(X) + " but y has " +
                     std::to_string(y.size()) + " labels");
  }
  // x̃_n = y_n x_n (separable.md §0.1): scale row n by y_n.
  return X.array().colwise() * y.array();
}

Dataset make_fig1_replica(std::uint64_t seed) {
  // separable.md §0.7 (Soudry et al. 2018, Fig. 1).
  constexpr int kRandomPerClass = 6;
  constexpr int kN = 4 + 2 * kRandomPerClass;
  Rng rng(seed);
  Dataset data;
  data.X.resize(kN, 2);
  data.y.resize(kN);
  data.X.row(0) << 0.5, 1.5;  // x1
  data.X.row(1) << 1.5, 0.5;  // x2
  data.X.row(2) = -data.X.row(0);
  data.X.row(3) = -data.X.row(1);
  data.y.head(4) << 1.0, 1.0, -1.0, -1.0;
  // p ~ U([0,3]²), rejected unless ŵᵀp = ½(p₁+p₂) ≥ 1.5, so θ = min_{n∉S} ŵᵀx̃_n ≥ 1.5.
  const auto draw_point = [&rng]() {
    for (;;) {
      const double p1 = rng.uniform(0.0, 3.0);
      const double p2 = rng.uniform(0.0, 3.0);
      if (0.5 * (p1 + p2) >= 1.5) return Eigen::RowVector2d(p1, p2);
    }
  };
  for (int k = 0; k < kRandomPerClass; ++k) {
    data.X.row(4 + k) = draw_point();
    data.y(4 + k) = 1.0;
  }
  for (int k = 0; k < kRandomPerClass; ++k) {
    data.X.row(4 + kRandomPerClass + k) = -draw_point();
    data.y(4 + kRandomPerClass + k) = -1.0;
  }
  return data;
}

Planted make_planted2(int d, int n, std::uint64_t seed) {
  // separable.md §0.8. Draw order (fixed, part of the dataset's definition): the d×d Gaussian
  // matrix column by column, the d scales c_i, then for each non-support point its d normals and
  // θ_n, then the N labels.
  if (d < 1 || n < d) {
    throw InputError("make_planted2: need n >= d >= 1 (got d=" + std::to_string(d) +
                     ", n=" + std::to_string(n) + ")");
  }
  Rng rng(seed);
  MatrixXd gaussian(d, d);
  for (int j = 0; j < d; ++j) {
    for (int i = 0; i < d; ++i) gaussian(i, j) = rng.normal();
  }
  const Eigen::HouseholderQR<MatrixXd> qr(gaussian);
  MatrixXd q = qr.householderQ();
  // Fix signs so that R has a positive diagonal: the QR factorisation is then unique, and Q does
  // not depend on the Householder sign conventions.
  for (int j = 0; j < d; ++j) {
    if (qr.matrixQR()(j, j) < 0) q.col(j) = -q.col(j);
  }
  VectorXd scale(d);
  for (int i = 0; i < d; ++i) scale(i) = rng.uniform(0.5, 2.0);
  const VectorXd w_z = scale.cwiseInverse();  // ŵ in the rotated frame: ŵ = Q w_z

  MatrixXd absorbed(n, d);
  // Support vectors x̃_i = Q(c_i e_i): x̃_iᵀŵ = 1, α_i = 1/c_i², Σ_S α x̃ x̃ᵀ = I.
  for (int i = 0; i < d; ++i) absorbed.row(i) = (scale(i) * q.col(i)).transpose();
  // Non-support points: z ~ N(0, I) moved along w_z so that w_zᵀz = θ_n ~ U[2,4]; store Qz.
  VectorXd z(d);
  for (int k = d; k < n; ++k) {
    for (int i = 0; i < d; ++i) z(i) = rng.normal();
    const double theta = rng.uniform(2.0, 4.0);
    z += ((theta - w_z.dot(z)) / w_z.squaredNorm()) * w_z;
    absorbed.row(k) = (q * z).transpose();
  }
  Planted planted;
  planted.data.y.resize(n);
  for (int k = 0; k < n; ++k) planted.data.y(k) = rng.sign();
  // x_n = y_n x̃_n (y_n² = 1).
  planted.data.X = absorbed.array().colwise() * planted.data.y.array();
  planted.w_hat = q * w_z;
  return planted;
}

Dataset load_csv(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(path + ":0: is a directory, not a data file");
  }
  std::ifstream in(path);
  if (!in) throw InputError(path + ":0: cannot open data file");
  std::vector<std::vector<double>> rows;
  std::string line;
  int line_no = 0;
  int columns = -1;  // d + 1, fixed by the first data row
  bool seen_content = false;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string_view content = trim(line);
    if (content.empty() || content.front() == '#') continue;
    const std::vector<std::string_view> fields = split_commas(content);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    double first = 0.0;
    if (!seen_content) {
      seen_content = true;
      if (!parse_double(fields.front(), first)) continue;  // header line
    }
    if (columns < 0) {
      columns = static_cast<int>(fields.size());
      if (columns < 2) {
        throw InputError(where + "need at least one coordinate and a label per row, got " +
                         std::to_string(columns) + " field");
      }
    } else if (static_cast<int>(fields.size()) != columns) {
      throw InputError(where + "ragged row: " + std::to_string(fields.size()) + " fields, expected " +
                       std::to_string(columns) + " (d coordinates then the label)");
    }
    std::vector<double> values(fields.size());
    for (std::size_t k = 0; k < fields.size(); ++k) {
      if (!parse_double(fields[k], values[k])) {
        throw InputError(where + "field " + std::to_string(k + 1) + " '" + std::string(trim(fields[k])) +
                         "' is not a finite number");
      }
    }
    if (values.back() != 1.0 && values.back() != -1.0) {
      throw InputError(where + "label '" + std::string(trim(fields.back())) + "' must be +1 or -1");
    }
    rows.push_back(std::move(values));
  }
  if (in.bad()) throw InputError(path + ":" + std::to_string(line_no) + ": read error");
  if (rows.empty()) {
    throw InputError(path + ":" + std::to_string(line_no) + ": no data rows (empty data file)");
  }
  const auto n = static_cast<Eigen::Index>(rows.size());
  const Eigen::Index d = columns - 1;
  Dataset data;
  data.X.resize(n, d);
  data.y.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < d; ++j) data.X(i, j) = rows[i][j];
    data.y(i) = rows[i][d];
  }
  return data;
}

// ---- Losses -----------------------------------------------------------------------------------

double loss_sum(Loss loss, const VectorXd& margins) {
  double total = 0.0;
  if (loss == Loss::Logistic) {
    // ℓ(u) = log(1+e^{−u}) = log1p(e^{−u}) for u ≥ 0, and −u + log1p(e^{u}) for u < 0, so that
    // e^{±u} never overflows (separable.md §0.2).
    for (const double u : margins) {
      total += u >= 0 ? std::log1p(std::exp(-u)) : -u + std::log1p(std::exp(u));
    }
  } else {
    for (const double u : margins) total += std::exp(-u);  // ℓ(u) = e^{−u}
  }
  return total;
}

void neg_loss_derivative(Loss loss, const VectorXd& margins, VectorXd& out) {
  // The same kernel as the GD hot loop, so both agree bitwise; it works on whole blocks.
  const Eigen::Index n = margins.size();
  VectorXd padded = VectorXd::Zero(padded_rows(n));
  padded.head(n) = margins;
  VectorXd weights(padded.size());
  neg_loss_derivative_kernel(loss == Loss::Logistic, padded.data(), weights.data(), padded.size());
  out = weights.head(n);
}

double smoothness_beta(Loss loss) { return loss == Loss::Logistic ? 0.25 : 1.0; }

double sigma_max(const MatrixXd& X) {
  if (X.size() == 0) return 0.0;
  const Eigen::JacobiSVD<MatrixXd> svd(X);
  return svd.singularValues()(0);
}

// ---- Max margin -------------------------------------------------------------------------------

MaxMargin solve_max_margin(const MatrixXd& Xt, double tol, int max_sweeps) {
  const Eigen::Index n_points = Xt.rows();
  const Eigen::Index d = Xt.cols();
  if (n_points == 0 || d == 0) {
    throw InputError("solve_max_margin: empty data (" + shape_string(Xt) +
                     "); need at least one point with d >= 1");
  }
  if (!Xt.allFinite()) throw InputError("solve_max_margin: data contain NaN or inf");
  if (!(tol > 0) || max_sweeps < 1) {
    throw InputError("solve_max_margin: need tol > 0 and max_sweeps >= 1");
  }
  // Points as contiguous columns for the coordinate updates.
  const MatrixXd points = Xt.transpose();
  const VectorXd sq_norms = points.colwise().squaredNorm().transpose();
  for (Eigen::Index k = 0; k < n_points; ++k) {
    if (sq_norms(k) == 0.0) {
      throw InputError("solve_max_margin: point " + std::to_string(k) +
                       " is zero, so the data are not linearly separable through the origin");
    }
  }
  const double max_norm = std::sqrt(sq_norms.maxCoeff());

  // Dual coordinate ascent on max Σα − ½‖Σα_n x̃_n‖², α ≥ 0 (separable.md §0.4; no equality
  // constraint because there is no bias): α_n ← max(0, α_n + (1 − x̃_nᵀw)/‖x̃_n‖²), w += Δα_n x̃_n.
  MaxMargin result;
  VectorXd alpha = VectorXd::Zero(n_points);
  VectorXd w = VectorXd::Zero(d);
  VectorXd alpha_snapshot = alpha;
  VectorXd growth(n_points);
  bool converged = false;
  int sweep = 0;
  for (sweep = 1; sweep <= max_sweeps; ++sweep) {
    // Convergence measure: the margin change |Δα_n|·‖x̃_n‖² made by each update (the KKT violation
    // of point n in units of the target margin 1), relative to max(1, ‖x̃_n‖‖w‖), the size of the
    // terms of x̃_nᵀw and hence the scale of its rounding error. Dimensionless, so `tol` means the
    // same for data of any scale (an absolute |Δα| < tol cannot be met when α ≫ 1 in ulps).
    double max_change = 0.0;
    const double w_norm = w.norm();
    for (Eigen::Index k = 0; k < n_points; ++k) {
      const double margin = points.col(k).dot(w);
      const double updated = std::max(0.0, alpha(k) + (1.0 - margin) / sq_norms(k));
      const double delta = updated - alpha(k);
      if (delta != 0.0) {
        w += delta * points.col(k);
        alpha(k) = updated;
        const double change =
            std::abs(delta) * sq_norms(k) / std::max(1.0, std::sqrt(sq_norms(k)) * w_norm);
        max_change = std::max(max_change, change);
      }
    }
    if (max_change < tol) {
      converged = true;
      break;
    }
    if (sweep % kSeparabilityCheckEvery == 0) {
      // Non-separability certificates (see kInseparableRelativeMargin): β = α itself, and
      // β = (α − α_snapshot)₊, the growth since the last check. When the dual diverges the α of a
      // non-separable core grow linearly while w stays bounded, so the growth certificate reaches
      // the threshold after a few checks.
      const double alpha_sum = alpha.sum();
      double bound = alpha_sum > 0 ? w.norm() / (alpha_sum * max_norm) : 1.0;
      growth = (alpha - alpha_snapshot).cwiseMax(0.0);
      const double growth_sum = growth.sum();
      if (growth_sum > 0) bound = std::min(bound, (points * growth).norm() / (growth_sum * max_norm));
      if (bound <= kInseparableRelativeMargin) {
        std::ostringstream msg;
        msg << "solve_max_margin: data (" << shape_string(Xt)
            << ") are not linearly separable through the origin: a convex combination of the "
               "absorbed points y_n x_n has norm "
            << bound << " x max_n |x_n| (<= " << kInseparableRelativeMargin
            << "), so no w has y_n w.x_n > 0 for all n";
        throw InputError(msg.str());
      }
      alpha_snapshot = alpha;
    }
  }
  if (!converged) {
    throw NumericError("solve_max_margin: dual coordinate ascent did not converge in " +
                       std::to_string(max_sweeps) + " sweeps (tol " + std::to_string(tol) +
                       "); the margin may be tiny relative to the data scale");
  }
  result.w_hat = w;
  result.alpha = alpha;
  result.sweeps = std::min(sweep, max_sweeps);
  const VectorXd margins = Xt * w;
  for (Eigen::Index k = 0; k < n_points; ++k) {
    if (std::abs(margins(k) - 1.0) <= kSupportTolerance) result.support.push_back(static_cast<int>(k));
  }
  if (result.support.empty()) {
    throw NumericError("solve_max_margin: converged but no point has margin 1 within " +
                       std::to_string(kSupportTolerance));
  }
  return result;
}

VectorXd solve_w_tilde(const MatrixXd& Xt, const MaxMargin& mm, double eta_eff, const VectorXd& w0) {
  const Eigen::Index d = Xt.cols();
  if (!(eta_eff > 0) || !std::isfinite(eta_eff)) {
    throw InputError("solve_w_tilde: eta_eff must be finite and > 0 (got " + std::to_string(eta_eff) +
                     ")");
  }
  if (mm.w_hat.size() != d || mm.support.empty()) {
    throw InputError("solve_w_tilde: max-margin solution does not match the data (" + shape_string(Xt) +
                     ", |w_hat| = " + std::to_string(mm.w_hat.size()) +
                     ", |S| = " + std::to_string(mm.support.size()) + ")");
  }
  const VectorXd origin = VectorXd::Zero(d);
  const VectorXd& start = w0.size() == 0 ? origin : w0;
  if (start.size() != d) {
    throw InputError("solve_w_tilde: w0 has length " + std::to_string(w0.size()) + ", expected " +
                     std::to_string(d));
  }
  const auto n_support = static_cast<Eigen::Index>(mm.support.size());
  MatrixXd support_points(n_support, d);
  for (Eigen::Index k = 0; k < n_support; ++k) {
    const int idx = mm.support[static_cast<std::size_t>(k)];
    if (idx < 0 || idx >= Xt.rows()) throw InputError("solve_w_tilde: support index out of range");
    support_points.row(k) = Xt.row(idx);
  }

  // Orthonormal basis B (d×r) of span(X_S) from the right singular vectors of X_S.
  const Eigen::JacobiSVD<MatrixXd> svd(support_points, Eigen::ComputeFullV);
  const VectorXd& sv = svd.singularValues();
  const double rank_tol =
      sv(0) * static_cast<double>(std::max(n_support, d)) * std::numeric_limits<double>::epsilon();
  Eigen::Index rank = 0;
  while (rank < sv.size() && sv(rank) > rank_tol) ++rank;
  const MatrixXd basis = svd.matrixV().leftCols(rank);
  const MatrixXd coords = support_points * basis;  // |S|×r coordinates of x̃_n, n ∈ S
  const VectorXd w_hat_coords = basis.transpose() * mm.w_hat;

  // Minimise f(c) = η Σ_S exp(−z_nᵀc) + ĥᵀc over c ∈ R^r (v = Bc). ∇f = 0 is Soudry Thm 4 /
  // eq. 2.7 in the form η Σ_S e^{−x̃_nᵀw̃} x̃_n = ŵ (separable.md §0.5), which stays well posed when
  // S holds duplicated points (Fig. 1). f is strictly convex on R^r; damped Newton with an Armijo
  // backtracking line search converges globally and quadratically near the minimiser.
  const auto objective = [&](const VectorXd& c) {
    return eta_eff * (-(coords * c)).array().exp().sum() + w_hat_coords.dot(c);
  };
  // Start from the least-squares solution of x̃_nᵀv = ln(η/α_n) over the n ∈ S whose α_n is not
  // negligible, which is exact when the support vectors are linearly independent. (With
  // duplicated support vectors the dual splits α arbitrarily between the copies, possibly as
  // (α, ~0): hence the cut-off, and the fall-back to v = 0 when the guess is worse.)
  VectorXd c = VectorXd::Zero(rank);
  if (mm.alpha.size() == Xt.rows()) {
    double alpha_max = 0;
    for (const int idx : mm.support) alpha_max = std::max(alpha_max, mm.alpha(idx));
    std::vector<Eigen::Index> rows;
    for (Eigen::Index k = 0; k < n_support; ++k) {
      if (mm.alpha(mm.support[static_cast<std::size_t>(k)]) > 1e-8 * alpha_max) rows.push_back(k);
    }
    if (!rows.empty()) {
      MatrixXd a(static_cast<Eigen::Index>(rows.size()), rank);
      VectorXd b(static_cast<Eigen::Index>(rows.size()));
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto row = static_cast<Eigen::Index>(i);
        a.row(row) = coords.row(rows[i]);
        b(row) = std::log(eta_eff / mm.alpha(mm.support[static_cast<std::size_t>(rows[i])]));
      }
      const VectorXd guess = a.completeOrthogonalDecomposition().solve(b);
      if (guess.allFinite() && objective(guess) < objective(c)) c = guess;
    }
  }
  constexpr int kMaxNewtonIterations = 500;
  bool converged = false;
  double f = objective(c);
  double previous_step_norm = std::numeric_limits<double>::infinity();
  for (int iter = 0; iter < kMaxNewtonIterations; ++iter) {
    const VectorXd weights = eta_eff * (-(coords * c)).array().exp().matrix();
    const VectorXd grad = w_hat_coords - coords.transpose() * weights;
    const MatrixXd hessian = coords.transpose() * weights.asDiagonal() * coords;
    const VectorXd step = -hessian.ldlt().solve(grad);
    const double decrement = -grad.dot(step);  // Newton decrement λ² ≥ 0
    if (!step.allFinite() || !(decrement >= 0)) break;
    const double step_norm = step.norm();
    const double scale = std::max(1.0, c.norm());
    // Converged: after this step the error is O(step²) (quadratic convergence).
    if (step_norm <= 1e-12 * scale) {
      c += step;
      converged = true;
      break;
    }
    // Quadratic-convergence region. Here f can no longer resolve the decrease (λ² is near its
    // rounding error), so a line search would stall: take pure Newton steps until they stop
    // shrinking, i.e. until the rounding floor of the gradient is reached.
    if (decrement <= 1e-10 * std::max(1.0, std::abs(f))) {
      if (step_norm >= 0.5 * previous_step_norm) {
        converged = step_norm <= 1e-8 * scale;
        break;
      }
      previous_step_norm = step_norm;
      c += step;
      f = objective(c);
      continue;
    }
    // Damped phase: Armijo backtracking.
    double t = 1.0;
    VectorXd trial = c + step;
    double f_trial = objective(trial);
    while (!(f_trial <= f - 0.25 * t * decrement) && t > 1e-20) {
      t *= 0.5;
      trial = c + t * step;
      f_trial = objective(trial);
    }
    if (t <= 1e-20) break;
    c = trial;
    f = f_trial;
  }
  if (!converged || !c.allFinite()) {
    throw NumericError(
        "solve_w_tilde: Newton iteration did not converge; w~ may not exist (w_hat on the "
        "boundary of the cone of the support vectors, e.g. a support vector with alpha = 0)");
  }
  // w̃ = P_S w̃ + (I − P_S) w0 (Soudry Thm 4: the component outside span(X_S) stays at w(0)).
  const VectorXd in_span = basis * c;
  return in_span + (start - basis * (basis.transpose() * start));
}

// ---- Gradient descent ----------------------------------------------------------------------------

std::vector<std::int64_t> log_grid(std::int64_t T, int per_decade) {
  if (T < 1 || per_decade < 1) {
    throw InputError("log_grid: need T >= 1 and per_decade >= 1 (got T=" + std::to_string(T) +
                     ", per_decade=" + std::to_string(per_decade) + ")");
  }
  std::vector<std::int64_t> grid{1};
  for (int k = 1;; ++k) {
    const double value = std::pow(10.0, static_cast<double>(k) / per_decade);
    if (!(value < static_cast<double>(T))) break;
    const auto t = static_cast<std::int64_t>(std::llround(value));
    if (t > grid.back() && t < T) grid.push_back(t);
  }
  if (T > grid.back()) grid.push_back(T);
  return grid;
}

VectorXd run_gd(const MatrixXd& Xt, const GdOptions& opt, const std::vector<std::int64_t>& record_at,
                const RecordFn& on_record) {
  const Eigen::Index n_points = Xt.rows();
  const Eigen::Index d = Xt.cols();
  if (n_points == 0 || d == 0) throw InputError("run_gd: empty data (" + shape_string(Xt) + ")");
  if (!Xt.allFinite()) throw InputError("run_gd: data contain NaN or inf");
  if (!(opt.lr > 0) || !std::isfinite(opt.lr)) {
    throw InputError("run_gd: lr must be finite and > 0 (got " + std::to_string(opt.lr) + ")");
  }
  if (!(opt.momentum >= 0 && opt.momentum < 1)) {
    throw InputError("run_gd: momentum must be in [0, 1) (got " + std::to_string(opt.momentum) + ")");
  }
  if (opt.steps < 0) throw InputError("run_gd: steps must be >= 0");
  if (opt.w0.size() != 0 && opt.w0.size() != d) {
    throw InputError("run_gd: w0 has length " + std::to_string(opt.w0.size()) + ", expected " +
                     std::to_string(d));
  }
  if (!std::is_sorted(record_at.begin(), record_at.end()) ||
      (!record_at.empty() && (record_at.front() < 0 || record_at.back() > opt.steps))) {
    throw InputError("run_gd: record_at must be sorted and within [0, steps]");
  }
  if (!record_at.empty() && !on_record) throw InputError("run_gd: record_at given without on_record");

  VectorXd w = opt.w0.size() == 0 ? VectorXd::Zero(d) : opt.w0;
  if (!w.allFinite()) throw InputError("run_gd: w0 contains NaN or inf");
  // Work buffers, all allocated before the first step.
  const Eigen::Index n_padded = padded_rows(n_points);
  MatrixXd x_padded = MatrixXd::Zero(n_padded, d);
  x_padded.topRows(n_points) = Xt;
  VectorXd weights(n_padded);
  VectorXd margins(n_points);
  const bool momentum = opt.momentum > 0;
  VectorXd velocity = VectorXd::Zero(momentum ? d : 0);
  const auto record = [&](std::int64_t t) {
    margins.noalias() = Xt * w;
    on_record(t, w, loss_sum(opt.loss, margins));
  };

  // Mean loss (negative control, separable.md §1.6 T1.3): ∇(1/N)Σℓ = (1/N)∇L, i.e. step η/N.
  const double step = opt.mean_loss ? opt.lr / static_cast<double>(n_points) : opt.lr;
  auto next_record = record_at.begin();
  while (next_record != record_at.end() && *next_record == 0) {  // t = 0: before the first step
    record(0);
    ++next_record;
  }
  // Non-finite values are absorbing (NaN and ±inf propagate through the step), so checking w at
  // every record and every kFiniteCheckEvery steps catches a blow-up; the periodic check only
  // makes the exit early.
  constexpr std::int64_t kFiniteCheckEvery = 1 << 14;
  std::int64_t t = 0;
  while (t < opt.steps) {
    std::int64_t stop = std::min(opt.steps, t + kFiniteCheckEvery);
    if (next_record != record_at.end()) stop = std::min(stop, *next_record);
    gd_steps_kernel(x_padded.data(), n_padded, d, opt.loss == Loss::Logistic, step, opt.momentum,
                    stop - t, w.data(), momentum ? velocity.data() : nullptr, weights.data());
    t = stop;
    check_finite(w, t);
    while (next_record != record_at.end() && *next_record == t) {
      record(t);
      ++next_record;
    }
  }
  return w;
}

// ---- Standard measurements --------------------------------------------------------------------

Measurements measure(const MatrixXd& Xt, Loss loss, const VectorXd& w, std::int64_t t, double eta_eff,
                     const VectorXd& w_hat, const VectorXd& w_tilde) {
  const Eigen::Index d = Xt.cols();
  if (w.size() != d || w_hat.size() != d || (w_tilde.size() != 0 && w_tilde.size() != d)) {
    throw InputError("measure: vector lengths do not match the data (" + shape_string(Xt) + ")");
  }
  // separable.md §0.6.
  Measurements m;
  const VectorXd margins = Xt * w;
  const double w_hat_norm = w_hat.norm();
  m.norm = w.norm();
  m.loss = loss_sum(loss, margins);
  // ρ_L = t η L(w(t)) / ‖ŵ‖² → Σ_S α_n/‖ŵ‖² = 1 (separable.md §1.3, sharper constants).
  m.loss_ratio = static_cast<double>(t) * eta_eff * m.loss / w_hat.squaredNorm();
  if (m.norm > 0) {
    m.normalized_margin = margins.minCoeff() / m.norm;
    m.direction_error = (w / m.norm - w_hat / w_hat_norm).norm();
    // 1 − cos = ½‖u − v‖² for unit vectors u, v: no cancellation when the angle is tiny.
    m.angle_gap = 0.5 * m.direction_error * m.direction_error;
  } else {
    m.normalized_margin = kNaN;
    m.direction_error = kNaN;
    m.angle_gap = kNaN;
  }
  m.margin_gap = 1.0 / w_hat_norm - m.normalized_margin;
  // r(t) = w(t) − ŵ ln t − w̃ (Soudry Thm 4); undefined at t = 0 or without w̃.
  m.residual = (t >= 1 && w_tilde.size() == d) ? (w - predicted_w(w_hat, w_tilde, t)).norm() : kNaN;
  return m;
}

VectorXd predicted_w(const VectorXd& w_hat, const VectorXd& w_tilde, std::int64_t t) {
  if (w_hat.size() != w_tilde.size()) throw InputError("predicted_w: w_hat and w_tilde lengths differ");
  if (t < 1) throw InputError("predicted_w: need t >= 1 (ln t)");
  // w_pred(t) = ŵ ln t + w̃ (Soudry Thm 3 and 4).
  return w_hat * std::log(static_cast<double>(t)) + w_tilde;
}

}  // namespace gdlab::separable
