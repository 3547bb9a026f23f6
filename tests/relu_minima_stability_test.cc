// Tests of the kind `relu_minima_stability` (Nacson et al., ICLR 2023; stability.md §2.11): the unit
// values of the weight function g (T2.1), the identity and inequality chain of §2.7 on random θ with
// its negative controls (T2.2), rescaling invariance (T2.3), GD training with assertions (i)–(iv)
// (T2.4), the univariate consistency check (T2.5), the exact HVP against finite differences, the IDX
// loader on small generated files, and bad input.
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/campaign.h"
#include "common/errors.h"
#include "common/experiment_kind.h"
#include "common/random.h"
#include "proto/gdlab.pb.h"
#include "tests/kind_test_util.h"
#include "worker/numerics/hessian.h"
#include "worker/numerics/relu_minima_stability.h"

namespace gdlab {
namespace {

namespace rs = relu_stability;
using rs::MatrixXd;
using rs::VectorXd;

// ---- helpers ------------------------------------------------------------------------------------

class MemoryRecorder : public Recorder {
 public:
  struct Series {
    std::vector<std::int64_t> step;
    std::vector<double> value;
  };
  void append(std::string_view path, std::int64_t step, double, std::span<const double> value) override {
    auto& s = series[std::string(path)];
    if (!s.step.empty()) {
      EXPECT_GT(step, s.step.back()) << path << ": steps must increase";
    }
    s.step.push_back(step);
    s.value.push_back(value[0]);
  }
  void put_array(std::string_view path, std::vector<std::uint64_t> shape, std::span<const double> data) override {
    arrays[std::string(path)] = std::vector<double>(data.begin(), data.end());
    shapes[std::string(path)] = shape;
  }
  void set_attribute(std::string_view name, std::string_view text) override { text_attrs[std::string(name)] = text; }
  void set_attribute(std::string_view name, double value) override { number_attrs[std::string(name)] = value; }

  double scalar(const std::string& name) const { return arrays.at("parameters/" + name).at(0); }

  std::map<std::string, Series> series;
  std::map<std::string, std::vector<double>> arrays;
  std::map<std::string, std::vector<std::uint64_t>> shapes;
  std::map<std::string, std::string> text_attrs;
  std::map<std::string, double> number_attrs;
};

const ExperimentKind& kind() { return test_util::find_kind("relu_minima_stability"); }

TaskContext context(std::int64_t task = 0) {
  TaskContext c;
  c.campaign_seed = 2023;
  c.task_id = task;
  return c;
}

MemoryRecorder run_spec(const pb::ReluMinimaStabilitySpec& spec, std::int64_t task = 0) {
  MemoryRecorder rec;
  kind().prepare(spec, context(task))->run(rec);
  return rec;
}

// The spec's T2.4 setup: n = 20, d = 2, k = 40, full-batch GD, up to 40k steps.
pb::ReluMinimaStabilitySpec t24_spec(double eta) {
  pb::ReluMinimaStabilitySpec s;
  auto* syn = s.mutable_dataset()->mutable_synthetic();
  syn->set_n(20);
  syn->set_d(2);
  syn->set_seed(7);
  s.set_init_seed(8);
  s.set_width(40);
  s.set_lr(eta);
  s.set_max_steps(40000);
  s.set_sharpness_every(2000);
  s.set_record_every(500);
  return s;
}

std::string spec_error_field(const pb::ReluMinimaStabilitySpec& s) {
  return test_util::spec_error_field(kind(), s, context(), "<no SpecError>");
}

VectorXd random_vector(Rng& rng, Eigen::Index n) {
  VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = rng.normal();
  return v;
}

// ---- T2.1: unit values of g ---------------------------------------------------------------------

TEST(ReluWeightFunction, UnitValuesOnMinusOneZeroOne) {
  VectorXd xs(3);
  xs << -1, 0, 1;
  const double tol = 1e-12;
  EXPECT_NEAR(rs::g_plus_1d(xs, 0.0), std::sqrt(2.0) / 9.0, tol);
  EXPECT_NEAR(rs::g_minus_1d(xs, 0.0), std::sqrt(2.0) / 9.0, tol);
  EXPECT_NEAR(rs::g_1d(xs, 0.0), 0.1571348402636772, tol);
  EXPECT_NEAR(rs::g_plus_1d(xs, 0.5), 0.0785674201318386, tol);
  EXPECT_NEAR(rs::g_minus_1d(xs, 0.5), (4.0 / 9.0) * std::sqrt(1.25), tol);
  EXPECT_NEAR(rs::g_minus_1d(xs, 0.5), 0.4969039949999533, tol);
  EXPECT_NEAR(rs::g_1d(xs, 0.5), 0.0785674201318386, tol);
  EXPECT_EQ(rs::g_1d(xs, 1.5), 0.0);
  EXPECT_EQ(rs::g_1d(xs, -1.5), 0.0);

  // The multivariate evaluator on the same data (d = 1, u = ±1).
  const MatrixXd X = xs;
  const VectorXd plus = VectorXd::Constant(1, 1.0), minus = VectorXd::Constant(1, -1.0);
  EXPECT_NEAR(rs::weight_g(X, plus, 0.0), std::sqrt(2.0) / 9.0, tol);
  EXPECT_NEAR(rs::weight_g(X, plus, 0.5), 0.0785674201318386, tol);
  EXPECT_NEAR(rs::weight_g(X, minus, -0.5), 0.0785674201318386, tol);
  EXPECT_NEAR(rs::g_tilde(X, minus, -0.5), 0.4969039949999533, tol);  // g̃(−u,−t) is g⁻
  EXPECT_EQ(rs::weight_g(X, plus, 1.5), 0.0);
  EXPECT_EQ(rs::weight_g(X, plus, -1.5), 0.0);
}

TEST(ReluWeightFunction, SymmetricUnderUTMinusUMinusT) {
  const rs::RegressionData data = rs::make_synthetic(20, 3, 5);
  Rng rng(6);
  for (int i = 0; i < 200; ++i) {
    VectorXd u = random_vector(rng, 3);
    u /= u.norm();
    const double t = rng.uniform(-2.0, 2.0);
    EXPECT_EQ(rs::weight_g(data.X, u, t), rs::weight_g(data.X, -u, -t));
    EXPECT_GE(rs::weight_g(data.X, u, t), 0.0);
  }
  // g vanishes when the hyperplane misses the data (§2.5).
  const VectorXd e1 = VectorXd::Unit(3, 0);
  EXPECT_EQ(rs::weight_g(data.X, e1, data.X.col(0).maxCoeff() + 1e-9), 0.0);
  EXPECT_EQ(rs::weight_g(data.X, e1, data.X.col(0).minCoeff() - 1e-9), 0.0);
}

// ---- T2.2: identity and inequality chain on random θ --------------------------------------------

TEST(ReluIdentityChain, HoldsOnHundredRandomParameters) {
  const rs::RegressionData data = rs::make_synthetic(20, 3, 22);
  // W ~ N(0, 1/d), b ~ 0.1N, v ~ N(0, 1/k): v_std = 1 (v ~ v_std·N/√k).
  const rs::InitOptions init{1.0, 0.1, 1.0};
  double worst_identity = 0;
  for (int draw = 0; draw < 100; ++draw) {
    const rs::Network net = rs::init_network(50, 3, init, 1000 + static_cast<std::uint64_t>(draw));
    const rs::IdentityChain ch = rs::identity_chain(net, data.X);
    if (draw == 0)
      std::printf("  T2.2 one draw: %.2f >= %.2f = %.2f >= %.2f >= %.2f (prototype: 23.73 >= 17.88 >= 4.40 >= 3.11)\n",
                  ch.lambda_gn, ch.mean_gradient_sq, ch.one_plus_sum_ab, ch.one_plus_2_sum_vwg_tilde,
                  ch.one_plus_2_weighted_norm);
    const double rel = std::abs(ch.mean_gradient_sq - ch.one_plus_sum_ab) / ch.one_plus_sum_ab;
    worst_identity = std::max(worst_identity, rel);
    EXPECT_LE(rel, 1e-10) << "draw " << draw;
    EXPECT_GE(ch.lambda_gn, ch.mean_gradient_sq * (1 - 1e-12)) << "draw " << draw;
    EXPECT_GE(ch.one_plus_sum_ab, ch.one_plus_2_sum_vwg_tilde) << "draw " << draw;
    EXPECT_GE(ch.one_plus_2_sum_vwg_tilde, ch.one_plus_2_weighted_norm) << "draw " << draw;
    EXPECT_GT(ch.one_plus_2_weighted_norm, 1.0) << "draw " << draw;
  }
  std::printf("  T2.2 worst relative identity error over 100 draws: %.2e\n", worst_identity);
}

TEST(ReluIdentityChain, NegativeControlWithoutOutputBiasBreaksTheIdentity) {
  const rs::RegressionData data = rs::make_synthetic(20, 3, 22);
  rs::Network net = rs::init_network(50, 3, {1.0, 0.1, 1.0}, 1000);
  net.output_bias = false;
  const rs::IdentityChain ch = rs::identity_chain(net, data.X);
  // The "1" (∂f/∂c) is missing from ‖Φ1‖²/n².
  EXPECT_NEAR(ch.one_plus_sum_ab - ch.mean_gradient_sq, 1.0, 1e-10);
  EXPECT_GT(std::abs(ch.mean_gradient_sq - ch.one_plus_sum_ab) / ch.one_plus_sum_ab, 1e-3);
}

TEST(ReluIdentityChain, LambdaGaussNewtonMatchesDenseAndLanczos) {
  const rs::RegressionData data = rs::make_synthetic(20, 3, 23);
  const rs::Network net = rs::init_network(50, 3, {1.0, 0.1, 1.0}, 77);
  const MatrixXd Phi = rs::jacobian(net, data.X);
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(Phi * Phi.transpose() / 20.0, Eigen::EigenvaluesOnly);
  const double dense = es.eigenvalues()(es.eigenvalues().size() - 1);
  EXPECT_NEAR(rs::gauss_newton_lambda_max(net, data.X, rs::LossNormalization::HalfMean), dense, 1e-10 * dense);
  const hessian::HessianVectorProduct gn = [&](const VectorXd& v, VectorXd& out) {
    out = Phi * (Phi.transpose() * v) / 20.0;
  };
  Rng rng(3);
  EXPECT_NEAR(hessian::lanczos_max(gn, random_vector(rng, Phi.rows())).value, dense, 1e-9 * dense);
  // Negative control of T2.2: the 1/n loss doubles every Hessian.
  EXPECT_NEAR(rs::gauss_newton_lambda_max(net, data.X, rs::LossNormalization::Mean), 2 * dense, 1e-10 * dense);
}

// ---- the exact gradient and HVP -----------------------------------------------------------------

TEST(ReluHessian, GradientAndHvpMatchFiniteDifferences) {
  const rs::RegressionData data = rs::make_synthetic(20, 2, 31);
  const rs::Network net = rs::init_network(10, 2, {1.0, 0.3, 1.0}, 32);
  const VectorXd theta = net.pack();
  // Stay clear of kinks: the minimum |z| is large compared with the finite-difference steps.
  ASSERT_GT(rs::preactivations(net, data.X).cwiseAbs().minCoeff(), 1e-4);
  auto loss_at = [&](const VectorXd& th) {
    rs::Network m = net;
    m.unpack(th);
    return rs::loss(m, data, rs::LossNormalization::HalfMean);
  };
  const VectorXd g = rs::gradient(net, data, rs::LossNormalization::HalfMean);
  for (Eigen::Index i = 0; i < theta.size(); ++i) {
    const double h = 1e-6;
    VectorXd tp = theta, tm = theta;
    tp(i) += h;
    tm(i) -= h;
    EXPECT_NEAR(g(i), (loss_at(tp) - loss_at(tm)) / (2 * h), 1e-7) << "component " << i;
  }
  const hessian::GradientFunction grad = [&](const VectorXd& th, VectorXd& out) {
    rs::Network m = net;
    m.unpack(th);
    out = rs::gradient(m, data, rs::LossNormalization::HalfMean);
  };
  const auto fd = hessian::finite_difference_hvp(grad, theta, 1e-7);
  const auto exact = rs::hvp_callback(net, data, rs::LossNormalization::HalfMean);
  Rng rng(33);
  for (int k = 0; k < 5; ++k) {
    const VectorXd v = random_vector(rng, theta.size());
    VectorXd a, b;
    exact(v, a);
    fd(v, b);
    EXPECT_LE((a - b).norm(), 1e-6 * a.norm()) << k;
  }
  // Dense Hessian from the exact HVP: symmetric, and its top eigenvalue is what Lanczos returns.
  const Eigen::Index p = theta.size();
  MatrixXd H(p, p);
  for (Eigen::Index i = 0; i < p; ++i) {
    VectorXd col;
    exact(VectorXd::Unit(p, i), col);
    H.col(i) = col;
  }
  EXPECT_LE((H - H.transpose()).norm(), 1e-12 * H.norm());
  Eigen::SelfAdjointEigenSolver<MatrixXd> es(H, Eigen::EigenvaluesOnly);
  rs::SharpnessOptions so;
  so.start_seed = 9;
  EXPECT_NEAR(rs::sharpness(net, data, rs::LossNormalization::HalfMean, so).value, es.eigenvalues()(p - 1),
              1e-9 * std::abs(es.eigenvalues()(p - 1)));
}

// ---- T2.3: rescaling invariance -----------------------------------------------------------------

TEST(ReluRescaling, FunctionAndWeightedNormInvariantLambdaChanges) {
  const rs::RegressionData data = rs::make_synthetic(20, 3, 41);
  Rng rng(42);
  for (int draw = 0; draw < 20; ++draw) {
    const rs::Network net = rs::init_network(50, 3, {1.0, 0.1, 1.0}, 500 + static_cast<std::uint64_t>(draw));
    rs::Network scaled = net;
    for (Eigen::Index i = 0; i < net.width(); ++i) {
      const double alpha = std::exp(rng.uniform(std::log(0.1), std::log(10.0)));
      scaled.W.row(i) *= alpha;
      scaled.b(i) *= alpha;
      scaled.v(i) /= alpha;
    }
    const VectorXd f0 = rs::predict(net, data.X), f1 = rs::predict(scaled, data.X);
    EXPECT_LE((f0 - f1).cwiseAbs().maxCoeff(), 1e-12 * std::max(1.0, f0.cwiseAbs().maxCoeff())) << draw;
    const double w0 = rs::weighted_norm(net, data.X), w1 = rs::weighted_norm(scaled, data.X);
    EXPECT_NEAR(w0, w1, 1e-12 * std::max(1.0, w0)) << draw;
    const double l0 = rs::gauss_newton_lambda_max(net, data.X, rs::LossNormalization::HalfMean);
    const double l1 = rs::gauss_newton_lambda_max(scaled, data.X, rs::LossNormalization::HalfMean);
    EXPECT_GT(std::abs(l1 - l0), 1e-3 * l0) << draw;        // λ_max is not invariant
    EXPECT_GE(l1, 1.0 + 2.0 * w1) << draw;                  // but the T2.2 lower bound still holds
  }
}

// ---- T2.5: univariate consistency ---------------------------------------------------------------

TEST(ReluUnivariate, MultivariateEvaluatorEqualsDirectKnotSum) {
  const rs::RegressionData data = rs::make_synthetic(20, 1, 51);
  const VectorXd xs = data.X.col(0);
  for (int draw = 0; draw < 20; ++draw) {
    const rs::Network net = rs::init_network(30, 1, {1.0, 0.5, 1.0}, 600 + static_cast<std::uint64_t>(draw));
    const double multi = rs::weighted_norm(net, data.X);
    const double direct = rs::univariate_weighted_norm_direct(net, xs);
    EXPECT_GT(multi, 0.0);
    EXPECT_NEAR(multi, direct, 1e-12 * std::max(1.0, direct)) << draw;
  }
}

// ---- T2.4: GD training, stability and the bound -------------------------------------------------

TEST(ReluTraining, GdAssertionsOneToFour) {
  const std::vector<double> etas = {0.05, 0.1, 0.2, 0.3, 0.4};
  std::map<double, double> weighted;
  int interpolated = 0;
  for (std::size_t i = 0; i < etas.size(); ++i) {
    const double eta = etas[i];
    const MemoryRecorder rec = run_spec(t24_spec(eta), static_cast<std::int64_t>(i));
    const double wn = rec.scalar("weighted_norm"), ratio = rec.scalar("sharpness_ratio");
    const double loss = rec.scalar("final_loss"), resid = rec.scalar("residual_term");
    const bool interp = rec.scalar("interpolated") == 1.0;
    std::printf("  T2.4 eta=%.2f steps=%6.0f L=%.1e %s eta*lam/2=%.4f (raw %.4f) sum|a|g=%.4f (raw %.4f) "
                "lam/2-1/2=%.3f 1/eta-1/2=%.2f kinks=%g\n",
                eta, rec.scalar("steps"), loss, interp ? "interp" : "      ", ratio, rec.scalar("sharpness_ratio_raw"), wn,
                rec.scalar("weighted_norm_raw"), rec.scalar("lambda_bound"), 1 / eta - 0.5, rec.scalar("kink_pairs"));
    EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
    EXPECT_EQ(rec.scalar("diverged"), 0.0);
    // (i) at interpolation (the stays-small rule fired): η·λ_max/2 ≤ 1 + 1e-3.
    if (interp) {
      ++interpolated;
      EXPECT_LT(loss, 1e-10);
      EXPECT_LE(ratio, 1.0 + 1e-3) << "eta " << eta;
      // (iii) Σ|a|g ≤ λ_max/2 − ½ + 1e-9 (λ_max in its Gauss–Newton form at interpolation).
      EXPECT_LE(wn, rec.scalar("lambda_gauss_newton") / 2 - 0.5 + 1e-9) << "eta " << eta;
      EXPECT_NEAR(rec.scalar("lambda_gauss_newton"), rec.scalar("lambda_max"), 1e-3 * rec.scalar("lambda_max"));
    }
    // (ii) Σ|a|g ≤ 1/η − ½ + (R+1)√(2L).
    EXPECT_LE(wn, 1 / eta - 0.5 + resid + 1e-9) << "eta " << eta;
    weighted[eta] = wn;
    // The trajectory records with their theory overlay.
    ASSERT_TRUE(rec.series.count("observables/loss"));
    ASSERT_TRUE(rec.series.count("observables/sharpness_ratio"));
    ASSERT_TRUE(rec.series.count("theory/weighted_norm"));
    EXPECT_EQ(rec.series.at("observables/sharpness_ratio").step.back(), static_cast<std::int64_t>(rec.scalar("steps")));
    EXPECT_DOUBLE_EQ(rec.series.at("theory/weighted_norm").value.back(), 1 / eta - 0.5);
    EXPECT_NEAR(rec.series.at("observables/sharpness_ratio").value.back(), ratio, 1e-8);
  }
  // The stays-small rule fired somewhere, so (i) and (iii) were exercised.
  EXPECT_GE(interpolated, 2);
  // (iv) Σ|a|g is non-increasing over the EoS-regime η ∈ {0.2, 0.3, 0.4}.
  EXPECT_GE(weighted[0.2], weighted[0.3]);
  EXPECT_GE(weighted[0.3], weighted[0.4]);
}

TEST(ReluTraining, NegativeControlMeanLossDoublesTheSharpness) {
  // Train with the paper's loss at η = 0.4 (T2.4), then measure the Hessian of the 1/n loss: every
  // Hessian doubles and "η·λ_max ≤ 2 at convergence" fails by 2×.
  rs::RegressionData data = rs::make_synthetic(20, 2, 7);
  rs::Network net = rs::init_network(40, 2, {}, 8);
  rs::TrainOptions o;
  o.eta = 0.4;
  const rs::TrainResult res = rs::train(net, data, o, 1000000, nullptr);
  ASSERT_TRUE(res.interpolated);
  rs::SharpnessOptions so;
  const double half = rs::sharpness(net, data, rs::LossNormalization::HalfMean, so, 1e-6).value;
  const double mean = rs::sharpness(net, data, rs::LossNormalization::Mean, so, 1e-6).value;
  EXPECT_NEAR(mean, 2 * half, 1e-6 * half);
  EXPECT_LE(o.eta * half / 2, 1 + 1e-3);
  EXPECT_GT(o.eta * mean / 2, 1.8);
}

TEST(ReluTraining, SgdRunsAndRecords) {
  pb::ReluMinimaStabilitySpec s = t24_spec(0.05);
  s.set_optimizer(pb::ReluMinimaStabilitySpec::OPTIMIZER_SGD);
  s.set_batch_size(5);
  s.set_max_steps(4000);
  const MemoryRecorder rec = run_spec(s);
  EXPECT_EQ(rec.text_attrs.at("optimizer"), "sgd");
  EXPECT_EQ(rec.number_attrs.at("batch_size"), 5.0);
  const auto& loss = rec.series.at("observables/loss");
  EXPECT_LT(loss.value.back(), 0.5 * loss.value.front());
  EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
  // Same seeds, same result.
  const MemoryRecorder again = run_spec(s);
  EXPECT_EQ(again.arrays.at("parameters/W"), rec.arrays.at("parameters/W"));
}

TEST(ReluTraining, DivergentStepRecordsDivergence) {
  const MemoryRecorder rec = run_spec(t24_spec(1.5));
  EXPECT_EQ(rec.scalar("diverged"), 1.0);
  EXPECT_EQ(rec.text_attrs.at("train_status"), "diverged");
  EXPECT_NE(rec.text_attrs.at("verdict_detail").find("diverged"), std::string::npos);
}

// ---- IDX files ----------------------------------------------------------------------------------

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("relu_idx_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(dir_);
    // 40 images of 6×6 pixels; labels cycle 0..4; pixel (r, c) of image i = (7i + 3r + c) mod 256.
    std::vector<std::uint8_t> pixels(40 * 36), labels(40);
    for (int i = 0; i < 40; ++i) {
      labels[static_cast<size_t>(i)] = static_cast<std::uint8_t>(i % 5);
      for (int p = 0; p < 36; ++p)
        pixels[static_cast<size_t>(i * 36 + p)] = static_cast<std::uint8_t>((7 * i + 3 * (p / 6) + p % 6) % 256);
    }
    images_ = (dir_ / "images-idx3-ubyte").string();
    labels_ = (dir_ / "labels-idx1-ubyte").string();
    rs::write_idx_ubyte(images_, {40, 6, 6}, pixels);
    rs::write_idx_ubyte(labels_, {40}, labels);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  pb::ReluMinimaStabilitySpec spec() const {
    pb::ReluMinimaStabilitySpec s;
    auto* idx = s.mutable_dataset()->mutable_idx();
    idx->set_images(images_);
    idx->set_labels(labels_);
    idx->add_classes(1);
    idx->add_classes(3);
    idx->set_num_samples(10);
    s.set_width(8);
    s.set_lr(0.01);
    s.set_max_steps(300);
    s.set_sharpness_every(100);
    return s;
  }

  std::string error_of(const rs::IdxOptions& o) const {
    try {
      rs::load_idx(o);
    } catch (const InputError& e) {
      return e.what();
    }
    return "<no InputError>";
  }

  rs::IdxOptions options() const {
    rs::IdxOptions o;
    o.images_path = images_;
    o.labels_path = labels_;
    o.classes = {1, 3};
    o.num_samples = 10;
    return o;
  }

  std::filesystem::path dir_;
  std::string images_, labels_;
};

TEST_F(IdxFiles, LoadsClassSubsetAndRunsTheKind) {
  const rs::RegressionData data = rs::load_idx(options());
  ASSERT_EQ(data.X.rows(), 10);
  ASSERT_EQ(data.X.cols(), 36);
  // The first 10 images with label 1 or 3 are items 1, 3, 6, 8, 11, 13, 16, 18, 21, 23.
  const int items[10] = {1, 3, 6, 8, 11, 13, 16, 18, 21, 23};
  for (int r = 0; r < 10; ++r) {
    EXPECT_EQ(data.y(r), items[r] % 5 == 1 ? -1.0 : 1.0);
    EXPECT_DOUBLE_EQ(data.X(r, 7), ((7 * items[r] + 3 + 1) % 256) / 255.0);  // pixel (1, 1)
  }
  rs::IdxOptions lab = options();
  lab.target = rs::IdxTarget::Label;
  lab.selection = rs::IdxSelection::Random;
  lab.seed = 4;
  const rs::RegressionData random = rs::load_idx(lab);
  for (int r = 0; r < 10; ++r) EXPECT_TRUE(random.y(r) == 1.0 || random.y(r) == 3.0);

  const MemoryRecorder rec = run_spec(spec());
  EXPECT_EQ(rec.shapes.at("parameters/X"), (std::vector<std::uint64_t>{10, 36}));
  EXPECT_EQ(rec.text_attrs.at("verdict"), "pass") << rec.text_attrs.at("verdict_detail");
  EXPECT_GT(rec.scalar("weighted_norm"), 0.0);
  EXPECT_GE(rec.scalar("lambda_max") / 2 - 0.5 + rec.scalar("residual_term"), rec.scalar("weighted_norm"));
}

TEST_F(IdxFiles, BadFilesNameTheFile) {
  // Wrong magic: the labels file given as images (1 dimension instead of 3).
  rs::IdxOptions o = options();
  o.images_path = labels_;
  std::string e = error_of(o);
  EXPECT_NE(e.find(labels_), std::string::npos) << e;
  EXPECT_NE(e.find("magic"), std::string::npos) << e;
  // Wrong magic: a float IDX file (type byte 0x0D).
  const std::string floats = (dir_ / "floats").string();
  {
    std::ofstream f(floats, std::ios::binary);
    const char header[] = {0, 0, 0x0D, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    f.write(header, sizeof header);
  }
  o = options();
  o.images_path = floats;
  e = error_of(o);
  EXPECT_NE(e.find(floats), std::string::npos) << e;
  EXPECT_NE(e.find("0x00000D03"), std::string::npos) << e;
  // Truncated data.
  const std::string cut = (dir_ / "cut").string();
  std::filesystem::copy_file(images_, cut);
  std::filesystem::resize_file(cut, 16 + 40 * 36 - 5);
  o = options();
  o.images_path = cut;
  e = error_of(o);
  EXPECT_NE(e.find(cut), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  // Truncated header.
  std::filesystem::resize_file(cut, 6);
  e = error_of(o);
  EXPECT_NE(e.find("truncated IDX header"), std::string::npos) << e;
  // Missing file.
  o.images_path = (dir_ / "nope").string();
  e = error_of(o);
  EXPECT_NE(e.find(o.images_path), std::string::npos) << e;
  // Label count differs from the image count.
  const std::string short_labels = (dir_ / "short-labels").string();
  rs::write_idx_ubyte(short_labels, {39}, std::vector<std::uint8_t>(39, 1));
  o = options();
  o.labels_path = short_labels;
  e = error_of(o);
  EXPECT_NE(e.find(short_labels), std::string::npos) << e;
  // Too few samples of the class subset (8 images have label 1).
  o = options();
  o.classes = {1, 7};
  o.num_samples = 9;
  e = error_of(o);
  EXPECT_NE(e.find(labels_), std::string::npos) << e;
  EXPECT_NE(e.find("only 8 samples"), std::string::npos) << e;

  // Through the kind: InputError naming the file (not a SpecError).
  pb::ReluMinimaStabilitySpec s = spec();
  s.mutable_dataset()->mutable_idx()->set_images(cut);
  try {
    kind().prepare(s, context());
    ADD_FAILURE() << "no error";
  } catch (const SpecError& err) {
    ADD_FAILURE() << "SpecError instead of the loader's InputError: " << err.what();
  } catch (const InputError& err) {
    EXPECT_NE(std::string(err.what()).find(cut), std::string::npos) << err.what();
  }
}

TEST_F(IdxFiles, BadIdxSpecsNameTheField) {
  pb::ReluMinimaStabilitySpec s = spec();
  s.mutable_dataset()->mutable_idx()->clear_classes();
  EXPECT_EQ(spec_error_field(s), "dataset.idx.classes");
  s = spec();
  s.mutable_dataset()->mutable_idx()->add_classes(1);
  EXPECT_EQ(spec_error_field(s), "dataset.idx.classes");  // duplicate (and 3 classes for ±1)
  s = spec();
  s.mutable_dataset()->mutable_idx()->set_classes(0, 300);
  EXPECT_EQ(spec_error_field(s), "dataset.idx.classes");
  s = spec();
  s.mutable_dataset()->mutable_idx()->set_num_samples(0);
  EXPECT_EQ(spec_error_field(s), "dataset.idx.num_samples");
  s = spec();
  s.mutable_dataset()->mutable_idx()->clear_images();
  EXPECT_EQ(spec_error_field(s), "dataset.idx.images");
  s = spec();
  s.mutable_dataset()->mutable_idx()->clear_labels();
  EXPECT_EQ(spec_error_field(s), "dataset.idx.labels");
  s = spec();
  s.mutable_dataset()->mutable_idx()->set_pixel_scale(0);
  EXPECT_EQ(spec_error_field(s), "dataset.idx.pixel_scale");
  // A file outside the allowed input directories (a served coordinator confines inputs).
  TaskContext confined = context();
  confined.allowed_input_dirs = {(dir_ / "elsewhere").string()};
  try {
    kind().prepare(spec(), confined);
    ADD_FAILURE() << "no error";
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), "dataset.idx.images");
  }
}

// ---- bad input ----------------------------------------------------------------------------------

TEST(ReluBadInput, SpecErrorsNameTheField) {
  const pb::ReluMinimaStabilitySpec good = t24_spec(0.1);
  EXPECT_NO_THROW(kind().prepare(good, context()));
  auto with = [&](auto mutate) {
    pb::ReluMinimaStabilitySpec s = good;
    mutate(s);
    return spec_error_field(s);
  };
  using S = pb::ReluMinimaStabilitySpec;
  EXPECT_EQ(with([](S& s) { s.set_lr(0); }), "lr");
  EXPECT_EQ(with([](S& s) { s.set_lr(-0.1); }), "lr");
  EXPECT_EQ(with([](S& s) { s.set_lr(NAN); }), "lr");
  EXPECT_EQ(with([](S& s) { s.clear_lr(); }), "lr");
  EXPECT_EQ(with([](S& s) { s.set_width(0); }), "width");
  EXPECT_EQ(with([](S& s) { s.set_max_steps(0); }), "max_steps");
  EXPECT_EQ(with([](S& s) { s.set_interp_loss(0); }), "interp_loss");
  EXPECT_EQ(with([](S& s) { s.set_hold_steps(-1); }), "hold_steps");
  EXPECT_EQ(with([](S& s) { s.set_record_every(0); }), "record_every");
  EXPECT_EQ(with([](S& s) { s.set_sharpness_every(0); }), "sharpness_every");
  EXPECT_EQ(with([](S& s) { s.set_kink_tol(-1); }), "kink_tol");
  EXPECT_EQ(with([](S& s) { s.clear_dataset(); }), "dataset");
  EXPECT_EQ(with([](S& s) { s.mutable_dataset()->mutable_synthetic()->set_n(0); }), "dataset.synthetic.n");
  EXPECT_EQ(with([](S& s) { s.mutable_dataset()->mutable_synthetic()->set_d(0); }), "dataset.synthetic.d");
  // Each within its range, but 1e11 values together (800 GB drawn by prepare): rejected.
  EXPECT_EQ(with([](S& s) {
              s.mutable_dataset()->mutable_synthetic()->set_n(1'000'000);
              s.mutable_dataset()->mutable_synthetic()->set_d(100'000);
            }),
            "dataset.synthetic.n");
  EXPECT_EQ(with([](S& s) { s.set_loss_normalization(S::LOSS_MEAN); }), "loss_normalization");
  EXPECT_EQ(with([](S& s) { s.set_output_bias(false); }), "output_bias");
  EXPECT_EQ(with([](S& s) { s.set_batch_size(5); }), "batch_size");  // with GD
  EXPECT_EQ(with([](S& s) { s.set_optimizer(S::OPTIMIZER_SGD); }), "batch_size");
  EXPECT_EQ(with([](S& s) {
              s.set_optimizer(S::OPTIMIZER_SGD);
              s.set_batch_size(21);
            }),
            "batch_size");
  EXPECT_EQ(with([](S& s) { s.mutable_init()->set_w_scale(0); }), "init.w_scale");
  EXPECT_EQ(with([](S& s) { s.mutable_init()->set_v_std(-1); }), "init.v_std");
  EXPECT_EQ(with([](S& s) { s.mutable_lanczos()->set_rel_tol(0); }), "lanczos.rel_tol");
  EXPECT_EQ(with([](S& s) { s.mutable_lanczos()->set_max_iterations(0); }), "lanczos.max_iterations");
  EXPECT_EQ(with([](S& s) { s.mutable_tolerance()->set_stability(-1); }), "tolerance.stability");
  EXPECT_EQ(with([](S& s) {
              auto* p = s.mutable_dataset()->mutable_points();
              p->set_d(2);
              p->add_x(1);
              p->add_y(1);
            }),
            "dataset.points.x");
  EXPECT_EQ(with([](S& s) { s.mutable_dataset()->mutable_points(); }), "dataset.points.y");
}

TEST(ReluBadInput, CampaignErrorNamesFileLineAndField) {
  const std::string text = R"(schema_version: 1
name: "relu"
experiments {
  name: "sweep"
  relu_minima_stability {
    dataset { synthetic { n: 20 d: 2 } }
    width: 0
    lr: 0.1
  }
}
)";
  const std::string msg = test_util::campaign_error(text, "relu.textproto");
  ASSERT_FALSE(msg.empty()) << "no error";
  EXPECT_NE(msg.find("relu.textproto:7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("relu_minima_stability.width"), std::string::npos) << msg;
}

TEST(ReluExample, ExampleCampaignLoads) {
  const std::filesystem::path example =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "examples" / "relu_minima_stability.textproto";
  const Campaign c = load_campaign(example.string());
  EXPECT_GE(c.tasks.size(), 5u);
  for (const auto& t : c.tasks) EXPECT_EQ(t.kind, "relu_minima_stability");
}

}  // namespace
}  // namespace gdlab
