// plan: how many array tasks, trainings per GPU and GPU hours a study's queued work needs
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nas/config/study_config.h"

namespace nas::slurm {

// One trial still to train.
struct PlanTrial {
  int64_t id = 0;
  double epochs = 0;          // epochs left: budget minus epochs already done
  int64_t bytes = 0;          // device memory of its training (train::training_bytes)
  int64_t macs = 0;           // multiply-accumulates of one sample's forward pass
  int64_t batch = 128;        // its batch size
};

// The cost model's epoch time of a trial before calibration: its steps times slurm.step_s
// (kernel launches and optimizer work that small networks are bound by) plus its FLOPs
// (3 passes of 2 FLOPs a MAC per sample) at slurm.throughput (gpu) or slurm.cpu_throughput.
double predicted_epoch_s(const PlanTrial& t, int64_t train_samples, const config::SlurmConfig& s, bool gpu);

struct PlanInput {
  std::vector<PlanTrial> trials;
  int64_t train_samples = 0;                // samples per epoch
  double measured_s = 0;                    // seconds of the study's finished epochs, summed
  double predicted_s = 0;                   // predicted_epoch_s of the same epochs, summed
  int64_t measured_epochs = 0;              // how many epochs those are
  config::SlurmConfig slurm;                // after command-line overrides
  bool gpu = true;                          // trainings run on GPUs (else CPU cores)
  int cores = 1;                            // CPU cores a task has (CPU trainings)
};

struct Plan {
  int gpus = 1;                 // GPUs (or CPU tasks) used at a time
  int pack = 1;                 // trainings per GPU, all processes together
  int pack_per_process = 1;     // --pack of each nas-train process
  int processes = 1;            // nas-train processes per GPU
  std::string pack_why;         // what decided pack
  int64_t largest_bytes = 0;    // the largest queued training's device memory
  int64_t trials = 0;
  double epochs = 0;            // epochs left over all trials
  double work_s = 0;            // seconds of training, one training at a time at the epoch-time rate
  double calibration = 1;       // measured / predicted epoch time (1 before any epoch is measured)
  std::string rate_source;      // "calibrated on N measured epochs" or "estimated: ..."
  int64_t time_s = 0;           // the time limit of one task
  int64_t usable_s = 0;         // of which training (the limit less the early warning and start-up)
  int tasks = 1;                // array size
  int parallel = 1;             // the array's '%'
  double gpu_hours = 0;         // work_s / pack
  double wall_hours = 0;        // with `parallel` GPUs at a time
  std::vector<std::string> notes;
  std::string array() const { return "0-" + std::to_string(tasks - 1) + "%" + std::to_string(parallel); }
};

// The plan: pack from slurm.pack or the packing planner (train::plan_pack on slurm.gpu_mem and
// the largest queued training); the epoch time of a trial is predicted_epoch_s times the
// calibration measured / predicted over the study's finished epochs. tasks = the larger of the GPUs the trials can fill
// and ceil(work_s / (pack x usable_s)), at most 1001 (Slurm's default MaxArraySize; tasks
// requeue themselves while work is left). Throws UsageError when nothing is queued.
Plan make_plan(const PlanInput& in);

} // namespace nas::slurm
