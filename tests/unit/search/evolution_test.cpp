// evolution_test: the evolutionary strategies -- operator rates over many draws, parents from
// the best `population`, NSGA-II's ranking with constraints -- and breeding in the study file:
// recorded lineage, no duplicates, migrations at the configured rate, breeding in the claim
#include <doctest/doctest.h>

#include "../support.h"
#include "search_support.h"

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/search/breed.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/search/strategy.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/lineage.h"
#include "nas/store/queue.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

using namespace nas;
using nas::test::count;
using nas::test::TempDir;
using nas::test::worker_info;

namespace {

config::StudyConfig nb201_study(const std::string& search) {
  return test::nb201_study("evo", 11, "[search]\n" + search);
}

// n distinct random genomes whose val_acc is their index / 100 (the last one best).
std::vector<search::Member> island_of(const space::Sampler& sampler, size_t n) {
  std::vector<search::Member> out;
  std::set<std::string> seen;
  Rng rng(5);
  while (out.size() < n) {
    space::Genome g = sampler.draw(rng);
    if (!seen.insert(space::canonical(g)).second) continue;
    out.push_back({int64_t(out.size() + 1), g, {double(out.size()) / 100}});
  }
  return out;
}

const search::Taken kNothingTaken = [](const space::Genome&) { return false; };

// The value breeding reads for a trial: a made-up accuracy from its genome (a share of convs).
double fake_acc(const std::string& genome) {
  double n = 0;
  for (size_t p = 0; (p = genome.find("conv", p)) != std::string::npos; p += 4) ++n;
  return 0.5 + n / 20 + double(std::hash<std::string>{}(genome) % 1000) / 1e5;
}

// Records the trial's val_acc at `rung`; false when the study has no such trial. Asserts
// nothing, so that threads may call it (doctest's assertions belong to the main thread).
bool evaluated(store::Db& db, int64_t id, int rung = 0) {
  bool found = false;
  db.write([&] {
    auto g = db.prepare("SELECT genome FROM trial WHERE id = ?1");
    g.bind(1, id);
    found = g.step();
    if (!found) return;
    auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, ?2, 'val_acc', ?3, 0)");
    q.bind(1, id).bind(2, rung).bind(3, fake_acc(g.text(0))).run();
  });
  return found;
}

void evaluate(store::Db& db, int64_t id, int rung = 0) { REQUIRE(evaluated(db, id, rung)); }

} // namespace

TEST_CASE("each probability means what it says: random, crossover and mutation shares over many draws") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=20\n");
  const space::Sampler sampler(cfg);
  const search::EvolutionStrategy evo(sampler, cfg.search);
  const auto island = island_of(sampler, 40);
  std::map<std::string, int> ops;
  Rng rng(17);
  const int n = 6000;
  for (int i = 0; i < n; ++i) ops[evo.propose(island, rng, kNothingTaken).operators]++;
  const double bred = n - ops["random"];
  // drawn again while neither fires: each rate given that something is done (1 - 0.3 x 0.6)
  CHECK(ops["random"] / double(n) == doctest::Approx(0.1).epsilon(0.15));
  CHECK((ops["crossover"] + ops["crossover+mutation"]) / bred == doctest::Approx(0.7 / 0.82).epsilon(0.04));
  CHECK((ops["mutation"] + ops["crossover+mutation"]) / bred == doctest::Approx(0.4 / 0.82).epsilon(0.06));
  CHECK(ops["crossover+mutation"] / bred == doctest::Approx(0.28 / 0.82).epsilon(0.08));
  CHECK(ops.count("copy") == 0);

  // Extremes: always cross, never mutate, never random.
  const auto all = nb201_study("strategy='evolution'\npopulation=20\ncrossover=1\nmutation=0\nrandom=0\n");
  const search::EvolutionStrategy cross(sampler, all.search);
  for (int i = 0; i < 200; ++i) CHECK(cross.propose(island, rng, kNothingTaken).operators == "crossover");
}

TEST_CASE("parents are two distinct trials drawn uniformly from the best `population` evaluated ones") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=5\nrandom=0\n");
  const space::Sampler sampler(cfg);
  const search::EvolutionStrategy evo(sampler, cfg.search);
  auto island = island_of(sampler, 30);
  Rng other(1);
  island.push_back({99, sampler.draw(other), {std::nullopt}});   // not evaluated: never a parent
  std::map<int64_t, int> drawn;
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    const auto p = evo.propose(island, rng, kNothingTaken);
    REQUIRE(!p.parents.empty());
    if (p.parents.size() == 2) CHECK(p.parents[0] != p.parents[1]);
    for (int64_t id : p.parents) drawn[id]++;
  }
  // ids 26..30 hold the five best values (0.25 .. 0.29)
  CHECK(drawn.size() == 5);
  for (int64_t id = 26; id <= 30; ++id) CHECK(drawn[id] > 0);
  for (const auto& [id, times] : drawn) CHECK(times / double(2000 * 1.7 / 5) == doctest::Approx(1).epsilon(0.15));

  // fewer evaluated trials than `population`: a fresh random child
  const std::vector<search::Member> small(island.begin(), island.begin() + 4);
  CHECK(evo.propose(small, rng, kNothingTaken).operators == "random");
}

TEST_CASE("a child the study already holds is mutated until it is new, the repairs counted apart") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=2\nrandom=0\ncrossover=1\nmutation=0\n");
  const space::Sampler sampler(cfg);
  const search::EvolutionStrategy evo(sampler, cfg.search);
  auto island = island_of(sampler, 1);
  island.push_back({2, island[0].genome, {0.5}});   // crossing two equal parents reproduces them
  std::set<std::string> held = {space::canonical(island[0].genome)};
  Rng rng(8);
  const auto p = evo.propose(island, rng, [&](const space::Genome& g) { return held.count(space::canonical(g)) > 0; });
  CHECK(p.operators == "crossover");
  CHECK(p.repairs >= 1);
  CHECK(held.count(space::canonical(p.genome)) == 0);
}

TEST_CASE("ranking: feasible first, then non-dominated rank, then crowding; one objective by value") {
  auto cfg = nb201_study("strategy='nsga2'\nobjectives=['val_acc:max','params:min']\nconstraints=['latency_s <= 1']\n");
  space::Genome g;
  // id: acc, params, latency
  const std::vector<search::Member> island = {
      {1, g, {0.90, 100.0, 0.5}},   // front 1 (extreme)
      {2, g, {0.80, 50.0, 0.5}},    // front 1 (middle)
      {3, g, {0.70, 10.0, 0.5}},    // front 1 (extreme)
      {4, g, {0.85, 120.0, 0.5}},   // front 2: dominated by 1
      {5, g, {0.99, 1.0, 3.0}},     // dominates all but breaks the constraint by 200%
      {6, g, {0.99, 1.0, 1.5}},     // breaks it by 50%: before 5
      {7, g, {std::nullopt, 5.0, 0.1}},   // not evaluated
      {8, g, {0.95, 5.0, std::nullopt}},  // latency unknown: infeasible without bound
  };
  const auto r = search::rank_members(island, cfg.search);
  std::vector<int64_t> ids;
  for (size_t i : r) ids.push_back(island[i].id);
  // front 1: 1 and 3 have infinite crowding (tie by id), then 2
  CHECK(ids == std::vector<int64_t>{1, 3, 2, 4, 6, 5, 8});

  cfg = nb201_study("strategy='evolution'\n");   // val_acc:max, values[0]; no constraints
  const auto one = search::rank_members(island, cfg.search);
  ids.clear();
  for (size_t i : one) ids.push_back(island[i].id);
  CHECK(ids == std::vector<int64_t>{5, 6, 8, 1, 4, 2, 3});   // the tie (0.99) by id; 7 not evaluated
}

TEST_CASE("breeding in the study file: every child new, its parents, island and seed recorded, replayable") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=4\nislands=2\nmigration=0\n");
  auto run = [&](const std::string& path) {
    store::Db db = store::Db::open(path, store::OpenMode::create);
    const search::Breeder breeder(cfg);
    std::vector<std::string> genomes;
    for (int i = 0; i < 60; ++i) {
      search::BreedRequest r;
      r.island = i % 2;
      const auto bred = search::breed(db, breeder, r);
      REQUIRE(bred);
      evaluate(db, bred->trial_id);
      genomes.push_back(bred->trial.genome);
    }
    return genomes;
  };
  TempDir dir;
  const auto first = run(dir.file("a.db"));
  CHECK(run(dir.file("b.db")) == first);   // the same seed replays the same search
  store::Db db = store::Db::open(dir.file("a.db"), store::OpenMode::existing);
  CHECK(count(db, "SELECT count(*) FROM trial") == 60);
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'breed'") == 60);   // one event a new trial
  const auto rows = store::breedings(db);
  REQUIRE(rows.size() == 60);
  std::set<uint64_t> seeds;
  int bred = 0;
  for (const auto& b : rows) {
    seeds.insert(b.seed);
    CHECK(b.island == (b.trial_id - 1) % 2);
    CHECK(count(db, "SELECT count(*) FROM trial WHERE island = " + std::to_string(b.island) + " AND id = " +
                        std::to_string(b.trial_id)) == 1);
    if (b.operators == "random") {
      CHECK(b.parents.empty());
      continue;
    }
    ++bred;
    // parents: earlier, evaluated trials of the same island
    for (int64_t p : b.parents) {
      CHECK(p < b.trial_id);
      CHECK(count(db, "SELECT count(*) FROM island_member WHERE island = " + std::to_string(b.island) +
                          " AND trial_id = " + std::to_string(p)) == 1);
    }
  }
  CHECK(seeds.size() == 60);
  CHECK(bred > 30);
}

TEST_CASE("islands exchange migrants at the configured rate, divided by the island's workers") {
  auto migrations = [](const std::string& path, int64_t workers, bool pollination) {
    const auto cfg = nb201_study(std::string("strategy='evolution'\npopulation=3\nislands=2\nmigration=0.5\n") +
                                 "pollination=" + (pollination ? "true" : "false") + "\n");
    store::Db db = store::Db::open(path, store::OpenMode::create);
    const search::Breeder breeder(cfg);
    int sent = 0;
    for (int i = 0; i < 400; ++i) {
      search::BreedRequest r;
      r.island = i % 2;
      r.island_workers = workers;
      const auto bred = search::breed(db, breeder, r);
      REQUIRE(bred);
      evaluate(db, bred->trial_id);
      sent += bred->migrations;
    }
    CHECK(int64_t(store::migrations_of(db).size()) == sent);
    return std::make_pair(sent, count(db, "SELECT count(*) FROM migration WHERE replaced IS NOT NULL"));
  };
  TempDir dir;
  const auto [one, replaced] = migrations(dir.file("one.db"), 1, true);
  CHECK(one == doctest::Approx(200).epsilon(0.2));      // 400 events x 0.5, one migrant to the one other island
  CHECK(replaced > one / 2);                            // copies replace the target's worst once it is full
  const auto [two, unused] = migrations(dir.file("two.db"), 2, true);
  (void)unused;
  CHECK(two == doctest::Approx(100).epsilon(0.3));      // 0.5 / 2 workers
  TempDir moves;
  store::Db db = store::Db::open(dir.file("one.db"), store::OpenMode::existing);
  CHECK(count(db, "SELECT count(*) FROM migration WHERE kind = 'copy'") == one);
  const auto [moved, none] = migrations(moves.file("m.db"), 1, false);
  CHECK(moved == doctest::Approx(200).epsilon(0.2));
  CHECK(none == 0);
  store::Db m = store::Db::open(moves.file("m.db"), store::OpenMode::existing);
  // a move leaves its island: every trial is on exactly one island
  CHECK(count(m, "SELECT count(*) FROM (SELECT trial_id FROM island_member GROUP BY trial_id HAVING count(*) > 1)") == 0);
}

TEST_CASE("a worker with nothing to claim breeds inside its claim until [search] evaluations trials exist") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=2\nevaluations=5\n");
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("w.db"), store::OpenMode::create);
  store::WorkerInfo w;
  w.host = "h";
  w.pid = 1;
  const int64_t worker = store::register_worker(db, w);
  CHECK(search::count_claimable(db, policy) == 5);
  std::set<int64_t> claimed;
  while (auto c = search::claim_next(db, worker, policy)) {
    claimed.insert(c->trial_id);
    db.write([&] {
      auto q = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, 0, 'val_acc', 0.5, 0)");
      q.bind(1, c->trial_id).run();
    });
    store::finish(db, c->trial_id, worker, store::TrialState::done);
    REQUIRE(claimed.size() <= 5);
  }
  CHECK(claimed.size() == 5);
  CHECK(count(db, "SELECT count(*) FROM breeding WHERE worker_id IS NOT NULL") == 5);
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'breed'") == 5);
  CHECK(search::count_claimable(db, policy) == 0);
  // no evaluations budget: no breeder (with the random strategy, evaluations is refused)
  CHECK_FALSE(search::policy_of(nb201_study("strategy='evolution'\n")).breeder);
  CHECK_THROWS_AS(nb201_study("evaluations=5\n"), ConfigError);
}

TEST_CASE("8 workers breeding and claiming at once: no duplicate, lineage recorded, migrants at 0.9 / island workers") {
  const int64_t evaluations = 400;
  const auto cfg = nb201_study("strategy='evolution'\npopulation=4\nislands=4\nevaluations=" + std::to_string(evaluations) + "\n");
  const search::Policy policy = search::policy_of(cfg);
  TempDir dir;
  const std::string path = dir.file("eight.db");
  std::vector<int64_t> ids;
  {
    // all registered before any claims: two live workers an island (id % 4) for the whole run
    store::Db db = store::Db::open(path, store::OpenMode::create);
    for (int k = 0; k < 8; ++k) ids.push_back(store::register_worker(db, worker_info(k)));
    for (int64_t island = 0; island < 4; ++island)
      CHECK(store::island_workers(db, island, 4, policy.lease_s, now_unix()) == 2);
    CHECK(store::island_workers(db, 0, 4, policy.lease_s, now_unix() + 2 * policy.lease_s) == 0);   // heartbeats too old
    store::stop_worker(db, store::register_worker(db, worker_info(9)));
    CHECK(store::island_workers(db, 1, 4, policy.lease_s, now_unix()) == 2);   // a stopped worker does not count
  }
  const auto [claims, failed] = test::claim_in_threads(path, ids, policy, [](store::Db& db, const store::Claim& c) {
    if (!evaluated(db, c.trial_id)) throw std::runtime_error("claimed trial " + std::to_string(c.trial_id) + " not found");
  });
  for (const auto& f : failed) FAIL_CHECK(f);   // asserted after the join
  store::Db db = store::Db::open(path, store::OpenMode::existing);
  CHECK(claims == evaluations);
  CHECK(count(db, "SELECT count(*) FROM trial WHERE state = 'done'") == evaluations);
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'breed'") == evaluations);   // one event a new trial
  CHECK(count(db, "SELECT count(*) FROM (SELECT trial_id FROM event WHERE kind = 'claim' GROUP BY trial_id HAVING count(*) > 1)") == 0);
  CHECK(count(db, "SELECT count(*) FROM trial t WHERE NOT EXISTS (SELECT 1 FROM breeding b WHERE b.trial_id = t.id)") == 0);
  CHECK(count(db, "SELECT count(*) FROM breeding WHERE operators <> 'random' AND parents = '[]'") == 0);
  // parents: earlier trials of the study
  CHECK(count(db, "SELECT count(*) FROM breeding b, json_each(b.parents) p WHERE p.value NOT IN"
                  " (SELECT id FROM trial WHERE id < b.trial_id)") == 0);
  // each worker bred for its own island (worker id mod 4)
  CHECK(count(db, "SELECT count(*) FROM breeding WHERE island <> worker_id % 4") == 0);
  // migration 0.9 / 2 workers per breeding event, one migrant to each of the 3 other islands
  // (a little less: an island's first events have no evaluated trial to send)
  const double expected = double(evaluations) * 0.9 / 2 * 3;
  CHECK(double(count(db, "SELECT count(*) FROM migration")) == doctest::Approx(expected).epsilon(0.2));
}

TEST_CASE("a copy never replaces the target's best, however many migrants a configuration asks") {
  auto cfg = nb201_study("strategy='evolution'\npopulation=3\nislands=2\nmigration=0\n");
  TempDir dir;
  store::Db db = store::Db::open(dir.file("m.db"), store::OpenMode::create);
  const search::Breeder quiet(cfg);
  for (int i = 0; i < 30; ++i) {   // 24 on island 0, 6 on island 1
    search::BreedRequest r;
    r.island = i % 5 == 4 ? 1 : 0;
    const auto bred = search::breed(db, quiet, r);
    REQUIRE(bred);
    evaluate(db, bred->trial_id);
  }
  const auto best_of_1 = [&] {
    return count(db, "SELECT i.trial_id FROM island_member i JOIN result r ON r.trial_id = i.trial_id"
                     " WHERE i.island = 1 ORDER BY r.value DESC, i.trial_id LIMIT 1");
  };
  const int64_t best = best_of_1();
  cfg.search.migration = 1;
  cfg.search.migrants = 10;   // the parser refuses migrants >= population; breeding must hold anyway
  const search::Breeder eager(cfg);
  search::BreedRequest r;
  r.island = 0;
  const auto bred = search::breed(db, eager, r);
  REQUIRE(bred);
  CHECK(bred->migrations == 5);   // island 1 holds 6 evaluated trials: all but its best replaced
  CHECK(count(db, "SELECT count(*) FROM island_member WHERE island = 1 AND trial_id = " + std::to_string(best)) == 1);
  CHECK(count(db, "SELECT count(*) FROM island_member WHERE island = 1") == 6);   // 5 in, 5 out
  CHECK(count(db, "SELECT count(*) FROM migration WHERE replaced IS NULL OR replaced NOT IN (SELECT id FROM trial)") == 0);
  CHECK(count(db, "SELECT count(*) FROM island_member WHERE trial_id NOT IN (SELECT id FROM trial)") == 0);
}

TEST_CASE("stored children carry each operator at the documented rate, with the study's real duplicates") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=10\n");
  TempDir dir;
  store::Db db = store::Db::open(dir.file("rates.db"), store::OpenMode::create);
  const search::Breeder breeder(cfg);
  for (int i = 0; i < 800; ++i) {
    const auto bred = search::breed(db, breeder, {});
    REQUIRE(bred);
    evaluate(db, bred->trial_id);
  }
  // from the 11th child on the island has `population` evaluated trials
  const std::string later = " FROM breeding WHERE trial_id > 10";
  const double events = double(count(db, "SELECT count(*)" + later));
  const double bred = double(count(db, "SELECT count(*)" + later + " AND operators <> 'random'"));
  const double crossed = double(count(db, "SELECT count(*)" + later + " AND operators LIKE 'crossover%'"));
  const double mutated = double(count(db, "SELECT count(*)" + later + " AND operators LIKE '%mutation'"));
  const double both = double(count(db, "SELECT count(*)" + later + " AND operators = 'crossover+mutation'"));
  CHECK(count(db, "SELECT count(*) FROM breeding WHERE operators NOT IN ('random','crossover','mutation','crossover+mutation')") == 0);
  CHECK(1 - bred / events == doctest::Approx(0.1).epsilon(0.25));
  // crossover 0.7 and mutation 0.4, drawn again while neither fires: given 1 - 0.3 x 0.6 = 0.82
  CHECK(crossed / bred == doctest::Approx(0.7 / 0.82).epsilon(0.05));
  CHECK(mutated / bred == doctest::Approx(0.4 / 0.82).epsilon(0.12));
  CHECK(both / bred == doctest::Approx(0.28 / 0.82).epsilon(0.15));
}

// The distillation gene of trial `id` (its stored trial.hparams "distill").
bool gene_of(store::Db& db, int64_t id) {
  return count(db, "SELECT json_extract(hparams, '$.distill') FROM trial WHERE id = " + std::to_string(id)) == 1;
}

TEST_CASE("[distill] trials = searched: a child inherits a parent's distillation gene, a mutated one flips it at 1/4") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=10\n[distill]\ntrials='searched'\n");
  TempDir dir;
  store::Db db = store::Db::open(dir.file("gene.db"), store::OpenMode::create);
  const search::Breeder breeder(cfg);
  for (int i = 0; i < 800; ++i) {
    const auto bred = search::breed(db, breeder, {});
    REQUIRE(bred);
    evaluate(db, bred->trial_id);
  }
  CHECK(count(db, "SELECT count(*) FROM trial WHERE json_type(hparams, '$.distill') NOT IN ('true', 'false')") == 0);
  int crossed_mixed = 0, took_first = 0, mutated = 0, flipped = 0;
  for (const auto& b : store::breedings(db)) {
    const bool child = gene_of(db, b.trial_id);
    if (b.operators == "random") {   // drawn as a sampled candidate's
      auto q = db.prepare("SELECT hash FROM trial WHERE id = ?1");
      q.bind(1, b.trial_id);
      REQUIRE(q.step());
      CHECK(child == space::draw_distill_gene(cfg.seed, q.text(0)));
      continue;
    }
    std::vector<bool> parents;
    for (int64_t p : b.parents) parents.push_back(gene_of(db, p));
    if (b.operators == "crossover") {   // the gene of one parent, never another value
      CHECK(std::find(parents.begin(), parents.end(), child) != parents.end());
      if (parents.size() == 2 && parents[0] != parents[1]) {
        ++crossed_mixed;
        took_first += child == parents[0];
      }
    } else if (b.operators == "mutation") {   // one parent: flipped at 1/4
      REQUIRE(parents.size() == 1);
      ++mutated;
      flipped += child != parents[0];
    }
  }
  REQUIRE(crossed_mixed > 40);
  CHECK(double(took_first) / crossed_mixed == doctest::Approx(0.5).epsilon(0.35));
  REQUIRE(mutated > 40);
  CHECK(double(flipped) / mutated == doctest::Approx(0.25).epsilon(0.4));
}

TEST_CASE("with a searched distillation gene that pays, selection breeds it: most later children distil") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=10\n[distill]\ntrials='searched'\n");
  TempDir dir;
  store::Db db = store::Db::open(dir.file("learn.db"), store::OpenMode::create);
  const search::Breeder breeder(cfg);
  int late = 0, late_on = 0, first_on = 0;
  for (int i = 0; i < 300; ++i) {
    const auto bred = search::breed(db, breeder, {});
    REQUIRE(bred);
    const bool on = gene_of(db, bred->trial_id);
    evaluate(db, bred->trial_id);   // fake_acc <= 0.5 + 0.3 + 0.01; distilling adds 0.5
    if (on) db.write([&] {
      db.prepare("UPDATE result SET value = value + 0.5 WHERE trial_id = ?1").bind(1, bred->trial_id).run();
    });
    if (i < 20) first_on += on;
    if (i >= 200) {
      ++late;
      late_on += on;
    }
  }
  CHECK(first_on > 3);    // the fresh candidates draw both values
  CHECK(first_on < 17);
  // parents come from the best 10, all distilled once 10 distilled trials exist: only the 10%
  // random children and the flips of mutations (0.4 x 1/4) give 'off' then
  CHECK(double(late_on) / late > 0.75);
}

TEST_CASE("a space with nothing new left: breeding records it exhausted, and workers stop asking") {
  // two operations on 6 edges: 64 cells, fewer than the 100 evaluations asked
  const auto cfg = test::nb201_study(
      "small", 2, "ops=['none','skip_connect']\n[search]\nstrategy='evolution'\npopulation=4\nevaluations=100\n");
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("x.db"), store::OpenMode::create);
  const int64_t worker = store::register_worker(db, worker_info(1));
  int claimed = 0;
  while (auto c = search::claim_next(db, worker, policy)) {
    evaluate(db, c->trial_id);
    store::finish(db, c->trial_id, worker, store::TrialState::done);
    REQUIRE(++claimed <= 64);
  }
  CHECK(claimed == 64);
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'breed_exhausted'") == 1);
  CHECK(store::breed_exhausted(db));
  CHECK(search::evaluations_left(db, cfg.search) == 0);
  CHECK(search::count_claimable(db, policy) == 0);   // a job script does not requeue for it
  // a later worker neither claims nor tries again
  CHECK_FALSE(search::claim_next(db, worker, policy));
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'breed_exhausted'") == 1);
}

TEST_CASE("synchronous promotion with breeding: a cohort of `population` children trains side by side, then its rung promotes") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=2\nevaluations=6\n"
                               "[budget]\nmin_epochs=1\nmax_epochs=2\neta=2\npromotion='synchronous'\n");
  const search::Policy policy = search::policy_of(cfg);
  REQUIRE(policy.breeder);
  REQUIRE(policy.synchronous);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("s.db"), store::OpenMode::create);
  const int64_t a = store::register_worker(db, worker_info(1)), b = store::register_worker(db, worker_info(2));
  auto pause = [&](const store::Claim& c, int64_t w) {
    evaluate(db, c.trial_id, c.rung);
    store::finish(db, c.trial_id, w, store::TrialState::paused);
  };
  const auto first = search::claim_next(db, a, policy);
  REQUIRE(first);
  const auto second = search::claim_next(db, b, policy);   // the cohort's second child, beside the first
  REQUIRE(second);
  CHECK(second->rung == 0);
  CHECK(search::cohort_waits(db, policy));   // cohort 0 full, and its trials still at rung 0
  CHECK_FALSE(search::claim_next(db, a, policy));   // no third child while cohort 0 has not completed rung 0
  CHECK(search::worth_waiting(db, policy));
  CHECK(count(db, "SELECT count(*) FROM trial") == 2);
  pause(*first, a);
  CHECK_FALSE(search::claim_next(db, a, policy));   // rung 0 incomplete: nothing to promote, no child
  pause(*second, b);
  const auto third = search::claim_next(db, a, policy);   // rung 0 complete with 2 results: its best promoted
  REQUIRE(third);
  CHECK(third->rung == 1);
  CHECK(count(db, "SELECT count(*) FROM event WHERE kind = 'promote'") == 1);
  const auto fourth = search::claim_next(db, b, policy);   // the next cohort breeds while the promotion trains
  REQUIRE(fourth);
  CHECK(fourth->rung == 0);
  CHECK(fourth->trial_id == 3);
  CHECK(search::evaluations_left(db, cfg.search) == 3);
}

TEST_CASE("synchronous promotion with breeding: 4 workers train their cohorts side by side, and every rung promotes") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=4\nevaluations=16\n"
                               "[budget]\nmin_epochs=1\nmax_epochs=4\neta=2\npromotion='synchronous'\n");
  const search::Policy policy = search::policy_of(cfg);
  TempDir dir;
  const std::string path = dir.file("cohorts.db");
  { store::Db db = store::Db::open(path, store::OpenMode::create); }
  std::atomic<int64_t> most_running{0};
  std::mutex failed_mutex;
  std::vector<std::string> failed;
  std::vector<std::thread> threads;
  for (int k = 1; k <= 4; ++k)
    threads.emplace_back([&, k] {
      try {
        store::Db db = store::Db::open(path, store::OpenMode::existing);
        const int64_t w = store::register_worker(db, worker_info(k));
        for (int idle = 0; idle < 2000;) {
          const auto c = search::claim_next(db, w, policy);
          if (!c) {
            if (!search::worth_waiting(db, policy)) break;
            ++idle;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
          }
          int64_t running = 0;
          {   // the statement finished before the trial writes
            auto q = db.prepare("SELECT count(*) FROM trial WHERE state = 'running'");
            running = q.step() ? q.int64(0) : 0;
          }
          for (int64_t m = most_running.load(); running > m && !most_running.compare_exchange_weak(m, running);) {}
          std::this_thread::sleep_for(std::chrono::milliseconds(30));   // "training"
          if (!evaluated(db, c->trial_id, c->rung)) throw std::runtime_error("no trial " + std::to_string(c->trial_id));
          store::finish(db, c->trial_id, w, c->rung == policy.last_rung() ? store::TrialState::done : store::TrialState::paused);
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failed_mutex);
        failed.push_back(e.what());
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failed.empty());
  store::Db db = store::Db::open(path, store::OpenMode::existing);
  CHECK(count(db, "SELECT count(*) FROM trial") == 16);
  CHECK(count(db, "SELECT count(*) FROM trial WHERE state IN ('queued', 'running')") == 0);
  CHECK(most_running.load() >= 3);   // one child at a time before cohorts
  for (int rung = 0; rung < policy.last_rung(); ++rung) {
    const std::string at = "SELECT count(*) FROM result WHERE metric = 'val_acc' AND rung = ";
    const int64_t n = count(db, at + std::to_string(rung)), up = count(db, at + std::to_string(rung + 1));
    CAPTURE(rung);
    CHECK(up >= 1);
    CHECK(up <= n / 2);
  }
}

TEST_CASE("synchronous promotion with breeding: each rung promotes at most 1/eta of its results in all") {
  const auto cfg = nb201_study("strategy='evolution'\npopulation=4\nevaluations=16\n"
                               "[budget]\nmin_epochs=1\nmax_epochs=4\neta=2\npromotion='synchronous'\n");
  const search::Policy policy = search::policy_of(cfg);
  TempDir dir;
  store::Db db = store::Db::open(dir.file("s.db"), store::OpenMode::create);
  const int64_t w = store::register_worker(db, worker_info(1));
  int claims = 0;
  while (auto c = search::claim_next(db, w, policy)) {
    evaluate(db, c->trial_id, c->rung);
    store::finish(db, c->trial_id, w, c->rung == policy.last_rung() ? store::TrialState::done : store::TrialState::paused);
    REQUIRE(++claims < 100);
  }
  CHECK(count(db, "SELECT count(*) FROM trial") == 16);
  for (int rung = 0; rung < policy.last_rung(); ++rung) {
    const std::string at = "SELECT count(*) FROM result WHERE metric = 'val_acc' AND rung = ";
    const int64_t n = count(db, at + std::to_string(rung)), up = count(db, at + std::to_string(rung + 1));
    CAPTURE(rung);
    CHECK(n > 0);
    CHECK(up >= 1);
    CHECK(up <= n / 2);   // was 11 of 16 at rung 1 before the quota
  }
}
