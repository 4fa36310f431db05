// promotion_test: successive halving in the claim -- who is promoted, when a synchronous rung
// is complete, and early stopping's standing at an epoch
#include <doctest/doctest.h>

#include "../support.h"
#include "../store/queue_support.h"

#include "nas/search/early_stop.h"
#include "nas/search/promotion.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

#include <vector>

using namespace nas::store;
using namespace nas::test;
using nas::search::claim_next;
using nas::search::count_claimable;
using nas::search::EpochStanding;
using nas::search::standing_at_epoch;
using nas::search::Policy;

TEST_CASE("a trial stopped early ranks below the trials that finished its rung when promoting") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  const int64_t stopped = add_trial(db, "done"), b = add_trial(db, "paused"), c = add_trial(db, "paused");
  db.write([&] {
    db.exec("UPDATE trial SET reason = 'early stop: number 2 of 3' WHERE id = " + std::to_string(stopped));
    Statement s = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, 0, 'val_acc', ?2, 0)");
    for (auto [id, v] : std::vector<std::pair<int64_t, double>>{{stopped, 0.9}, {b, 0.8}, {c, 0.7}}) {
      s.reset();
      s.bind(1, id).bind(2, v).run();
    }
  });
  Policy policy;
  policy.eta = 3;
  policy.min_epochs = 1;
  policy.max_epochs = 3;
  // n = 3, one promotion: the stopped trial's higher val_acc does not take the place
  CHECK(count_claimable(db, policy) == 1);
  auto claim = claim_next(db, w, policy);
  REQUIRE(claim);
  CHECK(claim->trial_id == b);
  CHECK(claim->rung == 1);
  CHECK(state_of(db, stopped) == "done");
}

TEST_CASE("synchronous promotion waits until the rung is complete, then keeps its top 1/eta, lowest rung first") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  // rung 0: four paused with results, one still running; eta 2
  std::vector<int64_t> t;
  for (int i = 0; i < 4; ++i) t.push_back(add_trial(db, "paused"));
  const int64_t late = add_trial(db, "queued");
  auto result = [&](int64_t id, int rung, double v) {
    db.write([&] {
      Statement s = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, ?2, 'val_acc', ?3, 0)");
      s.bind(1, id).bind(2, rung).bind(3, v).run();
    });
  };
  result(t[0], 0, 0.6);
  result(t[1], 0, 0.9);
  result(t[2], 0, 0.5);
  result(t[3], 0, 0.7);
  Policy policy;
  policy.eta = 2;
  policy.min_epochs = 1;
  policy.max_epochs = 4;
  Policy async = policy;
  policy.synchronous = true;
  // another worker holds the late one
  auto held = claim_next(db, register_worker(db, worker_named("b")), policy);
  REQUIRE(held);
  CHECK(held->trial_id == late);   // a queued trial at the rung: nothing is promoted before it
  // asynchronous: floor(4 / 2) = 2 promotable now; synchronous: the rung is not complete
  CHECK(count_claimable(db, async) == 2);
  CHECK(count_claimable(db, policy) == 1);   // nothing promotable yet; the running one will unlock its rung
  CHECK_FALSE(claim_next(db, w, policy).has_value());
  CHECK(count_running_below(db, policy.last_rung()) == 1);
  CHECK(count_running_below(db, 0) == 0);   // none below rung 0
  // the late trial finishes with the best val_acc: n = 5, floor(5 / 2) = 2 promoted, by rank
  db.exec("UPDATE trial SET state = 'paused', lease_owner = NULL WHERE id = " + std::to_string(late));
  result(late, 0, 0.95);
  CHECK(count_running_below(db, policy.last_rung()) == 0);
  CHECK(count_claimable(db, policy) == 2);
  auto first = claim_next(db, w, policy);
  REQUIRE(first);
  CHECK(first->trial_id == late);
  CHECK(first->rung == 1);
  CHECK(first->budget == doctest::Approx(2.0));
  // a promoted trial running at rung 1 does not hold back the rest of rung 0's promotions
  auto second = claim_next(db, w, policy);
  REQUIRE(second);
  CHECK(second->trial_id == t[1]);
  CHECK_FALSE(claim_next(db, w, policy).has_value());   // t[3] (0.7) is third: not kept
  CHECK(state_of(db, t[3]) == "paused");
  // rung 1: the first finishes; the second still runs -> rung 1 waits
  db.exec("UPDATE trial SET state = 'paused', lease_owner = NULL WHERE id = " + std::to_string(late));
  result(late, 1, 0.96);
  CHECK(count_claimable(db, async) == 0);   // floor(1 / 2) = 0 either way
  db.exec("UPDATE trial SET state = 'paused', lease_owner = NULL WHERE id = " + std::to_string(t[1]));
  result(t[1], 1, 0.97);
  auto third = claim_next(db, w, policy);
  REQUIRE(third);
  CHECK(third->trial_id == t[1]);   // the better at rung 1
  CHECK(third->rung == 2);
  CHECK(third->budget == doctest::Approx(4.0));
  CHECK(events_of(db, "promote") == 3);
}

TEST_CASE("synchronous promotion goes lowest rung first; a failed trial does not hold its rung back") {
  TempDir dir;
  Policy policy;
  policy.eta = 2;
  policy.min_epochs = 1;
  policy.max_epochs = 4;
  // rung 0: a .9, b .8, and c failed; rung 1 (started there by proxy rank): x .95, y .5. The same
  // trials in two files: one promotes asynchronously, the other synchronously.
  struct Ids { int64_t a, b, c, x, y; };
  auto setup = [](Db& db) {
    Ids i{add_trial(db, "paused"), add_trial(db, "paused"), add_trial(db, "failed"), add_trial(db, "paused"),
          add_trial(db, "paused")};
    db.write([&] {
      db.exec("UPDATE trial SET rung = 1 WHERE id IN (" + std::to_string(i.x) + ", " + std::to_string(i.y) + ")");
      Statement s = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, ?2, 'val_acc', ?3, 0)");
      for (auto [id, rung, v] : std::vector<std::tuple<int64_t, int, double>>{{i.a, 0, 0.9}, {i.b, 0, 0.8}, {i.x, 1, 0.95}, {i.y, 1, 0.5}}) {
        s.reset();
        s.bind(1, id).bind(2, rung).bind(3, v).run();
      }
    });
    return i;
  };
  Db adb = Db::open(dir.file("async.db"), OpenMode::create);
  const Ids ai = setup(adb);
  auto afirst = claim_next(adb, register_worker(adb, worker_named("a")), policy);
  REQUIRE(afirst);
  CHECK(afirst->trial_id == ai.x);   // asynchronous: the highest rung first
  policy.synchronous = true;
  Db db = Db::open(dir.file("sync.db"), OpenMode::create);
  const Ids i = setup(db);
  int64_t w = register_worker(db, worker_named("a"));
  auto first = claim_next(db, w, policy);
  REQUIRE(first);
  CHECK(first->trial_id == i.a);     // synchronous: rung 0 first (c failed: it is finished)
  CHECK(first->rung == 1);
  CHECK_FALSE(claim_next(db, w, policy).has_value());   // rung 1 waits for a
  CHECK(state_of(db, i.x) == "paused");
  CHECK(state_of(db, i.c) == "failed");
}

TEST_CASE("standing_at_epoch ranks a trial's val_acc among every trial's at that epoch") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  std::vector<int64_t> t;
  for (int i = 0; i < 7; ++i) t.push_back(add_trial(db, "paused"));
  // epoch 2: t0 .9, t1 .8, t2 .8 (tie: the lower id ranks first), t3 .7, t4 .6, t5 .5; t6 has only epoch 1
  const std::vector<double> acc = {0.9, 0.8, 0.8, 0.7, 0.6, 0.5};
  db.write([&] {
    Statement s = db.prepare("INSERT INTO epoch_metric (trial_id, rung, epoch, metric, value, created_at) VALUES (?1, 1, ?2, ?3, ?4, 0)");
    for (size_t i = 0; i < acc.size(); ++i) {
      s.reset();
      s.bind(1, t[i]).bind(2, 2).bind(3, "val_acc").bind(4, acc[i]).run();
      s.reset();
      s.bind(1, t[i]).bind(2, 2).bind(3, "train_acc").bind(4, 1.0).run();   // other metrics do not count
    }
    s.reset();
    s.bind(1, t[6]).bind(2, 1).bind(3, "val_acc").bind(4, 0.99).run();       // nor other epochs
  });
  EpochStanding s2 = standing_at_epoch(db, t[2], 2, 3);
  CHECK(s2.n == 6);
  CHECK(s2.position == 3);
  CHECK(s2.keep == 2);            // floor(6 / 3)
  CHECK(s2.cutoff == doctest::Approx(0.8));
  CHECK(s2.value == doctest::Approx(0.8));
  CHECK(s2.below());              // third, two kept
  EpochStanding s1 = standing_at_epoch(db, t[1], 2, 3);
  CHECK(s1.position == 2);
  CHECK_FALSE(s1.below());
  CHECK(standing_at_epoch(db, t[5], 2, 2).keep == 3);
  CHECK(standing_at_epoch(db, t[3], 2, 2).position == 4);
  CHECK(standing_at_epoch(db, t[3], 2, 2).below());
  CHECK_FALSE(standing_at_epoch(db, t[2], 2, 2).below());
  CHECK_FALSE(standing_at_epoch(db, t[5], 2, 7).below());   // floor(6 / 7) = 0: too few to judge
  EpochStanding none = standing_at_epoch(db, t[6], 2, 3);   // no value at epoch 2
  CHECK(none.n == 0);
  CHECK_FALSE(none.value.has_value());
  CHECK_FALSE(none.below());
}

