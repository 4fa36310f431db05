// jobs: the batch jobs submitted for a study
#include "nas/store/jobs.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <nlohmann/json.hpp>

namespace nas::store {

int64_t next_submission(Db& db) {
  int64_t n = 1;
  db.read([&] {
    Statement s = db.prepare("SELECT coalesce(max(submission), 0) + 1 FROM job");
    if (s.step()) n = s.int64(0);
  });
  return n;
}

void record_jobs(Db& db, const std::vector<JobRecord>& jobs) {
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO job (submission, stage, backend, job_id, array, depends, script, submitted_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& j : jobs) {
      ins.reset();
      ins.bind(1, j.submission).bind(2, j.stage).bind(3, j.backend).bind(4, j.job_id);
      if (j.array.empty()) ins.bind_null(5); else ins.bind(5, j.array);
      if (j.depends.empty()) ins.bind_null(6); else ins.bind(6, j.depends);
      ins.bind(7, j.script).bind(8, j.submitted_at);
      ins.run();
      nlohmann::json detail = {{"stage", j.stage}, {"backend", j.backend}, {"job_id", j.job_id},
                               {"submission", j.submission}};
      log_event(db, "submit", std::nullopt, std::nullopt, "", "", detail.dump());
    }
  });
}

std::vector<JobRecord> load_jobs(Db& db, bool all) {
  std::vector<JobRecord> out;
  db.read([&] {
    out.clear();
    Statement s = db.prepare(
        "SELECT submission, stage, backend, job_id, coalesce(array, ''), coalesce(depends, ''), script, submitted_at "
        "FROM job WHERE ? OR submission = (SELECT max(submission) FROM job) ORDER BY submission, id");
    s.bind(1, int64_t(all ? 1 : 0));
    while (s.step())
      out.push_back({s.int64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.real(7)});
  });
  return out;
}

} // namespace nas::store
