// bn_reference: what the tests of the fused batch-norm steps (bn_act, thin_conv) share: the
// activation as LibTorch applies it, the comparison they make, and a batch norm whose weights and
// running statistics are away from their defaults (so that a mix-up of any two shows).
#pragma once
#include <torch/torch.h>

#include "nas/model/bn_act.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <vector>

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

// The timing cases' measure of two ways of one step: run(way, seconds) does way 0 or 1 once and
// writes its forward and backward seconds; the ways take turns (a machine whose speed drifts
// slows both alike) for `rounds` rounds after `warmup`; per way, the medians in microseconds.
template <class Run>
std::array<std::array<double, 2>, 2> interleaved_medians_us(int warmup, int rounds, const Run& run) {
  std::vector<double> t[2][2];
  for (int i = 0; i < warmup + rounds; ++i)
    for (int way = 0; way < 2; ++way) {
      std::array<double, 2> s{};
      run(way, s);
      if (i < warmup) continue;
      t[way][0].push_back(s[0]);
      t[way][1].push_back(s[1]);
    }
  std::array<std::array<double, 2>, 2> out{};
  for (int way = 0; way < 2; ++way)
    for (int d = 0; d < 2; ++d) {
      std::vector<double>& v = t[way][d];
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      out[way][d] = v[v.size() / 2] * 1e6;
    }
  return out;
}

// Seconds since t0.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
