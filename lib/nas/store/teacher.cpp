// teacher: see teacher.h
#include "nas/store/teacher.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

namespace nas::store {
namespace {

std::optional<std::string> unless_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

} // namespace

int64_t record_teacher(Db& db, const TeacherRecord& t) {
  int64_t id = 0;
  db.write([&] {
    auto q = db.prepare(
        "INSERT INTO teacher (kind, path, sha256, arch, genome, epochs, classes, val_acc, test_acc, soft_targets,"
        " soft_targets_sha256, created_at, augment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    q.bind(1, t.kind).bind(2, t.path).bind(3, t.sha256).bind(4, unless_empty(t.arch)).bind(5, unless_empty(t.genome));
    q.bind(6, t.epochs).bind(7, t.classes).bind(8, t.val_acc).bind(9, t.test_acc);
    q.bind(10, unless_empty(t.soft_targets)).bind(11, unless_empty(t.soft_targets_sha256)).bind(12, now_unix());
    q.bind(13, unless_empty(t.augment)).run();
    id = db.last_insert_id();
    log_event(db, "teacher", std::nullopt, std::nullopt, "", "",
              nlohmann::json{{"teacher", id}, {"kind", t.kind}, {"path", t.path}, {"test_acc", t.test_acc}}.dump());
  });
  return id;
}

std::optional<TeacherRecord> current_teacher(Db& db) {
  std::optional<TeacherRecord> out;
  db.read([&] {
    out.reset();
    auto q = db.prepare("SELECT id, kind, path, sha256, arch, genome, epochs, classes, val_acc, test_acc, soft_targets,"
                        " soft_targets_sha256, created_at, augment FROM teacher ORDER BY id DESC LIMIT 1");
    if (!q.step()) return;
    TeacherRecord t;
    t.id = q.int64(0);
    t.kind = q.text(1);
    t.path = q.text(2);
    t.sha256 = q.text(3);
    t.arch = q.text(4);
    t.genome = q.text(5);
    t.epochs = q.opt_int64(6);
    t.classes = q.int64(7);
    t.val_acc = q.real(8);
    t.test_acc = q.real(9);
    t.soft_targets = q.text(10);
    t.soft_targets_sha256 = q.text(11);
    t.created_at = q.real(12);
    t.augment = q.text(13);
    out = t;
  });
  return out;
}

std::vector<RungAccuracy> rung_accuracies(Db& db) {
  std::vector<RungAccuracy> out;
  db.read([&] {
    out.clear();
    auto q = db.prepare(
        "SELECT t.id, t.hash, t.arch, e.value, a.value, d.value FROM trial t"
        " JOIN result a ON a.trial_id = t.id AND a.metric = 'val_acc'"
        " JOIN result e ON e.trial_id = t.id AND e.rung = a.rung AND e.metric = 'epochs'"
        " LEFT JOIN result d ON d.trial_id = t.id AND d.rung = a.rung AND d.metric = 'distilled'"
        " WHERE a.value IS NOT NULL AND e.value IS NOT NULL ORDER BY t.id, a.rung");
    while (q.step()) {
      RungAccuracy r;
      r.trial_id = q.int64(0);
      r.hash = q.text(1);
      r.arch = q.text(2);
      r.epochs = q.real(3);
      r.val_acc = q.real(4);
      if (auto d = q.opt_real(5)) r.distilled = *d != 0;
      out.push_back(r);
    }
  });
  return out;
}

} // namespace nas::store
