// The coordinator: rank 0 of a `gdlab run`. Hands out tasks dynamically (an idle worker asks, the
// coordinator answers, never waiting on a particular worker), writes every chunk it receives into
// the campaign's HDF5 file (it is the file's only writer), flushes on a cadence, and records
// failed tasks without stopping the others. It knows no experiment kind by name.
#pragma once

#include <chrono>
#include <cstddef>

#include "common/campaign.h"
#include "common/campaign_store.h"
#include "common/transport.h"
#include "coordinator/run_log.h"

namespace gdlab {

class Coordinator {
 public:
  struct Result {
    std::size_t done = 0;
    std::size_t failed = 0;
  };
  Coordinator(Transport& transport, const Campaign& campaign, CampaignStore& store, RunLog& log);
  // Runs the campaign to completion: every task done or failed, every worker told to shut down.
  Result run();
  // Tells every worker to shut down without running anything (used when the run cannot start);
  // answers each worker's first request so no message is left unreceived.
  static void dismiss_workers(Transport& transport);

 private:
  Transport& transport_;
  const Campaign& campaign_;
  CampaignStore& store_;
  RunLog& log_;
};

}  // namespace gdlab
