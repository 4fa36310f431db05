// schema: the study file's tables, views and forward migrations.
//
// Times are Unix seconds (REAL, UTC); the v_* views show them as ISO-8601 text. JSON columns
// hold canonical JSON text. The schema covers the whole trial life cycle of ARCHITECTURE.md so
// that later features add columns by migration rather than redesign. Every name here is the
// word the code and the man pages use (trial, rung, budget, lease, proxy, measurement).
#include "nas/store/schema.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/store/db.h"

namespace nas::store {

static const char* kSchemaV1 = R"SQL(
CREATE TABLE study (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  name          TEXT NOT NULL,
  config_toml   TEXT NOT NULL,              -- the study TOML as given
  config_path   TEXT NOT NULL,              -- absolute path it was read from (relative data paths resolve against its folder)
  config_hash   TEXT NOT NULL,              -- sha256 of the canonical (parsed) configuration
  seed          INTEGER NOT NULL,
  family        TEXT NOT NULL,              -- search-space family: cnn | nb201
  sample_batches INTEGER NOT NULL DEFAULT 0, -- sampling runs so far; each draws from its own RNG stream
  created_at    REAL NOT NULL,
  minnow_version TEXT NOT NULL
);

CREATE TABLE worker (
  id            INTEGER PRIMARY KEY,
  host          TEXT NOT NULL,
  pid           INTEGER NOT NULL,
  slurm_job_id  TEXT,
  slurm_array_job_id TEXT,
  slurm_array_task_id TEXT,
  device        TEXT,
  started_at    REAL NOT NULL,
  heartbeat_at  REAL NOT NULL,
  stopped_at    REAL
);

CREATE TABLE trial (
  id            INTEGER PRIMARY KEY,
  genome        TEXT NOT NULL,              -- canonical JSON
  hash          TEXT NOT NULL UNIQUE,       -- sha256 of the canonical genome: duplicates are refused here
  arch          TEXT NOT NULL,              -- short human-readable summary
  origin        TEXT NOT NULL CHECK (origin IN ('sample','given','mutation','crossover')),
  parents       TEXT,                       -- JSON array of trial ids, for mutation/crossover
  island        INTEGER,
  state         TEXT NOT NULL DEFAULT 'sampled'
                CHECK (state IN ('sampled','pruned','queued','running','paused','done','failed')),
  rung          INTEGER NOT NULL DEFAULT 0,
  budget        REAL,                       -- cumulative epochs to reach at this rung
  priority      REAL NOT NULL DEFAULT 0,    -- higher is claimed first
  lease_owner   INTEGER REFERENCES worker(id),
  lease_expires REAL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  reason        TEXT,                       -- why pruned or failed
  error         TEXT,                       -- last error message
  params        INTEGER,                    -- cost model
  macs          INTEGER,
  peak_act_bytes INTEGER,
  weight_bytes  INTEGER,
  created_at    REAL NOT NULL,
  updated_at    REAL NOT NULL,
  CHECK ((state = 'running') = (lease_owner IS NOT NULL))
);
CREATE INDEX trial_claim ON trial (state, priority DESC, id);
CREATE INDEX trial_lease ON trial (state, lease_expires);

CREATE TABLE proxy_score (
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  proxy         TEXT NOT NULL,
  value         REAL,                       -- NULL when degenerate
  flag          TEXT,                       -- e.g. 'nan', 'neg_inf' for degenerate networks
  batch_size    INTEGER,
  wall_s        REAL,
  created_at    REAL NOT NULL,
  PRIMARY KEY (trial_id, proxy)
);

CREATE TABLE epoch_metric (
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  rung          INTEGER NOT NULL,
  epoch         INTEGER NOT NULL,
  metric        TEXT NOT NULL,
  value         REAL,
  created_at    REAL NOT NULL,
  PRIMARY KEY (trial_id, epoch, metric)
);

CREATE TABLE result (
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  rung          INTEGER NOT NULL,
  metric        TEXT NOT NULL,
  value         REAL,
  unit          TEXT,
  created_at    REAL NOT NULL,
  PRIMARY KEY (trial_id, rung, metric)
);

CREATE TABLE measurement (
  id            INTEGER PRIMARY KEY,
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  backend       TEXT NOT NULL,              -- local | mimaas | ...
  device        TEXT NOT NULL,              -- e.g. cpu, cuda:0, nrf5340dk
  metric        TEXT NOT NULL,              -- latency_s, ram_bytes, rom_bytes, energy_j, ...
  value         REAL,
  unit          TEXT,
  raw           TEXT,                       -- the backend's answer as JSON
  created_at    REAL NOT NULL,
  UNIQUE (trial_id, backend, device, metric)
);

CREATE TABLE artifact (
  id            INTEGER PRIMARY KEY,
  trial_id      INTEGER REFERENCES trial(id) ON DELETE CASCADE,
  kind          TEXT NOT NULL,              -- checkpoint | tflite | onnx | plot | ...
  path          TEXT NOT NULL,              -- relative to the study's artifact folder unless absolute
  sha256        TEXT NOT NULL,
  bytes         INTEGER NOT NULL,
  created_at    REAL NOT NULL,
  UNIQUE (trial_id, kind, path)
);

CREATE TABLE event (
  id            INTEGER PRIMARY KEY,
  at            REAL NOT NULL,
  kind          TEXT NOT NULL,              -- create, sample, add, enqueue, claim, release, finish, fail, reclaim, prune, config
  trial_id      INTEGER REFERENCES trial(id) ON DELETE CASCADE,
  worker_id     INTEGER REFERENCES worker(id),
  from_state    TEXT,
  to_state      TEXT,
  detail        TEXT                        -- JSON
);
CREATE INDEX event_trial ON event (trial_id);

CREATE VIEW v_trials AS
SELECT t.id, t.state, t.rung, t.budget, t.arch, t.origin,
       t.params, t.macs, t.peak_act_bytes, t.weight_bytes,
       (SELECT value FROM result r WHERE r.trial_id = t.id AND r.metric = 'val_acc'
          ORDER BY r.rung DESC LIMIT 1) AS val_acc,
       (SELECT value FROM result r WHERE r.trial_id = t.id AND r.metric = 'test_acc'
          ORDER BY r.rung DESC LIMIT 1) AS test_acc,
       t.attempts, t.reason, t.error,
       w.host || ':' || w.pid AS lease_owner,
       CASE WHEN t.lease_expires IS NULL THEN NULL
            ELSE strftime('%Y-%m-%dT%H:%M:%SZ', t.lease_expires, 'unixepoch') END AS lease_expires,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.created_at, 'unixepoch') AS created,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.updated_at, 'unixepoch') AS updated
FROM trial t LEFT JOIN worker w ON w.id = t.lease_owner;

CREATE VIEW v_states AS
SELECT state, rung, count(*) AS trials FROM trial GROUP BY state, rung ORDER BY state, rung;

CREATE VIEW v_workers AS
SELECT w.id, w.host, w.pid, w.slurm_job_id, w.slurm_array_job_id, w.slurm_array_task_id, w.device,
       strftime('%Y-%m-%dT%H:%M:%SZ', w.started_at, 'unixepoch') AS started,
       strftime('%Y-%m-%dT%H:%M:%SZ', w.heartbeat_at, 'unixepoch') AS heartbeat,
       CASE WHEN w.stopped_at IS NULL THEN NULL
            ELSE strftime('%Y-%m-%dT%H:%M:%SZ', w.stopped_at, 'unixepoch') END AS stopped,
       (SELECT count(*) FROM trial t WHERE t.lease_owner = w.id) AS running
FROM worker w;

CREATE VIEW v_events AS
SELECT e.id, strftime('%Y-%m-%dT%H:%M:%SZ', e.at, 'unixepoch') AS at, e.kind, e.trial_id,
       e.worker_id, e.from_state, e.to_state, e.detail
FROM event e;
)SQL";

// v2 (training): a trial's hyperparameters, a note on results (why a value is unknown, which
// device), the energy and busy time of a worker; v_trials shows epochs, wall time and energy.
static const char* kSchemaV2 = R"SQL(
ALTER TABLE trial ADD COLUMN hparams TEXT;  -- JSON: the training hyperparameters of this trial
ALTER TABLE result ADD COLUMN note TEXT;    -- text beside the value: the device, or why the value is unknown
ALTER TABLE worker ADD COLUMN busy_s REAL;  -- seconds its trainer spent in training steps
ALTER TABLE worker ADD COLUMN energy_j REAL; -- device energy while the worker ran (the device total when packed)
ALTER TABLE worker ADD COLUMN energy_note TEXT; -- the meter used, or why energy is unknown
DROP VIEW v_trials;
CREATE VIEW v_trials AS
SELECT t.id, t.state, t.rung, t.budget, t.arch, t.origin,
       t.params, t.macs, t.peak_act_bytes, t.weight_bytes,
       (SELECT value FROM result r WHERE r.trial_id = t.id AND r.metric = 'val_acc'
          ORDER BY r.rung DESC LIMIT 1) AS val_acc,
       (SELECT value FROM result r WHERE r.trial_id = t.id AND r.metric = 'test_acc'
          ORDER BY r.rung DESC LIMIT 1) AS test_acc,
       (SELECT value FROM result r WHERE r.trial_id = t.id AND r.metric = 'epochs'
          ORDER BY r.rung DESC LIMIT 1) AS epochs,
       (SELECT sum(value) FROM result r WHERE r.trial_id = t.id AND r.metric = 'wall_s') AS wall_s,
       (SELECT sum(value) FROM result r WHERE r.trial_id = t.id AND r.metric = 'energy_j') AS energy_j,
       t.attempts, t.reason, t.error,
       w.host || ':' || w.pid AS lease_owner,
       CASE WHEN t.lease_expires IS NULL THEN NULL
            ELSE strftime('%Y-%m-%dT%H:%M:%SZ', t.lease_expires, 'unixepoch') END AS lease_expires,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.created_at, 'unixepoch') AS created,
       strftime('%Y-%m-%dT%H:%M:%SZ', t.updated_at, 'unixepoch') AS updated,
       t.hparams
FROM trial t LEFT JOIN worker w ON w.id = t.lease_owner;
CREATE VIEW v_results AS
SELECT r.trial_id, r.rung, r.metric, r.value, r.unit, r.note,
       strftime('%Y-%m-%dT%H:%M:%SZ', r.created_at, 'unixepoch') AS created
FROM result r ORDER BY r.trial_id, r.rung, r.metric;
CREATE VIEW v_epochs AS
SELECT e.trial_id, e.rung, e.epoch,
       max(CASE WHEN e.metric = 'train_loss' THEN e.value END) AS train_loss,
       max(CASE WHEN e.metric = 'train_acc' THEN e.value END) AS train_acc,
       max(CASE WHEN e.metric = 'val_loss' THEN e.value END) AS val_loss,
       max(CASE WHEN e.metric = 'val_acc' THEN e.value END) AS val_acc,
       max(CASE WHEN e.metric = 'lr' THEN e.value END) AS lr,
       max(CASE WHEN e.metric = 'wall_s' THEN e.value END) AS wall_s,
       max(CASE WHEN e.metric = 'samples_per_s' THEN e.value END) AS samples_per_s
FROM epoch_metric e GROUP BY e.trial_id, e.rung, e.epoch ORDER BY e.trial_id, e.epoch;
)SQL";

// v3 (Slurm): the batch jobs nas-slurm submitted for the study, one row a stage.
static const char* kSchemaV3 = R"SQL(
CREATE TABLE job (
  id            INTEGER PRIMARY KEY,
  submission    INTEGER NOT NULL,           -- one `nas-slurm submit`: its stages share the number
  stage         TEXT NOT NULL,              -- proxy | train | pareto
  backend       TEXT NOT NULL,              -- slurm | local
  job_id        TEXT NOT NULL,              -- Slurm's job id (the array's), or the local process id
  array         TEXT,                       -- the array range given to sbatch, e.g. 0-7%8
  depends       TEXT,                       -- the dependency given to sbatch, e.g. afterany:1234
  script        TEXT NOT NULL,              -- the rendered script that was submitted
  submitted_at  REAL NOT NULL
);
CREATE VIEW v_jobs AS
SELECT j.submission, j.stage, j.backend, j.job_id, j.array, j.depends, j.script,
       strftime('%Y-%m-%dT%H:%M:%SZ', j.submitted_at, 'unixepoch') AS submitted
FROM job j ORDER BY j.submission, j.id;
)SQL";

// v4 (successive halving): indexes for the rankings a worker reads while it trains -- the
// promotion query (val_acc per rung in result) and early stopping (val_acc per epoch).
static const char* kSchemaV4 = R"SQL(
CREATE INDEX result_metric ON result (metric, rung, value, trial_id);
CREATE INDEX epoch_metric_epoch ON epoch_metric (metric, epoch, value, trial_id);
)SQL";

// v5 (parse without I/O): what probing the data files found when the study was created, one
// row a split. Tools take shape and classes from here instead of reading the data files; a
// worker that loads the data compares it with these rows.
static const char* kSchemaV5 = R"SQL(
CREATE TABLE data_probe (
  split         TEXT PRIMARY KEY CHECK (split IN ('train', 'test')),
  files         TEXT NOT NULL,              -- JSON array of the files probed (absolute paths; [] for synthetic data)
  shape         TEXT NOT NULL,              -- JSON [channels, height, width] of one sample
  classes       INTEGER NOT NULL,           -- max label + 1
  samples       INTEGER NOT NULL,
  probed_at     REAL NOT NULL
);
)SQL";

// v6 (evolutionary search): how each bred child was made -- strategy, island, operators,
// parents and the seed of its breeding event, enough to replay the search -- which trials each
// island holds now (its population), and the migrations between islands. trial.origin,
// trial.parents and trial.island (v1) are filled too, for the views.
static const char* kSchemaV6 = R"SQL(
CREATE TABLE breeding (
  trial_id      INTEGER PRIMARY KEY REFERENCES trial(id) ON DELETE CASCADE,
  strategy      TEXT NOT NULL,              -- evolution | nsga2
  island        INTEGER NOT NULL,
  operators     TEXT NOT NULL CHECK (operators IN ('random','crossover','mutation','crossover+mutation','copy')),
  repairs       INTEGER NOT NULL DEFAULT 0, -- further mutations that made a child already in the study new
  parents       TEXT NOT NULL,              -- JSON array of trial ids ([] for a random child)
  seed          INTEGER NOT NULL,           -- the breeding event's seed: its draws replay from it
  worker_id     INTEGER REFERENCES worker(id),
  created_at    REAL NOT NULL
);
CREATE TABLE island_member (
  island        INTEGER NOT NULL,
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  joined_at     REAL NOT NULL,
  PRIMARY KEY (island, trial_id)
);
CREATE TABLE migration (
  id            INTEGER PRIMARY KEY,
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE, -- the migrant
  from_island   INTEGER NOT NULL,
  to_island     INTEGER NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('copy','move')),
  replaced      INTEGER REFERENCES trial(id) ON DELETE SET NULL, -- the target's worst, which left it (copy)
  worker_id     INTEGER REFERENCES worker(id),
  at            REAL NOT NULL
);
CREATE VIEW v_lineage AS
SELECT b.trial_id, b.strategy, b.island, b.operators, b.repairs, b.parents, b.seed, t.arch, t.state,
       strftime('%Y-%m-%dT%H:%M:%SZ', b.created_at, 'unixepoch') AS created
FROM breeding b JOIN trial t ON t.id = b.trial_id ORDER BY b.trial_id;
)SQL";

// v7 (distillation): the study's teachers. nas-distill records one before any student uses it,
// with its accuracy and, for cached soft targets, the file of its logits and that file's sha256
// (a worker refuses a file that no longer matches). The newest row is the current teacher;
// each distilled trial names the teacher it learnt from in its results.
static const char* kSchemaV7 = R"SQL(
CREATE TABLE teacher (
  id            INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL CHECK (kind IN ('torchscript','minnow')),
  path          TEXT NOT NULL,              -- torchscript: as the config gave it; minnow: relative to the artifact folder
  sha256        TEXT NOT NULL,              -- of that file
  arch          TEXT,                       -- minnow: the network
  genome        TEXT,                       -- minnow: its genome (JSON)
  epochs        INTEGER,                    -- minnow: epochs trained
  classes       INTEGER NOT NULL,
  val_acc       REAL NOT NULL,
  test_acc      REAL NOT NULL,              -- reported only
  soft_targets  TEXT,                       -- cached logits of the training split, relative to the artifact folder
  soft_targets_sha256 TEXT,
  created_at    REAL NOT NULL
);
)SQL";

// v8 (measurement): requests to remote measurement platforms (MIMaaS, the generic http backend).
// A row is written before the file is uploaded ('submitting', keyed by what is measured: the
// model file's sha256, backend, target, quantise, build mode) and gets the platform's request id
// as soon as it answers, before any polling: a killed nas-measure resumes polling its open
// requests, and one whose upload it never saw answered is looked up on the platform by its file
// name (the sha256) instead of being sent again. Runs are a quota: never pay twice.
static const char* kSchemaV8 = R"SQL(
CREATE TABLE remote_request (
  id            INTEGER PRIMARY KEY,
  trial_id      INTEGER NOT NULL REFERENCES trial(id) ON DELETE CASCADE,
  backend       TEXT NOT NULL,              -- mimaas | http
  target        TEXT NOT NULL,              -- the board (type) or target name
  quantize      INTEGER NOT NULL,           -- 1: the int8 model
  build_mode    TEXT NOT NULL,
  model_sha256  TEXT NOT NULL,              -- of the uploaded file (its artifact row has the path)
  request_id    TEXT,                       -- the platform's id; NULL while the upload is unanswered
  status        TEXT NOT NULL CHECK (status IN ('submitting','pending','processing','done','error')),
  queue_position INTEGER,
  error         TEXT,                       -- the platform's error message, or why it was refused
  created_at    REAL NOT NULL,
  updated_at    REAL NOT NULL,
  UNIQUE (model_sha256, backend, target, quantize, build_mode)
);
CREATE INDEX remote_request_open ON remote_request (backend, status);
)SQL";

// v9 (distillation): the augmentations a minnow teacher trained with. A teacher may be trained
// with crops and flips while its students, whose soft targets are cached, see the plain images.
static const char* kSchemaV9 = R"SQL(
ALTER TABLE teacher ADD COLUMN augment TEXT;  -- minnow: the augmentations it trained with ("crop,flip"); NULL: none
)SQL";

int current_schema_version() { return int(migrations().size()); }

const std::vector<std::string>& migrations() {
  static const std::vector<std::string> steps = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5, kSchemaV6, kSchemaV7, kSchemaV8,
                                                kSchemaV9};
  return steps;
}

static int user_version(Db& db) {
  Statement s = db.prepare("PRAGMA user_version");
  return s.step() ? int(s.int64(0)) : 0;
}

static DbError newer_file(const Db& db, int version) {
  return DbError("'" + db.path() + "' has schema version " + std::to_string(version) +
                 ", newer than this minnow (" + std::to_string(current_schema_version()) +
                 "): upgrade minnow");
}

// Each step runs in its own write transaction and first re-reads the version inside it:
// several processes may open a new or old file at the same moment (16 samplers creating one
// study, say), and only the first to get the write lock may apply a step; the others find the
// version already advanced and apply nothing. A step that fails rolls back entirely, leaving
// the file at the version before it.
int migrate(Db& db) {
  const int current = current_schema_version();
  int before = 0;
  db.read([&] { before = user_version(db); });
  if (before > current) throw newer_file(db, before);
  int version = before;
  while (version < current) {
    int applied_from = -1;
    db.write([&] {
      int v = user_version(db);
      applied_from = -1;
      if (v > current) throw newer_file(db, v);
      if (v < current) {
        db.exec(migrations()[size_t(v)]);
        // A pragma takes no bound parameter; the value is our own step counter.
        db.exec("PRAGMA user_version = " + std::to_string(v + 1));
        applied_from = v;
        ++v;
      }
      version = v;
    });
    if (applied_from == 0)
      log::debug("'" + db.path() + "': created schema version 1");
    else if (applied_from > 0)
      log::verbose("'" + db.path() + "': schema migrated from version " +
                   std::to_string(applied_from) + " to " + std::to_string(applied_from + 1));
  }
  return before;
}

} // namespace nas::store
