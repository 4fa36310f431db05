// db: what nas-db does -- status, export and check of a study file
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "nas/core/table.h"
#include "nas/store/trial_state.h"

namespace nas::store { class Db; }

namespace nas::app {

struct DbOptions {
  std::string db;
  Format format = Format::table;
  int events = 10;          // status: how many recent events
  bool all_workers = false; // status: stopped workers too
  bool repair = false;      // check: reclaim orphaned leases
  std::vector<store::TrialState> states;  // count: the states counted
  bool claimable = false;           // count: the trials a worker could claim now (queued + promotable)
  std::vector<int64_t> trials;      // requeue: these trials
  std::string reason;               // requeue: trials whose reason starts with this
};

// --state values -> states. Throws UsageError (exit 2) naming an unknown one, with the nearest
// state's name as a suggestion.
std::vector<store::TrialState> parse_states(const std::vector<std::string>& names);

// Each returns the exit code: status/export 0; check 0 when every check passes, else 1.
int run_db_status(const DbOptions& o, std::ostream& out);
int run_db_export(const DbOptions& o, std::ostream& out);
int run_db_check(const DbOptions& o, std::ostream& out);
// count: prints the number of trials in any of o.states (all trials when empty), or with
// claimable the trials a worker could claim now (queued, and paused ones that successive halving
// would promote under the study's [budget]); 0. For job
// scripts: `nas-db count --claimable`.
int run_db_count(const DbOptions& o, std::ostream& out);
// requeue: puts failed (and pruned) trials back in the queue -- those of o.trials, in o.states
// or with a reason starting with o.reason -- and prints their ids; 0. Throws UsageError when
// no filter is given or one names a trial that cannot go back (store::requeue).
int run_db_requeue(const DbOptions& o, std::ostream& out);

} // namespace nas::app
