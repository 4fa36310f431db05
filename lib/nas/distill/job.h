// job: the distillation job -- nas-train's training job with the loss replaced by KD or DKD
// against the study's teacher (cached soft targets or the teacher run online), for the trials
// that distill. Everything else (claims, leases, checkpoints, packing, signals) is nas-train's.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "nas/distill/teacher.h"
#include "nas/store/teacher.h"
#include "nas/train/job.h"

namespace nas::distill {

// The teacher as every slot of a process shares it: its cached soft targets (rows of the
// training split, on the device) or the teacher itself, run online.
struct Distillation {
  store::TeacherRecord record;
  torch::Tensor soft_targets;           // defined: cached
  std::unique_ptr<Teacher> teacher;     // set: online
  std::string settings;                 // "kd T=4 alpha=0.9", for the results' note
};

class DistillJob : public train::TrainJob {
public:
  DistillJob(train::TrainContext& ctx, Distillation& d) : train::TrainJob(ctx), ctx_(ctx), d_(d) {}
  std::string verb() const override { return "distill"; }

protected:
  train::LossFn loss(worker::Slot& slot, const store::Claim& claim) override;
  std::vector<store::ResultValue> extra_results(worker::Slot& slot, const store::Claim& claim) override;

private:
  torch::Tensor teacher_logits(const train::LossBatch& b) const;
  train::TrainContext& ctx_;
  Distillation& d_;
};

} // namespace nas::distill
