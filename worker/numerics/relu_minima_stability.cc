// Numerical core of `relu_minima_stability` (Nacson et al., ICLR 2023; stability.md §2). See the header.
#include "worker/numerics/relu_minima_stability.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "common/errors.h"
#include "common/random.h"

namespace gdlab::relu_stability {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- Data ---------------------------------------------------------------------------------------

void standardize_targets(RegressionData& data) {
  const auto n = data.y.size();
  if (n == 0) return;
  const double mean = data.y.mean();
  const double var = (data.y.array() - mean).square().sum() / static_cast<double>(n);
  const double sd = std::sqrt(var);
  data.y_mean = mean;
  data.y_scale = sd > 0 ? sd : 1.0;
  data.y = ((data.y.array() - mean) / data.y_scale).matrix();
}

RegressionData make_synthetic(int n, int d, std::uint64_t seed, bool standardize) {
  if (n < 1 || d < 1) throw std::invalid_argument("make_synthetic: n and d must be >= 1");
  Rng rng(seed);
  RegressionData data;
  data.X.resize(n, d);
  for (int j = 0; j < n; ++j)
    for (int l = 0; l < d; ++l) data.X(j, l) = rng.normal();
  data.y.resize(n);
  for (int j = 0; j < n; ++j) {
    // §2.11 T2.4: y = sin(2x₁) + 0.5x₂².
    const double x1 = data.X(j, 0);
    const double x2 = d >= 2 ? data.X(j, 1) : 0.0;
    data.y(j) = std::sin(2.0 * x1) + 0.5 * x2 * x2;
  }
  if (standardize) standardize_targets(data);
  return data;
}

// ---- IDX ----------------------------------------------------------------------------------------

IdxArray read_idx_ubyte(const std::string& path, int expected_dims) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open IDX file");
  unsigned char header[4];
  if (!in.read(reinterpret_cast<char*>(header), 4))
    throw InputError(path + ": truncated IDX file (no 4-byte magic number)");
  const std::uint32_t magic = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                              (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
  const std::uint32_t expected_magic = 0x0800u | static_cast<std::uint32_t>(expected_dims);
  if (magic != expected_magic) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  ": wrong IDX magic number 0x%08X (expected 0x%08X: unsigned bytes, %d dimension%s)",
                  static_cast<unsigned>(magic), static_cast<unsigned>(expected_magic), expected_dims,
                  expected_dims == 1 ? "" : "s");
    throw InputError(path + buf);
  }
  IdxArray out;
  std::uint64_t total = 1;
  for (int i = 0; i < expected_dims; ++i) {
    unsigned char s[4];
    if (!in.read(reinterpret_cast<char*>(s), 4))
      throw InputError(path + ": truncated IDX header (dimension " + std::to_string(i) + " missing)");
    const std::uint32_t size = (std::uint32_t{s[0]} << 24) | (std::uint32_t{s[1]} << 16) |
                               (std::uint32_t{s[2]} << 8) | std::uint32_t{s[3]};
    if (size == 0) throw InputError(path + ": IDX dimension " + std::to_string(i) + " is 0");
    out.dims.push_back(size);
    total *= size;
    if (total > (std::uint64_t{1} << 34)) throw InputError(path + ": IDX array too large");
  }
  out.data.resize(static_cast<size_t>(total));
  in.read(reinterpret_cast<char*>(out.data.data()), static_cast<std::streamsize>(total));
  const auto got = static_cast<std::uint64_t>(in.gcount());
  if (got != total)
    throw InputError(path + ": truncated IDX data: the header announces " + std::to_string(total) +
                     " bytes, the file holds " + std::to_string(got));
  if (in.peek() != std::char_traits<char>::eof())
    throw InputError(path + ": trailing bytes after the " + std::to_string(total) + " bytes of IDX data");
  return out;
}

void write_idx_ubyte(const std::string& path, const std::vector<std::uint32_t>& dims,
                     const std::vector<std::uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path + ": cannot write IDX file");
  auto put32 = [&](std::uint32_t x) {
    const char b[4] = {static_cast<char>((x >> 24) & 0xFF), static_cast<char>((x >> 16) & 0xFF),
                       static_cast<char>((x >> 8) & 0xFF), static_cast<char>(x & 0xFF)};
    out.write(b, 4);
  };
  put32(0x0800u | static_cast<std::uint32_t>(dims.size()));
  for (auto s : dims) put32(s);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw InputError(path + ": write failed");
}

RegressionData load_idx(const IdxOptions& o) {
  if (o.classes.empty()) throw std::invalid_argument("load_idx: empty class subset");
  if (o.num_samples < 1) throw std::invalid_argument("load_idx: num_samples must be >= 1");
  if (o.target == IdxTarget::PlusMinusOne && o.classes.size() != 2)
    throw std::invalid_argument("load_idx: the +-1 target needs exactly two classes");
  const IdxArray images = read_idx_ubyte(o.images_path, 3);
  const IdxArray labels = read_idx_ubyte(o.labels_path, 1);
  if (images.dims[0] != labels.dims[0])
    throw InputError(o.labels_path + ": holds " + std::to_string(labels.dims[0]) + " labels but " + o.images_path +
                     " holds " + std::to_string(images.dims[0]) + " images");
  const std::size_t count = images.dims[0];
  const std::size_t pixels = std::size_t{images.dims[1]} * images.dims[2];
  std::vector<std::size_t> matching;
  for (std::size_t i = 0; i < count; ++i)
    if (std::find(o.classes.begin(), o.classes.end(), int{labels.data[i]}) != o.classes.end()) matching.push_back(i);
  if (matching.size() < static_cast<std::size_t>(o.num_samples)) {
    std::string cls;
    for (int c : o.classes) {
      if (!cls.empty()) cls.push_back(',');
      cls.append(std::to_string(c));
    }
    throw InputError(o.labels_path + ": only " + std::to_string(matching.size()) + " samples with labels in {" + cls +
                     "}, but num_samples = " + std::to_string(o.num_samples));
  }
  std::vector<std::size_t> chosen;
  if (o.selection == IdxSelection::First) {
    chosen.assign(matching.begin(), matching.begin() + o.num_samples);
  } else {
    // Partial Fisher–Yates with gdlab::Rng, then back to file order.
    Rng rng(o.seed);
    for (std::size_t i = 0; i < static_cast<std::size_t>(o.num_samples); ++i) {
      const std::size_t j = i + static_cast<std::size_t>(rng.next_u64() % (matching.size() - i));
      std::swap(matching[i], matching[j]);
    }
    chosen.assign(matching.begin(), matching.begin() + o.num_samples);
    std::sort(chosen.begin(), chosen.end());
  }
  RegressionData data;
  data.X.resize(o.num_samples, static_cast<Eigen::Index>(pixels));
  data.y.resize(o.num_samples);
  for (Eigen::Index r = 0; r < o.num_samples; ++r) {
    const std::size_t item = chosen[static_cast<std::size_t>(r)];
    for (std::size_t p = 0; p < pixels; ++p)
      data.X(r, static_cast<Eigen::Index>(p)) = o.pixel_scale * images.data[item * pixels + p];
    const int label = labels.data[item];
    data.y(r) = o.target == IdxTarget::Label ? static_cast<double>(label) : (label == o.classes[0] ? -1.0 : 1.0);
  }
  if (o.standardize) standardize_targets(data);
  return data;
}

// ---- Network ------------------------------------------------------------------------------------

double loss_scale(LossNormalization norm, Eigen::Index n) {
  const double nn = static_cast<double>(n);
  return norm == LossNormalization::HalfMean ? 1.0 / (2.0 * nn) : 1.0 / nn;
}

VectorXd Network::pack() const {
  const Eigen::Index k = width(), d = input_dim();
  VectorXd theta(num_parameters());
  Eigen::Map<RowMajorMatrix>(theta.data(), k, d) = W;
  theta.segment(k * d, k) = b;
  theta.segment(k * d + k, k) = v;
  if (output_bias) theta(k * d + 2 * k) = c;
  return theta;
}

void Network::unpack(const VectorXd& theta) {
  const Eigen::Index k = width(), d = input_dim();
  if (theta.size() != num_parameters())
    throw std::invalid_argument("Network::unpack: parameter vector of size " + std::to_string(theta.size()) +
                                ", expected " + std::to_string(num_parameters()));
  W = Eigen::Map<const RowMajorMatrix>(theta.data(), k, d);
  b = theta.segment(k * d, k);
  v = theta.segment(k * d + k, k);
  if (output_bias) c = theta(k * d + 2 * k);
}

Network init_network(int width, int input_dim, const InitOptions& init, std::uint64_t seed) {
  if (width < 1 || input_dim < 1) throw std::invalid_argument("init_network: width and input_dim must be >= 1");
  Rng rng(seed);
  Network net;
  net.W.resize(width, input_dim);
  const double w_sd = init.w_scale / std::sqrt(static_cast<double>(input_dim));
  for (int i = 0; i < width; ++i)
    for (int l = 0; l < input_dim; ++l) net.W(i, l) = w_sd * rng.normal();
  net.b.resize(width);
  for (int i = 0; i < width; ++i) net.b(i) = init.b_std * rng.normal();
  net.v.resize(width);
  const double v_sd = init.v_std / std::sqrt(static_cast<double>(width));
  for (int i = 0; i < width; ++i) net.v(i) = v_sd * rng.normal();
  net.c = 0.0;
  return net;
}

MatrixXd preactivations(const Network& net, const MatrixXd& X) {
  MatrixXd Z = X * net.W.transpose();
  Z.rowwise() += net.b.transpose();
  return Z;
}

namespace {

// σ(Z) and the activation mask D (the kink convention of the header). kink_tol > 0: a pair within
// kink_tol·(‖w_i‖‖x_j‖ + |b_i|) of its kink counts as sitting on it (inactive, σ = 0 in S too).
struct Forward {
  MatrixXd Z, S, D;  // pre-activations, activations used by the derivatives, derivative mask
  VectorXd f;        // f(x_j), always from the exact max(Z, 0)
};

Forward forward(const Network& net, const MatrixXd& X, double kink_tol = 0.0) {
  Forward fw;
  fw.Z = preactivations(net, X);
  fw.f = fw.Z.cwiseMax(0.0) * net.v;
  if (net.output_bias) fw.f.array() += net.c;
  if (kink_tol > 0) {
    const VectorXd xn = X.rowwise().norm();
    const VectorXd wn = net.W.rowwise().norm();
    const MatrixXd thr = kink_tol * ((xn * wn.transpose()).rowwise() + net.b.cwiseAbs().transpose());
    fw.D = (fw.Z.array() > thr.array()).cast<double>().matrix();
  } else {
    fw.D = (fw.Z.array() > 0.0).cast<double>().matrix();
  }
  fw.S = fw.D.cwiseProduct(fw.Z);
  return fw;
}

// Φ q = Σ_j q_j ∇_θ f(x_j) in the packed layout (rows: the subset given by X/fw).
VectorXd jacobian_times(const Network& net, const MatrixXd& X, const Forward& fw, const VectorXd& q) {
  const Eigen::Index k = net.width(), d = net.input_dim();
  VectorXd out(net.num_parameters());
  // G_ji = q_j v_i 1[z_ji > 0]
  const MatrixXd G = (fw.D.array().colwise() * q.array()).rowwise() * net.v.transpose().array();
  Eigen::Map<RowMajorMatrix>(out.data(), k, d) = G.transpose() * X;  // ∂/∂w_i
  out.segment(k * d, k) = G.colwise().sum().transpose();                // ∂/∂b_i
  out.segment(k * d + k, k) = fw.S.transpose() * q;                     // ∂/∂v_i
  if (net.output_bias) out(k * d + 2 * k) = q.sum();                    // ∂/∂c
  return out;
}

// Φᵀ δ: the directional derivative of f(x_j) along δ, for every j.
VectorXd jacobian_transpose_times(const Network& net, const MatrixXd& X, const Forward& fw, const VectorXd& delta,
                                  MatrixXd* P_out = nullptr) {
  const Eigen::Index k = net.width(), d = net.input_dim();
  const Eigen::Map<const RowMajorMatrix> dW(delta.data(), k, d);
  const auto db = delta.segment(k * d, k);
  const auto dv = delta.segment(k * d + k, k);
  MatrixXd P = X * dW.transpose();  // P_ji = x_jᵀδw_i + δb_i
  P.rowwise() += db.transpose();
  VectorXd out = fw.D.cwiseProduct(P) * net.v + fw.S * dv;
  if (net.output_bias) out.array() += delta(k * d + 2 * k);
  if (P_out) *P_out = std::move(P);
  return out;
}

}  // namespace

VectorXd predict(const Network& net, const MatrixXd& X) { return forward(net, X).f; }

double loss(const Network& net, const RegressionData& data, LossNormalization norm) {
  const VectorXd r = predict(net, data.X) - data.y;
  return loss_scale(norm, data.X.rows()) * r.squaredNorm();
}

VectorXd gradient(const Network& net, const RegressionData& data, LossNormalization norm, double* loss_out) {
  const Forward fw = forward(net, data.X);
  const VectorXd r = fw.f - data.y;
  const double s = loss_scale(norm, data.X.rows());
  if (loss_out) *loss_out = s * r.squaredNorm();
  return jacobian_times(net, data.X, fw, 2.0 * s * r);  // ∇L = 2s Σ_j r_j ∇f(x_j)
}

VectorXd batch_gradient(const Network& net, const RegressionData& data, LossNormalization norm,
                        const std::vector<Eigen::Index>& rows) {
  RegressionData batch;
  batch.X.resize(static_cast<Eigen::Index>(rows.size()), data.X.cols());
  batch.y.resize(static_cast<Eigen::Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    batch.X.row(static_cast<Eigen::Index>(i)) = data.X.row(rows[i]);
    batch.y(static_cast<Eigen::Index>(i)) = data.y(rows[i]);
  }
  return gradient(net, batch, norm);
}

MatrixXd jacobian(const Network& net, const MatrixXd& X, double kink_tol) {
  const Forward fw = forward(net, X, kink_tol);
  MatrixXd Phi(net.num_parameters(), X.rows());
  for (Eigen::Index j = 0; j < X.rows(); ++j) Phi.col(j) = jacobian_times(net, X, fw, VectorXd::Unit(X.rows(), j));
  return Phi;
}

void hessian_vector_product(const Network& net, const RegressionData& data, LossNormalization norm,
                            const VectorXd& direction, VectorXd& out, double kink_tol) {
  if (direction.size() != net.num_parameters())
    throw std::invalid_argument("hessian_vector_product: direction has the wrong size");
  const Eigen::Index k = net.width(), d = net.input_dim();
  const Forward fw = forward(net, data.X, kink_tol);
  const double two_s = 2.0 * loss_scale(norm, data.X.rows());
  const VectorXd q = two_s * (fw.f - data.y);  // 2s·r
  MatrixXd P;
  // Gauss–Newton part 2s·Φ(Φᵀδ).
  const VectorXd jd = jacobian_transpose_times(net, data.X, fw, direction, &P);
  out = jacobian_times(net, data.X, fw, two_s * jd);
  // Residual part 2s·Σ_j r_j ∇²f_j δ, with ∂²f_j/∂v_i∂w_i = 1[z_ji > 0]x_j, ∂²f_j/∂v_i∂b_i = 1[z_ji > 0]
  // and every other second derivative 0 (σ'' = 0 a.e.).
  const auto dv = direction.segment(k * d + k, k);
  const MatrixXd Dq = fw.D.array().colwise() * q.array();  // D_ji q_j
  Eigen::Map<RowMajorMatrix>(out.data(), k, d) += dv.asDiagonal() * (Dq.transpose() * data.X);
  out.segment(k * d, k) += dv.cwiseProduct(Dq.colwise().sum().transpose());
  out.segment(k * d + k, k) += (Dq.cwiseProduct(P)).colwise().sum().transpose();
}

hessian::HessianVectorProduct hvp_callback(const Network& net, const RegressionData& data, LossNormalization norm,
                                          double kink_tol) {
  return [net, data, norm, kink_tol](const VectorXd& v, VectorXd& out) {
    hessian_vector_product(net, data, norm, v, out, kink_tol);
  };
}

double gauss_newton_lambda_max(const Network& net, const MatrixXd& X, LossNormalization norm, double kink_tol) {
  const Forward fw = forward(net, X, kink_tol);
  const Eigen::Index n = X.rows();
  // ΦᵀΦ_{jl} = Σ_i v_i² D_ji D_li (x_jᵀx_l + 1) + Σ_i σ_ji σ_li (+ 1 for c).
  const MatrixXd DV = fw.D * net.v.cwiseAbs().asDiagonal();
  MatrixXd gram = ((DV * DV.transpose()).array() * ((X * X.transpose()).array() + 1.0)).matrix();
  gram.noalias() += fw.S * fw.S.transpose();
  if (net.output_bias) gram.array() += 1.0;
  const double two_s = 2.0 * loss_scale(norm, n);
  if (n <= 600) {
    Eigen::SelfAdjointEigenSolver<MatrixXd> es(gram, Eigen::EigenvaluesOnly);
    return two_s * es.eigenvalues()(n - 1);
  }
  hessian::EigenOptions opt;
  opt.rel_tol = 1e-12;
  opt.max_iterations = 300;
  return two_s * hessian::lanczos_max(hessian::dense_hvp(std::move(gram)), VectorXd::Ones(n), opt).value;
}

// ---- Weight function ----------------------------------------------------------------------------

namespace {

// Whether x_j is active for the unit-normal neuron (u, t), uᵀx_j − t > 0, with the kink tolerance of
// forward() divided by ‖w‖: uᵀx_j − t > kink_tol·(‖x_j‖ + |t|).
inline bool active(double proj, double t, double kink_tol, double x_norm) {
  return kink_tol > 0 ? proj - t > kink_tol * (x_norm + std::abs(t)) : proj > t;
}

// Statistics of the active set of (u, t) from precomputed projections proj_j = uᵀx_j (§2.5, §2.7).
struct ActiveStats {
  Eigen::Index count = 0;
  double excess = 0;   // Σ_active (uᵀx_j − t)
  VectorXd sum_x;      // Σ_active x_j
};
ActiveStats active_stats(const MatrixXd& X, const VectorXd& proj, double t, double kink_tol, const VectorXd& xn) {
  ActiveStats st;
  st.sum_x = VectorXd::Zero(X.cols());
  for (Eigen::Index j = 0; j < X.rows(); ++j) {
    if (active(proj(j), t, kink_tol, kink_tol > 0 ? xn(j) : 0.0)) {
      ++st.count;
      st.excess += proj(j) - t;
      st.sum_x += X.row(j).transpose();
    }
  }
  return st;
}

// g̃ from precomputed projections proj_j = uᵀx_j (§2.5); xn = row norms of X (used when kink_tol > 0).
double g_tilde_from_projections(const MatrixXd& X, const VectorXd& proj, double t, double kink_tol,
                                const VectorXd& xn) {
  const ActiveStats st = active_stats(X, proj, t, kink_tol, xn);
  if (st.count == 0) return 0.0;
  const double md = static_cast<double>(st.count);
  const double p = md / static_cast<double>(X.rows());
  return p * p * (st.excess / md) * std::sqrt(1.0 + (st.sum_x / md).squaredNorm());
}

}  // namespace

double g_tilde(const MatrixXd& X, const VectorXd& u, double t, double kink_tol) {
  return g_tilde_from_projections(X, X * u, t, kink_tol, X.rowwise().norm());
}

double weight_g(const MatrixXd& X, const VectorXd& u, double t, double kink_tol) {
  const VectorXd proj = X * u;
  const VectorXd xn = X.rowwise().norm();
  return std::min(g_tilde_from_projections(X, proj, t, kink_tol, xn),
                  g_tilde_from_projections(X, -proj, -t, kink_tol, xn));
}

double g_plus_1d(const VectorXd& xs, double x) {
  const double n = static_cast<double>(xs.size());
  double count = 0, sum = 0;
  for (double xi : xs)
    if (xi > x) {
      count += 1;
      sum += xi;
    }
  if (count == 0) return 0.0;
  const double p = count / n, mean = sum / count;
  return p * p * (mean - x) * std::sqrt(1.0 + mean * mean);  // Mulayoff et al. 2021, eq. 23
}

double g_minus_1d(const VectorXd& xs, double x) {
  const double n = static_cast<double>(xs.size());
  double count = 0, sum = 0;
  for (double xi : xs)
    if (xi < x) {
      count += 1;
      sum += xi;
    }
  if (count == 0) return 0.0;
  const double p = count / n, mean = sum / count;
  return p * p * (x - mean) * std::sqrt(1.0 + mean * mean);
}

double g_1d(const VectorXd& xs, double x) { return std::min(g_minus_1d(xs, x), g_plus_1d(xs, x)); }

NeuronForms neuron_forms(const Network& net, const MatrixXd& X, double kink_tol) {
  const Eigen::Index k = net.width(), d = net.input_dim();
  NeuronForms nf;
  nf.a = VectorXd::Zero(k);
  nf.u = MatrixXd::Zero(k, d);
  nf.t = VectorXd::Zero(k);
  nf.g = VectorXd::Zero(k);
  for (Eigen::Index i = 0; i < k; ++i) {
    const double norm_w = net.W.row(i).norm();
    if (!(norm_w > 0)) continue;
    nf.a(i) = net.v(i) * norm_w;
    nf.u.row(i) = net.W.row(i) / norm_w;
    nf.t(i) = -net.b(i) / norm_w;
    nf.g(i) = weight_g(X, nf.u.row(i).transpose(), nf.t(i), kink_tol);
  }
  return nf;
}

double weighted_norm(const Network& net, const MatrixXd& X, double kink_tol) {
  const NeuronForms nf = neuron_forms(net, X, kink_tol);
  return nf.a.cwiseAbs().dot(nf.g);
}

double univariate_weighted_norm_direct(const Network& net, const VectorXd& xs) {
  if (net.input_dim() != 1) throw std::invalid_argument("univariate_weighted_norm_direct: needs d = 1");
  // Knots x = −b_i/w_i of the neurons with w_i ≠ 0, sorted and merged when equal.
  std::vector<double> knots;
  for (Eigen::Index i = 0; i < net.width(); ++i)
    if (net.W(i, 0) != 0.0) knots.push_back(-net.b(i) / net.W(i, 0));
  std::sort(knots.begin(), knots.end());
  knots.erase(std::unique(knots.begin(), knots.end()), knots.end());
  if (knots.empty()) return 0.0;
  // f'(x) = Σ_i v_i w_i 1[w_i x + b_i > 0], evaluated inside each interval between knots.
  auto slope = [&](double x) {
    double s = 0;
    for (Eigen::Index i = 0; i < net.width(); ++i)
      if (net.W(i, 0) * x + net.b(i) > 0) s += net.v(i) * net.W(i, 0);
    return s;
  };
  std::vector<double> probes;  // one point in each of the knots.size()+1 intervals
  probes.push_back(knots.front() - 1.0);
  for (std::size_t m = 0; m + 1 < knots.size(); ++m) probes.push_back(0.5 * (knots[m] + knots[m + 1]));
  probes.push_back(knots.back() + 1.0);
  double total = 0;
  for (std::size_t m = 0; m < knots.size(); ++m) {
    const double jump = slope(probes[m + 1]) - slope(probes[m]);  // Δf'(knot)
    total += std::abs(jump) * g_1d(xs, knots[m]);
  }
  return total;
}

// ---- Identity chain (§2.7) ----------------------------------------------------------------------

IdentityChain identity_chain(const Network& net, const MatrixXd& X, double kink_tol) {
  const Eigen::Index n = X.rows(), k = net.width();
  const double nn = static_cast<double>(n);
  IdentityChain ch;
  ch.lambda_gn = gauss_newton_lambda_max(net, X, LossNormalization::HalfMean, kink_tol);  // λ_max(ΦΦᵀ/n)
  const Forward fw = forward(net, X, kink_tol);
  ch.mean_gradient_sq = jacobian_times(net, X, fw, VectorXd::Ones(n)).squaredNorm() / (nn * nn);
  const VectorXd xn = X.rowwise().norm();
  double sum_ab = 0, sum_vwg = 0, sum_ag = 0;
  for (Eigen::Index i = 0; i < k; ++i) {
    const double norm_w = net.W.row(i).norm();
    if (!(norm_w > 0)) {
      // A constant neuron σ(b_i): A_i = σ(b_i), B_i = |v_i|·1[b_i > 0]·√(1 + ‖E[X]‖²); no weight (a_i = 0).
      if (net.b(i) > kink_tol * std::abs(net.b(i)))
        sum_ab += net.b(i) * net.b(i) + net.v(i) * net.v(i) * (1.0 + X.colwise().mean().squaredNorm());
      continue;
    }
    const VectorXd u = net.W.row(i).transpose() / norm_w;
    const double t = -net.b(i) / norm_w;
    const VectorXd proj = X * u;
    const ActiveStats st = active_stats(X, proj, t, kink_tol, xn);
    if (st.count > 0) {
      const double md = static_cast<double>(st.count);
      const double p = md / nn;                                  // P_i
      const double A = norm_w * p * (st.excess / md);            // ‖w_i‖ P_i E[u_iᵀX − t_i | act_i]
      const double B = std::abs(net.v(i)) * p * std::sqrt(1.0 + (st.sum_x / md).squaredNorm());
      sum_ab += A * A + B * B;
    }
    sum_vwg += std::abs(net.v(i)) * norm_w * g_tilde_from_projections(X, proj, t, kink_tol, xn);
    sum_ag += std::abs(net.v(i) * norm_w) * weight_g(X, u, t, kink_tol);
  }
  ch.one_plus_sum_ab = 1.0 + sum_ab;
  ch.one_plus_2_sum_vwg_tilde = 1.0 + 2.0 * sum_vwg;
  ch.one_plus_2_weighted_norm = 1.0 + 2.0 * sum_ag;
  return ch;
}

// ---- Training -----------------------------------------------------------------------------------

TrainResult train(Network& net, const RegressionData& data, const TrainOptions& o, std::int64_t observe_every,
                  const TrainObserver& observer) {
  if (!(o.eta > 0)) throw std::invalid_argument("train: eta must be > 0");
  if (observe_every < 1) throw std::invalid_argument("train: observe_every must be >= 1");
  const Eigen::Index n = data.X.rows();
  const bool sgd = o.optimizer == Optimizer::SGD && o.batch_size > 0 && o.batch_size < n;
  if (o.optimizer == Optimizer::SGD && (o.batch_size < 1 || o.batch_size > n))
    throw std::invalid_argument("train: SGD batch_size must be in [1, n]");
  const std::int64_t check_every =
      !sgd ? 1 : (o.check_every > 0 ? o.check_every : (n + o.batch_size - 1) / o.batch_size);
  Rng rng(o.sgd_seed);
  std::vector<Eigen::Index> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  std::vector<Eigen::Index> rows(static_cast<std::size_t>(sgd ? o.batch_size : 0));

  TrainResult res;
  std::int64_t below_since = -1;
  VectorXd theta = net.pack();
  for (std::int64_t t = 0;; ++t) {
    double current = std::numeric_limits<double>::quiet_NaN();
    VectorXd grad;
    if (!sgd) {
      grad = gradient(net, data, o.norm, &current);
    } else if (t % check_every == 0) {
      current = loss(net, data, o.norm);
    }
    bool stop = false;
    if (!sgd || t % check_every == 0) {
      if (!std::isfinite(current) || current > o.divergence_loss) {
        res.diverged = true;
        stop = true;
      } else if (current < o.interp_loss) {
        if (below_since < 0) below_since = t;
        if (t - below_since >= o.hold_steps) {
          res.interpolated = true;
          stop = true;
        }
      } else {
        below_since = -1;
      }
      res.final_loss = current;
    }
    if (t >= o.max_steps) stop = true;
    if (stop && std::isnan(current)) current = res.final_loss = loss(net, data, o.norm);  // SGD, off-check
    if (observer && (stop || t % observe_every == 0)) observer(t, net, current);
    if (stop) {
      res.steps = t;
      res.first_below_step = below_since;
      return res;
    }
    if (sgd) {
      // A uniform batch without replacement (partial Fisher–Yates), independent across steps.
      for (int i = 0; i < o.batch_size; ++i) {
        const auto ii = static_cast<std::size_t>(i);
        const std::size_t j = ii + static_cast<std::size_t>(rng.next_u64() % static_cast<std::uint64_t>(n - i));
        std::swap(perm[ii], perm[j]);
        rows[ii] = perm[ii];
      }
      grad = batch_gradient(net, data, o.norm, rows);
    }
    theta.noalias() -= o.eta * grad;
    net.unpack(theta);
  }
}

// ---- Evaluation ---------------------------------------------------------------------------------

hessian::EigenResult sharpness(const Network& net, const RegressionData& data, LossNormalization norm,
                               const SharpnessOptions& options, double kink_tol) {
  Rng rng(options.start_seed);
  VectorXd start(net.num_parameters());
  for (Eigen::Index i = 0; i < start.size(); ++i) start(i) = rng.normal();
  return hessian::lanczos_max(hvp_callback(net, data, norm, kink_tol), start, options.lanczos);
}

StabilityReport evaluate(const Network& net, const RegressionData& data, double eta, LossNormalization norm,
                         const SharpnessOptions& options, double kink_tol) {
  StabilityReport r;
  r.loss = loss(net, data, norm);
  const hessian::EigenResult lm = sharpness(net, data, norm, options);
  r.lambda_max = lm.value;
  r.lambda_converged = lm.converged;
  r.lambda_iterations = lm.iterations;
  r.lambda_gauss_newton = gauss_newton_lambda_max(net, data.X, norm);
  r.sharpness_ratio = eta * r.lambda_max / 2.0;
  r.weighted_norm = weighted_norm(net, data.X);
  r.bound = 1.0 / eta - 0.5;
  r.lambda_bound = r.lambda_max / 2.0 - 0.5;
  r.data_radius = data.X.rowwise().norm().maxCoeff();
  r.residual_term = (r.data_radius + 1.0) * std::sqrt(2.0 * r.loss);
  r.nonint_bound = r.lambda_bound + r.residual_term;
  r.stable_nonint_bound = r.bound + r.residual_term;
  const MatrixXd Z = preactivations(net, data.X);
  r.min_kink_distance = Z.cwiseAbs().minCoeff();
  {
    const VectorXd xn = data.X.rowwise().norm();
    const VectorXd wn = net.W.rowwise().norm();
    const MatrixXd thr = kink_tol * ((xn * wn.transpose()).rowwise() + net.b.cwiseAbs().transpose());
    r.kink_pairs = static_cast<int>((Z.array().abs() <= thr.array()).count());
  }
  for (Eigen::Index i = 0; i < net.width(); ++i)
    if (net.W.row(i).norm() > 0 && (Z.col(i).array() > 0).any()) ++r.active_neurons;
  // The same quantities at the limit point (pairs within kink_tol of their kink sit on it).
  if (kink_tol > 0) {
    const hessian::EigenResult ls = sharpness(net, data, norm, options, kink_tol);
    r.lambda_max_snapped = ls.value;
    r.lambda_snapped_converged = ls.converged;
    r.lambda_gauss_newton_snapped = gauss_newton_lambda_max(net, data.X, norm, kink_tol);
    r.weighted_norm_snapped = weighted_norm(net, data.X, kink_tol);
  } else {
    r.lambda_max_snapped = r.lambda_max;
    r.lambda_snapped_converged = r.lambda_converged;
    r.lambda_gauss_newton_snapped = r.lambda_gauss_newton;
    r.weighted_norm_snapped = r.weighted_norm;
  }
  r.sharpness_ratio_snapped = eta * r.lambda_max_snapped / 2.0;
  r.lambda_bound_snapped = r.lambda_max_snapped / 2.0 - 0.5;
  return r;
}

}  // namespace gdlab::relu_stability
