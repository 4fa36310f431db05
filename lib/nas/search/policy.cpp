// policy: see policy.h
#include "nas/search/policy.h"
#include "nas/search/breed.h"

#include <algorithm>
#include <cmath>

namespace nas::search {

double Policy::rung_budget(int rung) const {
  return std::min(min_epochs * std::pow(eta, rung), max_epochs);
}

int Policy::last_rung() const {
  int r = 0;
  while (rung_budget(r) < max_epochs && r < 64) ++r;
  return r;
}

int64_t Policy::rung_keep(int64_t n) const {
  return eta > 0 ? int64_t(std::floor(double(n) / eta)) : 0;
}

Policy policy_of(const config::StudyConfig& cfg, std::shared_ptr<const Screen> screen) {
  Policy p;
  p.lease_s = cfg.train.lease_s;
  p.max_attempts = cfg.train.max_attempts;
  if (cfg.budget.given) {
    p.eta = cfg.budget.eta;
    p.min_epochs = cfg.budget.min_epochs;
    p.max_epochs = cfg.budget.max_epochs;
    p.early_stop = cfg.budget.early_stop;
    p.synchronous = cfg.budget.promotion == config::Promotion::synchronous;
  }
  const auto& s = cfg.search;
  if (s.objectives.size() > 1) {
    p.objectives = s.objectives;
    p.constraints = s.constraints;
  }
  p.search_epochs = s.epochs;
  p.wall_time_s = double(s.wall_time_s);
  p.train_epochs = double(cfg.train.epochs);
  const bool budgeted = s.evaluations > 0 || s.epochs > 0 || s.wall_time_s > 0;
  if (s.strategy != config::StrategyKind::random && budgeted && cfg.data.shape.size() == 3)
    p.breeder = std::make_shared<const Breeder>(cfg, std::nullopt, std::move(screen));
  return p;
}

size_t keep_count(const config::BudgetConfig& b, size_t n) {
  if (n == 0) return 0;
  const size_t keep = b.keep_is_count ? size_t(b.keep) : size_t(std::ceil(b.keep * double(n)));
  return std::min(std::max<size_t>(keep, 1), n);
}

double first_budget(const config::StudyConfig& cfg) {
  return cfg.budget.given ? cfg.budget.min_epochs : double(cfg.train.epochs);
}

double last_budget(const config::StudyConfig& cfg) {
  return cfg.budget.given ? cfg.budget.max_epochs : double(cfg.train.epochs);
}

} // namespace nas::search
