// In-process transport: N endpoints in one process, connected by mutex-protected queues.
// Used by unit tests to run the coordinator and several workers as threads.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/transport.h"

namespace gdlab {

class InProcNetwork {
 public:
  explicit InProcNetwork(int size);
  // The endpoint of `rank`; owned by the network.
  Transport& endpoint(int rank);

 private:
  struct Mailbox {
    std::mutex mutex;
    std::deque<Message> queue;
  };
  class Endpoint;
  class GroupEndpoint;
  std::shared_ptr<InProcNetwork> group_network(const std::vector<int>& ranks);
  std::vector<std::unique_ptr<Mailbox>> mailboxes_;
  std::vector<std::unique_ptr<Transport>> endpoints_;
  // Sub-networks of multi-rank tasks, by member list; each member holds a share of it.
  std::mutex groups_mutex_;
  std::map<std::vector<int>, std::weak_ptr<InProcNetwork>> groups_;
};

}  // namespace gdlab
