// select: which ranked candidates enter training, at which rung and budget, and which are
// pruned -- the decision after the zero-cost proxies ([budget] keep, proxy_start)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/store/proxies.h"

namespace nas::search {

struct Selection {
  std::vector<store::Keep> queue;                           // enter training, best first
  std::vector<std::pair<int64_t, std::string>> prune;       // trial, reason
  double budget = 0;                                        // rung 0's budget
};

// `ids[i]` has rank `rank[i]` (ascending: n is the best, as proxy::ranks gives; ties keep id
// order). The best keep_count(n) are queued with priority rank / n at rung 0 and the first
// budget; with [budget] proxy_start the top keep / eta^k start at rung k (as many as
// successive halving would promote that far) with that rung's budget. The rest are pruned with
// the reason "proxy: rank R of N by RANK_BY". Pure.
Selection select_by_rank(const std::vector<int64_t>& ids, const std::vector<double>& rank,
                         const config::StudyConfig& cfg, const std::string& rank_by);

// The screen of a study with several [search] objectives keeps the trade-off, as its rungs do:
// each candidate is placed by search::rank_members (feasible, non-dominated rank, crowding, id)
// over the objectives whose values are known before training (`known`: the cost model's, a proxy
// score's) plus its proxy `score`, maximised, standing for those only training or measuring
// reveals. `values[i]` holds candidate i's values of `known`, then of `constraints` (a constraint
// counts only where every candidate has its value). A score that is not finite (a degenerate
// network) ranks last, at 0. Returns ranks in proxy::ranks' direction (n: the best; distinct,
// but 0 for every degenerate one), for select_by_rank. Pure.
std::vector<double> trade_off_ranks(const std::vector<double>& score, const std::vector<config::Objective>& known,
                                    const std::vector<config::SearchConstraint>& constraints,
                                    const std::vector<std::vector<std::optional<double>>>& values);

} // namespace nas::search
