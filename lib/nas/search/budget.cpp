// budget: see budget.h
#include "nas/search/budget.h"
#include "nas/core/text.h"
#include "nas/search/breed.h"
#include "nas/store/lineage.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nas::search {
namespace {

// Sums of epochs are fractional (min_epochs may be 0.5): a budget met exactly is not exceeded.
constexpr double kSlack = 1e-9;

} // namespace

BudgetLeft budget_left(store::Db& db, const Policy& policy, double now) {
  BudgetLeft left;
  left.epochs = std::numeric_limits<double>::infinity();
  if (policy.wall_time_s > 0) {
    if (const auto start = store::first_claim_at(db); start && now - *start >= policy.wall_time_s) {
      left.open = false;
      left.spent = "wall time: " + format_number(std::round(now - *start)) + " s of " + format_number(policy.wall_time_s) +
                   " s since the first claim";
    }
  }
  if (policy.search_epochs > 0) {
    const double committed = store::epochs_committed(db, policy.train_epochs);
    left.epochs = std::max(0.0, policy.search_epochs - committed);
    if (left.spent.empty() && left.epochs < child_epochs(policy) - kSlack)
      left.spent = "epochs: " + format_number(committed) + " of " + format_number(policy.search_epochs) + " committed";
  }
  return left;
}

double child_epochs(const Policy& policy) {
  return policy.eta > 0 ? policy.rung_budget(0) : policy.train_epochs;
}

bool promotion_fits(const BudgetLeft& left, const Policy& policy, int rung) {
  return left.open && policy.rung_budget(rung + 1) - policy.rung_budget(rung) <= left.epochs + kSlack;
}

bool child_fits(const BudgetLeft& left, const Policy& policy) {
  return left.open && child_epochs(policy) <= left.epochs + kSlack;
}

int64_t children_left(store::Db& db, const Policy& policy, const BudgetLeft& left) {
  if (!policy.breeder || !child_fits(left, policy)) return 0;
  int64_t n = evaluations_left(db, policy.breeder->cfg().search);
  if (n == 0) return 0;
  if (std::isfinite(left.epochs) && child_epochs(policy) > 0)
    n = std::min<int64_t>(n, int64_t(std::floor((left.epochs + kSlack) / child_epochs(policy))));
  return n == std::numeric_limits<int64_t>::max() ? 1 : n;
}

} // namespace nas::search
