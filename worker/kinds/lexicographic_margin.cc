// Experiment kind `lexicographic_margin`: Nacson, Gunasekar, Lee, Srebro, Soudry, "Lexicographic
// and Depth-Sensitive Margins in Homogeneous and Non-Homogeneous Deep Models" (ICML 2019), as
// specified in separable.md §4.
//
// The model is an ensemble of diagonal nets f = Σ_k (u_{k,1}∘…∘u_{k,D_k})ᵀx (one sub-model: a
// homogeneous model; several of different depths: a non-homogeneous ensemble). The method traces
// either GD (§4.7 T4.2) or the norm-constrained path θ(B) ∈ argmin_{‖θ‖≤B} L(θ) (§4.2): projected
// GD on the L1 ball of β = u∘v or its exact 1-D face minimisation (§4.7 T4.1), or projected GD on
// the parameter ball (§4.7 T4.3).
//
// Records (§4.6): s, the sorted margins and normalised margins, the smallest normalised margin,
// L, B = ‖θ‖, c = ‖β_deep‖₁ and, for ensembles, ‖a‖, ‖(u, v)‖, ‖u∘v‖₁, margin/B², the deep
// part's direction; a GD series is indexed by the step t (time η t), a constrained path by the
// radius index (time = the radius). On the §4.5 data the theory/ series hold s(c) of the exact
// constrained path, √2 for ‖a‖ and 0.5 + 1/B² for margin/B²; the verdict applies T4.1–T4.3.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/experiment_kind.h"
#include "proto/gdlab.pb.h"
#include "worker/kinds/separable_common.h"
#include "worker/numerics/lexicographic_margin.h"
#include "worker/numerics/separable.h"

namespace gdlab {
namespace {

namespace lex = lexicographic;
using lex::Loss;
using lex::MatrixXd;
using lex::VectorXd;
using Spec = pb::LexicographicMarginSpec;

enum class Method { Gd, ProjectedL1, Face1d, ProjectedSphere };

// Which closed-form prediction of separable.md §4 applies to the task.
enum class Theory {
  None,
  EdgeHomogeneous,  // §4.5 data, single depth-2 net: s(c) exact path, lexicographic s* = 0.4
  EdgeEnsemble,     // §4.5 data, depths {1, 2}: ‖a‖ → √2, margin/B² = 0.5 + 1/B²
  Linear,           // single depth-1 model, any data: the L2 max margin ŵ (§4.4)
};

struct LexicographicConfig {
  Method method = Method::Gd;
  std::string method_name;
  Loss loss = Loss::Exponential;
  std::string loss_name;
  lex::Ensemble model;
  separable::Dataset data;
  MatrixXd Xt;
  bool edge_data = false;
  VectorXd theta0;
  double lr = 0;
  std::int64_t steps = 0;
  int points_per_decade = 10;
  std::vector<double> radii;
  std::int64_t max_iterations = 0;
  double stationarity_tol = 0;
  bool warm_start = false;
  separable::MaxMargin max_margin;  // L2 max margin of the data (also the separability check)
  Theory theory = Theory::None;
  double tol_s = 0, tol_min_margin = 0, tol_lexicographic_gap = 0, tol_shallow_norm = 0, tol_margin_path = 0;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::vector<double> to_vector(const MatrixXd& m) {
  std::vector<double> out;  // row-major
  out.reserve(static_cast<size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.push_back(m(r, c));
  return out;
}

std::vector<double> to_vector(const VectorXd& v) { return {v.data(), v.data() + v.size()}; }

// "1+2" for the ensemble aᵀx + (u∘v)ᵀx.
std::string depths_string(const lex::Ensemble& model) {
  std::string out;
  for (int depth : model.depths) {
    if (!out.empty()) out += '+';
    out += std::to_string(depth);
  }
  return out;
}

std::span<const double> as_span(const std::vector<double>& v) { return {v.data(), v.size()}; }

// Collects the checks behind the verdict attribute.
class Verdict {
 public:
  void check(bool ok, const std::string& text) {
    pass_ = pass_ && ok;
    detail_ += (detail_.empty() ? "" : "; ") + text + (ok ? "" : " FAIL");
  }
  void note(const std::string& text) { detail_ += (detail_.empty() ? "" : "; ") + text; }
  void write(Recorder& rec) const {
    rec.set_attribute("verdict", pass_ ? "pass" : "fail");
    rec.set_attribute("verdict_detail", detail_);
  }

 private:
  bool pass_ = true;
  std::string detail_;
};

class LexicographicTask : public PreparedTask {
 public:
  explicit LexicographicTask(LexicographicConfig config) : c_(std::move(config)) {}

  std::string summary() const override {
    std::ostringstream s;
    s << c_.method_name << " depths=" << depths_text() << " N=" << c_.Xt.rows() << " d=" << c_.Xt.cols() << " "
      << c_.loss_name;
    if (c_.method != Method::Face1d) s << " lr=" << fmt(c_.lr);
    if (c_.method == Method::Gd) {
      s << " T=" << c_.steps;
    } else {
      s << " radius=[";
      for (size_t i = 0; i < c_.radii.size(); ++i) s << (i ? "," : "") << fmt(c_.radii[i]);
      s << "]";
    }
    if (c_.edge_data) s << " data=nacson2019_edge";
    return s.str();
  }

  void run(Recorder& rec) override {
    const auto n = static_cast<std::uint64_t>(c_.Xt.rows());
    const auto d = static_cast<std::uint64_t>(c_.Xt.cols());
    rec.put_array("parameters/X", {n, d}, to_vector(c_.data.X));
    rec.put_array("parameters/y", {n}, to_vector(c_.data.y));
    std::vector<double> depths(c_.model.depths.begin(), c_.model.depths.end());
    rec.put_array("parameters/depths", {depths.size()}, depths);
    rec.put_array("parameters/theta0", {static_cast<std::uint64_t>(c_.theta0.size())}, to_vector(c_.theta0));
    rec.put_array("parameters/w_hat_l2", {d}, to_vector(c_.max_margin.w_hat));
    if (c_.method != Method::Gd) rec.put_array("parameters/radius", {c_.radii.size()}, c_.radii);
    if (c_.theory == Theory::EdgeHomogeneous) {
      rec.put_array("parameters/lexicographic_s", {}, std::vector<double>{lex::edge_example::kLexicographicS});
      rec.put_array("parameters/lexicographic_normalized_margins", {n},
                    lex::edge_example::normalized_margins(lex::edge_example::kLexicographicS));
    }
    if (c_.theory == Theory::EdgeEnsemble) {
      rec.put_array("parameters/shallow_norm_limit", {}, std::vector<double>{lex::edge_example::ensemble_shallow_norm()});
      rec.put_array("parameters/margin_over_B2_limit", {},
                    std::vector<double>{lex::edge_example::kEnsembleMarginOverB2Limit});
    }
    rec.set_attribute("method", c_.method_name);
    rec.set_attribute("loss", c_.loss_name);
    rec.set_attribute("depths", depths_text());
    rec.set_attribute("dataset", c_.edge_data ? "nacson2019_edge" : "custom");
    if (c_.method != Method::Face1d) rec.set_attribute("lr", c_.lr);
    if (c_.method == Method::Gd) {
      rec.set_attribute("steps", static_cast<double>(c_.steps));
      run_gd(rec);
    } else {
      run_path(rec);
    }
  }

 private:
  std::string depths_text() const { return depths_string(c_.model); }

  // ---- recording ----

  void record(Recorder& rec, std::int64_t step, double time, const lex::Measurements& m, const VectorXd& theta) const {
    const std::string o = "observables/";
    if (c_.model.dim == 2) rec.append(o + "s", step, time, m.s);
    rec.append(o + "deep_direction", step, time, as_span(m.deep_direction));
    rec.append(o + "margins", step, time, as_span(m.margins));
    rec.append(o + "normalized_margins", step, time, as_span(m.normalized_margins));
    rec.append(o + "min_normalized_margin", step, time, m.min_normalized_margin);
    if (m.normalized_margins.size() >= 2) rec.append(o + "second_normalized_margin", step, time, m.normalized_margins[1]);
    rec.append(o + "margin_over_norm_pow", step, time, m.margin_over_norm_pow);
    rec.append(o + "loss", step, time, m.loss);
    rec.append(o + "log_loss", step, time, m.log_loss);
    rec.append(o + "norm", step, time, m.norm);
    rec.append(o + "deep_beta_l1", step, time, m.deep_beta_l1);
    if (!c_.model.homogeneous()) {
      rec.append(o + "shallow_param_norm", step, time, m.shallow_param_norm);
      rec.append(o + "deep_param_norm", step, time, m.deep_param_norm);
      rec.append(o + "submodel_param_norms", step, time, as_span(m.submodel_param_norms));
      rec.append(o + "submodel_beta_l1", step, time, as_span(m.submodel_beta_l1));
    }
    rec.append(o + "theta", step, time, std::span<const double>(theta.data(), static_cast<size_t>(theta.size())));
  }

  // The theory curves at one recorded point. `c` is the L1 radius of the deep part on the path
  // (or GD's ‖β(t)‖₁), `B` the parameter norm.
  void record_theory(Recorder& rec, std::int64_t step, double time, double c, double B) const {
    const std::string t = "theory/";
    switch (c_.theory) {
      case Theory::EdgeHomogeneous: {
        // §4.5: β(c) = c(s(c), 1 − s(c)) with s(c) = 0.4 + ln(1.5)/(2.5c).
        const double s = lex::edge_example::constrained_path_s(c);
        const auto margins = lex::edge_example::normalized_margins(s);
        rec.append(t + "s", step, time, s);
        rec.append(t + "normalized_margins", step, time, as_span(margins));
        rec.append(t + "min_normalized_margin", step, time, margins[0]);
        rec.append(t + "second_normalized_margin", step, time, margins[1]);
        break;
      }
      case Theory::EdgeEnsemble:
        // §4.5 Model 2: ‖a(B)‖ → √2 and margin/B² = 0.5 + 1/B² on the margin path.
        rec.append(t + "shallow_param_norm", step, time, lex::edge_example::ensemble_shallow_norm());
        rec.append(t + "margin_over_norm_pow", step, time, lex::edge_example::ensemble_margin_over_B2(B));
        break;
      case Theory::Linear: {
        // §4.4: for a linear model in L2 the lexicographic max margin is the unique ŵ.
        const VectorXd& w_hat = c_.max_margin.w_hat;
        const VectorXd direction = w_hat / w_hat.lpNorm<1>();
        rec.append(t + "min_normalized_margin", step, time, 1.0 / w_hat.norm());
        rec.append(t + "deep_direction", step, time,
                   std::span<const double>(direction.data(), static_cast<size_t>(direction.size())));
        break;
      }
      case Theory::None:
        break;
    }
  }

  // ---- GD (§4.7 T4.2) ----

  void run_gd(Recorder& rec) const {
    const auto grid = separable::log_grid(c_.steps, c_.points_per_decade);
    std::vector<std::pair<std::int64_t, lex::Measurements>> history;
    lex::run_gd(c_.Xt, c_.model, c_.loss, c_.lr, c_.steps, c_.theta0, grid,
                [&](std::int64_t t, const VectorXd& theta) {
                  const double time = c_.lr * static_cast<double>(t);
                  const auto m = lex::measure(c_.Xt, c_.model, c_.loss, theta);
                  record(rec, t, time, m, theta);
                  record_theory(rec, t, time, m.deep_beta_l1, m.norm);
                  history.emplace_back(t, m);
                });
    gd_verdict(rec, history);
  }

  void gd_verdict(Recorder& rec, const std::vector<std::pair<std::int64_t, lex::Measurements>>& history) const {
    Verdict v;
    const auto& last = history.back().second;
    v.check(last.margins.front() > 0, "separates the data (min margin " + fmt(last.margins.front()) + " > 0)");
    if (c_.theory == Theory::EdgeHomogeneous) {
      // T4.2: the limit is max-margin (smallest normalised margin 1) but not lexicographic
      // (second margin below the lexicographic 1.6, s away from 0.4).
      v.check(std::abs(last.min_normalized_margin - 1.0) < c_.tol_min_margin,
              "T4.2 max-margin: smallest normalised margin " + fmt(last.min_normalized_margin) + " within " +
                  fmt(c_.tol_min_margin) + " of 1");
      const double second = last.normalized_margins[1];
      const double bound = lex::edge_example::kLexicographicSecondMargin - c_.tol_lexicographic_gap;
      v.check(second < bound, "T4.2 not lexicographic: second normalised margin " + fmt(second) + " < " + fmt(bound));
      v.note("s(T) " + fmt(last.s) + " vs lexicographic 0.4; L(T) " + fmt(last.loss));
    } else if (c_.theory == Theory::EdgeEnsemble) {
      // §4.7 T4.3, unconstrained GD (informational): the shallow part is discarded only
      // logarithmically slowly; checked: its share ‖a‖/‖θ‖ falls over the last decade.
      const std::int64_t t_end = history.back().first;
      const lex::Measurements* earlier = nullptr;
      for (const auto& [t, m] : history)
        if (10 * t <= t_end) earlier = &m;
      if (earlier != nullptr) {
        const double share_before = earlier->shallow_param_norm / earlier->norm;
        const double share_after = last.shallow_param_norm / last.norm;
        v.check(share_after < share_before, "shallow share |a|/|theta| falls over the last decade: " +
                                                fmt(share_before) + " -> " + fmt(share_after));
      }
      v.note("|a| " + fmt(last.shallow_param_norm) + " (constrained path: 1.41421), |(u,v)| " +
             fmt(last.deep_param_norm) + ", |u*v|_1 " + fmt(last.deep_beta_l1) + ", margin/B^2 " +
             fmt(last.margin_over_norm_pow));
    } else {
      v.note("no separable.md §4.7 check for this model/data under GD");
    }
    v.write(rec);
  }

  // ---- constrained path (§4.7 T4.1, T4.3) ----

  void run_path(Recorder& rec) const {
    lex::ProjectedOptions opt;
    opt.max_iterations = c_.max_iterations;
    opt.tol = c_.stationarity_tol;
    std::vector<lex::Measurements> path;
    std::vector<bool> converged;
    const VectorXd beta_init = lex::submodel_beta(c_.model, c_.theta0, 0);
    VectorXd previous;  // last solution (β for the L1 methods, θ for the sphere), for warm starts
    double previous_radius = 0;
    for (size_t i = 0; i < c_.radii.size(); ++i) {
      const double r = c_.radii[i];
      lex::PathPoint point;
      VectorXd theta;
      double c = 0, B = 0;
      switch (c_.method) {
        case Method::ProjectedL1: {
          c = r;
          B = std::sqrt(2 * c);
          const double l1 = beta_init.lpNorm<1>();
          VectorXd beta0 = l1 > 0 ? VectorXd(beta_init * (c / l1)) : VectorXd::Zero(c_.model.dim);
          if (c_.warm_start && previous.size() > 0) beta0 = previous * (c / previous_radius);
          opt.step = c_.lr;
          point = lex::projected_l1_point(c_.Xt, c_.loss, c, beta0, opt);
          previous = point.theta;
          theta = lex::balanced_depth2_theta(point.theta);
          break;
        }
        case Method::Face1d: {
          c = r;
          B = std::sqrt(2 * c);
          const auto edge = lex::minimize_on_l1_sphere_2d(c_.Xt, c_.loss, c);
          // Stationarity of the result on the whole ball: ‖P(β − ∇ log L) − β‖ (unit step).
          VectorXd p;
          lex::log_loss_and_weights(c_.loss, c_.Xt * edge.beta, p);
          point.stationarity = (lex::project_l1_ball(edge.beta + c_.Xt.transpose() * p, c) - edge.beta).norm();
          point.converged = true;
          point.theta = edge.beta;
          theta = lex::balanced_depth2_theta(edge.beta);
          break;
        }
        case Method::ProjectedSphere: {
          B = r;
          VectorXd start = c_.theta0 * (B / c_.theta0.norm());
          if (c_.warm_start && previous.size() > 0) start = previous * (B / previous_radius);
          // The curvature of log L in θ grows like B^{2(D_max − 1)}: scale the step by its inverse.
          opt.step = c_.lr / std::pow(B, 2.0 * (c_.model.max_depth() - 1));
          point = lex::projected_ball_point(c_.Xt, c_.model, c_.loss, B, start, opt);
          previous = point.theta;
          theta = point.theta;
          c = B * B / 2;  // the depth-2 net's L1 radius at the balanced optimum (§4.5)
          break;
        }
        case Method::Gd:
          break;
      }
      previous_radius = r;
      const auto step = static_cast<std::int64_t>(i + 1);
      const auto m = lex::measure(c_.Xt, c_.model, c_.loss, theta);
      record(rec, step, r, m, theta);
      rec.append("observables/radius", step, r, r);
      rec.append("observables/iterations", step, r, static_cast<double>(point.iterations));
      rec.append("observables/converged", step, r, point.converged ? 1.0 : 0.0);
      rec.append("observables/stationarity", step, r, point.stationarity);
      record_theory(rec, step, r, c, B);
      path.push_back(m);
      converged.push_back(point.converged);
    }
    path_verdict(rec, path, converged);
  }

  void path_verdict(Recorder& rec, const std::vector<lex::Measurements>& path, const std::vector<bool>& converged) const {
    Verdict v;
    int not_converged = 0;
    for (size_t i = 0; i < path.size(); ++i) {
      const double r = c_.radii[i];
      const auto& m = path[i];
      if (!converged[i]) ++not_converged;
      switch (c_.theory) {
        case Theory::EdgeHomogeneous: {
          // T4.1: |s_num(c) − s(c)| < tol, c = r (L1 methods) or B²/2 (parameter sphere).
          const double c = c_.method == Method::ProjectedSphere ? r * r / 2 : r;
          const double s_theory = lex::edge_example::constrained_path_s(c);
          v.check(std::abs(m.s - s_theory) < c_.tol_s,
                  "T4.1 c=" + fmt(c) + ": s " + fmt(m.s) + " vs s(c) " + fmt(s_theory) + " (+-" + fmt(c_.tol_s) + ")");
          break;
        }
        case Theory::EdgeEnsemble: {
          // T4.3: ‖a(B)‖ ≈ √2, margin/B² ≈ 0.5 + 1/B², decreasing toward 0.5.
          const double a_theory = lex::edge_example::ensemble_shallow_norm();
          v.check(std::abs(m.shallow_param_norm - a_theory) < c_.tol_shallow_norm,
                  "T4.3 B=" + fmt(r) + ": |a| " + fmt(m.shallow_param_norm) + " vs sqrt2 (+-" + fmt(c_.tol_shallow_norm) + ")");
          const double ratio_theory = lex::edge_example::ensemble_margin_over_B2(r);
          v.check(std::abs(m.margin_over_norm_pow - ratio_theory) < c_.tol_margin_path,
                  "margin/B^2 " + fmt(m.margin_over_norm_pow) + " vs 0.5+1/B^2=" + fmt(ratio_theory));
          if (i > 0) {
            v.check(m.margin_over_norm_pow < path[i - 1].margin_over_norm_pow && m.margin_over_norm_pow > 0.5,
                    "margin/B^2 decreasing toward 0.5");
          }
          break;
        }
        case Theory::Linear:
        case Theory::None:
          v.check(m.margins.front() > 0, "r=" + fmt(r) + " separates the data (min margin " + fmt(m.margins.front()) + ")");
          break;
      }
    }
    if (c_.theory == Theory::EdgeEnsemble)
      v.note("deep direction at the last radius (" + fmt(path.back().deep_direction[0]) + ", " +
             fmt(path.back().deep_direction[1]) + ")");
    if (c_.theory == Theory::Linear || c_.theory == Theory::None) v.note("no separable.md §4.7 check for this model/data");
    if (not_converged > 0)
      v.note(std::to_string(not_converged) + " of " + std::to_string(path.size()) +
             " radii hit max_iterations before stationarity_tol (flat landscape, §4.7)");
    v.write(rec);
  }

  LexicographicConfig c_;
};

class LexicographicMarginKind : public ExperimentKind {
 public:
  std::string_view name() const override { return "lexicographic_margin"; }

  std::unique_ptr<PreparedTask> prepare(const google::protobuf::Message& message,
                                        const TaskContext& context) const override {
    const auto& s = dynamic_cast<const Spec&>(message);
    LexicographicConfig c;

    switch (s.method()) {
      case Spec::METHOD_GD: c.method = Method::Gd; c.method_name = "gd"; break;
      case Spec::METHOD_PROJECTED_L1: c.method = Method::ProjectedL1; c.method_name = "projected_l1"; break;
      case Spec::METHOD_FACE_1D: c.method = Method::Face1d; c.method_name = "face_1d"; break;
      case Spec::METHOD_PROJECTED_SPHERE: c.method = Method::ProjectedSphere; c.method_name = "projected_sphere"; break;
      default:
        throw SpecError("method", "required: one of METHOD_GD, METHOD_PROJECTED_L1, METHOD_FACE_1D, METHOD_PROJECTED_SPHERE");
    }
    c.loss = s.loss() == Spec::LOSS_LOGISTIC ? Loss::Logistic : Loss::Exponential;
    c.loss_name = c.loss == Loss::Logistic ? "logistic" : "exponential";

    load_dataset(s, context, c);
    const int d = static_cast<int>(c.Xt.cols());
    try {
      // From the process-wide cache: the tasks of a sweep over other fields share the data and
      // solve their max margin once.
      c.max_margin = shared_separable_data(c.data)->max_margin();
    } catch (const InputError& e) {
      // Every ensemble of diagonal nets is linear in x (f = wᵀx, w = Σ_k β_k), so it separates
      // the data iff they are linearly separable through the origin.
      throw SpecError("dataset", std::string("the data must be separable by the model (linearly, through the origin): ") +
                                     e.what());
    } catch (const NumericError& e) {
      // Separable in principle, but with a margin too small next to the data's scale for the solver.
      throw SpecError("dataset", std::string("the max-margin solution of these data cannot be computed: ") + e.what());
    }

    // ---- model and init ----
    if (s.submodels_size() == 0)
      throw SpecError("submodels", "the ensemble needs at least one sub-model (e.g. submodels { depth: 2 })");
    if (!std::isfinite(s.init_scale())) throw SpecError("init_scale", "must be finite (got " + fmt(s.init_scale()) + ")");
    c.model.dim = d;
    std::set<int> seen;
    std::vector<double> theta0;
    for (int k = 0; k < s.submodels_size(); ++k) {
      const auto& sub = s.submodels(k);
      const std::string at = "submodels[" + std::to_string(k) + "]";
      if (!sub.has_depth()) throw SpecError(at + ".depth", "required (1 = linear, 2 = u*v, ...)");
      if (sub.depth() < 1 || sub.depth() > 8)
        throw SpecError(at + ".depth", "must be in [1, 8] (got " + std::to_string(sub.depth()) + ")");
      if (!seen.insert(sub.depth()).second)
        throw SpecError(at + ".depth", "depth " + std::to_string(sub.depth()) +
                                           " appears twice; the sub-models of an ensemble have different depths");
      c.model.depths.push_back(sub.depth());
      const int count = sub.depth() * d;
      if (sub.init_size() > 0) {
        if (sub.init_size() != count)
          throw SpecError(at + ".init", "has " + std::to_string(sub.init_size()) + " entries but depth*d = " +
                                            std::to_string(count));
        for (double value : sub.init()) {
          if (!std::isfinite(value)) throw SpecError(at + ".init", "must be finite");
          theta0.push_back(value);
        }
      } else {
        const double scale = sub.has_init_scale() ? sub.init_scale() : s.init_scale();
        if (!std::isfinite(scale)) throw SpecError(at + ".init_scale", "must be finite (got " + fmt(scale) + ")");
        theta0.insert(theta0.end(), static_cast<size_t>(count), scale);
      }
    }
    c.theta0 = Eigen::Map<const VectorXd>(theta0.data(), static_cast<Eigen::Index>(theta0.size()));

    const bool single_depth2 = c.model.homogeneous() && c.model.depths[0] == 2;
    if ((c.method == Method::ProjectedL1 || c.method == Method::Face1d) && !single_depth2)
      throw SpecError("method", c.method_name + " traces the L1-ball path of a single depth-2 net u*v; this model has depths " +
                                    depths_string(c.model) + " (use METHOD_PROJECTED_SPHERE)");
    if (c.method == Method::Face1d && d != 2)
      throw SpecError("method", "METHOD_FACE_1D minimises on the edges of the L1 sphere and needs d = 2 (got d = " +
                                    std::to_string(d) + "); use METHOD_PROJECTED_L1");
    if (c.method == Method::ProjectedSphere && !(c.theta0.norm() > 0))
      throw SpecError("init_scale", "the initial parameters are all zero; METHOD_PROJECTED_SPHERE starts from their direction");

    // ---- step and length ----
    if (c.method != Method::Face1d || s.has_lr()) {
      if (!s.has_lr()) throw SpecError("lr", "required (the step size, > 0)");
      if (!(s.lr() > 0) || !std::isfinite(s.lr()))
        throw SpecError("lr", "must be a finite number > 0 (got " + fmt(s.lr()) + ")");
      c.lr = s.lr();
    }
    if (c.method == Method::Gd) {
      if (!s.has_steps()) throw SpecError("steps", "required for METHOD_GD (number of GD steps, >= 1)");
      if (s.steps() < 1 || s.steps() > 10'000'000'000LL)
        throw SpecError("steps", "must be in [1, 1e10] (got " + std::to_string(s.steps()) + ")");
      c.steps = s.steps();
      if (s.points_per_decade() < 1 || s.points_per_decade() > 1000)
        throw SpecError("points_per_decade", "must be in [1, 1000] (got " + std::to_string(s.points_per_decade()) + ")");
      c.points_per_decade = s.points_per_decade();
      if (s.radius_size() > 0) throw SpecError("radius", "is only used by the constrained-path methods, not METHOD_GD");
    } else {
      if (s.has_steps()) throw SpecError("steps", "is only used by METHOD_GD (the constrained path takes `radius`)");
      if (s.radius_size() == 0)
        throw SpecError("radius", "required: the constraint radii (c for PROJECTED_L1/FACE_1D, B for PROJECTED_SPHERE)");
      for (int i = 0; i < s.radius_size(); ++i) {
        const std::string at = "radius[" + std::to_string(i) + "]";
        const double r = s.radius(i);
        if (!(r > 0) || !std::isfinite(r)) throw SpecError(at, "must be a finite number > 0 (got " + fmt(r) + ")");
        if (i > 0 && !(r > s.radius(i - 1)))
          throw SpecError(at, "radii must increase (the path is traced outward); got " + fmt(r) + " after " +
                                  fmt(s.radius(i - 1)));
        c.radii.push_back(r);
      }
      if (s.max_iterations() < 1 || s.max_iterations() > 10'000'000'000LL)
        throw SpecError("max_iterations", "must be in [1, 1e10] (got " + std::to_string(s.max_iterations()) + ")");
      c.max_iterations = s.max_iterations();
      if (!(s.stationarity_tol() > 0) || !std::isfinite(s.stationarity_tol()))
        throw SpecError("stationarity_tol", "must be a finite number > 0 (got " + fmt(s.stationarity_tol()) + ")");
      c.stationarity_tol = s.stationarity_tol();
      c.warm_start = s.warm_start();
    }

    // ---- theory and tolerances ----
    if (c.edge_data && single_depth2) {
      c.theory = Theory::EdgeHomogeneous;
    } else if (c.edge_data && c.model.num_submodels() == 2 &&
               std::set<int>(c.model.depths.begin(), c.model.depths.end()) == std::set<int>{1, 2}) {
      c.theory = Theory::EdgeEnsemble;
    } else if (c.model.homogeneous() && c.model.depths[0] == 1) {
      c.theory = Theory::Linear;
    }
    const auto& tol = s.tolerance();
    auto positive = [](double value, const char* field) {
      if (!(value > 0) || !std::isfinite(value))
        throw SpecError(std::string("tolerance.") + field, "must be a finite number > 0 (got " + fmt(value) + ")");
      return value;
    };
    c.tol_s = positive(tol.s(), "s");
    c.tol_min_margin = positive(tol.min_margin(), "min_margin");
    c.tol_lexicographic_gap = positive(tol.lexicographic_gap(), "lexicographic_gap");
    c.tol_shallow_norm = positive(tol.shallow_norm(), "shallow_norm");
    c.tol_margin_path = positive(tol.margin_path(), "margin_path");
    return std::make_unique<LexicographicTask>(std::move(c));
  }

 private:
  static void load_dataset(const Spec& s, const TaskContext& context, LexicographicConfig& c) {
    const auto& ds = s.dataset();
    switch (ds.source_case()) {
      case pb::LexicographicDataset::kPoints: {
        const auto& pts = ds.points();
        if (pts.point_size() == 0) throw SpecError("dataset.points", "has no point");
        const int d = pts.point(0).x_size();
        if (d == 0) throw SpecError("dataset.points.point[0].x", "is empty");
        c.data.X.resize(pts.point_size(), d);
        c.data.y.resize(pts.point_size());
        for (int i = 0; i < pts.point_size(); ++i) {
          const auto& p = pts.point(i);
          const std::string at = "dataset.points.point[" + std::to_string(i) + "]";
          if (p.x_size() != d)
            throw SpecError(at + ".x", "has " + std::to_string(p.x_size()) + " coordinates but point[0] has " +
                                           std::to_string(d));
          for (int j = 0; j < d; ++j) {
            if (!std::isfinite(p.x(j))) throw SpecError(at + ".x", "must be finite");
            c.data.X(i, j) = p.x(j);
          }
          if (p.y() != 1.0 && p.y() != -1.0) throw SpecError(at + ".y", "must be +1 or -1 (got " + fmt(p.y()) + ")");
          c.data.y[i] = p.y();
        }
        break;
      }
      case pb::LexicographicDataset::kCsv: {
        if (ds.csv().path().empty()) throw SpecError("dataset.csv.path", "required");
        try {
          c.data = separable::load_csv(context.resolve_path(ds.csv().path()));
        } catch (const InputError& e) {
          throw SpecError("dataset.csv.path", e.what());
        }
        break;
      }
      default:  // nacson2019_edge, also when no dataset is given
        c.data.X = lex::edge_example::points();
        c.data.y = VectorXd::Ones(c.data.X.rows());
        c.edge_data = true;
    }
    c.Xt = c.data.absorbed();
  }
};

GDLAB_REGISTER_KIND(LexicographicMarginKind);

}  // namespace
}  // namespace gdlab
