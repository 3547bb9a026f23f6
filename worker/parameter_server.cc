#include "worker/parameter_server.h"

#include <cmath>
#include <cstring>
#include <deque>
#include <vector>

#include "common/errors.h"
#include "common/random.h"

namespace gdlab::ps {
namespace {

// Raw binary messages: the weights go as they are, with no per-value encoding, so that a
// P = 10 exchange costs microseconds (issue 4's updates/s targets).
enum class Type : std::uint8_t { Pull = 1, Weights = 2, Push = 3, Stop = 4 };

struct Header {
  Type type;
  std::uint8_t pad[3];
  std::int32_t worker;
  std::int64_t version;
  std::int64_t sent_ns;  // system clock at the start of the push (before the injected delay)
  double injected_ms;
};

std::string encode(const Header& h, const VectorXd* v) {
  const size_t n = v ? static_cast<size_t>(v->size()) : 0;
  std::string out(sizeof(Header) + n * sizeof(double), '\0');
  std::memcpy(out.data(), &h, sizeof(Header));
  if (n) std::memcpy(out.data() + sizeof(Header), v->data(), n * sizeof(double));
  return out;
}

Header decode(const Message& m, VectorXd* v, Eigen::Index dim) {
  if (m.payload.size() < sizeof(Header)) throw TransportError("parameter server: truncated message");
  Header h;
  std::memcpy(&h, m.payload.data(), sizeof(Header));
  const size_t bytes = m.payload.size() - sizeof(Header);
  if (v != nullptr && bytes > 0) {
    if (bytes != static_cast<size_t>(dim) * sizeof(double))
      throw TransportError("parameter server: message of " + std::to_string(bytes) + " bytes for " +
                           std::to_string(dim) + " parameters");
    std::memcpy(v->data(), m.payload.data() + sizeof(Header), bytes);
  }
  return h;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Waits for the next message, failing the task if the peers stay silent.
Message receive(Transport& t, const Options& options, const char* who) {
  SpinBackoff backoff;
  const auto deadline = std::chrono::steady_clock::now() + options.peer_timeout;
  while (true) {
    if (auto m = t.poll()) return std::move(*m);
    if (std::chrono::steady_clock::now() > deadline)
      throw TransportError(std::string("parameter server: ") + who + " heard nothing for " +
                           std::to_string(options.peer_timeout.count()) + " ms");
    backoff.idle();
  }
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

}  // namespace

std::int64_t run_server(Transport& group, const Options& options, VectorXd& w,
                        const std::function<void(const Update&, const VectorXd& gradient, VectorXd& w)>& apply,
                        const std::function<bool(const Update&, const VectorXd& w)>& after) {
  const int k = options.workers;
  if (group.size() != k + 1) throw Error("parameter server: group of " + std::to_string(group.size()) + " ranks for " +
                                         std::to_string(k) + " workers");
  std::int64_t version = 0;
  std::int64_t applied = 0;
  std::vector<std::int64_t> read_version(static_cast<size_t>(k + 1), -1);  // -1: not in flight
  std::deque<int> waiting_pulls;
  std::vector<bool> stopped(static_cast<size_t>(k + 1), false);
  int stopped_count = 0;
  bool finished = options.updates <= 0;
  VectorXd gradient(w.size());

  auto send = [&](int dest, Type type) {
    Header h{};
    h.type = type;
    h.version = version;
    group.send(dest, encode(h, type == Type::Weights ? &w : nullptr));
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
      send(worker, Type::Stop);
      stopped[static_cast<size_t>(worker)] = true;
      ++stopped_count;
      return;
    }
    read_version[static_cast<size_t>(worker)] = version;
    send(worker, Type::Weights);
  };
  auto serve_waiting = [&] {
    while (!waiting_pulls.empty() && (finished || may_answer())) {
      answer_pull(waiting_pulls.front());
      waiting_pulls.pop_front();
    }
  };

  try {
    while (stopped_count < k) {
      const Message m = receive(group, options, "the server");
      const int worker = m.source;
      if (worker < 1 || worker > k) throw TransportError("parameter server: message from unexpected rank");
      const Header h = decode(m, &gradient, w.size());
      if (h.type == Type::Pull) {
        if (finished || may_answer())
          answer_pull(worker);
        else
          waiting_pulls.push_back(worker);
      } else if (h.type == Type::Push) {
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
          apply(u, gradient, w);
          ++version;
          ++applied;
          if (!after(u, w) || applied >= options.updates) finished = true;
        }
        serve_waiting();
      } else {
        throw TransportError("parameter server: unexpected message type at the server");
      }
    }
  } catch (...) {
    // Release the workers before failing, so none waits for its timeout.
    for (int i = 1; i <= k; ++i)
      if (!stopped[static_cast<size_t>(i)]) send(i, Type::Stop);
    throw;
  }
  return applied;
}

void run_worker(Transport& group, const Options& options, int worker,
                const std::function<void(const VectorXd& w, VectorXd& gradient)>& gradient) {
  VectorXd w;
  VectorXd g;
  std::int64_t pushes = 0;
  while (true) {
    Header pull{};
    pull.type = Type::Pull;
    pull.worker = worker;
    group.send(0, encode(pull, nullptr));
    const Message m = receive(group, options, "a worker");
    Header h;
    std::memcpy(&h, m.payload.data(), std::min(sizeof(Header), m.payload.size()));
    if (m.payload.size() < sizeof(Header)) throw TransportError("parameter server: truncated message");
    if (h.type == Type::Stop) return;
    if (h.type != Type::Weights) throw TransportError("parameter server: unexpected message type at a worker");
    const Eigen::Index dim = static_cast<Eigen::Index>((m.payload.size() - sizeof(Header)) / sizeof(double));
    w.resize(dim);
    g.resize(dim);
    decode(m, &w, dim);
    gradient(w, g);
    Header push{};
    push.type = Type::Push;
    push.worker = worker;
    push.version = h.version;
    push.sent_ns = now_ns();
    push.injected_ms = draw_latency_ms(options, worker, pushes++);
    if (push.injected_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(push.injected_ms));
    group.send(0, encode(push, &g));
  }
}

}  // namespace gdlab::ps
