// breed: a breeding event -- the island's members read, a child proposed and inserted with its
// lineage, then (with probability migration / the island's workers) migrants sent to every
// other island: copies that replace the target's worst (pollination), or moves.
#include "nas/search/breed.h"
#include "nas/core/text.h"
#include "nas/space/hparams.h"
#include "nas/store/db.h"
#include "nas/store/trials.h"

#include <nlohmann/json.hpp>

namespace nas::search {
namespace {

// The stream of breeding seeds, apart from sampling's (study seed, batch) streams.
constexpr uint64_t kBreedStream = 0x6272656564ULL;   // "breed"

config::StudyConfig with_strategy(config::StudyConfig cfg, std::optional<config::StrategyKind> s) {
  if (!s || *s == cfg.search.strategy) return cfg;
  const bool defaults = cfg.search.objectives == std::vector<config::Objective>{{"val_acc", true}};
  cfg.search.strategy = *s;
  if (*s == config::StrategyKind::nsga2 && defaults) cfg.search.objectives.push_back({"params", false});
  if (*s == config::StrategyKind::nsga2 && cfg.search.objectives.size() < 2)
    throw UsageError("--strategy nsga2: [search] objectives names one objective; nsga2 needs two or more");
  if (*s == config::StrategyKind::evolution && cfg.search.objectives.size() != 1)
    throw UsageError("--strategy evolution: [search] objectives names several; evolution optimises one (use nsga2)");
  return cfg;
}

std::vector<Member> members_of(const std::vector<store::IslandMember>& rows) {
  std::vector<Member> out;
  for (const auto& r : rows) out.push_back({r.trial_id, space::genome_from_json(r.genome), r.values});
  return out;
}

store::NewTrial new_trial(const Proposal& p, const Breeder& b, const BreedRequest& r) {
  const space::Cost c = b.sampler().cost(p.genome);
  store::NewTrial t;
  t.genome = space::canonical(p.genome);
  t.hash = space::genome_hash(p.genome);
  t.arch = space::summary(p.genome);
  // trial.origin keeps its v1 spellings; breeding.operators says exactly what happened.
  t.origin = p.operators == "random" ? "sample" : p.operators.rfind("crossover", 0) == 0 ? "crossover" : "mutation";
  if (!p.parents.empty()) t.parents = nlohmann::json(p.parents).dump();
  t.island = r.island;
  t.state = r.state;
  t.budget = r.state == store::TrialState::queued ? r.budget : std::nullopt;
  t.params = c.params;
  t.macs = c.macs;
  t.peak_act_bytes = c.peak_activation_bytes;
  t.weight_bytes = c.weight_bytes;
  t.hparams = space::hparams_json(space::draw_hparams(b.cfg().train, b.cfg().seed, t.hash));
  return t;
}

// The island's members ranked by the strategy (evaluated ones only), as trial ids.
std::vector<int64_t> ranked_ids(store::Db& db, const Breeder& b, int64_t island) {
  const auto members = members_of(store::island_members(db, island, b.strategy().metrics()));
  std::vector<int64_t> out;
  for (size_t i : rank_members(members, b.cfg().search)) out.push_back(members[i].id);
  return out;
}

// Sends the best members of `from` not already on `to`; a copy replaces the target's worst
// evaluated member once the target holds `population` of them, never its best (so at most
// target.size() - 1 copies replace; the parser keeps migrants below population). Returns
// migrants sent.
int send(store::Db& db, const Breeder& b, int64_t from, int64_t to, std::vector<int64_t>& best, const BreedRequest& r,
         double now) {
  const auto& s = b.cfg().search;
  const std::vector<int64_t> target = ranked_ids(db, b, to);
  int sent = 0;
  for (auto it = best.begin(); it != best.end() && sent < s.migrants;) {
    if (std::find(target.begin(), target.end(), *it) != target.end()) { ++it; continue; }
    store::Migration m{*it, from, to, s.pollination ? "copy" : "move", std::nullopt, r.worker_id};
    if (s.pollination && int64_t(target.size()) >= s.population) {
      if (size_t(sent) + 1 >= target.size()) break;   // the next to replace would be the target's best
      m.replaced = target[target.size() - 1 - size_t(sent)];
      store::remove_member_in_tx(db, to, *m.replaced);
    }
    if (!s.pollination) store::remove_member_in_tx(db, from, *it);
    store::add_member_in_tx(db, to, *it, now);
    store::record_migration_in_tx(db, m, now);
    ++sent;
    it = s.pollination ? it + 1 : best.erase(it);   // a trial moves to one island only
  }
  return sent;
}

int migrate(store::Db& db, const Breeder& b, const BreedRequest& r, Rng& rng) {
  const auto& s = b.cfg().search;
  // Drawn on every event, so that the stream does not depend on the number of islands.
  const bool go = rng.chance(s.migration / double(std::max<int64_t>(1, r.island_workers)));
  if (!go || s.islands < 2) return 0;
  std::vector<int64_t> best = ranked_ids(db, b, r.island);
  const double now = now_unix();
  int sent = 0;
  for (int64_t to = 0; to < s.islands; ++to)
    if (to != r.island) sent += send(db, b, r.island, to, best, r, now);
  return sent;
}

} // namespace

Breeder::Breeder(const config::StudyConfig& cfg, std::optional<config::StrategyKind> strategy)
    : cfg_(with_strategy(cfg, strategy)), sampler_(cfg_), strategy_(make_strategy(cfg_.search, sampler_)) {}

int64_t island_of_worker(int64_t worker_id, const config::SearchConfig& s) { return worker_id % s.islands; }

int64_t evaluations_left(store::Db& db, const config::SearchConfig& s) {
  if (s.strategy == config::StrategyKind::random || s.evaluations == 0) return 0;
  if (store::breed_exhausted(db)) return 0;   // the same seed would fail again: no job should wait for it
  return std::max<int64_t>(0, s.evaluations - store::count_trials(db, {}));
}

std::optional<Bred> breed(store::Db& db, const Breeder& b, const BreedRequest& r) {
  std::optional<Bred> out;
  db.write([&] {
    out.reset();
    if (r.within_evaluations && evaluations_left(db, b.cfg().search) == 0) return;
    // 63 bits: the study file keeps it in a signed integer.
    const uint64_t seed =
        splitmix64_at(b.cfg().seed ^ kBreedStream, uint64_t(store::count_breedings(db))) & 0x7fffffffffffffffULL;
    Rng rng(seed);
    const auto members = members_of(store::island_members(db, r.island, b.strategy().metrics()));
    const Proposal p = b.strategy().propose(members, rng, [&](const space::Genome& g) {
      return store::hash_taken(db, space::genome_hash(g));
    });
    store::Breeding rec{0, b.strategy().name(), r.island, p.operators, p.repairs, p.parents, seed, r.worker_id};
    const store::NewTrial child = new_trial(p, b, r);
    const auto id = store::insert_bred_in_tx(db, child, rec);
    if (!id) {   // the space has no new candidate: recorded, so that workers stop breeding
      store::record_breed_exhausted_in_tx(db, r.island, seed, r.worker_id);
      return;
    }
    rec.trial_id = *id;
    out = Bred{*id, rec, child, migrate(db, b, r, rng)};
  });
  return out;
}

} // namespace nas::search
