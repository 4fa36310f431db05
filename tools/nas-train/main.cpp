// nas-train: train queued trials of a study, alone or as a packed worker
#include "nas/app/cli.h"
#include "nas/core/deadline.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/tabular/run.h"
#include "nas/train/run.h"

#include <iostream>

// --table: the same worker and queue, with the table job in place of training.
static nas::tabular::TableOptions table_options(const nas::train::TrainOptions& o, const std::string& table) {
  if (!o.trial && !o.worker) throw nas::UsageError("give --trial ID or --worker");
  nas::tabular::TableOptions t;
  t.db = o.db;
  t.table = table;
  t.trial = o.trial;
  if (o.pack == "auto") t.slots = 1;
  else if (o.pack.find_first_not_of("0123456789") != std::string::npos || o.pack.empty() || o.pack.size() > 2 ||
           std::stoi(o.pack) < 1 || std::stoi(o.pack) > 64)
    throw nas::UsageError("--pack: expected a number of trainings from 1 to 64 or auto, got '" + o.pack + "'");
  else t.slots = std::stoi(o.pack);
  t.max_trials = o.max_trials;
  t.until = o.until;
  t.grace_s = o.grace_s;
  t.format = o.format;
  return t;
}

int main(int argc, char** argv) {
  CLI::App app{"Train trials of a study: one trial (--trial), or claim queued trials as a worker until none\n"
               "is left or the deadline is near, with K trainings packed in one process (--pack).\n"
               "SIGTERM, SIGUSR1 and SIGINT checkpoint every trial, return it to the queue and exit 0.",
               "nas-train"};
  nas::CommonOptions common;
  nas::train::TrainOptions o;
  int64_t trial = 0;
  std::string until, precision, table;
  nas::add_common_options(app, common, true, true);
  auto* t = app.add_option("--trial", trial, "train this trial (queued or sampled) and exit")->option_text("ID");
  auto* w = app.add_flag("--worker", o.worker, "claim and train queued trials until none is left");
  t->excludes(w);
  app.add_option("--pack", o.pack, "trainings in this process, each in its own thread, or auto [1]")->option_text("K|auto");
  app.add_option("--device", o.device, "cpu, cuda, cuda:N or auto [auto]")->option_text("DEV");
  app.add_option("--precision", precision, "fp32, bf16, fp16 or auto [the study's train.precision]")->option_text("P");
  app.add_option("--until", until, "deadline: 90m, +2h, 2026-11-23T18:00:00Z or @UNIX [SLURM_JOB_END_TIME]")->option_text("TIME");
  app.add_option("--grace", o.grace_s, "stop claiming, checkpoint and release this long before the deadline [60]")
      ->option_text("SECONDS")
      ->check(nas::number_at_least(0));
  app.add_option("--max-trials", o.max_trials, "train at most N trials per trainer")
      ->option_text("N")
      ->check(nas::whole_number(1, 1000000000));
  app.add_option("--table", table, "nb201 studies: look accuracies up in this NAS-Bench-201 CSV instead of training")
      ->option_text("FILE");
  app.add_option("--threads", o.threads, "CPU threads per trainer [cores / K]")->option_text("N")->check(nas::whole_number(1, 1024));
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    o.format = common.parsed_format();
    if (*t) o.trial = trial;
    if (!until.empty()) o.until = nas::parse_deadline(until, "--until", nas::now_unix());
    if (!precision.empty()) {
      o.precision = nas::config::parse_precision(precision);
      if (!o.precision) throw nas::UsageError("--precision: expected fp32, bf16, fp16 or auto, got '" + precision + "'");
    }
    if (!table.empty()) return nas::tabular::run_table(table_options(o, table), std::cout);
    return nas::train::run_train(o, std::cout);
  });
}
