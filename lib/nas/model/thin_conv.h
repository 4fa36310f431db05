// thin_conv: a convolution of few input channels (a network's stem on grey-scale or RGB images),
// its batch norm and activation as one autograd step, for training on the CPU. oneDNN runs such a
// convolution far below its speed on wide layers (1 -> 16 channels, 3x3 on 28x28: about a tenth),
// and its output then goes through memory four more times (batch statistics, normalisation, and
// in backward the input gradient written and read back for the weights' gradient). Here each
// output pixel's channels are computed from its input patch in registers: forward writes the
// convolution's output once while summing its batch statistics, then normalises and activates
// it (bn_act's pass); backward sums the gradient (bn_act's pass), then forms the convolution's
// output gradient per pixel and adds it into the weights' gradient in the same pass, never
// writing it to memory.
//
// The input's own gradient is not computed: the step applies only where the input needs none
// (a network's data). The results equal LibTorch's conv2d, batch_norm and the activation within
// float32 rounding (tests/unit/model/thin_conv_test.cpp); the running statistics and
// num_batches_tracked advance as the batch norm's own forward would advance them.
// Deterministic for a given thread count; not differentiable twice.
#pragma once
#include <torch/torch.h>

#include "nas/model/bn_act.h"

namespace nas::model {

// The most input channels the step takes. Measured faster than oneDNN's convolution + bn_act at
// 1 and 3 channels (thin_conv_test's timing case); 4 (RGBA) is taken on trust, and wider inputs
// are left to oneDNN, whose kernels gain with the channels.
constexpr int64_t kThinConvMaxChannels = 4;

// Whether thin_conv_bn_act can stand in for conv2d(x, weight, stride, padding = kernel / 2,
// no bias, no groups) followed by bn's forward: x a 4-d float32 CPU tensor that needs no
// gradient with at most kThinConvMaxChannels channels, a square odd kernel, and bn as
// bn_act_applies asks (training, affine, running statistics, fixed momentum).
bool thin_conv_applies(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                       const torch::nn::BatchNorm2dImpl& bn);

// act(bn(conv2d(x, weight))) in training mode, channels-last. Requires thin_conv_applies.
torch::Tensor thin_conv_bn_act(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                               torch::nn::BatchNorm2dImpl& bn, BnAct act);

} // namespace nas::model
