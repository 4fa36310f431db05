// promotion: successive halving in the claim -- which paused trial goes to the next rung, and
// the claim transaction that promotes it or takes a queued trial
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "nas/search/policy.h"
#include "nas/store/queue.h"

namespace nas::search {

// A paused trial a promotion may take to the next rung.
struct Promotable {
  int64_t trial_id = 0;
  int rung = 0;                      // the rung it finished (it goes to rung + 1)
  double value = 0;                  // its val_acc there (several objectives: minus its position in the rung)
};

// The paused trials in the top floor(n / eta) of their rung, below the last rung, in the order
// promotions take them. Each rung ranks its n results by val_acc (ties by id) -- or, with two or
// more policy.objectives, by feasibility, non-dominated rank and crowding distance over each
// result's objective values (MO-ASHA, the overload below; results missing an objective last, by id); a trial stopped
// early inside the rung counts among the n but ranks below every one that finished it.
// Asynchronous: highest rung first (the trial closest to done), then the best. Synchronous: only
// rungs that are complete (no trial queued or running at them or below: `lowest_active` is the
// lowest rung of any queued or running trial), lowest rung first, so a rung is filled completely
// before any of it is promoted; and a rung promotes floor(n / eta) in all, counting the trials it
// promoted before: a rung that grows and completes again (children bred one at a time) promotes
// only what its larger n adds, never more than 1/eta of it. Pure: decides from its arguments only.
std::vector<Promotable> promotable(const std::vector<store::RungResult>& results, std::optional<int> lowest_active,
                                   const Policy& policy);

// The values of the policy's objectives, then its constraints, of each result (parallel to the
// results; none where a value is not known).
using ObjectiveValues = std::vector<std::vector<std::optional<double>>>;

// The same with several objectives: `values` holds each result's (MO-ASHA ranking). Pure.
std::vector<Promotable> promotable(const std::vector<store::RungResult>& results, const ObjectiveValues& values,
                                   std::optional<int> lowest_active, const Policy& policy);

// Atomically claims work for the worker (one BEGIN IMMEDIATE transaction): expired leases are
// reclaimed; with promotion on (policy.eta > 0) the first promotable trial goes to the next rung
// (budget rung_budget(rung + 1), a 'promote' event) and is claimed -- decided inside the
// transaction, so two workers never promote the same trial; else the best queued trial; else,
// in an evolutionary search with a budget left (policy.breeder), a child bred on the worker's
// island and claimed -- under synchronous promotion only while cohort_waits says no, so that
// rung 0 completes between cohorts. The search's budgets
// (budget.h) bound it: past [search] wall_time nothing is claimed; a promotion or a child that
// would commit more than [search] epochs does not start. With a screen ([search] screen) a
// child takes two transactions: the first finds that a child is next and writes nothing more,
// the candidates are proposed from a read and scored with no transaction open
// (screen_candidates), and the second claims again, inserting the best candidate still new if
// breeding is still the next move. Returns nullopt when there is nothing of these.
std::optional<store::Claim> claim_next(store::Db& db, int64_t worker_id, const Policy& policy);

// Trials a claim could take now: queued ones, plus (promotion on) promotable ones whose epochs
// fit the budget, plus (synchronous promotion) trials running below the last rung, whose rung
// promotes once they finish, plus the children the budgets still allow (children_left); 0 once
// the wall time is spent. What job scripts ask before requeueing themselves (nas-db count
// --claimable).
int64_t count_claimable(store::Db& db, const Policy& policy);

// Synchronous promotion with breeding: children come in cohorts of [search] population trials
// (by id, the first sampled trials included). A worker breeds the next child only when every
// trial of the earlier cohorts has completed rung 0, so that the workers train a cohort side by
// side and rung 0 completes, and promotes, between cohorts; a child bred whenever a worker is
// idle would keep rung 0 from completing until the budget is spent, and waiting for every
// running trial would train one child at a time. True: the worker must not breed now.
bool cohort_waits(store::Db& db, const Policy& policy);

// Whether a worker that found nothing to claim should wait rather than stop: synchronous
// promotion with trials running below the last rung (another worker's, or another trainer's of
// the same pack), whose rung may complete and promote when they finish, and the wall time not
// spent. Trials at the last rung promote nothing.
bool worth_waiting(store::Db& db, const Policy& policy);

} // namespace nas::search
