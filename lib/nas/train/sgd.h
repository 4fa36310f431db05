// sgd: torch::optim::SGD with its update done in one pass over each parameter on the CPU. LibTorch's
// step runs four to five operators a parameter (weight decay, the momentum buffer's two, Nesterov's
// look-ahead, the update), each a dispatch and a sweep of its own; the small networks of a search
// have tiny parameters, for which the dispatches rather than the arithmetic are the cost (not
// measured apart: the fused pass itself took 0.04% of one nas-train epoch's perf samples).
// Same arithmetic, same state (SGDParamState's momentum buffer, keyed as SGD keys it), so that
// checkpoints move between the two. A step fuses all parameters or none: where any parameter,
// gradient or buffer is not a dense float32 CPU tensor laid out like its parameter (a CUDA run),
// or a closure is given, LibTorch's own step runs for the whole step.
#pragma once
#include <torch/torch.h>

namespace nas::train {

class FusedSgd : public torch::optim::SGD {
public:
  FusedSgd(std::vector<torch::Tensor> params, torch::optim::SGDOptions options)
      : torch::optim::SGD(std::move(params), options) {}
  torch::Tensor step(LossClosure closure = nullptr) override;
  // Whether a step now (with the gradients as they are) runs fused.
  bool fuses() const;
};

} // namespace nas::train
