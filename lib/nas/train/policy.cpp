// policy: see policy.h
#include "nas/train/policy.h"

namespace nas::train {

store::QueuePolicy queue_policy(const config::StudyConfig& cfg) {
  store::QueuePolicy p;
  p.lease_s = cfg.train.lease_s;
  p.max_attempts = cfg.train.max_attempts;
  if (cfg.budget.given) {
    p.eta = cfg.budget.eta;
    p.min_epochs = cfg.budget.min_epochs;
    p.max_epochs = cfg.budget.max_epochs;
    p.early_stop = cfg.budget.early_stop;
    p.synchronous = cfg.budget.promotion == "synchronous";
  }
  return p;
}

} // namespace nas::train
