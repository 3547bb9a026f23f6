#include "common/campaign_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <set>

#include "common/errors.h"

#ifndef GDLAB_VERSION
#define GDLAB_VERSION "0.0.0"
#endif

namespace gdlab {

const char* gdlab_version() { return GDLAB_VERSION; }

namespace {

std::string iso8601_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Relative paths from workers must stay inside the task group.
void check_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos)
    throw StoreError("invalid result path '" + path + "'");
}

}  // namespace

CampaignStore::CampaignStore(h5::File file, const Campaign& campaign) : file_(std::move(file)) {
  for (const auto& t : campaign.tasks) task_names_[t.task_id] = t.task_name;
}

CampaignStore CampaignStore::create(const std::string& path, const Campaign& campaign) {
  const auto locking = campaign.spec.store().locking() == pb::StoreOptions::LOCKING_OFF ? h5::Locking::Off
                                                                                         : h5::Locking::On;
  CampaignStore store(h5::File::create(path, locking), campaign);
  h5::File& f = store.file_;
  f.set_attribute("gdlab_status", std::string_view("running"));
  f.set_attribute("gdlab_version", std::string_view(gdlab_version()));
  f.set_attribute("created", std::string_view(iso8601_now()));

  // H5MD 1.1 root (platform.md §6.1).
  h5::Group h5md = f.create_group("h5md");
  const std::int32_t version[2] = {1, 1};
  h5md.set_attribute("version", std::span<const std::int32_t>(version, 2));
  h5md.create_group("author").set_attribute("name", std::string_view("gdlab user"));
  h5::Group creator = h5md.create_group("creator");
  creator.set_attribute("name", std::string_view("gdlab"));
  creator.set_attribute("version", std::string_view(gdlab_version()));
  h5md.require_group("modules/gdlab").set_attribute("version", std::string_view("1"));

  h5::Group params = f.create_group("parameters");
  params.set_attribute("campaign_name", std::string_view(campaign.spec.name()));
  params.set_attribute("campaign_seed", static_cast<std::uint64_t>(campaign.spec.seed()));
  params.set_attribute("schema_version", static_cast<std::int64_t>(campaign.spec.schema_version()));
  params.set_attribute("spec_file", std::string_view(campaign.spec_path));
  params.write_string("spec_text", campaign.spec_text);
  params.write_strings("tasks", campaign.task_lines());

  h5::Group tasks = f.create_group("tasks");
  for (const auto& t : campaign.tasks) write_task_group(tasks, campaign, t);
  store.flush();
  return store;
}

void CampaignStore::write_task_group(h5::Group& tasks, const Campaign& campaign, const PlannedTask& t) {
  h5::Group g = tasks.create_group(t.task_name);
  g.set_attribute("task_id", t.task_id);
  g.set_attribute("kind", std::string_view(t.kind));
  g.set_attribute("experiment", std::string_view(t.experiment_name));
  g.set_attribute("experiment_index", t.experiment_index);
  g.set_attribute("sweep_point", std::string_view(t.sweep_point));
  g.set_attribute("seed", campaign.context_for(t).task_seed(0));
  g.set_attribute("status", std::string_view("pending"));
  g.set_attribute("error", std::string_view(""));
  g.write_string("config", Campaign::kind_config_text(t.experiment));
}

CampaignStore CampaignStore::resume(const std::string& path, const Campaign& campaign,
                                    std::set<std::int64_t>* done_task_ids,
                                    const std::map<std::int64_t, std::map<std::string, std::uint64_t>>& cut_back,
                                    std::set<std::int64_t>* cut_back_done) {
  const auto locking = campaign.spec.store().locking() == pb::StoreOptions::LOCKING_OFF ? h5::Locking::Off
                                                                                         : h5::Locking::On;
  CampaignStore store(h5::File::open_read_write(path, locking), campaign);
  h5::File& f = store.file_;
  std::string stored;
  try {
    stored = f.open_dataset("parameters/spec_text").read_string();
  } catch (const StoreError&) {
    throw InputError(path + ": not a gdlab campaign file (no /parameters/spec_text); cannot resume it");
  }
  if (stored != campaign.spec_text)
    throw InputError(path + ": holds a different campaign spec than " + campaign.spec_path +
                     " (the spec text differs); --resume needs the spec the file was started with");
  h5::Group tasks = f.open_group("tasks");
  for (const auto& t : campaign.tasks) {
    if (tasks.exists(t.task_name) && tasks.open_group(t.task_name).attribute_string("status") == "done") {
      done_task_ids->insert(t.task_id);
      continue;
    }
    if (auto it = cut_back.find(t.task_id); it != cut_back.end() && tasks.exists(t.task_name)) {
      try {
        h5::Group g = tasks.open_group(t.task_name);
        cut_back_task_group(g, it->second);
        if (cut_back_done) cut_back_done->insert(t.task_id);
        continue;
      } catch (const StoreError&) {
        // The group does not hold what the checkpoint says (it cannot happen when the file was
        // flushed before the checkpoint was committed, as the coordinator does): start over.
      }
    }
    // Anything but a finished task is computed again from scratch: its partial results go, so
    // nothing is ever appended twice (separable kinds are deterministic: the rerun is bitwise
    // the same as an uninterrupted run).
    if (tasks.exists(t.task_name)) h5::check(H5Ldelete(tasks.id(), t.task_name.c_str(), H5P_DEFAULT), "H5Ldelete");
    write_task_group(tasks, campaign, t);
  }
  const std::int64_t resumes = f.has_attribute("resume_count") ? f.attribute_int("resume_count") + 1 : 1;
  f.set_attribute("resume_count", resumes);
  if (const char* restarts = std::getenv("SLURM_RESTART_COUNT"))
    f.set_attribute("slurm_restart_count", static_cast<std::int64_t>(std::atoll(restarts)));
  f.set_attribute("gdlab_status", std::string_view("running"));
  store.flush();
  return store;
}

namespace {
// The attributes write_task_group sets; a task cut back to its checkpoint keeps only these.
bool planned_attribute(const std::string& name) {
  static const std::set<std::string> planned = {"task_id",     "kind", "experiment", "experiment_index",
                                                "sweep_point", "seed", "status",     "error"};
  return planned.count(name) > 0;
}
}  // namespace

void CampaignStore::cut_back_task_group(h5::Group& group, const std::map<std::string, std::uint64_t>& rows) {
  std::set<std::string> found;
  // Series are groups holding step, time and value; everything else the task wrote (arrays, and
  // series the checkpoint has not seen) goes, and is written again by the resumed task.
  std::function<void(h5::Group&, const std::string&)> walk = [&](h5::Group& g, const std::string& prefix) {
    for (const std::string& name : g.children()) {
      const std::string path = prefix + name;
      if (!g.is_group(name)) {
        if (!(prefix.empty() && name == "config")) g.remove(name);
        continue;
      }
      h5::Group sub = g.open_group(name);
      if (sub.exists("step") && sub.exists("time") && sub.exists("value") && !sub.is_group("step")) {
        auto it = rows.find(path);
        if (it == rows.end()) {
          g.remove(name);
          continue;
        }
        for (const char* column : {"step", "time", "value"}) sub.open_dataset(column).truncate_rows(it->second);
        found.insert(path);
      } else {
        walk(sub, path + "/");
      }
    }
  };
  walk(group, "");
  for (const auto& [path, n] : rows)
    if (!found.count(path)) throw StoreError("series " + path + " of the checkpoint is not in the file");
  for (const std::string& name : group.attribute_names())
    if (!planned_attribute(name)) group.remove_attribute(name);
  group.set_attribute("status", std::string_view("pending"));
  group.set_attribute("error", std::string_view(""));
}

std::map<std::string, std::uint64_t> CampaignStore::series_rows(std::int64_t task_id) {
  // Every series of the task in the file, not only those appended to since this process opened
  // it: a task resumed earlier has series it will not touch again until its end.
  std::map<std::string, std::uint64_t> rows;
  std::function<void(const h5::Group&, const std::string&)> walk = [&](const h5::Group& g, const std::string& prefix) {
    for (const std::string& name : g.children()) {
      if (!g.is_group(name)) continue;
      h5::Group sub = g.open_group(name);
      if (sub.exists("step") && sub.exists("value") && !sub.is_group("step"))
        rows[prefix + name] = sub.open_dataset("step").shape().at(0);
      else
        walk(sub, prefix + name + "/");
    }
  };
  walk(open_task(task_id).group, "");
  return rows;
}

h5::Group CampaignStore::task_group(std::int64_t task_id) const {
  auto it = task_names_.find(task_id);
  if (it == task_names_.end()) throw StoreError("unknown task id " + std::to_string(task_id));
  return file_.open_group("tasks/" + it->second);
}

CampaignStore::OpenTask& CampaignStore::open_task(std::int64_t task_id) {
  auto it = open_.find(task_id);
  if (it != open_.end()) return it->second;
  return open_.emplace(task_id, OpenTask{task_group(task_id), {}}).first->second;
}

void CampaignStore::mark_running(std::int64_t task_id, int worker_rank) {
  OpenTask& t = open_task(task_id);
  t.group.set_attribute("status", std::string_view("running"));
  t.group.set_attribute("worker_rank", static_cast<std::int64_t>(worker_rank));
}

CampaignStore::Series& CampaignStore::series(OpenTask& task, const pb::SeriesChunk& chunk) {
  auto it = task.series.find(chunk.path());
  if (it != task.series.end()) {
    if (it->second.width != chunk.width())
      throw StoreError("series " + chunk.path() + " changed width from " + std::to_string(it->second.width) + " to " +
                       std::to_string(chunk.width()));
    return it->second;
  }
  check_relative_path(chunk.path());
  if (chunk.width() < 1) throw StoreError("series " + chunk.path() + " has width < 1");
  const hsize_t width = static_cast<hsize_t>(chunk.width());
  Series s;
  s.width = chunk.width();
  if (task.group.exists(chunk.path() + "/step")) {
    // A task resumed from its checkpoint continues the series it had (cut back on resume).
    h5::Group g = task.group.open_group(chunk.path());
    s.step = g.open_dataset("step");
    s.time = g.open_dataset("time");
    s.value = g.open_dataset("value");
    const std::vector<hsize_t> shape = s.value.shape();
    if ((width == 1 ? shape.size() != 1 : (shape.size() != 2 || shape[1] != width)))
      throw StoreError("series " + chunk.path() + " in the file has another width than the resumed task's");
    return task.series.emplace(chunk.path(), std::move(s)).first->second;
  }
  // Chunks of about 32 KiB of values (platform.md §6.6: 16 KiB - 1 MiB for small frames).
  const hsize_t chunk_rows = std::clamp<hsize_t>(4096 / width, 16, 4096);
  h5::Group g = task.group.require_group(chunk.path());
  s.step = g.create_series("step", h5::ElementType::Int64, 0, chunk_rows);
  s.time = g.create_series("time", h5::ElementType::Float64, 0, chunk_rows);
  s.value = g.create_series("value", h5::ElementType::Float64, width == 1 ? 0 : width, chunk_rows);
  return task.series.emplace(chunk.path(), std::move(s)).first->second;
}

void CampaignStore::append(const pb::TrajectoryChunk& chunk) {
  OpenTask& task = open_task(chunk.task_id());
  for (const auto& sc : chunk.series()) {
    const size_t rows = static_cast<size_t>(sc.step_size());
    if (static_cast<size_t>(sc.time_size()) != rows ||
        static_cast<size_t>(sc.value_size()) != rows * static_cast<size_t>(std::max(1, sc.width())))
      throw StoreError("series " + sc.path() + ": inconsistent chunk sizes");
    Series& s = series(task, sc);
    s.step.append(std::span<const std::int64_t>(sc.step().data(), rows), rows);
    s.time.append(std::span<const double>(sc.time().data(), rows), rows);
    s.value.append(std::span<const double>(sc.value().data(), static_cast<size_t>(sc.value_size())), rows);
    rows_total_ += rows;
  }
  for (const auto& a : chunk.arrays()) {
    check_relative_path(a.path());
    std::vector<hsize_t> shape(a.shape().begin(), a.shape().end());
    task.group.write_array(a.path(), shape, std::span<const double>(a.value().data(), static_cast<size_t>(a.value_size())));
  }
  for (const auto& attr : chunk.attributes()) {
    if (attr.has_text())
      task.group.set_attribute(attr.name(), std::string_view(attr.text()));
    else
      task.group.set_attribute(attr.name(), attr.number());
  }
}

void CampaignStore::mark_done(std::int64_t task_id, double wall_seconds) {
  OpenTask& t = open_task(task_id);
  t.group.set_attribute("status", std::string_view("done"));
  t.group.set_attribute("wall_seconds", wall_seconds);
  open_.erase(task_id);
}

void CampaignStore::mark_failed(std::int64_t task_id, const std::string& error) {
  OpenTask& t = open_task(task_id);
  t.group.set_attribute("status", std::string_view("failed"));
  t.group.set_attribute("error", std::string_view(error));
  open_.erase(task_id);
}

void CampaignStore::mark_cancelled(std::int64_t task_id) {
  OpenTask& t = open_task(task_id);
  t.group.set_attribute("status", std::string_view("cancelled"));
  open_.erase(task_id);
}

std::uint64_t CampaignStore::flush() {
  file_.flush();
  return rows_total_;
}

void CampaignStore::finish(const std::string& status) {
  open_.clear();
  file_.set_attribute("gdlab_status", std::string_view(status));
  flush();
}

}  // namespace gdlab
