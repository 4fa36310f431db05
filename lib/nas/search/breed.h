// breed: one breeding event of an evolutionary search -- read the island, propose a child,
// insert it with its lineage, and maybe migrate -- in one short write transaction, so that two
// workers never breed from a half-written state and a killed worker loses nothing half-bred
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nas/config/study_config.h"
#include "nas/search/strategy.h"
#include "nas/space/sampler.h"
#include "nas/store/lineage.h"
#include "nas/store/trial_state.h"

namespace nas::store {
class Db;
}

namespace nas::search {

// What breeding needs, shared by the threads of a worker: its own copy of the configuration,
// the sampler and the strategy over it. Neither copied nor moved (they refer to each other).
class Breeder {
public:
  // `strategy` overrides [search] strategy (nas-sample --strategy; nsga2 then takes the default
  // objectives when the file names none). Throws Error when the configuration's data has not
  // been probed (the cost model needs its shape).
  explicit Breeder(const config::StudyConfig& cfg, std::optional<config::StrategyKind> strategy = std::nullopt);
  Breeder(const Breeder&) = delete;
  Breeder& operator=(const Breeder&) = delete;
  const config::StudyConfig& cfg() const { return cfg_; }
  const Strategy& strategy() const { return *strategy_; }
  const space::Sampler& sampler() const { return sampler_; }
private:
  config::StudyConfig cfg_;
  space::Sampler sampler_;
  std::unique_ptr<Strategy> strategy_;
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

// The island a worker breeds for: workers are spread over the islands by id.
int64_t island_of_worker(int64_t worker_id, const config::SearchConfig& s);

// Trials workers may still breed: [search] evaluations minus the trials the study holds (0 when
// the strategy is random, evaluations is 0, or a breeding event found the space exhausted).
// Reads only.
int64_t evaluations_left(store::Db& db, const config::SearchConfig& s);

} // namespace nas::search
