// inspect: status tables, the per-trial export, and the integrity checks of nas-db
#include "nas/store/inspect.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/schema.h"

#include <sqlite3.h>

#include <cerrno>
#include <climits>
#include <map>
#include <set>
#include <csignal>
#include <unistd.h>

namespace nas::store {

// Rows of any query as a Table with typed cells.
static Table query_table(Db& db, const std::string& sql) {
  auto q = db.prepare(sql);
  std::vector<std::string> cols;
  for (int i = 0; i < q.column_count(); ++i) cols.push_back(q.column_name(i));
  Table t(cols);
  while (q.step()) {
    std::vector<nlohmann::json> row;
    for (int i = 0; i < q.column_count(); ++i) {
      switch (q.column_type(i)) {
      case SQLITE_INTEGER: row.push_back(q.int64(i)); break;
      case SQLITE_FLOAT: row.push_back(q.real(i)); break;
      case SQLITE_NULL: row.push_back(nullptr); break;
      default: row.push_back(q.text(i));
      }
    }
    t.add(std::move(row));
  }
  return t;
}

Table state_counts(Db& db) { return query_table(db, "SELECT state, rung, trials FROM v_states"); }

Table workers(Db& db, bool all) {
  return query_table(db, std::string("SELECT id, host, pid, slurm_job_id, device, heartbeat, running FROM v_workers") +
                             (all ? "" : " WHERE stopped IS NULL") + " ORDER BY id");
}

Table recent_events(Db& db, int n) {
  auto q = query_table(db, "SELECT id, at, kind, trial_id, worker_id, from_state, to_state FROM v_events ORDER BY id DESC LIMIT " +
                               std::to_string(std::max(0, n)));
  return q;
}

Table export_trials(Db& db) {
  // Metric columns: every result metric, proxy and measurement present in the file.
  std::vector<std::string> metrics, proxies, measures;
  for (auto q = db.prepare("SELECT DISTINCT metric FROM result ORDER BY metric"); q.step();) metrics.push_back(q.text(0));
  for (auto q = db.prepare("SELECT DISTINCT proxy FROM proxy_score ORDER BY proxy"); q.step();) proxies.push_back(q.text(0));
  for (auto q = db.prepare("SELECT DISTINCT backend || ':' || device || ':' || metric FROM measurement ORDER BY 1"); q.step();)
    measures.push_back(q.text(0));
  std::vector<std::string> cols = {"id", "state", "rung", "budget", "origin", "arch", "params", "macs",
                                   "peak_act_bytes", "weight_bytes", "attempts", "reason"};
  size_t fixed = cols.size();
  for (const auto& m : metrics) cols.push_back(m);
  for (const auto& p : proxies) cols.push_back("proxy_" + p);
  for (const auto& m : measures) cols.push_back(m);
  cols.push_back("genome");
  Table t(cols);
  std::map<std::string, size_t> index;
  for (size_t i = fixed; i < cols.size(); ++i) index[cols[i]] = i;

  std::map<int64_t, std::vector<nlohmann::json>> rows;
  std::vector<int64_t> order;
  auto q = db.prepare("SELECT id, state, rung, budget, origin, arch, params, macs, peak_act_bytes, weight_bytes, attempts,"
                      " reason, genome FROM trial ORDER BY id");
  while (q.step()) {
    std::vector<nlohmann::json> r(cols.size(), nullptr);
    r[0] = q.int64(0);
    r[1] = q.text(1);
    r[2] = q.int64(2);
    if (auto b = q.opt_real(3)) r[3] = *b;
    r[4] = q.text(4);
    r[5] = q.text(5);
    for (int i = 6; i <= 10; ++i) if (auto v = q.opt_int64(i)) r[size_t(i)] = *v;
    if (auto v = q.opt_text(11)) r[11] = *v;
    r[cols.size() - 1] = q.text(12);
    order.push_back(q.int64(0));
    rows[q.int64(0)] = std::move(r);
  }
  // Results at each trial's highest rung that has the metric.
  auto res = db.prepare("SELECT trial_id, metric, value FROM result r WHERE rung = (SELECT max(rung) FROM result r2"
                        " WHERE r2.trial_id = r.trial_id AND r2.metric = r.metric)");
  while (res.step())
    if (auto v = res.opt_real(2)) rows[res.int64(0)][index[res.text(1)]] = *v;
  auto px = db.prepare("SELECT trial_id, proxy, value FROM proxy_score");
  while (px.step())
    if (auto v = px.opt_real(2)) rows[px.int64(0)][index["proxy_" + px.text(1)]] = *v;
  auto me = db.prepare("SELECT trial_id, backend || ':' || device || ':' || metric, value FROM measurement");
  while (me.step())
    if (auto v = me.opt_real(2)) rows[me.int64(0)][index[me.text(1)]] = *v;
  for (int64_t id : order) t.add(std::move(rows[id]));
  return t;
}

namespace {

std::string this_host() {
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !*host) return "localhost";
  return host;
}

CheckItem check_leases(Db& db) {
  std::set<int64_t> ids;
  auto q = db.prepare("SELECT t.id FROM trial t LEFT JOIN worker w ON w.id = t.lease_owner"
                      " WHERE t.state = 'running' AND (t.lease_expires < ? OR w.stopped_at IS NOT NULL)");
  q.bind(1, now_unix());
  while (q.step()) ids.insert(q.int64(0));
  for (int64_t id : trials_of_dead_local_workers(db)) ids.insert(id);
  if (ids.empty()) return {"leases", true, "no orphaned leases"};
  std::vector<std::string> list;
  for (int64_t id : ids) list.push_back(std::to_string(id));
  return {"leases", false, std::to_string(ids.size()) + " orphaned (trials " + join(list, ",") +
                               "): run 'nas-db check --repair'"};
}

} // namespace

std::vector<int64_t> trials_of_dead_local_workers(Db& db) {
  std::vector<int64_t> out;
  auto q = db.prepare("SELECT t.id, w.pid FROM trial t JOIN worker w ON w.id = t.lease_owner"
                      " WHERE t.state = 'running' AND w.host = ?1 AND w.stopped_at IS NULL");
  q.bind(1, this_host());
  while (q.step()) {
    const pid_t pid = pid_t(q.int64(1));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) out.push_back(q.int64(0));
  }
  return out;
}

int expire_dead_local_leases(Db& db) {
  int n = 0;
  db.write([&] {
    n = 0;
    for (int64_t id : trials_of_dead_local_workers(db)) {
      auto u = db.prepare("UPDATE trial SET lease_expires = 0 WHERE id = ?1 AND state = 'running'");
      u.bind(1, id);
      u.run();
      ++n;
    }
  });
  return n;
}

std::vector<CheckItem> check_study(Db& db) {
  std::vector<CheckItem> out;
  {
    CheckItem c{"integrity", true, "ok"};
    std::vector<std::string> msgs;
    for (auto q = db.prepare("PRAGMA integrity_check"); q.step();) msgs.push_back(q.text(0));
    if (!(msgs.size() == 1 && msgs[0] == "ok")) { c.ok = false; c.detail = join(msgs, "; "); }
    out.push_back(c);
  }
  {
    CheckItem c{"foreign_keys", true, "ok"};
    int n = 0;
    for (auto q = db.prepare("PRAGMA foreign_key_check"); q.step();) ++n;
    if (n) { c.ok = false; c.detail = std::to_string(n) + " rows reference missing rows"; }
    out.push_back(c);
  }
  {
    auto q = db.prepare("PRAGMA user_version");
    q.step();
    int64_t v = q.int64(0);
    CheckItem c{"schema_version", v == current_schema_version(), std::to_string(v)};
    if (!c.ok) c.detail += " (this minnow writes " + std::to_string(current_schema_version()) + ")";
    out.push_back(c);
  }
  out.push_back(check_leases(db));
  {
    auto q = db.prepare("SELECT count(*) FROM trial WHERE (state = 'running') <> (lease_owner IS NOT NULL)"
                        " OR (state IN ('pruned') AND reason IS NULL)");
    q.step();
    int64_t n = q.int64(0);
    out.push_back({"states", n == 0, n == 0 ? "ok" : std::to_string(n) + " trials in an inconsistent state"});
  }
  return out;
}

} // namespace nas::store
