// remote: the loop over a remote platform's requests (submit bounded, poll with backoff, record),
// resumable from the study file's remote_request rows; platform.cpp adapts MIMaaS and the
// generic protocol to it
#include "nas/measure/remote.h"

#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/sha256.h"
#include "nas/core/signals.h"
#include "nas/core/text.h"
#include "nas/measure/errors.h"
#include "nas/measure/mimaas.h"
#include "nas/measure/platform.h"
#include "nas/measure/run.h"
#include "nas/measure/trained.h"
#include "nas/store/db.h"
#include "nas/store/measurements.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <thread>

namespace fs = std::filesystem;

namespace nas::measure {
namespace {

using Clock = std::chrono::steady_clock;

// One request being polled.
struct Open {
  store::RemoteRequest row;
  std::string folder;             // the trial's artifact folder for downloaded logs
  Clock::time_point next = Clock::now();
  int polls = 0;
};

// A trial's model waiting to be submitted.
struct Pending {
  int64_t trial = 0;
  ExportedFile file;
};

class Loop {
public:
  Loop(store::Db& db, TrainedTrials& models, const config::MeasureConfig& m, Platform& p)
      : db_(db), models_(models), m_(m), p_(p), device_(device_name(m)),
        table_({"trial", "target", "request", "status", "latency_ms", "rom_bytes", "arena_bytes", "energy_uj", "note"}) {}

  int run(const std::vector<int64_t>& ids, Format format, std::ostream& out);

private:
  store::RequestKey key_of(const ExportedFile& f) const {
    return {m_.backend, m_.board, m_.build_mode, f.sha256, m_.quantize};
  }
  std::string folder_of(int64_t trial) const;
  void plan(const std::vector<int64_t>& ids);
  void resume(store::RemoteRequest r);
  bool submit_one();
  void poll(Open& o);
  void finish(Open& o, const Platform::State& s);
  void row(int64_t trial, const std::string& request, const std::string& status, const Metrics& metrics,
           const std::string& note);

  store::Db& db_;
  TrainedTrials& models_;
  const config::MeasureConfig& m_;
  Platform& p_;
  std::string device_;
  std::deque<Pending> pending_;
  std::vector<Open> open_;
  Table table_;
  bool quota_ = false;            // the account has no runs left: submit nothing more
  bool unreachable_ = false;      // the platform did not answer a submission
  int failed_ = 0;
};

std::string Loop::folder_of(int64_t trial) const {
  return (fs::path(store::artifact_dir(db_.path())) / "measurements" / ("trial-" + std::to_string(trial))).string();
}

// Exports each trial's model once and sorts it: measured already, open at the platform (resumed
// below), refused or failed earlier (reported), or to submit.
void Loop::plan(const std::vector<int64_t>& ids) {
  const std::string kind = m_.quantize ? "tflite-int8" : "tflite";
  for (int64_t id : ids) {
    ExportedFile f = models_.export_model(id, kind);
    auto r = store::find_request(db_, key_of(f));
    if (!r) {
      pending_.push_back({id, f});
    } else if (r->status == "error") {
      ++failed_;
      row(id, r->request_id.value_or(""), "error", {}, r->error);
    } else if (r->status == "done" && store::has_measurement(db_, id, m_.backend, device_)) {
      row(id, r->request_id.value_or(""), "done", {}, "measured earlier");
    }
    // open (or done without rows, after a crash between the two): resumed from open_requests
    // below, or polled again for its result
    else if (r->status == "done") {
      r->status = "processing";
      resume(*r);
    }
  }
  for (auto& r : store::open_requests(db_, m_.backend))
    if (r.target == m_.board && r.quantize == m_.quantize && r.build_mode == m_.build_mode) resume(r);
}

// An open request from the study file: polled; one whose upload was never answered is looked up
// on the platform by its file name first (so a lost answer never makes us pay twice).
void Loop::resume(store::RemoteRequest r) {
  if (std::any_of(open_.begin(), open_.end(), [&](const Open& o) { return o.row.id == r.id; })) return;
  if (!r.request_id) {
    std::optional<std::string> found = p_.find(upload_name(r.model_sha256));
    if (!found) {
      // it never arrived: forget the row and submit the model again
      store::drop_request(db_, r.id);
      ExportedFile f = models_.export_model(r.trial_id, r.quantize ? "tflite-int8" : "tflite");
      pending_.push_front({r.trial_id, f});
      return;
    }
    store::set_request_id(db_, r.id, *found);
    r.request_id = found;
    log::info("trial " + std::to_string(r.trial_id) + ": found request " + *found + " on the platform, sent before a stop");
  }
  open_.push_back({r, folder_of(r.trial_id)});
}

// Submits the next pending model unless the platform refuses it beforehand (it cannot fit the
// board, or validation fails): then it is recorded as an error and costs no run.
bool Loop::submit_one() {
  Pending next = pending_.front();
  pending_.pop_front();
  // Read again here, not kept from the export: the key below names these bytes, so they are
  // checked against the hash the export recorded (a file replaced since would be paid for under
  // another model's key); a mismatch leaves this trial out and the other requests go on.
  const std::string bytes = read_file(next.file.abs_path);
  if (sha256_hex(bytes) != next.file.sha256) {
    const std::string why = "'" + next.file.abs_path + "' changed since it was exported (its sha256 differs from the "
                            "study file's): run nas-measure again to export it anew";
    log::warning("trial " + std::to_string(next.trial) + ": " + why);
    ++failed_;
    row(next.trial, "", "error", {}, why);
    return true;
  }
  const std::string name = upload_name(next.file.sha256);
  bool created = false;
  store::RemoteRequest r = store::begin_request(db_, next.trial, key_of(next.file), created);
  if (!created) {
    resume(r);
    return true;
  }
  if (std::string why = p_.refuse(bytes, name); !why.empty()) {
    store::update_request(db_, r.id, "error", std::nullopt, "refused before submitting: " + why);
    ++failed_;
    row(next.trial, "", "refused", {}, why);
    return true;
  }
  try {
    const std::string id = p_.submit(bytes, name);
    store::set_request_id(db_, r.id, id);
    r.request_id = id;
    r.status = "pending";
    open_.push_back({r, folder_of(next.trial)});
    log::info("trial " + std::to_string(next.trial) + ": submitted as request " + id + " (" + m_.board + ")");
  } catch (const QuotaExhausted& e) {
    store::drop_request(db_, r.id);
    pending_.push_front(next);
    quota_ = true;
    log::error(std::string("the account has no runs left; nothing more is submitted: ") + e.what());
  } catch (const Unreachable& e) {
    unreachable_ = true;      // the row stays 'submitting': the next run asks the platform first
    log::error(std::string("submitting trial ") + std::to_string(next.trial) + ": " + e.what());
  } catch (const AuthError&) {
    store::drop_request(db_, r.id);
    throw;
  } catch (const HttpError& e) {
    if (e.service_fault()) {  // retried already, the platform is failing: ask it again next run
      unreachable_ = true;
      log::error(std::string("submitting trial ") + std::to_string(next.trial) + ": " + e.what());
    } else {                  // the platform refused this model
      store::update_request(db_, r.id, "error", std::nullopt, e.what());
      ++failed_;
      row(next.trial, "", "error", {}, e.what());
    }
  }
  return true;
}

void Loop::poll(Open& o) {
  try {
    Platform::State s = p_.poll(*o.row.request_id);
    ++o.polls;
    if (s.status == "done" || s.status == "error") return finish(o, s);
    if (s.status != o.row.status || s.queue_position != o.row.queue_position) {
      store::update_request(db_, o.row.id, s.status, s.queue_position, "");
      o.row.status = s.status;
      o.row.queue_position = s.queue_position;
      log::verbose("trial " + std::to_string(o.row.trial_id) + ": request " + *o.row.request_id + " " + s.status +
                   (s.queue_position ? ", queue position " + std::to_string(*s.queue_position) : ""));
    }
  } catch (const HttpError& e) {
    if (!e.service_fault()) throw;
    log::warning("polling request " + *o.row.request_id + ": " + e.what() + " (asking again later)");
  }
  o.next = Clock::now() + std::chrono::milliseconds(int64_t(1000 * poll_delay(o.polls, m_.poll_s)));
}

void Loop::finish(Open& o, const Platform::State& s) {
  const int64_t trial = o.row.trial_id;
  Metrics metrics = s.metrics;
  nlohmann::json raw = {{"backend", m_.backend}, {"target", m_.board}, {"request", *o.row.request_id},
                        {"quantize", m_.quantize}, {"build_mode", m_.build_mode}, {"model_sha256", o.row.model_sha256}};
  raw["answer"] = nlohmann::json::parse(s.raw, nullptr, false);
  Metrics extra = p_.artifacts(*o.row.request_id, s.status == "done", o.folder, raw);
  metrics.insert(metrics.end(), extra.begin(), extra.end());
  if (s.status == "done") {
    std::vector<store::ResultValue> values;
    for (const auto& x : metrics) values.push_back({x.name, x.value, x.unit, ""});
    store::record_measurements(db_, trial, m_.backend, device_, values, raw.dump());
    store::update_request(db_, o.row.id, "done", std::nullopt, "");
    row(trial, *o.row.request_id, "done", metrics, "");
  } else {
    store::update_request(db_, o.row.id, "error", std::nullopt, s.error);
    ++failed_;
    row(trial, *o.row.request_id, "error", {}, s.error);
    log::error("trial " + std::to_string(trial) + ": request " + *o.row.request_id + " failed on the platform: " + s.error);
  }
  o.row.status = s.status;
}

void Loop::row(int64_t trial, const std::string& request, const std::string& status, const Metrics& metrics,
               const std::string& note) {
  auto value = [&](const char* name) -> nlohmann::json {
    for (const auto& x : metrics)
      if (x.name == name && x.value) return *x.value;
    return nullptr;
  };
  table_.add({trial, m_.board, request, status, value("latency_ms"), value("rom_bytes"), value("arena_bytes"),
              value("energy_uj"), note});
}

int Loop::run(const std::vector<int64_t>& ids, Format format, std::ostream& out) {
  plan(ids);
  const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(1000 * m_.wait_s));
  while (!stop_requested()) {
    while (!quota_ && !unreachable_ && !pending_.empty() && int64_t(open_.size()) < m_.inflight) submit_one();
    open_.erase(std::remove_if(open_.begin(), open_.end(),
                               [](const Open& o) { return o.row.status == "done" || o.row.status == "error"; }),
                open_.end());
    if (open_.empty() && (pending_.empty() || quota_ || unreachable_)) break;
    if (Clock::now() >= deadline) break;
    auto soonest = std::min_element(open_.begin(), open_.end(), [](const Open& a, const Open& b) { return a.next < b.next; });
    if (soonest != open_.end()) {
      std::this_thread::sleep_until(std::min(soonest->next, deadline));
      if (Clock::now() >= soonest->next) poll(*soonest);
    }
  }
  for (const auto& o : open_)
    row(o.row.trial_id, *o.row.request_id, o.row.status, {}, "still open: 'nas-measure' again resumes it");
  for (const auto& p : pending_) row(p.trial, "", "not submitted", {}, quota_ ? "no runs left" : "the platform did not answer");
  table_.write(out, format);
  return failed_ || !open_.empty() || !pending_.empty() ? 1 : 0;
}

} // namespace

int measure_remotely(store::Db& db, TrainedTrials& models, const config::MeasureConfig& m,
                     const std::vector<int64_t>& ids, Format format, std::ostream& out) {
  std::unique_ptr<Platform> p = open_platform(m);
  return Loop(db, models, m, *p).run(ids, format, out);
}

} // namespace nas::measure
