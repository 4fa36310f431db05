// compute: the zero-cost proxies of ../shared/REFERENCES.md on a network (LibTorch)
#pragma once
#include <torch/torch.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nas/model/network.h"

namespace nas::proxy {

struct Score {
  double value = std::numeric_limits<double>::quiet_NaN();
  std::string flag;             // "" or why the value is degenerate: nan, inf, neg_inf, zero
  bool degenerate() const { return !flag.empty(); }
};

// A finite value as is; NaN and +-inf flagged (nan, inf, neg_inf).
Score checked(double v);

// What a proxy needs of a network: its forward, its Conv and Linear weights (no biases, no BN
// parameters), the module (train/eval, dtype, BN layers), an observer of its layers (conv and
// linear outputs before BN, activation inputs, the map before global pooling) and, for zen,
// a switch that removes residual links. target_of(model::Network) gives them; the unit tests
// build small hand-made ones.
struct Target {
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::function<void(model::LayerObserver)> observe;
  std::function<void(bool)> plain;
  torch::nn::Module* module = nullptr;
  // Weights of Conv and Linear layers: the parameters with two or more dimensions.
  std::vector<torch::Tensor> weights() const;
};
Target target_of(model::Network& net);

// One backward pass of the mean cross-entropy on (x, y), BN in train mode:
// grad_norm = sum of per-layer L2 norms of dL/dW; snip = sum |W * dL/dW|; fisher = sum over
// Conv/Linear outputs z of the per-channel 0.5 * mean_n (sum_space z * dL/dz)^2, times the
// weight elements of one output channel. Any of the three may be skipped (nullptr).
void gradient_proxies(Target& t, const torch::Tensor& x, const torch::Tensor& y, Score* grad_norm, Score* snip,
                      Score* fisher);
// grasp = sum(-W * H g): g = dL/dW (detached), H g = d(sum g * dL/dW)/dW.
Score grasp(Target& t, const torch::Tensor& x, const torch::Tensor& y);
// jacob_cov: J = dy/dx per sample (y summed over classes); -sum(log(l + 1e-5) + 1/(l + 1e-5))
// over the eigenvalues l of corrcoef(J).
Score jacob_cov(Target& t, const torch::Tensor& x);
// nwot: binary codes of every activation's input; K = sum c c^T + (1-c)(1-c)^T; log|det K|.
Score nwot(Target& t, const torch::Tensor& x);
// The count of units on which each pair of binary codes (a bool [n, units] tensor) agrees:
// c c^T + (1-c)(1-c)^T, float64 [n, n]. On the CPU from bit-packed codes (units - Hamming
// distance by popcount), elsewhere by one matmul.
torch::Tensor agreement_kernel(const torch::Tensor& codes);
// zico: gradients of two batches; per layer S = sum over elements with std != 0 of
// mean|g| / std (population std over the batches); sum of log S over layers with S != 0.
Score zico(Target& t, const torch::Tensor& x1, const torch::Tensor& y1, const torch::Tensor& x2,
           const torch::Tensor& y2);
// Data-free; both change the network's weights, so give them a fresh one.
// synflow: BN as identity, every parameter |.|, float64, input all ones of `shape` (C, H, W)
// with a batch of 1; R = sum(output); value log(sum |W * dR/dW|).
Score synflow(Target& t, const std::vector<int64_t>& shape);
// zen: Conv/Linear weights ~ N(0, 1), BN gamma 1 beta 0 in train mode, residual links off;
// x, eps ~ N(0, 1) of `batch` x shape; value log(mean_n sum |f(x) - f(x + 0.01 eps)|) + sum over
// BN layers of log sqrt(mean of the batch variance), f the map before global pooling.
Score zen(Target& t, const std::vector<int64_t>& shape, int64_t batch, uint64_t seed);

} // namespace nas::proxy
