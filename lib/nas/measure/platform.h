// platform: one remote measurement platform as the request loop (remote.cpp) sees it -- MIMaaS
// (mimaas.h) or the generic http protocol (generic.h) behind one small interface
#pragma once
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "nas/config/study_config.h"
#include "nas/measure/http.h"
#include "nas/measure/metric.h"

namespace nas::measure {

class Platform {
public:
  struct State {
    std::string status;                       // pending | processing | done | error
    std::optional<int64_t> queue_position;
    std::string error;
    Metrics metrics;                          // when done
    std::string raw;                          // the answer's JSON text
  };
  virtual ~Platform() = default;
  // Why the model cannot run on the target ("" when it can), found without spending a run.
  virtual std::string refuse(const std::string& bytes, const std::string& filename) = 0;
  // Uploads the model: spends a run; returns the request's id.
  virtual std::string submit(const std::string& bytes, const std::string& filename) = 0;
  // The id of a request the platform holds for a file of this name (an upload whose answer was lost).
  virtual std::optional<std::string> find(const std::string& filename) = 0;
  virtual State poll(const std::string& id) = 0;
  // A finished request's logs, saved under `folder`; metrics read from them (the tensor arena).
  // What was saved is added to raw["artifacts"].
  virtual Metrics artifacts(const std::string& id, bool done, const std::string& folder, nlohmann::json& raw) = 0;
};

// The platform m.backend names, at m.url (else MIMAAS_API_URL, else the public MIMaaS API),
// with the token from MIMAAS_API_TOKEN or m.token_file (mimaas; optional for http: NAS_MEASURE_TOKEN).
std::unique_ptr<Platform> open_platform(const config::MeasureConfig& m);

// The HTTP settings of m (timeouts, base URL).
HttpOptions http_options(const config::MeasureConfig& m);

// The name a model is uploaded under: its sha256, so a lost answer can be found by it.
std::string upload_name(const std::string& sha256);

} // namespace nas::measure
