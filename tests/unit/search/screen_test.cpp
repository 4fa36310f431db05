// screen_test: proxy-guided moves -- a breeding worker proposes [search] screen candidates,
// scores them through an injected Screen with no write lock held, queues the best one still
// new, records what the screen did, and replays
#include <doctest/doctest.h>

#include "../support.h"
#include "search_support.h"

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/search/breed.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/search/screen.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/lineage.h"
#include "nas/store/queue.h"
#include "nas/store/study.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <set>

using namespace nas;
using nas::test::ScopedEnv;
using nas::test::TempDir;

namespace {

config::StudyConfig study(const std::string& search) {
  return test::nb201_study("screen", 5, "[search]\n" + search);
}

// A made-up proxy: the share of 3x3 convolutions in the cell, plus a little of the hash so that
// no two candidates tie.
double fake_score(const space::Genome& g) {
  const std::string s = space::canonical(g);
  double n = 0;
  for (size_t p = 0; (p = s.find("nor_conv_3x3", p)) != std::string::npos; p += 4) ++n;
  return n + double(std::hash<std::string>{}(s) % 1000) / 1e4;
}

// A screen that scores with fake_score and, on each call, checks that no write lock is held
// on the study file (another connection writes at once) and may act as another worker.
class FakeScreen : public search::Screen {
public:
  explicit FakeScreen(std::string path) : path_(std::move(path)) {}
  std::string name() const override { return "fake"; }
  search::ScreenScores score(const std::vector<space::Genome>& candidates) const override {
    ++calls;
    if (!probe) return scores_of(candidates);
    sizes.push_back(candidates.size());
    {
      ScopedEnv quick("NAS_DB_RETRY_S", "0");   // a held write lock fails at once instead of waiting
      store::Db other = store::Db::open(path_, store::OpenMode::existing);
      try {
        other.write([&] { store::log_event(other, "note", std::nullopt, std::nullopt, "", "", "{}"); });
        ++unlocked;
      } catch (const DbError&) {
      }
      if (take) take(other, candidates);
    }
    return scores_of(candidates);
  }
  static search::ScreenScores scores_of(const std::vector<space::Genome>& candidates) {
    search::ScreenScores out;
    for (const auto& g : candidates) out.value.push_back(fake_score(g));
    out.proxies["fake"] = out.value;
    return out;
  }
  // false: only score (threads may call it; the probe sets an environment variable)
  bool probe = true;
  // Runs inside score(): what "another worker" does between the read and the write.
  std::function<void(store::Db&, const std::vector<space::Genome>&)> take;
  mutable std::atomic<int> calls{0}, unlocked{0};
  mutable std::vector<size_t> sizes;
private:
  std::string path_;
};

// Inserts genome g as a sampled trial, as another worker's child would be.
void insert_genome(store::Db& db, const config::StudyConfig& cfg, const space::Genome& g) {
  const space::Sampler sampler(cfg);
  store::NewTrial t;
  t.genome = space::canonical(g);
  t.hash = space::genome_hash(g);
  t.arch = space::summary(g);
  const auto c = sampler.cost(g);
  t.params = c.params;
  t.macs = c.macs;
  t.peak_act_bytes = c.peak_activation_bytes;
  t.weight_bytes = c.weight_bytes;
  store::insert_trials(db, {t}, "add");
}

// Claims and "trains" (val_acc from fake_score) until nothing is left; the claimed ids.
std::vector<int64_t> run_worker(store::Db& db, const search::Policy& policy) {
  store::WorkerInfo w;
  w.host = "h";
  w.pid = 1;
  const int64_t worker = store::register_worker(db, w);
  std::vector<int64_t> ids;
  while (auto c = search::claim_next(db, worker, policy)) {
    ids.push_back(c->trial_id);
    db.write([&] {
      auto g = db.prepare("SELECT genome FROM trial WHERE id = ?1");
      g.bind(1, c->trial_id);
      REQUIRE(g.step());
      auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, 0, 'val_acc', ?2, 0)");
      q.bind(1, c->trial_id).bind(2, fake_score(space::genome_from_json(g.text(0))) / 10).run();
    });
    store::finish(db, c->trial_id, worker, store::TrialState::done);
    REQUIRE(ids.size() <= 100);
  }
  return ids;
}

nlohmann::json screen_of(const store::Breeding& b) {
  REQUIRE_FALSE(b.screen.empty());
  return nlohmann::json::parse(b.screen);
}

} // namespace

TEST_CASE("screen_order: the best score first, NaN last, equals in the order proposed") {
  const double nan = std::nan("");
  CHECK(search::screen_order({0.5, 2.0, nan, 2.0, -1.0}) == std::vector<size_t>{1, 3, 0, 4, 2});
  CHECK(search::screen_order({nan, nan}) == std::vector<size_t>{0, 1});
  CHECK(search::screen_order({}).empty());
}

TEST_CASE("a screened claim queues the best of m new candidates, scored with no write lock held, and records it") {
  const auto cfg = study("strategy='evolution'\npopulation=3\nevaluations=12\nscreen=4\n");
  TempDir dir;
  const std::string path = dir.file("s.db");
  store::Db db = store::Db::open(path, store::OpenMode::create);
  auto screen = std::make_shared<FakeScreen>(path);
  const search::Policy policy = search::policy_of(cfg, screen);
  REQUIRE(policy.breeder);
  REQUIRE(policy.breeder->screen() == screen.get());
  CHECK(run_worker(db, policy).size() == 12);
  CHECK(screen->calls == 12);                 // one screen a child
  CHECK(screen->unlocked == 12);              // every time another connection could write
  for (size_t n : screen->sizes) CHECK(n == 4);
  const auto rows = store::breedings(db);
  REQUIRE(rows.size() == 12);
  std::set<std::string> seen;
  int not_first = 0;
  for (const auto& b : rows) {
    const auto rec = screen_of(b);
    CHECK(rec["m"] == 4);
    CHECK(rec["by"] == "fake");
    CHECK(rec["seed"].get<int64_t>() == int64_t(b.seed));
    const auto& cands = rec["candidates"];
    REQUIRE(cands.size() == 4);
    std::set<std::string> hashes;
    double best = -1;
    for (const auto& c : cands) {
      hashes.insert(c["hash"].get<std::string>());
      best = std::max(best, c["score"].get<double>());
      CHECK(c["proxies"]["fake"] == c["score"]);
    }
    CHECK(hashes.size() == 4);                // distinct candidates
    const size_t chosen = rec["chosen"].get<size_t>();
    not_first += chosen != 0;
    const auto& pick = cands[chosen];
    CHECK(pick["score"].get<double>() == best);   // the best was queued
    CHECK(pick["operators"] == b.operators);
    CHECK(pick["parents"].get<std::vector<int64_t>>() == b.parents);
    auto q = db.prepare("SELECT hash FROM trial WHERE id = ?1");
    q.bind(1, b.trial_id);
    REQUIRE(q.step());
    CHECK(q.text(0) == pick["hash"].get<std::string>());
    seen.insert(q.text(0));
  }
  CHECK(not_first > 0);                       // the screen changed what was queued
  auto n = db.prepare("SELECT count(*) FROM event WHERE kind = 'screen'");
  REQUIRE(n.step());
  CHECK(n.int64(0) == 12);
}

TEST_CASE("a candidate another worker queued meanwhile is skipped: the best one still new is inserted") {
  const auto cfg = study("strategy='evolution'\npopulation=3\nevaluations=6\nscreen=3\n");
  TempDir dir;
  const std::string path = dir.file("t.db");
  store::Db db = store::Db::open(path, store::OpenMode::create);
  auto screen = std::make_shared<FakeScreen>(path);
  std::vector<std::string> stolen;
  screen->take = [&](store::Db& other, const std::vector<space::Genome>& cands) {
    const space::Genome* best = &cands.front();
    for (const auto& g : cands)
      if (fake_score(g) > fake_score(*best)) best = &g;
    insert_genome(other, cfg, *best);
    stolen.push_back(space::genome_hash(*best));
  };
  const search::Policy policy = search::policy_of(cfg, screen);
  // the stolen trials are sampled, not queued: the worker claims only what it breeds
  CHECK(run_worker(db, policy).size() == 3);   // 3 children + 3 stolen fill the 6 evaluations
  const auto rows = store::breedings(db);
  REQUIRE(rows.size() == 3);
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto rec = screen_of(rows[k]);
    const size_t chosen = rec["chosen"].get<size_t>();
    CHECK(rec["candidates"][chosen]["hash"].get<std::string>() != stolen[k]);
    // the second best of the three
    std::vector<double> scores;
    for (const auto& c : rec["candidates"]) scores.push_back(c["score"].get<double>());
    CHECK(search::screen_order(scores)[1] == chosen);
  }
}

TEST_CASE("when others take every candidate each round, one child is bred unscreened") {
  const auto cfg = study("strategy='evolution'\npopulation=3\nevaluations=30\nscreen=2\n");
  TempDir dir;
  const std::string path = dir.file("u.db");
  store::Db db = store::Db::open(path, store::OpenMode::create);
  auto screen = std::make_shared<FakeScreen>(path);
  screen->take = [&](store::Db& other, const std::vector<space::Genome>& cands) {
    for (const auto& g : cands) insert_genome(other, cfg, g);
  };
  const search::Policy policy = search::policy_of(cfg, screen);
  store::WorkerInfo w;
  w.host = "h";
  w.pid = 1;
  const int64_t worker = store::register_worker(db, w);
  const auto c = search::claim_next(db, worker, policy);
  REQUIRE(c);
  CHECK(screen->calls == 4);                 // kScreenRounds, each lost
  const auto rows = store::breedings(db);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].trial_id == c->trial_id);
  CHECK(rows[0].screen.empty());
}

TEST_CASE("a screened search replays: the same seed gives the same children and the same records") {
  const auto cfg = study("strategy='evolution'\npopulation=4\nislands=2\nevaluations=20\nscreen=3\n");
  auto run = [&](const std::string& path) {
    store::Db db = store::Db::open(path, store::OpenMode::create);
    const search::Policy policy = search::policy_of(cfg, std::make_shared<FakeScreen>(path));
    run_worker(db, policy);
    std::vector<std::string> out;
    for (const auto& b : store::breedings(db)) {
      auto rec = nlohmann::json::parse(b.screen);
      out.push_back(std::to_string(b.trial_id) + " " + b.operators + " " + rec.dump());
    }
    return out;
  };
  TempDir dir;
  const auto first = run(dir.file("a.db"));
  CHECK(first.size() == 20);
  CHECK(run(dir.file("b.db")) == first);
}

TEST_CASE("without a screen from the tool, [search] screen breeds one child per event, unrecorded") {
  const auto cfg = study("strategy='evolution'\npopulation=3\nevaluations=5\nscreen=4\n");
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);
  CHECK(policy.breeder->screen() == nullptr);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("n.db"), store::OpenMode::create);
  CHECK(run_worker(db, policy).size() == 5);
  for (const auto& b : store::breedings(db)) CHECK(b.screen.empty());
  // screen = 0 ignores a given screen
  const auto off = study("strategy='evolution'\npopulation=3\nevaluations=5\n");
  CHECK(search::policy_of(off, std::make_shared<FakeScreen>(dir.file("n.db"))).breeder->screen() == nullptr);
}

TEST_CASE("screen_candidates proposes distinct candidates new to the study, from the event's seed") {
  const auto cfg = study("strategy='evolution'\npopulation=2\nevaluations=50\nscreen=5\n");
  TempDir dir;
  const std::string path = dir.file("c.db");
  store::Db db = store::Db::open(path, store::OpenMode::create);
  const search::Breeder breeder(cfg, std::nullopt, std::make_shared<FakeScreen>(path));
  const auto a = search::screen_candidates(db, breeder, 0);
  const auto b = search::screen_candidates(db, breeder, 0);
  REQUIRE(a.candidates.size() == 5);
  CHECK(a.hashes == b.hashes);               // nothing bred between: the same seed, the same proposals
  CHECK(a.seed == b.seed);
  CHECK(std::set<std::string>(a.hashes.begin(), a.hashes.end()).size() == 5);
  CHECK(a.scores.value.size() == 5);
  search::BreedRequest r;
  const auto bred = search::breed_screened(db, breeder, r, a);
  REQUIRE(bred);
  CHECK(bred->trial.hash == a.hashes[search::screen_order(a.scores.value)[0]]);
  const auto c = search::screen_candidates(db, breeder, 0);
  CHECK(c.seed != a.seed);                   // the next event's seed
  CHECK(std::find(c.hashes.begin(), c.hashes.end(), bred->trial.hash) == c.hashes.end());   // new to the study
  const search::Breeder plain(cfg);
  CHECK_THROWS_AS(search::screen_candidates(db, plain, 0), Error);
}

TEST_CASE("6 workers breeding screened children at once: no duplicate, none claimed twice, each child recorded") {
  const int64_t evaluations = 90;
  const auto cfg = study("strategy='evolution'\npopulation=4\nislands=2\nevaluations=" + std::to_string(evaluations) +
                         "\nscreen=3\n");
  TempDir dir;
  const std::string path = dir.file("six.db");
  auto screen = std::make_shared<FakeScreen>(path);
  screen->probe = false;
  const search::Policy policy = search::policy_of(cfg, screen);
  std::vector<int64_t> ids;
  {
    store::Db db = store::Db::open(path, store::OpenMode::create);
    for (int k = 0; k < 6; ++k) ids.push_back(test::new_worker(db, k));
  }
  const auto [claims, failed] = test::claim_in_threads(path, ids, policy, [](store::Db& db, const store::Claim& c) {
    db.write([&] {
      auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) SELECT id, 0, 'val_acc',"
                          " (id % 7) / 10.0, 0 FROM trial WHERE id = ?1");
      q.bind(1, c.trial_id).run();
    });
  });
  for (const auto& f : failed) FAIL_CHECK(f);
  store::Db db = store::Db::open(path, store::OpenMode::existing);
  CHECK(claims == evaluations);
  auto count = [&](const std::string& sql) { return test::count(db, sql); };
  CHECK(count("SELECT count(*) FROM trial") == evaluations);
  CHECK(count("SELECT count(DISTINCT hash) FROM trial") == evaluations);
  CHECK(count("SELECT count(*) FROM (SELECT trial_id FROM event WHERE kind = 'claim' GROUP BY trial_id HAVING count(*) > 1)") == 0);
  CHECK(count("SELECT count(*) FROM trial t WHERE NOT EXISTS (SELECT 1 FROM breeding b WHERE b.trial_id = t.id)") == 0);
  // nearly every child screened (an event whose candidates others took each round breeds unscreened)
  CHECK(count("SELECT count(*) FROM event WHERE kind = 'screen'") >= evaluations * 9 / 10);
  CHECK(count("SELECT count(*) FROM event e JOIN trial t ON t.id = e.trial_id WHERE e.kind = 'screen' AND"
              " json_extract(e.detail, '$.candidates[' || json_extract(e.detail, '$.chosen') || '].hash') <> t.hash") == 0);
  CHECK(screen->calls >= count("SELECT count(*) FROM event WHERE kind = 'screen'"));
}
