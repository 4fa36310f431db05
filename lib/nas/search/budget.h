// budget: the search's budgets -- [search] evaluations, epochs and wall time -- as a claim sees
// them: what each still allows. A search ends at the first spent: past the epochs no promotion
// or child starts that would commit more; past the wall time nothing new is claimed at all.
#pragma once
#include <cstdint>
#include <string>

#include "nas/search/policy.h"

namespace nas::store {
class Db;
}

namespace nas::search {

// What the budgets allow now.
struct BudgetLeft {
  bool open = true;                  // false: the wall time is spent (nothing new is claimed)
  double epochs = 0;                 // epochs that may still be committed (infinity without [search] epochs)
  std::string spent;                 // "" or which budget ended the search and how ("epochs: 120 of 120 committed")
};

// Reads what is left: the epochs committed (store::epochs_committed) and the time since the
// first claim (store::first_claim_at); reads nothing for a budget the policy does not set. In
// the caller's transaction or its own.
BudgetLeft budget_left(store::Db& db, const Policy& policy, double now);

// The epochs a trial commits when it enters training at rung 0: rung 0's budget, or [train]
// epochs without successive halving.
double child_epochs(const Policy& policy);

// Whether a promotion from `rung` to rung + 1 fits what is left: the epochs it adds
// (rung_budget(rung + 1) - rung_budget(rung)) at most left.epochs. Pure.
bool promotion_fits(const BudgetLeft& left, const Policy& policy, int rung);

// Whether a child fits: the budget open and child_epochs(policy) at most left.epochs. Pure.
bool child_fits(const BudgetLeft& left, const Policy& policy);

// Children workers may still breed: 0 without a breeder or when a budget forbids a child;
// else the fewest of the evaluations left (evaluations_left) and the children the epochs left
// pay for; 1 when only the wall time bounds the search (at least one more, as far as a job
// script that asks should know). Reads in the caller's transaction or its own.
int64_t children_left(store::Db& db, const Policy& policy, const BudgetLeft& left);

} // namespace nas::search
