// job: the training job the generic worker runs on each claimed trial -- build the trial's
// network from its genome and seed, train it to the rung's budget from its checkpoint, stop
// early when the search says so, evaluate, and record results and the state change in one
// transaction
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>

#include "nas/config/study_config.h"
#include "nas/data/dataset.h"
#include "nas/store/results.h"
#include "nas/train/device.h"
#include "nas/train/fit.h"
#include "nas/worker/worker.h"

namespace nas::train {

// What every slot of a training process shares (read-only while the slots run, but the lock).
struct TrainContext {
  std::string db;                      // the study file (artifacts live beside it)
  config::StudyConfig cfg;
  DeviceInfo dev;
  config::Precision precision = config::Precision::fp32;   // resolved for dev
  data::StudyData data;                // on dev, shared by every slot
  std::optional<double> peak;          // peak FLOP/s, for MFU
  std::string peak_note;
  int threads_per_slot = 1;            // CPU threads of each slot's LibTorch ops
  std::mutex init_mutex;               // the global RNG while a network is built
};

// Makes the job a nas-train-like tool runs over the shared context (TrainJob, or a subclass).
class TrainJob;
using TrainJobFactory = std::function<std::unique_ptr<TrainJob>(TrainContext&)>;

class TrainJob : public worker::Job {
public:
  explicit TrainJob(TrainContext& ctx) : ctx_(ctx) {}
  std::string verb() const override { return "train"; }
  std::vector<std::string> columns() const override { return {"epochs", "val_acc", "test_acc", "wall_s", "energy_j"}; }
  void in_thread(int slot, const std::function<void()>& loop) override;
  // Throws worker::TrialFailed("diverged", no retry) when the loss or weights became NaN/Inf,
  // TrialFailed("out of memory" or "error", retry) for LibTorch's errors (their first line, no
  // stack frames), worker::EnvironmentFault for a CUDA error, FileError when a checkpoint
  // cannot be written or removed. An unreadable checkpoint is removed and the trial trained
  // from scratch.
  worker::JobResult run(worker::Slot& slot, const store::Claim& claim) override;

protected:
  // The training loss of the claimed trial; unset (the default) is cross-entropy with the
  // trial's label smoothing. A distillation job overrides it with its KD/DKD loss over the
  // teacher's soft targets (found by the batch's sample indices).
  virtual LossFn loss(worker::Slot& slot, const store::Claim& claim) {
    (void)slot;
    (void)claim;
    return {};
  }
  // Results recorded with the trial's own when its rung ends (a distillation job: whether the
  // trial distilled, from which teacher, with which loss). None by default.
  virtual std::vector<store::ResultValue> extra_results(worker::Slot& slot, const store::Claim& claim) {
    (void)slot;
    (void)claim;
    return {};
  }

private:
  struct Trial;
  Trial prepare(worker::Slot& slot, const store::Claim& claim);
  FitHooks hooks(worker::Slot& slot, Trial& t);
  worker::JobResult train(worker::Slot& slot, const store::Claim& claim);
  FitOutcome fit_trial(worker::Slot& slot, Trial& t);
  worker::JobResult record(worker::Slot& slot, Trial& t, const FitOutcome& out, double joules_before);
  TrainContext& ctx_;
};

struct TrainOptions;

// nas-train's run (see run.h) with the job `make` builds: a tool whose job trains with another
// loss (nas-distill) reuses the device, packing, data and worker set-up as they are.
int run_training(const TrainOptions& o, std::ostream& out, const TrainJobFactory& make);

} // namespace nas::train
