#include <doctest/doctest.h>

#include "../support.h"
// db_test: opening study files, journal-mode choice, write transactions with retry and rollback

#include "nas/core/error.h"
#include "nas/store/db.h"
#include "nas/store/journal.h"
#include "nas/store/schema.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace nas::store;
namespace fs = std::filesystem;
using nas::test::ScopedEnv;
using nas::test::TempDir;

namespace {

// A raw SQLite connection, independent of Db: the "other process" of these tests.
struct RawConn {
  sqlite3* db = nullptr;
  explicit RawConn(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open failed");
  }
  ~RawConn() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(m);
    }
  }
  int64_t value(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
  }
};

int64_t scalar(Db& db, const std::string& sql) {
  Statement s = db.prepare(sql);
  REQUIRE(s.step());
  return s.int64(0);
}

std::string text_scalar(Db& db, const std::string& sql) {
  Statement s = db.prepare(sql);
  REQUIRE(s.step());
  return s.text(0);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class E, class F> std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

} // namespace

TEST_CASE("open in create mode makes a study file at the current schema") {
  ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
  TempDir dir;
  const std::string path = dir.file("study.db");
  {
    Db db = Db::open(path, OpenMode::create);
    CHECK(db.path() == path);
    CHECK(scalar(db, "PRAGMA user_version") == current_schema_version());
    CHECK(scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'trial'") == 1);
    CHECK(scalar(db, "PRAGMA foreign_keys") == 1);
    if (!is_shared_filesystem(filesystem_kind(path))) {
      CHECK(db.journal_mode() == "wal");
      CHECK(text_scalar(db, "PRAGMA journal_mode") == "wal");
      CHECK(scalar(db, "PRAGMA synchronous") == 1);   // NORMAL
    }
    // Foreign keys are enforced: a lease owner that is no worker is refused.
    CHECK_THROWS_AS(db.exec("INSERT INTO trial (genome, hash, arch, origin, state, lease_owner, "
                            "created_at, updated_at) VALUES ('{}', 'h', 'a', 'sample', 'running', 99, 0, 0)"),
                    SqliteError);
  }
  CHECK(fs::exists(path));
  // Opening again (existing) leaves it as it is.
  Db again = Db::open(path, OpenMode::existing);
  CHECK(scalar(again, "PRAGMA user_version") == current_schema_version());
  CHECK(scalar(again, "SELECT count(*) FROM trial") == 0);
}

TEST_CASE("open of a missing file in existing or read_only mode fails naming it") {
  TempDir dir;
  const std::string path = dir.file("missing.db");
  for (OpenMode mode : {OpenMode::existing, OpenMode::read_only}) {
    std::string msg = message_of<nas::DbError>([&] { Db::open(path, mode); });
    CHECK(msg.rfind("cannot open '" + path + "': unable to open database file", 0) == 0);
    CHECK(!fs::exists(path));
  }
  // A folder that does not exist, even in create mode.
  std::string msg = message_of<nas::DbError>([&] { Db::open(dir.file("no/such/x.db"), OpenMode::create); });
  CHECK(msg.rfind("cannot open '" + dir.file("no/such/x.db") + "'", 0) == 0);
}

TEST_CASE("read_only mode reads, refuses writes and files of another schema version") {
  ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
  TempDir dir;
  const std::string path = dir.file("study.db");
  { Db db = Db::open(path, OpenMode::create); }
  {
    Db ro = Db::open(path, OpenMode::read_only);
    CHECK(!ro.journal_mode().empty());
    CHECK(scalar(ro, "SELECT count(*) FROM trial") == 0);
    CHECK_THROWS_AS(ro.write([&] { ro.exec("DELETE FROM trial"); }), nas::DbError);
  }
  // Older (an empty file is version 0) and newer files are refused without being changed.
  const std::string empty = dir.file("empty.db");
  { std::ofstream(empty).flush(); }
  CHECK(message_of<nas::UsageError>([&] { Db::open(empty, OpenMode::read_only); }) ==
        "'" + empty + "' is not a minnow study file: an empty SQLite database");
  {
    RawConn raw(path);
    raw.exec("PRAGMA user_version = " + std::to_string(current_schema_version() + 1));
  }
  CHECK(message_of<nas::DbError>([&] { Db::open(path, OpenMode::read_only); }) ==
        "'" + path + "' has schema version " + std::to_string(current_schema_version() + 1) +
            ", newer than this minnow (" + std::to_string(current_schema_version()) + "): upgrade minnow");
}

TEST_CASE("journal mode follows the file system and NAS_DB_JOURNAL") {
  TempDir dir;
  const std::string path = dir.file("study.db");

  SUBCASE("statfs magics name the shared file systems") {
    CHECK(filesystem_kind_from_magic(0x6969) == "nfs");
    CHECK(filesystem_kind_from_magic(0x0BD00BD0) == "lustre");
    CHECK(filesystem_kind_from_magic(0x47504653) == "gpfs");
    CHECK(filesystem_kind_from_magic(0x19830326) == "beegfs");
    CHECK(filesystem_kind_from_magic(0xFF534D42) == "cifs");
    CHECK(filesystem_kind_from_magic(0xFFFFFFFFFF534D42ULL) == "cifs");   // sign-extended f_type
    CHECK(filesystem_kind_from_magic(0xFE534D42) == "smb2");
    CHECK(filesystem_kind_from_magic(0x00C36400) == "ceph");
    CHECK(filesystem_kind_from_magic(0x65735546) == "fuse");
    CHECK(filesystem_kind_from_magic(0xEF53) == "local");       // ext4
    CHECK(filesystem_kind_from_magic(0x58465342) == "local");   // xfs
    CHECK(filesystem_kind_from_magic(0x01021994) == "local");   // tmpfs
    for (const char* k : {"nfs", "lustre", "gpfs", "beegfs", "cifs", "smb2", "smb", "ceph", "fuse",
                          "afs", "ocfs2", "gfs2"})
      CHECK_MESSAGE(is_shared_filesystem(k), k);
    CHECK(!is_shared_filesystem("local"));
    CHECK(!is_shared_filesystem("unknown"));
  }

  SUBCASE("the folder is examined, the file need not exist") {
    ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
    const std::string kind = filesystem_kind(path);
    CHECK(kind != "unknown");
    CHECK(choose_journal_mode(path) == (is_shared_filesystem(kind) ? "delete" : "wal"));
    CHECK(filesystem_kind(dir.file("no/such/folder/x.db")) == "unknown");
    CHECK(filesystem_kind("/proc/self/status") == "local");
  }

  SUBCASE("NAS_DB_JOURNAL overrides, case-insensitively") {
    {
      ScopedEnv j("NAS_DB_JOURNAL", std::string("DELETE"));
      CHECK(choose_journal_mode(path) == "delete");
      Db db = Db::open(path, OpenMode::create);
      CHECK(db.journal_mode() == "delete");
      CHECK(text_scalar(db, "PRAGMA journal_mode") == "delete");
      CHECK(scalar(db, "PRAGMA synchronous") == 2);   // FULL
    }
    {
      ScopedEnv j("NAS_DB_JOURNAL", std::string("Truncate"));
      Db db = Db::open(path, OpenMode::existing);
      CHECK(db.journal_mode() == "truncate");
    }
    {
      ScopedEnv j("NAS_DB_JOURNAL", std::string("wal"));
      Db db = Db::open(path, OpenMode::existing);
      CHECK(db.journal_mode() == "wal");
      CHECK(text_scalar(db, "PRAGMA journal_mode") == "wal");
    }
    {
      ScopedEnv j("NAS_DB_JOURNAL", std::string("persist"));
      CHECK(choose_journal_mode(path) == "persist");
    }
  }

  SUBCASE("an invalid NAS_DB_JOURNAL is a usage error and creates nothing") {
    ScopedEnv j("NAS_DB_JOURNAL", std::string("wall"));
    CHECK(message_of<nas::UsageError>([&] { choose_journal_mode(path); }) ==
          "NAS_DB_JOURNAL: unknown journal mode 'wall' (expected wal, delete, truncate or persist)");
    CHECK_THROWS_AS(Db::open(path, OpenMode::create), nas::UsageError);
    CHECK(!fs::exists(path));
  }
}

TEST_CASE("files that are not study files are refused as bad input (exit 2) and left untouched") {
  ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
  TempDir dir;

  SUBCASE("not SQLite at all") {
    const std::string path = dir.file("notes.db");
    std::string content = "these are my notes, not a database\n";
    for (int i = 0; i < 6; ++i) content += content;   // longer than a SQLite header
    { std::ofstream(path) << content; }
    for (OpenMode mode : {OpenMode::create, OpenMode::existing, OpenMode::read_only})
      CHECK(message_of<nas::UsageError>([&] { Db::open(path, mode); }) ==
            "'" + path + "' is not a minnow study file: not an SQLite database");
    CHECK(slurp(path) == content);
  }

  SUBCASE("SQLite with someone else's tables") {
    const std::string path = dir.file("other.db");
    {
      RawConn raw(path);
      raw.exec("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO photos VALUES (1, 'cat')");
    }
    CHECK(message_of<nas::UsageError>([&] { Db::open(path, OpenMode::existing); }) ==
          "'" + path + "' is not a minnow study file: an SQLite database without minnow's table 'trial'");
    RawConn raw(path);
    CHECK(raw.value("SELECT count(*) FROM sqlite_master") == 1);   // no schema added
    CHECK(raw.value("PRAGMA user_version") == 0);
  }

  SUBCASE("SQLite with a user_version but no trial table") {
    const std::string path = dir.file("versioned.db");
    {
      RawConn raw(path);
      raw.exec("CREATE TABLE t (x); PRAGMA user_version = 1");
    }
    CHECK(message_of<nas::UsageError>([&] { Db::open(path, OpenMode::existing); }) ==
          "'" + path + "' is not a minnow study file: an SQLite database without minnow's table 'trial'");
  }

  SUBCASE("a directory") {
    for (OpenMode mode : {OpenMode::create, OpenMode::existing, OpenMode::read_only})
      CHECK(message_of<nas::UsageError>([&] { Db::open(dir.path, mode); }) ==
            "'" + dir.path + "' is not a minnow study file: a directory");
  }
}

TEST_CASE("statements bind and read every type") {
  TempDir dir;
  Db db = Db::open(dir.file("s.db"), OpenMode::create);
  db.exec("CREATE TEMP TABLE t (i INTEGER, r REAL, s TEXT, n TEXT)");
  Statement ins = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4)");
  ins.bind(1, int64_t(1) << 40).bind(2, 2.5).bind(3, std::string("a\0b", 3))
      .bind(4, std::optional<std::string>()).run();
  CHECK(db.changes() == 1);
  CHECK(db.last_insert_id() == 1);
  Statement q = db.prepare("SELECT i, r, s, n FROM t");
  REQUIRE(q.step());
  CHECK(q.column_count() == 4);
  CHECK(q.column_name(2) == "s");
  CHECK(q.int64(0) == (int64_t(1) << 40));
  CHECK(q.real(1) == 2.5);
  CHECK(q.text(2) == std::string("a\0b", 3));
  CHECK(q.is_null(3));
  CHECK(q.text(3).empty());
  CHECK(!q.opt_text(3));
  CHECK(q.opt_int64(0) == (int64_t(1) << 40));
  CHECK(q.column_type(0) == SQLITE_INTEGER);
  CHECK(!q.step());
  CHECK_THROWS_AS(db.prepare("SELEC nonsense"), SqliteError);
  // A constraint failure carries SQLite's extended code.
  db.exec("CREATE TEMP TABLE u (k TEXT UNIQUE)");
  db.exec("INSERT INTO u VALUES ('x')");
  Statement dup = db.prepare("INSERT INTO u VALUES ('x')");
  try {
    dup.run();
    FAIL("no error on a duplicate");
  } catch (const SqliteError& e) {
    CHECK(e.code() == SQLITE_CONSTRAINT_UNIQUE);
    CHECK(std::string(e.what()).find("UNIQUE constraint failed") != std::string::npos);
  }
}

TEST_CASE("write retries while another connection holds the write lock, then succeeds") {
  ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
  ScopedEnv r("NAS_DB_RETRY_S", std::nullopt);
  TempDir dir;
  const std::string path = dir.file("study.db");
  Db db = Db::open(path, OpenMode::create);
  db.exec("CREATE TABLE IF NOT EXISTS note (x INTEGER)");

  RawConn other(path);
  other.exec("BEGIN IMMEDIATE; INSERT INTO note VALUES (1)");
  // Held longer than SQLite's own busy timeout, so only the retry loop can get through.
  std::thread holder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(2600));
    other.exec("COMMIT");
  });
  auto t0 = std::chrono::steady_clock::now();
  int runs = 0;
  int retries = -1;
  try {
    retries = db.write([&] {
      ++runs;
      db.exec("INSERT INTO note VALUES (2)");
    });
  } catch (...) {
    holder.join();
    throw;
  }
  holder.join();
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(retries >= 1);
  CHECK(runs == 1);   // fn ran once: BEGIN IMMEDIATE was what waited
  CHECK(waited >= 2.5);
  CHECK(scalar(db, "SELECT count(*) FROM note") == 2);
  CHECK(scalar(db, "SELECT sum(x) FROM note") == 3);
}

TEST_CASE("write gives up with a clear error after NAS_DB_RETRY_S") {
  ScopedEnv j("NAS_DB_JOURNAL", std::nullopt);
  ScopedEnv r("NAS_DB_RETRY_S", std::string("0.2"));
  TempDir dir;
  const std::string path = dir.file("study.db");
  Db db = Db::open(path, OpenMode::create);
  RawConn other(path);
  other.exec("BEGIN IMMEDIATE; DELETE FROM event");
  std::string msg;
  bool busy_type = false;
  try {
    db.write([&] { db.exec("DELETE FROM event"); });
  } catch (const DbBusy&) {
    busy_type = true;
  } catch (const nas::DbError& e) {
    msg = e.what();
  }
  other.exec("ROLLBACK");
  CHECK(!busy_type);   // the final error is no longer "busy": callers must not retry it again
  CHECK(msg.rfind("'" + path + "' stayed busy for ", 0) == 0);
  CHECK(msg.find("NAS_DB_RETRY_S") != std::string::npos);

  ScopedEnv bad("NAS_DB_RETRY_S", std::string("soon"));
  CHECK(message_of<nas::UsageError>([&] { db.write([] {}); }) ==
        "NAS_DB_RETRY_S: expected a number of seconds, got 'soon'");
}

TEST_CASE("an exception inside write rolls everything back and is rethrown") {
  TempDir dir;
  Db db = Db::open(dir.file("study.db"), OpenMode::create);
  db.exec("CREATE TABLE note (x INTEGER NOT NULL)");

  CHECK_THROWS_WITH_AS(db.write([&] {
    db.exec("INSERT INTO note VALUES (1)");
    throw std::runtime_error("boom");
  }), "boom", std::runtime_error);
  CHECK(scalar(db, "SELECT count(*) FROM note") == 0);

  // A database error in the middle undoes the rows before it.
  CHECK_THROWS_AS(db.write([&] {
    db.exec("INSERT INTO note VALUES (1)");
    db.exec("INSERT INTO note VALUES (NULL)");
  }), SqliteError);
  CHECK(scalar(db, "SELECT count(*) FROM note") == 0);

  // A nested write joins the outer transaction and is undone with it.
  CHECK_THROWS_AS(db.write([&] {
    db.exec("INSERT INTO note VALUES (1)");
    CHECK(db.write([&] { db.exec("INSERT INTO note VALUES (2)"); }) == 0);
    throw std::logic_error("late");
  }), std::logic_error);
  CHECK(scalar(db, "SELECT count(*) FROM note") == 0);

  // No transaction is left open: the next write commits.
  CHECK(db.write([&] { db.exec("INSERT INTO note VALUES (3)"); }) == 0);
  CHECK(sqlite3_get_autocommit(db.handle()) != 0);
  CHECK(scalar(db, "SELECT sum(x) FROM note") == 3);

  // read() sees a consistent snapshot and leaves no transaction behind either.
  int64_t n = -1;
  db.read([&] { n = scalar(db, "SELECT count(*) FROM note"); });
  CHECK(n == 1);
  CHECK(sqlite3_get_autocommit(db.handle()) != 0);
}
