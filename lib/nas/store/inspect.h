// inspect: what a person asks of a study file -- status, export, integrity
#pragma once
#include <string>
#include <vector>

#include "nas/core/table.h"

namespace nas::store {

class Db;

// Trials per state and rung (columns: state, rung, trials).
Table state_counts(Db& db);
// Workers with their heartbeat and running trials (columns as v_workers); active only unless all.
Table workers(Db& db, bool all);
// The last n events, newest first.
Table recent_events(Db& db, int n);
// One row per trial with its cost-model values, its results at its highest rung (one column per
// metric), its proxy scores (proxy_NAME) and measurements (BACKEND:DEVICE:METRIC).
Table export_trials(Db& db);

struct CheckItem {
  std::string check;            // integrity, foreign_keys, schema_version, leases, states
  bool ok = true;
  std::string detail;
};

// Integrity check, foreign keys, schema version, orphaned leases (running with an expired
// lease, a stopped owner, or an owner on this host whose process is gone), and states that
// break the life cycle. Read-only.
std::vector<CheckItem> check_study(Db& db);

// The running trials whose worker ran on this host and whose process no longer exists (killed,
// or stopped by a fault it could not record): their leases would otherwise hold until they
// expire. Workers on other hosts are not judged.
std::vector<int64_t> trials_of_dead_local_workers(Db& db);

// Ends the leases of trials_of_dead_local_workers now, so that reclaim_expired takes them back
// as it takes expired ones. Returns how many.
int expire_dead_local_leases(Db& db);

} // namespace nas::store
