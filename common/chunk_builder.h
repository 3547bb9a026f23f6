// Builds the TrajectoryChunk message that carries a task's results to the campaign file: the
// Recorder calls of a running task (series samples, arrays, attributes) become one chunk. Used by
// the worker (which ships chunks as they fill or age) and by the coordinator (a merger's results
// for a task split into units), so both produce the very same messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/gdlab.pb.h"

namespace gdlab {

class ChunkBuilder {
 public:
  ChunkBuilder(std::int64_t campaign_id, std::int64_t task_id);
  // A series' samples all have the width of its first sample in this chunk (throws Error if not).
  void append(std::string_view path, std::int64_t step, double time, std::span<const double> value);
  void put_array(std::string_view path, const std::vector<std::uint64_t>& shape, std::span<const double> data);
  void set_attribute(std::string_view name, std::string_view text);
  void set_attribute(std::string_view name, double value);
  bool empty() const;
  // About how many bytes of numbers the chunk holds (its size on the wire, roughly).
  std::size_t bytes() const { return bytes_; }
  const pb::TrajectoryChunk& chunk() const { return chunk_; }
  // Hands the chunk over and starts an empty one for the same task.
  pb::TrajectoryChunk take();

 private:
  std::int64_t campaign_id_, task_id_;
  pb::TrajectoryChunk chunk_;
  std::map<std::string, int, std::less<>> series_index_;
  std::size_t bytes_ = 0;
};

}  // namespace gdlab
