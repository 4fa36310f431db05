// db: a connection to a study file, prepared statements, and write transactions with retry
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "nas/core/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace nas::store {

enum class OpenMode {
  create,         // create the file (and its schema) if missing, else open it
  existing,       // the file must exist; it is migrated to the current schema
  read_only       // the file must exist; no writes, no migration (a newer or older file is refused)
};

// A failed SQLite call. code() is SQLite's extended result code (e.g. SQLITE_CONSTRAINT_UNIQUE),
// for callers that treat some failures as expected.
class SqliteError : public nas::DbError {
public:
  SqliteError(const std::string& msg, int code) : DbError(msg), code_(code) {}
  int code() const { return code_; }
private:
  int code_;
};

// The file was busy or locked by another connection (SQLITE_BUSY, SQLITE_LOCKED and their
// extended codes, and the transient SQLITE_PROTOCOL of WAL). Db::write and Db::read retry it;
// elsewhere it is an ordinary DbError.
class DbBusy : public SqliteError {
public:
  using SqliteError::SqliteError;
};

// A prepared statement. Columns and parameters are 1-based for bind, 0-based for columns,
// as in SQLite. Moving is allowed, copying is not.
class Statement {
public:
  Statement(sqlite3* db, const std::string& sql);
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& bind(int i, int64_t v);
  Statement& bind(int i, int v) { return bind(i, int64_t(v)); }
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Statement& bind_null(int i);
  template <class T> Statement& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // Steps once: true when a row is ready, false when done. Throws DbBusy when the file is
  // busy or locked, SqliteError for any other failure; the statement is reset after an error.
  bool step();
  // Steps until done.
  void run();
  // Rewinds the statement for another run; bindings are kept.
  void reset();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;   // "" for NULL
  std::optional<int64_t> opt_int64(int col) const;
  std::optional<double> opt_real(int col) const;
  std::optional<std::string> opt_text(int col) const;
  int column_count() const;
  std::string column_name(int col) const;
  int column_type(int col) const;     // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL

private:
  sqlite3* db_;
  sqlite3_stmt* st_;
};

// A connection to one study file. Not shared between threads: each thread opens its own.
class Db {
public:
  // Opens the file: sets the journal mode chosen for its file system (see journal.h), foreign
  // keys on, a busy timeout, and brings the schema to the current version (mode create or
  // existing). Throws DbError naming the file when it cannot be opened or has a newer schema
  // than this build (read_only: a schema other than this build's); UsageError (exit 2) "'PATH'
  // is not a minnow study file: WHAT" for a directory, a file that is not SQLite, or an SQLite
  // database without minnow's tables (read_only: or an empty one), leaving it untouched; and
  // UsageError for an invalid NAS_DB_JOURNAL. Busy files are waited for as in write().
  static Db open(const std::string& path, OpenMode mode);

  Db(Db&& o) noexcept;
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  ~Db();

  const std::string& path() const { return path_; }
  const std::string& journal_mode() const { return journal_mode_; }
  sqlite3* handle() { return db_; }

  Statement prepare(const std::string& sql) { return Statement(db_, sql); }
  // Runs one or more statements without parameters. Throws DbBusy or SqliteError.
  void exec(const std::string& sql);
  int64_t last_insert_id() const;
  int changes() const;

  // Runs fn inside BEGIN IMMEDIATE ... COMMIT. When the database is busy or locked (at BEGIN,
  // inside fn, or at COMMIT) the transaction is rolled back and retried after a jittered
  // exponential back-off (5 ms doubling to 1 s) until the retry deadline (NAS_DB_RETRY_S,
  // default 600 s) passes; then DbError. Any other exception from fn rolls back and is
  // rethrown. fn may therefore run more than once: it must not have effects outside the
  // database. Returns the number of retries it took. Called while a transaction is already
  // open on this connection, it runs fn inside that one (the outer call does the retrying).
  int write(const std::function<void()>& fn);

  // Runs fn inside a deferred (read) transaction, for a consistent snapshot. Busy or locked
  // errors (possible with the rollback journal while a writer commits) are retried as in
  // write(), so fn may run more than once. Nested calls run fn in the open transaction.
  void read(const std::function<void()>& fn);

private:
  Db(sqlite3* db, std::string path);
  sqlite3* db_;
  std::string path_;
  std::string journal_mode_;
};

} // namespace nas::store
