// pareto: what nas-pareto does -- the front of a study over any of its metrics, its
// hypervolume and knee, a table and an SVG picture, and the hypervolume history
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/core/table.h"

namespace nas::store {
class Db;
}

namespace nas::app {

struct ParetoOptions {
  std::string db;
  std::vector<std::string> objectives;   // NAME:min|max, at least two
  std::vector<std::string> where;        // NAME OP NUMBER, all must hold
  std::optional<int> rung;               // results at this rung [the last rung reached]
  std::string reference;                 // comma-separated, one value per objective ["" = derived]
  std::string plot;                      // SVG file to write ("" = none)
  bool history = false;                  // hypervolume after each finished trial instead of the front
  bool all = false;                      // every considered trial with its front rank
  Format format = Format::table;
};

// The trials on the first front of opts.objectives (and opts.where, opts.rung), by id. Throws
// as run_pareto does.
std::vector<int64_t> front_trials(store::Db& db, const ParetoOptions& opts);

// Runs nas-pareto; writes data to out. Throws UsageError for bad objectives, conditions,
// references; Error when no trial has every objective.
int run_pareto(const ParetoOptions& opts, std::ostream& out);

} // namespace nas::app
