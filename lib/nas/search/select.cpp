// select: see select.h
#include "nas/search/select.h"
#include "nas/search/policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nas::search {

Selection select_by_rank(const std::vector<int64_t>& ids, const std::vector<double>& rank,
                         const config::StudyConfig& cfg, const std::string& rank_by) {
  Selection s;
  const size_t n = ids.size();
  const size_t keep = keep_count(cfg.budget, n);
  const Policy rungs = policy_of(cfg);
  const auto& b = cfg.budget;
  const int last = b.given ? rungs.last_rung() : 0;
  s.budget = first_budget(cfg);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return rank[x] > rank[y]; });
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    if (k >= keep) {
      s.prune.push_back({ids[i], "proxy: rank " + std::to_string(k + 1) + " of " + std::to_string(n) + " by " + rank_by});
      continue;
    }
    int rung = 0;
    if (b.given && b.proxy_start)
      while (rung + 1 <= last && double(k) < std::floor(double(keep) / std::pow(b.eta, rung + 1))) ++rung;
    s.queue.push_back({ids[i], rank[i] / double(n), rung, b.given ? rungs.rung_budget(rung) : s.budget});
  }
  return s;
}

} // namespace nas::search
