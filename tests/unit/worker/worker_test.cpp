// worker_test: the generic worker with jobs that are not training -- what it does with a
// finished, failed, classified, stopped and lost trial, and that K slots share one queue
#include <doctest/doctest.h>

#include "../support.h"
#include "../store/queue_support.h"

#include "nas/core/error.h"
#include "nas/core/signals.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"
#include "nas/worker/worker.h"

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <system_error>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

using namespace nas::test;
using nas::worker::JobResult;
using nas::worker::Slot;

namespace {

// A job whose behaviour per trial is scripted: what `run` does with trial N is `plan[N]`.
class ScriptedJob : public nas::worker::Job {
public:
  enum class Act { finish, diverge, throw_oom, stop, lose_lease, disk_full, env_fault };
  std::map<int64_t, Act> plan;
  std::mutex mu;
  std::map<int64_t, int> runs;             // trial -> times run
  std::set<int> slots_seen;
  int threads_entered = 0;

  std::string verb() const override { return "test"; }
  std::vector<std::string> columns() const override { return {"value"}; }
  void in_thread(int slot, const std::function<void()>& loop) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++threads_entered;
    }
    (void)slot;
    loop();
  }
  JobResult run(Slot& slot, const nas::store::Claim& c) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++runs[c.trial_id];
      slots_seen.insert(slot.index());
    }
    JobResult r;
    switch (plan.count(c.trial_id) ? plan[c.trial_id] : Act::finish) {
      case Act::finish:
        nas::store::finish(slot.db(), c.trial_id, slot.worker_id(), nas::store::TrialState::done);
        r.values = {double(c.trial_id) / 10};
        return r;
      case Act::diverge:
        throw nas::worker::TrialFailed("diverged", "loss became NaN", false);
      case Act::throw_oom:
        throw std::runtime_error("CUDA out of memory. Tried to allocate 2.00 GiB");
      case Act::stop:
        nas::request_stop(SIGTERM);
        r.end = JobResult::End::stopped;
        return r;
      case Act::lose_lease:
        r.end = JobResult::End::lease_lost;
        return r;
      case Act::disk_full:
        throw nas::FileError("write", "study.db.d/checkpoints/trial-1.pt", "no space left on device");
      case Act::env_fault:
        throw nas::worker::EnvironmentFault("the device failed: CUDA error: an illegal memory access");
    }
    return r;
  }
};

nas::worker::WorkerSummary run(const std::string& db, ScriptedJob& job, int slots, std::optional<int64_t> trial = {}) {
  nas::worker::WorkerOptions o;
  o.db = db;
  o.slots = slots;
  o.trial = trial;
  nas::search::Policy p;
  p.max_attempts = 2;
  return nas::worker::run_worker(o, p, job, nullptr, "no counter in tests");
}

} // namespace

TEST_CASE("the worker runs a job on every queued trial, on K slots, and records what ended how") {
  TempDir dir;
  const std::string path = dir.file("w.db");
  Db db = Db::open(path, OpenMode::create);
  std::vector<int64_t> t;
  for (int i = 0; i < 8; ++i) t.push_back(add_trial(db, "queued"));
  ScriptedJob job;
  job.plan[t[1]] = ScriptedJob::Act::diverge;
  job.plan[t[2]] = ScriptedJob::Act::throw_oom;
  nas::clear_stop();
  const auto s = run(path, job, 2);
  CHECK_FALSE(s.failed);
  CHECK(job.threads_entered == 2);
  CHECK(s.columns == std::vector<std::string>{"trial", "state", "value", "reason"});
  CHECK(state_of(db, t[0]) == "done");
  CHECK(state_of(db, t[1]) == "failed");   // classified: no retry
  CHECK(text_of(db, "SELECT reason FROM trial WHERE id = ?1", t[1]) == "diverged");
  CHECK(job.runs[t[1]] == 1);
  CHECK(state_of(db, t[2]) == "failed");   // retried up to max_attempts, then failed
  CHECK(text_of(db, "SELECT reason FROM trial WHERE id = ?1", t[2]) == "out of memory");
  CHECK(job.runs[t[2]] == 2);
  for (size_t i = 3; i < t.size(); ++i) CHECK(state_of(db, t[i]) == "done");
  CHECK(scalar(db, "SELECT count(*) FROM worker WHERE stopped_at IS NOT NULL") == 2);
  CHECK(check_event_chains(db) > 0);
  int done_rows = 0, failed_rows = 0;
  for (const auto& r : s.rows) {
    REQUIRE(r.size() == 4);
    if (r[1] == "done") {
      ++done_rows;
      CHECK(r[2].get<double>() == doctest::Approx(r[0].get<int64_t>() / 10.0));
      CHECK(r[3].is_null());
    }
    if (r[1] == "failed") ++failed_rows;
  }
  CHECK(done_rows == 6);
  CHECK(failed_rows == 3);   // diverged once, out of memory twice (the first attempt requeued)
}

TEST_CASE("a stopped job's trial is released without counting the attempt; a lost lease is dropped") {
  TempDir dir;
  const std::string path = dir.file("w.db");
  Db db = Db::open(path, OpenMode::create);
  const int64_t a = add_trial(db, "queued", 2), b = add_trial(db, "queued", 1);
  ScriptedJob job;
  job.plan[a] = ScriptedJob::Act::lose_lease;
  job.plan[b] = ScriptedJob::Act::stop;
  nas::clear_stop();
  const auto s = run(path, job, 1);
  nas::clear_stop();
  CHECK(state_of(db, b) == "queued");
  CHECK(attempts_of(db, b) == 0);
  CHECK(text_of(db, "SELECT json_extract(detail, '$.why') FROM event WHERE kind = 'release' AND trial_id = ?1", b) ==
        "SIGTERM");
  // the lost trial was left as it was (its lease is the other worker's business); the worker
  // released it when it stopped, as stop_worker does for everything it still holds
  CHECK(job.runs[a] == 1);
  CHECK(state_of(db, a) == "queued");   // not finished, not failed: released with the worker
  CHECK(attempts_of(db, a) == 0);
  REQUIRE(s.rows.size() == 1);
  CHECK(s.rows[0][1] == "queued");
  CHECK(s.rows[0][3] == "SIGTERM");
}

TEST_CASE("--trial runs one trial; a trial that is done is nothing to do, a failed one fails the run") {
  TempDir dir;
  const std::string path = dir.file("w.db");
  Db db = Db::open(path, OpenMode::create);
  const int64_t a = add_trial(db, "sampled"), b = add_trial(db, "queued"), c = add_trial(db, "pruned");
  ScriptedJob job;
  nas::clear_stop();
  auto s = run(path, job, 1, a);
  CHECK_FALSE(s.failed);
  CHECK(state_of(db, a) == "done");       // a sampled trial is queued, then run
  CHECK(state_of(db, b) == "queued");     // the others are left alone
  CHECK(job.runs.count(b) == 0);
  s = run(path, job, 1, a);
  CHECK_FALSE(s.failed);                  // done: nothing to do
  CHECK(job.runs[a] == 1);
  s = run(path, job, 1, c);
  CHECK(s.failed);                        // pruned: not run
  CHECK(job.runs.count(c) == 0);
}

TEST_CASE("a fault of the environment releases the trial without counting the attempt and stops every slot") {
  for (auto act : {ScriptedJob::Act::disk_full, ScriptedJob::Act::env_fault}) {
    TempDir dir;
    const std::string path = dir.file("w.db");
    Db db = Db::open(path, OpenMode::create);
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(add_trial(db, "queued", 1));
    ScriptedJob job;
    for (auto id : ids) job.plan[id] = act;   // whichever is claimed first meets the fault
    nas::clear_stop();
    const auto s = run(path, job, 1);
    CHECK(s.failed);
    CHECK(s.environment_fault.find(act == ScriptedJob::Act::disk_full ? "no space left" : "CUDA error") != std::string::npos);
    int runs = 0;
    for (auto id : ids) {
      CHECK(state_of(db, id) == "queued");   // none burnt: the faulty one released, the rest never claimed
      CHECK(attempts_of(db, id) == 0);
      runs += job.runs[id];
    }
    CHECK(runs == 1);
    for (auto id : ids) CHECK(text_of(db, "SELECT count(*) FROM event WHERE kind = 'fail' AND trial_id = ?1", id) == "0");
    REQUIRE(s.rows.size() == 1);
    CHECK(s.rows[0][1] == "queued");
    CHECK(s.rows[0][3] == "environment");
  }
}

TEST_CASE("is_environment_fault: files, folders, I/O errno and EnvironmentFault; nothing else") {
  using nas::worker::is_environment_fault;
  CHECK(is_environment_fault(nas::FileError("write", "x", "read-only file system")));
  CHECK(is_environment_fault(std::filesystem::filesystem_error("mkdir", std::make_error_code(std::errc::read_only_file_system))));
  CHECK(is_environment_fault(std::system_error(ENOSPC, std::generic_category())));
  CHECK(is_environment_fault(nas::worker::EnvironmentFault("device lost")));
  CHECK_FALSE(is_environment_fault(std::system_error(EINVAL, std::generic_category())));
  CHECK_FALSE(is_environment_fault(std::runtime_error("No space left in the network's head")));
  CHECK_FALSE(is_environment_fault(nas::worker::TrialFailed("diverged", "NaN", false)));
  CHECK_FALSE(is_environment_fault(nas::UsageError("bad")));
}
