// run: what nas-train does -- train one trial, or claim trials as a worker with K packed
// trainer threads sharing one copy of the data on the device, until the queue is empty, a
// deadline is near, or a signal asks to stop (torch-free interface)
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "nas/config/study_config.h"
#include "nas/core/table.h"
#include "nas/search/screen.h"

namespace nas::train {

struct TrainOptions {
  std::string db;                   // study file
  std::optional<int64_t> trial;     // --trial ID: train this trial only
  bool worker = false;              // --worker: claim trials until none is left
  std::string pack = "1";           // --pack K | auto
  std::string device = "auto";      // cpu | cuda | cuda:N | auto
  std::optional<config::Precision> precision;  // overrides [train].precision when set
  std::optional<double> until;      // deadline (Unix seconds); default SLURM_JOB_END_TIME
  double grace_s = 60;              // stop claiming / checkpoint and release this long before it
  std::optional<int64_t> max_trials;// per trainer thread
  std::optional<int> threads;       // CPU threads per trainer (default: cores / K)
  Format format = Format::table;    // summary of the trials trained, on stdout
  search::MakeScreen screen;        // proxy-guided moves ([search] screen): the tool's proxy screen (unset: none)
};

// Runs nas-train; writes one row per trial trained to `out`. Returns the exit code: 0 (also
// when stopped by a signal or a deadline, or when nothing was queued), 1 when a trial given
// with --trial failed or a database error stopped a trainer. Throws nas::Error subclasses for
// usage errors (exit 2) found before training starts.
int run_train(const TrainOptions& opts, std::ostream& out);

} // namespace nas::train
