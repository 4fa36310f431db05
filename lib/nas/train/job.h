// job: the training job the generic worker runs on each claimed trial -- build the trial's
// network from its genome and seed, train it to the rung's budget from its checkpoint, stop
// early when the search says so, evaluate, and record results and the state change in one
// transaction
#pragma once
#include <mutex>
#include <optional>
#include <string>

#include "nas/config/study_config.h"
#include "nas/data/dataset.h"
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

class TrainJob : public worker::Job {
public:
  explicit TrainJob(TrainContext& ctx) : ctx_(ctx) {}
  std::string verb() const override { return "train"; }
  std::vector<std::string> columns() const override { return {"epochs", "val_acc", "test_acc", "wall_s", "energy_j"}; }
  void in_thread(int slot, const std::function<void()>& loop) override;
  // Throws worker::TrialFailed("diverged", no retry) when the loss or weights became NaN/Inf.
  worker::JobResult run(worker::Slot& slot, const store::Claim& claim) override;

private:
  struct Trial;
  Trial prepare(worker::Slot& slot, const store::Claim& claim);
  FitHooks hooks(worker::Slot& slot, Trial& t);
  worker::JobResult record(worker::Slot& slot, Trial& t, const FitOutcome& out, double joules_before);
  TrainContext& ctx_;
};

} // namespace nas::train
