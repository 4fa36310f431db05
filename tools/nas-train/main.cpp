// nas-train: train queued trials of a study, alone or as a packed worker
#include "nas/app/cli.h"
#include "nas/app/worker_options.h"
#include "nas/core/error.h"
#include "nas/tabular/run.h"
#include "nas/train/run.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Train trials of a study: one trial (--trial), or claim queued trials as a worker until none\n"
               "is left or the deadline is near, with K trainings packed in one process (--pack).\n"
               "SIGTERM, SIGUSR1 and SIGINT checkpoint every trial, return it to the queue and exit 0.",
               "nas-train"};
  nas::CommonOptions common;
  nas::train::TrainOptions o;
  nas::app::WorkerFlags flags;
  std::string table;
  nas::add_common_options(app, common, true, true);
  nas::app::add_worker_options(app, o, flags, "train");
  app.add_option("--table", table, "nb201 studies: look accuracies up in this NAS-Bench-201 CSV instead of training")
      ->option_text("FILE");
  return nas::run_tool(app, common, argc, argv, [&] {
    nas::app::apply_worker_flags(flags, common, o);
    if (!table.empty()) return nas::tabular::run_table(nas::app::table_options(o, table), std::cout);
    return nas::train::run_train(o, std::cout);
  });
}
