// `gdlab serve`: the coordinator as a service. A Boost.Asio front end (its own thread) accepts
// length-prefixed protobuf frames (proto/service.proto) on TCP; the thread that owns MPI runs the
// Coordinator and every campaign. The two threads talk only through a CommandQueue (Asio -> MPI)
// and asio::post (MPI -> Asio): Asio threads never call MPI (platform.md §3.3), and the MPI thread
// never touches a socket.
#pragma once

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/service.pb.h"

namespace gdlab {

inline constexpr int kServiceSchemaVersion = 1;

struct ServiceOptions {
  std::string listen = "127.0.0.1:7878";  // host:port; port 0 picks a free port
  std::string data_dir;                   // campaign files, the token and the endpoint file
  std::vector<std::string> input_dirs;    // where specs may read input files (default DATA/inputs)
  std::size_t max_frame_bytes = 4 << 20;
  std::size_t max_connections = 512;
  std::chrono::milliseconds read_timeout{10000};  // to receive a whole request frame
  std::size_t max_queued_frames = 100000;         // per connection; a slower reader is dropped
  bool quiet = false;
};

// A request from the front end to the MPI thread, with the way back.
struct ServiceCommand {
  enum class Kind { Request, Drain, Checkpoint };
  Kind kind = Kind::Request;
  pb::ClientRequest request;
  // Delivers the reply to the connection that asked (callable from any thread: it posts).
  std::function<void(pb::ServerReply)> reply;
};

class CommandQueue {
 public:
  void push(ServiceCommand command);
  std::optional<ServiceCommand> pop();

 private:
  std::mutex mutex_;
  std::deque<ServiceCommand> queue_;
};

class Session;

// The Asio side. Construct and start() on the MPI thread; everything else it does runs on its
// own io thread, except publish()/stop_accepting()/stop(), which may be called from any thread.
class FrontEnd {
 public:
  FrontEnd(ServiceOptions options, std::string token, CommandQueue& queue);
  ~FrontEnd();
  // Binds (throws InputError for a bad or busy address) and starts the io thread.
  void start();
  unsigned short port() const { return port_; }
  std::string endpoint() const;
  // Sends `reply` to every watcher of `campaign_id`; `final` ends their streams.
  void publish(std::int64_t campaign_id, pb::ServerReply reply, bool final);
  void stop_accepting();
  // Lets queued frames go out (up to `grace`), then stops the io thread and joins it.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  std::size_t connections() const { return connections_.load(); }

 private:
  friend class Session;
  void accept();
  void wait_signal();
  void subscribe(std::int64_t campaign_id, const std::shared_ptr<Session>& session);
  void unsubscribe(const Session* session);

  ServiceOptions options_;
  std::string token_;
  CommandQueue& queue_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  std::thread thread_;
  unsigned short port_ = 0;
  std::atomic<std::size_t> connections_{0};
  std::map<std::int64_t, std::set<std::shared_ptr<Session>>> watchers_;  // io thread only
};

// Parses "host:port"; throws InputError naming the flag.
std::pair<std::string, unsigned short> parse_host_port(const std::string& text, const std::string& flag);

// Writes a fresh random token to DIR/token with mode 0600 and returns it.
std::string write_token_file(const std::string& data_dir);

// Frames: 4-byte big-endian length, then the message.
std::string frame(const google::protobuf::Message& message);

}  // namespace gdlab
