// strategy: what candidates a search proposes next. Random sampling under the constraints
// today; the evolutionary strategies (islands, NSGA-II) implement the same interface and read
// the study's results to choose their parents.
#pragma once
#include <memory>
#include <string>

#include "nas/core/random.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"

namespace nas::search {

class Strategy {
public:
  virtual ~Strategy() = default;
  // A candidate to evaluate next, drawn from `rng` (the caller's stream: the same stream gives
  // the same candidates). Satisfies the study's constraints. Throws UsageError when no
  // candidate can satisfy them.
  virtual space::Genome propose(Rng& rng) = 0;
  // The strategy's name as a study would name it ("random").
  virtual std::string name() const = 0;
};

// Uniform random sampling of the space under the constraints.
class RandomStrategy : public Strategy {
public:
  explicit RandomStrategy(const space::Sampler& sampler) : sampler_(sampler) {}
  space::Genome propose(Rng& rng) override { return sampler_.draw_feasible(rng); }
  std::string name() const override { return "random"; }
private:
  const space::Sampler& sampler_;
};

// The study's strategy over `sampler` (which must outlive it): random.
std::unique_ptr<Strategy> make_strategy(const config::StudyConfig& cfg, const space::Sampler& sampler);

} // namespace nas::search
