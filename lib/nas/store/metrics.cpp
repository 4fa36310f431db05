// metrics: one naming of every per-trial number in a study file
#include "nas/store/metrics.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace nas::store {

std::vector<MetricInfo> available_metrics(Db& db) {
  std::vector<MetricInfo> out = {{"params", "count", "cost", "", "", ""},
                                 {"macs", "MAC", "cost", "", "", ""},
                                 {"peak_act_bytes", "B", "cost", "", "", ""},
                                 {"weight_bytes", "B", "cost", "", "", ""}};
  for (auto q = db.prepare("SELECT metric, coalesce(max(unit), '') FROM result GROUP BY metric"); q.step();)
    out.push_back({q.text(0), q.text(1), "result", "", "", ""});
  for (auto q = db.prepare("SELECT DISTINCT proxy FROM proxy_score"); q.step();)
    out.push_back({"proxy_" + q.text(0), "score", "proxy", "", "", ""});
  std::map<std::string, int> bare;
  std::vector<MetricInfo> meas;
  for (auto q = db.prepare("SELECT backend, device, metric, coalesce(max(unit), '') FROM measurement GROUP BY backend, device, metric");
       q.step();) {
    MetricInfo m{q.text(0) + ":" + q.text(1) + ":" + q.text(2), q.text(3), "measurement", q.text(0), q.text(1), q.text(2)};
    meas.push_back(m);
    bare[m.metric]++;
  }
  for (const auto& m : meas) {
    out.push_back(m);
    if (bare[m.metric] == 1) {
      MetricInfo b = m;
      b.name = m.metric;
      out.push_back(b);
    }
  }
  std::sort(out.begin(), out.end(), [](const MetricInfo& a, const MetricInfo& b) { return a.name < b.name; });
  out.erase(std::unique(out.begin(), out.end(), [](const MetricInfo& a, const MetricInfo& b) { return a.name == b.name; }),
            out.end());
  return out;
}

MetricInfo resolve_metric(const std::vector<MetricInfo>& metrics, const std::string& name, const std::string& what) {
  for (const auto& m : metrics)
    if (m.name == name) return m;
  std::vector<std::string> names;
  for (const auto& m : metrics) names.push_back(m.name);
  std::string hint = suggestion_suffix(name, names);
  std::vector<std::string> qualified;
  for (const auto& m : metrics)
    if (m.source == "measurement" && m.metric == name) qualified.push_back(m.name);
  if (!qualified.empty())
    throw UsageError(what + ": metric '" + name + "' is measured on several devices: name one of " + quoted_list(qualified));
  throw UsageError(what + ": the study has no metric '" + name + "'" + hint + " (it has " + quoted_list(names) + ")");
}

std::optional<int> last_result_rung(Db& db) {
  auto q = db.prepare("SELECT max(rung) FROM result");
  if (q.step() && !q.is_null(0)) return int(q.int64(0));
  return std::nullopt;
}

std::map<int64_t, double> metric_values(Db& db, const MetricInfo& m, std::optional<int> rung,
                                        const std::vector<TrialState>& exclude_states) {
  std::string sql;
  if (m.source == "cost")
    sql = "SELECT t.id, t." + std::string(m.name == "params" ? "params" : m.name == "macs" ? "macs"
                                         : m.name == "peak_act_bytes" ? "peak_act_bytes" : "weight_bytes") +
          " FROM trial t WHERE 1";
  else if (m.source == "result")
    // A trial stopped early inside this rung is left out: its accuracy is one after a smaller budget.
    sql = "SELECT t.id, r.value FROM trial t JOIN result r ON r.trial_id = t.id WHERE r.metric = ?1 AND r.rung = ?2"
          " AND NOT (" + std::string(kStoppedEarly) + " AND t.rung = ?2)";
  else if (m.source == "proxy")
    sql = "SELECT t.id, p.value FROM trial t JOIN proxy_score p ON p.trial_id = t.id WHERE p.proxy = ?1";
  else
    sql = "SELECT t.id, x.value FROM trial t JOIN measurement x ON x.trial_id = t.id"
          " WHERE x.metric = ?1 AND x.backend = ?3 AND x.device = ?4";
  sql += " AND t.state NOT IN (SELECT value FROM json_each(?5))";
  auto q = db.prepare(sql);
  if (m.source == "result") {
    if (!rung) throw UsageError("metric '" + m.name + "' is a training result: it needs a rung");
    q.bind(1, m.name).bind(2, *rung);
  } else if (m.source == "proxy") {
    q.bind(1, m.name.substr(6));
  } else if (m.source == "measurement") {
    q.bind(1, m.metric).bind(3, m.backend).bind(4, m.device);
  }
  nlohmann::json excluded = nlohmann::json::array();
  for (TrialState s : exclude_states) excluded.push_back(to_string(s));
  q.bind(5, excluded.dump());
  std::map<int64_t, double> out;
  while (q.step())
    if (auto v = q.opt_real(1)) out[q.int64(0)] = *v;
  return out;
}

std::map<std::pair<int64_t, int>, double> rung_metric_values(Db& db, const std::string& metric, int below_rung) {
  std::string sql;
  std::vector<std::string> params = {metric};
  const size_t a = metric.find(':'), b = a == std::string::npos ? a : metric.find(':', a + 1);
  if (metric == "params" || metric == "macs" || metric == "peak_act_bytes" || metric == "weight_bytes") {
    sql = "SELECT id, -1, " + metric + " FROM trial WHERE ?1 = ?1";   // the column name is one of the four above
  } else if (metric.rfind("proxy_", 0) == 0) {
    sql = "SELECT trial_id, -1, value FROM proxy_score WHERE proxy = ?1";
    params = {metric.substr(6)};
  } else if (b != std::string::npos) {
    sql = "SELECT trial_id, -1, value FROM measurement WHERE backend = ?1 AND device = ?3 AND metric = ?4 ORDER BY id";
    params = {metric.substr(0, a), "", metric.substr(a + 1, b - a - 1), metric.substr(b + 1)};
  } else {
    // Ordered, so that the latest measurement of a trial is the one the map keeps.
    sql = "SELECT trial_id, -1 AS rung, value, id AS k FROM measurement WHERE metric = ?1 UNION ALL "
          "SELECT trial_id, rung, value, 0 FROM result WHERE metric = ?1 AND rung < ?2 ORDER BY k";
  }
  std::map<std::pair<int64_t, int>, double> out;
  db.read([&] {
    out.clear();
    auto q = db.prepare(sql);
    for (size_t i = 0; i < params.size(); ++i)
      if (i != 1) q.bind(int(i) + 1, params[i]);
    if (sql.find("?2") != std::string::npos) q.bind(2, below_rung);
    while (q.step())
      if (auto v = q.opt_real(2)) out[{q.int64(0), int(q.int64(1))}] = *v;
  });
  return out;
}

std::map<int64_t, std::string> trial_archs(Db& db) {
  std::map<int64_t, std::string> out;
  for (auto q = db.prepare("SELECT id, arch FROM trial"); q.step();) out[q.int64(0)] = q.text(1);
  return out;
}

std::vector<int64_t> finishing_order(Db& db, bool& any_finished) {
  std::vector<int64_t> out;
  auto q = db.prepare(
      "SELECT t.id, (SELECT max(e.id) FROM event e WHERE e.trial_id = t.id AND e.kind = 'finish') AS f"
      " FROM trial t ORDER BY f IS NULL, f, t.id");
  any_finished = false;
  while (q.step()) {
    out.push_back(q.int64(0));
    if (!q.is_null(1)) any_finished = true;
  }
  return out;
}

} // namespace nas::store
