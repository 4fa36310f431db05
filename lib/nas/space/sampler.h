// sampler: uniform random genomes of a study's space under its constraints, mutation and
// crossover. Reproducible: the same seed and stream give the same genomes on every platform.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "nas/config/study_config.h"
#include "nas/core/random.h"
#include "nas/space/cost.h"
#include "nas/space/genome.h"

namespace nas::space {

// The cost-model context of a study (input shape, classes, NB201 skeleton, precision). Throws
// Error when the data's shape is not known (a configuration parsed but not probed).
space::CostContext cost_context(const config::StudyConfig& cfg);

// The constraints a cost violates, as "max_params (1531546 > 1000000)"; empty when none.
std::vector<std::string> violations(const space::Cost& cost, const config::Constraints& c);

// Is every decision of `g` a value the space offers? Empty when yes, else the first
// decision that is not ("stages[1].width: 20 is not in space.width").
std::string outside_space(const Genome& g, const config::SpaceConfig& space);

class Sampler {
public:
  explicit Sampler(const config::StudyConfig& cfg);

  // A genome drawn uniformly per decision, ignoring constraints.
  Genome draw(Rng& rng) const;

  // A genome drawn until it satisfies the constraints. After `max_rejections` consecutive
  // rejections throws UsageError saying which constraints rejected how many draws.
  Genome draw_feasible(Rng& rng, int max_rejections = 20000) const;

  // One decision changed to another value the space offers (the number of stages counts as a
  // decision: a stage is appended or removed). Retries until the constraints hold; throws
  // UsageError when no neighbour satisfies them after max_rejections tries.
  Genome mutate(const Genome& g, Rng& rng, int max_rejections = 2000) const;

  // Uniform crossover: each decision from one parent or the other (for `cnn`, stage i comes
  // whole from a parent that has stage i; the number of stages from either). Retries until the
  // constraints hold, falling back to a copy of the fitter-looking parent `a`.
  Genome crossover(const Genome& a, const Genome& b, Rng& rng, int max_rejections = 200) const;
  // The same without the fallback: nullopt when no crossover satisfied the constraints (the
  // same draws as crossover()).
  std::optional<Genome> try_crossover(const Genome& a, const Genome& b, Rng& rng, int max_rejections = 200) const;

  space::Cost cost(const Genome& g) const { return space::estimate_cost(g, ctx_); }
  bool feasible(const Genome& g) const { return violations(cost(g), cfg_.constraints).empty(); }

private:
  CnnStage draw_stage(size_t index, Rng& rng) const;
  const config::StudyConfig& cfg_;
  space::CostContext ctx_;
};

} // namespace nas::space
