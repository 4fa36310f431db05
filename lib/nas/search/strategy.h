// strategy: what candidates a search proposes next. Random sampling under the constraints, or
// evolution over islands (one objective, or NSGA-II over several): the evolutionary strategies
// breed from the evaluated trials of an island as the study file holds them now (breed.h reads
// them and writes the child in one transaction; the strategies themselves are pure).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/core/random.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"

namespace nas::search {

// A trial of an island as breeding sees it.
struct Member {
  int64_t id = 0;
  space::Genome genome;
  std::vector<std::optional<double>> values;  // Strategy::metrics() in order: the objectives, then the constraints
};

// A proposed child and how it was made.
struct Proposal {
  space::Genome genome;
  std::string operators = "random";           // random | crossover | mutation | crossover+mutation
  std::vector<int64_t> parents;               // empty for a random child
  int repairs = 0;                            // further mutations that made a child already in the study new (not in operators)
};

// Whether the study already holds a genome (a proposal must be new).
using Taken = std::function<bool(const space::Genome&)>;

class Strategy {
public:
  virtual ~Strategy() = default;
  // The next candidate for an island holding `island`, drawn from `rng` (the same members and
  // stream give the same proposal). Satisfies the study's constraints and, unless the space has
  // no new candidate near the parents, is not `taken`. Throws UsageError when no candidate can
  // satisfy the constraints. Const: one strategy serves concurrent threads.
  virtual Proposal propose(const std::vector<Member>& island, Rng& rng, const Taken& taken) const = 0;
  // The strategy's name as a study would name it ("random").
  virtual std::string name() const = 0;
  // The metrics each Member's values hold, in order (none for random).
  virtual std::vector<std::string> metrics() const { return {}; }
};

// Uniform random sampling of the space under the constraints (nas-sample removes duplicates).
class RandomStrategy : public Strategy {
public:
  explicit RandomStrategy(const space::Sampler& sampler) : sampler_(sampler) {}
  Proposal propose(const std::vector<Member>&, Rng& rng, const Taken&) const override {
    return {sampler_.draw_feasible(rng), "random", {}, 0};
  }
  std::string name() const override { return "random"; }
private:
  const space::Sampler& sampler_;
};

// Propulate's breeding (asynchronous, no generation barrier): while the island has fewer than
// `population` evaluated trials, or with probability `random`, a fresh random candidate; else
// two distinct parents drawn uniformly from the best `population` evaluated trials (rank()),
// then uniform crossover with probability `crossover` and a point mutation with probability
// `mutation`, drawn independently and drawn again while neither fires: a bred child is never a
// plain copy, and each probability is the chance given that something is done (crossed:
// crossover / (1 - (1 - crossover)(1 - mutation)); mutated: mutation / the same). An operator
// that cannot act under the constraints counts as not fired (both: new parents are drawn). A
// child the study already holds is mutated further until it is new, counted in `repairs` and
// not in `operators`. Evolution and NSGA-II differ only in rank().
class IslandStrategy : public Strategy {
public:
  IslandStrategy(const space::Sampler& sampler, const config::SearchConfig& search) : sampler_(sampler), search_(search) {}
  Proposal propose(const std::vector<Member>& island, Rng& rng, const Taken& taken) const override;
  std::vector<std::string> metrics() const override;
  // Indices of the evaluated members (every objective known), best first: feasible ones (every
  // constraint met) before the others, which go by their total violation.
  virtual std::vector<size_t> rank(const std::vector<Member>& island) const = 0;
protected:
  const space::Sampler& sampler_;
  const config::SearchConfig& search_;
private:
  Proposal random_child(Rng& rng, const Taken& taken) const;
  std::optional<Proposal> bred_child(const std::vector<Member>& island, const std::vector<size_t>& best, Rng& rng) const;
  void repair(Proposal& p, Rng& rng, const Taken& taken) const;
};

// One objective: then by its value (best first), then by id.
class EvolutionStrategy : public IslandStrategy {
public:
  using IslandStrategy::IslandStrategy;
  std::vector<size_t> rank(const std::vector<Member>& island) const override;
  std::string name() const override { return "evolution"; }
};

// Several objectives (NSGA-II, Deb et al. 2002): then by non-dominated rank, then by crowding
// distance (largest first), then by id.
class Nsga2Strategy : public IslandStrategy {
public:
  using IslandStrategy::IslandStrategy;
  std::vector<size_t> rank(const std::vector<Member>& island) const override;
  std::string name() const override { return "nsga2"; }
};

// Ranks `island` for `search`: feasible first, then by one objective (evolution) or by
// non-dominated rank and crowding (nsga2, and any strategy with several objectives). Pure; the
// values are the objectives then the constraints, as Strategy::metrics() orders them.
std::vector<size_t> rank_members(const std::vector<Member>& island, const config::SearchConfig& search);

// The study's strategy over `sampler` and `search` (both must outlive it).
std::unique_ptr<Strategy> make_strategy(const config::SearchConfig& search, const space::Sampler& sampler);

} // namespace nas::search
