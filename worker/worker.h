// A worker rank's task loop: ask the coordinator for a task, prepare it through the kind
// registry, run it while streaming its results back in bounded chunks, report done or failed,
// repeat until told to shut down. It knows no experiment kind by name.
#pragma once

#include <chrono>
#include <cstddef>

#include "common/transport.h"

namespace gdlab {

struct WorkerOptions {
  int coordinator_rank = 0;
  // A chunk is sent when it holds this many bytes of values, or when it is this old.
  std::size_t chunk_bytes = 256 * 1024;
  std::chrono::milliseconds chunk_age{500};
};

class Worker {
 public:
  explicit Worker(Transport& transport, WorkerOptions options = {});
  // Returns the number of tasks this worker ran.
  std::size_t run();

 private:
  Transport& transport_;
  WorkerOptions options_;
};

}  // namespace gdlab
