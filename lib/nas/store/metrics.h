// metrics: every per-trial number a study holds, by one name -- cost-model values, results,
// proxy scores, measurements -- for tools that rank or plot trials (nas-pareto)
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nas/store/trial_state.h"

namespace nas::store {

class Db;

struct MetricInfo {
  std::string name;     // params | val_acc | proxy_synflow | local:cpu:latency_s | ...
  std::string unit;     // count, MAC, B, score, or the unit recorded with the value ("" if none)
  std::string source;   // cost | result | proxy | measurement
  // measurements only: the qualified parts
  std::string backend, device, metric;
};

// The metrics the study holds, sorted by name. A measurement appears under its qualified name
// BACKEND:DEVICE:METRIC, and also under METRIC alone when only one backend/device has it.
std::vector<MetricInfo> available_metrics(Db& db);

// Resolves a name against available_metrics; throws UsageError naming `what` (e.g. the
// option) with a suggestion when unknown or ambiguous.
MetricInfo resolve_metric(const std::vector<MetricInfo>& metrics, const std::string& name, const std::string& what);

// The highest rung with any result, or nullopt when nothing has results.
std::optional<int> last_result_rung(Db& db);

// trial id -> value of the metric; results are taken at `rung` (required for results), without
// the trials stopped early inside that rung (kStoppedEarly).
// Trials in the states listed in `exclude_states` are left out; NULL values are left out.
std::map<int64_t, double> metric_values(Db& db, const MetricInfo& m, std::optional<int> rung,
                                        const std::vector<TrialState>& exclude_states);

// The values of `metric` that a promotion below `below_rung` may rank, keyed by (trial id, rung):
// a training result at each rung; a value that does not depend on the rung (cost model, proxy
// score, measurement: the latest row) under rung -1. `metric` is named as in a [search]
// objective (a cost-model column, a result, proxy_NAME, BACKEND:DEVICE:METRIC or a bare
// measured metric). NULL values are left out. Reads in the caller's transaction or its own.
std::map<std::pair<int64_t, int>, double> rung_metric_values(Db& db, const std::string& metric, int below_rung);

// trial id -> arch summary for the given trials.
std::map<int64_t, std::string> trial_archs(Db& db);

// trial ids in the order they last finished (a 'finish' event), then the unfinished ones by id.
std::vector<int64_t> finishing_order(Db& db, bool& any_finished);

} // namespace nas::store
