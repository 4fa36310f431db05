// breed: a breeding event -- the island's members read, a child proposed and inserted with its
// lineage, then (with probability migration / the island's workers) migrants sent to every
// other island: copies that replace the target's worst (pollination), or moves.
#include "nas/search/breed.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/space/hparams.h"
#include "nas/store/db.h"
#include "nas/store/results.h"
#include "nas/store/trials.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace nas::search {
namespace {

// The stream of breeding seeds, apart from sampling's (study seed, batch) streams.
constexpr uint64_t kBreedStream = 0x6272656564ULL;   // "breed"
// The stream of the distillation gene's draws within an event, apart from the event's own.
constexpr uint64_t kGeneStream = 0x67656e65ULL;      // "gene"
// The probability that a mutated child flips the distillation gene it inherited.
constexpr double kGeneFlip = 0.25;

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

// [distill] trials = "searched": a bred child's distillation gene, so that selection can learn
// whether distillation helps. The child takes the gene of one of its parents (either with
// probability 1/2, as uniform crossover takes a point), and a mutated child flips it with
// probability kGeneFlip; drawn from the event's seed on a stream of its own, so the search
// replays and the other draws do not move. Nullopt otherwise (a random child draws the gene
// in draw_hparams as a sampled candidate does).
std::optional<bool> inherited_gene(store::Db& db, const config::StudyConfig& cfg, const Proposal& p, uint64_t seed) {
  if (!cfg.distill.given || cfg.distill.trials != config::DistillTrials::searched || p.parents.empty())
    return std::nullopt;
  Rng rng(seed ^ kGeneStream);
  const store::TrialRecord parent = store::load_trial(db, rng.pick(p.parents));
  bool gene = space::trial_distills(cfg, parent.hash, parent.hparams);
  if (p.operators.find("mutation") != std::string::npos && rng.chance(kGeneFlip)) gene = !gene;
  return gene;
}

store::NewTrial new_trial(const Proposal& p, const Breeder& b, const BreedRequest& r, std::optional<bool> gene) {
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
  space::HParams h = space::draw_hparams(b.cfg(), t.hash);
  if (gene) h.distill = gene;
  t.hparams = space::hparams_json(h);
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

// The event's seed: the study seed's stream numbered by the breeding rows so far (63 bits: the
// study file keeps it in a signed integer).
uint64_t event_seed(store::Db& db, const Breeder& b) {
  return splitmix64_at(b.cfg().seed ^ kBreedStream, uint64_t(store::count_breedings(db))) & 0x7fffffffffffffffULL;
}

// Inserts proposal p as the child with its lineage (and the screen's record), then may migrate.
// Nullopt when the study holds its genome already (nothing written).
std::optional<Bred> insert_child(store::Db& db, const Breeder& b, const BreedRequest& r, const Proposal& p,
                                 uint64_t seed, Rng& rng, std::string screen) {
  store::Breeding rec;
  rec.strategy = b.strategy().name();
  rec.island = r.island;
  rec.operators = p.operators;
  rec.repairs = p.repairs;
  rec.parents = p.parents;
  rec.seed = seed;
  rec.worker_id = r.worker_id;
  rec.screen = std::move(screen);
  const store::NewTrial child = new_trial(p, b, r, inherited_gene(db, b.cfg(), p, seed));
  const auto id = store::insert_bred_in_tx(db, child, rec);
  if (!id) return std::nullopt;
  rec.trial_id = *id;
  return Bred{*id, rec, child, migrate(db, b, r, rng)};
}

// What the screen did, as the child's 'screen' event keeps it: every candidate with its
// operators, parents, score and each proxy's value, and which one was chosen.
std::string screen_record(const Breeder& b, const Screened& s, size_t chosen) {
  nlohmann::json cands = nlohmann::json::array();
  for (size_t i = 0; i < s.candidates.size(); ++i) {
    const Proposal& p = s.candidates[i];
    nlohmann::json proxies = nlohmann::json::object();
    for (const auto& [name, values] : s.scores.proxies) proxies[name] = values.at(i);   // NaN: null
    cands.push_back({{"hash", s.hashes[i]}, {"operators", p.operators}, {"parents", p.parents}, {"repairs", p.repairs},
                     {"score", s.scores.value.at(i)}, {"proxies", proxies}});
  }
  return nlohmann::json{{"m", b.cfg().search.screen}, {"by", b.screen()->name()}, {"seed", int64_t(s.seed)},
                        {"chosen", chosen}, {"candidates", cands}}
      .dump();
}

} // namespace

Breeder::Breeder(const config::StudyConfig& cfg, std::optional<config::StrategyKind> strategy,
                 std::shared_ptr<const Screen> screen)
    : cfg_(with_strategy(cfg, strategy)), sampler_(cfg_), strategy_(make_strategy(cfg_.search, sampler_)),
      screen_(std::move(screen)) {}

int64_t island_of_worker(int64_t worker_id, const config::SearchConfig& s) { return worker_id % s.islands; }

int64_t evaluations_left(store::Db& db, const config::SearchConfig& s) {
  if (s.strategy == config::StrategyKind::random) return 0;
  if (s.evaluations == 0 && s.epochs == 0 && s.wall_time_s == 0) return 0;
  if (store::breed_exhausted(db)) return 0;   // the same seed would fail again: no job should wait for it
  if (s.evaluations == 0) return std::numeric_limits<int64_t>::max();
  return std::max<int64_t>(0, s.evaluations - store::count_trials(db, {}));
}

std::optional<Bred> breed(store::Db& db, const Breeder& b, const BreedRequest& r) {
  std::optional<Bred> out;
  db.write([&] {
    out.reset();
    if (r.within_evaluations && evaluations_left(db, b.cfg().search) == 0) return;
    const uint64_t seed = event_seed(db, b);
    Rng rng(seed);
    const auto members = members_of(store::island_members(db, r.island, b.strategy().metrics()));
    const Proposal p = b.strategy().propose(members, rng, [&](const space::Genome& g) {
      return store::hash_taken(db, space::genome_hash(g));
    });
    out = insert_child(db, b, r, p, seed, rng, "");
    // the space has no new candidate: recorded, so that workers stop breeding
    if (!out) store::record_breed_exhausted_in_tx(db, r.island, seed, r.worker_id);
  });
  return out;
}

Screened screen_candidates(store::Db& db, const Breeder& b, int64_t island) {
  if (!b.screen()) throw Error("screen_candidates: the breeder has no screen");
  Screened s;
  s.island = island;
  db.read([&] {
    s.candidates.clear();
    s.hashes.clear();
    s.seed = event_seed(db, b);
    s.rng = Rng(s.seed);
    const auto members = members_of(store::island_members(db, island, b.strategy().metrics()));
    // distinct: a candidate proposed in this event counts as taken for the next
    const auto taken = [&](const space::Genome& g) {
      const std::string h = space::genome_hash(g);
      return std::find(s.hashes.begin(), s.hashes.end(), h) != s.hashes.end() || store::hash_taken(db, h);
    };
    for (int64_t i = 0; i < b.cfg().search.screen; ++i) {
      Proposal p = b.strategy().propose(members, s.rng, taken);
      if (taken(p.genome)) break;   // nothing new left near the island: screen what there is
      s.hashes.push_back(space::genome_hash(p.genome));
      s.candidates.push_back(std::move(p));
    }
  });
  if (s.candidates.empty()) return s;
  std::vector<space::Genome> genomes;
  for (const auto& p : s.candidates) genomes.push_back(p.genome);
  s.scores = b.screen()->score(genomes);   // no transaction open: other workers go on
  if (s.scores.value.size() != s.candidates.size())
    throw Error("screen '" + b.screen()->name() + "' gave " + std::to_string(s.scores.value.size()) + " scores for " +
                std::to_string(s.candidates.size()) + " candidates");
  return s;
}

std::optional<Bred> breed_screened(store::Db& db, const Breeder& b, const BreedRequest& r, const Screened& s) {
  std::optional<Bred> out;
  db.write([&] {
    out.reset();
    if (r.within_evaluations && evaluations_left(db, b.cfg().search) == 0) return;
    for (size_t i : screen_order(s.scores.value)) {
      if (store::hash_taken(db, s.hashes[i])) continue;   // another worker queued it since the read
      Rng rng = s.rng;   // a copy: fn may run again after a busy retry
      out = insert_child(db, b, r, s.candidates[i], s.seed, rng, screen_record(b, s, i));
      return;
    }
  });
  return out;
}

} // namespace nas::search
