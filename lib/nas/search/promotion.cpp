// promotion: the decisions of successive halving over the store's queue primitives.
//
// Promotion happens inside the claim: a worker that wants work first promotes a paused trial
// in the top 1/eta of its rung to the next rung and claims it, in the same transaction, so no
// two workers promote the same trial and a SIGKILL between the two steps cannot happen. The
// ranking is done here, in C++, over the rung's results read inside the transaction (a few
// thousand rows at most): the rule -- and the multi-objective rules to come -- lives in one
// place, and the store only reads and writes.
#include "nas/search/promotion.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/trials.h"

#include <algorithm>
#include <map>

namespace nas::search {

namespace {

// Results of one rung in promotion order: finished ones before those stopped early there, then
// by value (best first), then by id.
void rank_rung(std::vector<const store::RungResult*>& rows) {
  std::sort(rows.begin(), rows.end(), [](const store::RungResult* a, const store::RungResult* b) {
    const bool sa = a->stopped_early && a->trial_rung == a->rung, sb = b->stopped_early && b->trial_rung == b->rung;
    if (sa != sb) return !sa;
    if (a->value != b->value) return a->value > b->value;
    return a->trial_id < b->trial_id;
  });
}

} // namespace

std::vector<Promotable> promotable(const std::vector<store::RungResult>& results, std::optional<int> lowest_active,
                                   const Policy& policy) {
  std::vector<Promotable> out;
  if (policy.eta <= 0) return out;
  const int last = policy.last_rung();
  std::map<int, std::vector<const store::RungResult*>> by_rung;
  for (const auto& r : results)
    if (r.rung < last) by_rung[r.rung].push_back(&r);
  for (auto& [rung, rows] : by_rung) {
    if (policy.synchronous && lowest_active && *lowest_active <= rung) continue;   // rung not complete
    rank_rung(rows);
    const int64_t keep = policy.rung_keep(int64_t(rows.size()));
    for (int64_t i = 0; i < keep; ++i) {
      const store::RungResult& r = *rows[size_t(i)];
      if (r.state == store::TrialState::paused && r.trial_rung == rung) out.push_back({r.trial_id, rung, r.value});
    }
  }
  const bool lowest_first = policy.synchronous;
  std::stable_sort(out.begin(), out.end(), [&](const Promotable& a, const Promotable& b) {
    if (a.rung != b.rung) return lowest_first ? a.rung < b.rung : a.rung > b.rung;
    if (a.value != b.value) return a.value > b.value;
    return a.trial_id < b.trial_id;
  });
  return out;
}

static std::vector<Promotable> promotable_now(store::Db& db, const Policy& policy) {
  if (policy.eta <= 0) return {};
  return promotable(store::rung_results(db, "val_acc", policy.last_rung()),
                    policy.synchronous ? store::lowest_active_rung(db) : std::nullopt, policy);
}

std::optional<store::Claim> claim_next(store::Db& db, int64_t worker_id, const Policy& policy) {
  std::optional<store::Claim> claim;
  db.write([&] {
    claim.reset();
    const double now = now_unix();
    store::reclaim_expired_in_tx(db, policy, now);
    const auto up = promotable_now(db, policy);
    if (!up.empty()) {
      const int rung = up.front().rung + 1;
      store::promote_in_tx(db, up.front().trial_id, rung, policy.rung_budget(rung), worker_id, now);
      claim = store::claim_in_tx(db, worker_id, up.front().trial_id, policy, now);
      return;
    }
    if (auto id = store::next_queued_in_tx(db)) claim = store::claim_in_tx(db, worker_id, *id, policy, now);
  });
  return claim;
}

int64_t count_claimable(store::Db& db, const Policy& policy) {
  int64_t n = 0;
  db.read([&] { n = store::count_trials(db, {store::TrialState::queued}) + int64_t(promotable_now(db, policy).size()); });
  // Synchronous: a rung still running will promote once it completes -- work for a job that
  // ends now (released trials are queued and counted above).
  if (policy.eta > 0 && policy.synchronous) n += store::count_running_below(db, policy.last_rung());
  return n;
}

bool worth_waiting(store::Db& db, const Policy& policy) {
  return policy.eta > 0 && policy.synchronous && store::count_running_below(db, policy.last_rung()) > 0;
}

} // namespace nas::search
