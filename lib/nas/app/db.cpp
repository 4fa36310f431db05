// db: nas-db's work over the store's inspection functions
#include "nas/app/db.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/inspect.h"
#include "nas/store/queue.h"
#include "nas/store/study.h"
#include "nas/train/policy.h"

#include <algorithm>
#include <filesystem>

namespace nas::app {

store::Db open_study_file(const std::string& path, bool write) {
  if (!std::filesystem::exists(path)) throw UsageError("cannot open '" + path + "': no such file");
  return store::Db::open(path, write ? store::OpenMode::existing : store::OpenMode::read_only);
}

namespace {

nlohmann::json table_json(const Table& t) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : t.rows()) {
    nlohmann::json o;
    for (size_t i = 0; i < t.columns().size(); ++i) o[t.columns()[i]] = r[i];
    arr.push_back(o);
  }
  return arr;
}

} // namespace

int run_db_status(const DbOptions& o, std::ostream& out) {
  Format f = parse_format(o.format);
  store::Db db = open_study_file(o.db, false);
  auto study = store::load_study(db);
  if (!study) throw Error("'" + o.db + "' holds no study");
  Table states = store::state_counts(db);
  Table workers = store::workers(db, o.all_workers);
  Table events = store::recent_events(db, o.events);
  int64_t total = 0;
  for (const auto& r : states.rows()) total += r[2].get<int64_t>();
  if (f == Format::json) {
    nlohmann::json j = {{"study", study->name}, {"family", study->family}, {"seed", study->seed},
                        {"created", iso_time(study->created_at)}, {"trials", total},
                        {"journal_mode", db.journal_mode()}, {"states", table_json(states)},
                        {"workers", table_json(workers)}, {"events", table_json(events)}};
    out << j.dump(2) << "\n";
    return 0;
  }
  if (f != Format::table) {  // tsv/csv: the state counts only, for scripts
    states.write(out, f);
    return 0;
  }
  out << "study  " << study->name << " (" << study->family << ", seed " << study->seed << ", created "
      << iso_time(study->created_at) << ")\n";
  out << "file   " << o.db << " (journal " << db.journal_mode() << ")\n";
  out << "trials " << total << "\n\n";
  states.write(out, f);
  out << "\nworkers (" << workers.size() << (o.all_workers ? "" : " active") << ")\n";
  if (workers.size()) workers.write(out, f);
  out << "\nlast events\n";
  events.write(out, f);
  return 0;
}

int run_db_count(const DbOptions& o, std::ostream& out) {
  static const std::vector<std::string> known = {"sampled", "queued", "running", "paused", "done", "failed", "pruned"};
  for (const auto& st : o.states)
    if (std::find(known.begin(), known.end(), st) == known.end())
      throw UsageError("--state: unknown state '" + st + "'" + suggestion_suffix(st, known) + " (expected one of " +
                       quoted_list(known) + ")");
  store::Db db = open_study_file(o.db, false);
  int64_t n = 0;
  if (o.claimable) {
    auto study = store::load_study(db);
    if (!study) throw Error("'" + o.db + "' holds no study");
    const auto cfg = config::parse_study_config(study->config_toml, study->config_path);
    out << store::count_claimable(db, train::queue_policy(cfg)) << "\n";
    return 0;
  }
  db.read([&] {
    n = 0;
    if (o.states.empty()) {
      store::Statement q = db.prepare("SELECT count(*) FROM trial");
      if (q.step()) n = q.int64(0);
      return;
    }
    store::Statement q = db.prepare("SELECT count(*) FROM trial WHERE state = ?");
    for (const auto& st : o.states) {
      q.reset();
      q.bind(1, st);
      if (q.step()) n += q.int64(0);
    }
  });
  out << n << "\n";
  return 0;
}

int run_db_export(const DbOptions& o, std::ostream& out) {
  Format f = parse_format(o.format);
  store::Db db = open_study_file(o.db, false);
  store::export_trials(db).write(out, f);
  return 0;
}

int run_db_check(const DbOptions& o, std::ostream& out) {
  Format f = parse_format(o.format);
  store::Db db = open_study_file(o.db, o.repair);
  if (o.repair) {
    store::QueuePolicy policy;   // the study's [train] max_attempts when its config reads
    if (auto study = store::load_study(db)) {
      try {
        policy = train::queue_policy(config::parse_study_config(study->config_toml, study->config_path));
      } catch (const std::exception& e) {
        log::warning("the study's config does not read (" + std::string(e.what()) + "): default max_attempts");
      }
    }
    int n = store::reclaim_expired(db, policy);
    log::info("reclaimed " + std::to_string(n) + " expired leases");
  }
  auto items = store::check_study(db);
  Table t({"check", "status", "detail"});
  bool ok = true;
  for (const auto& c : items) {
    t.add({c.check, c.ok ? "ok" : "problem", c.detail});
    ok = ok && c.ok;
  }
  t.write(out, f);
  return ok ? 0 : 1;
}

} // namespace nas::app
