// The in-process transport and the wire encoding: per-pair FIFO order, any-source polling, and
// clear errors for truncated, garbage or wrong-version messages.
#include <gtest/gtest.h>

#include <thread>

#include "common/errors.h"
#include "common/transport_inproc.h"
#include "common/wire.h"

namespace gdlab {
namespace {

// (Built with += rather than label('a', i), which trips GCC 12's -Wrestrict false positive.)
std::string label(char prefix, int i) {
  std::string s(1, prefix);
  s += std::to_string(i);
  return s;
}

TEST(InProcTransport, FifoPerPairAndAnySource) {
  InProcNetwork net(3);
  std::thread a([&] {
    for (int i = 0; i < 100; ++i) net.endpoint(1).send(0, label('a', i));
  });
  std::thread b([&] {
    for (int i = 0; i < 100; ++i) net.endpoint(2).send(0, label('b', i));
  });
  a.join();
  b.join();
  int next_a = 0, next_b = 0;
  while (auto m = net.endpoint(0).poll()) {
    if (m->source == 1) {
      EXPECT_EQ(m->payload, label('a', next_a++));
    } else {
      EXPECT_EQ(m->payload, label('b', next_b++));
    }
  }
  EXPECT_EQ(next_a, 100);
  EXPECT_EQ(next_b, 100);
  EXPECT_FALSE(net.endpoint(1).poll().has_value());
  EXPECT_THROW(net.endpoint(1).send(3, "x"), TransportError);
}

TEST(Wire, RoundTripAndBadMessages) {
  InProcNetwork net(2);
  pb::WireMessage msg;
  auto* chunk = msg.mutable_chunk();
  chunk->set_task_id(9);
  auto* s = chunk->add_series();
  s->set_path("observables/loss");
  s->set_width(1);
  for (int i = 0; i < 50; ++i) {
    s->add_step(i);
    s->add_time(i);
    s->add_value(1.0 / (i + 1));
  }
  send_wire(net.endpoint(1), 0, msg);
  const Message m = *net.endpoint(0).poll();
  const pb::WireMessage back = decode_wire(m);
  EXPECT_EQ(back.chunk().series(0).value(49), 1.0 / 50);

  Message truncated{1, m.payload.substr(0, m.payload.size() / 2)};
  try {
    decode_wire(truncated);
    FAIL() << "a truncated message was accepted";
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated or malformed message"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("from rank 1"), std::string::npos);
  }
  EXPECT_THROW(decode_wire(Message{1, std::string("\xff\xff\xff\xff garbage", 12)}), TransportError);

  pb::WireMessage other;
  other.set_schema_version(99);
  other.mutable_request();
  try {
    decode_wire(Message{1, other.SerializeAsString()});
    FAIL() << "a message of another schema version was accepted";
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("wire schema version 99"), std::string::npos);
  }
}

}  // namespace
}  // namespace gdlab
