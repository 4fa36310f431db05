// db: what nas-db does -- status, export and check of a study file
#pragma once
#include <ostream>
#include <string>

namespace nas::app {

struct DbOptions {
  std::string db;
  std::string format = "table";
  int events = 10;          // status: how many recent events
  bool all_workers = false; // status: stopped workers too
  bool repair = false;      // check: reclaim orphaned leases
};

// Each returns the exit code: status/export 0; check 0 when every check passes, else 1.
int run_db_status(const DbOptions& o, std::ostream& out);
int run_db_export(const DbOptions& o, std::ostream& out);
int run_db_check(const DbOptions& o, std::ostream& out);

} // namespace nas::app
