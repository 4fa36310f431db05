// queue: the trial queue with leases -- claim, heartbeat, release, finish, fail, reclaim
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

// Who a worker is; recorded in the worker table and used as the lease owner.
struct WorkerInfo {
  std::string host;
  int64_t pid = 0;
  std::string slurm_job_id;          // "" when not under Slurm
  std::string slurm_array_job_id;
  std::string slurm_array_task_id;
  std::string device;                // cpu, cuda:0, ...
};

// This process: hostname, pid, and the SLURM_* variables when set.
WorkerInfo this_worker(const std::string& device);

// The leases' terms: how long a claim lasts and how many claims a trial gets. What to run next
// and for how long (rungs, promotion, early stopping) is the search module's (search::Policy
// extends this one).
struct LeasePolicy {
  double lease_s = 300;              // a lease lasts this long unless renewed
  int max_attempts = 3;              // claims counted per trial before it fails
};

// The reason of a trial stopped early begins with this (search::early_stop_reason writes it).
inline constexpr const char* kEarlyStopReason = "early stop:";

// SQL condition on a trial aliased `t`: stopped early (done, with a reason beginning with
// kEarlyStopReason); its results stay at its last rung, after fewer epochs than that rung's.
inline constexpr const char* kStoppedEarly = "(t.state = 'done' AND coalesce(t.reason, '') LIKE 'early stop:%')";
static_assert(std::string_view(kStoppedEarly).find("'early stop:%'") != std::string_view::npos, "kEarlyStopReason");

// One result of `metric` at a rung, with what its trial is doing now: the rows a promotion ranks.
struct RungResult {
  int64_t trial_id = 0;
  int rung = 0;                      // the result's rung
  double value = 0;
  TrialState state = TrialState::sampled;   // the trial's state now
  int trial_rung = 0;                // the trial's rung now
  bool stopped_early = false;        // the trial ended early inside its current rung (kStoppedEarly)
};

// Every non-NULL result of `metric` at a rung below `below_rung`, in no particular order. Call
// inside a transaction (the claim's) or alone (it then reads in one of its own).
std::vector<RungResult> rung_results(Db& db, const std::string& metric, int below_rung);

// The lowest rung of any trial queued or running; nullopt when none is.
std::optional<int> lowest_active_rung(Db& db);

// A trial's val_acc at `epoch` among every trial's val_acc at that epoch (epoch_metric):
// its position (1 = best; ties broken by id, as promotions rank) of n. Nullopt value (and
// n = position = 0) when the trial recorded none at that epoch.
struct EpochRank {
  int64_t position = 0, n = 0;
  std::optional<double> value;
};
EpochRank rank_at_epoch(Db& db, int64_t trial_id, int epoch);

// The val_acc ranked `position` (1 = best) at `epoch`, if that many trials have one.
std::optional<double> value_at_epoch_rank(Db& db, int epoch, int64_t position);

// The epoch a trial's current rung started from: the last epoch it recorded at a lower rung (0
// for none: rung 0, or a trial that started at a later rung by its proxy rank). [budget] anneal
// anneals the learning rate from there to the rung's budget.
int rung_start_epoch(Db& db, int64_t trial_id, int rung);

// Trials running now (any worker) below `rung`.
int64_t count_running_below(Db& db, int rung);

// Of the study's first `first` trials (by id), those queued or running at rung 0: the ones that
// have not completed their first rung.
int64_t count_first_rung_open(Db& db, int64_t first);

// What a claim hands to a worker.
struct Claim {
  int64_t trial_id = 0;
  int rung = 0;
  std::optional<double> budget;
  int attempts = 0;                  // including this one
  std::string genome;                // canonical JSON
};

// Registers a worker; returns its id (the lease owner of its claims).
int64_t register_worker(Db& db, const WorkerInfo& w);

// Marks the worker stopped (it holds no lease afterwards: its running trials are released).
void stop_worker(Db& db, int64_t worker_id);

// Moves trials from 'sampled' to 'queued' at (rung, budget, priority); ids empty means every
// sampled trial. Returns how many were queued. Logs one 'enqueue' event per trial.
int enqueue(Db& db, const std::vector<int64_t>& ids, int rung, std::optional<double> budget,
            double priority = 0);

// The same for one trial, inside a write transaction the caller holds: false when the trial is
// not 'sampled' (nothing changed). Logs the 'enqueue' event with `detail_json`.
bool enqueue_in_tx(Db& db, int64_t id, int rung, std::optional<double> budget, double priority, double now,
                   const std::string& detail_json);

// Atomically claims the best queued trial (highest priority, then lowest id) for the worker:
// state running, lease until now + lease_s, attempts + 1. Expired leases are reclaimed first, in
// the same transaction (see reclaim_expired). Returns nullopt when nothing is queued. Promotion
// (successive halving) is search::claim_next, built on the *_in_tx primitives below; workers
// use that one (this one serves tests of the lease rules).
std::optional<Claim> claim_best_queued(Db& db, int64_t worker_id, const LeasePolicy& policy);

// Inside a write transaction: the best queued trial's id, if any.
std::optional<int64_t> next_queued_in_tx(Db& db);

// Inside a write transaction: the queued trial `trial_id` goes to running under the worker's
// lease (attempts + 1) with its 'claim' event; returns the claim. Throws DbError if the trial is
// not queued (under the write lock that means a caller's bug).
Claim claim_in_tx(Db& db, int64_t worker_id, int64_t trial_id, const LeasePolicy& policy, double now);

// Inside a write transaction: the paused trial `trial_id` goes to queued at `rung` and `budget`
// with its attempts reset (max_attempts counts per rung) and a 'promote' event by the worker.
// Throws DbError if it is not paused.
void promote_in_tx(Db& db, int64_t trial_id, int rung, double budget, int64_t worker_id, double now);

// Claims the trial `trial_id` itself for the worker, as claim_best_queued does: a queued trial, or a
// sampled one (queued first at rung 0 with `budget`). Returns nullopt, with the trial's state
// in `state`, when it is in any other state (running under another worker, paused, done,
// pruned, failed). Throws UsageError when the study has no such trial.
std::optional<Claim> claim_trial(Db& db, int64_t worker_id, int64_t trial_id, std::optional<double> budget,
                                 const LeasePolicy& policy, TrialState& state);

// Renews the leases of every trial the worker holds and its heartbeat. Returns the ids of
// the trials it still holds (a trial missing from the list was lost to another worker).
std::vector<int64_t> heartbeat(Db& db, int64_t worker_id, const LeasePolicy& policy);

// Interrupted (signal, time limit): back to queued without counting the attempt.
// Throws LeaseLost if the worker no longer holds the trial.
void release(Db& db, int64_t trial_id, int64_t worker_id, const std::string& why);

// The trial reached the end of its rung: to `paused` (more rungs may follow) or `done`; a
// trial stopped early ends `done` with a `reason` (kept in trial.reason and the event's detail).
// Throws LeaseLost if the worker no longer holds the trial; UsageError for another state.
void finish(Db& db, int64_t trial_id, int64_t worker_id, TrialState to_state, const std::string& reason = "");

// The trial failed with `reason` (e.g. "diverged"); `error` is the message. With retry and
// attempts left it goes back to queued, else to failed. Throws LeaseLost as above.
void fail(Db& db, int64_t trial_id, int64_t worker_id, const std::string& reason,
          const std::string& error, bool retry, const LeasePolicy& policy);

// Which trials to put back in the queue (nas-db requeue): those with any of `ids`, in any of
// `states`, or with a reason starting with `reason` (empty: no such filter).
struct RequeueFilter {
  std::vector<int64_t> ids;
  std::vector<TrialState> states;
  std::string reason;
};

// In one transaction: every failed or pruned trial the filter matches goes back to 'queued'
// with its attempts at 0 and no reason (its last error kept), with a 'requeue' event. A failed
// trial keeps its rung and budget; a pruned one enters at rung 0 with `first_budget` (nullopt:
// [train] epochs). Returns the ids requeued. Throws UsageError, changing nothing, when the
// filter names a trial the study lacks or one in another state (running, queued, sampled,
// paused or done: not the operator's to put back).
std::vector<int64_t> requeue(Db& db, const RequeueFilter& filter, std::optional<double> first_budget);

// Expired leases: back to queued, or failed ("lease expired") when the trial has used
// max_attempts. Returns how many trials were reclaimed. Opens its own transaction.
int reclaim_expired(Db& db, const LeasePolicy& policy);

// The same, inside a transaction the caller already holds.
int reclaim_expired_in_tx(Db& db, const LeasePolicy& policy, double now);

// Appends an event; call inside a write transaction.
void log_event(Db& db, const std::string& kind, std::optional<int64_t> trial_id,
               std::optional<int64_t> worker_id, const std::string& from_state,
               const std::string& to_state, const std::string& detail_json = "");

} // namespace nas::store
