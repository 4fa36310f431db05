// jobs: the batch jobs submitted for a study (Slurm job ids or local process ids), by stage
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nas::store {

class Db;

struct JobRecord {
  int64_t submission = 0;       // shared by the stages of one submission
  std::string stage;            // proxy | train | pareto
  std::string backend;          // slurm | local
  std::string job_id;           // Slurm job id, or the local process id
  std::string array;            // e.g. "0-7%8", or ""
  std::string depends;          // e.g. "afterany:1234", or ""
  std::string script;           // path of the rendered script
  double submitted_at = 0;
};

// The number the next submission's rows take (one more than the largest so far).
int64_t next_submission(Db& db);

// Inserts the rows of one submission in one write transaction, with a 'submit' event each
// (detail: stage, backend, job id). Nothing is written when any insert fails.
void record_jobs(Db& db, const std::vector<JobRecord>& jobs);

// The rows of the latest submission (all submissions with all = true), oldest first.
std::vector<JobRecord> load_jobs(Db& db, bool all);

} // namespace nas::store
