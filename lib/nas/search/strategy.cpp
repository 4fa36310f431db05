// strategy: random sampling, and Propulate-style breeding ranked by one objective (evolution)
// or by non-dominated rank and crowding (NSGA-II). Pure: the study's state comes in as Members.
#include "nas/search/strategy.h"
#include "nas/core/error.h"
#include "nas/pareto/front.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nas::search {
namespace {

// The total relative amount by which a member breaks the search's constraints (0: feasible; an
// unknown value breaks its constraint without bound: nothing says it is met).
double violation(const Member& m, const config::SearchConfig& s) {
  double v = 0;
  for (size_t c = 0; c < s.constraints.size(); ++c) {
    const auto& x = m.values[s.objectives.size() + c];
    if (!x) return std::numeric_limits<double>::infinity();
    const auto& k = s.constraints[c];
    const double over = k.at_most ? *x - k.bound : k.bound - *x;
    if (over > 0) v += over / std::max(std::abs(k.bound), 1e-12);
  }
  return v;
}

// The objectives of member i, oriented for minimisation.
pareto::Point point(const Member& m, const config::SearchConfig& s) {
  pareto::Point p;
  for (size_t o = 0; o < s.objectives.size(); ++o) p.push_back(s.objectives[o].maximize ? -*m.values[o] : *m.values[o]);
  return p;
}

// `idx` best first by the objectives: one objective by value; several by non-dominated rank,
// then crowding distance (largest first). Ties by id, so the order never depends on the input's.
std::vector<size_t> by_objectives(std::vector<size_t> idx, const std::vector<Member>& island, const config::SearchConfig& s) {
  const auto id_less = [&](size_t a, size_t b) { return island[a].id < island[b].id; };
  if (s.objectives.size() == 1) {
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      const double x = point(island[a], s)[0], y = point(island[b], s)[0];
      return x != y ? x < y : id_less(a, b);
    });
    return idx;
  }
  std::vector<pareto::Point> pts;
  for (size_t i : idx) pts.push_back(point(island[i], s));
  std::vector<size_t> out;
  for (const auto& front : pareto::nondominated_sort(pts)) {
    const auto crowd = pareto::crowding_distance(pts, front);
    std::vector<size_t> order(front.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return crowd[a] != crowd[b] ? crowd[a] > crowd[b] : id_less(idx[front[a]], idx[front[b]]);
    });
    for (size_t k : order) out.push_back(idx[front[k]]);
  }
  return out;
}

} // namespace

std::vector<size_t> rank_members(const std::vector<Member>& island, const config::SearchConfig& s) {
  std::vector<size_t> feasible, infeasible;
  std::vector<double> viol(island.size(), 0);
  for (size_t i = 0; i < island.size(); ++i) {
    bool evaluated = island[i].values.size() >= s.objectives.size() + s.constraints.size();
    for (size_t o = 0; evaluated && o < s.objectives.size(); ++o) evaluated = island[i].values[o].has_value();
    if (!evaluated) continue;
    viol[i] = violation(island[i], s);
    (viol[i] == 0 ? feasible : infeasible).push_back(i);
  }
  std::vector<size_t> out = by_objectives(feasible, island, s);
  std::vector<size_t> rest = by_objectives(infeasible, island, s);
  std::stable_sort(rest.begin(), rest.end(), [&](size_t a, size_t b) { return viol[a] < viol[b]; });
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::vector<size_t> EvolutionStrategy::rank(const std::vector<Member>& island) const { return rank_members(island, search_); }
std::vector<size_t> Nsga2Strategy::rank(const std::vector<Member>& island) const { return rank_members(island, search_); }

std::vector<std::string> IslandStrategy::metrics() const {
  std::vector<std::string> out;
  for (const auto& o : search_.objectives) out.push_back(o.metric);
  for (const auto& c : search_.constraints) out.push_back(c.metric);
  return out;
}

// At most this many draws look for a fresh candidate the study does not hold. The work is done
// inside a claim's write lock: bounded, not 1,000 draw_feasible calls of up to 20,000 draws.
constexpr int kFreshDraws = 2000;
// Breeding tries (parents and operators drawn again) before a random child, when no drawn
// operator can act on the parents drawn (no feasible crossover, no feasible neighbour).
constexpr int kBreedTries = 20;

Proposal IslandStrategy::random_child(Rng& rng, const Taken& taken) const {
  Proposal p{sampler_.draw_feasible(rng), "random", {}, 0};   // throws when no candidate is feasible
  for (int i = 0; i < kFreshDraws && taken(p.genome); ++i) {
    space::Genome g = sampler_.draw(rng);
    if (sampler_.feasible(g)) p.genome = std::move(g);
  }
  return p;   // taken still: the space has nothing new left (breed() records it exhausted)
}

// Whether a bred child crosses and whether it mutates: each drawn with its probability, drawn
// again while neither fires, so that a child is never a plain copy of its parent. Each
// probability is then the conditional chance given that something is done.
static void draw_operators(const config::SearchConfig& s, Rng& rng, bool& cross, bool& mutate) {
  if (s.crossover <= 0 && s.mutation <= 0) {   // refused by the parser; a hand-made config mutates
    cross = false;
    mutate = true;
    return;
  }
  do {
    cross = rng.chance(s.crossover);
    mutate = rng.chance(s.mutation);
  } while (!cross && !mutate);
}

std::optional<Proposal> IslandStrategy::bred_child(const std::vector<Member>& island, const std::vector<size_t>& best,
                                                   Rng& rng) const {
  const size_t i = rng.below(best.size());
  size_t j = rng.below(best.size() - 1);
  if (j >= i) ++j;
  const Member &a = island[best[i]], &b = island[best[j]];
  bool cross = false, mutate = false;
  draw_operators(search_, rng, cross, mutate);
  Proposal p{a.genome, "", {a.id}, 0};
  // An operator that cannot act (no crossover or neighbour satisfies the constraints) did not
  // happen, and is not recorded.
  if (cross) {
    if (auto c = sampler_.try_crossover(a.genome, b.genome, rng)) {
      p.genome = std::move(*c);
      p.parents = {a.id, b.id};
    } else {
      cross = false;
    }
  }
  if (mutate) {
    try {
      p.genome = sampler_.mutate(p.genome, rng);
    } catch (const UsageError&) {
      mutate = false;
    }
  }
  if (!cross && !mutate) return std::nullopt;
  p.operators = cross && mutate ? "crossover+mutation" : cross ? "crossover" : "mutation";
  return p;
}

// A child the study holds already (a crossover that reproduced a parent, say) is mutated until
// new: duplicates are refused by the study. These further mutations are counted in `repairs`,
// apart from the drawn operators, which keep their rates.
void IslandStrategy::repair(Proposal& p, Rng& rng, const Taken& taken) const {
  try {
    while (taken(p.genome) && p.repairs < 100) {
      p.genome = sampler_.mutate(p.genome, rng);
      ++p.repairs;
    }
  } catch (const UsageError&) {
  }
  if (taken(p.genome)) p = random_child(rng, taken);
}

Proposal IslandStrategy::propose(const std::vector<Member>& island, Rng& rng, const Taken& taken) const {
  const std::vector<size_t> ranked = rank(island);
  // Drawn first, always: the stream then does not depend on the island's size.
  const bool fresh = rng.chance(search_.random);
  if (fresh || ranked.size() < size_t(search_.population) || ranked.size() < 2) return random_child(rng, taken);
  const std::vector<size_t> best(ranked.begin(), ranked.begin() + std::ptrdiff_t(search_.population));
  for (int t = 0; t < kBreedTries; ++t) {
    if (auto p = bred_child(island, best, rng)) {
      repair(*p, rng, taken);
      return *p;
    }
  }
  return random_child(rng, taken);
}

std::unique_ptr<Strategy> make_strategy(const config::SearchConfig& search, const space::Sampler& sampler) {
  switch (search.strategy) {
  case config::StrategyKind::evolution: return std::make_unique<EvolutionStrategy>(sampler, search);
  case config::StrategyKind::nsga2: return std::make_unique<Nsga2Strategy>(sampler, search);
  case config::StrategyKind::random: break;
  }
  return std::make_unique<RandomStrategy>(sampler);
}

} // namespace nas::search
