// early_stop: whether a trial stops inside its rung -- its val_acc at an epoch against every
// trial's at the same epoch ([budget] early_stop)
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "nas/search/policy.h"

namespace nas::store {
class Db;
}

namespace nas::search {

// Where a trial's val_acc at `epoch` stands among the val_acc every trial recorded at that
// epoch: its position (1 = best; ties broken by id, as promotions rank) of n, how many a
// promotion at that point would keep (floor(n / eta)), and the value of the last kept one.
// Every trial at an epoch of the same rung follows the same learning-rate schedule there, so
// the same epoch compares like with like (the config refuses anneal together with proxy_start
// and early_stop, which would break that).
struct EpochStanding {
  int64_t position = 0, n = 0, keep = 0;
  std::optional<double> value, cutoff;
  bool below() const { return keep >= 1 && position > keep; }
};
EpochStanding standing_at_epoch(store::Db& db, int64_t trial_id, int epoch, double eta);

// The reason a trial at `rung` training to `budget_epochs` stops after `epoch` ("early stop:
// val acc ... is number P of N, below the top K (...)"), or "" to go on. Judged only inside the
// rung: after the previous rung's budget (a trial that started at a later rung by its proxy
// rank is not judged on the rungs it skipped) and before the rung's last epoch (the
// promotion's to judge); only with early_stop and promotion on.
std::string early_stop_reason(store::Db& db, const Policy& policy, int64_t trial_id, int rung, int epoch,
                              int64_t budget_epochs);

} // namespace nas::search
