// run: what nas-measure does -- export the chosen trials' models and measure them on the local
// node or a remote platform (remote.h), recording every metric in the study file's
// `measurement` table, where nas-pareto and the search's objectives read them at once
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/core/table.h"

namespace nas::measure {

struct MeasureOptions {
  std::string db;
  // The tool's flags over the study's [measure] section (called on a copy of it).
  std::function<void(config::MeasureConfig&)> apply_flags;
  bool trials_given = false;       // `trials` was chosen (--trials, --front): measure exactly those
  std::vector<int64_t> trials;     // else: finished trials without a measurement on the target
  Format format = Format::table;
};

// The `device` column of a measurement: local -> cpu | cuda0 (no ':' inside, since metrics are
// named BACKEND:DEVICE:METRIC); mimaas/http -> the board, with -int8 or -fp32 for the model.
std::string device_name(const config::MeasureConfig& m);

// Measures the trials (see MeasureOptions); one summary row per trial. Exit 0 when every trial
// has its measurement, 1 when some failed or are still waiting on the platform.
int run_measure(const MeasureOptions& o, std::ostream& out);

// `nas-measure export`: writes the files of `kinds` (tflite, tflite-int8, onnx) for the trials
// (default: every finished trial); a file already exported is reused. One row per file.
int run_export(const MeasureOptions& o, const std::vector<std::string>& kinds, std::ostream& out);

} // namespace nas::measure
