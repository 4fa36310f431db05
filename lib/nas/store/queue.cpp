// queue: the trial queue with leases -- claim, heartbeat, release, finish, fail, reclaim.
//
// The protocol. Trials wait in state 'queued'. A worker (a row in `worker`, registered once per
// process or trainer thread) claims the best one -- highest priority, then lowest id -- and the
// trial becomes 'running' with lease_owner = the worker and lease_expires = now + lease_s, and
// its attempts count goes up by one. While it trains, the worker renews its leases with
// heartbeat(). When it is done it calls finish() (to 'paused' or 'done'), fail() (back to
// 'queued' while attempts are left and a retry makes sense, else 'failed'), or release() when
// it was interrupted (SIGTERM, a Slurm time limit): back to 'queued' with the attempt given
// back, since the trial did nothing wrong.
//
// A worker that dies (SIGKILL, node failure, OOM killer) cannot say so. Its leases simply stop
// being renewed; the next claim by anyone, or reclaim_expired(), finds them expired and puts
// the trials back to 'queued' -- or to 'failed' with reason "lease expired" once max_attempts
// claims have been used, so that a trial that kills its worker every time (out of memory, say)
// cannot take the whole study down with it. Until someone reclaims it, the owner of an expired
// lease may still finish its trial: the lease only matters when someone else wants the trial.
//
// Every operation of a worker on a trial is guarded by `id = ? AND state = 'running' AND
// lease_owner = ?`: a worker whose lease was reclaimed and perhaps claimed again by another
// worker changes nothing and gets LeaseLost. The table's CHECK keeps "running" and "has a lease
// owner" the same fact.
//
// A claim is one short BEGIN IMMEDIATE transaction (reclaim, select, update, log): IMMEDIATE
// takes the write lock before reading, so two workers can never both read the same queued trial
// and both take it, and no deferred transaction has to upgrade its lock halfway (which SQLite
// answers with SQLITE_BUSY at once, without waiting). Keeping it short -- no training, no
// network inside -- is what lets 64 processes share one file. Every state change appends one
// row to `event` in the same transaction, so the log and the trial table never disagree.
//
// Successive halving ([budget]) adds promotion to the claim: lib/nas/search/promotion.cpp runs
// the same transaction with the primitives here (rung_results, promote_in_tx, claim_in_tx), so
// a promotion and the claim of the promoted trial are one atomic step.
//
// Leases compare the wall clocks of different hosts: lease_s must be much longer than the
// clock skew of the cluster (seconds with NTP; leases are minutes).
#include "nas/store/queue.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/store/db.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace nas::store {

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::optional<std::string> null_if_empty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

LeaseLost lease_lost(int64_t trial_id) {
  return LeaseLost("trial " + std::to_string(trial_id) + " is no longer held by this worker");
}

// Back to queued, lease cleared; the guard makes it a no-op for a trial the worker lost.
// Returns whether the trial was released.
bool release_in_tx(Db& db, int64_t trial_id, int64_t worker_id, const std::string& why,
                   double now) {
  Statement up = db.prepare(
      "UPDATE trial SET state = 'queued', lease_owner = NULL, lease_expires = NULL, "
      "attempts = max(attempts - 1, 0), updated_at = ?1 "
      "WHERE id = ?2 AND state = 'running' AND lease_owner = ?3");
  up.bind(1, now).bind(2, trial_id).bind(3, worker_id).run();
  if (db.changes() == 0) return false;
  log_event(db, "release", trial_id, worker_id, "running", "queued",
            nlohmann::json{{"why", why}}.dump());
  return true;
}

} // namespace

WorkerInfo this_worker(const std::string& device) {
  WorkerInfo w;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) == 0) w.host = host;
  if (w.host.empty()) w.host = "localhost";
  w.pid = int64_t(::getpid());
  w.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  w.slurm_array_job_id = env_or_empty("SLURM_ARRAY_JOB_ID");
  w.slurm_array_task_id = env_or_empty("SLURM_ARRAY_TASK_ID");
  w.device = device;
  return w;
}

int64_t register_worker(Db& db, const WorkerInfo& w) {
  int64_t id = 0;
  db.write([&] {
    double now = now_unix();
    Statement ins = db.prepare(
        "INSERT INTO worker (host, pid, slurm_job_id, slurm_array_job_id, slurm_array_task_id, "
        "device, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)");
    ins.bind(1, w.host).bind(2, w.pid).bind(3, null_if_empty(w.slurm_job_id))
        .bind(4, null_if_empty(w.slurm_array_job_id)).bind(5, null_if_empty(w.slurm_array_task_id))
        .bind(6, null_if_empty(w.device)).bind(7, now);
    ins.run();
    id = db.last_insert_id();
  });
  return id;
}

void stop_worker(Db& db, int64_t worker_id) {
  db.write([&] {
    double now = now_unix();
    std::vector<int64_t> held;
    {
      Statement q = db.prepare(
          "SELECT id FROM trial WHERE state = 'running' AND lease_owner = ?1 ORDER BY id");
      q.bind(1, worker_id);
      while (q.step()) held.push_back(q.int64(0));
    }
    for (int64_t id : held) release_in_tx(db, id, worker_id, "worker stopped", now);
    Statement up = db.prepare("UPDATE worker SET stopped_at = ?1, heartbeat_at = ?1 WHERE id = ?2");
    up.bind(1, now).bind(2, worker_id).run();
  });
}

bool enqueue_in_tx(Db& db, int64_t id, int rung, std::optional<double> budget, double priority, double now,
                   const std::string& detail_json) {
  Statement up = db.prepare(
      "UPDATE trial SET state = 'queued', rung = ?1, budget = ?2, priority = ?3, updated_at = ?4 "
      "WHERE id = ?5 AND state = 'sampled'");
  up.bind(1, rung).bind(2, budget).bind(3, priority).bind(4, now).bind(5, id).run();
  if (db.changes() == 0) return false;   // not sampled (any more): someone else decided it
  log_event(db, "enqueue", id, std::nullopt, "sampled", "queued", detail_json);
  return true;
}

int enqueue(Db& db, const std::vector<int64_t>& ids, int rung, std::optional<double> budget,
            double priority) {
  int queued = 0;
  db.write([&] {
    queued = 0;
    double now = now_unix();
    std::vector<int64_t> todo = ids;
    if (todo.empty()) {
      Statement q = db.prepare("SELECT id FROM trial WHERE state = 'sampled' ORDER BY id");
      while (q.step()) todo.push_back(q.int64(0));
    }
    nlohmann::json detail{{"rung", rung}, {"priority", priority}};
    if (budget) detail["budget"] = *budget;
    const std::string detail_text = detail.dump();
    for (int64_t id : todo)
      if (enqueue_in_tx(db, id, rung, budget, priority, now, detail_text)) ++queued;
  });
  return queued;
}

Claim claim_in_tx(Db& db, int64_t worker_id, int64_t trial_id, const LeasePolicy& policy, double now) {
  Statement pick = db.prepare("SELECT rung, budget, attempts, genome FROM trial WHERE id = ?1 AND state = 'queued'");
  pick.bind(1, trial_id);
  if (!pick.step())   // cannot happen under the write lock; refuse to log a lie
    throw DbError("'" + db.path() + "': trial " + std::to_string(trial_id) + " is not queued while being claimed");
  Claim c;
  c.trial_id = trial_id;
  c.rung = int(pick.int64(0));
  c.budget = pick.opt_real(1);
  c.attempts = int(pick.int64(2)) + 1;
  c.genome = pick.text(3);
  Statement up = db.prepare(
      "UPDATE trial SET state = 'running', lease_owner = ?1, lease_expires = ?2, "
      "attempts = attempts + 1, updated_at = ?3 WHERE id = ?4 AND state = 'queued'");
  up.bind(1, worker_id).bind(2, now + policy.lease_s).bind(3, now).bind(4, trial_id).run();
  log_event(db, "claim", trial_id, worker_id, "queued", "running", nlohmann::json{{"attempt", c.attempts}}.dump());
  return c;
}

void promote_in_tx(Db& db, int64_t trial_id, int rung, double budget, int64_t worker_id, double now) {
  Statement up = db.prepare(
      "UPDATE trial SET state = 'queued', rung = ?1, budget = ?2, attempts = 0, updated_at = ?3 "
      "WHERE id = ?4 AND state = 'paused'");
  up.bind(1, rung).bind(2, budget).bind(3, now).bind(4, trial_id).run();
  if (db.changes() != 1)
    throw DbError("'" + db.path() + "': trial " + std::to_string(trial_id) + " is not paused while being promoted");
  log_event(db, "promote", trial_id, worker_id, "paused", "queued",
            nlohmann::json{{"rung", rung}, {"budget", budget}}.dump());
}

std::optional<int64_t> next_queued_in_tx(Db& db) {
  Statement pick = db.prepare(
      "SELECT id FROM trial INDEXED BY trial_claim WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1");
  if (!pick.step()) return std::nullopt;
  return pick.int64(0);
}

std::vector<RungResult> rung_results(Db& db, const std::string& metric, int below_rung) {
  std::vector<RungResult> rows;
  db.read([&] {
    rows.clear();
    Statement q = db.prepare(std::string(
        "SELECT r.trial_id, r.rung, r.value, t.state, t.rung, ") + kStoppedEarly +
        " FROM result r JOIN trial t ON t.id = r.trial_id "
        "WHERE r.metric = ?1 AND r.value IS NOT NULL AND r.rung < ?2");
    q.bind(1, metric).bind(2, below_rung);
    while (q.step())
      rows.push_back({q.int64(0), int(q.int64(1)), q.real(2), trial_state_of_row(q.text(3)), int(q.int64(4)), q.int64(5) != 0});
  });
  return rows;
}

std::optional<int> lowest_active_rung(Db& db) {
  std::optional<int> rung;
  db.read([&] {
    Statement q = db.prepare("SELECT min(rung) FROM trial WHERE state IN ('queued', 'running')");
    rung.reset();
    if (q.step() && !q.is_null(0)) rung = int(q.int64(0));
  });
  return rung;
}

int64_t count_running_below(Db& db, int rung) {
  int64_t n = 0;
  db.read([&] {
    Statement q = db.prepare("SELECT count(*) FROM trial WHERE state = 'running' AND rung < ?1");
    q.bind(1, rung);
    n = q.step() ? q.int64(0) : 0;
  });
  return n;
}

int64_t count_first_rung_open(Db& db, int64_t first) {
  int64_t n = 0;
  db.read([&] {
    Statement q = db.prepare(
        "SELECT count(*) FROM (SELECT state, rung FROM trial ORDER BY id LIMIT ?1) "
        "WHERE rung = 0 AND state IN ('queued', 'running')");
    q.bind(1, first);
    n = q.step() ? q.int64(0) : 0;
  });
  return n;
}

std::optional<Claim> claim_best_queued(Db& db, int64_t worker_id, const LeasePolicy& policy) {
  std::optional<Claim> claim;
  db.write([&] {
    claim.reset();
    const double now = now_unix();
    reclaim_expired_in_tx(db, policy, now);
    if (auto id = next_queued_in_tx(db)) claim = claim_in_tx(db, worker_id, *id, policy, now);
  });
  return claim;
}

std::optional<Claim> claim_trial(Db& db, int64_t worker_id, int64_t trial_id, std::optional<double> budget,
                                 const LeasePolicy& policy, TrialState& state) {
  std::optional<Claim> claim;
  db.write([&] {
    claim.reset();
    double now = now_unix();
    reclaim_expired_in_tx(db, policy, now);
    auto read = [&] {
      Statement pick = db.prepare("SELECT state FROM trial WHERE id = ?1");
      pick.bind(1, trial_id);
      if (!pick.step()) throw UsageError("'" + db.path() + "' has no trial " + std::to_string(trial_id));
      state = trial_state_of_row(pick.text(0));
    };
    read();
    if (state == TrialState::sampled) {
      enqueue(db, {trial_id}, 0, budget, 0);   // nested: runs in this transaction
      read();
    }
    if (state != TrialState::queued) return;
    claim = claim_in_tx(db, worker_id, trial_id, policy, now);
    state = TrialState::running;
  });
  return claim;
}

std::vector<int64_t> heartbeat(Db& db, int64_t worker_id, const LeasePolicy& policy) {
  std::vector<int64_t> held;
  db.write([&] {
    held.clear();
    double now = now_unix();
    Statement w = db.prepare("UPDATE worker SET heartbeat_at = ?1 WHERE id = ?2");
    w.bind(1, now).bind(2, worker_id).run();
    Statement renew = db.prepare(
        "UPDATE trial SET lease_expires = ?1 WHERE state = 'running' AND lease_owner = ?2");
    renew.bind(1, now + policy.lease_s).bind(2, worker_id).run();
    Statement q = db.prepare(
        "SELECT id FROM trial WHERE state = 'running' AND lease_owner = ?1 ORDER BY id");
    q.bind(1, worker_id);
    while (q.step()) held.push_back(q.int64(0));
  });
  return held;
}

void release(Db& db, int64_t trial_id, int64_t worker_id, const std::string& why) {
  db.write([&] {
    if (!release_in_tx(db, trial_id, worker_id, why, now_unix())) throw lease_lost(trial_id);
  });
}

void finish(Db& db, int64_t trial_id, int64_t worker_id, TrialState to, const std::string& reason) {
  const std::string to_state = to_string(to);
  if (to != TrialState::paused && to != TrialState::done)
    throw UsageError("finish: trial " + std::to_string(trial_id) + " cannot go to state '" +
                     to_state + "' (expected paused or done)");
  db.write([&] {
    Statement up = db.prepare(
        "UPDATE trial SET state = ?1, reason = ?5, lease_owner = NULL, lease_expires = NULL, updated_at = ?2 "
        "WHERE id = ?3 AND state = 'running' AND lease_owner = ?4");
    up.bind(1, to_state).bind(2, now_unix()).bind(3, trial_id).bind(4, worker_id)
        .bind(5, null_if_empty(reason)).run();
    if (db.changes() == 0) throw lease_lost(trial_id);
    log_event(db, "finish", trial_id, worker_id, "running", to_state,
              reason.empty() ? std::string() : nlohmann::json{{"reason", reason}}.dump());
  });
}

EpochRank rank_at_epoch(Db& db, int64_t trial_id, int epoch) {
  EpochRank r;
  db.read([&] {
    r = EpochRank{};
    Statement mine = db.prepare(
        "SELECT value FROM epoch_metric WHERE trial_id = ?1 AND epoch = ?2 AND metric = 'val_acc' AND value IS NOT NULL");
    mine.bind(1, trial_id).bind(2, epoch);
    if (!mine.step()) return;
    r.value = mine.real(0);
    Statement q = db.prepare(
        "SELECT count(*), coalesce(sum(value > ?3 OR (value = ?3 AND trial_id < ?1)), 0) FROM epoch_metric "
        "WHERE metric = 'val_acc' AND epoch = ?2 AND value IS NOT NULL");
    q.bind(1, trial_id).bind(2, epoch).bind(3, *r.value);
    q.step();
    r.n = q.int64(0);
    r.position = q.int64(1) + 1;
  });
  return r;
}

std::optional<double> value_at_epoch_rank(Db& db, int epoch, int64_t position) {
  std::optional<double> v;
  if (position < 1) return v;
  db.read([&] {
    Statement cut = db.prepare(
        "SELECT value FROM epoch_metric WHERE metric = 'val_acc' AND epoch = ?1 AND value IS NOT NULL "
        "ORDER BY value DESC, trial_id LIMIT 1 OFFSET ?2");
    cut.bind(1, epoch).bind(2, position - 1);
    v.reset();
    if (cut.step()) v = cut.real(0);
  });
  return v;
}

int rung_start_epoch(Db& db, int64_t trial_id, int rung) {
  int epoch = 0;
  db.read([&] {
    Statement q = db.prepare("SELECT coalesce(max(epoch), 0) FROM epoch_metric WHERE trial_id = ?1 AND rung < ?2");
    q.bind(1, trial_id).bind(2, rung);
    epoch = q.step() ? int(q.int64(0)) : 0;
  });
  return epoch;
}


void fail(Db& db, int64_t trial_id, int64_t worker_id, const std::string& reason,
          const std::string& error, bool retry, const LeasePolicy& policy) {
  db.write([&] {
    Statement q = db.prepare(
        "SELECT attempts FROM trial WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
    q.bind(1, trial_id).bind(2, worker_id);
    if (!q.step()) throw lease_lost(trial_id);
    int attempts = int(q.int64(0));
    q.reset();
    const bool again = retry && attempts < policy.max_attempts;
    const std::string to = again ? "queued" : "failed";
    // A trial going back to the queue keeps its last error but no reason: it has not failed.
    Statement up = db.prepare(
        "UPDATE trial SET state = ?1, lease_owner = NULL, lease_expires = NULL, reason = ?2, "
        "error = ?3, updated_at = ?4 WHERE id = ?5 AND state = 'running' AND lease_owner = ?6");
    up.bind(1, to).bind(2, again ? std::optional<std::string>() : std::optional<std::string>(reason))
        .bind(3, error).bind(4, now_unix()).bind(5, trial_id).bind(6, worker_id).run();
    if (db.changes() == 0) throw lease_lost(trial_id);
    log_event(db, "fail", trial_id, worker_id, "running", to,
              nlohmann::json{{"attempt", attempts}, {"reason", reason}}.dump());
  });
}

// The trials a requeue filter matches: (id, state), ascending by id.
static std::vector<std::pair<int64_t, TrialState>> matching(Db& db, const RequeueFilter& f) {
  std::vector<std::pair<int64_t, TrialState>> out;
  Statement q = db.prepare("SELECT id, state, reason FROM trial ORDER BY id");
  while (q.step()) {
    const int64_t id = q.int64(0);
    const TrialState st = trial_state_of_row(q.text(1));
    const std::string reason = q.is_null(2) ? "" : q.text(2);
    const bool by_id = std::find(f.ids.begin(), f.ids.end(), id) != f.ids.end();
    const bool by_state = std::find(f.states.begin(), f.states.end(), st) != f.states.end();
    const bool by_reason = !f.reason.empty() && reason.rfind(f.reason, 0) == 0;
    if (by_id || by_state || by_reason) out.push_back({id, st});
  }
  return out;
}

std::vector<int64_t> requeue(Db& db, const RequeueFilter& f, std::optional<double> first_budget) {
  std::vector<int64_t> done;
  db.write([&] {
    done.clear();
    const auto found = matching(db, f);
    for (int64_t id : f.ids)
      if (std::none_of(found.begin(), found.end(), [&](const auto& m) { return m.first == id; }))
        throw UsageError("'" + db.path() + "' has no trial " + std::to_string(id));
    for (const auto& [id, st] : found)
      if (st != TrialState::failed && st != TrialState::pruned)
        throw UsageError("trial " + std::to_string(id) + " is " + to_string(st) +
                         ": only failed and pruned trials go back to the queue");
    const double now = now_unix();
    Statement failed = db.prepare(
        "UPDATE trial SET state = 'queued', attempts = 0, reason = NULL, updated_at = ?1 WHERE id = ?2 AND state = 'failed'");
    Statement pruned = db.prepare(
        "UPDATE trial SET state = 'queued', attempts = 0, reason = NULL, rung = 0, budget = ?3, updated_at = ?1 "
        "WHERE id = ?2 AND state = 'pruned'");
    for (const auto& [id, st] : found) {
      Statement& up = st == TrialState::failed ? failed : pruned;
      up.reset();
      up.bind(1, now).bind(2, id);
      if (st == TrialState::pruned) up.bind(3, first_budget);
      up.run();
      log_event(db, "requeue", id, std::nullopt, to_string(st), "queued", nlohmann::json{{"by", "nas-db requeue"}}.dump());
      done.push_back(id);
    }
  });
  return done;
}

int reclaim_expired(Db& db, const LeasePolicy& policy) {
  int n = 0;
  db.write([&] { n = reclaim_expired_in_tx(db, policy, now_unix()); });
  return n;
}

int reclaim_expired_in_tx(Db& db, const LeasePolicy& policy, double now) {
  struct Expired {
    int64_t id;
    int64_t owner;
    int attempts;
  };
  std::vector<Expired> expired;
  {
    Statement q = db.prepare(
        "SELECT id, lease_owner, attempts FROM trial INDEXED BY trial_lease "
        "WHERE state = 'running' AND lease_expires < ?1 ORDER BY id");
    q.bind(1, now);
    while (q.step()) expired.push_back({q.int64(0), q.int64(1), int(q.int64(2))});
  }
  if (expired.empty()) return 0;
  Statement up = db.prepare(
      "UPDATE trial SET state = ?1, lease_owner = NULL, lease_expires = NULL, reason = ?2, "
      "error = ?3, updated_at = ?4 WHERE id = ?5 AND state = 'running' AND lease_owner = ?6");
  for (const auto& e : expired) {
    const bool again = e.attempts < policy.max_attempts;
    const std::string to = again ? "queued" : "failed";
    const std::string msg = "the lease of worker " + std::to_string(e.owner) +
                            " expired (attempt " + std::to_string(e.attempts) + " of " +
                            std::to_string(policy.max_attempts) + ")";
    up.reset();
    up.bind(1, to).bind(2, again ? std::optional<std::string>() : std::optional<std::string>("lease expired"))
        .bind(3, msg).bind(4, now).bind(5, e.id).bind(6, e.owner).run();
    log_event(db, "reclaim", e.id, e.owner, "running", to,
              nlohmann::json{{"attempt", e.attempts}}.dump());
  }
  return int(expired.size());
}

void log_event(Db& db, const std::string& kind, std::optional<int64_t> trial_id,
               std::optional<int64_t> worker_id, const std::string& from_state,
               const std::string& to_state, const std::string& detail_json) {
  Statement ins = db.prepare(
      "INSERT INTO event (at, kind, trial_id, worker_id, from_state, to_state, detail) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  ins.bind(1, now_unix()).bind(2, kind).bind(3, trial_id).bind(4, worker_id)
      .bind(5, null_if_empty(from_state)).bind(6, null_if_empty(to_state))
      .bind(7, null_if_empty(detail_json));
  ins.run();
}

} // namespace nas::store
