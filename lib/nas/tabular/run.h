// run: nas-train --table -- the generic worker with the table job over an nb201 study (torch-free)
#pragma once
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "nas/core/table.h"
#include "nas/search/screen.h"

namespace nas::tabular {

struct TableOptions {
  std::string db;                   // study file
  std::string table;                // --table FILE: the NAS-Bench-201 CSV
  std::string column = "CIFAR10TestAccuracy200Epochs";  // its accuracy column
  std::optional<int64_t> trial;     // --trial ID: look up this trial only
  int slots = 1;                    // --pack K: worker threads
  std::optional<int64_t> max_trials;// per slot
  std::optional<double> until;      // deadline (Unix seconds)
  double grace_s = 60;
  Format format = Format::table;
  search::MakeScreen screen;        // proxy-guided moves ([search] screen): the tool's proxy screen (unset: none)
};

// Runs the table job on the study's queue (promotion and, with an evolutionary [search] and
// evaluations, breeding included) until nothing is left to claim. Writes one row per trial to
// `out`. Returns 0, or 1 when a --trial failed or a slot hit a database error. Throws
// UsageError for a study that is not nb201 or a table that cannot be read.
int run_table(const TableOptions& o, std::ostream& out);

} // namespace nas::tabular
