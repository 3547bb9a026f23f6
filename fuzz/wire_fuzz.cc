// libFuzzer target: arbitrary bytes as coordinator <-> worker wire messages (decode_wire) and as
// `gdlab serve` frames (4-byte big-endian length + pb::ClientRequest; pb::ServerReply on the client
// side). A gdlab::TransportError from decode_wire is the expected answer to garbage; any other
// exception, a crash, a sanitizer report or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/errors.h"
#include "common/transport.h"
#include "common/wire.h"
#include "proto/gdlab.pb.h"
#include "proto/service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  // 1. The whole input as one wire payload.
  gdlab::Message m;
  m.source = 1;
  m.payload = bytes;
  try {
    const gdlab::pb::WireMessage msg = gdlab::decode_wire(m);
    std::string again;
    (void)msg.SerializeToString(&again);
    (void)msg.ShortDebugString();
  } catch (const gdlab::TransportError&) {
    // Expected: garbage or another schema version.
  }

  // 2. The whole input as a service request / reply body.
  gdlab::pb::ClientRequest request;
  if (request.ParseFromString(bytes)) (void)request.ShortDebugString();
  gdlab::pb::ServerReply reply;
  if (reply.ParseFromString(bytes)) (void)reply.ShortDebugString();

  // 3. The input as a stream of frames, split the way coordinator/service.cc reads them.
  std::size_t pos = 0;
  while (size - pos >= 4) {
    const std::uint32_t len = (std::uint32_t{data[pos]} << 24) | (std::uint32_t{data[pos + 1]} << 16) |
                              (std::uint32_t{data[pos + 2]} << 8) | std::uint32_t{data[pos + 3]};
    pos += 4;
    if (len > size - pos) break;
    const std::string body(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    gdlab::pb::ClientRequest framed;
    if (framed.ParseFromString(body)) (void)framed.op_case();
    gdlab::pb::ServerReply framed_reply;
    if (framed_reply.ParseFromString(body)) (void)framed_reply.ByteSizeLong();
  }
  return 0;
}
