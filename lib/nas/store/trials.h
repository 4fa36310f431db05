// trials: reading trials by state -- counts, and what planning and packing need of them
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

// The number of trials in any of `states` (every trial when `states` is empty). Reads in one
// read transaction (or the caller's); changes nothing.
int64_t count_trials(Db& db, const std::vector<TrialState>& states);

// What planning a trial's training needs of it.
struct TrialWork {
  int64_t id = 0;
  std::string genome;                   // canonical JSON
  std::optional<std::string> hparams;   // trial.hparams; none in files older than stored hyperparameters
  std::optional<double> budget;         // epochs to train to; none: [train] epochs
  int64_t macs = 0;
  int64_t epochs_done = 0;              // the last epoch recorded at the trial's current rung (0: none)
};

// The trials in `state`, ascending by id. Reads in one read transaction (or the caller's).
std::vector<TrialWork> trials_in_state(Db& db, TrialState state);

// The queued trial with the most MACs (the largest network a worker may claim), or nullopt
// when none is queued. Reads only.
std::optional<TrialWork> largest_queued_trial(Db& db);

// A trial's measured training time: the epochs with a wall time (epoch_metric 'wall_s' > 0).
struct MeasuredTrial {
  int64_t id = 0;
  std::string genome;                   // canonical JSON
  std::optional<std::string> hparams;
  int64_t macs = 0;
  int64_t epochs = 0;                   // epochs measured
  double wall_s = 0;                    // their seconds, summed
};

// Every trial with at least one measured epoch, in no particular order. Reads in one read
// transaction (or the caller's).
std::vector<MeasuredTrial> measured_trials(Db& db);

} // namespace nas::store
