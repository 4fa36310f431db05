// pack: the packing planner
#include "nas/train/pack.h"

#include <algorithm>

namespace nas::train {

int64_t training_bytes(const space::Cost& cost, int64_t batch, config::Optimizer optimizer) {
  const int64_t state = optimizer == config::Optimizer::adamw ? 2 : 1;
  int64_t activations = 0;
  for (const auto& l : cost.layers) {
    int64_t elements = 1;
    for (int64_t d : l.out) elements *= d;
    activations += 2 * elements;   // the layer's output and the activation or sum after it
  }
  return 4 * cost.params * (2 + state) + 4 * activations * batch;
}

PackPlan plan_pack(const std::string& device_kind, int64_t free_bytes, int cores, int64_t largest_training_bytes) {
  PackPlan p;
  if (device_kind == "cuda") {
    const int64_t per = largest_training_bytes + (int64_t(512) << 20);
    const int64_t fit = int64_t(double(free_bytes) * 0.8) / std::max<int64_t>(per, 1);
    p.k = int(std::clamp<int64_t>(fit, 1, 8));
    p.why = std::to_string(p.k) + " trainings: " + std::to_string(free_bytes >> 20) + " MiB free, " +
            std::to_string(per >> 20) + " MiB each for the largest queued network";
  } else {
    // Small networks use extra intra-op threads poorly: on 2 cores, 2 trainings of 1 thread
    // train 1.24x the trials/hour of 1 training of 2 threads (bench/results/pack-throughput-cpu.md).
    p.k = std::clamp(cores / 2, cores >= 2 ? 2 : 1, 8);
    p.why = std::to_string(p.k) + " trainings: one per 2 of " + std::to_string(cores) + " cores";
  }
  return p;
}

} // namespace nas::train
