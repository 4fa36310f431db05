// trained_network: a trial's trained network as LibTorch holds it (for tools and tests that run
// it beside its exports); trained.h is the torch-free face of the same.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "nas/config/study_config.h"
#include "nas/model/network.h"

namespace nas::store {
class Db;
}

namespace nas::measure {

// The trial's network with the weights of its final checkpoint, in eval mode on the CPU. Throws
// UsageError for a trial without a checkpoint, train::CheckpointUnreadable for a broken one.
model::Network trained_network(store::Db& db, const std::string& db_path, const config::StudyConfig& cfg, int64_t trial);

} // namespace nas::measure
