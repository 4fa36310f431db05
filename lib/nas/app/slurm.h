// slurm: what nas-slurm does -- plan, submit (to Slurm or as local processes), status, cancel
#pragma once
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nas/core/table.h"

namespace nas::app {

struct SlurmOptions {
  std::string db;
  Format format = Format::table;
  std::string bin_dir;                              // folder of the nas-* tools (nas-slurm's own)
  std::string templates;                            // --templates DIR ("" : [slurm] templates or installed)
  std::vector<std::string> stages;                  // empty: proxy,train,pareto when the study has sampled candidates, else train,pareto
  std::vector<std::string> objectives = {"val_acc:max", "params:min"};
  // overrides of the study's [slurm] section
  std::optional<int> gpus, pack, array_parallelism;
  std::optional<std::string> time, gpu_mem, partition, account, qos;
  // a teacher stage first (nas-distill teacher under srun, templates/teacher.sbatch.in)
  std::optional<std::string> teacher_genome, teacher_arch, teacher_time, teacher_mem;
  std::optional<int> teacher_epochs, teacher_nodes, teacher_ranks;
  std::vector<std::string> teacher_augment;   // crop, flip
  bool dry_run = false;                             // plan: write the scripts to the study folder
  bool local = false;                               // plan/submit: local processes instead of Slurm
  bool wait = false;                                // submit: until the jobs have ended
  bool all = false;                                 // status/cancel: every submission, not only the latest
};

// plan: prints the plan and the rendered scripts; 0. UsageError (2) when nothing is queued or
// an option or the [slurm] section is invalid.
int run_slurm_plan(const SlurmOptions& o, std::ostream& out);
// submit: renders, submits and records the jobs; prints their ids. With wait: until they have
// ended, then the exit status of a local run (1 when it failed), else 0.
int run_slurm_submit(const SlurmOptions& o, std::ostream& out);
// status: the study's counts by state next to the state of each job of the latest submission.
int run_slurm_status(const SlurmOptions& o, std::ostream& out);
// cancel: cancels the latest submission's jobs (scancel, or SIGTERM to the local runner).
int run_slurm_cancel(const SlurmOptions& o, std::ostream& out);

} // namespace nas::app
