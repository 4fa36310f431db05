// select: see select.h
#include "nas/search/select.h"
#include "nas/search/policy.h"
#include "nas/search/strategy.h"

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

std::vector<double> trade_off_ranks(const std::vector<double>& score, const std::vector<config::Objective>& known,
                                    const std::vector<config::SearchConstraint>& constraints,
                                    const std::vector<std::vector<std::optional<double>>>& values) {
  config::SearchConfig s;
  s.objectives = known;
  s.objectives.push_back({"proxy score", true});
  s.constraints = constraints;
  std::vector<Member> members;
  for (size_t i = 0; i < score.size(); ++i) {
    Member m{int64_t(i), {}, {}};
    m.values.assign(values[i].begin(), values[i].begin() + std::ptrdiff_t(known.size()));
    m.values.push_back(std::isfinite(score[i]) ? std::optional<double>(score[i]) : std::nullopt);   // degenerate: last
    m.values.insert(m.values.end(), values[i].begin() + std::ptrdiff_t(known.size()), values[i].end());
    members.push_back(std::move(m));
  }
  const std::vector<size_t> order = rank_members(members, s);   // leaves out those without a score
  std::vector<double> rank(score.size(), 0);
  for (size_t k = 0; k < order.size(); ++k) rank[order[k]] = double(score.size() - k);
  return rank;
}

} // namespace nas::search
