#include "common/transport_inproc.h"

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

 private:
  InProcNetwork& net_;
  int rank_;
};

InProcNetwork::InProcNetwork(int size) {
  for (int r = 0; r < size; ++r) mailboxes_.push_back(std::make_unique<Mailbox>());
  for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<Endpoint>(*this, r));
}

Transport& InProcNetwork::endpoint(int rank) { return *endpoints_.at(static_cast<size_t>(rank)); }

}  // namespace gdlab
