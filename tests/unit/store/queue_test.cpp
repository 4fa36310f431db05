#include <doctest/doctest.h>

#include "../support.h"
// queue_test: the trial queue -- claim order, leases and their expiry, attempts, the event log

#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"
#include "nas/store/results.h"
#include "queue_support.h"

#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

using namespace nas::store;
namespace fs = std::filesystem;
using nas::test::ScopedEnv;
using nas::test::TempDir;
using namespace nas::test;


TEST_CASE("claims go by priority, then by id; nothing queued gives nullopt") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  LeasePolicy policy;

  CHECK(!claim_best_queued(db, w, policy));   // empty study
  int64_t s1 = add_trial(db, "sampled");
  CHECK(!claim_best_queued(db, w, policy));   // sampled is not queued
  CHECK(state_of(db, s1) == "sampled");

  int64_t t1 = add_trial(db, "queued", 0);
  int64_t t2 = add_trial(db, "queued", 2);
  int64_t t3 = add_trial(db, "queued", 2);
  int64_t t4 = add_trial(db, "queued", 1);
  int64_t t5 = add_trial(db, "queued", 0);
  add_trial(db, "done", 9);
  add_trial(db, "paused", 9);
  std::vector<int64_t> order;
  while (auto c = claim_best_queued(db, w, policy)) {
    CHECK(c->attempts == 1);
    CHECK(c->rung == 0);
    CHECK(!c->budget);
    CHECK(c->genome.rfind("{\"n\":", 0) == 0);
    order.push_back(c->trial_id);
  }
  CHECK(order == std::vector<int64_t>{t2, t3, t4, t1, t5});
  CHECK(scalar(db, "SELECT count(*) FROM trial WHERE state = 'running' AND lease_owner = ?1", w) == 5);
  CHECK(scalar(db, "SELECT count(*) FROM trial WHERE state = 'running' AND lease_expires > ?1",
               int64_t(nas::now_unix()) + int64_t(policy.lease_s) - 60) == 5);
  CHECK(events_of(db, "claim") == 5);
  Statement d = db.prepare("SELECT detail, from_state, to_state, worker_id FROM event WHERE kind = 'claim' AND trial_id = ?1");
  d.bind(1, t2);
  REQUIRE(d.step());
  CHECK(nlohmann::json::parse(d.text(0)) == nlohmann::json{{"attempt", 1}});
  CHECK(d.text(1) == "queued");
  CHECK(d.text(2) == "running");
  CHECK(d.int64(3) == w);
}

TEST_CASE("enqueue moves sampled trials to the queue with rung, budget and priority") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t a = add_trial(db, "sampled");
  int64_t b = add_trial(db, "sampled");
  int64_t c = add_trial(db, "sampled");
  int64_t p = add_trial(db, "pruned");

  CHECK(enqueue(db, {b, p}, 1, 4.0, 0.5) == 1);   // a pruned trial is not queued
  CHECK(state_of(db, b) == "queued");
  CHECK(state_of(db, p) == "pruned");
  CHECK(scalar(db, "SELECT rung FROM trial WHERE id = ?1", b) == 1);
  {
    Statement s = db.prepare("SELECT budget, priority FROM trial WHERE id = ?1");
    s.bind(1, b);
    REQUIRE(s.step());
    CHECK(s.real(0) == 4.0);
    CHECK(s.real(1) == 0.5);
  }
  CHECK(enqueue(db, {b}, 0, std::nullopt) == 0);   // already queued: not again
  CHECK(enqueue(db, {}, 0, std::nullopt) == 2);    // every sampled one
  CHECK(state_of(db, a) == "queued");
  CHECK(state_of(db, c) == "queued");
  CHECK(enqueue(db, {}, 0, std::nullopt) == 0);
  CHECK(events_of(db, "enqueue") == 3);
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'enqueue' AND from_state = 'sampled' AND to_state = 'queued'") == 3);

  // The higher priority given to b puts it first.
  int64_t w = register_worker(db, worker_named("a"));
  auto claim = claim_best_queued(db, w, LeasePolicy{});
  REQUIRE(claim);
  CHECK(claim->trial_id == b);
  CHECK(claim->rung == 1);
  CHECK(claim->budget == 4.0);
}

TEST_CASE("a held trial is not claimed by another worker until its lease expires") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w1 = register_worker(db, worker_named("one"));
  int64_t w2 = register_worker(db, worker_named("two"));
  int64_t t = add_trial(db, "queued");
  LeasePolicy short_lease;
  short_lease.lease_s = 0.3;

  auto c1 = claim_best_queued(db, w1, short_lease);
  REQUIRE(c1);
  CHECK(c1->trial_id == t);
  CHECK(!claim_best_queued(db, w2, short_lease));   // still held
  CHECK(events_of(db, "reclaim") == 0);
  sleep_s(0.4);

  auto c2 = claim_best_queued(db, w2, short_lease);   // reclaims the expired lease, then claims it
  REQUIRE(c2);
  CHECK(c2->trial_id == t);
  CHECK(c2->attempts == 2);
  CHECK(attempts_of(db, t) == 2);
  CHECK(scalar(db, "SELECT lease_owner FROM trial WHERE id = ?1", t) == w2);
  {
    Statement r = db.prepare("SELECT worker_id, from_state, to_state, detail FROM event WHERE kind = 'reclaim' AND trial_id = ?1");
    r.bind(1, t);
    REQUIRE(r.step());
    CHECK(r.int64(0) == w1);
    CHECK(r.text(1) == "running");
    CHECK(r.text(2) == "queued");
    CHECK(nlohmann::json::parse(r.text(3))["attempt"] == 1);
    CHECK(!r.step());
  }
  // The first worker lost it: every operation it tries is refused and changes nothing.
  CHECK_THROWS_WITH_AS(finish(db, t, w1, TrialState::done), ("trial " + std::to_string(t) +
                       " is no longer held by this worker").c_str(), nas::LeaseLost);
  CHECK_THROWS_AS(release(db, t, w1, "sigterm"), nas::LeaseLost);
  CHECK_THROWS_AS(fail(db, t, w1, "diverged", "nan loss", true, short_lease), nas::LeaseLost);
  CHECK(heartbeat(db, w1, short_lease).empty());
  CHECK_THROWS_AS(record_epoch(db, t, w1, 0, 1, {{"val_acc", 0.5, "", ""}}), nas::LeaseLost);
  CHECK(scalar(db, "SELECT count(*) FROM epoch_metric WHERE trial_id = ?1", t) == 0);
  record_epoch(db, t, w2, 0, 1, {{"val_acc", 0.75, "", ""}});
  CHECK(scalar(db, "SELECT count(*) FROM epoch_metric WHERE trial_id = ?1", t) == 1);
  CHECK(state_of(db, t) == "running");
  CHECK(attempts_of(db, t) == 2);
  finish(db, t, w2, TrialState::done);
  CHECK(state_of(db, t) == "done");
  CHECK(check_event_chains(db) == 4);   // claim, reclaim, claim, finish
}

TEST_CASE("a trial whose leases keep expiring fails after max_attempts with 'lease expired'") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("crashy"));
  int64_t t = add_trial(db, "queued");
  LeasePolicy policy;
  policy.lease_s = 0.05;
  policy.max_attempts = 2;

  REQUIRE(claim_best_queued(db, w, policy));
  sleep_s(0.1);
  auto again = claim_best_queued(db, w, policy);
  REQUIRE(again);
  CHECK(again->attempts == 2);
  sleep_s(0.1);
  CHECK(reclaim_expired(db, policy) == 1);
  CHECK(state_of(db, t) == "failed");
  CHECK(text_of(db, "SELECT reason FROM trial WHERE id = ?1", t) == "lease expired");
  CHECK(text_of(db, "SELECT error FROM trial WHERE id = ?1", t).find("expired") != std::string::npos);
  CHECK(scalar(db, "SELECT lease_owner IS NULL AND lease_expires IS NULL FROM trial WHERE id = ?1", t) == 1);
  CHECK(attempts_of(db, t) == 2);
  CHECK(!claim_best_queued(db, w, policy));
  CHECK(reclaim_expired(db, policy) == 0);
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'reclaim' AND to_state = 'failed'") == 1);
  CHECK(check_event_chains(db) == 4);   // claim, reclaim, claim, reclaim
}

TEST_CASE("release puts a trial back without counting the attempt") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t other = register_worker(db, worker_named("b"));
  int64_t t = add_trial(db, "queued");
  LeasePolicy policy;

  REQUIRE(claim_best_queued(db, w, policy)->attempts == 1);
  CHECK_THROWS_AS(release(db, t, other, "not mine"), nas::LeaseLost);
  release(db, t, w, "sigterm");
  CHECK(state_of(db, t) == "queued");
  CHECK(attempts_of(db, t) == 0);
  CHECK(scalar(db, "SELECT lease_owner IS NULL AND lease_expires IS NULL FROM trial WHERE id = ?1", t) == 1);
  CHECK(nlohmann::json::parse(text_of(db, "SELECT detail FROM event WHERE kind = 'release' AND trial_id = ?1", t)) ==
        nlohmann::json{{"why", "sigterm"}});
  CHECK_THROWS_AS(release(db, t, w, "twice"), nas::LeaseLost);   // it holds nothing now
  auto c = claim_best_queued(db, other, policy);
  REQUIRE(c);
  CHECK(c->attempts == 1);   // the released attempt was given back
  CHECK(check_event_chains(db) == 3);
}

TEST_CASE("finish needs the lease and a final state of the rung") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t intruder = register_worker(db, worker_named("b"));
  int64_t t1 = add_trial(db, "queued", 1);
  int64_t t2 = add_trial(db, "queued", 0);
  LeasePolicy policy;
  REQUIRE(claim_best_queued(db, w, policy)->trial_id == t1);
  REQUIRE(claim_best_queued(db, w, policy)->trial_id == t2);

  CHECK_THROWS_AS(finish(db, t1, intruder, TrialState::done), nas::LeaseLost);
  CHECK(state_of(db, t1) == "running");
  CHECK(scalar(db, "SELECT lease_owner FROM trial WHERE id = ?1", t1) == w);
  CHECK_THROWS_AS(finish(db, t1, w, TrialState::failed), nas::UsageError);
  CHECK_THROWS_AS(finish(db, t1, w, TrialState::queued), nas::UsageError);
  CHECK(state_of(db, t1) == "running");

  finish(db, t1, w, TrialState::paused);
  finish(db, t2, w, TrialState::done);
  CHECK(state_of(db, t1) == "paused");
  CHECK(state_of(db, t2) == "done");
  CHECK(scalar(db, "SELECT count(*) FROM trial WHERE lease_owner IS NOT NULL OR lease_expires IS NOT NULL") == 0);
  CHECK_THROWS_AS(finish(db, t2, w, TrialState::done), nas::LeaseLost);   // not twice
  CHECK(events_of(db, "finish") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'finish' AND to_state = 'paused' AND trial_id = ?1", t1) == 1);
}

TEST_CASE("a trial stopped early ends done with its reason in the trial and the event") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t t = add_trial(db, "queued");
  REQUIRE(claim_best_queued(db, w, LeasePolicy{})->trial_id == t);
  finish(db, t, w, TrialState::done, "early stop: number 3 of 4");
  CHECK(state_of(db, t) == "done");
  CHECK(text_of(db, "SELECT reason FROM trial WHERE id = ?1", t) == "early stop: number 3 of 4");
  CHECK(nlohmann::json::parse(text_of(db, "SELECT detail FROM event WHERE kind = 'finish' AND trial_id = ?1", t))["reason"] ==
        "early stop: number 3 of 4");
}

TEST_CASE("rung_start_epoch is the last epoch a trial recorded below its rung") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  const int64_t a = add_trial(db, "paused"), b = add_trial(db, "paused");
  db.write([&] {
    Statement s = db.prepare("INSERT INTO epoch_metric (trial_id, rung, epoch, metric, value, created_at) VALUES (?1, ?2, ?3, 'val_acc', 0.5, 0)");
    // a: epochs 1-3 at rung 0, 4-5 at rung 1 (rung 1 interrupted after epoch 5)
    for (auto [rung, epoch] : std::vector<std::pair<int, int>>{{0, 1}, {0, 2}, {0, 3}, {1, 4}, {1, 5}}) {
      s.reset();
      s.bind(1, a).bind(2, rung).bind(3, epoch).run();
    }
  });
  CHECK(rung_start_epoch(db, a, 0) == 0);
  CHECK(rung_start_epoch(db, a, 1) == 3);   // not 5: the rung started from epoch 3
  CHECK(rung_start_epoch(db, a, 2) == 5);
  CHECK(rung_start_epoch(db, b, 2) == 0);   // started at rung 2 by its proxy rank
}

TEST_CASE("fail retries while attempts are left, then fails with the reason") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t t = add_trial(db, "queued");
  LeasePolicy policy;
  policy.max_attempts = 3;

  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto c = claim_best_queued(db, w, policy);
    REQUIRE(c);
    CHECK(c->attempts == attempt);
    fail(db, t, w, "diverged", "loss is nan at epoch " + std::to_string(attempt), true, policy);
    CHECK(state_of(db, t) == "queued");
    CHECK(scalar(db, "SELECT reason IS NULL FROM trial WHERE id = ?1", t) == 1);
    CHECK(text_of(db, "SELECT error FROM trial WHERE id = ?1", t) ==
          "loss is nan at epoch " + std::to_string(attempt));
  }
  REQUIRE(claim_best_queued(db, w, policy)->attempts == 3);
  fail(db, t, w, "diverged", "loss is nan at epoch 3", true, policy);   // no attempts left
  CHECK(state_of(db, t) == "failed");
  CHECK(text_of(db, "SELECT reason FROM trial WHERE id = ?1", t) == "diverged");
  CHECK(!claim_best_queued(db, w, policy));
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'fail' AND to_state = 'queued'") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'fail' AND to_state = 'failed'") == 1);

  // Without retry the first failure is final.
  int64_t u = add_trial(db, "queued");
  REQUIRE(claim_best_queued(db, w, policy)->trial_id == u);
  fail(db, u, w, "out of memory", "cuda out of memory", false, policy);
  CHECK(state_of(db, u) == "failed");
  CHECK(attempts_of(db, u) == 1);
  CHECK(check_event_chains(db) == 8);
}

TEST_CASE("heartbeat renews the leases a worker holds") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t other = register_worker(db, worker_named("b"));
  int64_t t1 = add_trial(db, "queued", 1);
  int64_t t2 = add_trial(db, "queued", 0);
  LeasePolicy policy;
  policy.lease_s = 0.5;
  REQUIRE(claim_best_queued(db, w, policy));
  REQUIRE(claim_best_queued(db, w, policy));
  double before = nas::now_unix();
  for (int i = 0; i < 4; ++i) {   // 0.8 s in all: longer than a lease, renewed every 0.2 s
    sleep_s(0.2);
    CHECK(heartbeat(db, w, policy) == std::vector<int64_t>{t1, t2});
  }
  CHECK(!claim_best_queued(db, other, policy));   // nothing expired, nothing reclaimed
  CHECK(events_of(db, "reclaim") == 0);
  Statement s = db.prepare("SELECT heartbeat_at FROM worker WHERE id = ?1");
  s.bind(1, w);
  REQUIRE(s.step());
  CHECK(s.real(0) > before);
  CHECK(heartbeat(db, other, policy).empty());
}

TEST_CASE("stop_worker releases what the worker holds and marks it stopped") {
  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t w = register_worker(db, worker_named("a"));
  int64_t t1 = add_trial(db, "queued");
  int64_t t2 = add_trial(db, "queued");
  REQUIRE(claim_best_queued(db, w, LeasePolicy{}));
  REQUIRE(claim_best_queued(db, w, LeasePolicy{}));
  stop_worker(db, w);
  CHECK(state_of(db, t1) == "queued");
  CHECK(state_of(db, t2) == "queued");
  CHECK(attempts_of(db, t1) == 0);
  CHECK(scalar(db, "SELECT stopped_at IS NOT NULL FROM worker WHERE id = ?1", w) == 1);
  CHECK(events_of(db, "release") == 2);
}

TEST_CASE("this_worker reads the host, the pid and Slurm's variables") {
  ::setenv("SLURM_JOB_ID", "777", 1);
  ::setenv("SLURM_ARRAY_JOB_ID", "770", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  WorkerInfo w = this_worker("cuda:1");
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_ARRAY_JOB_ID");
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  CHECK(!w.host.empty());
  CHECK(w.pid == int64_t(::getpid()));
  CHECK(w.slurm_job_id == "777");
  CHECK(w.slurm_array_job_id == "770");
  CHECK(w.slurm_array_task_id == "7");
  CHECK(w.device == "cuda:1");
  CHECK(this_worker("cpu").slurm_job_id.empty());

  TempDir dir;
  Db db = Db::open(dir.file("q.db"), OpenMode::create);
  int64_t id = register_worker(db, w);
  CHECK(text_of(db, "SELECT slurm_array_task_id FROM worker WHERE id = ?1", id) == "7");
  int64_t plain = register_worker(db, this_worker("cpu"));
  CHECK(scalar(db, "SELECT slurm_job_id IS NULL FROM worker WHERE id = ?1", plain) == 1);
}

TEST_CASE("every state change is one event, and threads never claim a trial twice") {
  TempDir dir;
  const std::string path = dir.file("q.db");
  constexpr int kTrials = 150;
  constexpr int kThreads = 6;
  {
    Db db = Db::open(path, OpenMode::create);
    for (int i = 0; i < kTrials; ++i) add_trial(db, "sampled", i % 3);
    REQUIRE(enqueue(db, {}, 0, 1.0) == kTrials);
  }
  std::atomic<int> changes{0};
  std::atomic<int> errors{0};
  std::vector<std::vector<int64_t>> claimed(kThreads);
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      try {
        Db db = Db::open(path, OpenMode::existing);
        int64_t w = register_worker(db, worker_named("t" + std::to_string(k)));
        LeasePolicy policy;
        int n = 0;
        while (auto c = claim_best_queued(db, w, policy)) {
          ++changes;
          claimed[size_t(k)].push_back(c->trial_id);
          // A mix of outcomes: some trials are released once and claimed again.
          if (c->trial_id % 7 == 0 && c->attempts == 1 && ++n % 2 == 0) {
            release(db, c->trial_id, w, "test");
          } else if (c->trial_id % 11 == 0 && c->attempts == 1) {
            fail(db, c->trial_id, w, "flaky", "e", true, policy);
          } else {
            finish(db, c->trial_id, w, TrialState::done);
          }
          ++changes;
        }
      } catch (const std::exception& e) {
        ++errors;
        FAIL_CHECK(e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  Db db = Db::open(path, OpenMode::existing);
  CHECK(scalar(db, "SELECT count(*) FROM trial WHERE state = 'done'") == kTrials);
  // Claimed more than once only when released or failed in between: count finishes instead.
  CHECK(scalar(db, "SELECT count(*) FROM (SELECT trial_id FROM event WHERE kind = 'finish' "
                   "GROUP BY trial_id HAVING count(*) = 1)") == kTrials);
  std::multiset<int64_t> all;
  for (const auto& v : claimed) all.insert(v.begin(), v.end());
  // The event log holds the enqueues plus exactly the changes the threads made.
  CHECK(scalar(db, "SELECT count(*) FROM event") == kTrials + changes.load());
  CHECK(scalar(db, "SELECT count(*) FROM event WHERE kind = 'claim'") == int64_t(all.size()));
  CHECK(check_event_chains(db) == kTrials + changes.load());
}
