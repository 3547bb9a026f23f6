#include "common/experiment_kind.h"

#include <filesystem>

#include "common/errors.h"

namespace gdlab {

std::string TaskContext::resolve_path(const std::string& path) const {
  std::filesystem::path p(path);
  if (p.is_absolute() || spec_dir.empty()) return p.string();
  return (std::filesystem::path(spec_dir) / p).lexically_normal().string();
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
