// score: nas-proxy's work on a study -- score the sampled candidates with the chosen proxies,
// combine them, and decide which enter training (the rest are pruned)
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nas::proxy {

struct ScoreOptions {
  std::string db;
  std::vector<std::string> proxies;   // empty: the study's [proxy] proxies
  int threads = 0;                    // candidates scored at once (0: [proxy] threads, else the cores)
  std::string device = "cpu";         // cpu | cuda | cuda:N | auto: where the networks and batches live
  bool rescore = false;               // score candidates that have scores again
  bool select = true;                 // queue the top `keep` and prune the rest
};

struct ScoreSummary {
  int64_t scored = 0;                 // candidates scored now
  int64_t failed = 0;                 // of which a proxy threw (flagged 'error')
  std::map<std::string, int64_t> degenerate;   // proxy -> candidates with a degenerate score
  std::map<std::string, double> mean_s;        // proxy -> mean seconds a candidate
  int64_t candidates = 0;             // sampled candidates ranked for the selection
  int queued = 0, pruned = 0;
  double budget = 0;                  // the first budget of the queued trials
  std::string rank_by;                // ensemble or a proxy
  std::vector<std::string> beside;    // several objectives: those known before training, ranked with it ("params:min")
  double wall_s = 0;
};

// Scores every 'sampled' trial (without select: every trial, whatever its state) that lacks a
// score of a chosen proxy (parallel threads, one network each, rows written in batches).
// Without select it stores the ensemble (two or more proxies, ensemble not none) of every trial
// with all chosen scores and stops. With select it ranks all sampled trials that
// have every chosen score by [proxy] rank_by (the ensemble's value is stored as proxy
// 'ensemble'), queues the best [budget] keep at rung 0 with budget min_epochs (priority by
// rank) and prunes the rest (reason "proxy: rank R of N"). A study with several [search]
// objectives keeps the trade-off: the score stands for the objectives only training reveals and
// is ranked beside those already known (cost model, proxy scores) by non-dominated rank and
// crowding (search::trade_off_ranks), so the screen does not cut the small networks a
// params:min objective asks for (not with [budget] proxy_start, which starts the best by the
// score at later rungs). Degenerate scores (NaN, inf, zero)
// are stored as NULL with a flag and rank last. A candidate whose scoring throws is flagged
// 'error' and the run goes on. Throws UsageError for an unknown proxy.
ScoreSummary score_study(const ScoreOptions& o);

} // namespace nas::proxy
