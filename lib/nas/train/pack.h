// pack: how many trainings share one device -- from the cost model's estimate of a training's
// memory and the device's free memory (GPU), or the cores (CPU)
#pragma once
#include <cstdint>
#include <string>

#include "nas/config/study_config.h"
#include "nas/space/cost.h"

namespace nas::train {

// Bytes one training of this network needs on the device at `batch` samples: fp32 weights,
// gradients and optimizer state (momentum for SGD, two moments for AdamW), and the activations
// kept for the backward pass (every layer's output, and the activation after it).
int64_t training_bytes(const space::Cost& cost, int64_t batch, config::Optimizer optimizer);

struct PackPlan {
  int k = 1;
  std::string why;     // one line for the log: what decided k
};

// K for `--pack auto`. GPU (`cuda`): as many trainings of the largest queued network as fit in
// 80% of the free memory, with 512 MiB of workspace each, at most 8. CPU: one training per
// 2 cores (small networks do not scale past a few threads), at least 2 when there are 2 cores,
// at most 8.
PackPlan plan_pack(const std::string& device_kind, int64_t free_bytes, int cores, int64_t largest_training_bytes);

} // namespace nas::train
