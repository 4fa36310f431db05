// proxies: proxy_score rows and the selection after scoring
#include "nas/store/proxies.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <cmath>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

namespace nas::store {

std::vector<int64_t> trials_to_score(Db& db, const std::vector<std::string>& proxies, bool rescore,
                                     bool every_state) {
  std::vector<int64_t> ids;
  db.read([&] {
    ids.clear();
    Statement q = db.prepare(
        std::string("SELECT t.id, (SELECT count(*) FROM proxy_score s WHERE s.trial_id = t.id AND s.proxy = ? "
                    "              AND coalesce(s.flag, '') != 'error') FROM trial t ") +
        (every_state ? "" : "WHERE t.state = 'sampled' ") + "ORDER BY t.id");
    std::map<int64_t, size_t> have;
    for (const auto& p : proxies) {
      q.reset();
      q.bind(1, p);
      while (q.step()) have[q.int64(0)] += size_t(q.int64(1));
    }
    if (proxies.empty()) {
      q.reset();
      q.bind(1, "");
      while (q.step()) have[q.int64(0)] += 0;
    }
    for (const auto& [id, n] : have)
      if (rescore || n < proxies.size()) ids.push_back(id);
  });
  return ids;
}

void record_proxy_scores(Db& db, const std::vector<ProxyRow>& rows) {
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO proxy_score (trial_id, proxy, value, flag, batch_size, wall_s, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (trial_id, proxy) DO UPDATE SET value = excluded.value, "
        "flag = excluded.flag, batch_size = excluded.batch_size, wall_s = excluded.wall_s, created_at = excluded.created_at");
    const double now = now_unix();
    for (const auto& r : rows) {
      ins.reset();
      ins.bind(1, r.trial_id).bind(2, r.proxy).bind(3, r.value);
      if (r.flag.empty()) ins.bind_null(4); else ins.bind(4, r.flag);
      if (r.batch_size > 0) ins.bind(5, r.batch_size); else ins.bind_null(5);
      ins.bind(6, r.wall_s).bind(7, now).run();
    }
  });
}

std::map<std::string, std::map<int64_t, double>> proxy_values(Db& db) {
  std::map<std::string, std::map<int64_t, double>> out;
  db.read([&] {
    out.clear();
    Statement q = db.prepare("SELECT proxy, trial_id, value FROM proxy_score");
    while (q.step())
      out[q.text(0)][q.int64(1)] = q.is_null(2) ? std::numeric_limits<double>::quiet_NaN() : q.real(2);
  });
  return out;
}

std::pair<int, int> select_trials(Db& db, const std::vector<Keep>& keep,
                                  const std::vector<std::pair<int64_t, std::string>>& prune) {
  int queued = 0, pruned = 0;
  db.write([&] {
    queued = pruned = 0;
    const double now = now_unix();
    for (const auto& k : keep) {
      nlohmann::json d{{"rung", k.rung}, {"budget", k.budget}, {"priority", k.priority}, {"by", "proxy"}};
      if (enqueue_in_tx(db, k.trial_id, k.rung, k.budget, k.priority, now, d.dump())) ++queued;
    }
    Statement pr = db.prepare(
        "UPDATE trial SET state = 'pruned', reason = ?1, updated_at = ?2 WHERE id = ?3 AND state = 'sampled'");
    for (const auto& [id, reason] : prune) {
      pr.reset();
      pr.bind(1, reason).bind(2, now).bind(3, id).run();
      if (db.changes() == 0) continue;
      log_event(db, "prune", id, std::nullopt, "sampled", "pruned", nlohmann::json{{"reason", reason}}.dump());
      ++pruned;
    }
  });
  return {queued, pruned};
}

std::vector<Candidate> load_candidates(Db& db, const std::vector<int64_t>& ids) {
  std::vector<Candidate> out;
  db.read([&] {
    out.clear();
    Statement q = db.prepare("SELECT genome, params, macs FROM trial WHERE id = ?1");
    for (int64_t id : ids) {
      q.reset();
      q.bind(1, id);
      if (q.step()) out.push_back({id, q.text(0), q.int64(1), q.int64(2)});
    }
  });
  return out;
}

std::vector<int64_t> trial_ids(Db& db, bool every_state) {
  std::vector<int64_t> ids;
  db.read([&] {
    ids.clear();
    Statement q = db.prepare(every_state ? "SELECT id FROM trial ORDER BY id"
                                         : "SELECT id FROM trial WHERE state = 'sampled' ORDER BY id");
    while (q.step()) ids.push_back(q.int64(0));
  });
  return ids;
}

std::vector<int64_t> trials_with_proxy_error(Db& db, const std::vector<std::string>& proxies) {
  std::set<int64_t> ids;
  db.read([&] {
    ids.clear();
    Statement q = db.prepare("SELECT DISTINCT trial_id FROM proxy_score WHERE flag = 'error' AND proxy = ?1");
    for (const auto& p : proxies) {
      q.reset();
      q.bind(1, p);
      while (q.step()) ids.insert(q.int64(0));
    }
  });
  return {ids.begin(), ids.end()};
}

} // namespace nas::store
