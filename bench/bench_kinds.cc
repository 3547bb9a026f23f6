// Hot loops of the experiment kinds that are slower per step than the foundation's GD
// (bench/bench_gd.cc, separable::run_gd), driven through their numerics APIs (issue 5):
//
//  * loss_tails (worker/numerics/loss_tails.h): fixed-step GD for the poly-exponential tails
//    ν ∈ {0.5, 1, 2} (fast paths) and ν = 1.5 (general ν, std::pow), the polynomial tails
//    k ∈ {1, 2}, the exponential and logistic losses, and the normalised steps NGD-√ and
//    NGD-const with the exponential loss. One item = one GD step.
//  * sgd_separable (worker/numerics/sgd_separable.h): minibatch SGD with B ∈ {1, 4, 8} and both
//    samplers, logistic loss. One item = one EPOCH (N/B minibatch steps, N gradient terms).
//  * lexicographic_margin (worker/numerics/lexicographic_margin.h): GD on a depth-2 diagonal net
//    and on the ensemble of depths {1, 2}. One item = one GD step.
//  * init_shape (worker/numerics/init_shape.h): GD on the regression problem of the example
//    campaign (d = 60, N = 15), diagonal net and single neuron. One item = one GD step.
//
// Data: planted2 with d = 5, N = 40, seed 1 (separable.md §0.8), as in bench_gd and in the
// examples/ campaigns, except init_shape, which needs an underdetermined regression problem.
// Step sizes follow examples/*.textproto. Every benchmark runs `state.range(0)` steps (epochs)
// from the kind's initial point per iteration, so the rate is the mean over the first steps of
// a run; the loss_tails and lexicographic ones are run at two lengths to show whether the rate
// depends on the regime (margins below or above 1, underflowing weights).
// Numbers and commands: docs/performance.md, "Per-step cost of the other kinds".
#include <benchmark/benchmark.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "worker/numerics/init_shape.h"
#include "worker/numerics/lexicographic_margin.h"
#include "worker/numerics/loss_tails.h"
#include "worker/numerics/separable.h"
#include "worker/numerics/sgd_separable.h"

namespace {

using gdlab::separable::MatrixXd;
using gdlab::separable::VectorXd;

struct Planted {
  MatrixXd Xt;
  double sigma_max_sq;
  double max_sq_norm;
};

const Planted& planted() {
  static const Planted p = [] {
    const gdlab::separable::Planted planted = gdlab::separable::make_planted2(5, 40, 1);
    Planted out;
    out.Xt = planted.data.absorbed();
    const double s = gdlab::separable::sigma_max(out.Xt);
    out.sigma_max_sq = s * s;
    out.max_sq_norm = out.Xt.rowwise().squaredNorm().maxCoeff();
    return out;
  }();
  return p;
}

// ---- loss_tails -----------------------------------------------------------------------------------

namespace lt = gdlab::loss_tails;

void run_tails(benchmark::State& state, const lt::TailGdOptions& base) {
  const Planted& p = planted();
  lt::TailGdOptions opt = base;
  opt.steps = state.range(0);
  for (auto _ : state) {
    VectorXd w = lt::run_tail_gd(p.Xt, opt, {}, nullptr);
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * opt.steps);
  state.SetLabel("items = GD steps");
}

// T3.1 of examples/loss_tails.textproto: lr 1/σ_max².
void BM_TailsPolyExp(benchmark::State& state, double nu) {
  lt::TailGdOptions opt;
  opt.loss = {lt::Tail::PolyExponential, nu};
  opt.lr = 1.0 / planted().sigma_max_sq;
  run_tails(state, opt);
}
// T3.2: lr 0.25/max‖x̃‖².
void BM_TailsPolynomial(benchmark::State& state, double k) {
  lt::TailGdOptions opt;
  opt.loss = {lt::Tail::Polynomial, k};
  opt.lr = 0.25 / planted().max_sq_norm;
  run_tails(state, opt);
}
// Exponential and logistic through loss_tails (scalar std::exp), at separable_gd's usual steps.
void BM_TailsExponential(benchmark::State& state) {
  lt::TailGdOptions opt;
  opt.loss = {lt::Tail::Exponential, 1.0};
  opt.lr = 1.0 / planted().sigma_max_sq;
  run_tails(state, opt);
}
void BM_TailsLogistic(benchmark::State& state) {
  lt::TailGdOptions opt;
  opt.loss = {lt::Tail::Logistic, 1.0};
  opt.lr = 4.0 / planted().sigma_max_sq;
  run_tails(state, opt);
}
// T3.3: exponential loss, η₀ = 4/max‖x̃‖².
void BM_TailsNgd(benchmark::State& state, lt::Schedule schedule) {
  lt::TailGdOptions opt;
  opt.loss = {lt::Tail::Exponential, 1.0};
  opt.schedule = schedule;
  opt.lr = 4.0 / planted().max_sq_norm;
  run_tails(state, opt);
}

BENCHMARK_CAPTURE(BM_TailsPolyExp, nu0_5, 0.5)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsPolyExp, nu1, 1.0)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsPolyExp, nu2, 2.0)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsPolyExp, nu1_5_pow, 1.5)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsPolynomial, k1, 1.0)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsPolynomial, k2, 2.0)->Arg(1'000)->Arg(100'000);
BENCHMARK(BM_TailsExponential)->Arg(1'000)->Arg(100'000);
BENCHMARK(BM_TailsLogistic)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsNgd, sqrt, lt::Schedule::NgdSqrt)->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_TailsNgd, const, lt::Schedule::NgdConst)->Arg(1'000)->Arg(100'000);

// ---- sgd_separable ----------------------------------------------------------------------------------

namespace sgd = gdlab::sgd_separable;

// examples/sgd_separable.textproto: mean form, lr 1/max‖x̃‖², i.e. per-sample step c = 1/max‖x̃‖².
// Args: (epochs, B).
void BM_SgdEpoch(benchmark::State& state, sgd::Sampler sampler) {
  const Planted& p = planted();
  sgd::SgdOptions opt;
  opt.loss = gdlab::separable::Loss::Logistic;
  opt.sampler = sampler;
  opt.batch_size = static_cast<int>(state.range(1));
  opt.per_sample_step = sgd::step_sizes(sgd::MinibatchForm::Mean, 1.0 / p.max_sq_norm, opt.batch_size, false)
                            .per_sample_actual;
  opt.epochs = state.range(0);
  opt.seed = 2019;
  for (auto _ : state) {
    VectorXd w = sgd::run_sgd(p.Xt, opt, {}, nullptr);
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * opt.epochs);
  state.SetLabel("items = epochs of N=40");
}
BENCHMARK_CAPTURE(BM_SgdEpoch, reshuffle, sgd::Sampler::Reshuffle)
    ->ArgNames({"epochs", "B"})
    ->Args({1'000, 1})
    ->Args({1'000, 4})
    ->Args({1'000, 8});
BENCHMARK_CAPTURE(BM_SgdEpoch, with_replacement, sgd::Sampler::WithReplacement)
    ->ArgNames({"epochs", "B"})
    ->Args({1'000, 1})
    ->Args({1'000, 4})
    ->Args({1'000, 8});

// ---- lexicographic_margin -----------------------------------------------------------------------------

namespace lex = gdlab::lexicographic;

// examples/lexicographic_margin.textproto (t42_gd, t43_ensemble_gd): logistic loss, θ(0) = 0.5 in
// every entry. The examples use the 3-point edge data with lr 0.05; here on planted2 the step is
// 0.05/σ_max² to stay stable.
void BM_LexGd(benchmark::State& state, std::vector<int> depths) {
  const Planted& p = planted();
  lex::Ensemble model;
  model.dim = static_cast<int>(p.Xt.cols());
  model.depths = std::move(depths);
  const VectorXd theta0 = VectorXd::Constant(model.num_params(), 0.5);
  const double lr = 0.05 / p.sigma_max_sq;
  const std::int64_t steps = state.range(0);
  for (auto _ : state) {
    VectorXd theta = lex::run_gd(p.Xt, model, gdlab::separable::Loss::Logistic, lr, steps, theta0, {}, nullptr);
    benchmark::DoNotOptimize(theta.data());
  }
  state.SetItemsProcessed(state.iterations() * steps);
  state.SetLabel("items = GD steps");
}
BENCHMARK_CAPTURE(BM_LexGd, depth2, std::vector<int>{2})->Arg(1'000)->Arg(100'000);
BENCHMARK_CAPTURE(BM_LexGd, depths1_2, std::vector<int>{1, 2})->Arg(1'000)->Arg(100'000);

// ---- init_shape --------------------------------------------------------------------------------------

namespace is = gdlab::init_shape;

// examples/init_shape.textproto (t51_diagonal_gd, t52_neuron_gd): d = 60, N = 15, α = 0.1,
// s = 0.5; lr 1e-2 (diagonal) and 1e-3 (neuron). stop_mse = 0, so every run takes max_steps.
void BM_InitShapeGd(benchmark::State& state, is::Model model) {
  const is::RegressionData data = is::make_gaussian_regression(60, 15, 5, 0.0, 0, 1993);
  const is::FlowProblem problem(model, data.X, data.y);
  const is::ScaleShapeInit init = is::scale_shape_init(0.1, 0.5);
  VectorXd theta0;
  if (model == is::Model::Diagonal) {
    theta0 = is::diagonal_initial_state(VectorXd::Constant(60, init.u0), VectorXd::Constant(60, init.v0));
  } else {
    VectorXd w0 = VectorXd::LinSpaced(60, -1.0, 1.0);
    w0 *= init.u0 / w0.norm();
    theta0 = is::neuron_initial_state(w0, init.v0);
  }
  is::FlowOptions opt;
  opt.method = is::Method::GradientDescent;
  opt.lr = model == is::Model::Diagonal ? 1e-2 : 1e-3;
  opt.max_steps = state.range(0);
  opt.stop_mse = 0.0;
  for (auto _ : state) {
    const is::FlowResult res = is::run_flow(problem, theta0, opt, [](std::int64_t, double, const VectorXd&, double) {});
    benchmark::DoNotOptimize(res.theta.data());
  }
  state.SetItemsProcessed(state.iterations() * opt.max_steps);
  state.SetLabel("items = GD steps (d=60, N=15)");
}
BENCHMARK_CAPTURE(BM_InitShapeGd, diagonal, is::Model::Diagonal)->Arg(10'000);
BENCHMARK_CAPTURE(BM_InitShapeGd, neuron, is::Model::SingleNeuron)->Arg(10'000);

}  // namespace

BENCHMARK_MAIN();
