// A client for testing and benchmarking `gdlab serve` over real loopback TCP:
//   service_probe watchers HOST:PORT ID N     N concurrent watchers of campaign ID; each must read
//                                            its stream to the end; prints events/s
//   service_probe malformed HOST:PORT         truncated, oversized and garbage frames: each
//                                            connection must be closed by the server, unanswered
//   service_probe submit-latency HOST:PORT TOKEN_FILE SPEC N   N sequential submits; prints latency
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "coordinator/service.h"
#include "proto/service.pb.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using gdlab::parse_host_port;

namespace {

tcp::endpoint endpoint_of(const std::string& server) {
  const auto [host, port] = parse_host_port(server, "server");
  return tcp::endpoint(asio::ip::make_address(host), port);
}

bool read_frame(tcp::socket& s, gdlab::pb::ServerReply& reply) {
  unsigned char h[4];
  boost::system::error_code ec;
  asio::read(s, asio::buffer(h), ec);
  if (ec) return false;
  const std::uint32_t n = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (std::uint32_t{h[2]} << 8) | h[3];
  std::string body(n, '\0');
  asio::read(s, asio::buffer(body), ec);
  return !ec && reply.ParseFromString(body);
}

int watchers(const std::string& server, std::int64_t id, int n) {
  asio::io_context io;
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < n; ++i) {
    sockets.emplace_back(io);
    sockets.back().connect(endpoint_of(server));
  }
  gdlab::pb::ClientRequest request;
  request.set_schema_version(gdlab::kServiceSchemaVersion);
  request.mutable_watch()->set_campaign_id(id);
  const std::string bytes = gdlab::frame(request);
  for (auto& s : sockets) asio::write(s, asio::buffer(bytes));
  const auto start = std::chrono::steady_clock::now();
  std::atomic<long> events{0};
  std::atomic<int> complete{0};
  std::vector<std::thread> threads;
  const int per_thread = (n + 7) / 8;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = t * per_thread; i < std::min(n, (t + 1) * per_thread); ++i) {
        gdlab::pb::ServerReply reply;
        while (read_frame(sockets[static_cast<size_t>(i)], reply)) {
          ++events;
          if (reply.end_of_stream()) {
            if (reply.event().campaign().state() == "complete") ++complete;
            break;
          }
        }
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("watchers: %d of %d streams ended with the campaign complete; %ld events in %.3f s (%.0f events/s)\n",
              complete.load(), n, events.load(), seconds, static_cast<double>(events.load()) / seconds);
  return complete.load() == n ? 0 : 1;
}

// Sends `bytes`, optionally half-closes, and expects the server to close without a reply.
bool closed_unanswered(const std::string& server, const std::string& bytes, bool half_close, const char* what) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(endpoint_of(server));
  boost::system::error_code ec;
  asio::write(s, asio::buffer(bytes), ec);
  if (half_close) s.shutdown(tcp::socket::shutdown_send, ec);
  char buf[16];
  const auto start = std::chrono::steady_clock::now();
  const std::size_t got = s.read_some(asio::buffer(buf), ec);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool ok = got == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
  std::printf("malformed (%s): %s after %.2f s (%s)\n", what, ok ? "closed unanswered" : "NOT closed as expected",
              seconds, ec.message().c_str());
  return ok;
}

int malformed(const std::string& server) {
  gdlab::pb::ClientRequest request;
  request.set_schema_version(gdlab::kServiceSchemaVersion);
  request.mutable_list();
  const std::string good = gdlab::frame(request);
  bool ok = true;
  ok &= closed_unanswered(server, good.substr(0, good.size() - 1), true, "truncated body, then EOF");
  ok &= closed_unanswered(server, std::string("\x00\x00", 2), true, "truncated header, then EOF");
  ok &= closed_unanswered(server, std::string("\x10\x00\x00\x00", 4) + "xx", false, "oversized: 256 MiB announced");
  ok &= closed_unanswered(server, std::string("\x00\x00\x00\x00", 4), false, "zero length");
  ok &= closed_unanswered(server, std::string("\x00\x00\x00\x08", 4) + "\xff\xff\xff\xff\xff\xff\xff\xff", false,
                          "garbage body");
  ok &= closed_unanswered(server, good.substr(0, 6), false, "stalled partial frame (read timeout)");
  return ok ? 0 : 1;
}

int submit_latency(const std::string& server, const std::string& token_file, const std::string& spec, int n) {
  std::ifstream t(token_file), f(spec);
  std::string token;
  t >> token;
  std::stringstream text;
  text << f.rdbuf();
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    gdlab::pb::ClientRequest request;
    request.set_schema_version(gdlab::kServiceSchemaVersion);
    request.set_token(token);
    request.mutable_submit()->set_spec_text(text.str());
    request.mutable_submit()->set_spec_name(spec);
    const auto start = std::chrono::steady_clock::now();
    asio::io_context io;
    tcp::socket s(io);
    s.connect(endpoint_of(server));
    asio::write(s, asio::buffer(gdlab::frame(request)));
    gdlab::pb::ServerReply reply;
    if (!read_frame(s, reply) || !reply.ok()) {
      std::fprintf(stderr, "submit %d failed: %s\n", i, reply.error().c_str());
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("submit latency over %d submits: median %.2f ms, p90 %.2f ms, max %.2f ms\n", n, ms[ms.size() / 2],
              ms[ms.size() * 9 / 10], ms.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 4 && a[0] == "watchers") return watchers(a[1], std::stoll(a[2]), std::stoi(a[3]));
    if (a.size() == 2 && a[0] == "malformed") return malformed(a[1]);
    if (a.size() == 5 && a[0] == "submit-latency") return submit_latency(a[1], a[2], a[3], std::stoi(a[4]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "service_probe: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: see the header of tests/service_probe.cc\n");
  return 2;
}
