// MPI transport. One thread owns MPI (platform.md §3): the thread that created the MpiSession
// makes every MPI call; the provided thread level is checked.
#pragma once

#include <mpi.h>

#include <list>
#include <string>

#include "common/transport.h"

namespace gdlab {

// Owns MPI_Init_thread / MPI_Finalize.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int provided_thread_level() const { return provided_; }
  static const char* thread_level_name(int level);

 private:
  int provided_ = 0;
};

// Point-to-point messages on a duplicate of MPI_COMM_WORLD. Sends are non-blocking; each pending
// send owns its buffer and request until MPI completes it.
class MpiTransport : public Transport {
 public:
  MpiTransport();
  ~MpiTransport() override;
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int dest, std::string payload) override;
  std::optional<Message> poll() override;
  // Waits (polling with backoff) until every pending send completed, or the timeout expires.
  bool drain(std::chrono::milliseconds timeout);
  // MPI_Comm_create_group: collective over the members only.
  std::unique_ptr<Transport> create_group(const std::vector<int>& ranks) override;

 private:
  explicit MpiTransport(MPI_Comm owned_comm);
  struct PendingSend {
    std::string buffer;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  void progress_sends();

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 0;
  std::list<PendingSend> pending_;  // std::list: buffers must not move while MPI reads them
};

}  // namespace gdlab
