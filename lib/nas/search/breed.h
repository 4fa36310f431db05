// breed: one breeding event of an evolutionary search -- read the island, propose a child,
// insert it with its lineage, and maybe migrate -- in one short write transaction, so that two
// workers never breed from a half-written state and a killed worker loses nothing half-bred
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nas/config/study_config.h"
#include "nas/search/screen.h"
#include "nas/search/strategy.h"
#include "nas/space/sampler.h"
#include "nas/store/lineage.h"
#include "nas/store/trial_state.h"

namespace nas::store {
class Db;
}

namespace nas::search {

// What breeding needs, shared by the threads of a worker: its own copy of the configuration,
// the sampler and the strategy over it, and the proxy screen the tool gave (if any). Neither
// copied nor moved (they refer to each other).
class Breeder {
public:
  // `strategy` overrides [search] strategy (nas-sample --strategy; nsga2 then takes the default
  // objectives when the file names none). `screen`: proxy-guided moves ([search] screen), used
  // by claim_next; null breeds one child per event. Throws Error when the configuration's data
  // has not been probed (the cost model needs its shape).
  explicit Breeder(const config::StudyConfig& cfg, std::optional<config::StrategyKind> strategy = std::nullopt,
                   std::shared_ptr<const Screen> screen = nullptr);
  Breeder(const Breeder&) = delete;
  Breeder& operator=(const Breeder&) = delete;
  const config::StudyConfig& cfg() const { return cfg_; }
  const Strategy& strategy() const { return *strategy_; }
  const space::Sampler& sampler() const { return sampler_; }
  // The screen when [search] screen asks for one and the tool gave it; else null.
  const Screen* screen() const { return cfg_.search.screen > 1 ? screen_.get() : nullptr; }
private:
  config::StudyConfig cfg_;
  space::Sampler sampler_;
  std::unique_ptr<Strategy> strategy_;
  std::shared_ptr<const Screen> screen_;
};

struct BreedRequest {
  int64_t island = 0;
  std::optional<int64_t> worker_id;          // none: nas-sample
  int64_t island_workers = 1;                // the migration probability is divided among them
  store::TrialState state = store::TrialState::sampled;   // sampled, or queued at rung 0
  std::optional<double> budget;              // queued: epochs to train to (none: [train] epochs)
  bool within_evaluations = false;           // breed only while the study holds fewer than [search] evaluations trials
};

struct Bred {
  int64_t trial_id = 0;
  store::Breeding breeding;
  store::NewTrial trial;                     // the child as inserted (arch, costs)
  int migrations = 0;                        // migrants this event sent
};

// Breeds one child on r.island in one write transaction (or the caller's: claim_next breeds
// inside its claim). The event's seed is the study seed's stream numbered by the breeding rows
// so far, so a serial search replays exactly. Returns nullopt when r.within_evaluations and the
// budget is spent or the space found exhausted (nothing is written then), or when the space has
// no new candidate left (then only a 'breed_exhausted' event is written).
// Throws UsageError when no candidate satisfies the constraints.
std::optional<Bred> breed(store::Db& db, const Breeder& b, const BreedRequest& r);

// A screened breeding event's candidates: proposed from one read of the island (distinct, and
// new to the study at that read), then scored outside every transaction.
struct Screened {
  int64_t island = 0;
  uint64_t seed = 0;                         // the event's seed, as breed() numbers it
  std::vector<Proposal> candidates;          // empty: the space had nothing new near the island
  std::vector<std::string> hashes;           // each candidate's genome hash
  ScreenScores scores;
  Rng rng{0};                                // the event's stream after the proposals (migration draws on)
};

// Proposes [search] screen candidates for `island` in one read transaction (no write lock) and
// scores them with b.screen() after it. The seed is the one breed() would use now, so a serial
// search replays exactly; two workers screening at once may share it (their records say so).
// Requires b.screen(). Throws what the screen throws, and UsageError as breed() does.
Screened screen_candidates(store::Db& db, const Breeder& b, int64_t island);

// Inserts the best candidate of `s` the study does not hold now (checked inside the write
// transaction: another worker may have taken one meanwhile) with its lineage and the screen's
// record (Breeding::screen), then may migrate, as breed() does -- in one write transaction, or
// the caller's. Returns nullopt, writing nothing, when every candidate is taken by now or when
// r.within_evaluations and the evaluations are spent.
std::optional<Bred> breed_screened(store::Db& db, const Breeder& b, const BreedRequest& r, const Screened& s);

// The island a worker breeds for: workers are spread over the islands by id.
int64_t island_of_worker(int64_t worker_id, const config::SearchConfig& s);

// Trials workers may still breed by [search] evaluations: evaluations minus the trials the
// study holds; INT64_MAX when evaluations is 0 but epochs or wall_time bounds the search (see
// budget.h); 0 when the strategy is random, no budget is set, or a breeding event found the
// space exhausted. Reads only.
int64_t evaluations_left(store::Db& db, const config::SearchConfig& s);

} // namespace nas::search
