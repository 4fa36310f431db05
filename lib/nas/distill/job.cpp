// job: see job.h
#include "nas/distill/job.h"
#include "nas/distill/loss.h"
#include "nas/space/hparams.h"
#include "nas/store/results.h"
#include "nas/train/step.h"

#include <cstdio>

namespace nas::distill {

// The teacher's logits for the batch: the cached rows of its samples, or the teacher run on the
// very view the student saw (in the trainer's reduced precision on a GPU).
torch::Tensor DistillJob::teacher_logits(const train::LossBatch& b) const {
  if (d_.soft_targets.defined()) return d_.soft_targets.index_select(0, b.indices);
  const torch::Device device = b.x.device();
  train::AutocastScope ac(train::autocasts(ctx_.precision, device), train::autocast_dtype(ctx_.precision));
  return d_.teacher->logits(b.x);
}

train::LossFn DistillJob::loss(worker::Slot& slot, const store::Claim& claim) {
  const auto rec = store::load_trial(slot.db(), claim.trial_id);
  if (!space::trial_distills(ctx_.cfg, rec.hash, rec.hparams)) return {};   // cross-entropy, as nas-train
  const config::DistillConfig& d = ctx_.cfg.distill;
  if (d.loss == config::DistillLoss::kd) {
    const KdParams p{d.temperature, d.alpha};
    return [this, p](const torch::Tensor& logits, const train::LossBatch& b) {
      return kd_loss(logits, teacher_logits(b), b.labels, p);
    };
  }
  const DkdParams p{d.temperature, d.alpha, d.beta, d.warmup_epochs};
  return [this, p](const torch::Tensor& logits, const train::LossBatch& b) {
    return dkd_loss(logits, teacher_logits(b), b.labels, p, b.epoch);
  };
}

std::vector<store::ResultValue> DistillJob::extra_results(worker::Slot& slot, const store::Claim& claim) {
  const auto rec = store::load_trial(slot.db(), claim.trial_id);
  const bool on = space::trial_distills(ctx_.cfg, rec.hash, rec.hparams);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * d_.record.test_acc);
  const std::string teacher = "teacher " + std::to_string(d_.record.id) + " (" + d_.record.kind + " " +
                              (d_.record.arch.empty() ? d_.record.path : d_.record.arch) + ", test acc " + acc + ")";
  const std::string note = on ? d_.settings + (d_.soft_targets.defined() ? ", cached" : ", online") + " from " + teacher
                              : "trained alone ([distill] trials = " + config::to_string(ctx_.cfg.distill.trials) + ")";
  return {{"distilled", on ? 1.0 : 0.0, "", note},
          {"teacher_id", on ? std::optional<double>(double(d_.record.id)) : std::nullopt, "", ""}};
}

} // namespace nas::distill
