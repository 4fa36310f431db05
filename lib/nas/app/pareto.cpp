// pareto: nas-pareto's work over store metrics and the pareto library
#include "nas/app/pareto.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/pareto/front.h"
#include "nas/pareto/plot.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/metrics.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <filesystem>
#include <regex>
#include <set>

namespace nas::app {
namespace {

struct Objective {
  store::MetricInfo metric;
  bool maximize = false;
};

struct Condition {
  store::MetricInfo metric;
  std::string op;
  double value = 0;
  bool holds(double x) const {
    if (op == "<=") return x <= value;
    if (op == "<") return x < value;
    if (op == ">=") return x >= value;
    if (op == ">") return x > value;
    if (op == "==") return x == value;
    return x != value;
  }
};

Objective parse_objective(const std::vector<store::MetricInfo>& metrics, const std::string& spec) {
  size_t c = spec.rfind(':');
  std::string dir = c == std::string::npos ? "" : spec.substr(c + 1);
  if (dir != "min" && dir != "max")
    throw UsageError("--objective '" + spec + "': expected NAME:min or NAME:max");
  Objective o;
  o.metric = store::resolve_metric(metrics, spec.substr(0, c), "--objective '" + spec + "'");
  o.maximize = dir == "max";
  return o;
}

Condition parse_condition(const std::vector<store::MetricInfo>& metrics, const std::string& spec) {
  static const std::regex re(R"(^\s*([A-Za-z0-9_:.\-]+)\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)\s*$)");
  std::smatch m;
  if (!std::regex_match(spec, m, re))
    throw UsageError("--where '" + spec + "': expected NAME OP NUMBER with OP one of <= < >= > == !=");
  Condition c;
  c.metric = store::resolve_metric(metrics, m[1], "--where '" + spec + "'");
  c.op = m[2];
  c.value = std::stod(m[3]);
  return c;
}

std::vector<double> parse_reference(const std::string& s, size_t n) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      if (item.find_first_not_of(" \t", used) != std::string::npos) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UsageError("--reference '" + s + "': '" + item + "' is not a number");
    }
  }
  if (out.size() != n)
    throw UsageError("--reference '" + s + "': " + std::to_string(out.size()) + " values for " + std::to_string(n) + " objectives");
  return out;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// The trials nas-pareto considers: those with every objective (finite) that meet every
// condition, with their values as given (raw) and oriented for minimisation (pts).
struct Considered {
  std::vector<Objective> objs;
  std::vector<bool> maximize;           // per objective
  std::optional<int> rung;              // results at this rung
  std::vector<int64_t> ids;             // ascending
  std::vector<pareto::Point> raw, pts;  // per considered trial
  std::map<int64_t, size_t> index;      // trial id -> its position in ids
  pareto::Point ref;                    // the hypervolume's reference, oriented
};

std::vector<Objective> read_objectives(const std::vector<store::MetricInfo>& metrics, const std::vector<std::string>& specs) {
  std::vector<Objective> objs;
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    objs.push_back(parse_objective(metrics, spec));
    if (!seen.insert(objs.back().metric.name).second)
      throw UsageError("--objective '" + spec + "': objective '" + objs.back().metric.name + "' is given twice");
  }
  return objs;
}

// The ids of the trials with a finite value of every objective that meet every condition.
std::vector<int64_t> eligible_ids(const std::vector<std::map<int64_t, double>>& values, const std::vector<Condition>& conds,
                                  const std::vector<std::map<int64_t, double>>& cond_values) {
  std::vector<int64_t> ids;
  for (const auto& [id, v] : values[0]) {
    bool ok = std::isfinite(v);
    for (size_t k = 1; ok && k < values.size(); ++k) {
      auto it = values[k].find(id);
      ok = it != values[k].end() && std::isfinite(it->second);
    }
    for (size_t k = 0; ok && k < conds.size(); ++k) {
      auto it = cond_values[k].find(id);
      ok = it != cond_values[k].end() && conds[k].holds(it->second);
    }
    if (ok) ids.push_back(id);
  }
  return ids;
}

// Reads the objectives and conditions of `o` and the values of the trials they select. Throws
// UsageError for bad objectives, conditions or references; Error when no trial qualifies.
Considered consider(store::Db& db, const ParetoOptions& o) {
  Considered c;
  const auto metrics = store::available_metrics(db);
  c.objs = read_objectives(metrics, o.objectives);
  std::vector<Condition> conds;
  for (const auto& w : o.where) conds.push_back(parse_condition(metrics, w));
  c.rung = o.rung ? o.rung : store::last_result_rung(db);
  const std::vector<store::TrialState> excluded = {store::TrialState::pruned, store::TrialState::failed};
  std::vector<std::map<int64_t, double>> values, cond_values;
  for (const auto& ob : c.objs) values.push_back(store::metric_values(db, ob.metric, c.rung, excluded));
  for (const auto& cd : conds) cond_values.push_back(store::metric_values(db, cd.metric, c.rung, excluded));
  c.ids = eligible_ids(values, conds, cond_values);
  if (c.ids.empty())
    throw Error("no trial of '" + o.db + "' has every objective" + (conds.empty() ? "" : " and meets every --where") +
                (c.rung ? " (results at rung " + std::to_string(*c.rung) + ")" : ""));
  for (const auto& ob : c.objs) c.maximize.push_back(ob.maximize);
  for (size_t i = 0; i < c.ids.size(); ++i) {
    pareto::Point p;
    for (size_t k = 0; k < c.objs.size(); ++k) p.push_back(values[k][c.ids[i]]);
    c.raw.push_back(p);
    c.pts.push_back(pareto::orient(p, c.maximize));
    c.index[c.ids[i]] = i;
  }
  c.ref = o.reference.empty() ? pareto::derived_reference(c.pts)
                              : pareto::orient(parse_reference(o.reference, c.objs.size()), c.maximize);
  return c;
}

// --history: the hypervolume after each trial, in the order trials finished.
int write_history(store::Db& db, const ParetoOptions& o, const Considered& c, std::ostream& out) {
  bool finished = false;
  std::vector<int64_t> order = store::finishing_order(db, finished);
  if (!finished) log::info("no trial has finished training: the history follows the order trials were added");
  Table t({"n", "trial", "hypervolume", "front_size"});
  // The front is kept incrementally: a dominated newcomer changes nothing, otherwise it
  // evicts the members it dominates. Only the (small) front is measured each step.
  std::vector<pareto::Point> front;
  std::vector<double> xs, ys;
  int64_t n = 0;
  double hv = 0;
  for (int64_t id : order) {
    auto it = c.index.find(id);
    if (it == c.index.end()) continue;
    ++n;
    const pareto::Point& p = c.pts[it->second];
    bool dominated = false;
    for (const auto& f : front) dominated = dominated || pareto::dominates(f, p) || f == p;
    if (!dominated) {
      front.erase(std::remove_if(front.begin(), front.end(), [&](const pareto::Point& f) { return pareto::dominates(p, f); }),
                  front.end());
      front.push_back(p);
      hv = pareto::hypervolume(front, c.ref);
    }
    t.add({n, id, hv, int64_t(front.size())});
    xs.push_back(double(n));
    ys.push_back(hv);
  }
  t.write(out, o.format);
  if (!o.plot.empty()) {
    std::string names;
    for (const auto& ob : c.objs) names += (names.empty() ? "" : ", ") + ob.metric.name + (ob.maximize ? " (max)" : " (min)");
    write_file_atomic(o.plot, pareto::line_svg("hypervolume of " + names, {"trials", "count", false, false},
                                               {"hypervolume", "", true, false}, xs, ys));
    log::info("wrote '" + o.plot + "'");
  }
  return 0;
}

// The considered trials ranked: their fronts, the first front's knee, hypervolume and crowding.
struct Ranked {
  std::vector<int> rank;                // per considered trial: its front (0 = the Pareto front)
  std::vector<size_t> front;            // the first front
  size_t knee = 0;                      // a position in ids
  double hv = 0;
  std::map<size_t, double> crowding;    // per member of the first front
};

Ranked rank_trials(const Considered& c) {
  Ranked r;
  auto fronts = pareto::nondominated_sort(c.pts);
  r.rank.resize(c.pts.size());
  for (size_t f = 0; f < fronts.size(); ++f)
    for (size_t i : fronts[f]) r.rank[i] = int(f);
  r.front = fronts[0];
  r.knee = r.front[pareto::knee_point(c.pts, r.front)];
  r.hv = pareto::hypervolume(c.pts, c.ref);
  auto crowd = pareto::crowding_distance(c.pts, r.front);
  for (size_t i = 0; i < r.front.size(); ++i) r.crowding[r.front[i]] = crowd[i];
  return r;
}

// One row per trial of the front (every considered trial with `all`), each front ordered by
// its first objective, best first.
Table front_table(const Considered& c, const Ranked& r, const std::map<int64_t, std::string>& archs, bool all) {
  std::vector<std::string> cols = {"trial"};
  for (const auto& ob : c.objs) cols.push_back(ob.metric.name);
  if (all) cols.push_back("front");
  cols.insert(cols.end(), {"crowding", "knee", "arch"});
  Table t(cols);
  std::vector<size_t> rows;
  if (all) {
    for (size_t i = 0; i < c.pts.size(); ++i) rows.push_back(i);
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return r.rank[a] < r.rank[b]; });
  } else {
    rows = r.front;
  }
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
    return r.rank[a] < r.rank[b] || (r.rank[a] == r.rank[b] && c.pts[a][0] < c.pts[b][0]);
  });
  for (size_t i : rows) {
    std::vector<nlohmann::json> row = {c.ids[i]};
    for (double v : c.raw[i]) row.push_back(v);
    if (all) row.push_back(r.rank[i]);
    auto cr = r.crowding.find(i);
    if (cr != r.crowding.end()) row.push_back(std::isinf(cr->second) ? nlohmann::json("inf") : nlohmann::json(cr->second));
    else row.push_back(nullptr);
    row.push_back(i == r.knee ? "knee" : "");
    auto arch = archs.find(c.ids[i]);
    row.push_back(arch == archs.end() ? std::string() : arch->second);
    t.add(row);
  }
  return t;
}

void write_front(const ParetoOptions& o, const Considered& c, const Ranked& r, const Table& t, std::ostream& out) {
  pareto::Point ref_out = pareto::orient(c.ref, c.maximize);  // back to the objectives' own direction
  if (o.format == Format::json) {
    nlohmann::json j;
    j["objectives"] = nlohmann::json::array();
    for (size_t k = 0; k < c.objs.size(); ++k)
      j["objectives"].push_back({{"name", c.objs[k].metric.name}, {"direction", c.objs[k].maximize ? "max" : "min"},
                                 {"unit", c.objs[k].metric.unit}, {"reference", ref_out[k]}});
    j["rung"] = c.rung ? nlohmann::json(*c.rung) : nlohmann::json(nullptr);
    j["trials"] = c.ids.size();
    j["hypervolume"] = r.hv;
    j["knee"] = c.ids[r.knee];
    j[o.all ? "trials_ranked" : "front"] = t.to_json();
    out << j.dump(2) << "\n";
  } else {
    t.write(out, o.format);
  }
  std::vector<std::string> refs;
  for (double v : ref_out) refs.push_back(fmt(v));
  log::info("front: " + std::to_string(r.front.size()) + " of " + std::to_string(c.ids.size()) + " trials; hypervolume " +
            fmt(r.hv) + " (reference " + join(refs, ",") + "); knee: trial " + std::to_string(c.ids[r.knee]));
}

void plot_front(const std::string& path, const Considered& c, const Ranked& r) {
  std::vector<pareto::PlotAxis> axes;
  for (const auto& ob : c.objs) {
    std::vector<double> col;
    for (const auto& p : c.raw) col.push_back(p[axes.size()]);
    axes.push_back({ob.metric.name, ob.metric.unit, ob.maximize, pareto::auto_log_scale(col)});
  }
  std::vector<pareto::PlotPoint> pp;
  for (size_t i = 0; i < c.ids.size(); ++i) pp.push_back({c.ids[i], c.raw[i], r.rank[i], i == r.knee});
  std::vector<std::string> names;
  for (const auto& ob : c.objs) names.push_back(ob.metric.name);
  write_file_atomic(path, pareto::scatter_svg("Pareto front: " + join(names, " vs ") + " (" + std::to_string(r.front.size()) +
                                                  " of " + std::to_string(c.ids.size()) + " trials)",
                                              axes, pp));
  log::info("wrote '" + path + "'");
}

} // namespace

std::vector<int64_t> front_trials(store::Db& db, const ParetoOptions& o) {
  if (o.objectives.size() < 2) throw UsageError("--front: give at least two objectives (NAME:min|max)");
  const Considered c = consider(db, o);
  std::vector<int64_t> ids;
  for (size_t i : rank_trials(c).front) ids.push_back(c.ids[i]);
  std::sort(ids.begin(), ids.end());
  return ids;
}

int run_pareto(const ParetoOptions& o, std::ostream& out) {
  if (o.objectives.size() < 2) throw UsageError("--objective: give at least two objectives (NAME:min|max)");
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
  store::Db& db = opened.db;
  const Considered c = consider(db, o);
  if (o.history) return write_history(db, o, c, out);
  const Ranked r = rank_trials(c);
  write_front(o, c, r, front_table(c, r, store::trial_archs(db), o.all), out);
  if (!o.plot.empty()) plot_front(o.plot, c, r);
  return 0;
}

} // namespace nas::app
