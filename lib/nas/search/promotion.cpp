// promotion: the decisions of successive halving over the store's queue primitives.
//
// Promotion happens inside the claim: a worker that wants work first promotes a paused trial
// in the top 1/eta of its rung to the next rung and claims it, in the same transaction, so no
// two workers promote the same trial and a SIGKILL between the two steps cannot happen. The
// ranking is done here, in C++, over the rung's results read inside the transaction (a few
// thousand rows at most): the rule -- by val_acc, or MO-ASHA over several objectives -- lives in one
// place, and the store only reads and writes.
#include "nas/search/promotion.h"
#include "nas/search/breed.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/search/budget.h"
#include "nas/search/strategy.h"
#include "nas/store/db.h"
#include "nas/store/metrics.h"
#include "nas/store/trials.h"

#include <algorithm>
#include <map>

namespace nas::search {

namespace {

// A rung's result with its objective values (empty with one objective).
struct Row {
  const store::RungResult* r;
  const std::vector<std::optional<double>>* values;
  const store::RungResult* operator->() const { return r; }
};

bool stopped_in_rung(const store::RungResult* r) { return r->stopped_early && r->trial_rung == r->rung; }

// Results of one rung in promotion order: finished ones before those stopped early there, then
// by value (best first), then by id.
void rank_rung(std::vector<Row>& rows) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    const bool sa = stopped_in_rung(a.r), sb = stopped_in_rung(b.r);
    if (sa != sb) return !sa;
    if (a->value != b->value) return a->value > b->value;
    return a->trial_id < b->trial_id;
  });
}

// `rows` best first by the objectives (search::rank_members: feasible, non-dominated rank,
// crowding, id); rows without every objective last, by id.
std::vector<Row> by_objectives(const std::vector<Row>& rows, const Policy& p) {
  config::SearchConfig s;
  s.objectives = p.objectives;
  s.constraints = p.constraints;
  std::vector<Member> members;
  for (const auto& r : rows) members.push_back({r->trial_id, {}, *r.values});
  std::vector<Row> out;
  std::vector<bool> placed(rows.size(), false);
  for (size_t i : rank_members(members, s)) {
    out.push_back(rows[i]);
    placed[i] = true;
  }
  std::vector<Row> rest;
  for (size_t i = 0; i < rows.size(); ++i)
    if (!placed[i]) rest.push_back(rows[i]);
  std::sort(rest.begin(), rest.end(), [](const Row& a, const Row& b) { return a->trial_id < b->trial_id; });
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// Several objectives (MO-ASHA): finished before stopped early, each part by the objectives.
void rank_rung_mo(std::vector<Row>& rows, const Policy& p) {
  std::vector<Row> finished, stopped;
  for (const auto& r : rows) (stopped_in_rung(r.r) ? stopped : finished).push_back(r);
  rows = by_objectives(finished, p);
  for (const auto& r : by_objectives(stopped, p)) rows.push_back(r);
}

// Trials of the rung that went on to a later rung (promoted before, whatever became of them).
int64_t promoted_from(const std::vector<Row>& rows, int rung) {
  return std::count_if(rows.begin(), rows.end(), [&](const Row& r) { return r->trial_rung > rung; });
}

} // namespace

std::vector<Promotable> promotable(const std::vector<store::RungResult>& results, std::optional<int> lowest_active,
                                   const Policy& policy) {
  Policy one = policy;
  one.objectives.clear();   // no values: by val_acc
  return promotable(results, ObjectiveValues(results.size()), lowest_active, one);
}

std::vector<Promotable> promotable(const std::vector<store::RungResult>& results, const ObjectiveValues& values,
                                   std::optional<int> lowest_active, const Policy& policy) {
  std::vector<Promotable> out;
  if (policy.eta <= 0) return out;
  const int last = policy.last_rung();
  std::map<int, std::vector<Row>> by_rung;
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].rung < last) by_rung[results[i].rung].push_back({&results[i], &values.at(i)});
  for (auto& [rung, rows] : by_rung) {
    if (policy.synchronous && lowest_active && *lowest_active <= rung) continue;   // rung not complete
    const bool mo = policy.objectives.size() > 1;
    if (mo) rank_rung_mo(rows, policy);
    else rank_rung(rows);
    const int64_t keep = policy.rung_keep(int64_t(rows.size()));
    int64_t quota = policy.synchronous ? keep - promoted_from(rows, rung) : keep;
    for (int64_t i = 0; i < keep && quota > 0; ++i) {
      const store::RungResult& r = *rows[size_t(i)].r;
      if (r.state != store::TrialState::paused || r.trial_rung != rung) continue;
      // By objectives, the position is the value: the sort below keeps the rung's order.
      out.push_back({r.trial_id, rung, mo ? -double(i) : r.value});
      --quota;
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

// Several objectives: each result's values of the policy's objectives and constraints, at its
// rung (or, for values that do not depend on the rung, the trial's).
static ObjectiveValues objective_values(store::Db& db, const std::vector<store::RungResult>& rows, const Policy& policy) {
  ObjectiveValues out(rows.size());
  std::vector<std::string> metrics;
  for (const auto& o : policy.objectives) metrics.push_back(o.metric);
  for (const auto& c : policy.constraints) metrics.push_back(c.metric);
  for (const auto& m : metrics) {
    const auto values = store::rung_metric_values(db, m, policy.last_rung());
    for (size_t i = 0; i < rows.size(); ++i) {
      auto it = values.find({rows[i].trial_id, rows[i].rung});
      if (it == values.end()) it = values.find({rows[i].trial_id, -1});
      out[i].push_back(it == values.end() ? std::nullopt : std::optional<double>(it->second));
    }
  }
  return out;
}

static std::vector<Promotable> promotable_now(store::Db& db, const Policy& policy) {
  if (policy.eta <= 0) return {};
  const auto rows = store::rung_results(db, "val_acc", policy.last_rung());
  const auto lowest = policy.synchronous ? store::lowest_active_rung(db) : std::nullopt;
  if (policy.objectives.size() > 1) return promotable(rows, objective_values(db, rows, policy), lowest, policy);
  return promotable(rows, lowest, policy);
}

// Nothing to promote or claim: an evolutionary search breeds a child, queued at rung 0, on the
// worker's island -- inside the claim's transaction, so the child is claimed as it is born and
// a worker killed right after leaves it to lease expiry like any claimed trial.
static BreedRequest breed_request(store::Db& db, int64_t worker_id, const Policy& policy, double now) {
  const auto& s = policy.breeder->cfg().search;
  BreedRequest r;
  r.island = island_of_worker(worker_id, s);
  r.worker_id = worker_id;
  r.island_workers = std::max<int64_t>(1, store::island_workers(db, r.island, s.islands, policy.lease_s, now));
  r.state = store::TrialState::queued;
  r.budget = policy.eta > 0 ? std::optional<double>(policy.rung_budget(0)) : std::nullopt;
  r.within_evaluations = true;
  return r;
}

namespace {

// How a claim transaction breeds: a screened event in two steps (ask, then insert the
// candidates screened between them), or one child inside the transaction.
enum class BreedMode { screened, unscreened };

// One claim transaction: reclaim, then (within the budgets) promote, or take the best queued
// trial, or breed. With a screen and no `screened` candidates yet, it writes nothing more and
// sets `want_screen`: the caller screens outside the transaction and calls again with them;
// `want_screen` is set again when another worker took every one of them meanwhile.
std::optional<store::Claim> try_claim(store::Db& db, int64_t worker_id, const Policy& policy, BreedMode how,
                                      const Screened* screened, bool& want_screen, std::string& spent) {
  std::optional<store::Claim> claim;
  db.write([&] {
    claim.reset();
    want_screen = false;
    const double now = now_unix();
    store::reclaim_expired_in_tx(db, policy, now);
    const BudgetLeft left = budget_left(db, policy, now);
    spent = left.spent;
    if (!left.open) return;   // the wall time is spent: nothing new starts
    for (const auto& up : promotable_now(db, policy)) {
      if (!promotion_fits(left, policy, up.rung)) continue;
      const int rung = up.rung + 1;
      store::promote_in_tx(db, up.trial_id, rung, policy.rung_budget(rung), worker_id, now);
      claim = store::claim_in_tx(db, worker_id, up.trial_id, policy, now);
      return;
    }
    if (auto id = store::next_queued_in_tx(db)) {
      claim = store::claim_in_tx(db, worker_id, *id, policy, now);
      return;
    }
    if (!policy.breeder || cohort_waits(db, policy) || !child_fits(left, policy)) return;
    if (evaluations_left(db, policy.breeder->cfg().search) == 0) return;
    const bool screen = how == BreedMode::screened && policy.breeder->screen();
    if (screen && !screened) {
      want_screen = true;
      return;
    }
    const BreedRequest r = breed_request(db, worker_id, policy, now);
    std::optional<Bred> bred;
    if (screen && !screened->candidates.empty()) {
      bred = breed_screened(db, *policy.breeder, r, *screened);
      want_screen = !bred;   // every candidate taken since the read: screen again
    } else {
      bred = breed(db, *policy.breeder, r);   // (nothing new near the island: breed() records it)
    }
    if (bred) claim = store::claim_in_tx(db, worker_id, bred->trial_id, policy, now);
  });
  return claim;
}

// Screening rounds before a worker breeds one child unscreened: each round loses only when
// other workers queued every candidate between its read and its write.
constexpr int kScreenRounds = 4;

} // namespace

std::optional<store::Claim> claim_next(store::Db& db, int64_t worker_id, const Policy& policy) {
  bool want_screen = false;
  std::string spent;
  auto claim = try_claim(db, worker_id, policy, BreedMode::screened, nullptr, want_screen, spent);
  for (int round = 0; want_screen && round < kScreenRounds; ++round) {
    // proposed from a read, scored with no transaction open, inserted by the next claim
    const Screened s = screen_candidates(db, *policy.breeder, island_of_worker(worker_id, policy.breeder->cfg().search));
    claim = try_claim(db, worker_id, policy, BreedMode::screened, &s, want_screen, spent);
  }
  if (want_screen) claim = try_claim(db, worker_id, policy, BreedMode::unscreened, nullptr, want_screen, spent);
  if (!claim && !spent.empty()) log::verbose("the search's budget is spent: " + spent);
  return claim;
}

int64_t count_claimable(store::Db& db, const Policy& policy) {
  int64_t n = 0;
  db.read([&] {
    n = 0;
    const BudgetLeft left = budget_left(db, policy, now_unix());
    if (!left.open) return;
    n = store::count_trials(db, {store::TrialState::queued});
    for (const auto& up : promotable_now(db, policy)) n += promotion_fits(left, policy, up.rung) ? 1 : 0;
    // Synchronous: a rung still running will promote once it completes -- work for a job that
    // ends now (released trials are queued and counted above).
    if (policy.eta > 0 && policy.synchronous) n += store::count_running_below(db, policy.last_rung());
    // An evolutionary search breeds while its budgets last.
    n += children_left(db, policy, left);
  });
  return n;
}

bool cohort_waits(store::Db& db, const Policy& policy) {
  if (policy.eta <= 0 || !policy.synchronous || !policy.breeder) return false;
  const int64_t size = std::max<int64_t>(1, policy.breeder->cfg().search.population);
  const int64_t earlier = store::count_trials(db, {}) / size * size;   // the trials of the earlier cohorts
  return earlier > 0 && store::count_first_rung_open(db, earlier) > 0;
}

bool worth_waiting(store::Db& db, const Policy& policy) {
  if (policy.eta <= 0 || !policy.synchronous || store::count_running_below(db, policy.last_rung()) == 0) return false;
  return policy.wall_time_s <= 0 || budget_left(db, policy, now_unix()).open;
}

} // namespace nas::search
