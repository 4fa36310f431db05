// remote: measuring on a remote platform -- MIMaaS (TFLite models on microcontroller boards) or
// any service speaking the generic http protocol (generic.h). Each model is uploaded once: the
// study file records the request before the upload and its id before any polling, so a killed
// nas-measure resumes its open requests instead of paying for a run twice. Several requests are
// in flight at once (bounded); every HTTP call has a timeout and transient failures are retried.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/core/table.h"

namespace nas::store {
class Db;
}

namespace nas::measure {

class TrainedTrials;

// Exports (int8 or float32 TFLite, as m.quantize says), checks that each model can fit the board,
// validates it, submits it, polls every open request of the study for this backend and target,
// and records the results. Exit 0 when every chosen trial has its measurement, 1 otherwise.
int measure_remotely(store::Db& db, TrainedTrials& models, const config::MeasureConfig& m,
                     const std::vector<int64_t>& ids, Format format, std::ostream& out);

// `nas-measure boards`: the platform's boards with their memory, utilisation and queue.
int run_boards(const config::MeasureConfig& m, Format format, std::ostream& out);

// `nas-measure status`: the study's open requests, each asked once for its state and queue
// position; and the account's runs left (MIMaaS).
int run_status(const std::string& db_path, const config::MeasureConfig& m, Format format, std::ostream& out);

// `nas-measure login`: asks for the password on the terminal (never argv), logs in and saves the
// token to m.token_file (or ~/.mimaas/token), mode 0600.
int run_login(const config::MeasureConfig& m, const std::string& username, std::ostream& out);

} // namespace nas::measure
