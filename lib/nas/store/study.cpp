// study: the study row and trial insertion
#include "nas/store/study.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

namespace nas::store {

static StudyRecord read_row(Statement& q) {
  StudyRecord s;
  s.name = q.text(0);
  s.config_toml = q.text(1);
  s.config_path = q.text(2);
  s.config_hash = q.text(3);
  s.seed = uint64_t(q.int64(4));
  s.family = q.text(5);
  s.created_at = q.real(6);
  s.minnow_version = q.text(7);
  return s;
}

static const char* kSelectStudy =
    "SELECT name, config_toml, config_path, config_hash, seed, family, created_at, minnow_version FROM study WHERE id = 1";

std::optional<StudyRecord> load_study(Db& db) {
  auto q = db.prepare(kSelectStudy);
  if (!q.step()) return std::nullopt;
  return read_row(q);
}

void save_data_probe(Db& db, const config::DataProbe& probe) {
  db.write([&] {
    for (auto [split, p] : {std::pair{"train", &probe.train}, std::pair{"test", &probe.test}}) {
      auto ins = db.prepare(
          "INSERT OR REPLACE INTO data_probe (split, files, shape, classes, samples, probed_at) VALUES (?, ?, ?, ?, ?, ?)");
      ins.bind(1, split).bind(2, nlohmann::json(p->files).dump()).bind(3, nlohmann::json(p->shape).dump());
      ins.bind(4, p->classes).bind(5, p->samples).bind(6, now_unix());
      ins.step();
    }
  });
}

std::optional<config::DataProbe> load_data_probe(Db& db) {
  config::DataProbe out;
  int found = 0;
  auto q = db.prepare("SELECT split, files, shape, classes, samples FROM data_probe");
  while (q.step()) {
    config::SplitProbe& p = q.text(0) == "train" ? out.train : out.test;
    p.files = nlohmann::json::parse(q.text(1)).get<std::vector<std::string>>();
    p.shape = nlohmann::json::parse(q.text(2)).get<std::vector<int64_t>>();
    p.classes = q.int64(3);
    p.samples = q.int64(4);
    ++found;
  }
  if (found != 2) return std::nullopt;
  return out;
}

StudyRecord create_study(Db& db, const StudyRecord& s) {
  StudyRecord out;
  db.write([&] {
    auto ins = db.prepare(
        "INSERT INTO study (id, name, config_toml, config_path, config_hash, seed, family, created_at, minnow_version)"
        " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
    ins.bind(1, s.name).bind(2, s.config_toml).bind(3, s.config_path).bind(4, s.config_hash);
    ins.bind(5, int64_t(s.seed)).bind(6, s.family).bind(7, now_unix()).bind(8, s.minnow_version);
    ins.run();
    if (db.changes() == 1)
      log_event(db, "create", std::nullopt, std::nullopt, "", "",
                nlohmann::json{{"name", s.name}, {"config_hash", s.config_hash}}.dump());
    auto q = db.prepare(kSelectStudy);
    q.step();
    out = read_row(q);
  });
  return out;
}

void replace_config(Db& db, const StudyRecord& s) {
  db.write([&] {
    auto old = db.prepare("SELECT config_hash FROM study WHERE id = 1");
    std::string old_hash = old.step() ? old.text(0) : "";
    auto up = db.prepare("UPDATE study SET name = ?, config_toml = ?, config_path = ?, config_hash = ?, seed = ? WHERE id = 1");
    up.bind(1, s.name).bind(2, s.config_toml).bind(3, s.config_path).bind(4, s.config_hash).bind(5, int64_t(s.seed)).run();
    log_event(db, "config", std::nullopt, std::nullopt, "", "",
              nlohmann::json{{"old_hash", old_hash}, {"new_hash", s.config_hash}, {"path", s.config_path}}.dump());
  });
}

int64_t next_sample_batch(Db& db) {
  int64_t batch = 0;
  db.write([&] {
    auto q = db.prepare("UPDATE study SET sample_batches = sample_batches + 1 WHERE id = 1 RETURNING sample_batches - 1");
    if (q.step()) batch = q.int64(0);
    q.run();
  });
  return batch;
}

std::vector<Inserted> insert_trials(Db& db, const std::vector<NewTrial>& trials, const std::string& event_kind) {
  std::vector<Inserted> out;
  db.write([&] {
    out.clear();
    double now = now_unix();
    auto ins = db.prepare(
        "INSERT INTO trial (genome, hash, arch, origin, parents, state, reason, params, macs, peak_act_bytes,"
        " weight_bytes, created_at, updated_at, hparams, budget, island) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (hash) DO NOTHING");
    auto find = db.prepare("SELECT id FROM trial WHERE hash = ?");
    for (const auto& t : trials) {
      ins.reset();
      ins.bind(1, t.genome).bind(2, t.hash).bind(3, t.arch).bind(4, t.origin);
      if (t.parents.empty()) ins.bind_null(5); else ins.bind(5, t.parents);
      ins.bind(6, to_string(t.state));
      if (t.reason.empty()) ins.bind_null(7); else ins.bind(7, t.reason);
      ins.bind(8, t.params).bind(9, t.macs).bind(10, t.peak_act_bytes).bind(11, t.weight_bytes);
      ins.bind(12, now).bind(13, now);
      if (t.hparams.empty()) ins.bind_null(14); else ins.bind(14, t.hparams);
      if (t.budget) ins.bind(15, *t.budget); else ins.bind_null(15);
      ins.bind(16, t.island);
      ins.run();
      Inserted r;
      if (db.changes() == 1) {
        r.id = db.last_insert_id();
        nlohmann::json detail = {{"origin", t.origin}};
        if (!t.reason.empty()) detail["reason"] = t.reason;
        log_event(db, event_kind, r.id, std::nullopt, "", to_string(t.state), detail.dump());
      } else {
        find.reset();
        find.bind(1, t.hash);
        find.step();
        r.id = find.int64(0);
        r.duplicate = true;
      }
      out.push_back(r);
    }
  });
  return out;
}

} // namespace nas::store
