#include "common/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/errors.h"

namespace gdlab {
namespace {

constexpr char kMagic[8] = {'G', 'D', 'L', 'C', 'K', 'P', 'T', '1'};

std::uint64_t fnv1a(const std::string& data) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(const std::string& in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
  return v;
}

// Owns a POSIX file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void close_checked(const std::string& what) {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw StoreError(what + ": close failed: " + std::strerror(errno));
  }

 private:
  int fd_;
};

void fsync_directory(const std::string& dir) {
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  if (d.get() < 0) throw StoreError(dir + ": cannot open directory to fsync: " + std::strerror(errno));
  if (::fsync(d.get()) != 0) throw StoreError(dir + ": fsync failed: " + std::strerror(errno));
}

}  // namespace

void write_checkpoint(const std::string& path, const std::string& payload) {
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw StoreError(dir + ": cannot create checkpoint directory: " + ec.message());

  std::string bytes(kMagic, sizeof kMagic);
  put_u64(bytes, payload.size());
  bytes += payload;
  put_u64(bytes, fnv1a(payload));

  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw StoreError(tmp + ": cannot create checkpoint: " + std::strerror(errno));
    std::size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(fd.get(), bytes.data() + written, bytes.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw StoreError(tmp + ": write failed: " + std::strerror(errno));
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw StoreError(tmp + ": fsync failed: " + std::strerror(errno));
    fd.close_checked(tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw StoreError(path + ": rename of the new checkpoint failed: " + std::strerror(errno));
  fsync_directory(dir);
}

std::optional<std::string> read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < sizeof kMagic + 16 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw StoreError(path + ": not a gdlab checkpoint (bad magic or too short)");
  const std::uint64_t length = get_u64(bytes, sizeof kMagic);
  if (length != bytes.size() - sizeof kMagic - 16)
    throw StoreError(path + ": truncated checkpoint (length field " + std::to_string(length) + ", file holds " +
                     std::to_string(bytes.size() - sizeof kMagic - 16) + " bytes)");
  std::string payload = bytes.substr(sizeof kMagic + 8, length);
  if (fnv1a(payload) != get_u64(bytes, sizeof kMagic + 8 + length))
    throw StoreError(path + ": checkpoint checksum mismatch");
  return payload;
}

void remove_checkpoint(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::remove(path, ec)) {
    const std::filesystem::path p(path);
    fsync_directory(p.parent_path().empty() ? "." : p.parent_path().string());
  }
}

}  // namespace gdlab
