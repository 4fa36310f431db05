// worker: the generic worker -- K slot threads that each claim a trial, run a job on it
// (train today; distill and measure next) and finish it, with leases renewed by a heartbeat,
// signals and a deadline that stop every slot cleanly, and one device energy counter shared
// among the slots by busy time. Torch-free: a job brings its own device setup.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/search/policy.h"
#include "nas/store/queue.h"
#include "nas/store/trial_state.h"
#include "nas/worker/energy.h"

namespace nas::store {
class Db;
}

namespace nas::worker {

// A failure of the trial's attempt that the job has classified: with `retry` and attempts left
// the trial goes back to the queue, else it fails with `reason` ("diverged", "out of memory").
// Any other exception of a job but a fault of the environment (EnvironmentFault below) counts
// as reason "error" (or "out of memory" when its message says so), with retry.
class TrialFailed : public std::runtime_error {
public:
  TrialFailed(std::string reason, const std::string& what, bool retry)
      : std::runtime_error(what), reason_(std::move(reason)), retry_(retry) {}
  const std::string& reason() const { return reason_; }
  bool retry() const { return retry_; }
private:
  std::string reason_;
  bool retry_;
};

// A fault of the environment, not of the trial: the study's folder unwritable, the disk full, a
// file missing or unreadable, the device lost. The worker releases the trial without counting
// the attempt, stops every slot and exits 1: going on would burn the attempts of the whole
// queue on a fault no trial can fix. A job throws it for what it knows to be such a fault;
// FileError and std::filesystem::filesystem_error are taken as one too (is_environment_fault).
class EnvironmentFault : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Whether `e` is a fault of the environment: EnvironmentFault, FileError, a filesystem_error,
// or a system_error of an I/O errno (no space, read-only, permission, I/O error, quota).
bool is_environment_fault(const std::exception& e);

// How a job's run on a claimed trial ended.
struct JobResult {
  enum class End { finished, stopped, lease_lost } end = End::finished;
  store::TrialState state = store::TrialState::done;   // finished: the state the job moved the trial to
  std::vector<nlohmann::json> values;  // the job's summary columns (Job::columns()); may be short
  std::string note;                    // the summary's reason column ("early stop", ...)
};

class Worker;

// What a job sees of the worker while it runs one trial on one slot.
class Slot {
public:
  Slot(Worker& w, int index, store::Db& db, int64_t worker_id) : w_(w), index_(index), db_(db), worker_id_(worker_id) {}
  int index() const { return index_; }
  store::Db& db() { return db_; }
  int64_t worker_id() const { return worker_id_; }
  const search::Policy& policy() const;
  // A signal arrived, the deadline minus the grace period has passed, or another slot met a
  // fault of the environment: checkpoint and return End::stopped (the worker releases the trial
  // without counting the attempt).
  bool should_stop() const;
  // The heartbeat saw another worker take `trial`: return End::lease_lost without writing.
  bool lease_lost(int64_t trial) const;
  EnergyLedger& ledger();
  int slots() const;                   // slot threads in this process
private:
  Worker& w_;
  int index_;
  store::Db& db_;
  int64_t worker_id_;
};

// One kind of work on a claimed trial. One Job object serves every slot: claim(), run() and
// in_thread() are called concurrently from the K slot threads, so a job keeps per-trial state
// on the stack and guards anything it shares.
class Job {
public:
  virtual ~Job() = default;
  // What the job does to a trial, for messages: "train", "distill", "measure".
  virtual std::string verb() const = 0;
  // The summary's columns between "trial"/"state" and "reason".
  virtual std::vector<std::string> columns() const = 0;
  // Runs on each slot thread around its whole loop: per-thread device setup (a CUDA stream,
  // the thread count) then loop(). The default just calls loop().
  virtual void in_thread(int slot, const std::function<void()>& loop) {
    (void)slot;
    loop();
  }
  // The next piece of work for the worker `worker_id`: by default the search's (promotion
  // first, then the queue: search::claim_next). A job over another queue (measurements of
  // trained trials) claims from it here, under the same lease rules.
  virtual std::optional<store::Claim> claim(store::Db& db, int64_t worker_id, const search::Policy& policy);
  // Runs the claimed trial: records its results and moves it to its next state (store::finish)
  // itself, in one transaction. Throws TrialFailed, LeaseLost, DbError (stops the slot) or any
  // other exception (a failed attempt, or a fault of the environment: is_environment_fault).
  virtual JobResult run(Slot& slot, const store::Claim& claim) = 0;
};

struct WorkerOptions {
  std::string db;                      // study file
  std::string device = "cpu";          // recorded with the worker rows: cpu | cuda:N
  int slots = 1;                       // K slot threads
  std::optional<int64_t> trial;        // run this trial only (one slot)
  std::optional<int64_t> max_trials;   // per slot
  std::optional<double> budget;        // a --trial that is still sampled is queued with it
  double deadline = 1e300;             // Unix seconds
  double grace_s = 60;                 // stop claiming / checkpoint this long before the deadline
};

struct WorkerSummary {
  bool failed = false;                 // a --trial run failed, or a slot hit a database error
  std::string environment_fault;       // the first fault of the environment that stopped the slots
  std::vector<std::string> columns;
  std::vector<std::vector<nlohmann::json>> rows;   // one per trial run
};

// Runs `job` on K slots until the queue is empty (synchronous promotion: until no rung can
// still promote), the deadline is near, or a signal (SIGTERM, SIGUSR1, SIGINT) asks to stop.
// `meter` (may be null, with why_not) is the device's energy counter. Installs the stop
// handlers. Returns what ran; throws nothing a slot can throw (slot errors are logged and
// counted in `failed`).
WorkerSummary run_worker(const WorkerOptions& o, const search::Policy& policy, Job& job,
                         std::unique_ptr<EnergyMeter> meter, const std::string& why_not);

// "SIGTERM", "SIGUSR1", "SIGINT" or "signal N" (strsignal() is not thread-safe).
std::string signal_name(int sig);

} // namespace nas::worker
