// policy: the queue policy a study's config asks for -- leases and attempts from [train],
// successive halving and early stopping from [budget]. One place for the workers and nas-db
// (count --claimable, check --repair); nas-proxy (a module beside train) reads [budget] itself.
#pragma once
#include "nas/config/study_config.h"
#include "nas/store/queue.h"

namespace nas::train {

// Without a [budget] section: no promotion (eta 0), no early stopping.
store::QueuePolicy queue_policy(const config::StudyConfig& cfg);

} // namespace nas::train
