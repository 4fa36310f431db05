// budget_test: the search's budgets beside evaluations -- [search] epochs (no promotion or
// child that would commit more) and wall_time (nothing claimed after it) -- in the claim, in
// count_claimable and in the pure rules
#include <doctest/doctest.h>

#include "../support.h"
#include "search_support.h"

#include "nas/config/study_config.h"
#include "nas/core/text.h"
#include "nas/search/breed.h"
#include "nas/search/budget.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/lineage.h"
#include "nas/store/queue.h"
#include "nas/store/study.h"

#include <cmath>
#include <limits>
#include <set>

using namespace nas;
using nas::test::count;
using nas::test::new_worker;
using nas::test::TempDir;

namespace {

config::StudyConfig study(const std::string& rest) {
  return test::nb201_study("budget", 3, "[train]\nepochs=9\n" + rest);
}

// "Trains" a claim as the table job does: val_acc from the trial id, its epochs the budget;
// paused below the last rung, else done.
void train(store::Db& db, const store::Claim& c, int64_t worker, const search::Policy& policy) {
  const double epochs = c.budget.value_or(policy.train_epochs);
  db.write([&] {
    for (const auto& [metric, value] : std::vector<std::pair<std::string, double>>{
             {"val_acc", 0.5 + double(c.trial_id % 13) / 100}, {"epochs", epochs}}) {
      auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, ?2, ?3, ?4, 0)");
      q.bind(1, c.trial_id).bind(2, c.rung).bind(3, metric).bind(4, value).run();
    }
  });
  const bool last = policy.eta <= 0 || c.rung >= policy.last_rung();
  store::finish(db, c.trial_id, worker, last ? store::TrialState::done : store::TrialState::paused);
}

// Sampled random trials queued at rung 0 with `budget` epochs.
void queue_random(store::Db& db, const config::StudyConfig& cfg, int n, double budget) {
  const space::Sampler sampler(cfg);
  Rng rng(9);
  std::vector<store::NewTrial> trials;
  std::set<std::string> seen;
  while (int(trials.size()) < n) {
    const space::Genome g = sampler.draw_feasible(rng);
    store::NewTrial t;
    t.genome = space::canonical(g);
    t.hash = space::genome_hash(g);
    if (!seen.insert(t.hash).second) continue;
    t.arch = space::summary(g);
    t.state = store::TrialState::queued;
    t.budget = budget;
    trials.push_back(t);
  }
  store::insert_trials(db, trials, "add");
}

} // namespace

TEST_CASE("the pure rules: a child or a promotion starts only when its epochs fit what is left") {
  auto cfg = study("[budget]\nmin_epochs=1\nmax_epochs=9\neta=3\n[search]\nepochs=20\n");
  const search::Policy p = search::policy_of(cfg);
  CHECK(p.search_epochs == 20);
  CHECK(search::child_epochs(p) == 1);
  search::BudgetLeft left;
  left.epochs = 2;
  CHECK(search::child_fits(left, p));
  CHECK(search::promotion_fits(left, p, 0));          // 1 -> 3 adds 2
  CHECK_FALSE(search::promotion_fits(left, p, 1));    // 3 -> 9 adds 6
  left.epochs = 0.5;
  CHECK_FALSE(search::child_fits(left, p));
  left.epochs = 100;
  left.open = false;                                  // the wall time spent: nothing starts
  CHECK_FALSE(search::child_fits(left, p));
  CHECK_FALSE(search::promotion_fits(left, p, 0));
  // no successive halving: a child trains [train] epochs
  const search::Policy flat = search::policy_of(study("[search]\nepochs=20\n"));
  CHECK(search::child_epochs(flat) == 9);
}

TEST_CASE("[search] epochs alone bounds an evolutionary search: children and promotions stop within it") {
  const auto cfg = study("[budget]\nmin_epochs=1\nmax_epochs=9\neta=3\n"
                         "[search]\nstrategy='evolution'\npopulation=3\nepochs=40\n");
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);   // epochs alone is a budget
  TempDir dir;
  store::Db db = store::Db::open(dir.file("e.db"), store::OpenMode::create);
  CHECK(search::evaluations_left(db, cfg.search) == std::numeric_limits<int64_t>::max());   // no bound by count
  const int64_t w = new_worker(db);
  CHECK(search::count_claimable(db, policy) == 40);   // 40 children of 1 epoch each
  int claims = 0;
  while (auto c = search::claim_next(db, w, policy)) {
    train(db, *c, w, policy);
    CHECK(store::epochs_committed(db, 9) <= 40 + 1e-9);
    REQUIRE(++claims < 200);
  }
  const double committed = store::epochs_committed(db, 9);
  CHECK(committed <= 40);
  CHECK(committed > 40 - 1);   // it stops only when not even a child (1 epoch) fits
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'promote'") > 0);
  CHECK(count(db, "SELECT coalesce(sum(r.value), 0) FROM result r JOIN (SELECT trial_id, max(rung) AS rung FROM result"
                  " GROUP BY trial_id) m ON m.trial_id = r.trial_id AND m.rung = r.rung WHERE r.metric = 'epochs'") ==
        int64_t(std::llround(committed)));
  CHECK(search::count_claimable(db, policy) == 0);
  const search::BudgetLeft left = search::budget_left(db, policy, now_unix());
  CHECK(left.open);
  CHECK(left.spent.find("epochs: ") == 0);
}

TEST_CASE("[search] epochs with random sampling: queued trials run, promotions stop at the budget") {
  // 6 trials queued at 1 epoch commit 6; a promotion 1 -> 3 adds 2, 3 -> 9 adds 6. Without a
  // budget ASHA promotes whatever is in a rung's top third as results come in (4 to rung 1 and
  // 2 to rung 2 here); 8 epochs pay for one promotion.
  auto promotions = [](const std::string& path, const std::string& search) {
    const auto cfg = study("[budget]\nmin_epochs=1\nmax_epochs=9\neta=3\n" + search);
    const search::Policy policy = search::policy_of(cfg);
    CHECK_FALSE(policy.breeder);
    store::Db db = store::Db::open(path, store::OpenMode::create);
    queue_random(db, cfg, 6, 1);
    CHECK(store::epochs_committed(db, 9) == 6);
    const int64_t w = new_worker(db);
    int claims = 0;
    while (auto c = search::claim_next(db, w, policy)) {
      train(db, *c, w, policy);
      REQUIRE(++claims < 50);
    }
    CHECK(search::count_claimable(db, policy) == 0);
    return std::make_pair(count(db, "SELECT count(*) FROM event WHERE kind = 'promote'"), store::epochs_committed(db, 9));
  };
  TempDir dir;
  const auto [free_promotions, free_epochs] = promotions(dir.file("free.db"), "");
  CHECK(free_promotions > 1);
  CHECK(free_epochs > 8);
  const auto [bounded, epochs] = promotions(dir.file("bounded.db"), "[search]\nepochs=8\n");
  CHECK(bounded == 1);
  CHECK(epochs == 8);
}

TEST_CASE("[search] wall_time: counted from the first claim; then nothing is claimed, counted or waited for") {
  const auto cfg = study("[search]\nstrategy='evolution'\npopulation=3\nwall_time='10'\n");   // 10 minutes
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);
  CHECK(policy.wall_time_s == 600);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("w.db"), store::OpenMode::create);
  queue_random(db, cfg, 3, 9);
  const int64_t w = new_worker(db);
  CHECK_FALSE(store::first_claim_at(db));
  CHECK(search::count_claimable(db, policy) == 4);   // 3 queued, and at least one child while time is left
  const auto first = search::claim_next(db, w, policy);
  REQUIRE(first);
  const auto at = store::first_claim_at(db);
  REQUIRE(at);
  CHECK(std::abs(*at - now_unix()) < 60);
  train(db, *first, w, policy);
  // the first claim 11 minutes ago: the search's wall time is spent
  db.write([&] {
    auto q = db.prepare("UPDATE event SET at = at - 660 WHERE kind = 'claim'");
    q.run();
  });
  const search::BudgetLeft left = search::budget_left(db, policy, now_unix());
  CHECK_FALSE(left.open);
  CHECK(left.spent.find("wall time: ") == 0);
  CHECK_FALSE(search::claim_next(db, w, policy));    // two trials still queued, none claimed
  CHECK(count(db, "SELECT count(*) FROM trial WHERE state = 'queued'") == 2);
  CHECK(search::count_claimable(db, policy) == 0);
  CHECK(count(db, "SELECT count(*) FROM breeding") == 0);
}

TEST_CASE("with only evaluations, the budgets read nothing and behave as before") {
  const auto cfg = study("[search]\nstrategy='evolution'\npopulation=3\nevaluations=4\n");
  const search::Policy policy = search::policy_of(cfg);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("v.db"), store::OpenMode::create);
  const search::BudgetLeft left = search::budget_left(db, policy, now_unix());
  CHECK(left.open);
  CHECK(std::isinf(left.epochs));
  CHECK(left.spent.empty());
  CHECK(search::children_left(db, policy, left) == 4);
  CHECK(search::count_claimable(db, policy) == 4);
  // no budget at all: no breeder, nothing left to breed
  CHECK(search::evaluations_left(db, study("[search]\nstrategy='evolution'\n").search) == 0);
}
