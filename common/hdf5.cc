#include "common/hdf5.h"

#include <algorithm>
#include <mutex>

#include "common/errors.h"

namespace gdlab::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; we collect it into the exception instead.
void silence_automatic_error_printing() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

herr_t collect_error(unsigned depth, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<std::string*>(client);
  if (depth > 6) return 0;  // the innermost frames are the informative ones; cap the length
  if (!out->empty()) out->append("; ");
  out->append(err->func_name ? err->func_name : "?");
  out->append("(): ");
  out->append(err->desc ? err->desc : "unknown error");
  return 0;
}

[[noreturn]] void throw_with_stack(std::string_view what) {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &stack);
  H5Eclear2(H5E_DEFAULT);
  std::string message(what);
  if (!stack.empty()) message += " (HDF5: " + stack + ")";
  throw StoreError(message);
}

Handle string_type() {
  Handle t(check_id(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  check(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

Handle scalar_space() { return Handle(check_id(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose); }

}  // namespace

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);
  id_ = H5I_INVALID_HID;
}

void check(herr_t status, std::string_view what) {
  if (status < 0) throw_with_stack(what);
}

hid_t check_id(hid_t id, std::string_view what) {
  silence_automatic_error_printing();
  if (id < 0) throw_with_stack(what);
  return id;
}

// ---------------------------------------------------------------------------------- attributes

bool Object::has_attribute(const std::string& name) const {
  const htri_t r = H5Aexists(id(), name.c_str());
  check(r, "H5Aexists " + name);
  return r > 0;
}

namespace {
Handle fresh_attribute(hid_t obj, const std::string& name, hid_t type, hid_t space) {
  if (H5Aexists(obj, name.c_str()) > 0) check(H5Adelete(obj, name.c_str()), "H5Adelete " + name);
  return Handle(check_id(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                         "H5Acreate2 " + name),
                H5Aclose);
}
}  // namespace

void Object::set_attribute(const std::string& name, std::string_view text) {
  Handle type = string_type();
  Handle space = scalar_space();
  Handle attr = fresh_attribute(id(), name, type.get(), space.get());
  const std::string owned(text);
  const char* ptr = owned.c_str();
  check(H5Awrite(attr.get(), type.get(), &ptr), "H5Awrite " + name);
}

void Object::set_attribute(const std::string& name, double value) {
  Handle space = scalar_space();
  Handle attr = fresh_attribute(id(), name, H5T_NATIVE_DOUBLE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), "H5Awrite " + name);
}

void Object::set_attribute(const std::string& name, std::int64_t value) {
  Handle space = scalar_space();
  Handle attr = fresh_attribute(id(), name, H5T_STD_I64LE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), "H5Awrite " + name);
}

void Object::set_attribute(const std::string& name, std::uint64_t value) {
  Handle space = scalar_space();
  Handle attr = fresh_attribute(id(), name, H5T_STD_U64LE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value), "H5Awrite " + name);
}

void Object::set_attribute(const std::string& name, std::span<const std::int32_t> values) {
  const hsize_t dims[1] = {values.size()};
  Handle space(check_id(H5Screate_simple(1, dims, nullptr), "H5Screate_simple"), H5Sclose);
  Handle attr = fresh_attribute(id(), name, H5T_STD_I32LE, space.get());
  check(H5Awrite(attr.get(), H5T_NATIVE_INT32, values.data()), "H5Awrite " + name);
}

std::string Object::attribute_string(const std::string& name) const {
  Handle attr(check_id(H5Aopen(id(), name.c_str(), H5P_DEFAULT), "H5Aopen " + name), H5Aclose);
  Handle type = string_type();
  char* buffer = nullptr;
  check(H5Aread(attr.get(), type.get(), &buffer), "H5Aread " + name);
  std::string result = buffer ? buffer : "";
  H5free_memory(buffer);
  return result;
}

double Object::attribute_double(const std::string& name) const {
  Handle attr(check_id(H5Aopen(id(), name.c_str(), H5P_DEFAULT), "H5Aopen " + name), H5Aclose);
  double value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), "H5Aread " + name);
  return value;
}

std::int64_t Object::attribute_int(const std::string& name) const {
  Handle attr(check_id(H5Aopen(id(), name.c_str(), H5P_DEFAULT), "H5Aopen " + name), H5Aclose);
  std::int64_t value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), "H5Aread " + name);
  return value;
}

std::vector<std::string> Object::attribute_names() const {
  H5O_info_t info;
  check(H5Oget_info(id(), &info), "H5Oget_info");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    const ssize_t len = H5Aget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check(static_cast<herr_t>(len < 0 ? -1 : 0), "H5Aget_name_by_idx");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Aget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

void Object::remove_attribute(const std::string& name) { check(H5Adelete(id(), name.c_str()), "H5Adelete " + name); }

// ---------------------------------------------------------------------------------- datasets

std::vector<hsize_t> Dataset::shape() const {
  Handle space(check_id(H5Dget_space(id()), "H5Dget_space"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  check(rank, "H5Sget_simple_extent_ndims");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), "H5Sget_simple_extent_dims");
  return dims;
}

void Dataset::append_raw(const void* data, hid_t mem_type, hsize_t rows) {
  if (rows == 0) return;
  std::vector<hsize_t> dims = shape();
  if (dims.empty() || dims.size() > 2) throw StoreError("append: dataset is not a rank-1 or rank-2 series");
  const hsize_t old_rows = dims[0];
  dims[0] += rows;
  check(H5Dset_extent(id(), dims.data()), "H5Dset_extent");
  Handle file_space(check_id(H5Dget_space(id()), "H5Dget_space"), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = old_rows;
  count[0] = rows;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "H5Sselect_hyperslab");
  Handle mem_space(check_id(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "H5Screate_simple"),
                   H5Sclose);
  check(H5Dwrite(id(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data), "H5Dwrite");
}

void Dataset::truncate_rows(hsize_t rows) {
  std::vector<hsize_t> dims = shape();
  if (dims.empty() || dims.size() > 2) throw StoreError("truncate: dataset is not a rank-1 or rank-2 series");
  if (rows > dims[0])
    throw StoreError("truncate: the series has " + std::to_string(dims[0]) + " rows, fewer than " + std::to_string(rows));
  dims[0] = rows;
  check(H5Dset_extent(id(), dims.data()), "H5Dset_extent");
}

void Dataset::append(std::span<const double> data, hsize_t rows) { append_raw(data.data(), H5T_NATIVE_DOUBLE, rows); }
void Dataset::append(std::span<const std::int64_t> data, hsize_t rows) {
  append_raw(data.data(), H5T_NATIVE_INT64, rows);
}

namespace {
size_t element_count(const std::vector<hsize_t>& dims) {
  size_t n = 1;
  for (hsize_t d : dims) n *= static_cast<size_t>(d);
  return n;
}
}  // namespace

std::vector<double> Dataset::read_doubles() const {
  std::vector<double> out(element_count(shape()));
  if (!out.empty()) check(H5Dread(id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "H5Dread");
  return out;
}

std::vector<std::int64_t> Dataset::read_ints() const {
  std::vector<std::int64_t> out(element_count(shape()));
  if (!out.empty()) check(H5Dread(id(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "H5Dread");
  return out;
}

std::string Dataset::read_string() const {
  Handle type = string_type();
  char* buffer = nullptr;
  check(H5Dread(id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &buffer), "H5Dread string");
  std::string result = buffer ? buffer : "";
  H5free_memory(buffer);
  return result;
}

std::vector<std::string> Dataset::read_strings() const {
  const size_t n = element_count(shape());
  std::vector<char*> buffers(n, nullptr);
  Handle type = string_type();
  if (n > 0) check(H5Dread(id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffers.data()), "H5Dread strings");
  std::vector<std::string> out;
  out.reserve(n);
  for (char* b : buffers) {
    out.emplace_back(b ? b : "");
    H5free_memory(b);
  }
  return out;
}

// ---------------------------------------------------------------------------------- groups

bool Group::exists(const std::string& path) const {
  // H5Lexists requires every intermediate link to exist, so walk the path component-wise.
  size_t pos = 0;
  while (true) {
    const size_t slash = path.find('/', pos);
    const std::string prefix = path.substr(0, slash);
    const htri_t r = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
    check(r, "H5Lexists " + prefix);
    if (r == 0) return false;
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
}

Group Group::create_group(const std::string& name) {
  return Group(Handle(check_id(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                               "H5Gcreate2 " + name),
                      H5Gclose));
}

Group Group::open_group(const std::string& name) const {
  return Group(Handle(check_id(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), "H5Gopen2 " + name), H5Gclose));
}

Group Group::require_group(const std::string& path) {
  Handle lcpl(check_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group");
  if (exists(path)) return open_group(path);
  return Group(Handle(check_id(H5Gcreate2(id(), path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                               "H5Gcreate2 " + path),
                      H5Gclose));
}

Dataset Group::open_dataset(const std::string& name) const {
  return Dataset(Handle(check_id(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), "H5Dopen2 " + name), H5Dclose));
}

bool Group::is_group(const std::string& name) const {
  if (!exists(name)) return false;
  Handle object(check_id(H5Oopen(id(), name.c_str(), H5P_DEFAULT), "H5Oopen " + name), H5Oclose);
  return H5Iget_type(object.get()) == H5I_GROUP;
}

void Group::remove(const std::string& name) { check(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), "H5Ldelete " + name); }

std::vector<std::string> Group::children() const {
  H5G_info_t info;
  check(H5Gget_info(id(), &info), "H5Gget_info");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check(static_cast<herr_t>(len < 0 ? -1 : 0), "H5Lget_name_by_idx");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

Dataset Group::create_series(const std::string& name, ElementType type, hsize_t width, hsize_t chunk_rows) {
  const int rank = width == 0 ? 1 : 2;
  const hsize_t dims[2] = {0, width};
  const hsize_t max_dims[2] = {H5S_UNLIMITED, width};
  const hsize_t chunk[2] = {std::max<hsize_t>(1, chunk_rows), std::max<hsize_t>(1, width)};
  Handle space(check_id(H5Screate_simple(rank, dims, max_dims), "H5Screate_simple"), H5Sclose);
  Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_chunk(dcpl.get(), rank, chunk), "H5Pset_chunk");
  check(H5Pset_shuffle(dcpl.get()), "H5Pset_shuffle");
  check(H5Pset_deflate(dcpl.get(), 4), "H5Pset_deflate");
  Handle lcpl(check_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group");
  const hid_t file_type = type == ElementType::Float64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
  return Dataset(Handle(check_id(H5Dcreate2(id(), name.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(),
                                            H5P_DEFAULT),
                                 "H5Dcreate2 " + name),
                        H5Dclose));
}

Dataset Group::write_array(const std::string& name, std::span<const hsize_t> shape, std::span<const double> data) {
  size_t n = 1;
  for (hsize_t d : shape) n *= static_cast<size_t>(d);
  if (n != data.size()) throw StoreError("write_array " + name + ": shape does not match the data size");
  Handle space(shape.empty() ? H5Screate(H5S_SCALAR)
                             : H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr),
               H5Sclose);
  check_id(space.get(), "H5Screate");
  Handle lcpl(check_id(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group");
  Dataset ds(Handle(check_id(H5Dcreate2(id(), name.c_str(), H5T_IEEE_F64LE, space.get(), lcpl.get(), H5P_DEFAULT,
                                        H5P_DEFAULT),
                             "H5Dcreate2 " + name),
                    H5Dclose));
  if (n > 0) check(H5Dwrite(ds.id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), "H5Dwrite " + name);
  return ds;
}

Dataset Group::write_string(const std::string& name, std::string_view text) {
  Handle type = string_type();
  Handle space = scalar_space();
  Dataset ds(Handle(check_id(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT),
                             "H5Dcreate2 " + name),
                    H5Dclose));
  const std::string owned(text);
  const char* ptr = owned.c_str();
  check(H5Dwrite(ds.id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &ptr), "H5Dwrite " + name);
  return ds;
}

Dataset Group::write_strings(const std::string& name, const std::vector<std::string>& lines) {
  Handle type = string_type();
  const hsize_t dims[1] = {lines.size()};
  Handle space(check_id(H5Screate_simple(1, dims, nullptr), "H5Screate_simple"), H5Sclose);
  Dataset ds(Handle(check_id(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                        H5P_DEFAULT),
                             "H5Dcreate2 " + name),
                    H5Dclose));
  std::vector<const char*> ptrs;
  ptrs.reserve(lines.size());
  for (const auto& l : lines) ptrs.push_back(l.c_str());
  if (!lines.empty())
    check(H5Dwrite(ds.id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "H5Dwrite " + name);
  return ds;
}

void Group::link(const std::string& target, const std::string& link_name) {
  check(H5Lcreate_hard(id(), target.c_str(), id(), link_name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
        "H5Lcreate_hard " + link_name);
}

// ---------------------------------------------------------------------------------- files

namespace {
Handle file_access(Locking locking) {
  Handle fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
  // platform.md §5.2: locking off is safe because gdlab guarantees one writer per file.
  check(H5Pset_file_locking(fapl.get(), locking == Locking::On, true), "H5Pset_file_locking");
  return fapl;
}
}  // namespace

File File::create(const std::string& path, Locking locking) {
  Handle fapl = file_access(locking);
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get());
  return File(Handle(check_id(id, "cannot create HDF5 file " + path), H5Fclose), path);
}

File File::open_read_only(const std::string& path) {
  Handle fapl = file_access(Locking::On);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  return File(Handle(check_id(id, "cannot open HDF5 file " + path), H5Fclose), path);
}

File File::open_read_write(const std::string& path, Locking locking) {
  Handle fapl = file_access(locking);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  return File(Handle(check_id(id, "cannot open HDF5 file " + path), H5Fclose), path);
}

void File::flush() { check(H5Fflush(id(), H5F_SCOPE_GLOBAL), "H5Fflush " + path_); }

}  // namespace gdlab::h5
