// pipeline: the study's batch scripts rendered from templates/, submitted to Slurm with
// dependencies or run as local background processes, and their state
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/slurm/plan.h"
#include "nas/store/jobs.h"

namespace nas::slurm {

// A teacher trained data-parallel before the other stages (templates/teacher.sbatch.in).
struct TeacherStage {
  std::string network;                   // nas-distill teacher's --genome FILE or --arch STRING, quoted
  int epochs = 0;
  int nodes = 1;
  int tasks_per_node = 1;                // ranks a node (one a GPU)
  std::string time;                      // the job's time limit
  std::string memory;                    // the job's --mem (a node's, all its ranks); "": the site's default
  std::string augment;                   // the teacher's own augmentations ("crop,flip", ...); "": none
};

struct PipelineOptions {
  std::string db;                        // absolute path of the study file
  std::string bin_dir;                   // folder of the nas-* tools the jobs run
  std::string templates_dir;             // folder of the *.sbatch.in and local.sh.in templates
  std::string out_dir;                   // where the rendered scripts go
  std::vector<std::string> stages;       // in order, from: teacher (first), proxy, train, measure, pareto
  std::optional<TeacherStage> teacher;   // the teacher stage's settings (needed with stage teacher)
  std::vector<std::string> objectives;   // the Pareto stage's objectives (NAME:min|max)
  int local_gpus = 0;                    // GPUs of this machine (local runs: one worker process each; 0: CPU)
};

struct StageScript {
  std::string stage;                     // teacher | proxy | train | measure | pareto
  std::string path;                      // the rendered script
  std::string array;                     // train: "0-N%P"
  std::string dependency;                // on the stage before: afterok | afterany | ""
};

struct Pipeline {
  std::string dir;
  std::vector<StageScript> stages;
  std::string local_runner;              // the rendered local.sh (runs the same scripts without Slurm)
};

// The templates folder: `explicit_dir` when given, else $NAS_TEMPLATES, else share/minnow/templates
// beside the tools' folder, else the source tree's templates/. Throws UsageError when the
// folder has no train.sbatch.in.
std::string find_templates(const std::string& explicit_dir, const std::string& bin_dir);

// UsageError for an unknown stage, or a stage teacher without the teacher's settings
// (`teacher` false) or not first.
void check_stages(const std::vector<std::string>& stages, bool teacher);

// Renders one script per stage and the local runner into o.out_dir (created). Each stage
// depends on the one before: proxy and train with afterok (no scoring or training without the
// teacher, no training on a failed scoring), measure and pareto with afterany (a failed task
// must not block the report). Throws ConfigError for a template with an unknown placeholder,
// UsageError as check_stages does.
Pipeline write_pipeline(const config::StudyConfig& cfg, const Plan& plan, const PipelineOptions& o);

// The sbatch command line of a stage, given the job id of the stage before ("" for none).
std::vector<std::string> sbatch_command(const StageScript& s, const std::string& previous_job);

// Submits the stages in order with `sbatch --parsable`, each depending on the one before.
// When a later sbatch fails, the jobs already submitted are cancelled and Error is thrown with
// sbatch's message: a chain is submitted whole or not at all.
std::vector<store::JobRecord> submit_slurm(const Pipeline& p, int64_t submission);

// Starts the local runner as a background process in its own session (log: local.log in the
// pipeline folder) and returns its row. The runner writes local.rc when it ends.
store::JobRecord submit_local(const Pipeline& p, int64_t submission);

// The state of a submitted job: for Slurm, its tasks' states from squeue (e.g. "RUNNING 2,
// PENDING 3"), else "finished" (sacct's state when accounting answers); for a local runner,
// "running", "finished (exit N)" or "gone" (the process ended without its rc file).
std::string job_state(const store::JobRecord& j);

// True while the job is pending or running.
bool job_active(const store::JobRecord& j);

// Cancels the jobs (scancel; local: SIGTERM to the runner's process group, which releases the
// trials in training). Returns one line per job.
std::vector<std::string> cancel_jobs(const std::vector<store::JobRecord>& jobs);

} // namespace nas::slurm
