// proxies: zero-cost proxy scores of trials, and the selection that turns them into a queue
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nas::store {

class Db;

struct ProxyRow {
  int64_t trial_id = 0;
  std::string proxy;
  std::optional<double> value;  // none when degenerate
  std::string flag;             // "" or why degenerate (nan, inf, neg_inf, zero)
  int64_t batch_size = 0;       // 0 for data-free proxies
  double wall_s = 0;
};

// Trials in state 'sampled' (any state with every_state) that lack a score for any of `proxies`
// (all of them when rescore), by id. A score flagged 'error' (the proxy threw) counts as missing:
// it is tried again.
std::vector<int64_t> trials_to_score(Db& db, const std::vector<std::string>& proxies, bool rescore,
                                     bool every_state = false);

// Writes the rows in one transaction; a (trial, proxy) scored before is replaced.
void record_proxy_scores(Db& db, const std::vector<ProxyRow>& rows);

// Every trial's value of each proxy: proxy -> trial -> value (NaN where degenerate).
std::map<std::string, std::map<int64_t, double>> proxy_values(Db& db);

// What scoring needs of a candidate: its genome and the cost model's counts.
struct Candidate {
  int64_t id = 0;
  std::string genome;           // canonical JSON
  int64_t params = 0, macs = 0;
};

// The candidates with these ids, in the order given; ids the study lacks are skipped.
std::vector<Candidate> load_candidates(Db& db, const std::vector<int64_t>& ids);

// The ids of the trials in state 'sampled' (every trial with every_state), ascending.
std::vector<int64_t> trial_ids(Db& db, bool every_state);

// Trials with a score of any of `proxies` flagged 'error' (the proxy threw on them).
std::vector<int64_t> trials_with_proxy_error(Db& db, const std::vector<std::string>& proxies);

struct Keep {
  int64_t trial_id = 0;
  double priority = 0;          // claimed best first
  int rung = 0;
  double budget = 0;
};

// In one transaction: the `keep` trials go from 'sampled' to 'queued' at their rung, budget and
// priority, the `prune` ones to 'pruned' with their reason. Trials no longer 'sampled'
// (another process decided them) are left alone. Returns the numbers queued and pruned.
std::pair<int, int> select_trials(Db& db, const std::vector<Keep>& keep,
                                  const std::vector<std::pair<int64_t, std::string>>& prune);

} // namespace nas::store
