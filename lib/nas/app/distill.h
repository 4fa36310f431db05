// distill: nas-distill --report -- what distillation changed, trial by trial
#pragma once
#include <ostream>
#include <string>

#include "nas/core/table.h"

namespace nas::app {

struct DistillReportOptions {
  std::string db;                       // the study whose trials distilled
  std::string baseline;                 // a study that trained the same genomes without distillation
  Format format = Format::table;
};

// Pairs each distilled (trial, rung) of `db` with the trial of the same genome trained without
// distillation to the same epochs in `baseline`; prints one row per pair (val_acc of each,
// the gain) and a summary: pairs, mean gain with its 95% confidence interval (Student's t), the
// share of pairs that gained, and the Spearman correlation of the two rankings (does
// distillation change which networks win?). Throws UsageError when no pair is found.
int run_distill_report(const DistillReportOptions& o, std::ostream& out);

} // namespace nas::app
