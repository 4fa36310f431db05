// worker_options: the command-line options of a training worker, shared by nas-train and
// nas-distill (which runs the same worker with another loss), declared once
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "nas/app/cli.h"
#include "nas/tabular/run.h"
#include "nas/train/run.h"

namespace nas::app {

// What the options hold until they are checked (apply_worker_flags).
struct WorkerFlags {
  int64_t trial = 0;
  std::string until, precision;
  CLI::Option* trial_opt = nullptr;
};

// Adds --trial, --worker, --pack, --device, --precision, --until, --grace, --max-trials and
// --threads to `app`; `verb` ("train", "distill") words their help.
void add_worker_options(CLI::App& app, train::TrainOptions& o, WorkerFlags& f, const std::string& verb);

// Fills `o` from the parsed flags and the common options: the study file, the output format,
// --trial, the deadline and the precision; and the proxy screen (proxy::make_screen) that
// breeding workers use when the study's [search] screen asks. Throws UsageError naming the option.
void apply_worker_flags(const WorkerFlags& f, const CommonOptions& common, train::TrainOptions& o);

// nas-train --table: the worker options for the table job (nb201 lookups in place of training).
// Throws UsageError for neither --trial nor --worker, or a --pack that is not 1..64 (auto: 1).
tabular::TableOptions table_options(const train::TrainOptions& o, const std::string& table);

} // namespace nas::app
