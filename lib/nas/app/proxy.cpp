// proxy: nas-proxy's summary and its report of how well each proxy predicted
#include "nas/app/proxy.h"
#include "nas/app/db.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/proxy/rank.h"
#include "nas/proxy/score.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/metrics.h"
#include "nas/store/proxies.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

namespace nas::app {

int run_proxy_score(const ProxyOptions& o, std::ostream& out) {
  const Format f = o.format;
  proxy::ScoreOptions so;
  so.db = o.db;
  so.proxies = o.proxies;
  so.threads = o.threads;
  so.device = o.device;
  so.rescore = o.rescore;
  so.select = o.select;
  const auto s = proxy::score_study(so);
  Table t({"proxy", "mean_s", "degenerate"});
  for (const auto& [p, secs] : s.mean_s) {
    auto it = s.degenerate.find(p);
    t.add({p, secs, it == s.degenerate.end() ? int64_t(0) : it->second});
  }
  if (f == Format::json) {
    nlohmann::json j = {{"scored", s.scored}, {"failed", s.failed}, {"candidates", s.candidates},
                        {"queued", s.queued}, {"pruned", s.pruned}, {"budget", s.budget},
                        {"rank_by", s.rank_by}, {"beside", s.beside}, {"wall_s", s.wall_s}, {"proxies", t.to_json()}};
    out << j.dump(2) << "\n";
    return 0;
  }
  t.write(out, f);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", s.wall_s);
  log::info("scored " + std::to_string(s.scored) + " candidates in " + secs + " s" +
            (s.failed ? " (" + std::to_string(s.failed) + " with a failed proxy)" : ""));
  if (o.select)
    log::info("ranked " + std::to_string(s.candidates) + " by " + s.rank_by +
              (s.beside.empty() ? "" : " with " + join(s.beside, ", ") + " (non-dominated rank, crowding)") + ": queued " + std::to_string(s.queued) +
              " (budget " + format_number(s.budget) + " epochs), pruned " + std::to_string(s.pruned));
  return 0;
}

int run_proxy_report(const ProxyOptions& o, std::ostream& out) {
  const Format f = o.format;
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
  store::Db& db = opened.db;
  const auto scores = store::proxy_values(db);
  if (scores.empty()) throw UsageError("'" + o.db + "' has no proxy scores (run nas-proxy --db first)");
  const auto metrics = store::available_metrics(db);
  const auto truth_m = store::resolve_metric(metrics, o.metric, "--metric");
  const auto params_m = store::resolve_metric(metrics, "params", "params");
  const auto params = store::metric_values(db, params_m, std::nullopt, {});
  std::vector<std::optional<int>> rungs;
  if (truth_m.source == "result") {
    const auto last = store::last_result_rung(db);
    if (!last) throw UsageError("'" + o.db + "' has no results yet: nothing to check the proxies against");
    if (o.rung) rungs = {o.rung};
    else
      for (int r = 0; r <= *last; ++r) rungs.push_back(r);
  } else {
    rungs = {std::nullopt};
  }
  Table t({"proxy", "rung", "n", "spearman", "kendall", "top10_overlap", "size_bias", "beats_params"});
  for (const auto& rung : rungs) {
    const auto truth = store::metric_values(db, truth_m, rung, {});
    if (truth.size() < 3) continue;
    double params_rho = std::nan("");
    std::vector<std::pair<std::string, const std::map<int64_t, double>*>> rows;
    for (const auto& [p, v] : scores) rows.push_back({p, &v});
    bool has_params = scores.count("params") > 0;
    if (!has_params) rows.push_back({"params", &params});
    // params first: the baseline every other proxy is compared with
    std::stable_partition(rows.begin(), rows.end(), [](const auto& r) { return r.first == "params"; });
    for (const auto& [name, values] : rows) {
      std::vector<double> s, y, size;
      for (const auto& [id, v] : truth) {
        auto it = values->find(id);
        if (it == values->end()) continue;
        s.push_back(it->second);
        y.push_back(v);
        auto pit = params.find(id);
        size.push_back(pit == params.end() ? std::nan("") : pit->second);
      }
      // A degenerate score (NaN, inf) is the worst score, explicitly: it ranks below every
      // finite one rather than leaving the comparison.
      double worst = INFINITY;
      for (double v : s)
        if (std::isfinite(v)) worst = std::min(worst, v);
      for (double& v : s)
        if (!std::isfinite(v)) v = std::isfinite(worst) ? std::nextafter(worst, -INFINITY) : 0;
      const double rho = proxy::spearman(s, y), tau = proxy::kendall(s, y);
      const size_t k = std::max<size_t>(1, s.size() / 10);
      const double overlap = proxy::top_k_overlap(s, y, k), bias = proxy::spearman(s, size);
      if (name == "params") params_rho = rho;
      auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
      std::string beats = name == "params" ? "(baseline)"
                          : !std::isfinite(rho) || !std::isfinite(params_rho) ? ""
                          : rho > params_rho ? "yes" : "no";
      t.add({name + (has_params || name != "params" ? "" : " (cost model)"), rung ? nlohmann::json(*rung) : nlohmann::json(),
             int64_t(s.size()), num(rho), num(tau), num(overlap), num(bias), beats});
    }
  }
  if (t.size() == 0) throw UsageError("fewer than 3 trials have both proxy scores and '" + o.metric + "'");
  t.write(out, f);
  return 0;
}

} // namespace nas::app
