// measurements: the measurement, artifact and remote_request tables as nas-measure uses them
#include "nas/store/measurements.h"

#include "nas/core/text.h"
#include "nas/store/db.h"

namespace nas::store {

void record_measurements(Db& db, int64_t trial_id, const std::string& backend, const std::string& device,
                         const std::vector<ResultValue>& values, const std::string& raw) {
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO measurement (trial_id, backend, device, metric, value, unit, raw, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (trial_id, backend, device, metric) DO UPDATE SET "
        "value = excluded.value, unit = excluded.unit, raw = excluded.raw, created_at = excluded.created_at");
    const double now = now_unix();
    for (const auto& v : values) {
      ins.reset();
      ins.bind(1, trial_id).bind(2, backend).bind(3, device).bind(4, v.metric).bind(5, v.value);
      if (v.unit.empty()) ins.bind_null(6); else ins.bind(6, v.unit);
      ins.bind(7, raw).bind(8, now).run();
    }
  });
}

bool has_measurement(Db& db, int64_t trial_id, const std::string& backend, const std::string& device) {
  auto q = db.prepare("SELECT 1 FROM measurement WHERE trial_id = ?1 AND backend = ?2 AND device = ?3 LIMIT 1");
  q.bind(1, trial_id).bind(2, backend).bind(3, device);
  return q.step();
}

std::vector<int64_t> unmeasured_trials(Db& db, const std::string& backend, const std::string& device) {
  auto q = db.prepare(
      "SELECT t.id FROM trial t WHERE t.state = 'done' AND NOT EXISTS (SELECT 1 FROM measurement m "
      "WHERE m.trial_id = t.id AND m.backend = ?1 AND m.device = ?2) ORDER BY t.id");
  q.bind(1, backend).bind(2, device);
  std::vector<int64_t> ids;
  while (q.step()) ids.push_back(q.int64(0));
  return ids;
}

std::optional<ArtifactRow> find_artifact(Db& db, int64_t trial_id, const std::string& kind) {
  auto q = db.prepare("SELECT path, sha256, bytes FROM artifact WHERE trial_id = ?1 AND kind = ?2 "
                      "ORDER BY created_at DESC, id DESC LIMIT 1");
  q.bind(1, trial_id).bind(2, kind);
  if (!q.step()) return std::nullopt;
  return ArtifactRow{q.text(0), q.text(1), q.int64(2)};
}

static const char* kRequestColumns =
    "id, trial_id, backend, target, build_mode, model_sha256, quantize, request_id, status, queue_position, "
    "coalesce(error, '')";

static RemoteRequest read_request(Statement& q) {
  RemoteRequest r;
  r.id = q.int64(0);
  r.trial_id = q.int64(1);
  r.backend = q.text(2);
  r.target = q.text(3);
  r.build_mode = q.text(4);
  r.model_sha256 = q.text(5);
  r.quantize = q.int64(6) != 0;
  r.request_id = q.opt_text(7);
  r.status = q.text(8);
  r.queue_position = q.opt_int64(9);
  r.error = q.text(10);
  return r;
}

std::optional<RemoteRequest> find_request(Db& db, const RequestKey& key) {
  auto q = db.prepare(std::string("SELECT ") + kRequestColumns +
                      " FROM remote_request WHERE model_sha256 = ?1 AND backend = ?2 AND target = ?3 "
                      "AND quantize = ?4 AND build_mode = ?5");
  q.bind(1, key.model_sha256).bind(2, key.backend).bind(3, key.target).bind(4, int64_t(key.quantize)).bind(5, key.build_mode);
  if (!q.step()) return std::nullopt;
  return read_request(q);
}

RemoteRequest begin_request(Db& db, int64_t trial_id, const RequestKey& key, bool& created) {
  RemoteRequest out;
  created = false;
  db.write([&] {
    if (auto r = find_request(db, key)) {
      out = *r;
      return;
    }
    const double now = now_unix();
    auto ins = db.prepare(
        "INSERT INTO remote_request (trial_id, backend, target, quantize, build_mode, model_sha256, status, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'submitting', ?7, ?7)");
    ins.bind(1, trial_id).bind(2, key.backend).bind(3, key.target).bind(4, int64_t(key.quantize))
        .bind(5, key.build_mode).bind(6, key.model_sha256).bind(7, now).run();
    out = *find_request(db, key);
    created = true;
  });
  return out;
}

void set_request_id(Db& db, int64_t row, const std::string& request_id) {
  db.write([&] {
    auto up = db.prepare("UPDATE remote_request SET request_id = ?1, status = 'pending', updated_at = ?2 WHERE id = ?3");
    up.bind(1, request_id).bind(2, now_unix()).bind(3, row).run();
  });
}

void update_request(Db& db, int64_t row, const std::string& status, std::optional<int64_t> queue_position,
                    const std::string& error) {
  db.write([&] {
    auto up = db.prepare("UPDATE remote_request SET status = ?1, queue_position = ?2, error = ?3, updated_at = ?4 "
                         "WHERE id = ?5");
    up.bind(1, status).bind(2, queue_position);
    if (error.empty()) up.bind_null(3); else up.bind(3, error);
    up.bind(4, now_unix()).bind(5, row).run();
  });
}

void drop_request(Db& db, int64_t row) {
  db.write([&] { db.prepare("DELETE FROM remote_request WHERE id = ?1").bind(1, row).run(); });
}

std::vector<RemoteRequest> open_requests(Db& db, const std::string& backend) {
  auto q = db.prepare(std::string("SELECT ") + kRequestColumns +
                      " FROM remote_request WHERE status NOT IN ('done', 'error') AND (?1 = '' OR backend = ?1) ORDER BY id");
  q.bind(1, backend);
  std::vector<RemoteRequest> out;
  while (q.step()) out.push_back(read_request(q));
  return out;
}

} // namespace nas::store
