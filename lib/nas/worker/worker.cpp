// worker: slot threads over the trial queue.
//
// One process runs K slots. Each slot is a worker of its own in the study file (its own
// connection and lease owner), claims a trial (search::claim_next: promotion first, then the
// queue), runs the job on it, and claims the next. A heartbeat thread renews every slot's
// leases, notices a lease lost to another worker (the job then drops its trial), and reads the
// device's energy counter, which the ledger shares among the slots by busy time.
//
// Stopping. A signal (SIGTERM, SIGUSR1, SIGINT) or the deadline minus the grace period makes
// every job checkpoint and return; the worker releases its trial to 'queued' without counting
// the attempt, and the process exits 0. SIGKILL leaves the lease to expire; the next claim
// resumes from the last checkpoint.
#include "nas/worker/worker.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/signals.h"
#include "nas/core/text.h"
#include "nas/search/promotion.h"
#include "nas/store/db.h"
#include "nas/store/results.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>

namespace nas::worker {

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "signal " + std::to_string(sig);
  }
}

// What every slot of the process shares.
class Worker {
public:
  Worker(const WorkerOptions& o, const search::Policy& p, Job& job, std::unique_ptr<EnergyMeter> meter,
         const std::string& why_not)
      : opts(o), policy(p), job(job), ledger(std::move(meter), why_not, o.slots), worker_ids(size_t(o.slots)),
        current_trial(size_t(o.slots)), claim_seq(size_t(o.slots)), lost_seq(size_t(o.slots)) {}

  const WorkerOptions opts;
  const search::Policy policy;
  Job& job;
  EnergyLedger ledger;
  std::vector<std::atomic<int64_t>> worker_ids, current_trial;
  // Per slot: a number for each claim, and the claim whose lease the heartbeat saw lost. A claim
  // of the same trial again (a promotion) is a new claim: an old verdict cannot drop it.
  std::vector<std::atomic<int64_t>> claim_seq, lost_seq;
  std::atomic<bool> failed{false};
  std::atomic<bool> env_fault{false};

  // The first fault of the environment stops every slot (and makes the process exit 1).
  void stop_for_environment(const std::string& what) {
    std::lock_guard<std::mutex> lock(rows_mutex_);
    if (env_fault_what_.empty()) env_fault_what_ = what;
    env_fault = failed = true;
  }
  std::string environment_fault() {
    std::lock_guard<std::mutex> lock(rows_mutex_);
    return env_fault_what_;
  }
  bool deadline_near() const { return now_unix() + opts.grace_s >= opts.deadline; }
  bool lost(int slot, int64_t trial) const {
    const size_t i = size_t(slot);
    return current_trial[i] == trial && lost_seq[i] == claim_seq[i];
  }
  // The slot holds `trial` now (0: nothing); the claim number goes up first.
  void hold(int slot, int64_t trial) {
    ++claim_seq[size_t(slot)];
    current_trial[size_t(slot)] = trial;
  }
  void add_row(std::vector<nlohmann::json> row) {
    std::lock_guard<std::mutex> lock(rows_mutex_);
    rows_.push_back(std::move(row));
  }
  std::vector<std::vector<nlohmann::json>> take_rows() { return std::move(rows_); }
  // A summary row: trial, state, the job's columns (null where `values` is short), reason.
  void add_row(int64_t trial, store::TrialState state, std::vector<nlohmann::json> values, const std::string& reason) {
    values.resize(job.columns().size());
    std::vector<nlohmann::json> row{trial, store::to_string(state)};
    row.insert(row.end(), values.begin(), values.end());
    row.push_back(reason.empty() ? nlohmann::json() : nlohmann::json(reason));
    add_row(std::move(row));
  }
  std::string energy_note() {
    return ledger.known() ? "device total of " + std::to_string(worker_ids.size()) + " slots in this process; " + ledger.note()
                          : "unknown: " + ledger.note();
  }

private:
  std::mutex rows_mutex_;
  std::vector<std::vector<nlohmann::json>> rows_;
  std::string env_fault_what_;
};

bool is_environment_fault(const std::exception& e) {
  if (dynamic_cast<const EnvironmentFault*>(&e) || dynamic_cast<const FileError*>(&e) ||
      dynamic_cast<const std::filesystem::filesystem_error*>(&e))
    return true;
  if (const auto* se = dynamic_cast<const std::system_error*>(&e)) {
    const int err = se->code().value();
    return se->code().category() == std::generic_category() || se->code().category() == std::system_category()
               ? err == ENOSPC || err == EROFS || err == EACCES || err == EPERM || err == EIO || err == EDQUOT
               : false;
  }
  return false;
}

std::optional<store::Claim> Job::claim(store::Db& db, int64_t worker_id, const search::Policy& policy) {
  return search::claim_next(db, worker_id, policy);
}

const search::Policy& Slot::policy() const { return w_.policy; }
bool Slot::should_stop() const { return stop_requested() || w_.deadline_near() || w_.env_fault; }
bool Slot::lease_lost(int64_t trial) const { return w_.lost(index_, trial); }
EnergyLedger& Slot::ledger() { return w_.ledger; }
int Slot::slots() const { return int(w_.worker_ids.size()); }

namespace {

std::string stop_reason(const Worker& w, int slot, int64_t trial) {
  if (w.lost(slot, trial)) return "lease lost";
  if (int sig = stop_signal()) return signal_name(sig);
  if (w.env_fault) return "a fault of the environment";
  return "deadline";
}

class SlotLoop {
public:
  SlotLoop(Worker& w, int index) : w_(w), index_(index) {}
  void run();

private:
  std::optional<store::Claim> claim(store::Db& db, int64_t wid);
  bool wait_for_rung(store::Db& db);
  void run_job(Slot& slot, const store::Claim& c);
  void end(Slot& slot, const store::Claim& c, const JobResult& r);
  void fail_attempt(Slot& slot, int64_t id, const std::string& reason, std::string what, bool retry);
  void environment_fault(Slot& slot, int64_t id, const std::string& what);
  Worker& w_;
  int index_;
  bool waiting_ = false, rechecked_ = false;
};

void SlotLoop::run() {
  std::optional<store::Db> db;
  int64_t wid = 0;
  try {
    db.emplace(store::Db::open(w_.opts.db, store::OpenMode::existing));
    wid = store::register_worker(*db, store::this_worker(w_.opts.device));
    w_.worker_ids[size_t(index_)] = wid;
    Slot slot(w_, index_, *db, wid);
    int64_t ran = 0;
    for (bool first = true; !slot.should_stop(); first = false) {
      if (w_.opts.max_trials && ran >= *w_.opts.max_trials) break;
      if (w_.opts.trial && !first) break;
      auto c = claim(*db, wid);
      if (!c && !w_.opts.trial && wait_for_rung(*db)) continue;
      if (!c) break;
      w_.hold(index_, c->trial_id);
      run_job(slot, *c);
      w_.hold(index_, 0);
      ++ran;
    }
  } catch (const std::exception& e) {
    log::error("slot " + std::to_string(index_) + ": " + e.what());
    w_.failed = true;
  }
  try {
    if (db && wid) store::stop_worker(*db, wid);
  } catch (const std::exception& e) {
    log::error("slot " + std::to_string(index_) + ": " + e.what());
    w_.failed = true;
  }
}

// The next trial: --trial's, or the search's next (promotion first, then the queue).
std::optional<store::Claim> SlotLoop::claim(store::Db& db, int64_t wid) {
  if (!w_.opts.trial) return w_.job.claim(db, wid, w_.policy);
  store::TrialState state = store::TrialState::sampled;
  auto c = store::claim_trial(db, wid, *w_.opts.trial, w_.opts.budget, w_.policy, state);
  if (!c) {
    const bool nothing_to_do = state == store::TrialState::done || state == store::TrialState::paused;
    log::info("trial " + std::to_string(*w_.opts.trial) + " is " + store::to_string(state) +
              (nothing_to_do ? ": nothing to " + w_.job.verb() : ": not run"));
    if (!nothing_to_do) w_.failed = true;
  }
  return c;
}

// Nothing to claim: under synchronous promotion, wait while trials run below the last rung
// (their rung promotes when they finish); when none does, look once more (the last may have
// finished since the claim) and stop. Returns whether to try claiming again.
bool SlotLoop::wait_for_rung(store::Db& db) {
  if (search::worth_waiting(db, w_.policy)) {
    if (!waiting_) log::info("slot " + std::to_string(index_) + ": waiting for the running trials to complete their rung");
    waiting_ = true;
    for (int i = 0; i < 20 && !stop_requested() && !w_.deadline_near(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return true;
  }
  if (w_.policy.synchronous && w_.policy.eta > 0 && !rechecked_) {
    rechecked_ = true;
    return true;
  }
  waiting_ = rechecked_ = false;
  return false;
}

void SlotLoop::run_job(Slot& slot, const store::Claim& c) {
  waiting_ = rechecked_ = false;
  const std::string tag = "trial " + std::to_string(c.trial_id);
  try {
    end(slot, c, w_.job.run(slot, c));
  } catch (const LeaseLost& e) {
    log::warning(tag + ": " + e.what() + ": dropped");
  } catch (const DbError&) {
    throw;
  } catch (const TrialFailed& e) {
    fail_attempt(slot, c.trial_id, e.reason(), e.what(), e.retry());
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (is_environment_fault(e)) return environment_fault(slot, c.trial_id, first_line(what));
    const bool oom = lower(what).find("out of memory") != std::string::npos;
    fail_attempt(slot, c.trial_id, oom ? "out of memory" : "error", what, true);
  }
}

// A fault no trial can fix: the trial goes back to the queue with its attempt uncounted, and
// every slot stops. When the study file cannot be written either (the same full disk), the
// release fails with a DbError that stops the slot, and the lease runs out as after a kill.
void SlotLoop::environment_fault(Slot& slot, int64_t id, const std::string& what) {
  const std::string tag = "trial " + std::to_string(id);
  if (w_.lost(index_, id)) {
    log::warning(tag + ": " + what + " (its lease was lost meanwhile): dropped");
    return;
  }
  w_.stop_for_environment(what);
  log::error(tag + ": " + what);
  try {
    store::release(slot.db(), id, slot.worker_id(), "fault of the environment: " + what);
  } catch (const LeaseLost&) {
    return;
  }
  log::info(tag + ": released to the queue without counting the attempt (a fault of the environment)");
  w_.add_row(id, store::TrialState::queued, {}, "environment");
}

void SlotLoop::end(Slot& slot, const store::Claim& c, const JobResult& r) {
  const std::string tag = "trial " + std::to_string(c.trial_id);
  if (r.end == JobResult::End::lease_lost) {
    log::warning(tag + ": lease lost to another worker: dropped without a checkpoint");
    return;
  }
  if (r.end == JobResult::End::stopped) {
    const std::string why = stop_reason(w_, index_, c.trial_id);
    store::release(slot.db(), c.trial_id, slot.worker_id(), why);
    log::info(tag + ": released to the queue (" + why + ")");
    w_.add_row(c.trial_id, store::TrialState::queued, r.values, why);
    return;
  }
  w_.add_row(c.trial_id, r.state, r.values, r.note);
}

// An attempt that failed: back to the queue while attempts are left and a retry makes sense
// (out of memory may pass on a less crowded device), else failed.
void SlotLoop::fail_attempt(Slot& slot, int64_t id, const std::string& reason, std::string what, bool retry) {
  const std::string tag = "trial " + std::to_string(id);
  what = first_line(what);
  try {
    store::fail(slot.db(), id, slot.worker_id(), reason, what, retry, w_.policy);
  } catch (const LeaseLost&) {
    log::warning(tag + ": failed: " + reason + " after its lease was lost: " + what);
    return;
  }
  log::warning(tag + ": failed: " + reason + ": " + what);
  w_.add_row(id, store::TrialState::failed, {}, reason);
  if (w_.opts.trial) w_.failed = true;
}

// One round of the heartbeat: renew every slot's leases, notice lost ones, record energy.
void beat(Worker& w, store::Db& db) {
  w.ledger.tick();
  for (size_t i = 0; i < w.worker_ids.size(); ++i) {
    try {
      const int64_t wid = w.worker_ids[i];
      if (!wid) continue;
      // The claim is read before the renewal: one a slot makes meanwhile is not in `held` yet,
      // and must not be taken for lost (nor may a verdict on the claim before it stick to it).
      const int64_t seq = w.claim_seq[i];
      const int64_t t = w.current_trial[i];
      auto held = store::heartbeat(db, wid, w.policy);
      if (t && w.claim_seq[i] == seq && std::find(held.begin(), held.end(), t) == held.end()) w.lost_seq[i] = seq;
      store::record_worker_energy(db, wid, w.ledger.slot_busy(int(i)), w.ledger.total_joules(), w.energy_note());
    } catch (const std::exception& e) {
      log::warning("heartbeat: " + std::string(e.what()));
    }
  }
}

void heartbeat_loop(Worker& w, std::atomic<bool>& done) {
  std::optional<store::Db> opened;
  try {
    opened.emplace(store::Db::open(w.opts.db, store::OpenMode::existing));
  } catch (const std::exception& e) {
    // without renewals the leases would run out under the slots: stop them cleanly instead
    log::error("heartbeat: " + std::string(e.what()) + ": stopping the slots");
    w.failed = true;
    request_stop(SIGTERM);
    return;
  }
  const double every = std::clamp(w.policy.lease_s / 4, 0.5, 30.0);
  auto last = std::chrono::steady_clock::now();
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() - last < std::chrono::duration<double>(every)) continue;
    last = std::chrono::steady_clock::now();
    beat(w, *opened);
  }
}

// The device energy of each slot's worker row, once more at the end.
void record_energy(Worker& w) {
  w.ledger.tick();
  try {
    store::Db db = store::Db::open(w.opts.db, store::OpenMode::existing);
    for (size_t i = 0; i < w.worker_ids.size(); ++i)
      if (w.worker_ids[i])
        store::record_worker_energy(db, w.worker_ids[i], w.ledger.slot_busy(int(i)), w.ledger.total_joules(), w.energy_note());
  } catch (const std::exception& e) {
    log::warning(e.what());
  }
}

} // namespace

WorkerSummary run_worker(const WorkerOptions& o, const search::Policy& policy, Job& job,
                         std::unique_ptr<EnergyMeter> meter, const std::string& why_not) {
  Worker w(o, policy, job, std::move(meter), why_not);
  install_stop_handlers();
  std::atomic<bool> done{false};
  std::thread heart(heartbeat_loop, std::ref(w), std::ref(done));
  std::vector<std::thread> slots;
  for (int i = 0; i < o.slots; ++i)
    slots.emplace_back([&w, i] {
      try {
        w.job.in_thread(i, [&w, i] { SlotLoop(w, i).run(); });
      } catch (const std::exception& e) {   // the job's thread set-up (SlotLoop::run throws nothing)
        log::error("slot " + std::to_string(i) + ": " + e.what());
        w.failed = true;
      }
    });
  for (auto& t : slots) t.join();
  done = true;
  heart.join();
  record_energy(w);
  WorkerSummary s;
  s.failed = w.failed;
  s.environment_fault = w.environment_fault();
  s.columns = {"trial", "state"};
  for (const auto& c : job.columns()) s.columns.push_back(c);
  s.columns.push_back("reason");
  s.rows = w.take_rows();
  return s;
}

} // namespace nas::worker
