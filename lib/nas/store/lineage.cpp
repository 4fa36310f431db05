// lineage: breeding rows, island membership and migrations of the evolutionary search
#include "nas/store/lineage.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

namespace nas::store {
namespace {

// The SQL of one metric's value for trial t, and its parameters (bound from `first` on).
struct MetricSql {
  std::string expr;
  std::vector<std::string> params;
};

MetricSql metric_sql(const std::string& m, int first) {
  auto p = [&](int k) { return "?" + std::to_string(first + k); };
  for (const char* col : {"params", "macs", "peak_act_bytes", "weight_bytes"})
    if (m == col) return {"t." + m, {}};
  if (m.rfind("proxy_", 0) == 0)
    return {"(SELECT p.value FROM proxy_score p WHERE p.trial_id = t.id AND p.proxy = " + p(0) + ")", {m.substr(6)}};
  const size_t a = m.find(':'), b = a == std::string::npos ? a : m.find(':', a + 1);
  if (b != std::string::npos)
    return {"(SELECT x.value FROM measurement x WHERE x.trial_id = t.id AND x.backend = " + p(0) + " AND x.device = " +
                p(1) + " AND x.metric = " + p(2) + " ORDER BY x.id DESC LIMIT 1)",
            {m.substr(0, a), m.substr(a + 1, b - a - 1), m.substr(b + 1)}};
  // A training result at the trial's highest rung with it, else a measurement of that name.
  return {"coalesce((SELECT r.value FROM result r WHERE r.trial_id = t.id AND r.metric = " + p(0) +
              " ORDER BY r.rung DESC LIMIT 1), (SELECT x.value FROM measurement x WHERE x.trial_id = t.id"
              " AND x.metric = " + p(0) + " ORDER BY x.id DESC LIMIT 1))",
          {m}};
}

} // namespace

std::optional<int64_t> insert_bred_in_tx(Db& db, const NewTrial& child, const Breeding& b) {
  std::optional<int64_t> id;
  db.write([&] {
    id.reset();
    if (hash_taken(db, child.hash)) return;
    id = insert_trials(db, {child}, "breed").front().id;
    const double now = now_unix();
    auto q = db.prepare("INSERT INTO breeding (trial_id, strategy, island, operators, repairs, parents, seed, worker_id,"
                        " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    q.bind(1, *id).bind(2, b.strategy).bind(3, b.island).bind(4, b.operators).bind(5, b.repairs);
    q.bind(6, nlohmann::json(b.parents).dump()).bind(7, int64_t(b.seed & 0x7fffffffffffffffULL)).bind(8, b.worker_id);
    q.bind(9, now).run();
    add_member_in_tx(db, b.island, *id, now);
    if (!b.screen.empty()) log_event(db, "screen", *id, b.worker_id, "", "", b.screen);
  });
  return id;
}

std::vector<Breeding> breedings(Db& db) {
  std::vector<Breeding> out;
  db.read([&] {
    out.clear();
    auto q = db.prepare("SELECT b.trial_id, b.strategy, b.island, b.operators, b.repairs, b.parents, b.seed, b.worker_id,"
                        " (SELECT e.detail FROM event e WHERE e.trial_id = b.trial_id AND e.kind = 'screen' ORDER BY e.id"
                        " LIMIT 1) FROM breeding b ORDER BY b.trial_id");
    while (q.step()) {
      Breeding b;
      b.trial_id = q.int64(0);
      b.strategy = q.text(1);
      b.island = q.int64(2);
      b.operators = q.text(3);
      b.repairs = int(q.int64(4));
      b.parents = nlohmann::json::parse(q.text(5)).get<std::vector<int64_t>>();
      b.seed = uint64_t(q.int64(6));
      b.worker_id = q.opt_int64(7);
      if (auto screen = q.opt_text(8)) b.screen = *screen;
      out.push_back(b);
    }
  });
  return out;
}

int64_t count_breedings(Db& db) {
  int64_t n = 0;
  db.read([&] {
    auto q = db.prepare("SELECT count(*) FROM breeding");
    n = q.step() ? q.int64(0) : 0;
  });
  return n;
}

void record_breed_exhausted_in_tx(Db& db, int64_t island, uint64_t seed, std::optional<int64_t> worker_id) {
  const nlohmann::json detail = {{"island", island}, {"seed", int64_t(seed & 0x7fffffffffffffffULL)}};
  log_event(db, "breed_exhausted", std::nullopt, worker_id, "", "", detail.dump());
}

bool breed_exhausted(Db& db) {
  bool out = false;
  db.read([&] {
    auto q = db.prepare("SELECT 1 FROM event WHERE kind = 'breed_exhausted' LIMIT 1");
    out = q.step();
  });
  return out;
}

bool hash_taken(Db& db, const std::string& hash) {
  auto q = db.prepare("SELECT 1 FROM trial WHERE hash = ?1");
  q.bind(1, hash);
  return q.step();
}

std::vector<IslandMember> island_members(Db& db, int64_t island, const std::vector<std::string>& metrics) {
  std::string sql = "SELECT t.id, t.genome, t.state";
  std::vector<std::string> params;
  for (const auto& m : metrics) {
    MetricSql s = metric_sql(m, 2 + int(params.size()));
    sql += ", " + s.expr;
    params.insert(params.end(), s.params.begin(), s.params.end());
  }
  sql += " FROM island_member i JOIN trial t ON t.id = i.trial_id WHERE i.island = ?1 ORDER BY t.id";
  std::vector<IslandMember> out;
  db.read([&] {
    out.clear();
    auto q = db.prepare(sql);
    q.bind(1, island);
    for (size_t k = 0; k < params.size(); ++k) q.bind(int(k) + 2, params[k]);
    while (q.step()) {
      IslandMember m;
      m.trial_id = q.int64(0);
      m.genome = q.text(1);
      m.state = parse_trial_state(q.text(2)).value_or(TrialState::sampled);
      for (size_t k = 0; k < metrics.size(); ++k) m.values.push_back(q.opt_real(int(k) + 3));
      out.push_back(std::move(m));
    }
  });
  return out;
}

void add_member_in_tx(Db& db, int64_t island, int64_t trial_id, double now) {
  auto q = db.prepare("INSERT INTO island_member (island, trial_id, joined_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
  q.bind(1, island).bind(2, trial_id).bind(3, now).run();
}

void remove_member_in_tx(Db& db, int64_t island, int64_t trial_id) {
  auto q = db.prepare("DELETE FROM island_member WHERE island = ?1 AND trial_id = ?2");
  q.bind(1, island).bind(2, trial_id).run();
}

void record_migration_in_tx(Db& db, const Migration& m, double now) {
  auto q = db.prepare("INSERT INTO migration (trial_id, from_island, to_island, kind, replaced, worker_id, at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  q.bind(1, m.trial_id).bind(2, m.from_island).bind(3, m.to_island).bind(4, m.kind).bind(5, m.replaced);
  q.bind(6, m.worker_id).bind(7, now).run();
}

std::vector<Migration> migrations_of(Db& db) {
  std::vector<Migration> out;
  db.read([&] {
    out.clear();
    auto q = db.prepare("SELECT trial_id, from_island, to_island, kind, replaced, worker_id FROM migration ORDER BY id");
    while (q.step()) out.push_back({q.int64(0), q.int64(1), q.int64(2), q.text(3), q.opt_int64(4), q.opt_int64(5)});
  });
  return out;
}

double epochs_committed(Db& db, double default_budget) {
  double out = 0;
  db.read([&] {
    auto q = db.prepare(
        "SELECT coalesce(sum(CASE WHEN t.state IN ('queued', 'running') THEN coalesce(t.budget, ?1)"
        " ELSE coalesce((SELECT r.value FROM result r WHERE r.trial_id = t.id AND r.metric = 'epochs'"
        " ORDER BY r.rung DESC LIMIT 1), t.budget, ?1) END), 0)"
        " FROM trial t WHERE t.state IN ('queued', 'running', 'paused', 'done', 'failed')");
    q.bind(1, default_budget);
    out = q.step() ? q.real(0) : 0;
  });
  return out;
}

std::optional<double> first_claim_at(Db& db) {
  std::optional<double> out;
  db.read([&] {
    // by id, not min(at): the first claim is near the start of the log, and kind has no index
    auto q = db.prepare("SELECT at FROM event WHERE kind = 'claim' ORDER BY id LIMIT 1");
    out = q.step() ? std::optional<double>(q.real(0)) : std::nullopt;
  });
  return out;
}

int64_t island_workers(Db& db, int64_t island, int64_t islands, double lease_s, double now) {
  int64_t n = 0;
  db.read([&] {
    auto q = db.prepare("SELECT count(*) FROM worker WHERE stopped_at IS NULL AND heartbeat_at > ?1 AND id % ?2 = ?3");
    q.bind(1, now - lease_s).bind(2, islands).bind(3, island);
    n = q.step() ? q.int64(0) : 0;
  });
  return n;
}

} // namespace nas::store
