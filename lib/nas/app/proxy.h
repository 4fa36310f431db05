// proxy: what nas-proxy does -- score and select (over the torch proxy module), and the report
#pragma once
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/core/table.h"

namespace nas::app {

struct ProxyOptions {
  std::string db;
  Format format = Format::table;
  std::vector<std::string> proxies;   // --proxies (empty: the study's)
  int threads = 0;
  std::string device = "cpu";
  bool rescore = false;
  bool select = true;                 // false with --no-select
  bool report = false;
  std::string metric = "val_acc";     // --report: the truth the proxies are checked against
  std::optional<int> rung;            // --report: one rung (default: every rung with results)
};

// Scores and selects (proxy::score_study); prints the summary. 0.
int run_proxy_score(const ProxyOptions& o, std::ostream& out);

// For each stored proxy (and the ensemble): Spearman and Kendall correlation with the metric
// at each rung, the overlap of the top 10% (at least 1) and the size bias (Spearman with
// params), and whether it ranks better than params. Degenerate scores count as the worst. 0; UsageError when the study has no proxy
// scores or no values of the metric.
int run_proxy_report(const ProxyOptions& o, std::ostream& out);

} // namespace nas::app
