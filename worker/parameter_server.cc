#include "worker/parameter_server.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "common/errors.h"
#include "common/random.h"

namespace gdlab::ps {

// ---- helpers ---------------------------------------------------------------------------------------

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double draw_latency_ms(const Options& o, int worker, std::int64_t push_index) {
  const LatencyModel& l = o.latency;
  if (l.kind == LatencyModel::Kind::None) return 0.0;
  Rng rng(derive_seed(o.seed, static_cast<std::uint64_t>(worker), 0, static_cast<std::uint64_t>(push_index)));
  switch (l.kind) {
    case LatencyModel::Kind::Constant: return l.a_ms;
    case LatencyModel::Kind::Uniform: return rng.uniform(l.a_ms, l.b_ms);
    case LatencyModel::Kind::Exponential: {
      double u = rng.uniform();
      while (u <= 0.0) u = rng.uniform();
      return -l.a_ms * std::log(u);
    }
    case LatencyModel::Kind::SlowWorker: return worker == l.slow_worker ? l.a_ms : 0.0;
    default: return 0.0;
  }
}

Waiter::Waiter(std::chrono::milliseconds timeout, std::chrono::microseconds yield_window, const char* who,
               int yield_every)
    : timeout_(timeout),
      yield_window_(yield_window),
      who_(who),
      last_(std::chrono::steady_clock::now()),
      backoff_(std::chrono::microseconds(20), std::chrono::microseconds(1000)),
      yield_every_(std::max(yield_every, 1)) {}

void Waiter::idle(bool may_sleep) {
  const auto now = std::chrono::steady_clock::now();
  const auto quiet = now - last_;
  if (quiet > timeout_)
    throw TransportError(std::string("parameter server: ") + who_ + " heard nothing for " +
                         std::to_string(timeout_.count()) + " ms");
  if (quiet < yield_window_ || !may_sleep) {
    if (++empty_polls_ >= yield_every_) {
      empty_polls_ = 0;
      std::this_thread::yield();
    }
    return;
  }
  ++sleeps_;
  backoff_.sleep();
}

void Waiter::reset() {
  last_ = std::chrono::steady_clock::now();
  backoff_.reset();
}

// ---- the engine ------------------------------------------------------------------------------------

std::int64_t serve(ServerLink& link, const Options& options, VectorXd& w, const ApplyFn& apply, const AfterFn& after,
                   const ApplyIntoFn& apply_into, const ResumePoint* resume, ServerPosition* position) {
  const int k = options.workers;
  if (k < 1) throw Error("parameter server: needs at least one worker");
  const bool round_robin = options.order == Order::RoundRobin;
  if (round_robin && options.staleness_bound >= 0)
    throw Error("parameter server: a staleness bound cannot be combined with the round-robin order");
  const Eigen::Index dim = w.size();
  std::int64_t version = resume ? resume->position.version : 0;
  std::int64_t applied = version;
  std::vector<std::int64_t> read_version(static_cast<size_t>(k + 1), -1);  // -1: no gradient in flight
  // Resumed: the version each (fresh) worker's first pull is answered with; -1 once answered.
  std::vector<std::int64_t> resumed_hold(static_cast<size_t>(k + 1), -1);
  if (resume) {
    if (resume->position.held.size() != static_cast<size_t>(k + 1))
      throw Error("parameter server: the checkpoint is for " + std::to_string(resume->position.held.size() - 1) +
                  " workers, the run has " + std::to_string(k));
    for (int i = 1; i <= k; ++i) {
      const std::int64_t v = resume->position.held[static_cast<size_t>(i)];
      if (v >= 0 && v < version && resume->weights_at && resume->weights_at(v) != nullptr)
        resumed_hold[static_cast<size_t>(i)] = v;
    }
  }
  std::deque<int> waiting_pulls;
  std::vector<char> stopped(static_cast<size_t>(k + 1), 0);
  int stopped_count = 0;
  bool finished = options.updates <= 0;
  int next_in_turn = resume ? resume->position.next_in_turn : 1;  // RoundRobin: whose message is taken next
  if (next_in_turn < 1 || next_in_turn > k) throw Error("parameter server: next worker in turn out of range");
  // Out-of-place updates: the current weights live in the link's send buffers ("versioned
  // snapshots"); w is written back at the end.
  const double* current = nullptr;
  if (apply_into) {
    if (double* b = link.weights_buffer(version, nullptr)) {
      Eigen::Map<VectorXd>(b, dim) = w;
      current = b;
    }
  }
  auto weights = [&]() -> Eigen::Ref<const VectorXd> {
    if (current) return Eigen::Map<const VectorXd>(current, dim);
    return w;
  };

  // SSP gate (stale-synchronous parallel with an exact bound): a pull is answered only if, with
  // m gradients in flight, max_i(version - read_i) + m <= S. Then every gradient is applied with
  // staleness <= S, and no gradient ever waits at the server.
  auto may_answer = [&] {
    if (options.staleness_bound < 0) return true;
    std::int64_t oldest = 0, in_flight = 0;
    for (int i = 1; i <= k; ++i)
      if (read_version[static_cast<size_t>(i)] >= 0) {
        ++in_flight;
        oldest = std::max(oldest, version - read_version[static_cast<size_t>(i)]);
      }
    return oldest + in_flight <= options.staleness_bound;
  };
  auto answer_pull = [&](int worker) {
    if (finished) {
      link.send_stop(worker);
      stopped[static_cast<size_t>(worker)] = 1;
      ++stopped_count;
      return;
    }
    read_version[static_cast<size_t>(worker)] = version;
    link.send_weights(worker, version, weights());
  };
  auto serve_waiting = [&] {
    while (!waiting_pulls.empty() && (finished || may_answer())) {
      const int worker = waiting_pulls.front();
      waiting_pulls.pop_front();
      answer_pull(worker);
    }
  };

  Waiter waiter(options.peer_timeout, options.yield_window, "the server", link.yield_every());
  try {
    int worker = 0;
    Header h;
    const double* gradient = nullptr;
    while (stopped_count < k) {
      const int only = round_robin && !finished ? next_in_turn : 0;
      while (!link.poll(only, worker, h, gradient)) waiter.idle(!waiter.past_yield_window() || !link.sends_pending());
      waiter.reset();
      if (worker < 1 || worker > k || stopped[static_cast<size_t>(worker)])
        throw TransportError("parameter server: message from an unexpected worker " + std::to_string(worker));
      if (round_robin) next_in_turn = next_in_turn % k + 1;
      if (h.type == MessageType::Push) {
        if (read_version[static_cast<size_t>(worker)] != h.version)
          throw TransportError("parameter server: worker " + std::to_string(worker) + " pushed a gradient of version " +
                               std::to_string(h.version) + " but read version " +
                               std::to_string(read_version[static_cast<size_t>(worker)]));
        read_version[static_cast<size_t>(worker)] = -1;
        if (!finished) {
          Update u;
          u.index = applied;
          u.worker = worker;
          u.version_read = h.version;
          u.version_applied = version;
          u.staleness = version - h.version;
          u.latency_ms = static_cast<double>(now_ns() - h.sent_ns) * 1e-6;
          u.injected_ms = h.injected_ms;
          if (current) {
            double* next = link.weights_buffer(version + 1, current);
            apply_into(u, Eigen::Map<const VectorXd>(gradient, dim), Eigen::Map<const VectorXd>(current, dim),
                       Eigen::Map<VectorXd>(next, dim));
            current = next;
          } else {
            apply(u, Eigen::Map<const VectorXd>(gradient, dim), w);
          }
          ++version;
          ++applied;
          if (position) {
            position->version = version;
            position->held = read_version;
            position->next_in_turn = next_in_turn;
          }
          if (!after(u, weights()) || applied >= options.updates) finished = true;
        }
      } else if (h.type != MessageType::Pull) {
        throw TransportError("parameter server: unexpected message type at the server");
      } else if (resumed_hold[static_cast<size_t>(worker)] >= 0 && !finished) {
        // A resumed run: the worker's first pull gets the weights it held at the checkpoint.
        const std::int64_t v = resumed_hold[static_cast<size_t>(worker)];
        resumed_hold[static_cast<size_t>(worker)] = -1;
        read_version[static_cast<size_t>(worker)] = v;
        link.send_weights(worker, v, *resume->weights_at(v));
        continue;
      }
      // A push carries the worker's next pull: answered at once, or held by the SSP gate (oldest first).
      waiting_pulls.push_back(worker);
      serve_waiting();
    }
  } catch (...) {
    // Release the workers before failing, so none waits for its timeout.
    for (int i = 1; i <= k; ++i)
      if (!stopped[static_cast<size_t>(i)]) {
        try {
          link.send_stop(i);
        } catch (...) {
        }
      }
    if (current) w = Eigen::Map<const VectorXd>(current, dim);
    link.close(false);
    throw;
  }
  if (current) w = Eigen::Map<const VectorXd>(current, dim);
  link.close(true);
  return applied;
}

void work(WorkerLink& link, const Options& options, int worker, const GradientFn& gradient) {
  Waiter waiter(options.peer_timeout, options.yield_window, "a worker", link.yield_every());
  std::int64_t pushes = 0;
  try {
    Header pull;
    pull.type = MessageType::Pull;
    pull.worker = worker;
    link.send_pull(pull);
    Header h;
    while (true) {
      while (!link.poll(h)) waiter.idle(!waiter.past_yield_window() || !link.sends_pending());
      waiter.reset();
      if (h.type == MessageType::Stop) break;
      if (h.type != MessageType::Weights) throw TransportError("parameter server: unexpected message type at a worker");
      Header push;
      push.type = MessageType::Push;
      push.worker = worker;
      push.version = h.version;
      {
        Eigen::Map<VectorXd> g = link.gradient_buffer();
        gradient(link.weights(), g);
      }
      push.sent_ns = now_ns();
      push.injected_ms = draw_latency_ms(options, worker, options.first_push_index + pushes++);
      if (push.injected_ms > 0)
        std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(push.injected_ms));
      link.send_push(push);
    }
  } catch (...) {
    link.close(false);
    throw;
  }
  link.close(true);
}

// ---- the links over a Transport --------------------------------------------------------------------

namespace {

std::string encode(const Header& h, const double* payload, Eigen::Index n) {
  std::string out(sizeof(Header) + static_cast<size_t>(n) * sizeof(double), '\0');
  std::memcpy(out.data(), &h, sizeof(Header));
  if (n > 0) std::memcpy(out.data() + sizeof(Header), payload, static_cast<size_t>(n) * sizeof(double));
  return out;
}

Header decode_header(const Message& m) {
  if (m.payload.size() < sizeof(Header)) throw TransportError("parameter server: truncated message");
  Header h;
  std::memcpy(&h, m.payload.data(), sizeof(Header));
  return h;
}

class TransportServerLink : public ServerLink {
 public:
  TransportServerLink(Transport& group, int workers, Eigen::Index dim)
      : t_(group),
        k_(workers),
        dim_(dim),
        pending_(static_cast<size_t>(workers + 1)),
        gradient_(static_cast<size_t>(workers + 1), VectorXd(dim)) {
    if (group.size() != workers + 1)
      throw Error("parameter server: group of " + std::to_string(group.size()) + " ranks for " +
                  std::to_string(workers) + " workers");
  }

  bool poll(int only, int& worker, Header& header, const double*& gradient) override {
    while (auto m = t_.poll()) {
      if (m->source < 1 || m->source > k_) throw TransportError("parameter server: message from unexpected rank");
      pending_[static_cast<size_t>(m->source)].push_back(std::move(*m));
    }
    int chosen = 0;
    if (only > 0) {
      if (!pending_[static_cast<size_t>(only)].empty()) chosen = only;
    } else {
      for (int i = 1; i <= k_ && chosen == 0; ++i) {
        const int j = (last_ + i - 1) % k_ + 1;
        if (!pending_[static_cast<size_t>(j)].empty()) chosen = j;
      }
    }
    if (chosen == 0) return false;
    last_ = chosen;
    const Message m = std::move(pending_[static_cast<size_t>(chosen)].front());
    pending_[static_cast<size_t>(chosen)].pop_front();
    header = decode_header(m);
    worker = chosen;
    gradient = nullptr;
    const size_t bytes = m.payload.size() - sizeof(Header);
    if (header.type == MessageType::Push) {
      if (bytes != static_cast<size_t>(dim_) * sizeof(double))
        throw TransportError("parameter server: a push of " + std::to_string(bytes) + " bytes for " +
                             std::to_string(dim_) + " parameters");
      VectorXd& g = gradient_[static_cast<size_t>(chosen)];
      if (bytes > 0) std::memcpy(g.data(), m.payload.data() + sizeof(Header), bytes);
      gradient = g.data();
    } else if (bytes != 0) {
      throw TransportError("parameter server: a pull with a payload");
    }
    return true;
  }

  void send_weights(int worker, std::int64_t version, Eigen::Ref<const VectorXd> w) override {
    Header h;
    h.type = MessageType::Weights;
    h.version = version;
    t_.send(worker, encode(h, w.data(), w.size()));
  }

  void send_stop(int worker) override {
    Header h;
    h.type = MessageType::Stop;
    t_.send(worker, encode(h, nullptr, 0));
  }

  void close(bool) override {}

 private:
  Transport& t_;
  int k_;
  Eigen::Index dim_;
  int last_ = 0;
  std::vector<std::deque<Message>> pending_;
  std::vector<VectorXd> gradient_;
};

class TransportWorkerLink : public WorkerLink {
 public:
  explicit TransportWorkerLink(Transport& group) : t_(group) {}

  void send_pull(const Header& header) override { t_.send(0, encode(header, nullptr, 0)); }

  bool poll(Header& header) override {
    auto m = t_.poll();
    if (!m) return false;
    if (m->source != 0) throw TransportError("parameter server: a worker got a message from another worker");
    header = decode_header(*m);
    if (header.type == MessageType::Weights) {
      const size_t bytes = m->payload.size() - sizeof(Header);
      if (bytes % sizeof(double) != 0) throw TransportError("parameter server: weights of a partial double");
      const Eigen::Index dim = static_cast<Eigen::Index>(bytes / sizeof(double));
      w_.resize(dim);
      g_.resize(dim);
      if (bytes > 0) std::memcpy(w_.data(), m->payload.data() + sizeof(Header), bytes);
    }
    return true;
  }

  Eigen::Map<const VectorXd> weights() const override { return {w_.data(), w_.size()}; }
  Eigen::Map<VectorXd> gradient_buffer() override { return {g_.data(), g_.size()}; }
  void send_push(const Header& header) override { t_.send(0, encode(header, g_.data(), g_.size())); }
  void close(bool) override {}

 private:
  Transport& t_;
  VectorXd w_, g_;
};

}  // namespace

std::unique_ptr<ServerLink> make_transport_server_link(Transport& group, int workers, Eigen::Index dim) {
  return std::make_unique<TransportServerLink>(group, workers, dim);
}

std::unique_ptr<WorkerLink> make_transport_worker_link(Transport& group) {
  return std::make_unique<TransportWorkerLink>(group);
}

std::int64_t run_server_over_transport(Transport& group, const Options& options, VectorXd& w, const ApplyFn& apply,
                                       const AfterFn& after, const ResumePoint* resume, ServerPosition* position) {
  auto link = make_transport_server_link(group, options.workers, w.size());
  return serve(*link, options, w, apply, after, nullptr, resume, position);
}

void run_worker_over_transport(Transport& group, const Options& options, int worker, const GradientFn& gradient) {
  auto link = make_transport_worker_link(group);
  work(*link, options, worker, gradient);
}

}  // namespace gdlab::ps
