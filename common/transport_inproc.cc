#include "common/transport_inproc.h"

#include <algorithm>

#include "common/errors.h"

namespace gdlab {

class InProcNetwork::Endpoint : public Transport {
 public:
  Endpoint(InProcNetwork& net, int rank) : net_(net), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(net_.mailboxes_.size()); }
  void send(int dest, std::string payload) override {
    if (dest < 0 || dest >= size()) throw TransportError("in-process send to invalid rank " + std::to_string(dest));
    Mailbox& box = *net_.mailboxes_[static_cast<size_t>(dest)];
    std::lock_guard lock(box.mutex);
    box.queue.push_back(Message{rank_, std::move(payload)});
  }
  std::optional<Message> poll() override {
    Mailbox& box = *net_.mailboxes_[static_cast<size_t>(rank_)];
    std::lock_guard lock(box.mutex);
    if (box.queue.empty()) return std::nullopt;
    Message m = std::move(box.queue.front());
    box.queue.pop_front();
    return m;
  }
  std::unique_ptr<Transport> create_group(const std::vector<int>& ranks) override;

 private:
  InProcNetwork& net_;
  int rank_;
};

// A member's endpoint of a group sub-network; keeps the sub-network alive while used.
class InProcNetwork::GroupEndpoint : public Transport {
 public:
  GroupEndpoint(std::shared_ptr<InProcNetwork> net, int rank) : net_(std::move(net)), inner_(net_->endpoint(rank)) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void send(int dest, std::string payload) override { inner_.send(dest, std::move(payload)); }
  std::optional<Message> poll() override { return inner_.poll(); }
  std::unique_ptr<Transport> create_group(const std::vector<int>& ranks) override { return inner_.create_group(ranks); }

 private:
  std::shared_ptr<InProcNetwork> net_;
  Transport& inner_;
};

std::shared_ptr<InProcNetwork> InProcNetwork::group_network(const std::vector<int>& ranks) {
  std::lock_guard lock(groups_mutex_);
  auto& slot = groups_[ranks];
  auto net = slot.lock();
  if (!net) {
    net = std::make_shared<InProcNetwork>(static_cast<int>(ranks.size()));
    slot = net;
  }
  return net;
}

std::unique_ptr<Transport> InProcNetwork::Endpoint::create_group(const std::vector<int>& ranks) {
  const auto it = std::find(ranks.begin(), ranks.end(), rank_);
  if (it == ranks.end()) throw TransportError("create_group: rank " + std::to_string(rank_) + " is not a member");
  return std::make_unique<GroupEndpoint>(net_.group_network(ranks), static_cast<int>(it - ranks.begin()));
}

InProcNetwork::InProcNetwork(int size) {
  for (int r = 0; r < size; ++r) mailboxes_.push_back(std::make_unique<Mailbox>());
  for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<Endpoint>(*this, r));
}

Transport& InProcNetwork::endpoint(int rank) { return *endpoints_.at(static_cast<size_t>(rank)); }

}  // namespace gdlab
