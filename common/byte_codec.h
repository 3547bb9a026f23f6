// A small binary codec for opaque byte strings that only gdlab itself reads back: units and
// their results, and checkpoint states. Values are copied as raw bytes (little-endian x86-64 and
// aarch64 alike; a checkpoint is resumed on the cluster that wrote it), and a reader that runs
// past the end or leaves bytes behind throws, naming what it was reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common/errors.h"

namespace gdlab {

class ByteWriter {
 public:
  template <class T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  // A length-prefixed array of trivially copyable values.
  template <class T>
  void put_array(const T* data, std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    put(static_cast<std::uint64_t>(n));
    out_.append(reinterpret_cast<const char*>(data), n * sizeof(T));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  // `what` names the bytes in errors, e.g. "random_interpolator unit message".
  ByteReader(const std::string& in, std::string what) : in_(in), what_(std::move(what)) {}
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> get_array() {
    const std::uint64_t n = get<std::uint64_t>();
    if (n > (in_.size() - at_) / sizeof(T)) throw TransportError(what_ + ": truncated");
    std::vector<T> out(static_cast<std::size_t>(n));
    if (n > 0) std::memcpy(out.data(), in_.data() + at_, static_cast<std::size_t>(n) * sizeof(T));
    at_ += static_cast<std::size_t>(n) * sizeof(T);
    return out;
  }
  void expect_end() const {
    if (at_ != in_.size()) throw TransportError(what_ + ": trailing bytes");
  }

 private:
  void need(std::size_t n) const {
    if (at_ + n > in_.size()) throw TransportError(what_ + ": truncated");
  }
  const std::string& in_;
  std::string what_;
  std::size_t at_ = 0;
};

}  // namespace gdlab
