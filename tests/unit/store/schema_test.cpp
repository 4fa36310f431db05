#include <doctest/doctest.h>

#include "../support.h"
// schema_test: schema versions and forward migrations, from the frozen v1 fixture

#include "nas/core/error.h"
#include "nas/store/db.h"
#include "nas/store/schema.h"
#include "nas/store/study.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace nas::store;
namespace fs = std::filesystem;
using nas::test::ScopedEnv;
using nas::test::TempDir;

namespace {

// Runs SQL text on a file with SQLite alone, as the sqlite3 shell would.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, msg);
}

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(NAS_SOURCE_DIR) + "/tests/fixtures/" + name);
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t scalar(Db& db, const std::string& sql) {
  Statement s = db.prepare(sql);
  REQUIRE(s.step());
  return s.int64(0);
}

// The shape of a schema: every table's columns (name, type, not null, default, key), every
// index's columns, every view's and trigger's name. Independent of how the DDL was written, so
// that a migrated file and a new file can be compared.
std::map<std::string, std::string> shape(Db& db) {
  std::map<std::string, std::string> out;
  std::vector<std::pair<std::string, std::string>> objects;
  {
    Statement s = db.prepare(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    while (s.step()) objects.emplace_back(s.text(0), s.text(1));
  }
  for (const auto& [type, name] : objects) {
    std::string desc = type;
    if (type == "table" || type == "view") {
      Statement c = db.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)");
      c.bind(1, name);
      while (c.step())
        desc += " | " + c.text(0) + " " + c.text(1) + " nn=" + c.text(2) + " d=" + c.text(3) + " pk=" + c.text(4);
    }
    if (type == "table") {
      Statement f = db.prepare("SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq");
      f.bind(1, name);
      while (f.step()) desc += " | fk " + f.text(1) + "->" + f.text(0) + "." + f.text(2) + " " + f.text(3);
    }
    if (type == "index") {
      Statement c = db.prepare("SELECT name, desc FROM pragma_index_xinfo(?1) WHERE key = 1");
      c.bind(1, name);
      while (c.step()) desc += " | " + c.text(0) + (c.int64(1) ? " desc" : "");
    }
    out[name] = desc;
  }
  return out;
}

} // namespace

TEST_CASE("the migration list has one step per version") {
  CHECK(current_schema_version() >= 1);
  CHECK(migrations().size() == size_t(current_schema_version()));
  for (const auto& step : migrations()) CHECK(!step.empty());
}

TEST_CASE("a v1 study file opens, migrates to the current version, and keeps its rows") {
  TempDir dir;
  const std::string path = dir.file("v1.db");
  raw_exec(path, fixture("schema-v1.sql"));

  Db db = Db::open(path, OpenMode::existing);
  CHECK(scalar(db, "PRAGMA user_version") == current_schema_version());
  CHECK(migrate(db) == current_schema_version());   // nothing left to do the second time

  CHECK(scalar(db, "SELECT count(*) FROM trial") == 4);
  CHECK(scalar(db, "SELECT count(*) FROM trial WHERE state = 'running' AND lease_owner = 1") == 1);
  CHECK(scalar(db, "SELECT attempts FROM trial WHERE id = 3") == 3);
  {
    Statement s = db.prepare("SELECT reason, params FROM trial WHERE id = 3");
    REQUIRE(s.step());
    CHECK(s.text(0) == "lease expired");
    CHECK(s.int64(1) == 73306);
  }
  {
    Statement s = db.prepare("SELECT value FROM result WHERE trial_id = 1 AND rung = 0 AND metric = 'val_acc'");
    REQUIRE(s.step());
    CHECK(s.real(0) == doctest::Approx(0.8125));
  }
  CHECK(scalar(db, "SELECT count(*) FROM event") == 3);
  CHECK(scalar(db, "SELECT count(*) FROM worker WHERE host = 'node01' AND pid = 4242") == 1);
  CHECK(scalar(db, "SELECT seed FROM study WHERE id = 1") == 7);
  CHECK(scalar(db, "SELECT count(*) FROM proxy_score") == 2);
  CHECK(scalar(db, "SELECT count(*) FROM measurement") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM artifact") == 1);
  CHECK(scalar(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
  {
    Statement s = db.prepare("PRAGMA integrity_check");
    REQUIRE(s.step());
    CHECK(s.text(0) == "ok");
  }
  // v5: the data probe's table, empty on a study created before it (tools then probe the files).
  CHECK(scalar(db, "SELECT count(*) FROM pragma_table_info('data_probe') WHERE name IN ('split', 'files', 'shape', 'classes', 'samples')") == 5);
  CHECK(scalar(db, "SELECT count(*) FROM data_probe") == 0);
  // The views work on the migrated file.
  CHECK(scalar(db, "SELECT count(*) FROM v_trials") == 4);
  {
    Statement s = db.prepare("SELECT lease_owner, val_acc FROM v_trials WHERE id = 2");
    REQUIRE(s.step());
    CHECK(s.text(0) == "node01:4242");
  }
}

TEST_CASE("a migrated v1 file has the same schema as a new file") {
  TempDir dir;
  const std::string old_path = dir.file("v1.db");
  raw_exec(old_path, fixture("schema-v1.sql"));
  Db migrated = Db::open(old_path, OpenMode::existing);
  Db fresh = Db::open(dir.file("new.db"), OpenMode::create);
  auto a = shape(migrated);
  auto b = shape(fresh);
  CHECK(a.size() == b.size());
  for (const auto& [name, desc] : b) {
    auto it = a.find(name);
    if (it == a.end()) {
      FAIL_CHECK("missing in the migrated file: " << name);
      continue;
    }
    CHECK_MESSAGE(it->second == desc, name);
  }
}

TEST_CASE("a file newer than this build is refused and left as it is") {
  TempDir dir;
  const std::string path = dir.file("future.db");
  const int future = current_schema_version() + 1;
  raw_exec(path, fixture("schema-v1.sql"));
  raw_exec(path, "PRAGMA user_version = " + std::to_string(future));
  const std::string expected = "'" + path + "' has schema version " + std::to_string(future) +
                               ", newer than this minnow (" +
                               std::to_string(current_schema_version()) + "): upgrade minnow";
  for (OpenMode mode : {OpenMode::existing, OpenMode::create, OpenMode::read_only}) {
    try {
      Db::open(path, mode);
      FAIL("a newer file was opened");
    } catch (const nas::DbError& e) {
      CHECK(std::string(e.what()) == expected);
    }
  }
  Db ro_check = [&] {
    raw_exec(path, "PRAGMA user_version = " + std::to_string(current_schema_version()));
    return Db::open(path, OpenMode::read_only);
  }();
  CHECK(scalar(ro_check, "SELECT count(*) FROM trial") == 4);
}

TEST_CASE("many connections creating one new file at once create the schema once") {
  for (const char* journal : {"wal", "delete"}) {
    CAPTURE(journal);
    ScopedEnv j("NAS_DB_JOURNAL", std::string(journal));
    TempDir dir;
    const std::string path = dir.file("race.db");
    constexpr int kOpeners = 12;
    std::atomic<int> ready{0};
    std::atomic<int> failures{0};
    std::vector<std::string> errors(kOpeners);
    std::vector<std::thread> threads;
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready < kOpeners) std::this_thread::yield();
        try {
          Db db = Db::open(path, OpenMode::create);
          db.write([&] {
            Statement s = db.prepare(
                "INSERT INTO worker (host, pid, started_at, heartbeat_at) VALUES ('t', ?1, 0, 0)");
            s.bind(1, i).run();
          });
        } catch (const std::exception& e) {
          errors[size_t(i)] = e.what();
          ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
    CHECK(failures == 0);
    Db db = Db::open(path, OpenMode::existing);
    CHECK(db.journal_mode() == journal);
    CHECK(scalar(db, "PRAGMA user_version") == current_schema_version());
    CHECK(scalar(db, "SELECT count(*) FROM worker") == kOpeners);
    Db fresh = Db::open(dir.file("one.db"), OpenMode::create);
    CHECK(shape(db) == shape(fresh));
  }
}

TEST_CASE("the data probe round-trips through the study file") {
  TempDir dir;
  Db db = Db::open(dir.file("p.db"), OpenMode::create);
  CHECK_FALSE(load_data_probe(db).has_value());
  nas::config::DataProbe p;
  p.train = {{"/d/train-images.gz", "/d/train-labels.gz"}, {1, 28, 28}, 10, 60000};
  p.test = {{"/d/t10k-images.gz", "/d/t10k-labels.gz"}, {1, 28, 28}, 10, 10000};
  save_data_probe(db, p);
  auto back = load_data_probe(db);
  REQUIRE(back.has_value());
  CHECK(back->train == p.train);
  CHECK(back->test == p.test);
}

TEST_CASE("a v5 study file migrates to v6: its trials kept, breeding tables empty and usable") {
  TempDir dir;
  const std::string path = dir.file("v5.db");
  std::string to_v5 = fixture("schema-v1.sql");
  for (size_t step = 1; step < 5; ++step) to_v5 += migrations()[step];
  raw_exec(path, to_v5 + "\nPRAGMA user_version = 5;");
  Db db = Db::open(path, OpenMode::existing);
  CHECK(scalar(db, "PRAGMA user_version") == current_schema_version());   // v6 and every step after it
  CHECK(scalar(db, "SELECT count(*) FROM trial") == 4);
  for (const char* table : {"breeding", "island_member", "migration"})
    CHECK(scalar(db, std::string("SELECT count(*) FROM ") + table) == 0);
  CHECK(scalar(db, "SELECT count(*) FROM pragma_table_info('breeding') WHERE name IN "
                   "('trial_id', 'strategy', 'island', 'operators', 'repairs', 'parents', 'seed', 'worker_id')") == 8);
  db.write([&] {
    db.exec("INSERT INTO breeding (trial_id, strategy, island, operators, parents, seed, created_at)"
            " VALUES (2, 'evolution', 1, 'crossover', '[1, 3]', 42, 0)");
    db.exec("INSERT INTO island_member (island, trial_id, joined_at) VALUES (1, 2, 0)");
    db.exec("INSERT INTO migration (trial_id, from_island, to_island, kind, at) VALUES (2, 1, 0, 'copy', 0)");
  });
  CHECK(scalar(db, "SELECT count(*) FROM v_lineage WHERE trial_id = 2 AND island = 1 AND seed = 42") == 1);
  CHECK_THROWS(db.exec("INSERT INTO breeding (trial_id, strategy, island, operators, parents, seed, created_at)"
                       " VALUES (1, 'evolution', 0, 'teleport', '[]', 1, 0)"));
  CHECK(scalar(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0);
}
