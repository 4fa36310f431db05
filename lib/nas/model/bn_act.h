// bn_act: a batch norm and the activation after it as one autograd step, for training on the
// CPU. LibTorch runs them as two operators that each stream the layer's activations through
// memory several times (batch statistics, normalisation, activation; in backward the
// activation's mask, then the norm's two passes); for the small networks of a search those
// passes, not the convolutions, are the largest share of a step on 2 cores. Here: forward
// reads the input twice (moments, then normalise and activate), backward reads the gradient
// and the input twice (the activation's mask recomputed from the input, not read from the
// output) and writes the input's gradient once.
//
// The results equal LibTorch's batch_norm followed by relu / hardtanh(0, 6) within float32
// rounding (tests/unit/model/bn_act_test.cpp), and the module's running statistics and
// num_batches_tracked advance as its own forward would advance them. Deterministic for a given
// thread count. Backward is not differentiable again (no Hessian products through it: the
// proxies that need them never turn it on).
#pragma once
#include <torch/torch.h>

namespace nas::model {

enum class BnAct { none, relu, relu6 };

// Whether bn_act can stand in for bn's forward on x: bn in training with affine weights,
// running statistics and a fixed momentum; x a 4-d float32 CPU tensor in channels-last layout
// with more than one value per channel (for one, LibTorch's own error is kept).
bool bn_act_applies(const torch::Tensor& x, const torch::nn::BatchNorm2dImpl& bn);

// act(bn(x)) in training mode. Requires bn_act_applies(x, bn).
torch::Tensor bn_act(const torch::Tensor& x, torch::nn::BatchNorm2dImpl& bn, BnAct act);

} // namespace nas::model
