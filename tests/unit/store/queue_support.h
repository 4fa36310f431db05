// queue_support: what the queue's tests (store and search) share -- trials inserted with
// plain SQL as a sampler would, workers by name, and one-value queries
#pragma once
#include <doctest/doctest.h>

#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>

namespace nas::test {

using namespace nas::store;

inline int64_t scalar(Db& db, const std::string& sql, std::optional<int64_t> param = std::nullopt) {
  Statement s = db.prepare(sql);
  if (param) s.bind(1, *param);
  REQUIRE(s.step());
  return s.int64(0);
}

inline std::string text_of(Db& db, const std::string& sql, int64_t param) {
  Statement s = db.prepare(sql);
  s.bind(1, param);
  REQUIRE(s.step());
  return s.text(0);
}

// Inserts a trial with plain SQL, as a sampler would; returns its id.
inline int64_t add_trial(Db& db, const std::string& state, double priority = 0) {
  static int serial = 0;
  int64_t id = 0;
  db.write([&] {
    Statement s = db.prepare(
        "INSERT INTO trial (genome, hash, arch, origin, state, priority, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'sample', ?4, ?5, 0, 0)");
    ++serial;
    s.bind(1, "{\"n\":" + std::to_string(serial) + "}").bind(2, "hash-" + std::to_string(serial))
        .bind(3, "arch " + std::to_string(serial)).bind(4, state).bind(5, priority).run();
    id = db.last_insert_id();
  });
  return id;
}

inline std::string state_of(Db& db, int64_t id) { return text_of(db, "SELECT state FROM trial WHERE id = ?1", id); }
inline int64_t attempts_of(Db& db, int64_t id) { return scalar(db, "SELECT attempts FROM trial WHERE id = ?1", id); }
inline int64_t events_of(Db& db, const std::string& kind) {
  Statement s = db.prepare("SELECT count(*) FROM event WHERE kind = ?1");
  s.bind(1, kind);
  REQUIRE(s.step());
  return s.int64(0);
}

inline WorkerInfo worker_named(const std::string& host) {
  WorkerInfo w;
  w.host = host;
  w.pid = 1;
  w.device = "cpu";
  return w;
}

inline void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// Every trial's events form a chain: each starts where the previous ended, and the last ends in
// the trial's current state. Returns the number of events checked.
inline int64_t check_event_chains(Db& db) {
  std::map<int64_t, std::string> state;
  {
    Statement s = db.prepare("SELECT id, state FROM trial");
    while (s.step()) state[s.int64(0)] = s.text(1);
  }
  std::map<int64_t, std::string> at;   // where each trial's chain is
  int64_t n = 0;
  Statement e = db.prepare(
      "SELECT trial_id, kind, from_state, to_state FROM event WHERE trial_id IS NOT NULL ORDER BY id");
  while (e.step()) {
    int64_t id = e.int64(0);
    auto it = at.find(id);
    if (it != at.end()) CHECK_MESSAGE(e.text(2) == it->second, "trial " << id << " event " << e.text(1));
    at[id] = e.text(3);
    ++n;
  }
  for (const auto& [id, s] : at) CHECK_MESSAGE(state[id] == s, "trial " << id);
  return n;
}


} // namespace nas::test
