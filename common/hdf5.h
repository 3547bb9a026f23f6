// A thin RAII layer over the HDF5 C API (in the spirit of HighFive and GROMACS' H5MD writer).
// Every hid_t is owned by a Handle; every failure becomes a StoreError carrying HDF5's own error
// stack. Debian 12's HDF5 is 1.10.8 with the 1.8 API as default, so the numbered variants
// (H5Dcreate2, H5Gopen2, ...) are called explicitly.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gdlab::h5 {

// Owns one hid_t and closes it with the right H5*close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  ~Handle() { reset(); }
  void reset();
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Throws StoreError("<what>: <HDF5 error stack>") if status < 0.
void check(herr_t status, std::string_view what);
hid_t check_id(hid_t id, std::string_view what);

enum class Locking { On, Off };

// Attribute helpers shared by groups and datasets (any object hid_t).
class Object {
 public:
  hid_t id() const { return handle_.get(); }
  bool has_attribute(const std::string& name) const;
  void set_attribute(const std::string& name, std::string_view text);
  void set_attribute(const std::string& name, double value);
  void set_attribute(const std::string& name, std::int64_t value);
  void set_attribute(const std::string& name, std::uint64_t value);
  void set_attribute(const std::string& name, std::span<const std::int32_t> values);
  std::string attribute_string(const std::string& name) const;
  double attribute_double(const std::string& name) const;
  std::int64_t attribute_int(const std::string& name) const;
  std::vector<std::string> attribute_names() const;
  void remove_attribute(const std::string& name);

 protected:
  Object() = default;
  explicit Object(Handle h) : handle_(std::move(h)) {}
  Handle handle_;
};

enum class ElementType { Float64, Int64 };

class Dataset : public Object {
 public:
  Dataset() = default;
  explicit Dataset(Handle h) : Object(std::move(h)) {}
  // Shape of the dataset (current extent).
  std::vector<hsize_t> shape() const;
  // Appends `rows` rows to an extendible dataset of rank 1 (width 0) or rank 2 (width > 0).
  void append(std::span<const double> data, hsize_t rows);
  void append(std::span<const std::int64_t> data, hsize_t rows);
  // Cuts an extendible series back to its first `rows` rows (a resumed task drops what came after
  // its checkpoint).
  void truncate_rows(hsize_t rows);
  std::vector<double> read_doubles() const;
  std::vector<std::int64_t> read_ints() const;
  std::string read_string() const;               // scalar string dataset
  std::vector<std::string> read_strings() const;  // 1-D string dataset

 private:
  void append_raw(const void* data, hid_t mem_type, hsize_t rows);
};

class Group : public Object {
 public:
  Group() = default;
  explicit Group(Handle h) : Object(std::move(h)) {}
  bool exists(const std::string& path) const;
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  // Creates every missing group on `path` ("a/b/c") and returns the last one.
  Group require_group(const std::string& path);
  Dataset open_dataset(const std::string& name) const;
  std::vector<std::string> children() const;
  // True if `name` is a group (false for a dataset or a missing link).
  bool is_group(const std::string& name) const;
  // Unlinks `name` (a group with everything under it, or a dataset).
  void remove(const std::string& name);
  // Extendible, chunked, shuffle + gzip time series: shape [0] (width 0) or [0][width].
  Dataset create_series(const std::string& name, ElementType type, hsize_t width, hsize_t chunk_rows);
  // Fixed arrays (time independent).
  Dataset write_array(const std::string& name, std::span<const hsize_t> shape, std::span<const double> data);
  Dataset write_string(const std::string& name, std::string_view text);
  Dataset write_strings(const std::string& name, const std::vector<std::string>& lines);
  // Creates a hard link `link_name` to the existing object at `target` (H5MD shares step/time).
  void link(const std::string& target, const std::string& link_name);
};

class File : public Group {
 public:
  File() = default;
  // Creates a new file; fails if it exists.
  static File create(const std::string& path, Locking locking = Locking::On);
  static File open_read_only(const std::string& path);
  static File open_read_write(const std::string& path, Locking locking = Locking::On);
  void flush();
  const std::string& path() const { return path_; }

 private:
  File(Handle h, std::string path) : Group(std::move(h)), path_(std::move(path)) {}
  std::string path_;
};

}  // namespace gdlab::h5
