// queue: the trial queue with leases -- claim, heartbeat, release, finish, fail, reclaim
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

struct QueuePolicy {
  double lease_s = 300;              // a lease lasts this long unless renewed
  int max_attempts = 3;              // claims counted per trial before it fails
  // Asynchronous successive halving ([budget]); eta 0 turns promotion off. Rung r's budget is
  // min(min_epochs * eta^r, max_epochs); the last rung is the first that reaches max_epochs.
  double eta = 0;
  double min_epochs = 1, max_epochs = 0;
  // Early stopping ([budget] early_stop): a trial that is not in the top floor(n / eta) of the
  // n trials with a val_acc at an epoch inside its rung ends there (see standing_at_epoch).
  bool early_stop = false;
  // Synchronous successive halving ([budget] promotion = "synchronous"): a rung promotes only
  // once it is complete -- no trial queued or running at it or below -- lowest rung first, so
  // every promotion ranks all of its rung's results. Asynchronous (ASHA, the default) promotes
  // as soon as a trial is in the top 1/eta of the results so far.
  bool synchronous = false;
  double rung_budget(int rung) const;
  int last_rung() const;
};

// SQL condition on a trial aliased `t`: stopped early (done, with a reason the worker writes as
// "early stop: ..."); its results stay at its last rung, after fewer epochs than that rung's.
inline constexpr const char* kStoppedEarly = "(t.state = 'done' AND coalesce(t.reason, '') LIKE 'early stop:%')";

// Where a trial's val_acc at `epoch` stands among the val_acc every trial recorded at that
// epoch (epoch_metric): its position (1 = best; ties broken by id, as promotions rank) of n,
// how many a promotion at that point would keep (floor(n / eta)), and the value of the last
// kept one. Every trial at an epoch of the same rung follows the same learning-rate schedule
// there, so the same epoch compares like with like (the config refuses anneal together with
// proxy_start and early_stop, which would break that).
struct EpochStanding {
  int64_t position = 0, n = 0, keep = 0;
  std::optional<double> value, cutoff;
  bool below() const { return keep >= 1 && position > keep; }
};
EpochStanding standing_at_epoch(Db& db, int64_t trial_id, int epoch, double eta);

// The epoch a trial's current rung started from: the last epoch it recorded at a lower rung (0
// for none: rung 0, or a trial that started at a later rung by its proxy rank). [budget] anneal
// anneals the learning rate from there to the rung's budget.
int rung_start_epoch(Db& db, int64_t trial_id, int rung);

// Trials running now (any worker) below `rung`. A worker of a synchronous study waits while
// some run below the last rung: when they finish, their rung may complete and promote (trials
// at the last rung promote nothing).
int64_t count_running_below(Db& db, int rung);

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

// Atomically claims work for the worker: state running, lease until now + lease_s, attempts + 1.
// Expired leases are reclaimed first, in the same transaction (see reclaim_expired). With
// promotion on (policy.eta > 0) it first promotes a paused trial below the last rung that is
// among the top floor(n / eta) by val_acc of the n trials that finished its rung (highest rung
// first, then the best): rung + 1, budget rung_budget(rung + 1), a 'promote' event, and claims
// it -- decided inside the transaction, so two workers never promote the same trial. Else the
// best queued trial (highest priority, then lowest id). Returns nullopt when neither exists.
std::optional<Claim> claim_next(Db& db, int64_t worker_id, const QueuePolicy& policy);

// Trials a claim could take now: queued ones, plus (promotion on) paused ones a claim would
// promote, plus (synchronous promotion) trials running below the last rung, whose rung
// promotes once they finish. What job scripts ask before requeueing themselves.
int64_t count_claimable(Db& db, const QueuePolicy& policy);

// Claims the trial `trial_id` itself for the worker, as claim_next does: a queued trial, or a
// sampled one (queued first at rung 0 with `budget`). Returns nullopt, with the trial's state
// in `state`, when it is in any other state (running under another worker, paused, done,
// pruned, failed). Throws UsageError when the study has no such trial.
std::optional<Claim> claim_trial(Db& db, int64_t worker_id, int64_t trial_id, std::optional<double> budget,
                                 const QueuePolicy& policy, std::string& state);

// Renews the leases of every trial the worker holds and its heartbeat. Returns the ids of
// the trials it still holds (a trial missing from the list was lost to another worker).
std::vector<int64_t> heartbeat(Db& db, int64_t worker_id, const QueuePolicy& policy);

// Interrupted (signal, time limit): back to queued without counting the attempt.
// Throws LeaseLost if the worker no longer holds the trial.
void release(Db& db, int64_t trial_id, int64_t worker_id, const std::string& why);

// The trial reached the end of its rung: to `paused` (more rungs may follow) or `done`; a
// trial stopped early ends `done` with a `reason` (kept in trial.reason and the event's detail).
// Throws LeaseLost if the worker no longer holds the trial; UsageError for another state.
void finish(Db& db, int64_t trial_id, int64_t worker_id, const std::string& to_state,
            const std::string& reason = "");

// The trial failed with `reason` (e.g. "diverged"); `error` is the message. With retry and
// attempts left it goes back to queued, else to failed. Throws LeaseLost as above.
void fail(Db& db, int64_t trial_id, int64_t worker_id, const std::string& reason,
          const std::string& error, bool retry, const QueuePolicy& policy);

// Expired leases: back to queued, or failed ("lease expired") when the trial has used
// max_attempts. Returns how many trials were reclaimed. Opens its own transaction.
int reclaim_expired(Db& db, const QueuePolicy& policy);

// The same, inside a transaction the caller already holds.
int reclaim_expired_in_tx(Db& db, const QueuePolicy& policy, double now);

// Appends an event; call inside a write transaction.
void log_event(Db& db, const std::string& kind, std::optional<int64_t> trial_id,
               std::optional<int64_t> worker_id, const std::string& from_state,
               const std::string& to_state, const std::string& detail_json = "");

} // namespace nas::store
