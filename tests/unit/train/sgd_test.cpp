// sgd_test: FusedSgd steps as torch::optim::SGD steps (with and without momentum, Nesterov,
// dampening and weight decay; channels-last, matrix and vector parameters; a parameter without a
// gradient left alone), its state moves to and from SGD through a checkpoint, and where it cannot
// fuse (float64) it is SGD exactly.
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "nas/train/sgd.h"

#include <sstream>

using nas::train::FusedSgd;

namespace {

// Parameters of the shapes a network has; the last gets no gradient.
std::vector<torch::Tensor> make_params(torch::Dtype dtype = torch::kFloat32) {
  torch::manual_seed(4);
  return {torch::randn({16, 8, 3, 3}, dtype).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(),
          torch::randn({10, 37}, dtype).requires_grad_(), torch::randn({37}, dtype).requires_grad_(),
          torch::randn({5}, dtype).requires_grad_()};
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());   // clone keeps the layout
  return out;
}

// Gives every parameter but the last the step's gradient (the same for any copy), then steps;
// returns whether FusedSgd would fuse it (false for SGD).
bool step(torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& ps, int k) {
  torch::manual_seed(100 + k);
  for (size_t i = 0; i + 1 < ps.size(); ++i) {
    torch::Tensor g = torch::randn(ps[i].sizes(), ps[i].options().requires_grad(false));
    ps[i].mutable_grad() = g.contiguous(ps[i].suggest_memory_format());
  }
  auto* fused = dynamic_cast<FusedSgd*>(&opt);
  const bool fuses = fused && fused->fuses();
  opt.step();
  return fuses;
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  return m;
}

} // namespace

TEST_CASE("FusedSgd steps as torch::optim::SGD does") {
  const std::vector<torch::optim::SGDOptions> settings = {
      torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4),
      torch::optim::SGDOptions(0.1).momentum(0.8).dampening(0.1).weight_decay(0),
      torch::optim::SGDOptions(0.02).momentum(0).weight_decay(1e-3)};
  for (const auto& o : settings) {
    const auto base = make_params();
    auto a = copies(base), b = copies(base);
    FusedSgd fused(a, o);
    torch::optim::SGD plain(b, o);
    INFO("momentum " << o.momentum() << " nesterov " << o.nesterov());
    for (int k = 0; k < 6; ++k) {
      DOCTEST_CHECK(step(fused, a, k));
      step(plain, b, k);
    }
    DOCTEST_CHECK(max_diff(a, b) < 1e-5);
    DOCTEST_CHECK(max_diff(a, base) > 0.01);                    // it did move them
    DOCTEST_CHECK(torch::equal(a.back(), base.back()));         // no gradient: untouched
    DOCTEST_CHECK(a[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

TEST_CASE("FusedSgd's state goes through a checkpoint to and from torch::optim::SGD") {
  const auto o = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4);
  const auto base = make_params();
  auto a = copies(base);
  FusedSgd fused(a, o);
  for (int k = 0; k < 3; ++k) step(fused, a, k);
  const auto b0 = copies(a);   // the parameters at the checkpoint
  std::stringstream saved;
  {
    torch::serialize::OutputArchive ar;
    fused.save(ar);
    ar.save_to(saved);
  }
  // SGD resumed from FusedSgd's checkpoint, and FusedSgd resumed from that SGD's: three more steps each
  auto b = copies(a);
  torch::optim::SGD plain(b, o);
  {
    torch::serialize::InputArchive ar;
    ar.load_from(saved);
    plain.load(ar);
  }
  std::stringstream saved2;
  {
    torch::serialize::OutputArchive ar;
    plain.save(ar);
    ar.save_to(saved2);
  }
  auto c = copies(a);
  FusedSgd resumed(c, o);
  {
    torch::serialize::InputArchive ar;
    ar.load_from(saved2);
    resumed.load(ar);
  }
  for (int k = 3; k < 6; ++k) {
    step(fused, a, k);
    step(plain, b, k);
    DOCTEST_CHECK(step(resumed, c, k));   // the loaded buffers fused
  }
  DOCTEST_CHECK(max_diff(a, b) < 1e-5);
  DOCTEST_CHECK(max_diff(a, c) < 1e-5);
  // without the momentum buffers the same continuation differs: the test sees a lost buffer
  auto d = copies(b0);
  FusedSgd fresh(d, o);
  for (int k = 3; k < 6; ++k) step(fresh, d, k);
  DOCTEST_CHECK(max_diff(a, d) > 1e-3);
}

TEST_CASE("FusedSgd fuses a 1-channel convolution's weights, whose gradient differs in a size-1 stride") {
  // as autograd hands it over: channels-last 16 x 1 x 3 x 3 weights (strides 9, 1, 3, 1) with an
  // NCHW gradient (9, 9, 3, 1): the same order of elements
  const auto o = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4);
  torch::manual_seed(2);
  const torch::Tensor w0 = torch::empty_strided({16, 1, 3, 3}, {9, 1, 3, 1}).copy_(torch::randn({16, 1, 3, 3}));
  torch::Tensor a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  FusedSgd fused({a}, o);
  torch::optim::SGD plain({b}, o);
  for (int k = 0; k < 4; ++k) {
    const torch::Tensor g = torch::randn({16, 1, 3, 3});   // contiguous NCHW
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    DOCTEST_CHECK(fused.fuses());
    fused.step();
    plain.step();
    if (k == 1) {   // a new learning rate between steps, as the schedule sets it
      static_cast<torch::optim::SGDOptions&>(fused.param_groups()[0].options()).lr(0.01);
      static_cast<torch::optim::SGDOptions&>(plain.param_groups()[0].options()).lr(0.01);
    }
  }
  DOCTEST_CHECK((a - b).abs().max().item<double>() < 1e-6);
  DOCTEST_CHECK((a - w0).abs().max().item<double>() > 1e-3);
}

TEST_CASE("FusedSgd falls back to SGD where a gradient's elements are in another order") {
  const auto o = torch::optim::SGDOptions(0.05).momentum(0.9);
  torch::manual_seed(3);
  const torch::Tensor w0 = torch::randn({8, 6});
  torch::Tensor a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  FusedSgd fused({a}, o);
  torch::optim::SGD plain({b}, o);
  const torch::Tensor g = torch::randn({6, 8}).t();   // a transposed view: strides (1, 8)
  a.mutable_grad() = g;
  b.mutable_grad() = g;
  DOCTEST_CHECK_FALSE(fused.fuses());
  fused.step();
  plain.step();
  DOCTEST_CHECK(torch::equal(a, b));
}

TEST_CASE("FusedSgd is torch::optim::SGD where it cannot fuse") {
  const auto o = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4);
  const auto base = make_params(torch::kFloat64);
  auto a = copies(base), b = copies(base);
  FusedSgd fused(a, o);
  torch::optim::SGD plain(b, o);
  for (int k = 0; k < 4; ++k) {
    DOCTEST_CHECK_FALSE(step(fused, a, k));
    step(plain, b, k);
  }
  DOCTEST_CHECK(max_diff(a, b) == 0.0);
}
