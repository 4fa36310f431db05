// policy: a study's search policy -- the leases' terms from [train], and the budgets of
// successive halving from [budget]: rungs, each rung's budget, how many a rung keeps
#pragma once
#include <cstddef>
#include <memory>

#include "nas/config/study_config.h"
#include "nas/store/queue.h"

namespace nas::search {

class Breeder;
class Screen;

struct Policy : store::LeasePolicy {
  // Successive halving ([budget]); eta 0 turns promotion off. Rung r's budget is
  // min(min_epochs * eta^r, max_epochs); the last rung is the first that reaches max_epochs.
  double eta = 0;
  double min_epochs = 1, max_epochs = 0;
  // Early stopping ([budget] early_stop): a trial that is not in the top floor(n / eta) of the
  // n trials with a val_acc at an epoch inside its rung ends there (see early_stop.h).
  bool early_stop = false;
  // Synchronous successive halving ([budget] promotion = "synchronous"): a rung promotes only
  // once it is complete -- no trial queued or running at it or below -- lowest rung first, so
  // every promotion ranks all of its rung's results. Asynchronous (ASHA, the default) promotes
  // as soon as a trial is in the top 1/eta of the results so far.
  bool synchronous = false;
  // An evolutionary [search] with an evaluations budget: a worker that finds nothing to claim
  // breeds a child inside its claim (null: workers breed nothing).
  std::shared_ptr<const Breeder> breeder;
  // Multi-objective successive halving: with two or more [search] objectives a rung promotes by
  // feasibility ([search] constraints), non-dominated rank and crowding distance (MO-ASHA), not
  // by val_acc alone. Empty: val_acc.
  std::vector<config::Objective> objectives;
  std::vector<config::SearchConstraint> constraints;
  // The search's budgets beyond evaluations (budget.h): epochs all trials may commit and
  // seconds from the first claim (0: no bound), and the epochs a trial without a budget trains.
  double search_epochs = 0;
  double wall_time_s = 0;
  double train_epochs = 0;

  double rung_budget(int rung) const;
  int last_rung() const;
  // How many of n results a rung keeps: floor(n / eta) (0 without promotion).
  int64_t rung_keep(int64_t n) const;
};

// The study's policy. Without a [budget] section: no promotion (eta 0), no early stopping. With
// [search] strategy evolution or nsga2 and a budget (evaluations, epochs or wall_time; the data
// probed), a breeder, screening with `screen` when [search] screen asks (search/screen.h).
Policy policy_of(const config::StudyConfig& cfg, std::shared_ptr<const Screen> screen = nullptr);

// How many of n ranked candidates enter training ([budget] keep: a count, or a fraction rounded
// up), at least 1 and at most n (0 when n is 0).
size_t keep_count(const config::BudgetConfig& b, size_t n);

// The budget a trial entering training at rung 0 gets: [budget] min_epochs, or [train] epochs
// without a [budget] section.
double first_budget(const config::StudyConfig& cfg);

// The budget after which a trial is done: [budget] max_epochs, or [train] epochs.
double last_budget(const config::StudyConfig& cfg);

} // namespace nas::search
