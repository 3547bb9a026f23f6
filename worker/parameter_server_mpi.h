// The parameter server's direct MPI link (see worker/parameter_server.h), header-only because
// gdlab_numerics, which compiles the engine, has no MPI include path; the kind (gdlab_kinds) and
// bench/ps_bench include it. run_server / run_worker below use it when the group transport is an
// MpiTransport whose members are distinct MPI processes, else the Transport link.
//
// What makes an update cheap here (issue 4 §3; numbers in docs/performance.md):
//  - a private communicator for the group (MPI_Comm_create_group on MPI_COMM_WORLD with the world
//    ranks exchanged once over the group transport), so nothing else can match these messages;
//  - two messages per update (a push also asks for the next weights);
//  - persistent receives (MPI_Recv_init / MPI_Start) straight into preallocated, 64-byte aligned
//    per-worker buffers: a gradient is applied where it landed, no per-message allocation, no copy,
//    no probe; the server polls all of them with one MPI_Testsome (or MPI_Test on the worker whose
//    turn it is under the round-robin order);
//  - the weights go out with MPI_Isend from versioned snapshot buffers (k + 2 of them: at most one
//    send per worker is in flight and one holds the current weights, so one is always free); workers
//    that read the same version share one snapshot; with an out-of-place optimiser (ApplyIntoFn) the
//    new weights are written straight into a snapshot, so no copy is made per update; a worker's
//    push goes out with a persistent send from its gradient buffer;
//  - waiting yields the core, then sleeps (ps::Waiter), so idle ranks do not spin.
#pragma once

#include <mpi.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/transport_mpi.h"
#include "worker/parameter_server.h"

namespace gdlab::ps {
namespace mpi_link {

constexpr int kTag = 11;
constexpr int kCreateGroupTag = 4711;
// Waiter::yield_every for this link: OpenMPI's progress engine yields by itself on an
// oversubscribed node (see ps::Waiter).
constexpr int kYieldEvery = 16;

inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw TransportError(std::string("parameter server: ") + what + " failed: " + std::string(text, static_cast<size_t>(len)));
}

// A 64-byte aligned block of doubles: a Header followed by the payload.
class Buffer {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kHugeFrom = size_t{256} << 10;
  Buffer() = default;
  explicit Buffer(Eigen::Index payload_doubles)
      : bytes_(sizeof(Header) + static_cast<size_t>(payload_doubles) * sizeof(double)) {
    // Large messages travel by CMA (process_vm_readv, OpenMPI vader's single copy), whose cost is
    // dominated by walking the pages: on 2 MB transparent huge pages an 800 KB read takes 32 µs
    // instead of 69 µs here. So large buffers are 2 MB aligned and advised as huge pages.
    const bool huge = bytes_ >= kHugeFrom;
    const size_t align = huge ? kHugePage : 64;
    const size_t rounded = (bytes_ + align - 1) / align * align;
    p_ = static_cast<double*>(std::aligned_alloc(align, rounded));
    if (p_ == nullptr) throw std::bad_alloc();
    if (huge) madvise(p_, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
    std::memset(static_cast<void*>(p_), 0, rounded);
  }
  Buffer(Buffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(p_); }
  double* data() const { return p_; }
  double* payload() const { return p_ + kHeaderDoubles; }
  int bytes() const { return static_cast<int>(bytes_); }
  // After a failed task MPI may still read this buffer (a send that never completed): keep it alive.
  void abandon() { p_ = nullptr; }

 private:
  double* p_ = nullptr;
  size_t bytes_ = 0;
};

inline Header read_header(const Buffer& b) {
  Header h;
  std::memcpy(static_cast<void*>(&h), b.data(), sizeof(Header));
  return h;
}
inline void write_header(Buffer& b, const Header& h) { std::memcpy(static_cast<void*>(b.data()), &h, sizeof(Header)); }

// Polls `done()` with the Waiter until it holds.
template <class Done>
void wait_until(Waiter& waiter, Done done) {
  waiter.reset();
  while (!done()) waiter.idle();
  waiter.reset();
}

// ---- setup: a private communicator for the group -----------------------------------------------

// The group ranks' MPI_COMM_WORLD ranks are exchanged over the group transport (rank 0 gathers
// them and answers with the list, the parameter count and whether the direct link can be used:
// only if the members are distinct processes), then every member creates the communicator.
// Returns MPI_COMM_NULL when the direct link is not used (the Transport link then serves).
inline MPI_Comm setup_server(Transport& group, const Options& o, Eigen::Index dim) {
  const int k = o.workers;
  if (group.size() != k + 1)
    throw Error("parameter server: group of " + std::to_string(group.size()) + " ranks for " + std::to_string(k) +
                " workers");
  std::vector<int> world(static_cast<size_t>(k + 1), -1);
  MPI_Comm_rank(MPI_COMM_WORLD, &world[0]);
  Waiter waiter(o.peer_timeout, o.yield_window, "the server (setup)");
  for (int got = 0; got < k;) {
    auto m = group.poll();
    if (!m) {
      waiter.idle();
      continue;
    }
    waiter.reset();
    if (m->source < 1 || m->source > k || m->payload.size() != sizeof(std::int32_t) ||
        world[static_cast<size_t>(m->source)] != -1)
      throw TransportError("parameter server: bad setup message from group rank " + std::to_string(m->source));
    std::int32_t r = 0;
    std::memcpy(&r, m->payload.data(), sizeof r);
    world[static_cast<size_t>(m->source)] = r;
    ++got;
  }
  const bool distinct = std::set<int>(world.begin(), world.end()).size() == world.size();
  std::string reply(sizeof(std::int64_t) * 2 + sizeof(std::int32_t) * world.size(), '\0');
  const std::int64_t head[2] = {static_cast<std::int64_t>(dim), distinct ? 1 : 0};
  std::memcpy(reply.data(), head, sizeof head);
  std::memcpy(reply.data() + sizeof head, world.data(), sizeof(std::int32_t) * world.size());
  for (int j = 1; j <= k; ++j) group.send(j, reply);
  if (!distinct) return MPI_COMM_NULL;
  MPI_Group world_group, members;
  check(MPI_Comm_group(MPI_COMM_WORLD, &world_group), "MPI_Comm_group");
  check(MPI_Group_incl(world_group, k + 1, world.data(), &members), "MPI_Group_incl");
  MPI_Comm comm = MPI_COMM_NULL;
  const int rc = MPI_Comm_create_group(MPI_COMM_WORLD, members, kCreateGroupTag, &comm);
  MPI_Group_free(&members);
  MPI_Group_free(&world_group);
  check(rc, "MPI_Comm_create_group");
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  return comm;
}

inline MPI_Comm setup_worker(Transport& group, const Options& o, Eigen::Index& dim) {
  std::int32_t me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  group.send(0, std::string(reinterpret_cast<const char*>(&me), sizeof me));
  Waiter waiter(o.peer_timeout, o.yield_window, "a worker (setup)");
  std::optional<Message> m;
  while (!(m = group.poll())) waiter.idle();
  const size_t n = static_cast<size_t>(group.size());
  if (m->source != 0 || m->payload.size() != sizeof(std::int64_t) * 2 + sizeof(std::int32_t) * n)
    throw TransportError("parameter server: bad setup reply");
  std::int64_t head[2];
  std::memcpy(head, m->payload.data(), sizeof head);
  dim = static_cast<Eigen::Index>(head[0]);
  if (head[1] == 0) return MPI_COMM_NULL;
  std::vector<int> world(n);
  std::memcpy(world.data(), m->payload.data() + sizeof head, sizeof(std::int32_t) * n);
  MPI_Group world_group, members;
  check(MPI_Comm_group(MPI_COMM_WORLD, &world_group), "MPI_Comm_group");
  check(MPI_Group_incl(world_group, static_cast<int>(n), world.data(), &members), "MPI_Group_incl");
  MPI_Comm comm = MPI_COMM_NULL;
  const int rc = MPI_Comm_create_group(MPI_COMM_WORLD, members, kCreateGroupTag, &comm);
  MPI_Group_free(&members);
  MPI_Group_free(&world_group);
  check(rc, "MPI_Comm_create_group");
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  return comm;
}

// ---- the server's link -------------------------------------------------------------------------

class ServerLinkMpi : public ServerLink {
 public:
  ServerLinkMpi(MPI_Comm comm, const Options& o, Eigen::Index dim)
      : comm_(comm),
        o_(o),
        k_(o.workers),
        dim_(dim),
        waiter_(o.peer_timeout, o.yield_window, "the server", kYieldEvery) {
    const size_t k = static_cast<size_t>(k_);
    inbox_.reserve(k);
    recv_.assign(k, MPI_REQUEST_NULL);
    armed_.assign(k, 0);
    ready_.assign(k, 0);
    ready_bytes_.assign(k, 0);
    send_.assign(k, MPI_REQUEST_NULL);
    send_snapshot_.assign(k, -1);
    indices_.resize(k);
    statuses_.resize(k);
    stop_.reserve(k);
    for (size_t j = 0; j < k; ++j) {
      inbox_.emplace_back(dim);
      stop_.emplace_back(0);
      Header h;
      h.type = MessageType::Stop;
      write_header(stop_.back(), h);
      check(MPI_Recv_init(inbox_[j].data(), inbox_[j].bytes(), MPI_BYTE, static_cast<int>(j + 1), kTag, comm_, &recv_[j]),
            "MPI_Recv_init");
    }
    for (size_t s = 0; s < k + 2; ++s) snapshots_.push_back(Snapshot{Buffer(dim), -1, 0});
    for (int j = 1; j <= k_; ++j) arm(j);
  }

  ~ServerLinkMpi() override {
    if (comm_ != MPI_COMM_NULL) {
      try {
        close(false);
      } catch (...) {
      }
    }
  }

  int yield_every() const override { return kYieldEvery; }

  bool poll(int only, int& worker, Header& header, const double*& gradient) override {
    int chosen = 0;
    if (only > 0) {
      const size_t j = static_cast<size_t>(only - 1);
      if (!ready_[j] && armed_[j]) {
        int flag = 0;
        MPI_Status status;
        check(MPI_Test(&recv_[j], &flag, &status), "MPI_Test");
        if (flag) mark_ready(j, status);
      }
      if (ready_[j]) chosen = only;
    } else {
      if (ready_count_ == 0) {
        int outcount = 0;
        check(MPI_Testsome(k_, recv_.data(), &outcount, indices_.data(), statuses_.data()), "MPI_Testsome");
        if (outcount != MPI_UNDEFINED)
          for (int i = 0; i < outcount; ++i) mark_ready(static_cast<size_t>(indices_[static_cast<size_t>(i)]),
                                                         statuses_[static_cast<size_t>(i)]);
      }
      for (int i = 1; i <= k_ && chosen == 0; ++i) {
        const int j = (last_ + i - 1) % k_ + 1;
        if (ready_[static_cast<size_t>(j - 1)]) chosen = j;
      }
    }
    if (chosen == 0) return false;
    last_ = chosen;
    const size_t j = static_cast<size_t>(chosen - 1);
    ready_[j] = 0;
    --ready_count_;
    header = read_header(inbox_[j]);
    worker = chosen;
    const int bytes = ready_bytes_[j];
    if (header.type == MessageType::Push) {
      if (bytes != inbox_[j].bytes())
        throw TransportError("parameter server: a push of " + std::to_string(bytes) + " bytes for " +
                             std::to_string(dim_) + " parameters");
      gradient = inbox_[j].payload();
    } else {
      if (bytes != static_cast<int>(sizeof(Header))) throw TransportError("parameter server: a pull with a payload");
      gradient = nullptr;
    }
    return true;
  }

  double* weights_buffer(std::int64_t version, const double* current) override {
    const int s = free_snapshot(current);
    Snapshot& snap = snapshots_[static_cast<size_t>(s)];
    Header h;
    h.type = MessageType::Weights;
    h.version = version;
    write_header(snap.buffer, h);
    snap.version = version;
    latest_ = s;
    return snap.buffer.payload();
  }

  void send_weights(int worker, std::int64_t version, Eigen::Ref<const VectorXd> w) override {
    const size_t j = static_cast<size_t>(worker - 1);
    finish_send(j);
    int s = latest_;
    if (s < 0 || snapshots_[static_cast<size_t>(s)].version != version) {
      // Not the latest snapshot (in-place updates, or an older version for a resumed worker): copy
      // into a free one, never the latest, which may hold the current weights of out-of-place updates.
      const std::int64_t latest_version = s < 0 ? -1 : snapshots_[static_cast<size_t>(s)].version;
      s = free_snapshot(latest_ < 0 ? nullptr : snapshots_[static_cast<size_t>(latest_)].buffer.payload());
      Snapshot& snap = snapshots_[static_cast<size_t>(s)];
      Header h;
      h.type = MessageType::Weights;
      h.version = version;
      write_header(snap.buffer, h);
      Eigen::Map<VectorXd>(snap.buffer.payload(), dim_) = w;
      snap.version = version;
      if (version >= latest_version) latest_ = s;
    }
    arm(worker);  // the answer to these weights is the worker's next push
    Snapshot& snap = snapshots_[static_cast<size_t>(s)];
    check(MPI_Isend(snap.buffer.data(), snap.buffer.bytes(), MPI_BYTE, worker, kTag, comm_, &send_[j]), "MPI_Isend");
    ++snap.refs;
    send_snapshot_[j] = s;
  }

  bool sends_pending() override {
    int outcount = 0;
    check(MPI_Testsome(k_, send_.data(), &outcount, indices_.data(), MPI_STATUSES_IGNORE), "MPI_Testsome");
    if (outcount != MPI_UNDEFINED)
      for (int i = 0; i < outcount; ++i) release(static_cast<size_t>(indices_[static_cast<size_t>(i)]));
    for (const MPI_Request& r : send_)
      if (r != MPI_REQUEST_NULL) return true;
    return false;
  }

  void send_stop(int worker) override {
    const size_t j = static_cast<size_t>(worker - 1);
    finish_send(j);
    check(MPI_Isend(stop_[j].data(), stop_[j].bytes(), MPI_BYTE, worker, kTag, comm_, &send_[j]), "MPI_Isend");
    send_snapshot_[j] = -1;
  }

  void close(bool ok) override {
    if (comm_ == MPI_COMM_NULL) return;
    bool clean = true;
    // Receives still posted (only after a failure): cancel them; a cancelled receive completes locally.
    for (size_t j = 0; j < recv_.size(); ++j) {
      if (armed_[j]) {
        MPI_Cancel(&recv_[j]);
        MPI_Wait(&recv_[j], MPI_STATUS_IGNORE);
        armed_[j] = 0;
      }
      if (recv_[j] != MPI_REQUEST_NULL) MPI_Request_free(&recv_[j]);
    }
    // Sends: wait (the peer timeout after success, one second after a failure).
    const auto limit = ok ? o_.peer_timeout : std::chrono::milliseconds(1000);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    Backoff backoff(std::chrono::microseconds(20), std::chrono::microseconds(1000));
    while (true) {
      int flag = 0;
      MPI_Testall(k_, send_.data(), &flag, MPI_STATUSES_IGNORE);
      if (flag) break;
      if (std::chrono::steady_clock::now() > deadline) {
        clean = false;
        break;
      }
      backoff.sleep();
    }
    if (!clean) {
      // A send never completed (a peer stopped receiving): MPI may still read its buffer later.
      for (auto& r : send_)
        if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
      for (auto& s : snapshots_) s.buffer.abandon();
      for (auto& b : stop_) b.abandon();
    }
    MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
    if (ok && !clean) throw TransportError("parameter server: weights never reached a worker");
  }

 private:
  struct Snapshot {
    Buffer buffer;
    std::int64_t version = -1;
    int refs = 0;  // sends in flight from this buffer
  };

  void arm(int worker) {
    const size_t j = static_cast<size_t>(worker - 1);
    if (armed_[j] || ready_[j]) throw TransportError("parameter server: a receive posted twice");
    check(MPI_Start(&recv_[j]), "MPI_Start");
    armed_[j] = 1;
  }

  void mark_ready(size_t j, const MPI_Status& status) {
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    armed_[j] = 0;
    ready_[j] = 1;
    ready_bytes_[j] = bytes;
    ++ready_count_;
  }

  // Completes the previous send to worker j (it has already answered it, so this is immediate).
  void finish_send(size_t j) {
    if (send_[j] == MPI_REQUEST_NULL) return;
    wait_until(waiter_, [&] {
      int flag = 0;
      check(MPI_Test(&send_[j], &flag, MPI_STATUS_IGNORE), "MPI_Test");
      return flag != 0;
    });
    release(j);
  }

  void release(size_t j) {
    if (send_snapshot_[j] >= 0) --snapshots_[static_cast<size_t>(send_snapshot_[j])].refs;
    send_snapshot_[j] = -1;
  }

  // A snapshot no send reads any more and that does not hold `current` (there are k + 2, at most k
  // sends in flight and one current).
  int free_snapshot(const double* current) {
    waiter_.reset();
    for (int attempt = 0;; ++attempt) {
      for (size_t s = 0; s < snapshots_.size(); ++s)
        if (snapshots_[s].refs == 0 && snapshots_[s].buffer.payload() != current) return static_cast<int>(s);
      int outcount = 0;
      check(MPI_Testsome(k_, send_.data(), &outcount, indices_.data(), MPI_STATUSES_IGNORE), "MPI_Testsome");
      if (outcount != MPI_UNDEFINED)
        for (int i = 0; i < outcount; ++i) release(static_cast<size_t>(indices_[static_cast<size_t>(i)]));
      if (attempt > 0) waiter_.idle();
    }
  }

  MPI_Comm comm_;
  Options o_;
  int k_;
  Eigen::Index dim_;
  Waiter waiter_;
  std::vector<Buffer> inbox_;  // per worker: its next message lands here
  std::vector<MPI_Request> recv_;
  std::vector<char> armed_, ready_;
  std::vector<int> ready_bytes_;
  int ready_count_ = 0;
  int last_ = 0;
  std::vector<int> indices_;
  std::vector<MPI_Status> statuses_;
  std::vector<Snapshot> snapshots_;
  int latest_ = -1;
  std::vector<MPI_Request> send_;   // per worker: the weights or stop in flight
  std::vector<int> send_snapshot_;  // per worker: the snapshot its send reads, -1 none
  std::vector<Buffer> stop_;        // per worker: a Stop header
};

// ---- a worker's link ---------------------------------------------------------------------------

class WorkerLinkMpi : public WorkerLink {
 public:
  WorkerLinkMpi(MPI_Comm comm, const Options& o, Eigen::Index dim)
      : comm_(comm),
        o_(o),
        dim_(dim),
        inbox_(dim),
        outbox_(dim),
        pull_(0),
        waiter_(o.peer_timeout, o.yield_window, "a worker", kYieldEvery) {
    check(MPI_Recv_init(inbox_.data(), inbox_.bytes(), MPI_BYTE, 0, kTag, comm_, &recv_), "MPI_Recv_init");
    check(MPI_Send_init(outbox_.data(), outbox_.bytes(), MPI_BYTE, 0, kTag, comm_, &push_), "MPI_Send_init");
  }

  ~WorkerLinkMpi() override {
    if (comm_ != MPI_COMM_NULL) {
      try {
        close(false);
      } catch (...) {
      }
    }
  }

  void send_pull(const Header& header) override {
    arm();
    write_header(pull_, header);
    check(MPI_Isend(pull_.data(), pull_.bytes(), MPI_BYTE, 0, kTag, comm_, &pull_request_), "MPI_Isend");
  }

  bool poll(Header& header) override {
    if (!armed_) throw TransportError("parameter server: a worker waits without a posted receive");
    int flag = 0;
    MPI_Status status;
    check(MPI_Test(&recv_, &flag, &status), "MPI_Test");
    if (!flag) return false;
    armed_ = false;
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    header = read_header(inbox_);
    const int expected = header.type == MessageType::Weights ? inbox_.bytes() : static_cast<int>(sizeof(Header));
    if (bytes != expected)
      throw TransportError("parameter server: a worker got " + std::to_string(bytes) + " bytes, expected " +
                           std::to_string(expected));
    return true;
  }

  Eigen::Map<const VectorXd> weights() const override { return {inbox_.payload(), dim_}; }
  int yield_every() const override { return kYieldEvery; }

  Eigen::Map<VectorXd> gradient_buffer() override {
    if (push_active_) {
      wait_until(waiter_, [&] {
        int flag = 0;
        check(MPI_Test(&push_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
        return flag != 0;
      });
      push_active_ = false;
    }
    return {outbox_.payload(), dim_};
  }

  bool sends_pending() override {
    if (push_active_) {
      int flag = 0;
      check(MPI_Test(&push_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
      if (flag) push_active_ = false;
    }
    return push_active_;
  }

  void send_push(const Header& header) override {
    write_header(outbox_, header);
    arm();  // the answer to this push: the next weights (or stop)
    check(MPI_Start(&push_), "MPI_Start");
    push_active_ = true;
  }

  void close(bool ok) override {
    if (comm_ == MPI_COMM_NULL) return;
    if (armed_) {
      MPI_Cancel(&recv_);
      MPI_Wait(&recv_, MPI_STATUS_IGNORE);
      armed_ = false;
    }
    const auto limit = ok ? o_.peer_timeout : std::chrono::milliseconds(1000);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    Backoff backoff(std::chrono::microseconds(20), std::chrono::microseconds(1000));
    bool clean = true;
    while (push_active_ || pull_request_ != MPI_REQUEST_NULL) {
      int flag = 0;
      if (push_active_) {
        MPI_Test(&push_, &flag, MPI_STATUS_IGNORE);
        if (flag) push_active_ = false;
      }
      if (pull_request_ != MPI_REQUEST_NULL) MPI_Test(&pull_request_, &flag, MPI_STATUS_IGNORE);  // sets it null when done
      if (!push_active_ && pull_request_ == MPI_REQUEST_NULL) break;
      if (std::chrono::steady_clock::now() > deadline) {
        clean = false;
        break;
      }
      backoff.sleep();
    }
    if (!clean) {
      if (pull_request_ != MPI_REQUEST_NULL) MPI_Request_free(&pull_request_);
      outbox_.abandon();
      pull_.abandon();
    }
    MPI_Request_free(&recv_);
    MPI_Request_free(&push_);  // an active persistent send is freed once it completes
    MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
    if (ok && !clean) throw TransportError("parameter server: a push never reached the server");
  }

 private:
  void arm() {
    if (armed_) throw TransportError("parameter server: a receive posted twice");
    check(MPI_Start(&recv_), "MPI_Start");
    armed_ = true;
  }

  MPI_Comm comm_;
  Options o_;
  Eigen::Index dim_;
  Buffer inbox_, outbox_, pull_;
  Waiter waiter_;
  MPI_Request recv_ = MPI_REQUEST_NULL, push_ = MPI_REQUEST_NULL, pull_request_ = MPI_REQUEST_NULL;
  bool armed_ = false, push_active_ = false;
};

}  // namespace mpi_link

// True when run_server / run_worker on this transport can use the direct MPI link.
inline bool direct_mpi_link(Transport& group) { return dynamic_cast<MpiTransport*>(&group) != nullptr; }

// The parameter server over a group transport: the direct MPI link for an MpiTransport (and
// options.direct_mpi), the Transport link otherwise. Same contract as serve().
inline std::int64_t run_server(Transport& group, const Options& options, VectorXd& w, const ApplyFn& apply,
                               const AfterFn& after, const ApplyIntoFn& apply_into = nullptr,
                               const ResumePoint* resume = nullptr, ServerPosition* position = nullptr) {
  if (options.direct_mpi && direct_mpi_link(group)) {
    const MPI_Comm comm = mpi_link::setup_server(group, options, w.size());
    if (comm != MPI_COMM_NULL) {
      mpi_link::ServerLinkMpi link(comm, options, w.size());
      return serve(link, options, w, apply, after, apply_into, resume, position);
    }
  }
  return run_server_over_transport(group, options, w, apply, after, resume, position);
}

// A worker (group rank `worker`) over a group transport; see run_server.
inline void run_worker(Transport& group, const Options& options, int worker, const GradientFn& gradient) {
  if (options.direct_mpi && direct_mpi_link(group)) {
    Eigen::Index dim = 0;
    const MPI_Comm comm = mpi_link::setup_worker(group, options, dim);
    if (comm != MPI_COMM_NULL) {
      mpi_link::WorkerLinkMpi link(comm, options, dim);
      work(link, options, worker, gradient);
      return;
    }
  }
  run_worker_over_transport(group, options, worker, gradient);
}

}  // namespace gdlab::ps
