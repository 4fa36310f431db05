// nas-db: look into a study file -- status, export of every trial, integrity check and repair,
// failed trials back in the queue
#include "nas/app/cli.h"
#include "nas/app/db.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Inspect a study file: counts by state and rung, workers and events (status), one row per\n"
               "trial with its results (export), and integrity, schema and lease checks (check).",
               "nas-db"};
  nas::CommonOptions common;
  nas::app::DbOptions o;
  std::vector<std::string> states;
  nas::add_common_options(app, common, true, true);
  app.require_subcommand(1);
  auto* status = app.add_subcommand("status", "counts by state and rung, active workers, last events");
  status->add_option("--events", o.events, "how many recent events to show [10]")
      ->option_text("N")
      ->check(nas::whole_number(0, 1000000));
  status->add_flag("--all-workers", o.all_workers, "list stopped workers too");
  auto* exp = app.add_subcommand("export", "one row per trial with its results (default format: csv)");
  auto* check = app.add_subcommand("check", "integrity, foreign keys, schema version, orphaned leases");
  check->add_flag("--repair", o.repair, "reclaim expired leases (back to queued, or failed after max attempts)");
  auto* count = app.add_subcommand("count", "the number of trials in the given states (for job scripts)");
  count->add_option("--state", states, "count trials in this state (repeat, or comma-separated) [all]")
      ->delimiter(',')->option_text("STATE");
  count->add_flag("--claimable", o.claimable, "the trials a worker could claim now: queued, and paused ones due for promotion");
  auto* requeue = app.add_subcommand("requeue", "put failed (or pruned) trials back in the queue, attempts reset");
  requeue->add_option("--trial", o.trials, "this trial (repeat, or comma-separated)")->delimiter(',')->option_text("ID");
  requeue->add_option("--state", states, "every trial in this state: failed or pruned (repeat)")->delimiter(',')->option_text("STATE");
  requeue->add_option("--reason", o.reason, "every trial whose reason starts with TEXT (e.g. 'lease expired')")
      ->option_text("TEXT");
  for (auto* sub : {status, exp, check, count, requeue}) nas::add_subcommand_options(*sub, common);
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    o.format = common.parsed_format();
    o.states = nas::app::parse_states(states);
    if (exp->parsed()) {
      if (exp->count("--format") == 0 && app.count("--format") == 0) o.format = nas::Format::csv;
      return nas::app::run_db_export(o, std::cout);
    }
    if (check->parsed()) return nas::app::run_db_check(o, std::cout);
    if (count->parsed()) return nas::app::run_db_count(o, std::cout);
    if (requeue->parsed()) return nas::app::run_db_requeue(o, std::cout);
    return nas::app::run_db_status(o, std::cout);
  });
}
