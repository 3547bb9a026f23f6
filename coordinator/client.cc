#include "coordinator/client.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/errors.h"
#include "coordinator/service.h"
#include "proto/service.pb.h"

namespace gdlab {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The connection broke or could not be made.
class Unreachable : public Error {
 public:
  using Error::Error;
};

struct ClientArgs {
  std::string server = "127.0.0.1:7878";
  std::string token_file;
  std::vector<std::string> positional;
};

ClientArgs parse_args(const std::vector<std::string>& args) {
  ClientArgs c;
  if (const char* s = std::getenv("GDLAB_SERVER")) c.server = s;
  if (const char* t = std::getenv("GDLAB_TOKEN_FILE")) c.token_file = t;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& flag) {
      if (i + 1 >= args.size()) throw InputError(flag + " needs a value");
      return args[++i];
    };
    if (a == "--server")
      c.server = value(a);
    else if (a == "--token-file")
      c.token_file = value(a);
    else if (!a.empty() && a[0] == '-')
      throw InputError("unknown option " + a + " (see gdlab --help)");
    else
      c.positional.push_back(a);
  }
  return c;
}

std::string read_token(const ClientArgs& c) {
  if (c.token_file.empty()) throw InputError("this command needs the server's token: pass --token-file DIR/token");
  std::ifstream in(c.token_file);
  if (!in) throw InputError(c.token_file + ": cannot read the token file");
  std::string token;
  in >> token;
  return token;
}

std::int64_t parse_id(const ClientArgs& c) {
  if (c.positional.size() != 1) throw InputError("expected one campaign ID");
  char* end = nullptr;
  const long long id = std::strtoll(c.positional[0].c_str(), &end, 10);
  if (*end != '\0' || id < 0) throw InputError("'" + c.positional[0] + "' is not a campaign ID");
  return id;
}

class Connection {
 public:
  explicit Connection(const std::string& server) : socket_(io_) {
    const auto [host, port] = parse_host_port(server, "--server");
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) throw InputError("--server " + server + ": '" + host + "' is not an IP address");
    socket_.connect(tcp::endpoint(address, port), ec);
    if (ec) throw Unreachable("cannot connect to gdlab server at " + server + ": " + ec.message());
  }
  void send(const pb::ClientRequest& request) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(frame(request)), ec);
    if (ec) throw Unreachable("sending the request failed: " + ec.message());
  }
  // False at a clean end of stream (the server closed the connection between frames).
  bool receive(pb::ServerReply& reply) {
    unsigned char header[4];
    boost::system::error_code ec;
    asio::read(socket_, asio::buffer(header), ec);
    if (ec == asio::error::eof) return false;
    if (ec) throw Unreachable("the connection broke: " + ec.message());
    const std::uint32_t n = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                            (std::uint32_t{header[2]} << 8) | std::uint32_t{header[3]};
    std::string body(n, '\0');
    asio::read(socket_, asio::buffer(body), ec);
    if (ec) throw Unreachable("the connection broke mid-frame: " + ec.message());
    if (!reply.ParseFromString(body)) throw Unreachable("the server sent a malformed frame");
    return true;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

std::string to_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

pb::ServerReply call(const ClientArgs& c, pb::ClientRequest request) {
  request.set_schema_version(kServiceSchemaVersion);
  Connection conn(c.server);
  conn.send(request);
  pb::ServerReply reply;
  if (!conn.receive(reply)) throw Unreachable("the server closed the connection without answering");
  return reply;
}

int report_error(const pb::ServerReply& reply) {
  std::cerr << "gdlab: error: " << reply.error() << " (" << reply.error_code() << ")" << std::endl;
  return reply.error_code() == "invalid_spec" || reply.error_code() == "unauthorized" ||
                 reply.error_code() == "bad_request"
             ? kClientBadInput
             : kClientFailed;
}

std::string progress_bar(const pb::CampaignInfo& info) {
  const auto total = std::max<std::int64_t>(1, info.tasks_total());
  const auto finished = info.tasks_done() + info.tasks_failed() + info.tasks_cancelled();
  const int width = 30;
  const int filled = static_cast<int>(width * finished / total);
  std::ostringstream s;
  s << "\r[" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(width - filled), '-')
    << "] " << finished << "/" << info.tasks_total() << " tasks";
  if (info.tasks_failed() > 0) s << ", " << info.tasks_failed() << " failed";
  s << ", " << info.tasks_running() << " running, " << info.state();
  char eta[48];
  if (info.eta_s() >= 0)
    std::snprintf(eta, sizeof eta, ", ETA %.1f s   ", info.eta_s());
  else
    std::snprintf(eta, sizeof eta, ", ETA ?   ");
  return s.str() + eta;
}

int watch(const ClientArgs& c) {
  pb::ClientRequest request;
  request.set_schema_version(kServiceSchemaVersion);
  request.mutable_watch()->set_campaign_id(parse_id(c));
  Connection conn(c.server);
  conn.send(request);
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  pb::ServerReply reply;
  std::string state;
  while (conn.receive(reply)) {
    if (!reply.ok()) return report_error(reply);
    const auto& info = reply.event().campaign();
    state = info.state();
    if (tty)
      std::cout << progress_bar(info) << std::flush;
    else
      std::cout << to_json(reply.event()) << std::endl;
    if (reply.end_of_stream()) {
      if (tty) std::cout << "\n" << info.file() << std::endl;
      return state == "complete" ? kClientOk : kClientFailed;
    }
  }
  throw Unreachable("the stream ended before the campaign did (server shut down?)");
}

int run_command(const std::string& command, const ClientArgs& c, const std::vector<std::string>& raw) {
  pb::ClientRequest request;
  if (command == "submit") {
    if (c.positional.size() != 1) throw InputError("usage: gdlab submit SPEC [--server HOST:PORT] [--token-file F]");
    std::ifstream in(c.positional[0], std::ios::binary);
    if (!in) throw InputError(c.positional[0] + ": cannot read the spec file");
    std::ostringstream text;
    text << in.rdbuf();
    request.mutable_submit()->set_spec_text(text.str());
    request.mutable_submit()->set_spec_name(c.positional[0]);
    request.set_token(read_token(c));
    const pb::ServerReply r = call(c, request);
    if (!r.ok()) return report_error(r);
    // stdout: the ID alone, for scripts; stderr: a line for people.
    std::cout << r.campaign_id() << std::endl;
    std::cerr << "submitted campaign " << r.campaign_id() << " (" << r.campaigns(0).tasks_total() << " tasks) -> "
              << r.campaigns(0).file() << std::endl;
    return kClientOk;
  }
  if (command == "list") {
    if (!c.positional.empty()) throw InputError("usage: gdlab list [--server HOST:PORT]");
    request.mutable_list();
    const pb::ServerReply r = call(c, request);
    if (!r.ok()) return report_error(r);
    std::printf("%-6s %-10s %-12s %-7s %s\n", "ID", "STATE", "DONE/TOTAL", "FAILED", "FILE");
    for (const auto& info : r.campaigns())
      std::printf("%-6lld %-10s %5lld/%-6lld %-7lld %s\n", static_cast<long long>(info.campaign_id()),
                  info.state().c_str(), static_cast<long long>(info.tasks_done()),
                  static_cast<long long>(info.tasks_total()), static_cast<long long>(info.tasks_failed()),
                  info.file().c_str());
    return kClientOk;
  }
  if (command == "status") {
    request.mutable_status()->set_campaign_id(parse_id(c));
    const pb::ServerReply r = call(c, request);
    if (!r.ok()) return report_error(r);
    std::cout << to_json(r.campaigns(0)) << std::endl;
    return kClientOk;
  }
  if (command == "watch") return watch(c);
  if (command == "cancel") {
    request.mutable_cancel()->set_campaign_id(parse_id(c));
    request.set_token(read_token(c));
    const pb::ServerReply r = call(c, request);
    if (!r.ok()) return report_error(r);
    std::cout << to_json(r.campaigns(0)) << std::endl;
    return kClientOk;
  }
  if (command == "shutdown") {
    if (!c.positional.empty()) throw InputError("usage: gdlab shutdown [--server HOST:PORT] [--token-file F]");
    request.mutable_shutdown();
    request.set_token(read_token(c));
    const pb::ServerReply r = call(c, request);
    if (!r.ok()) return report_error(r);
    std::cerr << "the server is draining and will exit" << std::endl;
    return kClientOk;
  }
  (void)raw;
  throw InputError("unknown command " + command);
}

}  // namespace

bool is_client_command(const std::string& command) {
  return command == "submit" || command == "list" || command == "status" || command == "watch" ||
         command == "cancel" || command == "shutdown";
}

int client_main(const std::string& command, const std::vector<std::string>& args) {
  try {
    return run_command(command, parse_args(args), args);
  } catch (const Unreachable& e) {
    std::cerr << "gdlab: error: " << e.what() << std::endl;
    return kClientUnreachable;
  } catch (const InputError& e) {
    std::cerr << "gdlab: error: " << e.what() << std::endl;
    return kClientBadInput;
  }
}

}  // namespace gdlab
