// results: what training writes to a study -- per-epoch metrics, results per (trial, rung),
// checkpoint artifacts, a worker's energy -- and what a trainer reads of a trial
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

// A trial as a trainer needs it.
struct TrialRecord {
  int64_t id = 0;
  std::string genome;        // canonical JSON
  std::string hash;
  std::string arch;
  TrialState state = TrialState::sampled;
  int rung = 0;
  std::optional<double> budget;
  std::string hparams;       // JSON or "" when none was stored
};

// The trial `id`; throws UsageError when the study has no such trial.
TrialRecord load_trial(Db& db, int64_t id);

// Stores the trial's hyperparameters unless it already has some (the first writer wins, so
// every worker trains with the same values). Returns the stored text.
std::string ensure_hparams(Db& db, int64_t id, const std::string& hparams_json);

// One number with its unit and an optional note (the device, or why the value is unknown:
// then value is nullopt).
struct ResultValue {
  std::string metric;
  std::optional<double> value;
  std::string unit;
  std::string note;
};

// The metrics of one epoch (replacing those of an earlier attempt at the same epoch), written by
// the worker holding the trial. Throws LeaseLost, writing nothing, when `worker_id` holds it no more.
void record_epoch(Db& db, int64_t trial_id, int64_t worker_id, int rung, int epoch,
                  const std::vector<ResultValue>& values);

// The results of a trial at a rung; a row already there for (trial, rung, metric) is replaced,
// so a retried write never duplicates. Call inside the transaction that finishes the trial.
void record_results(Db& db, int64_t trial_id, int rung, const std::vector<ResultValue>& values);

// Records (or updates) an artifact of a trial; `path` relative to the study's artifact folder.
void record_artifact(Db& db, int64_t trial_id, const std::string& kind, const std::string& path,
                     const std::string& sha256, int64_t bytes);

// A worker's busy seconds and device energy so far (energy nullopt with the reason in `note`).
void record_worker_energy(Db& db, int64_t worker_id, double busy_s, std::optional<double> energy_j,
                          const std::string& note);

// The study's artifact folder: PATH.d beside the study file PATH.
std::string artifact_dir(const std::string& db_path);

} // namespace nas::store
