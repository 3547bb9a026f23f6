// Guess-and-check (G&C) sampling of random interpolators with the QUANTIZED prior
// (shared/papers/interpolators.md §2.3, §6, §7): fully connected threshold networks whose weights,
// biases and (scaled-neuron/SFC students) unit scales are i.i.d. uniform over Q levels, a teacher
// that labels the data, R training streams checked in a fixed order with early rejection, and the
// theory of §2.4 (p*, the counting bound, the master inequalities).
//
// Guess g of a stream is decoded by the canonical mapping of worker/numerics/guess_sampler.h /
// the shared contract (parameter order, chunks of whole units with radix ≤ 2^32, Lemire's exact
// uniform_below per chunk from GuessWords(key, g)); every evaluator here (and the fast kernel of
// interpolator_fast.h) produces exactly those parameters. Plain C++; no protobuf.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "worker/numerics/guess_sampler.h"

namespace gdlab::interp {

// ---- networks ----------------------------------------------------------------------------------

// One layer of a threshold network: unit j computes s_j = sgn(w_j·x + b_j) and outputs
// scale_j·s_j (SFC hidden layers, Buzaglo et al. Fig. 1c) or s_j.
struct QuantizedLayer {
  int fan_in = 0;
  int units = 0;
  std::vector<double> weights;  // units × fan_in, row-major: unit j's weights at [j·fan_in, (j+1)·fan_in)
  std::vector<double> biases;   // units
  std::vector<double> scales;   // units (SFC hidden layers); empty: every scale is 1
};

// Hidden layers first, then the output layer (1 unit); f(x) = sgn(output pre-activation).
struct QuantizedNetwork {
  std::vector<QuantizedLayer> layers;
  bool tie_positive = true;  // sgn(0) = +1 (spec §7.1); false: sgn(0) = −1
};

// f(x) ∈ {−1, +1} for a real input x (size fan_in of the first layer; ±1 entries for binary
// inputs). The pre-activation is Σ_i w_i·x_i (in input order) + b, in double precision: exact for
// integer levels on ±1 inputs, so every evaluator of this file agrees with it bit for bit.
int evaluate_network(const QuantizedNetwork& net, std::span<const double> x);
// The same for a binary input stored as a mask, bit i = [x_i = +1].
int evaluate_network_bits(const QuantizedNetwork& net, std::uint64_t x_bits);

// ---- the problem -------------------------------------------------------------------------------

enum class QuantizedInputs { kBinary, kGaussian };  // uniform on {±1}^d | N(0, I_d)
enum class TeacherKind { kMajority, kNetwork, kRandomNetwork };

struct QuantizedTeacher {
  TeacherKind kind = TeacherKind::kMajority;
  int majority = 3;                       // kMajority: y = sgn(x_1 + … + x_k), k odd ≤ d
  QuantizedNetwork network;               // kNetwork: weights in the student's class (e.g. from a file)
  std::string network_source;             // kNetwork: where it came from (file name), for messages
  std::vector<int> random_hidden_widths;  // kRandomNetwork: each ≤ the student's, same depth
  std::uint64_t random_seed = 0;          // kRandomNetwork: the draw (the kind derives it when 0)
};

// Filled by the kind file from proto/random_interpolator.proto (field names in comments).
struct QuantizedProblem {
  int input_dim = 8;                    // input_dim: d
  std::vector<int> hidden_widths{1};    // hidden_widths (or width × depth): d_1 … d_{L−1}, depth ≥ 1
  int q = 3;                            // q: number of levels Q ≥ 2
  std::vector<double> levels;           // levels: ascending, distinct, size q; empty: default_levels(q)
  bool scaled_neurons = false;          // scaled_neurons: SFC student
  bool tie_positive = true;             // tie_rule: TIE_POSITIVE
  QuantizedTeacher teacher;             // teacher
  QuantizedInputs inputs = QuantizedInputs::kBinary;  // inputs
  bool with_replacement = true;         // with_replacement (false: binary inputs only, n_max ≤ 2^d)
  int test_points = 10000;              // test_points (unused when the test set is exact)
  std::vector<std::uint64_t> data_seeds;  // per stream r: experiment_seed(r)
  std::vector<StreamKey> guess_keys;      // per stream r: stream_key(task_seed(1000 + r))
  int n_max = 64;                       // the largest N of n_grid
  bool allow_fast_path = true;          // use FastTwoLayerKernel where it supports the problem
  // Field name used in SpecErrors about the widths ("hidden_widths", or "width" when the spec
  // gave width/depth).
  std::string widths_field = "hidden_widths";
};

// Default level table (spec §7.1 / proto): odd Q: the integers −(Q−1)/2 … (Q−1)/2 (ternary =
// {−1, 0, 1}); even Q: the odd integers −(Q−1) … (Q−1) (binary = {−1, +1}).
std::vector<double> default_levels(int q);
// problem.levels, or default_levels(problem.q) when empty.
std::vector<double> resolved_levels(const QuantizedProblem& problem);

// Throws gdlab::SpecError(field, problem) with the proto field names: q, levels, input_dim,
// hidden_widths (widths_field), teacher.majority, teacher.random_network.hidden_widths, teacher.file,
// n_grid, with_replacement, test_points, inputs, streams.
void validate(const QuantizedProblem& problem);

// True when the test error is exact: binary inputs and d ≤ 16 (all 2^d inputs, weight 2^−d each).
bool exact_test_set(const QuantizedProblem& problem);

// The teacher as a network: the file/given network, or the random network drawn from
// teacher.random_seed (levels i.i.d. uniform through gdlab::Rng, in canonical parameter order,
// redrawn until not constant on the probe set: all 2^d inputs for binary d ≤ 16, else 4096 inputs
// drawn from D with seed mix64(random_seed)); throws SpecError("teacher.random_network", …) after
// 10000 constant draws. Majority teachers return nullopt (their labels are computed directly).
std::optional<QuantizedNetwork> teacher_network(const QuantizedProblem& problem);

// Hidden widths d*_l of the teacher: 1 per hidden layer for a majority teacher.
std::vector<int> teacher_hidden_widths(const QuantizedProblem& problem);

// Reads a teacher network from a text file. Format (docs/spec-reference.md, random_interpolator):
//   # comment lines and blank lines are ignored
//   layer <fan_in> <units>          one header per layer, hidden layers first, the output last
//   w_1 … w_fan_in bias [scale]     one line per unit of that layer (scale: SFC hidden units only)
// The first layer's fan_in is d, each later layer's fan_in the previous layer's units, the last
// layer has 1 unit and no scales. Errors throw gdlab::InputError "file:line: problem".
QuantizedNetwork load_teacher_file(const std::string& path, bool tie_positive = true);

// ---- the canonical guess → parameters mapping ---------------------------------------------------

struct Chunk {
  std::uint64_t radix = 1;  // Q^params ≤ 2^32
  int params = 0;           // consecutive parameters (canonical order), least significant first
};

// Parameter count P of the student (spec §7.1: 10k+1 for d = 8, one hidden layer of k, no SFC).
int parameter_count(const QuantizedProblem& problem);
// The chunk plan of the canonical mapping (contract item 2).
std::vector<Chunk> chunk_plan(const QuantizedProblem& problem);
// Level indices (0 … Q−1, canonical parameter order) of guess g under key.
std::vector<int> decode_level_indices(const QuantizedProblem& problem, StreamKey key, std::uint64_t guess);
// The network of level indices / of guess g (for tests and for storing accepted samples).
QuantizedNetwork network_from_level_indices(const QuantizedProblem& problem, std::span<const int> level_indices);
QuantizedNetwork decode_guess(const QuantizedProblem& problem, StreamKey key, std::uint64_t guess);

// ---- samplers ----------------------------------------------------------------------------------

// R = data_seeds.size() streams. Stream r: n_max training points in a fixed order drawn from
// Rng(data_seeds[r]) (binary: a d-bit mask per point, with or without replacement (partial
// Fisher–Yates); Gaussian: d normals per point), then, when the test set is not exact,
// test_points fresh points from the same Rng; labels from the teacher. Guesses from
// GuessWords(guess_keys[r], g). Validates the problem first.
std::unique_ptr<GuessSampler> make_quantized_sampler(const QuantizedProblem& problem);

// The data of stream r exactly as make_quantized_sampler draws it (for re-verification and the
// record). bits: binary inputs as masks (empty for Gaussian inputs); x: n × d coordinates (±1 for
// binary inputs); y: labels ±1.
struct LabeledPoints {
  int dim = 0;
  std::vector<std::uint64_t> bits;
  std::vector<double> x;
  std::vector<int> y;
};
LabeledPoints training_points(const QuantizedProblem& problem, int stream);
// The test set of stream r: all 2^d inputs when exact_test_set(problem), else its test_points.
LabeledPoints test_points_of(const QuantizedProblem& problem, int stream);

// The p* sampler (spec §7.2): one stream per guess key whose training set is ALL 2^d binary inputs
// in enumeration order (mask 0, 1, …, 2^d − 1; n_max = 2^d; needs binary inputs, d ≤ 16), so
// survival[2^d]/G is the Monte Carlo estimate of p*. data_seeds, n_max, with_replacement and
// test_points of the problem are ignored.
std::unique_ptr<GuessSampler> make_full_domain_sampler(const QuantizedProblem& problem);

// Merges `next` (the following guesses of the same stream) into `into`: guesses and survival
// add, kept lists concatenate in index order and are cut at `keep`.
void merge_block(BlockResult& into, const BlockResult& next, int keep);

// Runs stream `stream` from guess 0 in blocks of `block` guesses, merged in index order, until the
// kept list of the largest grid N holds `keep` guesses or `max_guesses` are spent.
BlockResult run_stream(const GuessSampler& sampler, int stream, std::span<const int> grid, int keep,
                       std::uint64_t block, std::uint64_t max_guesses);

// ---- theory (spec §2.4) ------------------------------------------------------------------------

// M*: the number of parameterizations of the TEACHER-WIDTH student (hidden widths d*_l, same Q,
// levels, SFC and tie rule) that equal the teacher on all 2^d inputs, by enumeration when inputs
// are binary, d ≤ 16 and Q^P* ≤ 2^24 (8 for maj3, d = 8, ternary: spec §7.2); nullopt otherwise.
std::optional<double> teacher_equivalent_count(const QuantizedProblem& problem);

// The counting bound (B) of spec §2.4 on −ln p*:
//   FC:  ln Q·Σ_{l=1}^{L} d*_l (d_{l−1}+1) − Σ_{l<L} ln perm_l − ln M*
//   SFC: ln Q·[Σ_l d*_l (d*_{l−1}+1) + Σ_{l<L} d*_l + Σ_{l<L} (d_l − d*_l)] − Σ_{l<L} ln perm_l − ln M*
// with d_0 = d*_0 = d, d_L = d*_L = 1. M* from teacher_equivalent_count; it counts the orderings
// of the teacher's units already, so perm_l = C(d_l, d*_l) (which units play the teacher's roles)
// — equal to the spec's d_l!/(d_l−d*_l)! when d*_l = 1. When M* cannot be enumerated, M* = 1 and
// perm_l = d_l!/(d_l−d*_l)!. Returns +∞ when no teacher-equivalent setting exists (M* = 0, or 0
// is not a level while the student is wider than the teacher).
double counting_bound_neg_ln_p_star(const QuantizedProblem& problem);

// p* = P_θ[h_θ ≡ teacher on {±1}^d] by enumerating all Q^P parameterizations of the student
// (binary inputs, d ≤ 16, Q^P ≤ 2^24); nullopt otherwise. For width 1 on maj3: 8/3^11.
std::optional<double> exact_p_star(const QuantizedProblem& problem);

// ---- summary statistics per N over streams (spec §7.1 "Report per N", §7.3) ---------------------

// C_N = Σ_{t ≥ N} survival[t], N = 0 … N_max.
std::vector<std::int64_t> survivors(std::span<const std::int64_t> survival);

struct MeanSe {
  double mean = 0.0, se = 0.0;
  int count = 0;  // streams that contributed
};
// Mean over streams of the per-stream mean test error, with its SE over streams; streams without
// samples are skipped. errors[r] = the test errors of stream r's kept samples at this N.
MeanSe mean_test_error(const std::vector<std::vector<double>>& errors);
// Stream average of 1 − C_{N+1}/C_N (the Bayes-identity estimate of ε̄_N, spec §2.4 (A)); streams
// with C_N = 0 skipped; needs N < N_max (count 0 otherwise).
MeanSe bayes_error(const std::vector<std::vector<std::int64_t>>& survival, int n);
// Stream average of ln(G/C_N) = ln 1/p̂(S_N).
MeanSe mean_log_inverse_acceptance(const std::vector<std::vector<std::int64_t>>& survival,
                                   std::span<const std::uint64_t> guesses, int n);
// Stream average of Σ_{n<N} (1 − C_{n+1}/C_n) (cumulative Gibbs error, spec §2.4 (A)).
MeanSe cumulative_bayes_error(const std::vector<std::vector<std::int64_t>>& survival, int n);
// The expected-error bound (ln(1/p*) + 1)/N of spec §2.4 (A) (+∞ at N = 0).
double expected_error_bound(double neg_ln_p_star, int n);

struct Interval {
  double estimate = 0.0, lower = 0.0, upper = 0.0;
};
// Wilson score interval for a binomial proportion successes/trials at normal quantile z.
Interval binomial_ci(std::uint64_t successes, std::uint64_t trials, double z = 1.96);

}  // namespace gdlab::interp
