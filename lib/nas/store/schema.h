// schema: the study file's tables, views and forward migrations
#pragma once
#include <string>
#include <vector>

namespace nas::store {

class Db;

// The schema version this build writes (PRAGMA user_version).
int current_schema_version();

// The SQL of each migration step; step i brings a file from version i to version i+1.
// Step 0 creates schema v1 from an empty file.
const std::vector<std::string>& migrations();

// Brings the open file to current_schema_version(), one transaction per step.
// Throws DbError when the file is newer than this build (it never downgrades).
// Returns the version the file had before.
int migrate(Db& db);

} // namespace nas::store
