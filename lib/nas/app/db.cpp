// db: nas-db's work over the store's inspection functions
#include "nas/app/db.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/inspect.h"
#include "nas/store/open.h"
#include "nas/store/queue.h"
#include "nas/store/study.h"
#include "nas/store/trials.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"

#include <algorithm>
#include <filesystem>

namespace nas::app {

int run_db_status(const DbOptions& o, std::ostream& out) {
  const Format f = o.format;
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
  store::Db& db = opened.db;
  const store::StudyRecord* study = &opened.study;
  Table states = store::state_counts(db);
  Table workers = store::workers(db, o.all_workers);
  Table events = store::recent_events(db, o.events);
  int64_t total = 0;
  for (const auto& r : states.rows()) total += r[2].get<int64_t>();
  if (f == Format::json) {
    nlohmann::json j = {{"study", study->name}, {"family", study->family}, {"seed", study->seed},
                        {"created", iso_time(study->created_at)}, {"trials", total},
                        {"journal_mode", db.journal_mode()}, {"states", states.to_json()},
                        {"workers", workers.to_json()}, {"events", events.to_json()}};
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

std::vector<store::TrialState> parse_states(const std::vector<std::string>& names) {
  const auto& known = store::trial_state_names();
  std::vector<store::TrialState> out;
  for (const auto& st : names) {
    const auto s = store::parse_trial_state(st);
    if (!s)
      throw UsageError("--state: unknown state '" + st + "'" + suggestion_suffix(st, known) + " (expected one of " +
                       quoted_list(known) + ")");
    out.push_back(*s);
  }
  return out;
}

int run_db_count(const DbOptions& o, std::ostream& out) {
  if (o.claimable) {
    store::OpenStudy opened = store::open_study(o.db, store::Access::read_only);
    out << search::count_claimable(opened.db, search::policy_of(opened.cfg)) << "\n";
    return 0;
  }
  store::Db db = store::open_study_file(o.db, store::Access::read_only);
  out << store::count_trials(db, o.states) << "\n";
  return 0;
}

int run_db_export(const DbOptions& o, std::ostream& out) {
  const Format f = o.format;
  store::Db db = store::open_study_file(o.db, store::Access::read_only);
  store::export_trials(db).write(out, f);
  return 0;
}

int run_db_check(const DbOptions& o, std::ostream& out) {
  const Format f = o.format;
  store::Db db = store::open_study_file(o.db, o.repair ? store::Access::read_write : store::Access::read_only);
  if (o.repair) {
    search::Policy policy;   // the study's [train] max_attempts when its config reads
    if (auto study = store::load_study(db)) {
      try {
        policy = search::policy_of(config::parse_study_config(study->config_toml, study->config_path));
      } catch (const std::exception& e) {
        log::warning("the study's config does not read (" + std::string(e.what()) + "): default max_attempts");
      }
    }
    const int dead = store::expire_dead_local_leases(db);
    int n = store::reclaim_expired(db, policy);
    log::info("reclaimed " + std::to_string(n) + " expired leases" +
              (dead ? " (" + std::to_string(dead) + " of workers on this host that are gone)" : ""));
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

int run_db_requeue(const DbOptions& o, std::ostream& out) {
  if (o.trials.empty() && o.states.empty() && o.reason.empty())
    throw UsageError("requeue: give --trial ID, --state STATE or --reason TEXT (which trials go back)");
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  store::RequeueFilter f{o.trials, o.states, o.reason};
  const auto ids = store::requeue(opened.db, f, search::first_budget(opened.cfg));
  Table t({"trial"});
  for (int64_t id : ids) t.add({id});
  t.write(out, o.format);
  log::info("put " + std::to_string(ids.size()) + (ids.size() == 1 ? " trial" : " trials") + " back in the queue");
  return 0;
}

} // namespace nas::app
