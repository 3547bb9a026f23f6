#include "common/transport_mpi.h"

#include <climits>
#include <cstdlib>

#include "common/errors.h"

namespace gdlab {
namespace {

constexpr int kTag = 7;

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw TransportError(std::string(what) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  // Open MPI's shared-memory transport sends messages up to 4 KiB eagerly and larger ones through
  // a rendezvous handshake; the parameter server's 8 KB messages (P = 1e3 doubles) then cost a
  // round trip more. Raising the eager limit to 16 KiB makes them 1.6–2x faster
  // (docs/performance.md). Set before MPI_Init, without overwriting: a value from the user's
  // environment or `mpirun --mca btl_vader_eager_limit N` wins.
  ::setenv("OMPI_MCA_btl_vader_eager_limit", "16384", /*overwrite=*/0);
  // FUNNELED: only the main thread calls MPI (platform.md §3.3).
  const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_);
  if (rc != MPI_SUCCESS) throw TransportError("MPI_Init_thread failed");
  if (provided_ < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw TransportError(std::string("MPI provides thread level ") + thread_level_name(provided_) +
                         "; gdlab needs at least MPI_THREAD_FUNNELED");
  }
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

const char* MpiSession::thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "unknown";
  }
}

MpiTransport::MpiTransport() {
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiTransport::MpiTransport(MPI_Comm owned_comm) : comm_(owned_comm) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

std::unique_ptr<Transport> MpiTransport::create_group(const std::vector<int>& ranks) {
  MPI_Group world_group, group;
  check_mpi(MPI_Comm_group(comm_, &world_group), "MPI_Comm_group");
  check_mpi(MPI_Group_incl(world_group, static_cast<int>(ranks.size()), ranks.data(), &group), "MPI_Group_incl");
  MPI_Comm sub = MPI_COMM_NULL;
  // A process is in at most one group at a time, so one tag serves every group creation.
  const int rc = MPI_Comm_create_group(comm_, group, 1, &sub);
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  check_mpi(rc, "MPI_Comm_create_group");
  if (sub == MPI_COMM_NULL) throw TransportError("create_group: this rank is not a member");
  return std::unique_ptr<Transport>(new MpiTransport(sub));
}

MpiTransport::~MpiTransport() {
  drain(std::chrono::seconds(10));
  for (auto& p : pending_)
    if (p.request != MPI_REQUEST_NULL) MPI_Request_free(&p.request);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiTransport::send(int dest, std::string payload) {
  if (payload.size() > static_cast<size_t>(INT_MAX)) throw TransportError("message too large for MPI_Isend");
  pending_.push_back(PendingSend{std::move(payload), MPI_REQUEST_NULL});
  PendingSend& p = pending_.back();
  check_mpi(MPI_Isend(p.buffer.data(), static_cast<int>(p.buffer.size()), MPI_BYTE, dest, kTag, comm_, &p.request),
            "MPI_Isend");
  progress_sends();
}

void MpiTransport::progress_sends() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    check_mpi(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    it = done ? pending_.erase(it) : std::next(it);
  }
}

std::optional<Message> MpiTransport::poll() {
  progress_sends();
  int flag = 0;
  MPI_Message handle;
  MPI_Status status;
  // Matched probe: the message found is the one received, even if another thread probed too.
  check_mpi(MPI_Improbe(MPI_ANY_SOURCE, kTag, comm_, &flag, &handle, &status), "MPI_Improbe");
  if (!flag) return std::nullopt;
  int count = 0;
  check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  Message m;
  m.source = status.MPI_SOURCE;
  m.payload.resize(static_cast<size_t>(count));
  check_mpi(MPI_Mrecv(m.payload.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE), "MPI_Mrecv");
  return m;
}

bool MpiTransport::drain(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Backoff backoff;
  while (!pending_.empty()) {
    progress_sends();
    if (pending_.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) return false;
    backoff.sleep();
  }
  return true;
}

}  // namespace gdlab
