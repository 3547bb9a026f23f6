// The parameter-server engine over the in-process transport: exact staleness with one worker,
// the SSP bound, the forced round-robin order (staleness exactly min(t, k − 1)), injected latency
// accounted for, a silent worker failing the server in time, a waiting server not spinning, and a
// group transport made through InProcNetwork::create_group. (The direct MPI link runs under mpirun:
// tests/scripts/async_mpi_test.sh and bench/ps_bench.)
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

#include "common/errors.h"
#include "common/transport_inproc.h"
#include "worker/parameter_server_mpi.h"

namespace gdlab {
namespace {

using Eigen::VectorXd;

struct PsRun {
  std::vector<ps::Update> updates;
  VectorXd w;
};

// Minimises f(w) = ½‖w‖² (gradient w) with step eta on k workers.
PsRun run_quadratic(const ps::Options& options, double eta, VectorXd w0) {
  InProcNetwork net(options.workers + 1);
  std::vector<std::thread> workers;
  for (int i = 1; i <= options.workers; ++i)
    workers.emplace_back([&, i] {
      ps::run_worker(net.endpoint(i), options, i, [](Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> g) { g = w; });
    });
  PsRun run;
  run.w = std::move(w0);
  ps::run_server(
      net.endpoint(0), options, run.w,
      [&](const ps::Update&, Eigen::Ref<const VectorXd> g, VectorXd& w) { w -= eta * g; },
      [&](const ps::Update& u, Eigen::Ref<const VectorXd>) {
        run.updates.push_back(u);
        return true;
      });
  for (auto& t : workers) t.join();
  return run;
}

TEST(ParameterServer, OneWorkerIsPlainSgdWithZeroStaleness) {
  ps::Options o;
  o.workers = 1;
  o.updates = 200;
  const PsRun run = run_quadratic(o, 0.1, VectorXd::Constant(3, 2.0));
  ASSERT_EQ(run.updates.size(), 200u);
  for (const auto& u : run.updates) {
    EXPECT_EQ(u.staleness, 0);
    EXPECT_EQ(u.version_applied, u.index);
  }
  // w_T = (1 - eta)^T w_0, computed the same way, bit for bit.
  VectorXd expect = VectorXd::Constant(3, 2.0);
  for (int t = 0; t < 200; ++t) expect -= 0.1 * expect;
  EXPECT_EQ(run.w, expect);
}

TEST(ParameterServer, AsyncStalenessIsAccountedAndBoundedBySsp) {
  ps::Options o;
  o.workers = 3;
  o.updates = 600;
  o.latency.kind = ps::LatencyModel::Kind::Uniform;
  o.latency.a_ms = 0.0;
  o.latency.b_ms = 0.3;
  o.seed = 5;
  const PsRun async_run = run_quadratic(o, 0.05, VectorXd::Constant(4, 1.0));
  ASSERT_EQ(async_run.updates.size(), 600u);
  for (const auto& u : async_run.updates) {
    EXPECT_EQ(u.staleness, u.version_applied - u.version_read);
    EXPECT_GE(u.staleness, 0);
    EXPECT_GE(u.latency_ms, u.injected_ms);
  }
  std::int64_t most = 0;
  for (const auto& u : async_run.updates) most = std::max(most, u.staleness);
  EXPECT_GE(most, 1) << "three free-running workers never produced a stale gradient";
  for (int bound : {0, 1}) {
    o.staleness_bound = bound;
    const PsRun ssp = run_quadratic(o, 0.05, VectorXd::Constant(4, 1.0));
    ASSERT_EQ(ssp.updates.size(), 600u);
    std::int64_t worst = 0;
    for (const auto& u : ssp.updates) worst = std::max(worst, u.staleness);
    EXPECT_LE(worst, bound) << "S = " << bound;
  }
}

TEST(ParameterServer, RoundRobinOrderGivesStalenessExactlyKMinusOne) {
  // §1.9.3 `mpi_ordered` / T1.3 check 1: whatever the timing (random injected latency, one slow
  // worker), update t is worker (t mod k) + 1's gradient, read at version max(t − k + 1, 0).
  for (int k : {1, 2, 4}) {
    ps::Options o;
    o.workers = k;
    o.updates = 240;
    o.order = ps::Order::RoundRobin;
    o.latency.kind = ps::LatencyModel::Kind::Uniform;
    o.latency.a_ms = 0.0;
    o.latency.b_ms = 0.2;
    o.seed = 9;
    const PsRun run = run_quadratic(o, 0.1, VectorXd::Constant(3, 1.0));
    ASSERT_EQ(run.updates.size(), 240u);
    for (const auto& u : run.updates) {
      EXPECT_EQ(u.worker, static_cast<int>(u.index % k) + 1) << "k = " << k << ", t = " << u.index;
      EXPECT_EQ(u.staleness, std::min<std::int64_t>(u.index, k - 1)) << "k = " << k << ", t = " << u.index;
      EXPECT_EQ(u.version_applied, u.index);
    }
  }
  ps::Options bad;
  bad.workers = 2;
  bad.updates = 10;
  bad.order = ps::Order::RoundRobin;
  bad.staleness_bound = 1;
  InProcNetwork net(3);
  VectorXd w = VectorXd::Ones(2);
  EXPECT_THROW(ps::run_server(
                   net.endpoint(0), bad, w, [](const ps::Update&, Eigen::Ref<const VectorXd>, VectorXd&) {},
                   [](const ps::Update&, Eigen::Ref<const VectorXd>) { return true; }),
               Error);
}

// A server stopped after update t_stop and resumed from the ServerPosition it reported there
// (issue 8 §2: parameter-server checkpoints) continues the uninterrupted round-robin run bit for
// bit: the fresh workers' first pulls are answered with the weights each held at the stop.
TEST(ParameterServer, RoundRobinRunResumedFromItsPositionIsTheUninterruptedRun) {
  const int k = 3;
  const std::int64_t total = 300, stop_after = 137;
  const VectorXd curvature = (VectorXd(3) << 1.0, 0.3, 2.0).finished();
  const double eta = 0.3;
  ps::Options o;
  o.workers = k;
  o.updates = total;
  o.order = ps::Order::RoundRobin;
  struct Leg {
    std::vector<ps::Update> updates;
    std::map<std::int64_t, VectorXd> versions;  // version -> weights
    ps::ServerPosition position;
    VectorXd w;
  };
  // Runs the server from (w, resume) until `until` updates were applied (or the end).
  auto run = [&](VectorXd w, const ps::ResumePoint* resume, std::int64_t until) {
    InProcNetwork net(k + 1);
    std::vector<std::thread> workers;
    for (int i = 1; i <= k; ++i)
      workers.emplace_back([&, i] {
        ps::run_worker(net.endpoint(i), o, i,
                       [&](Eigen::Ref<const VectorXd> x, Eigen::Ref<VectorXd> g) { g = curvature.cwiseProduct(x); });
      });
    Leg leg;
    leg.versions[resume ? resume->position.version : 0] = w;
    ps::run_server(
        net.endpoint(0), o, w, [&](const ps::Update&, Eigen::Ref<const VectorXd> g, VectorXd& x) { x -= eta * g; },
        [&](const ps::Update& u, Eigen::Ref<const VectorXd> x) {
          leg.updates.push_back(u);
          leg.versions[u.index + 1] = x;
          return u.index + 1 < until;
        },
        nullptr, resume, &leg.position);
    for (auto& t : workers) t.join();
    leg.w = w;
    return leg;
  };
  const VectorXd w0 = VectorXd::Constant(3, 1.0);
  const Leg reference = run(w0, nullptr, total);
  const Leg first = run(w0, nullptr, stop_after);
  ASSERT_EQ(first.updates.size(), static_cast<size_t>(stop_after));
  ASSERT_EQ(first.position.version, stop_after);
  // At the stop every worker but the one just applied holds an older version (round robin).
  int holding = 0;
  for (int i = 1; i <= k; ++i) holding += first.position.held[static_cast<size_t>(i)] >= 0;
  EXPECT_EQ(holding, k - 1);
  ps::ResumePoint resume{first.position, [&](std::int64_t v) -> const VectorXd* {
                           auto it = first.versions.find(v);
                           return it == first.versions.end() ? nullptr : &it->second;
                         }};
  const Leg second = run(first.w, &resume, total);
  ASSERT_EQ(second.updates.size(), static_cast<size_t>(total - stop_after));
  for (size_t j = 0; j < second.updates.size(); ++j) {
    const ps::Update& u = second.updates[j];
    const ps::Update& r = reference.updates[static_cast<size_t>(stop_after) + j];
    EXPECT_EQ(u.index, r.index);
    EXPECT_EQ(u.worker, r.worker);
    EXPECT_EQ(u.version_read, r.version_read);
  }
  ASSERT_EQ(second.w.size(), reference.w.size());
  EXPECT_EQ(0, std::memcmp(second.w.data(), reference.w.data(), sizeof(double) * 3)) << second.w.transpose() << " vs "
                                                                                       << reference.w.transpose();
}

TEST(ParameterServer, AWaitingServerDoesNotSpin) {
  // platform.md §2: while its only worker computes for 0.6 s, the server yields for the Waiter's
  // window and then sleeps; its CPU time stays a small fraction of the wall time.
  ps::Options o;
  o.workers = 1;
  o.updates = 3;
  InProcNetwork net(2);
  std::thread worker([&] {
    ps::run_worker(net.endpoint(1), o, 1, [](Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> g) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      g = w;
    });
  });
  auto thread_cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  VectorXd w = VectorXd::Ones(4);
  const double cpu0 = thread_cpu();
  const auto start = std::chrono::steady_clock::now();
  ps::run_server(
      net.endpoint(0), o, w, [](const ps::Update&, Eigen::Ref<const VectorXd> g, VectorXd& x) { x -= 0.1 * g; },
      [](const ps::Update&, Eigen::Ref<const VectorXd>) { return true; });
  const double cpu = thread_cpu() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  worker.join();
  std::printf("server waiting for a slow worker: %.4f s CPU over %.3f s wall (%.1f%%)\n", cpu, wall, 100 * cpu / wall);
  EXPECT_GE(wall, 0.55);
  EXPECT_LT(cpu, 0.05 * wall) << "the waiting server spins";
}

TEST(ParameterServer, InjectedLatencyIsMeasured) {
  ps::Options o;
  o.workers = 1;
  o.updates = 20;
  o.latency.kind = ps::LatencyModel::Kind::Constant;
  o.latency.a_ms = 2.0;
  const PsRun run = run_quadratic(o, 0.1, VectorXd::Constant(2, 1.0));
  for (const auto& u : run.updates) {
    EXPECT_EQ(u.injected_ms, 2.0);
    EXPECT_GE(u.latency_ms, 2.0);
  }
}

TEST(ParameterServer, SilentWorkerFailsTheServerWithinItsTimeout) {
  ps::Options o;
  o.workers = 2;
  o.updates = 100;
  o.peer_timeout = std::chrono::milliseconds(200);
  InProcNetwork net(3);
  std::atomic<bool> done{false};
  // Worker 1 works; worker 2 never says anything.
  std::thread worker([&] {
    try {
      ps::run_worker(net.endpoint(1), o, 1, [](Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> g) {
        g = w;
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // then too slow as well
      });
    } catch (const TransportError&) {
    }
    done = true;
  });
  VectorXd w = VectorXd::Ones(2);
  EXPECT_THROW(ps::run_server(
                   net.endpoint(0), o, w, [](const ps::Update&, Eigen::Ref<const VectorXd> g, VectorXd& x) { x -= g; },
                   [](const ps::Update&, Eigen::Ref<const VectorXd>) { return true; }),
               TransportError);
  worker.join();
  EXPECT_TRUE(done);
}

TEST(ParameterServer, GroupTransportsAreSeparateFromTheirParent) {
  InProcNetwork net(4);
  auto g2 = net.endpoint(2).create_group({2, 3});
  auto g3 = net.endpoint(3).create_group({2, 3});
  EXPECT_EQ(g2->rank(), 0);
  EXPECT_EQ(g3->rank(), 1);
  EXPECT_EQ(g3->size(), 2);
  g3->send(0, "hello");
  EXPECT_FALSE(net.endpoint(2).poll().has_value());  // not on the parent
  const auto m = g2->poll();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "hello");
  EXPECT_EQ(m->source, 1);
  EXPECT_THROW(net.endpoint(1).create_group({2, 3}), TransportError);
}

}  // namespace
}  // namespace gdlab
