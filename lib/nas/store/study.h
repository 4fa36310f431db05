// study: the study row (configuration, seed) and inserting candidate trials
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

struct StudyRecord {
  std::string name;
  std::string config_toml;      // as given
  std::string config_path;      // absolute path it came from
  std::string config_hash;      // of the parsed configuration
  uint64_t seed = 0;
  std::string family;
  double created_at = 0;
  std::string minnow_version;
};

// The study of the file, or nullopt for a file without one yet.
std::optional<StudyRecord> load_study(Db& db);

// Creates the study row unless one exists (another process may have created it a moment
// before). Returns the study now in the file.
StudyRecord create_study(Db& db, const StudyRecord& s);

// Replaces the stored configuration (logs a 'config' event with the old and new hashes).
void replace_config(Db& db, const StudyRecord& s);

// Records what probing the data found when the study was created (replacing an earlier
// record), in one write transaction.
void save_data_probe(Db& db, const config::DataProbe& probe);

// What probing the data found when the study was created, or nullopt for a file whose study
// predates the record (schema version 4 or older) or has no study. Reads only the study file.
std::optional<config::DataProbe> load_data_probe(Db& db);

// Reserves the next sampling batch number: each nas-sample run draws from its own stream.
int64_t next_sample_batch(Db& db);

// A candidate to insert.
struct NewTrial {
  std::string genome;           // canonical JSON
  std::string hash;             // its sha256
  std::string arch;             // summary
  std::string origin = "sample";
  std::string parents;          // JSON array or ""
  std::optional<int64_t> island; // the island of a bred child
  TrialState state = TrialState::sampled;  // sampled, queued or pruned
  std::string reason;           // for pruned
  std::string hparams;          // training hyperparameters (JSON) or ""
  std::optional<double> budget; // queued: epochs to train to (none: [train] epochs)
  int64_t params = 0, macs = 0, peak_act_bytes = 0, weight_bytes = 0;
};

struct Inserted {
  int64_t id = 0;               // the new trial, or the existing one with the same hash
  bool duplicate = false;
};

// Inserts the candidates in one write transaction; a candidate whose hash the study already
// has is not inserted (the unique index decides, across processes) and is reported as a
// duplicate with the existing id. Logs one event per inserted trial (kind `event_kind`).
std::vector<Inserted> insert_trials(Db& db, const std::vector<NewTrial>& trials, const std::string& event_kind);

} // namespace nas::store
