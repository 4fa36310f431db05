// open: the one way a tool opens a study file -- the database, its study row and the parsed
// configuration with the stored data probe applied, with one set of messages and exit codes
#pragma once
#include <string>

#include "nas/config/study_config.h"
#include "nas/store/db.h"
#include "nas/store/study.h"

namespace nas::store {

// How a tool opens the file: read_only (status, export, plots) or read_write (anything that
// writes: the schema is migrated when older).
enum class Access { read_only, read_write };

struct OpenStudy {
  Db db;
  StudyRecord study;
  config::StudyConfig cfg;        // parsed from the stored TOML; data shape and classes from the stored probe
};

// Opens the study file at `path` (read_write: the schema is migrated if older). Reads no data
// file, except for a study created before its data probe was recorded (schema version 4 or
// older): then it probes the files once and, in read_write mode, records what it found.
// Throws UsageError (exit 2) "cannot open 'PATH': no such file" for a missing file,
// "'PATH' holds no study: create it with nas-sample --config FILE" for an empty file (left
// empty) or a study file without a study, and "'PATH' is not a minnow study file: WHAT" for a
// directory, a file that is not SQLite or an SQLite database without minnow's tables; DbError
// (exit 1) for a file of a newer schema or one SQLite cannot open; ConfigError (exit 2) when
// the stored configuration does not parse; UsageError (exit 2) when an old study's data files
// no longer give its trials' parameter counts.
OpenStudy open_study(const std::string& path, Access access);

// Opens a study file without requiring a study in it (nas-db check and export, which must work
// on a damaged file); the same UsageErrors for a missing, empty or foreign file and DbErrors as
// open_study.
Db open_study_file(const std::string& path, Access access);

// The same message open_study throws for a file without a study, for tools that open the file
// themselves (nas-sample adding to a study).
UsageError no_study_error(const std::string& path);

} // namespace nas::store
