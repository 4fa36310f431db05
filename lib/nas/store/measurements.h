// measurements: what nas-measure writes to a study -- hardware measurements per trial and
// device, exported model files, and the requests it has open on remote platforms -- and the
// reads it chooses its work with
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/store/results.h"

namespace nas::store {

class Db;

// The measurements of one trial on one (backend, device), replacing earlier ones of the same
// metrics, in one transaction. `raw` (JSON text) is kept on every row: the settings and what the
// backend answered; a metric whose value is nullopt says in it why.
void record_measurements(Db& db, int64_t trial_id, const std::string& backend, const std::string& device,
                         const std::vector<ResultValue>& values, const std::string& raw);

// Whether the trial has any measurement on (backend, device).
bool has_measurement(Db& db, int64_t trial_id, const std::string& backend, const std::string& device);

// Finished trials ('done') without a measurement on (backend, device), by id.
std::vector<int64_t> unmeasured_trials(Db& db, const std::string& backend, const std::string& device);

// A trial's newest artifact of `kind` (checkpoint, tflite, tflite-int8, onnx).
struct ArtifactRow {
  std::string path;          // relative to the artifact folder unless absolute
  std::string sha256;
  int64_t bytes = 0;
};
std::optional<ArtifactRow> find_artifact(Db& db, int64_t trial_id, const std::string& kind);

// A request to a remote measurement platform (table remote_request).
struct RemoteRequest {
  int64_t id = 0;
  int64_t trial_id = 0;
  std::string backend, target, build_mode, model_sha256;
  bool quantize = false;
  std::optional<std::string> request_id;   // nullopt while the upload is unanswered
  std::string status;                      // submitting | pending | processing | done | error
  std::optional<int64_t> queue_position;
  std::string error;
};

// What a request measures: the model file and where and how it runs.
struct RequestKey {
  std::string backend, target, build_mode, model_sha256;
  bool quantize = false;
};

// The request for `key`, if the study has one.
std::optional<RemoteRequest> find_request(Db& db, const RequestKey& key);
// Records that the model of `trial_id` is about to be uploaded for `key` (status 'submitting'),
// unless a request for the key exists: returns that one then, and `created` false.
RemoteRequest begin_request(Db& db, int64_t trial_id, const RequestKey& key, bool& created);
// The platform's id for the request (status 'pending'): written before any polling.
void set_request_id(Db& db, int64_t row, const std::string& request_id);
void update_request(Db& db, int64_t row, const std::string& status, std::optional<int64_t> queue_position,
                    const std::string& error);
// Forgets a request that never reached the platform (its upload was refused or failed before
// the platform saw it), so a later run may send the model again.
void drop_request(Db& db, int64_t row);
// Requests not yet done or failed, of one backend ("" for all), by id.
std::vector<RemoteRequest> open_requests(Db& db, const std::string& backend);

} // namespace nas::store
