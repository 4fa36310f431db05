// db: a connection to a study file, prepared statements, and write transactions with retry.
//
// Many processes (samplers, workers on several nodes, a human with sqlite3) share one file.
// SQLite serialises writers with file locks; a connection that cannot get the lock gets
// SQLITE_BUSY. Two layers deal with that: SQLite's busy timeout, which polls for the lock
// for up to kBusyTimeoutMs inside one call, and Db::write's retry loop, which rolls the whole
// transaction back and runs it again after a jittered exponential back-off until
// NAS_DB_RETRY_S passes. The loop is what makes writes robust: the busy handler is not called
// in every situation (a deferred transaction that needs to upgrade its lock, a WAL snapshot
// that went stale, a lock lost while committing) and it never adds jitter, so processes that
// collided once would keep colliding in step.
#include "nas/store/db.h"
#include "nas/core/log.h"
#include "nas/core/random.h"
#include "nas/core/text.h"
#include "nas/store/journal.h"
#include "nas/store/schema.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace nas::store {

namespace {

// How long one SQLite call polls for a lock before it reports SQLITE_BUSY to the retry loop.
constexpr int kBusyTimeoutMs = 2000;
constexpr double kFirstDelayS = 0.005;   // the back-off starts here, doubles up to kMaxDelayS
constexpr double kMaxDelayS = 1.0;
constexpr double kDefaultRetryS = 600;
constexpr double kWarnAfterS = 30;       // tell the user once a write has waited this long

bool is_busy(int code) {
  int primary = code & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_PROTOCOL;
}

std::string file_of(sqlite3* db) {
  const char* f = sqlite3_db_filename(db, "main");
  return f && *f ? f : ":memory:";
}

[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::string& what) {
  int code = db ? sqlite3_extended_errcode(db) : rc;
  if ((code & 0xff) != (rc & 0xff)) code = rc;   // the connection's code belongs to another call
  std::string msg = "'" + file_of(db) + "': " + (what.empty() ? "" : what + ": ") +
                    (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (is_busy(code)) throw DbBusy(msg, code);
  throw SqliteError(msg, code);
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f" : "%.0f", s);
  return buf;
}

// NAS_DB_RETRY_S: how long a write keeps retrying a busy file, in seconds.
double retry_limit_s() {
  const char* env = std::getenv("NAS_DB_RETRY_S");
  if (!env || !*env) return kDefaultRetryS;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(env, &end);
  if (errno || end == env || *end || !std::isfinite(v) || v < 0)
    throw UsageError("NAS_DB_RETRY_S: expected a number of seconds, got '" + std::string(env) + "'");
  return v;
}

// The jitter's generator: one per thread, reseeded in a forked child so that processes forked
// from one parent do not back off in lockstep.
double jitter_uniform() {
  thread_local pid_t seeded_for = 0;
  thread_local Rng rng(0);
  pid_t pid = ::getpid();
  if (seeded_for != pid) {
    uint64_t t = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    uint64_t tid = std::hash<std::thread::id>()(std::this_thread::get_id());
    rng = Rng(t ^ (uint64_t(pid) << 32) ^ tid, uint64_t(pid));
    seeded_for = pid;
  }
  return rng.uniform();
}

// Jittered exponential back-off with a deadline.
class Backoff {
public:
  explicit Backoff(const std::string& path)
      : path_(path), limit_s_(retry_limit_s()), start_(std::chrono::steady_clock::now()) {}

  // Sleeps before the next try: a uniform time in [d/2, d], d = 5 ms doubling up to 1 s.
  // Throws DbError when the deadline has passed (`last` says what kept failing).
  void wait(const DbBusy& last) {
    double elapsed = elapsed_s();
    if (elapsed >= limit_s_)
      throw DbError("'" + path_ + "' stayed busy for " + seconds_text(elapsed) + " s (" +
                    sqlite3_errstr(last.code()) + "): other processes hold it; " +
                    "NAS_DB_RETRY_S sets how long to wait");
    if (!warned_ && elapsed >= kWarnAfterS) {
      log::warning("'" + path_ + "' is busy: still waiting after " + seconds_text(elapsed) + " s");
      warned_ = true;
    }
    double d = delay_ * (0.5 + 0.5 * jitter_uniform());
    d = std::min(d, limit_s_ - elapsed);
    std::this_thread::sleep_for(std::chrono::duration<double>(d));
    delay_ = std::min(delay_ * 2, kMaxDelayS);
    ++retries_;
  }
  int retries() const { return retries_; }

private:
  double elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::string path_;
  double limit_s_;
  std::chrono::steady_clock::time_point start_;
  double delay_ = kFirstDelayS;
  int retries_ = 0;
  bool warned_ = false;
};

void rollback_quietly(sqlite3* db) {
  // SQLite rolls back by itself after some errors; then there is nothing left to undo.
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

// Runs fn (no transaction of its own) until it does not throw DbBusy or the deadline passes.
template <class F> void retry_busy(const std::string& path, F&& fn) {
  Backoff backoff(path);
  for (;;) {
    try {
      fn();
      return;
    } catch (const DbBusy& e) {
      backoff.wait(e);
    }
  }
}

// A file that is not a study file was given where one belongs: bad input (exit 2, as a bad
// config), not a fault of the run. `what` says what the file is instead.
UsageError not_a_study_file(const std::string& path, const std::string& what) {
  return UsageError("'" + path + "' is not a minnow study file: " + what);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Statement

Statement::Statement(sqlite3* db, const std::string& sql) : db_(db), st_(nullptr) {
  int rc = sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &st_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st_);
    st_ = nullptr;
    std::string head = sql.size() > 60 ? sql.substr(0, 60) + "..." : sql;
    throw_sqlite(db, rc, "cannot prepare '" + head + "'");
  }
}

Statement::Statement(Statement&& o) noexcept : db_(o.db_), st_(o.st_) { o.st_ = nullptr; }

Statement::~Statement() { sqlite3_finalize(st_); }

static void check_bind(sqlite3* db, int rc) {
  if (rc != SQLITE_OK) throw_sqlite(db, rc, "cannot bind a parameter");
}

Statement& Statement::bind(int i, int64_t v) {
  check_bind(db_, sqlite3_bind_int64(st_, i, v));
  return *this;
}

Statement& Statement::bind(int i, double v) {
  check_bind(db_, sqlite3_bind_double(st_, i, v));
  return *this;
}

Statement& Statement::bind(int i, const std::string& v) {
  check_bind(db_, sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::bind_null(int i) {
  check_bind(db_, sqlite3_bind_null(st_, i));
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // Take the message before the reset, which releases the statement's locks.
  int code = sqlite3_extended_errcode(db_);
  std::string msg = "'" + file_of(db_) + "': " + sqlite3_errmsg(db_);
  sqlite3_reset(st_);
  if ((code & 0xff) != (rc & 0xff)) code = rc;
  if (is_busy(code)) throw DbBusy(msg, code);
  throw SqliteError(msg, code);
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() { sqlite3_reset(st_); }

bool Statement::is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
int64_t Statement::int64(int col) const { return sqlite3_column_int64(st_, col); }
double Statement::real(int col) const { return sqlite3_column_double(st_, col); }

std::string Statement::text(int col) const {
  const unsigned char* p = sqlite3_column_text(st_, col);
  if (!p) return std::string();
  return std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(st_, col)));
}

std::optional<int64_t> Statement::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}

std::optional<double> Statement::opt_real(int col) const {
  if (is_null(col)) return std::nullopt;
  return real(col);
}

std::optional<std::string> Statement::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

int Statement::column_count() const { return sqlite3_column_count(st_); }
std::string Statement::column_name(int col) const {
  const char* n = sqlite3_column_name(st_, col);
  return n ? n : "";
}
int Statement::column_type(int col) const { return sqlite3_column_type(st_, col); }

// ---------------------------------------------------------------------------------------------
// Db

Db::Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Db::Db(Db&& o) noexcept
    : db_(o.db_), path_(std::move(o.path_)), journal_mode_(std::move(o.journal_mode_)) {
  o.db_ = nullptr;
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

namespace {

// Opens the SQLite handle of `path` in `mode`; DbError naming the file (and the system's
// reason) when SQLite cannot.
sqlite3* open_handle(const std::string& path, OpenMode mode) {
  // A connection is never shared between threads, so SQLite's per-connection mutex is not
  // needed.
  int flags = SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case OpenMode::create: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
    case OpenMode::existing: flags |= SQLITE_OPEN_READWRITE; break;
    case OpenMode::read_only: flags |= SQLITE_OPEN_READONLY; break;
  }
  sqlite3* handle = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    int sys = handle ? sqlite3_system_errno(handle) : 0;
    sqlite3_close_v2(handle);
    if (sys) msg += " (" + lower(std::strerror(sys)) + ")";
    throw DbError("cannot open '" + path + "': " + msg);
  }
  return handle;
}

// The file's schema version (0: an empty file), read without changing anything, so that a
// foreign file is left as it was. Throws DbError when the file is not a study file.
int study_file_version(Db& db, const std::string& path) {
  int version = 0;
  int tables = 0;
  bool has_trial = false;
  try {
    db.read([&] {
      Statement v = db.prepare("PRAGMA user_version");
      version = v.step() ? int(v.int64(0)) : 0;
      Statement t = db.prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
      tables = 0;
      has_trial = false;
      while (t.step()) {
        ++tables;
        if (t.text(0) == "trial") has_trial = true;
      }
    });
  } catch (const SqliteError& e) {
    if ((e.code() & 0xff) == SQLITE_NOTADB) throw not_a_study_file(path, "not an SQLite database");
    throw;
  }
  if (version < 0) throw not_a_study_file(path, "an SQLite database of user_version " + std::to_string(version));
  if ((version == 0 && tables > 0) || (version > 0 && !has_trial))
    throw not_a_study_file(path, "an SQLite database without minnow's table 'trial'");
  return version;
}

} // namespace

Db Db::open(const std::string& path, OpenMode mode) {
  // Before anything touches the disk: an invalid NAS_DB_JOURNAL must not leave an empty file.
  // The mode comes from a fixed list (journal.cpp), never from the user's text as such, since
  // pragmas take no bound parameters.
  const std::string want = mode == OpenMode::read_only ? "" : choose_journal_mode(path);
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw not_a_study_file(path, "a directory");
  sqlite3* handle = open_handle(path, mode);
  Db db(handle, path);   // closes the handle if anything below throws
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, kBusyTimeoutMs);
  const int version = study_file_version(db, path);

  // A newer file is refused before anything (the journal mode included) is changed in it.
  const int current = current_schema_version();
  if (version > current)
    throw DbError("'" + path + "' has schema version " + std::to_string(version) +
                  ", newer than this minnow (" + std::to_string(current) + "): upgrade minnow");
  if (mode == OpenMode::read_only) {
    if (version == 0) throw not_a_study_file(path, "an empty SQLite database");
    if (version < current)
      throw DbError("'" + path + "' has schema version " + std::to_string(version) +
                    ", older than this minnow (" + std::to_string(current) +
                    "): open it once for writing to migrate it");
    retry_busy(path, [&] {
      Statement j = db.prepare("PRAGMA journal_mode");
      db.journal_mode_ = j.step() ? lower(j.text(0)) : "";
    });
    db.exec("PRAGMA foreign_keys = ON");
    return db;
  }

  std::string got;
  retry_busy(path, [&] {
    Statement j = db.prepare("PRAGMA journal_mode = " + want);
    got = j.step() ? lower(j.text(0)) : "";
  });
  if (got != want)
    throw DbError("cannot set journal mode '" + want + "' on '" + path + "': it stays '" + got + "'");
  db.journal_mode_ = got;
  db.exec("PRAGMA foreign_keys = ON");
  // Under WAL, NORMAL loses at most the last commits on a power cut, never consistency; with
  // the rollback journal only FULL is safe.
  db.exec(got == "wal" ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
  migrate(db);
  return db;
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return;
  int code = sqlite3_extended_errcode(db_);
  if ((code & 0xff) != (rc & 0xff)) code = rc;
  std::string msg = "'" + file_of(db_) + "': " + (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  if (is_busy(code)) throw DbBusy(msg, code);
  throw SqliteError(msg, code);
}

int64_t Db::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }

int Db::changes() const { return sqlite3_changes(db_); }

int Db::write(const std::function<void()>& fn) {
  if (!sqlite3_get_autocommit(db_)) {   // nested: the outer transaction retries
    fn();
    return 0;
  }
  Backoff backoff(path_);
  for (;;) {
    try {
      exec("BEGIN IMMEDIATE");
      fn();
      exec("COMMIT");
      return backoff.retries();
    } catch (const DbBusy& e) {
      rollback_quietly(db_);
      backoff.wait(e);
    } catch (...) {
      rollback_quietly(db_);
      throw;
    }
  }
}

void Db::read(const std::function<void()>& fn) {
  if (!sqlite3_get_autocommit(db_)) {
    fn();
    return;
  }
  Backoff backoff(path_);
  for (;;) {
    try {
      exec("BEGIN");
      fn();
      exec("COMMIT");
      return;
    } catch (const DbBusy& e) {
      rollback_quietly(db_);
      backoff.wait(e);
    } catch (...) {
      rollback_quietly(db_);
      throw;
    }
  }
}

} // namespace nas::store
