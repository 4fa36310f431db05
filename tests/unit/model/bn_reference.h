// bn_reference: what the tests of the fused batch-norm steps (bn_act, thin_conv) share: the
// activation as LibTorch applies it, the comparison they make, and a batch norm whose weights and
// running statistics are away from their defaults (so that a mix-up of any two shows).
#pragma once
#include <torch/torch.h>

#include "nas/model/bn_act.h"

namespace nas::test {

inline torch::Tensor reference_act(const torch::Tensor& y, model::BnAct act) {
  if (act == model::BnAct::relu) return torch::relu(y);
  if (act == model::BnAct::relu6) return torch::hardtanh(y, 0, 6);
  return y;
}

// The largest difference relative to the larger values: a gradient that is zero in exact
// arithmetic (a batch of 2 has one) is compared at the scale of 1e-3.
inline double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-3)).item<double>();
}

// Weight, bias and running statistics drawn from the current generator.
inline void randomise(torch::nn::BatchNorm2d& bn) {
  torch::NoGradGuard no_grad;
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.uniform_(-0.5, 0.5);
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.5, 2);
}

} // namespace nas::test
