// Numerical core of the experiment kind `relu_minima_stability`: Nacson, Mulayoff, Ongie, Michaeli,
// Soudry, "The Implicit Bias of Minima Stability in Multivariate Shallow ReLU Networks", ICLR 2023
// (spec: shared/papers/stability.md §2). Plain C++/Eigen: no protobuf, no MPI, no HDF5.
//
// Model and loss (§2.3): f_θ(x) = Σ_{i=1}^k v_i σ(w_iᵀx + b_i) + c, x ∈ ℝ^d, σ = ReLU, θ = (W, b, v, c);
// L(θ) = (1/2n)Σ_j (f_θ(x_j) − y_j)². The 1/(2n) and the trainable output bias c produce the "1" and the
// "−½" of the bound Σ_j|a_j| g(u_j,t_j) ≤ 1/η − ½ (§2.6, §2.7). The other normalisation (1/n) and the
// bias-free model exist only as the negative controls of T2.2.
//
// ReLU kink convention (§2.11 T2.4 notes, §4): σ'(z) = 1[z > 0], so σ'(0) = 0. Every derivative here
// (gradient, Jacobian Φ, Hessian-vector product) uses it; a data point exactly on a kink counts as
// inactive, in the Jacobian and in the weight function alike (uᵀx > t strictly). The exact HVP is the
// Hessian of the smooth piece selected by that convention (σ'' = 0 away from kinks); at a
// non-differentiable minimum it is the Hessian of one mode of the switching system (§2.4).
//
// Limit-point ("snapped") variant: GD converges geometrically to minima where some data points sit
// exactly on kinks (§2.11 T2.4 notes: min|w_iᵀx_j + b_i| = 3e-15), and the floating-point iterate
// leaves each such z_ij at ±1e-16 with a random sign, so 1[z > 0] picks a random mode of the
// switching system (measured: η·λ_max/2 flipping between 0.992 and 1.018 on one run). The functions
// taking `kink_tol` (default 0: the plain 1[z > 0] convention) treat a pair with
// |z_ij| ≤ kink_tol·(‖w_i‖‖x_j‖ + |b_i|) as sitting on its kink, i.e. apply 1[z > 0] to the limit
// point (z = 0 ⇒ inactive), in Φ, the HVP and the weight function alike (g̃ then uses
// uᵀx − t > kink_tol·(‖x‖ + |t|)), so the identity chain of §2.7 holds for the snapped values too.
//
// Parameter vector layout (pack/unpack, gradients, HVPs): [W row-major (w_1, …, w_k), b, v, c], with c
// present only when the network has an output bias; size k(d+2) (+1).
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "worker/numerics/hessian.h"

namespace gdlab::relu_stability {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// ---- Data ---------------------------------------------------------------------------------------

struct RegressionData {
  MatrixXd X;  // n×d inputs, one row per sample
  VectorXd y;  // n targets (after standardisation, if any)
  // Standardisation constants: y = (y_raw − y_mean)/y_scale (0 and 1 when not standardised).
  double y_mean = 0.0;
  double y_scale = 1.0;
};

// Standardise y in place to mean 0 and (population) standard deviation 1, recording the constants.
// A constant y keeps y_scale = 1 (only centred).
void standardize_targets(RegressionData& data);

// The synthetic toy of §2.11 T2.4: x_j ~ N(0, I_d), y = sin(2x₁) + 0.5x₂² (the x₂ term only when
// d ≥ 2), then y standardised if `standardize`. Draws through gdlab::Rng(seed): X row by row.
RegressionData make_synthetic(int n, int d, std::uint64_t seed, bool standardize = true);

// ---- IDX files (the MNIST format, http://yann.lecun.com/exdb/mnist/) ----------------------------

// One IDX file of unsigned bytes: big-endian magic 0x0000 08 <ndims>, ndims big-endian uint32 sizes,
// then Π sizes bytes. Throws InputError naming the file on a missing/unreadable file, a wrong magic
// number (not ubyte, or a dimension count other than `expected_dims`), a zero size, or truncated data
// (fewer bytes than the header announces; trailing bytes are an error too).
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};
IdxArray read_idx_ubyte(const std::string& path, int expected_dims);

// Writes an IDX ubyte file (tests, tools). Throws InputError naming the file when it cannot write.
void write_idx_ubyte(const std::string& path, const std::vector<std::uint32_t>& dims,
                     const std::vector<std::uint8_t>& data);

enum class IdxTarget {
  PlusMinusOne,  // exactly two classes: classes[0] → −1, classes[1] → +1
  Label,         // y = the label value (0–9 for MNIST)
};
enum class IdxSelection {
  First,   // the first num_samples images (file order) whose label is in `classes`
  Random,  // num_samples drawn uniformly without replacement among those, with Rng(seed); kept in file order
};
struct IdxOptions {
  std::string images_path;  // IDX, 3 dims (count, rows, cols): magic 0x00000803
  std::string labels_path;  // IDX, 1 dim (count): magic 0x00000801
  std::vector<int> classes;  // label subset, nonempty, distinct, each in [0, 255]
  int num_samples = 0;       // > 0
  double pixel_scale = 1.0 / 255.0;  // x = pixel·pixel_scale (row-major pixels)
  IdxTarget target = IdxTarget::PlusMinusOne;
  IdxSelection selection = IdxSelection::First;
  std::uint64_t seed = 0;
  bool standardize = false;
};
// Images and labels files must hold the same number of items; fewer than num_samples matching labels
// is an InputError naming the labels file. Argument errors (empty classes, …) throw std::invalid_argument
// (the kind validates them first, as SpecErrors).
RegressionData load_idx(const IdxOptions& options);

// ---- Network ------------------------------------------------------------------------------------

enum class LossNormalization {
  HalfMean,  // L = (1/2n)Σ(f − y)²: the paper's (§2.3)
  Mean,      // L = (1/n)Σ(f − y)²: negative control of T2.2 (every Hessian doubles)
};
// s with L = s·Σ(f − y)².
double loss_scale(LossNormalization norm, Eigen::Index n);

struct Network {
  MatrixXd W;  // k×d, row i = w_i
  VectorXd b;  // k
  VectorXd v;  // k
  double c = 0.0;
  bool output_bias = true;  // false only for the T2.2 negative control (c fixed at 0, not a parameter)

  Eigen::Index width() const { return W.rows(); }
  Eigen::Index input_dim() const { return W.cols(); }
  Eigen::Index num_parameters() const { return W.size() + b.size() + v.size() + (output_bias ? 1 : 0); }
  VectorXd pack() const;
  void unpack(const VectorXd& theta);  // sizes must match num_parameters()
};

// The initialisation of T2.4: W ~ N(0, w_scale²/d), b ~ b_std·N, v ~ v_std·N/√k, c = 0; drawn through
// gdlab::Rng(seed) in the order W (row-major), b, v.
struct InitOptions {
  double w_scale = 1.0;
  double b_std = 0.1;
  double v_std = 0.1;
};
Network init_network(int width, int input_dim, const InitOptions& init, std::uint64_t seed);

// n×k pre-activations Z_ji = w_iᵀx_j + b_i.
MatrixXd preactivations(const Network& net, const MatrixXd& X);
VectorXd predict(const Network& net, const MatrixXd& X);
double loss(const Network& net, const RegressionData& data, LossNormalization norm);
// ∇_θ L in the packed layout. `loss_out` (optional) receives L(θ).
VectorXd gradient(const Network& net, const RegressionData& data, LossNormalization norm,
                  double* loss_out = nullptr);
// Gradient of the loss on the subset `rows` of the data, normalised by the subset size
// (s·Σ_{j∈rows}(f − y)² with s = loss_scale(norm, |rows|)): the SGD step.
VectorXd batch_gradient(const Network& net, const RegressionData& data, LossNormalization norm,
                        const std::vector<Eigen::Index>& rows);
// Φ = [∇_θ f(x_1), …, ∇_θ f(x_n)], p×n (§2.4), with the 1[z > 0] convention.
MatrixXd jacobian(const Network& net, const MatrixXd& X, double kink_tol = 0.0);
// Exact Hessian-vector product of L (a.e.; see the kink convention above):
// ∇²L = 2s(ΦΦᵀ + Σ_j r_j ∇²f_j), r = f − y, where ∇²f_j couples v_i with (w_i, b_i) only.
void hessian_vector_product(const Network& net, const RegressionData& data, LossNormalization norm,
                            const VectorXd& direction, VectorXd& out, double kink_tol = 0.0);
// The same as a callback for hessian.h (holds copies of net and data).
hessian::HessianVectorProduct hvp_callback(const Network& net, const RegressionData& data, LossNormalization norm,
                                          double kink_tol = 0.0);
// λ_max of the Gauss–Newton matrix 2s·ΦΦᵀ (= ΦΦᵀ/n for the paper's loss), equal to λ_max(∇²L) at an
// interpolating minimum (§0.3, §2.4). Computed from the n×n Gram matrix ΦᵀΦ (same nonzero spectrum):
// dense eigensolver for n ≤ 600, Lanczos above.
double gauss_newton_lambda_max(const Network& net, const MatrixXd& X, LossNormalization norm,
                               double kink_tol = 0.0);

// ---- Weight function (§2.5) ---------------------------------------------------------------------

// With X ~ Uniform{x_1..x_n} (the rows of X) and the activation event uᵀX > t (strict):
// g̃(u,t) = P(uᵀX > t)²·E[uᵀX − t | uᵀX > t]·√(1 + ‖E[X | uᵀX > t]‖²), 0 when no point is active.
// u need not be a unit vector (the formula is used as written).
double g_tilde(const MatrixXd& X, const VectorXd& u, double t, double kink_tol = 0.0);
// g(u,t) = min{g̃(u,t), g̃(−u,−t)} (Liang et al., the form of Nacson et al. Thm 1).
double weight_g(const MatrixXd& X, const VectorXd& u, double t, double kink_tol = 0.0);

// Univariate weight function of Mulayoff et al. 2021, eq. 23, on scalar data xs:
// g⁺(x) = P²(X>x)·E[X−x|X>x]·√(1+E[X|X>x]²), g⁻(x) = P²(X<x)·E[x−X|X<x]·√(1+E[X|X<x]²),
// g(x) = min{g⁻(x), g⁺(x)}. Independent implementation (used by T2.1 and T2.5).
double g_plus_1d(const VectorXd& xs, double x);
double g_minus_1d(const VectorXd& xs, double x);
double g_1d(const VectorXd& xs, double x);

// Neuron normal form (§2.5): a = v‖w‖, u = w/‖w‖, t = −b/‖w‖ (active iff uᵀx > t). Neurons with
// w = 0 get a = 0, u = 0, t = 0 (they are constant functions and carry no weight).
struct NeuronForms {
  VectorXd a;  // k
  MatrixXd u;  // k×d
  VectorXd t;  // k
  VectorXd g;  // k: g(u_i, t_i) from the empirical distribution of X (0 for w = 0)
};
NeuronForms neuron_forms(const Network& net, const MatrixXd& X, double kink_tol = 0.0);

// |f|_{V_g} of the trained network, Σ_i |a_i| g(u_i, t_i) (§2.6, Liang et al. Example 3.1), summed per
// neuron. This equals the reduced-form value when the (u_i, t_i) are distinct (always the case for a
// network trained from a random init); otherwise it is an upper bound on it (|a₁ + a₂| ≤ |a₁| + |a₂|),
// and every inequality below still holds for it.
double weighted_norm(const Network& net, const MatrixXd& X, double kink_tol = 0.0);

// T2.5: for d = 1, Σ_knots |Δf'(knot)|·g_1d(knot) evaluated directly from the function: the slope of f
// on each interval between sorted knots, its jump at each distinct knot, and Mulayoff's g.
double univariate_weighted_norm_direct(const Network& net, const VectorXd& xs);

// ---- The identity and inequality chain of §2.7 --------------------------------------------------

struct IdentityChain {
  double lambda_gn = 0;              // λ_max(ΦΦᵀ/n)
  double mean_gradient_sq = 0;       // (1/n²)‖Σ_j ∇_θ f(x_j)‖² = ‖Φ1‖²/n²
  double one_plus_sum_ab = 0;        // 1 + Σ_i (A_i² + B_i²), from the g-route statistics
  double one_plus_2_sum_vwg_tilde = 0;  // 1 + 2Σ_i |v_i|‖w_i‖ g̃(u_i, t_i)
  double one_plus_2_weighted_norm = 0;  // 1 + 2Σ_i |a_i| g(u_i, t_i)
};
// A_i = ‖w_i‖ P_i E[u_iᵀX − t_i | act_i], B_i = |v_i| P_i √(1 + ‖E[X|act_i]‖²), P_i = P(act_i); the "1"
// is ∂f/∂c. Chain: lambda_gn ≥ mean_gradient_sq = one_plus_sum_ab ≥ one_plus_2_sum_vwg_tilde ≥
// one_plus_2_weighted_norm. Without an output bias, mean_gradient_sq lacks the 1 (negative control).
IdentityChain identity_chain(const Network& net, const MatrixXd& X, double kink_tol = 0.0);

// ---- Training (§2.3) ----------------------------------------------------------------------------

enum class Optimizer { GD, SGD };

struct TrainOptions {
  double eta = 0.1;
  Optimizer optimizer = Optimizer::GD;
  int batch_size = 0;            // SGD: batches of this size, uniform without replacement, i.i.d. per step
  std::uint64_t sgd_seed = 0;
  LossNormalization norm = LossNormalization::HalfMean;
  std::int64_t max_steps = 40000;
  // "Stays small" rule (T2.4 (i) and its notes): interpolation is declared once the full-batch loss is
  // < interp_loss at every check over hold_steps consecutive steps; training stops there.
  double interp_loss = 1e-10;
  std::int64_t hold_steps = 2000;
  // Full-batch loss check period (GD: every step, the loss comes with the gradient; SGD: this many
  // steps, 0 = one epoch ⌈n/B⌉).
  std::int64_t check_every = 0;
  // Divergence: loss not finite or above this.
  double divergence_loss = 1e12;
};

struct TrainResult {
  std::int64_t steps = 0;        // updates applied
  double final_loss = 0;         // full-batch L(θ) at the end
  bool interpolated = false;     // the stays-small rule fired
  bool diverged = false;
  std::int64_t first_below_step = -1;  // start of the final run of checks below interp_loss (-1: none)
};

// Progress callback: (step, network at that step, full-batch loss at that step, or NaN when the loss
// was not evaluated at that step). Called at step 0, every `every` steps, and at the final step
// (exactly once per step).
using TrainObserver = std::function<void(std::int64_t step, const Network& net, double loss)>;

TrainResult train(Network& net, const RegressionData& data, const TrainOptions& options,
                  std::int64_t observe_every, const TrainObserver& observer);

// ---- End-of-run evaluation (§2.6, §2.10) --------------------------------------------------------

struct SharpnessOptions {
  hessian::EigenOptions lanczos;   // tolerances and cap of the Lanczos run
  std::uint64_t start_seed = 0;    // the Lanczos start vector, N(0, I) through gdlab::Rng
};
// λ_max(∇²L(θ)) by Lanczos on the exact HVP.
hessian::EigenResult sharpness(const Network& net, const RegressionData& data, LossNormalization norm,
                               const SharpnessOptions& options, double kink_tol = 0.0);

struct StabilityReport {
  double loss = 0;               // L(θ)
  double lambda_max = 0;         // Lanczos on the exact Hessian
  bool lambda_converged = false;
  int lambda_iterations = 0;
  double lambda_gauss_newton = 0;  // λ_max(2s ΦΦᵀ)
  double sharpness_ratio = 0;    // η·λ_max/2 (≤ 1 ⇔ linearly stable for GD, §2.4)
  double weighted_norm = 0;      // Σ|a|g
  double bound = 0;              // 1/η − ½ (§2.6, interpolating)
  double lambda_bound = 0;       // λ_max/2 − ½ (§2.7: Σ|a|g ≤ λ_max/2 − ½ at interpolation)
  double data_radius = 0;        // R = max_j ‖x_j‖
  double residual_term = 0;      // (R+1)√(2L)
  double nonint_bound = 0;       // λ_max/2 − ½ + (R+1)√(2L) (Liang et al. Thm 3.2, any θ)
  double stable_nonint_bound = 0;  // 1/η − ½ + (R+1)√(2L) (T2.4 (ii))
  double min_kink_distance = 0;  // min_{i,j} |w_iᵀx_j + b_i|
  int active_neurons = 0;        // neurons with w ≠ 0 active on at least one training point
  // At the limit point (see "Limit-point variant" above; equal to the plain values when kink_tol = 0):
  int kink_pairs = 0;            // pairs (i, j) with |z_ij| ≤ kink_tol·(‖w_i‖‖x_j‖ + |b_i|)
  double lambda_max_snapped = 0;
  bool lambda_snapped_converged = false;
  double lambda_gauss_newton_snapped = 0;
  double sharpness_ratio_snapped = 0;  // η·λ_max_snapped/2
  double weighted_norm_snapped = 0;
  double lambda_bound_snapped = 0;     // λ_max_snapped/2 − ½
};
StabilityReport evaluate(const Network& net, const RegressionData& data, double eta, LossNormalization norm,
                         const SharpnessOptions& options, double kink_tol = 0.0);

}  // namespace gdlab::relu_stability
