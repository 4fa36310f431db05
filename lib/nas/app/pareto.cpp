// pareto: nas-pareto's work over store metrics and the pareto library
#include "nas/app/pareto.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/pareto/front.h"
#include "nas/pareto/plot.h"
#include "nas/store/db.h"
#include "nas/store/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <unistd.h>

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

void write_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error("cannot write '" + path + "': " + std::strerror(errno));
    f << text;
    f.flush();
    if (!f) throw Error("cannot write '" + path + "': " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error("cannot write '" + path + "': " + ec.message());
  }
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

} // namespace

int run_pareto(const ParetoOptions& o, std::ostream& out) {
  Format format = parse_format(o.format);
  if (o.objectives.size() < 2) throw UsageError("--objective: give at least two objectives (NAME:min|max)");
  if (!std::filesystem::exists(o.db)) throw UsageError("cannot open '" + o.db + "': no such file");
  store::Db db = store::Db::open(o.db, store::OpenMode::read_only);
  auto metrics = store::available_metrics(db);

  std::vector<Objective> objs;
  std::set<std::string> seen;
  for (const auto& spec : o.objectives) {
    objs.push_back(parse_objective(metrics, spec));
    if (!seen.insert(objs.back().metric.name).second)
      throw UsageError("--objective '" + spec + "': objective '" + objs.back().metric.name + "' is given twice");
  }
  std::vector<Condition> conds;
  for (const auto& w : o.where) conds.push_back(parse_condition(metrics, w));
  std::optional<int> rung = o.rung ? o.rung : store::last_result_rung(db);
  const std::vector<std::string> excluded = {"pruned", "failed"};

  // Values per trial: a trial counts when it has every objective and meets every condition.
  std::vector<std::map<int64_t, double>> values;
  for (const auto& ob : objs) values.push_back(store::metric_values(db, ob.metric, rung, excluded));
  std::vector<std::map<int64_t, double>> cond_values;
  for (const auto& c : conds) cond_values.push_back(store::metric_values(db, c.metric, rung, excluded));
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
  if (ids.empty())
    throw Error("no trial of '" + o.db + "' has every objective" + (conds.empty() ? "" : " and meets every --where") +
                (rung ? " (results at rung " + std::to_string(*rung) + ")" : ""));

  std::vector<bool> maximize;
  for (const auto& ob : objs) maximize.push_back(ob.maximize);
  std::map<int64_t, size_t> index;
  std::vector<pareto::Point> raw, pts;
  for (size_t i = 0; i < ids.size(); ++i) {
    pareto::Point p;
    for (size_t k = 0; k < objs.size(); ++k) p.push_back(values[k][ids[i]]);
    raw.push_back(p);
    pts.push_back(pareto::orient(p, maximize));
    index[ids[i]] = i;
  }
  pareto::Point ref = o.reference.empty() ? pareto::derived_reference(pts)
                                          : pareto::orient(parse_reference(o.reference, objs.size()), maximize);
  auto archs = store::trial_archs(db);

  std::vector<pareto::PlotAxis> axes;
  for (const auto& ob : objs) {
    std::vector<double> col;
    for (const auto& p : raw) col.push_back(p[axes.size()]);
    axes.push_back({ob.metric.name, ob.metric.unit, ob.maximize, pareto::auto_log_scale(col)});
  }

  if (o.history) {
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
      auto it = index.find(id);
      if (it == index.end()) continue;
      ++n;
      const pareto::Point& p = pts[it->second];
      bool dominated = false;
      for (const auto& f : front) dominated = dominated || pareto::dominates(f, p) || f == p;
      if (!dominated) {
        front.erase(std::remove_if(front.begin(), front.end(), [&](const pareto::Point& f) { return pareto::dominates(p, f); }),
                    front.end());
        front.push_back(p);
        hv = pareto::hypervolume(front, ref);
      }
      t.add({n, id, hv, int64_t(front.size())});
      xs.push_back(double(n));
      ys.push_back(hv);
    }
    t.write(out, format);
    if (!o.plot.empty()) {
      std::string names;
      for (const auto& ob : objs) names += (names.empty() ? "" : ", ") + ob.metric.name + (ob.maximize ? " (max)" : " (min)");
      write_atomic(o.plot, pareto::line_svg("hypervolume of " + names, {"trials", "count", false, false},
                                            {"hypervolume", "", true, false}, xs, ys));
      log::info("wrote '" + o.plot + "'");
    }
    return 0;
  }

  auto fronts = pareto::nondominated_sort(pts);
  std::vector<int> rank(pts.size());
  for (size_t f = 0; f < fronts.size(); ++f)
    for (size_t i : fronts[f]) rank[i] = int(f);
  const auto& front = fronts[0];
  size_t knee = front[pareto::knee_point(pts, front)];
  double hv = pareto::hypervolume(pts, ref);
  auto crowd = pareto::crowding_distance(pts, front);
  std::map<size_t, double> crowding;
  for (size_t r = 0; r < front.size(); ++r) crowding[front[r]] = crowd[r];

  std::vector<std::string> cols = {"trial"};
  for (const auto& ob : objs) cols.push_back(ob.metric.name);
  if (o.all) cols.push_back("front");
  cols.insert(cols.end(), {"crowding", "knee", "arch"});
  Table t(cols);
  std::vector<size_t> rows;
  if (o.all) {
    for (size_t i = 0; i < pts.size(); ++i) rows.push_back(i);
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return rank[a] < rank[b]; });
  } else {
    rows = front;
  }
  // Order each front by its first objective, best first.
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
    return rank[a] < rank[b] || (rank[a] == rank[b] && pts[a][0] < pts[b][0]);
  });
  for (size_t i : rows) {
    std::vector<nlohmann::json> row = {ids[i]};
    for (double v : raw[i]) row.push_back(v);
    if (o.all) row.push_back(rank[i]);
    if (crowding.count(i)) row.push_back(std::isinf(crowding[i]) ? nlohmann::json("inf") : nlohmann::json(crowding[i]));
    else row.push_back(nullptr);
    row.push_back(i == knee ? "knee" : "");
    row.push_back(archs[ids[i]]);
    t.add(row);
  }
  pareto::Point ref_out = pareto::orient(ref, maximize);  // back to the objectives' own direction
  if (format == Format::json) {
    nlohmann::json j;
    j["objectives"] = nlohmann::json::array();
    for (size_t k = 0; k < objs.size(); ++k)
      j["objectives"].push_back({{"name", objs[k].metric.name}, {"direction", objs[k].maximize ? "max" : "min"},
                                 {"unit", objs[k].metric.unit}, {"reference", ref_out[k]}});
    j["rung"] = rung ? nlohmann::json(*rung) : nlohmann::json(nullptr);
    j["trials"] = ids.size();
    j["hypervolume"] = hv;
    j["knee"] = ids[knee];
    std::ostringstream rows_json;
    t.write(rows_json, Format::json);
    j[o.all ? "trials_ranked" : "front"] = nlohmann::json::parse(rows_json.str());
    out << j.dump(2) << "\n";
  } else {
    t.write(out, format);
  }
  std::vector<std::string> refs;
  for (double v : ref_out) refs.push_back(fmt(v));
  log::info("front: " + std::to_string(front.size()) + " of " + std::to_string(ids.size()) + " trials; hypervolume " +
            fmt(hv) + " (reference " + join(refs, ",") + "); knee: trial " + std::to_string(ids[knee]));

  if (!o.plot.empty()) {
    std::vector<pareto::PlotPoint> pp;
    for (size_t i = 0; i < ids.size(); ++i) pp.push_back({ids[i], raw[i], rank[i], i == knee});
    std::vector<std::string> names;
    for (const auto& ob : objs) names.push_back(ob.metric.name);
    write_atomic(o.plot, pareto::scatter_svg("Pareto front: " + join(names, " vs ") + " (" + std::to_string(front.size()) +
                                                 " of " + std::to_string(ids.size()) + " trials)",
                                             axes, pp));
    log::info("wrote '" + o.plot + "'");
  }
  return 0;
}

} // namespace nas::app
