// mo_promotion_test: multi-objective successive halving -- a rung with several objectives
// promotes by feasibility, non-dominated rank and crowding distance, not by val_acc alone
#include <doctest/doctest.h>

#include "../support.h"
#include "../store/queue_support.h"

#include "nas/config/study_config.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <vector>

using namespace nas;
using namespace nas::store;
using namespace nas::test;

namespace {

// Six paused trials at rung 0 (ids 1..6): (val_acc, params). Front 1: 1, 2, 3, 6; 4 is dominated
// by 1, 5 by 2, 3 and 6. eta 2 keeps three of six.
const std::vector<std::pair<double, double>> kRung = {{0.90, 1000}, {0.85, 100}, {0.60, 10},
                                                      {0.88, 2000}, {0.50, 500}, {0.70, 50}};

search::Policy mo_policy() {
  search::Policy p;
  p.eta = 2;
  p.min_epochs = 1;
  p.max_epochs = 4;
  p.objectives = {{"val_acc", true}, {"params", false}};
  return p;
}

std::vector<RungResult> rung_of() {
  std::vector<RungResult> rows;
  for (size_t i = 0; i < kRung.size(); ++i) {
    RungResult r;
    r.trial_id = int64_t(i + 1);
    r.value = kRung[i].first;
    r.state = TrialState::paused;
    rows.push_back(r);
  }
  return rows;
}

search::ObjectiveValues values_of() {
  search::ObjectiveValues v;
  for (const auto& [acc, params] : kRung) v.push_back({acc, params});
  return v;
}

std::vector<int64_t> ids(const std::vector<search::Promotable>& p) {
  std::vector<int64_t> out;
  for (const auto& x : p) out.push_back(x.trial_id);
  return out;
}

} // namespace

TEST_CASE("several objectives: a rung keeps its top 1/eta by non-dominated rank, then crowding") {
  auto p = mo_policy();
  // front 1 by crowding: 1 and 3 are the extremes (infinite), then 2 (1.63) before 6 (0.92)
  CHECK(ids(search::promotable(rung_of(), values_of(), std::nullopt, p)) == std::vector<int64_t>{1, 3, 2});
  // val_acc alone keeps 1, 4, 2: the small network 3 is cut
  CHECK(ids(search::promotable(rung_of(), std::nullopt, p)) == std::vector<int64_t>{1, 4, 2});
}

TEST_CASE("several objectives: infeasible results rank after feasible ones; early-stopped and unknown ones last") {
  auto p = mo_policy();
  p.constraints = {{"latency_s", true, 1.0}};
  auto rows = rung_of();
  auto values = values_of();
  const std::vector<double> latency = {5.0, 0.5, 0.5, 0.5, 0.5, 0.5};   // trial 1 breaks the bound
  for (size_t i = 0; i < rows.size(); ++i) values[i].push_back(latency[i]);
  // feasible: 2, 3, 4, 5, 6; front 1 there: 2, 3, 4 (4 is no longer dominated), 6
  const auto got = ids(search::promotable(rows, values, std::nullopt, p));
  REQUIRE(got.size() == 3);
  CHECK(std::find(got.begin(), got.end(), 1) == got.end());
  CHECK(std::find(got.begin(), got.end(), 3) != got.end());
  CHECK(std::find(got.begin(), got.end(), 4) != got.end());
  // a trial stopped early in the rung ranks below every finished one, whatever its objectives
  rows = rung_of();
  values = values_of();
  rows[0].stopped_early = true;
  rows[0].state = TrialState::done;
  values[2][1] = std::nullopt;   // 3's params unknown: after the evaluated ones
  CHECK(ids(search::promotable(rows, values, std::nullopt, mo_policy())) == std::vector<int64_t>{4, 6, 2});
}

TEST_CASE("several objectives in the claim: the study's results and cost-model values rank the promotion") {
  TempDir dir;
  Db db = Db::open(dir.file("mo.db"), OpenMode::create);
  const int64_t w = register_worker(db, worker_named("a"));
  std::vector<int64_t> t;
  for (size_t i = 0; i < kRung.size(); ++i) t.push_back(add_trial(db, "paused"));
  db.write([&] {
    auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, 0, 'val_acc', ?2, 0)");
    auto c = db.prepare("UPDATE trial SET params = ?2 WHERE id = ?1");
    for (size_t i = 0; i < kRung.size(); ++i) {
      q.reset();
      q.bind(1, t[i]).bind(2, kRung[i].first).run();
      c.reset();
      c.bind(1, t[i]).bind(2, int64_t(kRung[i].second)).run();
    }
  });
  const auto p = mo_policy();
  std::vector<int64_t> promoted;
  while (auto c = search::claim_next(db, w, p)) {
    CHECK(c->rung == 1);
    promoted.push_back(c->trial_id);
  }
  CHECK(promoted == std::vector<int64_t>{t[0], t[2], t[1]});
  // the policy of a study with two objectives promotes this way; with one, by val_acc
  const auto cfg = config::parse_study_config(
      "[study]\nname='m'\n[data]\nformat='synthetic'\nshape=[3,32,32]\nclasses=10\nsamples=64\n[space]\nfamily='nb201'\n"
      "[search]\nstrategy='nsga2'\nobjectives=['val_acc:max','weight_bytes:min']\n",
      "/tmp/m.toml");
  REQUIRE(search::policy_of(cfg).objectives.size() == 2);
  CHECK(search::policy_of(cfg).objectives[1].metric == "weight_bytes");
}
