// results: per-epoch metrics, results per (trial, rung), artifacts and worker energy
#include "nas/store/results.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/store/db.h"

namespace nas::store {
namespace {

std::optional<std::string> null_if_empty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

} // namespace

TrialRecord load_trial(Db& db, int64_t id) {
  TrialRecord t;
  bool found = false;
  db.read([&] {
    Statement q = db.prepare(
        "SELECT id, genome, hash, arch, state, rung, budget, hparams FROM trial WHERE id = ?1");
    q.bind(1, id);
    found = q.step();
    if (!found) return;
    t.id = q.int64(0);
    t.genome = q.text(1);
    t.hash = q.text(2);
    t.arch = q.text(3);
    t.state = trial_state_of_row(q.text(4));
    t.rung = int(q.int64(5));
    t.budget = q.opt_real(6);
    t.hparams = q.text(7);
  });
  if (!found) throw UsageError("'" + db.path() + "' has no trial " + std::to_string(id));
  return t;
}

std::string ensure_hparams(Db& db, int64_t id, const std::string& hparams_json) {
  std::string stored;
  db.write([&] {
    Statement up = db.prepare("UPDATE trial SET hparams = ?1 WHERE id = ?2 AND hparams IS NULL");
    up.bind(1, hparams_json).bind(2, id).run();
    Statement q = db.prepare("SELECT hparams FROM trial WHERE id = ?1");
    q.bind(1, id);
    stored = q.step() ? q.text(0) : hparams_json;
  });
  return stored;
}

void record_epoch(Db& db, int64_t trial_id, int64_t worker_id, int rung, int epoch,
                  const std::vector<ResultValue>& values) {
  db.write([&] {
    Statement held = db.prepare("SELECT 1 FROM trial WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
    held.bind(1, trial_id).bind(2, worker_id);
    if (!held.step())
      throw LeaseLost("trial " + std::to_string(trial_id) + " is no longer held by this worker");
    const double now = now_unix();
    Statement ins = db.prepare(
        "INSERT OR REPLACE INTO epoch_metric (trial_id, rung, epoch, metric, value, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    for (const auto& v : values) {
      ins.reset();
      ins.bind(1, trial_id).bind(2, rung).bind(3, epoch).bind(4, v.metric).bind(5, v.value).bind(6, now).run();
    }
  });
}

void record_results(Db& db, int64_t trial_id, int rung, const std::vector<ResultValue>& values) {
  db.write([&] {
    const double now = now_unix();
    Statement ins = db.prepare(
        "INSERT OR REPLACE INTO result (trial_id, rung, metric, value, unit, note, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    for (const auto& v : values) {
      ins.reset();
      ins.bind(1, trial_id).bind(2, rung).bind(3, v.metric).bind(4, v.value)
          .bind(5, null_if_empty(v.unit)).bind(6, null_if_empty(v.note)).bind(7, now).run();
    }
  });
}

void record_artifact(Db& db, int64_t trial_id, const std::string& kind, const std::string& path,
                     const std::string& sha256, int64_t bytes) {
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO artifact (trial_id, kind, path, sha256, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (trial_id, kind, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, "
        "created_at = excluded.created_at");
    ins.bind(1, trial_id).bind(2, kind).bind(3, path).bind(4, sha256).bind(5, bytes).bind(6, now_unix()).run();
  });
}

void record_worker_energy(Db& db, int64_t worker_id, double busy_s, std::optional<double> energy_j,
                          const std::string& note) {
  db.write([&] {
    Statement up = db.prepare("UPDATE worker SET busy_s = ?1, energy_j = ?2, energy_note = ?3 WHERE id = ?4");
    up.bind(1, busy_s).bind(2, energy_j).bind(3, null_if_empty(note)).bind(4, worker_id).run();
  });
}

std::string artifact_dir(const std::string& db_path) { return db_path + ".d"; }

} // namespace nas::store
