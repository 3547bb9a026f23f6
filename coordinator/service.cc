#include "coordinator/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/errors.h"

namespace gdlab {

namespace asio = boost::asio;
using asio::ip::tcp;

// ------------------------------------------------------------------------------------ helpers

void CommandQueue::push(ServiceCommand command) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(command));
}

std::optional<ServiceCommand> CommandQueue::pop() {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return std::nullopt;
  ServiceCommand c = std::move(queue_.front());
  queue_.pop_front();
  return c;
}

std::string frame(const google::protobuf::Message& message) {
  const std::string body = message.SerializeAsString();
  const auto n = static_cast<std::uint32_t>(body.size());
  std::string out;
  out.reserve(4 + body.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += body;
  return out;
}

std::pair<std::string, unsigned short> parse_host_port(const std::string& text, const std::string& flag) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw InputError(flag + " " + text + ": expected HOST:PORT, e.g. 127.0.0.1:7878");
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) throw InputError(flag + " " + text + ": bad port '" + port_text + "'");
  if (host == "localhost") host = "127.0.0.1";
  return {host, static_cast<unsigned short>(port)};
}

std::string write_token_file(const std::string& data_dir) {
  unsigned char bytes[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes)) throw Error("cannot read /dev/urandom");
  std::string token;
  char hex[3];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof hex, "%02x", b);
    token += hex;
  }
  const std::string path = (std::filesystem::path(data_dir) / "token").string();
  const std::string tmp = path + ".tmp";
  // Created 0600 from the start (never world-readable), then renamed into place.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw InputError(tmp + ": cannot create the token file");
  ::fchmod(fd, 0600);
  const std::string line = token + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError(path + ": cannot write the token file");
  return token;
}

namespace {

bool same_token(const std::string& a, const std::string& b) {
  // Constant time in the length of the expected token.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

pb::ServerReply error_reply(const std::string& code, const std::string& message) {
  pb::ServerReply r;
  r.set_schema_version(kServiceSchemaVersion);
  r.set_ok(false);
  r.set_error_code(code);
  r.set_error(message);
  return r;
}

}  // namespace

// ------------------------------------------------------------------------------------ Session

// One client connection: reads one request frame (within the read timeout), hands it to the MPI
// thread, writes the reply frame(s), closes. A truncated, oversized or garbage frame closes this
// connection and nothing else.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, FrontEnd& front) : socket_(std::move(socket)), timer_(front.io_), front_(front) {
    ++front_.connections_;
  }
  ~Session() { --front_.connections_; }

  void start() {
    timer_.expires_after(front_.options_.read_timeout);
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (auto self = weak.lock(); self && !ec && !self->request_read_) self->close();
    });
    asio::async_read(socket_, asio::buffer(header_),
                     [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->close();
                       const std::uint32_t n = (std::uint32_t{self->header_[0]} << 24) |
                                               (std::uint32_t{self->header_[1]} << 16) |
                                               (std::uint32_t{self->header_[2]} << 8) | std::uint32_t{self->header_[3]};
                       if (n == 0 || n > self->front_.options_.max_frame_bytes) return self->close();
                       self->body_.resize(n);
                       self->read_body();
                     });
  }

  void write(std::string bytes) {
    if (closed_) return;
    if (out_.size() >= front_.options_.max_queued_frames) return close();  // a reader too slow to keep up
    out_.push_back(std::move(bytes));
    if (out_.size() == 1) write_next();
  }

  void deliver(const pb::ServerReply& reply, std::int64_t watch_id) {
    write(frame(reply));
    if (watch_id >= 0 && reply.ok() && !reply.end_of_stream())
      front_.subscribe(watch_id, shared_from_this());
    else
      close_after_write();
  }

  void close_after_write() {
    close_after_write_ = true;
    if (out_.empty()) close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    front_.unsubscribe(this);
  }

 private:
  void read_body() {
    asio::async_read(socket_, asio::buffer(body_),
                     [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->close();
                       self->request_read_ = true;
                       self->timer_.cancel();
                       self->handle();
                     });
  }

  void handle() {
    pb::ClientRequest request;
    if (!request.ParseFromString(body_) || request.op_case() == pb::ClientRequest::OP_NOT_SET) return close();
    if (request.schema_version() != kServiceSchemaVersion) {
      return deliver(error_reply("bad_request", "unsupported schema_version " + std::to_string(request.schema_version()) +
                                                    " (this server speaks " + std::to_string(kServiceSchemaVersion) + ")"),
                     -1);
    }
    // Submit, cancel and shutdown change state and need the token; list, status and watch are
    // read-only (docs/service.md).
    const bool needs_token = request.has_submit() || request.has_cancel() || request.has_shutdown();
    if (needs_token && !same_token(request.token(), front_.token_))
      return deliver(error_reply("unauthorized", request.token().empty() ? "this call needs the server's token (--token-file DIR/token)"
                                                                          : "wrong token"),
                     -1);
    const std::int64_t watch_id = request.has_watch() ? request.watch().campaign_id() : -1;
    ServiceCommand command;
    command.request = std::move(request);
    asio::io_context& io = front_.io_;
    // The reply callback keeps the session alive until the MPI thread has answered.
    command.reply = [self = shared_from_this(), &io, watch_id](pb::ServerReply reply) {
      asio::post(io, [self, reply = std::move(reply), watch_id] { self->deliver(reply, watch_id); });
    };
    front_.queue_.push(std::move(command));
  }

  void write_next() {
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        if (ec) return self->close();
                        self->out_.pop_front();
                        if (!self->out_.empty())
                          self->write_next();
                        else if (self->close_after_write_)
                          self->close();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  FrontEnd& front_;
  std::array<unsigned char, 4> header_{};
  std::string body_;
  std::deque<std::string> out_;
  bool request_read_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

// ------------------------------------------------------------------------------------ FrontEnd

FrontEnd::FrontEnd(ServiceOptions options, std::string token, CommandQueue& queue)
    : options_(std::move(options)),
      token_(std::move(token)),
      queue_(queue),
      work_(asio::make_work_guard(io_)),
      acceptor_(io_),
      signals_(io_) {}

FrontEnd::~FrontEnd() { stop(std::chrono::milliseconds(0)); }

void FrontEnd::start() {
  const auto [host, port] = parse_host_port(options_.listen, "--listen");
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw InputError("--listen " + options_.listen + ": '" + host + "' is not an IP address");
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw InputError("--listen " + options_.listen + ": cannot listen: " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  if (!address.is_loopback())
    std::cerr << "[gdlab] WARNING: listening on " << endpoint.address().to_string() << ":" << port_
              << ", which is NOT loopback: other machines can connect. Read-only calls (list, status, watch) "
                 "need no token; submit, cancel and shutdown need the token in "
              << options_.data_dir << "/token." << std::endl;
  // SIGTERM/SIGINT drain, SIGUSR1 checkpoints: turned into commands for the MPI thread; the
  // signal handler itself (Asio's) makes no MPI or HDF5 call.
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGUSR1);
  wait_signal();
  accept();
  thread_ = std::thread([this] { io_.run(); });
}

std::string FrontEnd::endpoint() const {
  return parse_host_port(options_.listen, "--listen").first + ":" + std::to_string(port_);
}

void FrontEnd::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;  // cancelled at shutdown
    ServiceCommand c;
    c.kind = signal == SIGUSR1 ? ServiceCommand::Kind::Checkpoint : ServiceCommand::Kind::Drain;
    queue_.push(std::move(c));
    wait_signal();
  });
}

void FrontEnd::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) return;  // the acceptor was closed
    if (connections_.load() >= options_.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);  // over the cap: refuse this one, keep serving the others
    } else {
      std::make_shared<Session>(std::move(socket), *this)->start();
    }
    accept();
  });
}

void FrontEnd::subscribe(std::int64_t campaign_id, const std::shared_ptr<Session>& session) {
  watchers_[campaign_id].insert(session);
}

void FrontEnd::unsubscribe(const Session* session) {
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    auto& set = it->second;
    for (auto s = set.begin(); s != set.end();) s = s->get() == session ? set.erase(s) : std::next(s);
    it = set.empty() ? watchers_.erase(it) : std::next(it);
  }
}

void FrontEnd::publish(std::int64_t campaign_id, pb::ServerReply reply, bool final) {
  asio::post(io_, [this, campaign_id, reply = std::move(reply), final] {
    auto it = watchers_.find(campaign_id);
    if (it == watchers_.end()) return;
    const std::string bytes = frame(reply);
    auto sessions = it->second;  // write() may unsubscribe a slow reader
    if (final) watchers_.erase(campaign_id);
    for (const auto& s : sessions) {
      s->write(bytes);
      if (final) s->close_after_write();
    }
  });
}

void FrontEnd::stop_accepting() {
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    signals_.cancel(ignored);
  });
}

void FrontEnd::stop(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  stop_accepting();
  work_.reset();  // io_.run() returns once the queued writes are done...
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!io_.stopped() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  io_.stop();  // ...or when the grace period is over (a watcher that never reads)
  thread_.join();
}

}  // namespace gdlab
