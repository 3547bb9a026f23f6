// Encoding of coordinator <-> worker messages (pb::WireMessage) on a Transport.
#pragma once

#include <string>

#include "common/errors.h"
#include "common/transport.h"
#include "proto/gdlab.pb.h"

namespace gdlab {

inline constexpr int kWireSchemaVersion = 1;

inline void send_wire(Transport& transport, int dest, pb::WireMessage msg) {
  msg.set_schema_version(kWireSchemaVersion);
  std::string bytes;
  if (!msg.SerializeToString(&bytes)) throw TransportError("cannot serialize a wire message");
  transport.send(dest, std::move(bytes));
}

// Throws TransportError for a truncated or garbage message, or one of another schema version.
inline pb::WireMessage decode_wire(const Message& m) {
  pb::WireMessage msg;
  if (!msg.ParseFromString(m.payload))
    throw TransportError("truncated or malformed message (" + std::to_string(m.payload.size()) + " bytes) from rank " +
                         std::to_string(m.source));
  if (msg.schema_version() != kWireSchemaVersion)
    throw TransportError("message from rank " + std::to_string(m.source) + " has wire schema version " +
                         std::to_string(msg.schema_version()) + ", expected " + std::to_string(kWireSchemaVersion));
  return msg;
}

}  // namespace gdlab
