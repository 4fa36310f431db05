// generic: the `http` measurement backend -- a small JSON protocol that another platform serves
// through an adapter, so that measuring elsewhere needs no fork of minnow
//
// The protocol (also man/nas-measure-http.7). BASE is the URL given to nas-measure.
//
//   POST BASE/jobs          multipart/form-data, fields:
//       model    a file: the exported model (TFLite or ONNX), with its file name
//       target   the device or board to measure on ("nrf5340dk", "rpi4-cpu")
//       options  a JSON object of platform options ({"quantize": true}); "{}" when none
//       key      the idempotency key (minnow: the measurement's key, from the model's sha256,
//                the target and the options). The server must answer a key it has seen with
//                the job that key created (200 {"id": ...}) and create nothing.
//     -> 201 or 200 {"id": JOB}                  (a string or an integer)
//   GET BASE/jobs/JOB
//     -> 200 {"id": JOB, "status": "queued" | "running" | "done" | "error",
//             "message": TEXT,                   (why, when status is error)
//             "results": [{"metric": NAME, "value": NUMBER | null, "unit": TEXT}, ...]}
//                                                (when done; null: could not be measured)
//   DELETE BASE/jobs/JOB    (optional) cancels the job -> 2xx
//
// Authentication: "Authorization: Bearer TOKEN" on every call when a token is configured.
// Errors: a JSON body {"message": TEXT}; 401 or 403 bad credentials, 403 whose message says
// "no available runs" an exhausted quota, 400 a refused job, 404 an unknown job; 429 and 5xx
// are retried with backoff (Retry-After honoured). Metric names should be minnow's where they
// exist: latency_ms (ms), energy_uj (uJ per inference), power_mw (mW), rom_bytes, ram_bytes,
// arena_bytes (bytes). Because of `key`, a submission is sent again after any retryable failure.
#pragma once
#include "nas/measure/http.h"
#include "nas/measure/metric.h"

#include <nlohmann/json.hpp>

#include <string>

namespace nas::measure {

struct JobState {
  std::string id;
  std::string status;                // queued | running | done | error
  std::string message;               // the server's reason when status is error
  Metrics metrics;                   // when done: the results as the server named them
  std::string raw;                   // the answer's JSON text
  bool terminal() const { return status == "done" || status == "error"; }
};

class GenericClient {
public:
  // `token` "" sends no Authorization header; opts.auth_scheme "" means "Bearer". Throws
  // UsageError as HttpClient does.
  GenericClient(HttpOptions opts, std::string token);

  // POST /jobs: the job's id. `key` must not be empty (UsageError): it makes the call safe to
  // repeat. `options` must be a JSON object.
  std::string submit(const std::string& model_bytes, const std::string& filename, const std::string& target,
                     const nlohmann::json& options, const std::string& key) const;
  // GET /jobs/{id}: its state now (one call). ProtocolError for an unknown status, a done job
  // without results, a result without a metric name or with a value that is not a number.
  JobState get(const std::string& id) const;
  // DELETE /jobs/{id}.
  void cancel(const std::string& id) const;

private:
  HttpClient http_;
};

} // namespace nas::measure
