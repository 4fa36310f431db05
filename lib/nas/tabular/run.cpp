// run: open the study, read the table once, run the table job on the generic worker
#include "nas/tabular/run.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/search/policy.h"
#include "nas/store/open.h"
#include "nas/store/results.h"
#include "nas/tabular/job.h"
#include "nas/worker/worker.h"

namespace nas::tabular {

int run_table(const TableOptions& o, std::ostream& out) {
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  const config::StudyConfig& cfg = opened.cfg;
  if (cfg.space.family != "nb201")
    throw UsageError("--table: study '" + cfg.name + "' searches the " + cfg.space.family + " family; the table holds nb201 cells");
  if (o.trial) store::load_trial(opened.db, *o.trial);   // UsageError for a trial the study lacks
  const Nb201Table table = Nb201Table::load(o.table, o.column);
  log::verbose("table '" + o.table + "': " + std::to_string(table.size()) + " architectures, best " +
               format_number(table.best()) + " (" + o.column + ")");
  worker::WorkerOptions wo;
  wo.db = o.db;
  wo.device = "table";
  wo.slots = o.trial ? 1 : o.slots;
  wo.trial = o.trial;
  wo.max_trials = o.max_trials;
  wo.budget = double(cfg.train.epochs);
  wo.grace_s = o.grace_s;
  if (o.until) wo.deadline = *o.until;
  TableJob job(cfg, table);
  std::mutex rng_lock;   // nothing else here draws from LibTorch's global generator
  const auto screen = o.screen ? o.screen(cfg, rng_lock) : nullptr;
  const worker::WorkerSummary s = worker::run_worker(wo, search::policy_of(cfg, screen), job, nullptr, "table mode: nothing trains");
  log::live_clear();
  Table rows(s.columns);
  for (const auto& r : s.rows) rows.add(r);
  if (rows.size() || o.format != Format::table) rows.write(out, o.format);
  return s.failed ? 1 : 0;
}

} // namespace nas::tabular
