// A parameter server (in the spirit of ps-lite: the transport below, the parameter-server logic
// here, the optimiser and the problem above, in the kind). Group rank 0 is the server; group ranks
// 1..k are workers. A worker pulls the weights with their version, computes a gradient, and pushes
// it with the version it read; the push also asks for the next weights, so one update costs two
// messages (push in, weights out). The server applies each gradient on arrival (pure async), or
// holds the answer to a pull whose staleness could exceed the bound S (stale-synchronous
// parallel), or, with Order::RoundRobin, accepts messages in cyclic worker order only (the forced
// round robin of stability.md §1.9.3 `mpi_ordered`: staleness exactly min(t, k − 1)). Delays are
// real message passing, measured, plus an optional seeded latency injected before each push
// (platform.md §9: netem is not available, so injection lives in the application).
//
// The engine (serve / work) talks to a ServerLink / WorkerLink. Two links exist:
//  - over any Transport (raw binary messages; in-process tests, and the fallback), in
//    parameter_server.cc;
//  - straight over MPI on a private communicator: persistent receives into preallocated buffers,
//    weights sent with MPI_Isend from versioned snapshot buffers, no allocation per message, in
//    worker/parameter_server_mpi.h (header-only: gdlab_numerics, which compiles this engine, has
//    no MPI include path). That header's run_server/run_worker pick the MPI link when the group
//    transport is an MpiTransport.
#pragma once

#include <Eigen/Dense>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

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

// The order in which the server accepts the workers' messages.
enum class Order {
  Free,        // on arrival (pure async / SSP)
  RoundRobin,  // worker 1, 2, ..., k, 1, 2, ...: the first round are the initial pulls (all answered
               // with version 0), then pushes; a push is answered right after it is applied, so the
               // staleness of update t is exactly min(t, k − 1) (§1.3, §1.9.3)
};

struct Options {
  int workers = 1;               // k
  std::int64_t updates = 0;      // the server stops after this many applied gradients
  int staleness_bound = -1;      // S >= 0 for SSP; -1 for pure async (must be -1 with RoundRobin)
  Order order = Order::Free;
  LatencyModel latency;
  std::uint64_t seed = 0;        // latency draws: derive_seed(seed, worker, 0, push index)
  std::chrono::milliseconds peer_timeout{10000};  // a silent peer fails the task after this
  // Waiting (see Waiter): poll and yield the core for this long after the last arrival, then sleep.
  std::chrono::microseconds yield_window{300};
  // Use the direct MPI link when the transport is an MpiTransport (worker/parameter_server_mpi.h).
  bool direct_mpi = true;
  // Workers: the index of their first push in the latency draws (a run resumed from a checkpoint
  // at update t starts at t, so its draws are not those of the pushes before the checkpoint).
  std::int64_t first_push_index = 0;
};

// What a server resumed from a checkpoint continues from, and what a checkpoint records: the
// version of the current weights (= updates applied), the version each worker holds (index
// 1..k; -1: none, i.e. its pull is pending and is answered with the current weights), and, under
// Order::RoundRobin, the worker whose message is taken next. The fresh workers of a resumed run
// pull first; each is answered with the weights of the version it held (weights_at; the current
// weights if those are not kept), so under the round-robin order every later update is the one
// of the uninterrupted run, bit for bit.
struct ServerPosition {
  std::int64_t version = 0;
  std::vector<std::int64_t> held;  // size k + 1; held[0] unused
  int next_in_turn = 1;
};
struct ResumePoint {
  ServerPosition position;
  std::function<const VectorXd*(std::int64_t version)> weights_at;
};

// One applied gradient, as the server logs it.
struct Update {
  std::int64_t index = 0;            // 0, 1, ... in the order applied
  int worker = 0;                    // 1..k
  std::int64_t version_read = 0;     // version of the weights the gradient was computed at
  std::int64_t version_applied = 0;  // version of the weights it was applied to
  std::int64_t staleness = 0;        // version_applied - version_read
  double latency_ms = 0;             // push sent -> taken by the server, measured (injected delay included)
  double injected_ms = 0;            // the injected part
};

// `apply(update, gradient, w)` updates w in place (the kind's optimiser); `gradient` views the
// received buffer (no copy). Optionally `apply_into(update, gradient, w, w_next)` writes the new
// weights out of place: over the MPI link w_next is then the snapshot buffer the weights are sent
// from, which saves a copy of w per update (P = 1e5: 20 µs of the server's ~100 µs). `after(update,
// w)` sees every update (logging, recording) and returns false to stop early (e.g. divergence).
// `gradient(w, g)` (worker) writes ∇ at w into g, which views the outgoing message buffer.
using ApplyFn = std::function<void(const Update&, Eigen::Ref<const VectorXd> gradient, VectorXd& w)>;
using ApplyIntoFn = std::function<void(const Update&, Eigen::Ref<const VectorXd> gradient, Eigen::Ref<const VectorXd> w,
                                       Eigen::Ref<VectorXd> w_next)>;
using AfterFn = std::function<bool(const Update&, Eigen::Ref<const VectorXd> w)>;
using GradientFn = std::function<void(Eigen::Ref<const VectorXd> w, Eigen::Ref<VectorXd> gradient)>;

// ---- wire format -----------------------------------------------------------------------------------

enum class MessageType : std::int32_t { Pull = 1, Weights = 2, Push = 3, Stop = 4 };

// Every message starts with this header; Weights and Push carry the P doubles right after it (64
// bytes in, so the payload stays 64-byte aligned in the preallocated buffers).
struct Header {
  MessageType type = MessageType::Pull;
  std::int32_t worker = 0;
  std::int64_t version = 0;  // Weights: the version sent; Push: the version the gradient was computed at
  std::int64_t sent_ns = 0;  // Push: system clock at the start of the push (before the injected delay)
  double injected_ms = 0;    // Push: the injected delay
  std::int64_t reserved[4] = {0, 0, 0, 0};
};
static_assert(sizeof(Header) == 64, "the payload must start 64 bytes into a message");
constexpr std::size_t kHeaderDoubles = sizeof(Header) / sizeof(double);

// ---- waiting without spinning ----------------------------------------------------------------------

// Waiting for a message (platform.md §2: no spinning idle ranks). For `yield_window` after the last
// arrival the rank keeps polling and yields its core every `yield_every`-th empty poll
// (sched_yield: with 4 ranks on 2 cores every exchange needs the peer to run, and a yield hands it
// the core at once, where even a short sleep costs tens of µs); after that quiet period it sleeps
// with common/transport.h's Backoff (20 µs doubling to 1 ms), so a rank whose peers compute for
// long uses next to no CPU. Throws TransportError when nothing arrived for `timeout`.
//
// yield_every: 1 for the Transport link; 16 for the MPI link, because OpenMPI's progress engine
// already yields inside every empty MPI_Test when the node is oversubscribed (mpi_yield_when_idle):
// a second sched_yield per poll doubled the context switches (P = 10, 1 + 3 ranks on 2 cores:
// 2.5·10⁵ → 3.7·10⁵ updates/s without it, docs/performance.md); every 16th keeps an MPI without
// that behaviour from spinning a shared core for a whole time slice.
class Waiter {
 public:
  Waiter(std::chrono::milliseconds timeout, std::chrono::microseconds yield_window, const char* who,
         int yield_every = 1);
  // Nothing arrived: yield, or sleep once the quiet period is over (unless `may_sleep` is false: a
  // send of this rank is still in flight and may need this rank's progress calls); throws after
  // the timeout.
  void idle(bool may_sleep = true);
  void reset();  // something arrived
  // True once nothing arrived for the yield window (the next idle() would sleep).
  bool past_yield_window() const { return std::chrono::steady_clock::now() - last_ >= yield_window_; }
  std::int64_t sleeps() const { return sleeps_; }

 private:
  std::chrono::milliseconds timeout_;
  std::chrono::microseconds yield_window_;
  const char* who_;
  std::chrono::steady_clock::time_point last_;
  Backoff backoff_;
  std::int64_t sleeps_ = 0;
  int yield_every_ = 1;
  int empty_polls_ = 0;
};

// ---- links -----------------------------------------------------------------------------------------

// The server's side of the channel to its k workers.
class ServerLink {
 public:
  virtual ~ServerLink() = default;
  // Takes the next message from worker `only` (1..k), or from any worker (`only` = 0, fairly: in
  // cyclic order after the last one taken). Never blocks; false if none is there. For a Push,
  // `gradient` points at its P doubles, valid until the next send to that worker.
  virtual bool poll(int only, int& worker, Header& header, const double*& gradient) = 0;
  // Sends the weights w (version `version`) to `worker`, and gets ready for its next message.
  virtual void send_weights(int worker, std::int64_t version, Eigen::Ref<const VectorXd> w) = 0;
  // Out-of-place updates: a buffer that no send in flight reads (and that is not `current`, the
  // buffer of the current weights, or null), to be filled with the weights of `version`, which
  // send_weights then sends without copying; nullptr when the link has none (the engine then
  // applies in place).
  virtual double* weights_buffer(std::int64_t version, const double* current) {
    (void)version;
    (void)current;
    return nullptr;
  }
  virtual void send_stop(int worker) = 0;
  // True while a send may still need this rank's progress calls (the waiting rank then yields
  // instead of sleeping: without OpenMPI's single-copy mechanism a large message travels in
  // fragments that the sender pushes from inside its MPI calls).
  virtual bool sends_pending() { return false; }
  // The Waiter's yield cadence for this link (see Waiter).
  virtual int yield_every() const { return 1; }
  // Completes every pending operation (ok), or abandons them after the failure of the task.
  virtual void close(bool ok) = 0;
};

// A worker's side of the channel to the server.
class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  virtual void send_pull(const Header& header) = 0;
  // Weights or Stop from the server; never blocks. For Weights, weights() views them until send_push.
  virtual bool poll(Header& header) = 0;
  virtual Eigen::Map<const VectorXd> weights() const = 0;
  // The outgoing gradient buffer (P doubles), writable once the previous push completed.
  virtual Eigen::Map<VectorXd> gradient_buffer() = 0;
  // Sends the gradient buffer with `header` (and gets ready for the answer).
  virtual void send_push(const Header& header) = 0;
  virtual bool sends_pending() { return false; }  // as ServerLink::sends_pending
  virtual int yield_every() const { return 1; }    // as ServerLink::yield_every
  virtual void close(bool ok) = 0;
};

// ---- the engine ------------------------------------------------------------------------------------

// Server side, over any link: serves until every worker has been told to stop. Returns the number
// of updates applied. Throws TransportError when a worker stays silent longer than peer_timeout
// (after telling every worker to stop, so none waits for its own timeout).
//
// `resume` (optional): continue from a checkpoint (w must be the weights of resume->position.version).
// `position` (optional): kept up to date before every call of `after`, for checkpoints.
std::int64_t serve(ServerLink& link, const Options& options, VectorXd& w, const ApplyFn& apply, const AfterFn& after,
                   const ApplyIntoFn& apply_into = nullptr, const ResumePoint* resume = nullptr,
                   ServerPosition* position = nullptr);

// Worker side (worker number `worker` in 1..k): until the server says stop, take the weights,
// compute the gradient, wait the injected latency, push.
void work(WorkerLink& link, const Options& options, int worker, const GradientFn& gradient);

// The links over a Transport (raw binary messages; one message = Header + payload).
std::unique_ptr<ServerLink> make_transport_server_link(Transport& group, int workers, Eigen::Index dim);
std::unique_ptr<WorkerLink> make_transport_worker_link(Transport& group);

// serve / work over the Transport link.
std::int64_t run_server_over_transport(Transport& group, const Options& options, VectorXd& w, const ApplyFn& apply,
                                       const AfterFn& after, const ResumePoint* resume = nullptr,
                                       ServerPosition* position = nullptr);
void run_worker_over_transport(Transport& group, const Options& options, int worker, const GradientFn& gradient);

// The injected latency of push number `push_index` of `worker` (seeded, §9 of platform.md).
double draw_latency_ms(const Options& options, int worker, std::int64_t push_index);

// System clock in ns (latency stamps; the same clock on every rank of a node).
std::int64_t now_ns();

}  // namespace gdlab::ps
