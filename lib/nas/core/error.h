// error: typed errors of the library; only a tool's main turns them into messages and exit codes
#pragma once
#include <stdexcept>
#include <string>

namespace nas {

// Exit codes shared by every tool (documented in each man page).
enum class Exit : int { ok = 0, failure = 1, usage = 2 };

// Base of every error the library throws. what() is the message without the tool prefix.
class Error : public std::runtime_error {
public:
  explicit Error(const std::string& msg, Exit code = Exit::failure)
      : std::runtime_error(msg), code_(code) {}
  Exit code() const { return code_; }
private:
  Exit code_;
};

// Misuse of a tool: bad argument, bad configuration. Exit 2.
class UsageError : public Error {
public:
  explicit UsageError(const std::string& msg) : Error(msg, Exit::usage) {}
};

// A configuration error with its place: "FILE:LINE:COL: key 'KEY': MESSAGE". Exit 2.
class ConfigError : public UsageError {
public:
  ConfigError(const std::string& file, int line, int col, const std::string& key,
              const std::string& msg);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& key() const { return key_; }
private:
  std::string file_;
  int line_;
  std::string key_;
};

// A database error (SQLite), with the file it concerns. Exit 1.
class DbError : public Error {
public:
  explicit DbError(const std::string& msg) : Error(msg, Exit::failure) {}
};

// A file that cannot be read or written, with its path and the reason ("no such file",
// "permission denied", ...). Exit 1; a tool that was handed the path by its user rethrows it as
// a UsageError.
class FileError : public Error {
public:
  FileError(const std::string& verb, const std::string& path, const std::string& reason)
      : Error("cannot " + verb + " '" + path + "': " + reason), path_(path), reason_(reason) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }
private:
  std::string path_;
  std::string reason_;
};

// A trial's lease was lost (expired and taken by another worker). Exit 1.
class LeaseLost : public DbError {
public:
  explicit LeaseLost(const std::string& msg) : DbError(msg) {}
};

} // namespace nas
