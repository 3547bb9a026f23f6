#include "common/campaign.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/errors.h"

namespace gdlab {

namespace gp = google::protobuf;

namespace {

constexpr std::size_t kMaxTasks = 1'000'000;

std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  return parts;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// Collects text-format parse errors as "file:line:col: message", adding the field name found at
// the start of the offending line when the parser's own message does not name it.
class CollectingErrors : public gp::io::ErrorCollector {
 public:
  CollectingErrors(std::string path, const std::string& text) : path_(std::move(path)), lines_(split(text, '\n')) {}
  void AddError(int line, gp::io::ColumnNumber column, const std::string& message) override {
    std::string msg = message;
    if (line >= 0 && static_cast<size_t>(line) < lines_.size() && msg.find("field") == std::string::npos) {
      const std::string& l = lines_[static_cast<size_t>(line)];
      size_t b = l.find_first_not_of(" \t");
      size_t e = b;
      while (e < l.size() && (std::isalnum(static_cast<unsigned char>(l[e])) || l[e] == '_')) ++e;
      if (b != std::string::npos && e > b && l.find(':', e) != std::string::npos)
        msg += " (in field '" + l.substr(b, e - b) + "')";
    }
    errors.push_back(path_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + msg);
  }
  std::vector<std::string> errors;

 private:
  std::string path_;
  std::vector<std::string> lines_;
};

// One step of a dotted field path: "name" or "name[index]".
struct PathStep {
  std::string name;
  int index = -1;
};

std::vector<PathStep> parse_path(const std::string& path) {
  std::vector<PathStep> steps;
  for (const std::string& part : split(path, '.')) {
    PathStep step;
    const size_t bracket = part.find('[');
    step.name = part.substr(0, bracket);
    if (bracket != std::string::npos) step.index = std::atoi(part.c_str() + bracket + 1);
    steps.push_back(step);
  }
  return steps;
}

// Resolves a field path against the parse-info tree; returns the location of the deepest field
// on the path that appears in the file (line and column are 0-based; -1 if none).
gp::TextFormat::ParseLocation locate(const gp::TextFormat::ParseInfoTree* tree, const gp::Descriptor* desc,
                                     const std::string& path) {
  gp::TextFormat::ParseLocation best;
  for (const PathStep& step : parse_path(path)) {
    if (tree == nullptr || desc == nullptr) break;
    const gp::FieldDescriptor* field = desc->FindFieldByName(step.name);
    if (field == nullptr) break;
    const int index = field->is_repeated() ? std::max(0, step.index) : -1;
    const auto loc = tree->GetLocation(field, index);
    if (loc.line < 0) break;
    best = loc;
    if (field->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) break;
    tree = tree->GetTreeForNested(field, index);
    desc = field->message_type();
  }
  return best;
}

struct SweepValue {
  std::string text;  // as shown in the sweep point
  bool numeric = false;
  double number = 0;
};

struct ResolvedAxis {
  std::string field_path;
  std::vector<SweepValue> values;
  std::string location_path;  // path of the axis in the campaign spec, for messages
};

// Finds the scalar field at `path` inside `root`, creating intermediate messages. Returns the
// message holding it and the field, or throws SpecError.
std::pair<gp::Message*, const gp::FieldDescriptor*> mutable_field(gp::Message* root, const std::string& path) {
  gp::Message* msg = root;
  const auto steps = parse_path(path);
  for (size_t i = 0; i < steps.size(); ++i) {
    const gp::FieldDescriptor* field = msg->GetDescriptor()->FindFieldByName(steps[i].name);
    if (field == nullptr)
      throw SpecError("field", "'" + path + "' is not a field of " + root->GetDescriptor()->name() + " (no '" +
                                   steps[i].name + "' in " + msg->GetDescriptor()->name() + ")");
    if (field->is_repeated()) throw SpecError("field", "'" + path + "': sweeping a repeated field is not supported");
    if (i + 1 == steps.size()) {
      if (field->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE)
        throw SpecError("field", "'" + path + "' is a message; sweep one of its scalar fields");
      return {msg, field};
    }
    if (field->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE)
      throw SpecError("field", "'" + path + "': '" + steps[i].name + "' is not a message");
    msg = msg->GetReflection()->MutableMessage(msg, field);
  }
  throw SpecError("field", "empty field path");
}

void set_number(gp::Message* msg, const gp::FieldDescriptor* field, double v, const std::string& path) {
  const gp::Reflection* r = msg->GetReflection();
  auto require_integer = [&](double lo, double hi) {
    if (!(std::floor(v) == v && v >= lo && v <= hi))
      throw SpecError("numbers", "value " + format_number(v) + " is not a valid " + field->type_name() + " for '" +
                                     path + "'");
  };
  switch (field->cpp_type()) {
    case gp::FieldDescriptor::CPPTYPE_DOUBLE:
      r->SetDouble(msg, field, v);
      break;
    case gp::FieldDescriptor::CPPTYPE_FLOAT:
      r->SetFloat(msg, field, static_cast<float>(v));
      break;
    case gp::FieldDescriptor::CPPTYPE_INT32:
      require_integer(std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max());
      r->SetInt32(msg, field, static_cast<std::int32_t>(v));
      break;
    case gp::FieldDescriptor::CPPTYPE_INT64:
      require_integer(-9.0e15, 9.0e15);
      r->SetInt64(msg, field, static_cast<std::int64_t>(v));
      break;
    case gp::FieldDescriptor::CPPTYPE_UINT32:
      require_integer(0, std::numeric_limits<std::uint32_t>::max());
      r->SetUInt32(msg, field, static_cast<std::uint32_t>(v));
      break;
    case gp::FieldDescriptor::CPPTYPE_UINT64:
      require_integer(0, 9.0e15);
      r->SetUInt64(msg, field, static_cast<std::uint64_t>(v));
      break;
    case gp::FieldDescriptor::CPPTYPE_BOOL:
      if (v != 0 && v != 1) throw SpecError("numbers", "'" + path + "' is a bool; use 0 or 1");
      r->SetBool(msg, field, v != 0);
      break;
    default:
      throw SpecError("numbers", "'" + path + "' is a " + field->type_name() + "; give its values in `values`");
  }
}

// Parses one text-format value into `field`, without protobuf's own logging.
bool parse_value(const std::string& text, const gp::FieldDescriptor* field, gp::Message* holder) {
  class Silent : public gp::io::ErrorCollector {
   public:
    void AddError(int, gp::io::ColumnNumber, const std::string&) override {}
  } silent;
  gp::TextFormat::Parser parser;
  parser.RecordErrorsTo(&silent);
  return parser.ParseFieldValueFromString(text, field, holder);
}

class SpecLoader {
 public:
  SpecLoader(std::string display_path, std::string spec_dir, std::vector<std::string> allowed_input_dirs)
      : path_(std::move(display_path)), dir_(std::move(spec_dir)), allowed_(std::move(allowed_input_dirs)) {}

  Campaign load(const std::string& text) {
    Campaign campaign;
    campaign.spec_path = path_;
    campaign.spec_dir = dir_;
    campaign.spec_text = text;
    campaign.allowed_input_dirs = allowed_;

    gp::TextFormat::Parser parser;
    CollectingErrors collector(path_, text);
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&tree_);
    if (!parser.ParseFromString(text, &campaign.spec)) {
      if (collector.errors.empty()) collector.errors.push_back(path_ + ": cannot parse the spec");
      throw InputError(join(collector.errors));
    }
    validate_campaign(campaign.spec);
    if (errors_.empty()) expand(campaign);
    if (!errors_.empty()) throw InputError(join(errors_));
    return campaign;
  }

 private:
  static std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
    return out;
  }

  // Records an error at the location of `path` (a path from the campaign root).
  void error(const std::string& path, const std::string& problem) {
    const auto loc = locate(&tree_, pb::CampaignSpec::descriptor(), path);
    std::string where = path_;
    if (loc.line >= 0) where += ":" + std::to_string(loc.line + 1) + ":" + std::to_string(loc.column + 1);
    std::string line = where + ": " + (path.empty() ? "" : path + ": ") + problem;
    if (seen_.insert(line).second) errors_.push_back(line);
  }

  void validate_campaign(const pb::CampaignSpec& spec) {
    if (!spec.has_schema_version())
      error("schema_version", "required; add `schema_version: " + std::to_string(kSchemaVersion) + "`");
    else if (spec.schema_version() != kSchemaVersion)
      error("schema_version", "unsupported version " + std::to_string(spec.schema_version()) + " (this gdlab reads " +
                                  std::to_string(kSchemaVersion) + ")");
    if (!spec.has_name())
      error("name", "required");
    else if (!valid_name(spec.name()))
      error("name", "'" + spec.name() + "' must be 1-128 characters of letters, digits, '_', '-', '.'");
    if (spec.store().has_flush_interval_s()) {
      const double f = spec.store().flush_interval_s();
      if (!(f > 0 && f <= 3600)) error("store.flush_interval_s", "must be in (0, 3600] seconds (got " + format_number(f) + ")");
    }
    if (spec.store().has_checkpoint_interval_s()) {
      const double c = spec.store().checkpoint_interval_s();
      if (!(c > 0 && c <= 86400))
        error("store.checkpoint_interval_s", "must be in (0, 86400] seconds (got " + format_number(c) + ")");
    }
    if (spec.experiments_size() == 0) error("experiments", "at least one experiment is required");
    std::set<std::string> names;
    for (int i = 0; i < spec.experiments_size(); ++i) {
      const pb::Experiment& e = spec.experiments(i);
      const std::string at = "experiments[" + std::to_string(i) + "]";
      if (!e.has_name())
        error(at + ".name", "required");
      else if (!valid_name(e.name()))
        error(at + ".name", "'" + e.name() + "' must be 1-128 characters of letters, digits, '_', '-', '.'");
      else if (!names.insert(e.name()).second)
        error(at + ".name", "duplicate experiment name '" + e.name() + "'");
      std::string kind;
      if (kind_message(e, &kind) == nullptr) {
        std::string known;
        for (const auto& n : KindRegistry::instance().names()) known += (known.empty() ? "" : ", ") + n;
        error(at, "no experiment kind set; set exactly one of: " + known);
      } else if (KindRegistry::instance().find(kind) == nullptr) {
        error(at + "." + kind, "experiment kind '" + kind + "' is not built into this gdlab");
      }
    }
  }

  std::vector<ResolvedAxis> resolve_axes(const pb::Experiment& e, const std::string& at, const std::string& kind) {
    std::vector<ResolvedAxis> axes;
    std::set<std::string> fields;
    for (int a = 0; a < e.sweep_size(); ++a) {
      const pb::SweepAxis& axis = e.sweep(a);
      const std::string axis_at = at + ".sweep[" + std::to_string(a) + "]";
      ResolvedAxis r;
      r.field_path = axis.field();
      r.location_path = axis_at;
      if (r.field_path.rfind(kind + ".", 0) == 0) r.field_path = r.field_path.substr(kind.size() + 1);
      if (axis.field().empty()) {
        error(axis_at + ".field", "required");
        continue;
      }
      if (!fields.insert(r.field_path).second) {
        error(axis_at + ".field", "field '" + r.field_path + "' is swept twice");
        continue;
      }
      if ((axis.numbers_size() > 0) == (axis.values_size() > 0)) {
        error(axis_at, "give the axis values in exactly one of `numbers` or `values`");
        continue;
      }
      for (double v : axis.numbers()) r.values.push_back({format_number(v), true, v});
      for (const auto& v : axis.values()) r.values.push_back({v, false, 0});
      axes.push_back(std::move(r));
    }
    return axes;
  }

  void expand(Campaign& campaign) {
    const pb::CampaignSpec& spec = campaign.spec;
    std::int64_t next_id = 0;
    for (int i = 0; i < spec.experiments_size(); ++i) {
      const pb::Experiment& e = spec.experiments(i);
      const std::string at = "experiments[" + std::to_string(i) + "]";
      std::string kind;
      kind_message(e, &kind);
      const ExperimentKind* impl = KindRegistry::instance().find(kind);
      const size_t errors_before = errors_.size();
      std::vector<ResolvedAxis> axes = resolve_axes(e, at, kind);
      if (errors_.size() > errors_before) continue;

      size_t combinations = 1;
      for (const auto& axis : axes) {
        combinations *= axis.values.size();
        if (combinations + campaign.tasks.size() > kMaxTasks) {
          error(at + ".sweep", "the sweep expands to more than " + std::to_string(kMaxTasks) + " tasks");
          return;
        }
      }
      std::vector<size_t> index(axes.size(), 0);
      for (size_t c = 0; c < combinations; ++c) {
        // Mixed-radix counter, last axis fastest.
        size_t rest = c;
        for (size_t a = axes.size(); a-- > 0;) {
          index[a] = rest % axes[a].values.size();
          rest /= axes[a].values.size();
        }
        PlannedTask task;
        task.task_id = next_id;
        task.experiment_index = i;
        task.experiment_name = e.name();
        task.kind = kind;
        task.experiment = e;
        task.experiment.clear_sweep();
        gp::Message* kind_msg =
            task.experiment.GetReflection()->MutableMessage(&task.experiment, task.experiment.GetDescriptor()->FindFieldByName(kind));
        bool ok = true;
        for (size_t a = 0; a < axes.size() && ok; ++a) {
          const SweepValue& v = axes[a].values[index[a]];
          task.sweep_point += (task.sweep_point.empty() ? "" : " ") + axes[a].field_path + "=" + v.text;
          try {
            auto [holder, field] = mutable_field(kind_msg, axes[a].field_path);
            if (v.numeric) {
              set_number(holder, field, v.number, axes[a].field_path);
            } else if (!parse_value(v.text, field, holder)) {
              throw SpecError("values", "'" + v.text + "' is not a valid " + field->type_name() + " for '" +
                                            axes[a].field_path + "'");
            }
          } catch (const SpecError& err) {
            error(axes[a].location_path + "." + err.field(), err.problem());
            ok = false;
          }
        }
        if (!ok) continue;
        TaskContext context{spec.seed(), i, next_id, dir_, allowed_};
        try {
          auto prepared = impl->prepare(*kind_msg, context);
          task.summary = prepared->summary();
          task.ranks_needed = prepared->ranks_needed();
          task.split_into_units = prepared->split_into_units();
          task.checkpointable = prepared->checkpointable();
        } catch (const SpecError& err) {
          // Point at the sweep axis when the offending field is swept, else at the field itself.
          std::string where = at + "." + kind + "." + err.field();
          for (const auto& axis : axes)
            if (err.field() == axis.field_path || err.field().rfind(axis.field_path + ".", 0) == 0)
              where = axis.location_path;
          error(where, err.problem() + (task.sweep_point.empty() ? "" : " [sweep point " + task.sweep_point + "]"));
          continue;
        } catch (const InputError& err) {
          error(at + "." + kind, err.what());
          continue;
        }
        char name[32];
        std::snprintf(name, sizeof name, "task_%06lld", static_cast<long long>(next_id));
        task.task_name = name;
        ++next_id;
        campaign.tasks.push_back(std::move(task));
      }
    }
  }

  std::string path_;
  std::string dir_;
  std::vector<std::string> allowed_;
  gp::TextFormat::ParseInfoTree tree_;
  std::vector<std::string> errors_;
  std::set<std::string> seen_;
};

}  // namespace

const gp::Message* kind_message(const pb::Experiment& experiment, std::string* kind_name) {
  const gp::OneofDescriptor* oneof = pb::Experiment::descriptor()->FindOneofByName("kind");
  const gp::FieldDescriptor* field = experiment.GetReflection()->GetOneofFieldDescriptor(experiment, oneof);
  if (field == nullptr) return nullptr;
  if (kind_name) *kind_name = field->name();
  return &experiment.GetReflection()->GetMessage(experiment, field);
}

TaskContext Campaign::context_for(const PlannedTask& task) const {
  return TaskContext{spec.seed(), task.experiment_index, task.task_id, spec_dir, allowed_input_dirs};
}

std::string Campaign::kind_config_text(const pb::Experiment& experiment) {
  std::string kind;
  const gp::Message* msg = kind_message(experiment, &kind);
  if (msg == nullptr) return "";
  std::string text;
  gp::TextFormat::PrintToString(*msg, &text);
  return kind + " {\n" + text + "}\n";
}

std::vector<std::string> Campaign::task_lines() const {
  std::vector<std::string> lines;
  for (const auto& t : tasks) {
    std::string line = t.task_name + "  experiment=" + t.experiment_name + "  kind=" + t.kind;
    if (!t.sweep_point.empty()) line += "  " + t.sweep_point;
    if (t.ranks_needed > 1) line += "  ranks=" + std::to_string(t.ranks_needed);
    if (!t.summary.empty()) line += "  | " + t.summary;
    lines.push_back(line);
  }
  return lines;
}

void Campaign::check_fits(int workers) const {
  for (const auto& t : tasks)
    if (t.ranks_needed > workers)
      throw InputError(spec_path + ": " + t.task_name + " (experiment " + t.experiment_name + ") runs on " +
                       std::to_string(t.ranks_needed) + " worker ranks but this job has " + std::to_string(workers) +
                       "; start it with at least " + std::to_string(t.ranks_needed + 1) + " MPI ranks");
}

Campaign parse_campaign(const std::string& text, const std::string& display_path, const std::string& spec_dir,
                        const std::vector<std::string>& allowed_input_dirs) {
  return SpecLoader(display_path, spec_dir, allowed_input_dirs).load(text);
}

Campaign load_campaign(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the spec file (" + std::strerror(errno) + ")");
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  return parse_campaign(buf.str(), path, dir);
}

}  // namespace gdlab
