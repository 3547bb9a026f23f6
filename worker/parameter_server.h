// A parameter server over a Transport (in the spirit of ps-lite: transport below, parameter-server
// logic here, the optimiser and the problem above, in the kind). Group rank 0 is the server; group
// ranks 1..k are workers. Workers pull the weights with their version, compute a gradient, push
// it with the version they read; the server applies each gradient on arrival (pure async), or
// holds a push whose staleness would exceed the bound S (stale-synchronous parallel). Delays are
// real message passing, measured, plus an optional seeded latency injected before each push
// (platform.md §9: netem is not available, so injection lives in the application).
#pragma once

#include <Eigen/Dense>

#include <chrono>
#include <cstdint>
#include <functional>

#include "common/transport.h"

namespace gdlab::ps {

using Eigen::VectorXd;

struct LatencyModel {
  enum class Kind { None, Constant, Uniform, Exponential, SlowWorker };
  Kind kind = Kind::None;
  double a_ms = 0;        // Constant: the delay; Uniform: low; Exponential: mean; SlowWorker: its delay
  double b_ms = 0;        // Uniform: high
  int slow_worker = 1;    // SlowWorker: which worker (1..k) is slow
};

struct Options {
  int workers = 1;               // k
  std::int64_t updates = 0;      // the server stops after this many applied gradients
  int staleness_bound = -1;      // S >= 0 for SSP; -1 for pure async
  LatencyModel latency;
  std::uint64_t seed = 0;        // latency draws: derive_seed(seed, worker, 0, push index)
  std::chrono::milliseconds peer_timeout{10000};  // a silent peer fails the task after this
};

// One applied gradient, as the server logs it.
struct Update {
  std::int64_t index = 0;            // 0, 1, ... in the order applied
  int worker = 0;                    // 1..k
  std::int64_t version_read = 0;     // version of the weights the gradient was computed at
  std::int64_t version_applied = 0;  // version of the weights it was applied to
  std::int64_t staleness = 0;        // version_applied - version_read
  double latency_ms = 0;             // push sent -> received, measured (injected delay included)
  double injected_ms = 0;            // the injected part
};

// Server side. `apply(update, gradient, w)` updates w in place (the kind's optimiser);
// `after(update, w)` sees every update (logging, recording) and returns false to stop early
// (e.g. divergence). Returns the number of updates applied. Throws TransportError when a worker
// stays silent longer than peer_timeout.
std::int64_t run_server(Transport& group, const Options& options, VectorXd& w,
                        const std::function<void(const Update&, const VectorXd& gradient, VectorXd& w)>& apply,
                        const std::function<bool(const Update&, const VectorXd& w)>& after);

// Worker side (group rank `worker` in 1..k): until the server says stop, pull the weights,
// compute `gradient(w, g)`, wait the injected latency, push.
void run_worker(Transport& group, const Options& options, int worker,
                const std::function<void(const VectorXd& w, VectorXd& gradient)>& gradient);

}  // namespace gdlab::ps
