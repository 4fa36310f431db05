// trials: counts and rows of trials by state, for planning (nas-slurm), packing (nas-train)
// and job scripts (nas-db count)
#include "nas/store/trials.h"
#include "nas/store/db.h"

namespace nas::store {
namespace {

const char* kTrialWork =
    "SELECT t.id, t.genome, t.hparams, t.budget, t.macs, "
    "       (SELECT max(e.epoch) FROM epoch_metric e WHERE e.trial_id = t.id AND e.rung = t.rung) "
    "FROM trial t ";

TrialWork trial_work_of(const Statement& q) {
  TrialWork w;
  w.id = q.int64(0);
  w.genome = q.text(1);
  w.hparams = q.opt_text(2);
  w.budget = q.opt_real(3);
  w.macs = q.int64(4);
  w.epochs_done = q.opt_int64(5).value_or(0);
  return w;
}

} // namespace

int64_t count_trials(Db& db, const std::vector<TrialState>& states) {
  int64_t n = 0;
  db.read([&] {
    n = 0;
    if (states.empty()) {
      Statement q = db.prepare("SELECT count(*) FROM trial");
      if (q.step()) n = q.int64(0);
      return;
    }
    Statement q = db.prepare("SELECT count(*) FROM trial WHERE state = ?");
    for (TrialState s : states) {
      q.reset();
      q.bind(1, to_string(s));
      if (q.step()) n += q.int64(0);
    }
  });
  return n;
}

std::vector<TrialWork> trials_in_state(Db& db, TrialState state) {
  std::vector<TrialWork> out;
  db.read([&] {
    out.clear();
    Statement q = db.prepare(std::string(kTrialWork) + "WHERE t.state = ?1 ORDER BY t.id");
    q.bind(1, to_string(state));
    while (q.step()) out.push_back(trial_work_of(q));
  });
  return out;
}

std::optional<TrialWork> largest_queued_trial(Db& db) {
  std::optional<TrialWork> out;
  db.read([&] {
    out.reset();
    Statement q = db.prepare(std::string(kTrialWork) + "WHERE t.state = 'queued' ORDER BY t.macs DESC LIMIT 1");
    if (q.step()) out = trial_work_of(q);
  });
  return out;
}

std::vector<MeasuredTrial> measured_trials(Db& db) {
  std::vector<MeasuredTrial> out;
  db.read([&] {
    out.clear();
    Statement q = db.prepare(
        "SELECT t.id, t.genome, t.hparams, t.macs, count(*), sum(e.value) FROM epoch_metric e "
        "JOIN trial t ON t.id = e.trial_id WHERE e.metric = 'wall_s' AND e.value > 0 GROUP BY t.id");
    while (q.step()) {
      MeasuredTrial m;
      m.id = q.int64(0);
      m.genome = q.text(1);
      m.hparams = q.opt_text(2);
      m.macs = q.int64(3);
      m.epochs = q.int64(4);
      m.wall_s = q.real(5);
      out.push_back(m);
    }
  });
  return out;
}

} // namespace nas::store
