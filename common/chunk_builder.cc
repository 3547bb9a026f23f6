#include "common/chunk_builder.h"

#include "common/errors.h"

namespace gdlab {

ChunkBuilder::ChunkBuilder(std::int64_t campaign_id, std::int64_t task_id)
    : campaign_id_(campaign_id), task_id_(task_id) {
  chunk_.set_campaign_id(campaign_id_);
  chunk_.set_task_id(task_id_);
}

void ChunkBuilder::append(std::string_view path, std::int64_t step, double time, std::span<const double> value) {
  auto it = series_index_.find(path);
  if (it == series_index_.end()) {
    auto* s = chunk_.add_series();
    s->set_path(std::string(path));
    s->set_width(static_cast<std::int32_t>(value.size()));
    it = series_index_.emplace(std::string(path), chunk_.series_size() - 1).first;
  }
  auto* s = chunk_.mutable_series(it->second);
  if (static_cast<std::size_t>(s->width()) != value.size())
    throw Error("series " + std::string(path) + ": sample width changed");
  s->add_step(step);
  s->add_time(time);
  for (double v : value) s->add_value(v);
  bytes_ += 16 + 8 * value.size();
}

void ChunkBuilder::put_array(std::string_view path, const std::vector<std::uint64_t>& shape,
                             std::span<const double> data) {
  auto* a = chunk_.add_arrays();
  a->set_path(std::string(path));
  for (auto d : shape) a->add_shape(d);
  for (double v : data) a->add_value(v);
  bytes_ += 8 * data.size();
}

void ChunkBuilder::set_attribute(std::string_view name, std::string_view text) {
  auto* a = chunk_.add_attributes();
  a->set_name(std::string(name));
  a->set_text(std::string(text));
}

void ChunkBuilder::set_attribute(std::string_view name, double value) {
  auto* a = chunk_.add_attributes();
  a->set_name(std::string(name));
  a->set_number(value);
}

bool ChunkBuilder::empty() const {
  return chunk_.series_size() == 0 && chunk_.arrays_size() == 0 && chunk_.attributes_size() == 0;
}

pb::TrajectoryChunk ChunkBuilder::take() {
  pb::TrajectoryChunk out = std::move(chunk_);
  chunk_ = pb::TrajectoryChunk();
  chunk_.set_campaign_id(campaign_id_);
  chunk_.set_task_id(task_id_);
  series_index_.clear();
  bytes_ = 0;
  return out;
}

}  // namespace gdlab
