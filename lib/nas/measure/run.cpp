// run: nas-measure's local path and export; the remote platforms' loop is in remote.cpp
#include "nas/measure/run.h"

#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/measure/remote.h"
#include "nas/measure/trained.h"
#include "nas/store/db.h"
#include "nas/store/measurements.h"
#include "nas/store/open.h"
#include "nas/store/queue.h"
#include "nas/store/trials.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace nas::measure {

std::string device_name(const config::MeasureConfig& m) {
  if (m.backend == "local") {
    if (m.device == "cpu") return "cpu";
    std::string d = m.device;
    d.erase(std::remove(d.begin(), d.end(), ':'), d.end());
    return d;   // cuda:0 -> cuda0
  }
  if (m.board.empty()) throw UsageError("--board: the " + m.backend + " backend measures on a board: name one (nas-measure boards)");
  return m.board + (m.quantize ? "-int8" : "-fp32");
}

namespace {

std::vector<store::ResultValue> result_values(const Metrics& metrics) {
  std::vector<store::ResultValue> out;
  for (const auto& m : metrics) out.push_back({m.name, m.value, m.unit, ""});
  return out;
}

const Metric* find_metric(const Metrics& metrics, const std::string& name) {
  for (const auto& m : metrics)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<int64_t> chosen_trials(store::Db& db, const MeasureOptions& o, const std::string& backend,
                                   const std::string& device) {
  if (o.trials_given) {
    for (int64_t id : o.trials) store::load_trial(db, id);   // UsageError for an unknown id
    return o.trials;
  }
  return store::unmeasured_trials(db, backend, device);
}

LocalOptions local_options(const config::MeasureConfig& m) {
  LocalOptions l;
  l.device = m.device;
  l.batch = m.batch;
  l.warmup = int(m.warmup);
  l.runs = int(m.runs);
  l.threads = int(m.threads);
  l.attempts = int(m.attempts);
  l.steady_ratio = m.steady_ratio;
  l.min_energy_s = m.min_energy_s;
  return l;
}

// The local meter over the trials, one at a time (the meter pins the CPUs it measures on).
int measure_locally(store::Db& db, TrainedTrials& models, const config::MeasureConfig& m,
                    const std::vector<int64_t>& ids, Format format, std::ostream& out) {
  const std::string device = device_name(m);
  Table t({"trial", "device", "latency_ms", "latency_p90_ms", "peak_mem_bytes", "energy_uj", "note"});
  int failed = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    try {
      LocalResult r = models.measure_local(id, local_options(m));
      store::record_measurements(db, id, "local", device, result_values(r.metrics), r.raw.dump());
      auto value = [&](const char* name) -> nlohmann::json {
        const Metric* x = find_metric(r.metrics, name);
        return x && x->value ? nlohmann::json(*x->value) : nlohmann::json(nullptr);
      };
      t.add({id, device, value("latency_ms"), value("latency_p90_ms"), value("peak_mem_bytes"), value("energy_uj"), ""});
      log::info("trial " + std::to_string(id) + " measured on " + device + " (" + std::to_string(i + 1) + "/" +
                std::to_string(ids.size()) + ")");
    } catch (const UsageError& e) {
      ++failed;
      t.add({id, device, nullptr, nullptr, nullptr, nullptr, e.what()});
      log::warning("trial " + std::to_string(id) + ": " + e.what());
    }
  }
  t.write(out, format);
  return failed ? 1 : 0;
}

config::MeasureConfig settings(const MeasureOptions& o, const config::StudyConfig& cfg) {
  config::MeasureConfig m = cfg.measure;
  if (o.apply_flags) o.apply_flags(m);
  return m;
}

} // namespace

int run_measure(const MeasureOptions& o, std::ostream& out) {
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  const config::MeasureConfig m = settings(o, opened.cfg);
  const std::string device = device_name(m);
  const std::vector<int64_t> ids = chosen_trials(opened.db, o, m.backend, device);
  TrainedTrials models(opened.db, o.db, opened.cfg);
  if (m.backend == "local") {
    if (ids.empty()) {
      log::info("nothing to measure: every finished trial has a measurement on local:" + device);
      return 0;
    }
    return measure_locally(opened.db, models, m, ids, o.format, out);
  }
  return measure_remotely(opened.db, models, m, ids, o.format, out);
}

int run_export(const MeasureOptions& o, const std::vector<std::string>& kinds, std::ostream& out) {
  for (const auto& k : kinds) check_export_kind(k);
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  std::vector<int64_t> ids = o.trials;
  if (!o.trials_given)
    for (const auto& w : store::trials_in_state(opened.db, store::TrialState::done)) ids.push_back(w.id);
  TrainedTrials models(opened.db, o.db, opened.cfg);
  Table t({"trial", "kind", "path", "bytes", "sha256", "reused"});
  for (int64_t id : ids)
    for (const auto& k : kinds) {
      ExportedFile f = models.export_model(id, k);
      t.add({id, f.kind, f.abs_path, f.bytes, f.sha256, f.reused});
    }
  t.write(out, o.format);
  return 0;
}

} // namespace nas::measure
