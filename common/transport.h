// Message transport between the coordinator (rank 0) and the workers, behind an interface in
// the spirit of gloo's transport::Pair: one implementation over MPI (common/transport_mpi.h) and
// one in-process implementation over threads and queues (common/transport_inproc.h) for fast
// unit tests of the scheduling logic. The coordinator and worker loops only see this interface.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace gdlab {

struct Message {
  int source = -1;
  std::string payload;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Queues `payload` for `dest` and returns without waiting for delivery. Messages between one
  // pair of ranks arrive in the order they were sent.
  virtual void send(int dest, std::string payload) = 0;
  // Returns the next message from any source, or nothing if none has arrived. Never blocks.
  virtual std::optional<Message> poll() = 0;
  // A transport among `ranks` only (ranks of this transport, in group order; this rank must be
  // one of them), for a multi-rank task. Called by every member, and only by them; its
  // messages never mix with this transport's.
  virtual std::unique_ptr<Transport> create_group(const std::vector<int>& ranks) = 0;
};

// Exponential backoff for idle loops (platform.md §2): blocking MPI receives spin a core, so an
// idle loop polls and sleeps 50 µs doubling up to 2 ms, and resets when a message arrives.
// For latency-critical loops (a parameter server): spin through `spins` empty polls before
// falling back to the sleeping backoff, so a busy exchange is not slowed by sleeps while an idle
// rank still ends up sleeping.
class SpinBackoff {
 public:
  explicit SpinBackoff(int spins = 200, std::chrono::microseconds cap = std::chrono::microseconds(100))
      : spins_(spins) {
    backoff_.cap = cap;
  }
  void idle() {
    if (count_ < spins_) {
      ++count_;
      return;
    }
    backoff_.sleep();
  }
  void reset() {
    count_ = 0;
    backoff_.reset();
  }

 private:
  int spins_;
  int count_ = 0;
  struct Sleeper {
    std::chrono::microseconds current{10};
    std::chrono::microseconds cap{100};
    void sleep() {
      std::this_thread::sleep_for(current);
      current = std::min(current * 2, cap);
    }
    void reset() { current = std::chrono::microseconds(10); }
  } backoff_;
};

class Backoff {
 public:
  explicit Backoff(std::chrono::microseconds initial = std::chrono::microseconds(50),
                   std::chrono::microseconds limit = std::chrono::microseconds(2000))
      : initial_(initial), limit_(limit), current_(initial) {}
  void sleep() {
    std::this_thread::sleep_for(current_);
    current_ = std::min(current_ * 2, limit_);
  }
  void reset() { current_ = initial_; }

 private:
  std::chrono::microseconds initial_, limit_, current_;
};

}  // namespace gdlab
