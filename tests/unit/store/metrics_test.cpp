// metrics_test: the values a multi-objective promotion ranks (rung_metric_values), whatever
// order SQLite happens to return rows in
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/store/db.h"
#include "nas/store/metrics.h"
#include "queue_support.h"

using namespace nas::store;
using nas::test::TempDir;
using namespace nas::test;

TEST_CASE("rung_metric_values: a bare measured metric is the trial's latest measurement, whatever the scan order") {
  TempDir dir;
  Db db = Db::open(dir.file("m.db"), OpenMode::create);
  const int64_t t = add_trial(db, "done");
  db.write([&] {
    // two devices measured the same metric; the second row is the latest
    for (const auto& [device, value] : {std::pair<const char*, double>{"cpu", 0.5}, {"cuda:0", 0.25}}) {
      Statement s = db.prepare("INSERT INTO measurement (trial_id, backend, device, metric, value, created_at)"
                               " VALUES (?1, 'local', ?2, 'latency_s', ?3, 0)");
      s.bind(1, t).bind(2, std::string(device)).bind(3, value).run();
    }
    Statement r = db.prepare("INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, 0, 'latency_s', 9, 0)");
    r.bind(1, t).run();
  });
  // SQLite's own test of code that relies on an unspecified order: unordered scans run backwards
  for (const char* pragma : {"PRAGMA reverse_unordered_selects = OFF", "PRAGMA reverse_unordered_selects = ON"}) {
    CAPTURE(pragma);
    db.exec(pragma);
    const auto v = rung_metric_values(db, "latency_s", 2);
    REQUIRE(v.count({t, -1}) == 1);
    CHECK(v.at({t, -1}) == 0.25);
    CHECK(v.at({t, 0}) == 9);   // a result at its rung, apart
  }
}
