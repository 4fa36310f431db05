// worker_options: see worker_options.h
#include "nas/app/worker_options.h"
#include "nas/core/deadline.h"
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/proxy/screen.h"

namespace nas::app {

void add_worker_options(CLI::App& app, train::TrainOptions& o, WorkerFlags& f, const std::string& verb) {
  f.trial_opt = app.add_option("--trial", f.trial, verb + " this trial (queued or sampled) and exit")->option_text("ID");
  auto* w = app.add_flag("--worker", o.worker, "claim queued trials and " + verb + " them until none is left");
  f.trial_opt->excludes(w);
  app.add_option("--pack", o.pack, "trainings in this process, each in its own thread, or auto [1]")->option_text("K|auto");
  app.add_option("--device", o.device, "cpu, cuda, cuda:N or auto [auto]")->option_text("DEV");
  app.add_option("--precision", f.precision, "fp32, bf16, fp16 or auto [the study's train.precision]")->option_text("P");
  app.add_option("--until", f.until, "deadline: 90m, +2h, 2026-11-23T18:00:00Z or @UNIX [SLURM_JOB_END_TIME]")
      ->option_text("TIME");
  app.add_option("--grace", o.grace_s, "stop claiming, checkpoint and release this long before the deadline [60]")
      ->option_text("SECONDS")
      ->check(number_at_least(0));
  app.add_option("--max-trials", o.max_trials, "at most N trials per trainer")
      ->option_text("N")
      ->check(whole_number(1, 1000000000));
  app.add_option("--threads", o.threads, "CPU threads per trainer [cores / K]")->option_text("N")->check(whole_number(1, 1024));
}

void apply_worker_flags(const WorkerFlags& f, const CommonOptions& common, train::TrainOptions& o) {
  o.db = require_db(common);
  o.format = common.parsed_format();
  if (*f.trial_opt) o.trial = f.trial;
  if (!f.until.empty()) o.until = parse_deadline(f.until, "--until", now_unix());
  if (!f.precision.empty()) {
    o.precision = config::parse_precision(f.precision);
    if (!o.precision) throw UsageError("--precision: expected fp32, bf16, fp16 or auto, got '" + f.precision + "'");
  }
  o.screen = proxy::make_screen;   // proxy-guided moves, when the study's [search] screen asks
}

tabular::TableOptions table_options(const train::TrainOptions& o, const std::string& table) {
  if (!o.trial && !o.worker) throw UsageError("give --trial ID or --worker");
  tabular::TableOptions t;
  t.db = o.db;
  t.table = table;
  t.trial = o.trial;
  if (o.pack == "auto") t.slots = 1;
  else if (o.pack.find_first_not_of("0123456789") != std::string::npos || o.pack.empty() || o.pack.size() > 2 ||
           std::stoi(o.pack) < 1 || std::stoi(o.pack) > 64)
    throw UsageError("--pack: expected a number of trainings from 1 to 64 or auto, got '" + o.pack + "'");
  else t.slots = std::stoi(o.pack);
  t.max_trials = o.max_trials;
  t.until = o.until;
  t.grace_s = o.grace_s;
  t.format = o.format;
  t.screen = o.screen;
  return t;
}

} // namespace nas::app
