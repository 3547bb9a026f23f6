#include "common/experiment_kind.h"

#include <algorithm>
#include <filesystem>

#include "common/errors.h"

namespace gdlab {

std::string TaskContext::resolve_path(const std::string& path) const {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (!p.is_absolute() && !spec_dir.empty()) p = fs::path(spec_dir) / p;
  p = p.lexically_normal();
  if (allowed_input_dirs.empty()) return p.string();
  // Compare canonical forms so that neither ".." nor a symbolic link leads outside.
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(p, ec);
  for (const auto& dir : allowed_input_dirs) {
    const fs::path root = fs::weakly_canonical(fs::path(dir), ec);
    auto [r, _] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
    if (r == root.end()) return real.string();
  }
  std::string dirs;
  for (const auto& dir : allowed_input_dirs) dirs += (dirs.empty() ? "" : ", ") + dir;
  throw InputError(path + ": outside the allowed input directories (" + dirs + ")");
}

KindRegistry& KindRegistry::instance() {
  static KindRegistry registry;
  return registry;
}

void KindRegistry::add(std::unique_ptr<ExperimentKind> kind) {
  std::string name(kind->name());
  if (kinds_.count(name)) throw Error("experiment kind registered twice: " + name);
  kinds_.emplace(std::move(name), std::move(kind));
}

const ExperimentKind* KindRegistry::find(std::string_view name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : it->second.get();
}

std::vector<std::string> KindRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, kind] : kinds_) out.push_back(name);
  return out;
}

}  // namespace gdlab
