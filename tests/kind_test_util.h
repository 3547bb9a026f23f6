// Helpers shared by the per-kind tests (tests/<kind>_test.cc): an in-memory Recorder, the kind
// lookup, running one task, and the SpecError field or campaign-loader message of a bad spec.
// Header-only.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "common/campaign.h"
#include "common/errors.h"
#include "common/experiment_kind.h"

namespace gdlab::test_util {

// A Recorder that keeps everything in memory; the steps of every series must increase.
class MemoryRecorder : public Recorder {
 public:
  struct Series {
    std::vector<std::int64_t> step;
    std::vector<double> time;
    std::vector<std::vector<double>> value;
  };
  void append(std::string_view path, std::int64_t step, double time, std::span<const double> value) override {
    auto& s = series[std::string(path)];
    if (!s.step.empty()) {
      EXPECT_GT(step, s.step.back()) << path << ": steps must increase";
    }
    s.step.push_back(step);
    s.time.push_back(time);
    s.value.emplace_back(value.begin(), value.end());
  }
  void put_array(std::string_view path, std::vector<std::uint64_t>, std::span<const double> data) override {
    arrays[std::string(path)] = std::vector<double>(data.begin(), data.end());
  }
  void set_attribute(std::string_view name, std::string_view text) override { text_attrs[std::string(name)] = text; }
  void set_attribute(std::string_view name, double value) override { number_attrs[std::string(name)] = value; }

  // The first component of the last value of a series.
  double last(const std::string& path) const { return series.at(path).value.back().at(0); }
  // The last value of a series.
  Eigen::VectorXd last_vector(const std::string& path) const {
    const auto& v = series.at(path).value.back();
    return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
  }
  // The first component of the value of a series at `step` (a test failure and NaN if absent).
  double at(const std::string& path, std::int64_t step) const {
    const auto& s = series.at(path);
    for (std::size_t i = 0; i < s.step.size(); ++i)
      if (s.step[i] == step) return s.value[i].at(0);
    ADD_FAILURE() << path << " has no step " << step;
    return std::nan("");
  }
  // The first component of every value of a series.
  std::vector<double> values(const std::string& path) const {
    std::vector<double> out;
    for (const auto& v : series.at(path).value) out.push_back(v.at(0));
    return out;
  }
  // The first entry of an array.
  double scalar(const std::string& path) const { return arrays.at(path).at(0); }

  std::map<std::string, Series> series;
  std::map<std::string, std::vector<double>> arrays;
  std::map<std::string, std::string> text_attrs;
  std::map<std::string, double> number_attrs;
};

// The registered kind `name`; throws (failing the test) if there is none.
inline const ExperimentKind& find_kind(const std::string& name) {
  const ExperimentKind* k = KindRegistry::instance().find(name);
  if (k == nullptr) throw std::runtime_error(name + " is not registered");
  return *k;
}

// The records of one task of `kind` on `spec`, run to the end.
inline MemoryRecorder run_task(const ExperimentKind& kind, const google::protobuf::Message& spec,
                               const TaskContext& context) {
  MemoryRecorder rec;
  kind.prepare(spec, context)->run(rec);
  return rec;
}

// The SpecError field of kind.prepare(spec, context), or `no_error` if it does not throw.
inline std::string spec_error_field(const ExperimentKind& kind, const google::protobuf::Message& spec,
                                    const TaskContext& context, const std::string& no_error) {
  try {
    kind.prepare(spec, context);
  } catch (const SpecError& e) {
    return e.field();
  }
  return no_error;
}

// Where the checks of kind.prepare(spec, context) and of the task's run() reject `spec` with a
// SpecError on `field`: "prepare", "run", or "" when neither does (another error of run() counts
// as passing the checks). For checks that prepare() may leave to run() (data too large to build).
inline std::string rejected_at(const ExperimentKind& kind, const google::protobuf::Message& spec,
                               const TaskContext& context, const std::string& field) {
  std::unique_ptr<PreparedTask> task;
  try {
    task = kind.prepare(spec, context);
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    return "prepare";
  }
  try {
    MemoryRecorder rec;
    task->run(rec);
  } catch (const SpecError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    return "run";
  } catch (const Error&) {
    // Past the checks (e.g. GD diverging under allow_large_step).
  }
  return "";
}

// The message of the InputError that parse_campaign(text, display_path, "") throws, or "" if it
// does not throw.
inline std::string campaign_error(const std::string& text, const std::string& display_path = "spec.textproto") {
  try {
    parse_campaign(text, display_path, "");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace gdlab::test_util
