// thin_conv_test: the fused convolution of few input channels + batch norm + activation equals
// LibTorch's conv2d, batch_norm and the activation in training: the output, the running
// statistics and num_batches_tracked, and the gradients of the convolution's weights and the
// norm's weight and bias; for odd shapes, strides, kernels, channel counts that are not a
// multiple of a vector, each activation, and inputs far from zero mean. Deterministic for a
// thread count; refused where it does not apply.
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "bn_reference.h"
#include "nas/core/heap.h"
#include "nas/model/bn_act.h"
#include "nas/model/network.h"
#include "nas/model/thin_conv.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace nas;
using model::BnAct;
using test::max_rel;
using test::reference_act;

namespace {

struct Layer {
  torch::Tensor weight;   // the convolution's
  torch::nn::BatchNorm2d bn{nullptr};
};

Layer make_layer(int64_t ci, int64_t co, int64_t k, uint64_t seed) {
  torch::manual_seed(seed);
  Layer l{torch::randn({co, ci, k, k}) / double(k), torch::nn::BatchNorm2d(co)};
  test::randomise(l.bn);
  return l;
}

struct Pass {
  torch::Tensor y, dconv, dw, db, running_mean, running_var, tracked;
  bool dconv_like_weight;   // the weights' gradient in the weights' own strides
};

// The same strides wherever a size exceeds 1 (what autograd and the optimizer compare).
bool same_layout(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  return true;
}

// One forward and backward with a fixed upstream gradient g, fused or LibTorch's (in float64 for
// the reference). The fused one gets its weights channels-last, as a trainer's network has them.
Pass run(const torch::Tensor& x, const torch::Tensor& g, int64_t co, int64_t k, int64_t stride, BnAct act, bool fused) {
  Layer l = make_layer(x.size(1), co, k, 5);
  if (!fused) l.bn->to(torch::kFloat64);
  torch::Tensor w = (fused ? model::to_channels_last(l.weight) : l.weight.to(torch::kFloat64)).set_requires_grad(true);
  torch::Tensor y;
  if (fused) {
    y = model::thin_conv_bn_act(x, w, stride, *l.bn, act);
  } else {
    const auto opts = torch::nn::functional::Conv2dFuncOptions().stride(stride).padding(k / 2);
    y = reference_act(l.bn->forward(torch::nn::functional::conv2d(x.to(torch::kFloat64), w, opts)), act);
  }
  (y * g.to(y.dtype())).sum().backward();
  const auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  return {f(y.detach()), f(w.grad()), f(l.bn->weight.grad()), f(l.bn->bias.grad()), f(l.bn->running_mean),
          f(l.bn->running_var), l.bn->num_batches_tracked.clone(), same_layout(w.grad(), w)};
}

// Sets the intra-op threads for a scope: the kernels split rows into one chunk a thread.
struct Threads {
  explicit Threads(int n) : before(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before); }
  int before;
};

torch::Tensor channels_last(torch::Tensor t) { return t.contiguous(torch::MemoryFormat::ChannelsLast); }

// The output's shape of a "same"-padded convolution.
std::vector<int64_t> out_shape(const torch::Tensor& x, int64_t co, int64_t stride) {
  return {x.size(0), co, (x.size(2) - 1) / stride + 1, (x.size(3) - 1) / stride + 1};
}

} // namespace

TEST_CASE("thin_conv_bn_act equals conv2d, batch_norm and the activation, forward and backward") {
  struct Case {
    std::vector<int64_t> shape;
    int64_t co, k, stride;
    double offset;   // added to the input: far from zero mean
  };
  const std::vector<Case> cases = {{{8, 1, 28, 28}, 16, 3, 1, 0},  {{3, 1, 7, 5}, 24, 3, 2, 0},
                                   {{4, 3, 9, 9}, 8, 5, 1, 0.5},   {{2, 2, 6, 6}, 40, 1, 1, 0},
                                   {{5, 4, 11, 6}, 16, 3, 3, 100}, {{1, 1, 1, 2}, 4, 3, 1, -3},
                                   {{16, 3, 32, 32}, 32, 3, 2, 0}};
  torch::manual_seed(11);
  // one thread, and three (chunks that start inside an image and hold part of a row group)
  for (int threads : {1, 3})
  for (const auto& c : cases) {
    Threads scope(threads);
    for (BnAct act : {BnAct::none, BnAct::relu, BnAct::relu6}) {
      const torch::Tensor x = torch::randn(c.shape) * 3 + c.offset;
      const torch::Tensor g = channels_last(torch::randn(out_shape(x, c.co, c.stride)));
      const Pass want = run(x, g, c.co, c.k, c.stride, act, false), got = run(x, g, c.co, c.k, c.stride, act, true);
      INFO("shape " << torch::IntArrayRef(c.shape) << " co " << c.co << " k " << c.k << " stride " << c.stride
                    << " act " << int(act) << " threads " << threads);
      DOCTEST_CHECK(got.y.is_contiguous(torch::MemoryFormat::ChannelsLast));
      DOCTEST_CHECK(got.dconv_like_weight);
      DOCTEST_REQUIRE(got.y.sizes() == want.y.sizes());
      DOCTEST_CHECK(max_rel(got.y, want.y) < 2e-5);
      DOCTEST_CHECK(max_rel(got.running_mean, want.running_mean) < 1e-5);
      DOCTEST_CHECK(max_rel(got.running_var, want.running_var) < 1e-4);
      DOCTEST_CHECK(got.tracked.item<int64_t>() == 1);
      // far from zero mean the float32 sums lose digits to the offset (LibTorch's as well)
      DOCTEST_CHECK(max_rel(got.dconv, want.dconv) < (std::abs(c.offset) > 1 ? 1e-3 : 1e-4));
      DOCTEST_CHECK(max_rel(got.dw, want.dw) < 1e-4);
      DOCTEST_CHECK(max_rel(got.db, want.db) < 1e-4);
    }
  }
}

TEST_CASE("thin_conv_bn_act takes any input and gradient layout, and is deterministic") {
  const torch::Tensor x = channels_last(torch::randn({16, 3, 10, 10}));   // RGB channels-last, as the trainers pass it
  const torch::Tensor g = torch::randn({16, 16, 1, 1}).expand({16, 16, 10, 10});   // broadcast, as a global pool sends
  const Pass want = run(x, g, 16, 3, 1, BnAct::relu, false), a = run(x, g, 16, 3, 1, BnAct::relu, true),
             b = run(x, g, 16, 3, 1, BnAct::relu, true);
  DOCTEST_CHECK(max_rel(a.dconv, want.dconv) < 1e-3);
  DOCTEST_CHECK(torch::equal(a.y, b.y));
  DOCTEST_CHECK(torch::equal(a.dconv, b.dconv));
  DOCTEST_CHECK(torch::equal(a.dw, b.dw));
}

TEST_CASE("thin_conv_bn_act with frozen convolution weights still trains the batch norm") {
  const torch::Tensor x = torch::randn({4, 1, 9, 9});
  const torch::Tensor g = channels_last(torch::randn({4, 16, 9, 9}));
  Layer l = make_layer(1, 16, 3, 5);   // the weights run() makes
  model::thin_conv_bn_act(x, l.weight, 1, *l.bn, BnAct::relu).backward(g);   // the weights need no gradient
  DOCTEST_CHECK_FALSE(l.weight.grad().defined());
  const Pass want = run(x, g, 16, 3, 1, BnAct::relu, false);
  DOCTEST_REQUIRE(l.bn->weight.grad().defined());
  DOCTEST_CHECK(max_rel(l.bn->weight.grad(), want.dw) < 1e-4);
  DOCTEST_CHECK(max_rel(l.bn->bias.grad(), want.db) < 1e-4);
}

TEST_CASE("thin_conv_bn_act applies only to a training-mode float32 CPU stem whose input needs no gradient") {
  Layer l = make_layer(1, 16, 3, 1);
  const torch::Tensor x = torch::randn({2, 1, 8, 8});
  DOCTEST_CHECK(model::thin_conv_applies(x, l.weight, 1, *l.bn));
  DOCTEST_CHECK(model::thin_conv_applies(x, l.weight, 2, *l.bn));
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(x.clone().set_requires_grad(true), l.weight, 1, *l.bn));
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(x.to(torch::kFloat64), l.weight, 1, *l.bn));
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(torch::randn({1, 1, 1, 1}), l.weight, 1, *l.bn));   // one value a channel
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(x, torch::randn({16, 1, 2, 2}), 1, *l.bn));         // even kernel
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(x, torch::randn({8, 1, 3, 3}), 1, *l.bn));          // not bn's channels
  Layer wide = make_layer(5, 16, 3, 1);   // more input channels than the step takes
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(torch::randn({2, 5, 8, 8}), wide.weight, 1, *wide.bn));
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(torch::randn({2, 2, 8, 8}), l.weight, 1, *l.bn));   // grouped
  l.bn->eval();
  DOCTEST_CHECK_FALSE(model::thin_conv_applies(x, l.weight, 1, *l.bn));
  DOCTEST_CHECK_THROWS(model::thin_conv_bn_act(x, l.weight, 1, *l.bn, BnAct::relu));
}

TEST_CASE("thin_conv_bn_act timing beside LibTorch's convolution and bn_act (printed with NAS_BN_ACT_TIMING=1)") {
  if (!std::getenv("NAS_BN_ACT_TIMING")) return;
  keep_freed_memory();   // as the trainers do
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{128, 1, 28, 28}, {128, 3, 32, 32}}) {
    const torch::Tensor x = model::to_channels_last(torch::randn(shape));   // as the trainers pass it
    const torch::Tensor g = channels_last(torch::randn(out_shape(x, 16, 1)));
    const auto us = test::interleaved_medians_us(10, 200, [&](int thin, std::array<double, 2>& s) {
      Layer l = make_layer(shape[1], 16, 3, 5);
      torch::Tensor w = channels_last(l.weight).set_requires_grad(true);
      const auto t0 = std::chrono::steady_clock::now();
      torch::Tensor y = thin ? model::thin_conv_bn_act(x, w, 1, *l.bn, BnAct::relu)
                             : model::bn_act(torch::nn::functional::conv2d(
                                                 x, w, torch::nn::functional::Conv2dFuncOptions().padding(1)),
                                             *l.bn, BnAct::relu);
      s[0] = test::seconds_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      y.backward(g);
      s[1] = test::seconds_since(t1);
    });
    for (int thin = 0; thin < 2; ++thin)
      std::printf("%s C_in=%lld: forward %.0f us, backward %.0f us (medians of 200, %d threads)\n",
                  thin ? "thin_conv     " : "conv + bn_act ", (long long)shape[1], us[thin][0], us[thin][1],
                  at::get_num_threads());
  }
}
