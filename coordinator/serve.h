// The MPI-thread side of `gdlab serve`: runs the Coordinator, answers the front end's commands,
// and streams progress events back to watchers.
#pragma once

#include <string>

#include "common/transport.h"
#include "coordinator/service.h"

namespace gdlab {

// Serves until a Shutdown request or SIGTERM/SIGINT has drained every running task; returns the
// process exit code (0 after a clean drain).
int serve(const ServiceOptions& options, Transport& transport, const std::string& mpi_thread_level);

}  // namespace gdlab
