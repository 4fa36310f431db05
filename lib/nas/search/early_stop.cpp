// early_stop: see early_stop.h
#include "nas/search/early_stop.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <cstdio>

namespace nas::search {

EpochStanding standing_at_epoch(store::Db& db, int64_t trial_id, int epoch, double eta) {
  EpochStanding s;
  Policy p;   // for its rung_keep: floor(n / eta)
  p.eta = eta;
  db.read([&] {   // one snapshot for the rank and the cutoff
    s = EpochStanding{};
    const store::EpochRank r = store::rank_at_epoch(db, trial_id, epoch);
    if (!r.value) return;
    s.value = r.value;
    s.n = r.n;
    s.position = r.position;
    s.keep = p.rung_keep(r.n);
    if (s.keep >= 1) s.cutoff = store::value_at_epoch_rank(db, epoch, s.keep);
  });
  return s;
}

std::string early_stop_reason(store::Db& db, const Policy& policy, int64_t trial_id, int rung, int epoch,
                              int64_t budget_epochs) {
  if (!policy.early_stop || policy.eta <= 0 || epoch >= budget_epochs) return "";
  if (rung > 0 && double(epoch) <= policy.rung_budget(rung - 1)) return "";
  const EpochStanding st = standing_at_epoch(db, trial_id, epoch, policy.eta);
  if (!st.below()) return "";
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s val acc %.2f%% at epoch %d is number %lld of %lld, below the top %lld (%.2f%%)",
                store::kEarlyStopReason, 100 * st.value.value_or(0), epoch, (long long)st.position, (long long)st.n, (long long)st.keep,
                100 * st.cutoff.value_or(0));
  return buf;
}

} // namespace nas::search
