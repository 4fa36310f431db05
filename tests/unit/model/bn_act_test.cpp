// bn_act_test: the fused batch norm + activation equals LibTorch's batch_norm followed by the
// activation, in training: the output, the running statistics and num_batches_tracked, and the
// gradients of input, weight and bias; for odd shapes, each activation, and inputs far from zero
// mean (where a one-pass variance cancels). Deterministic for a thread count; refused where it
// does not apply; a network with it on trains like one with it off.
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "bn_reference.h"
#include "nas/config/study_config.h"
#include "nas/core/heap.h"
#include "nas/model/bn_act.h"
#include "nas/model/network.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"

#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace nas;
using model::BnAct;
using test::max_rel;
using test::reference_act;

namespace {

torch::nn::BatchNorm2d make_bn(int64_t c, uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::BatchNorm2d bn(c);
  test::randomise(bn);
  return bn;
}

struct Pass {
  torch::Tensor y, dx, dw, db, running_mean, running_var, tracked;
};

// One forward and backward with a fixed upstream gradient, fused or LibTorch's (in float64 for
// the reference: LibTorch's own float32 sums are not exact either).
Pass run(const torch::Tensor& x0, const torch::Tensor& g, int64_t c, BnAct act, bool fused) {
  auto bn = make_bn(c, 5);
  if (!fused) bn->to(torch::kFloat64);
  torch::Tensor x = (fused ? x0.clone() : x0.to(torch::kFloat64)).set_requires_grad(true);
  torch::Tensor y = fused ? model::bn_act(x, *bn, act) : reference_act(bn->forward(x), act);
  (y * g.to(y.dtype())).sum().backward();
  const auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  return {f(y.detach()), f(x.grad()), f(bn->weight.grad()), f(bn->bias.grad()), f(bn->running_mean), f(bn->running_var),
          bn->num_batches_tracked.clone()};
}

torch::Tensor channels_last(torch::Tensor t) { return t.contiguous(torch::MemoryFormat::ChannelsLast); }

} // namespace

TEST_CASE("bn_act equals batch_norm then the activation, forward and backward") {
  struct Case {
    std::vector<int64_t> shape;
    double offset;   // added to the input: far from zero mean
  };
  const std::vector<Case> cases = {{{8, 16, 7, 5}, 0}, {{2, 3, 1, 1}, 0}, {{32, 64, 14, 14}, 0}, {{5, 24, 9, 3}, 100},
                                   {{3, 1, 4, 4}, -3}, {{128, 16, 28, 28}, 0.5}, {{7, 40, 2, 2}, 1e3}};
  torch::manual_seed(11);
  for (const auto& k : cases) {
    for (BnAct act : {BnAct::none, BnAct::relu, BnAct::relu6}) {
      const int64_t c = k.shape[1];
      const torch::Tensor x = channels_last(torch::randn(k.shape) * 3 + k.offset);
      const torch::Tensor g = channels_last(torch::randn(k.shape));
      const Pass want = run(x, g, c, act, false), got = run(x, g, c, act, true);
      INFO("shape " << torch::IntArrayRef(k.shape) << " offset " << k.offset << " act " << int(act));
      DOCTEST_CHECK(got.y.is_contiguous(torch::MemoryFormat::ChannelsLast));
      DOCTEST_CHECK(max_rel(got.y, want.y) < 2e-5);
      DOCTEST_CHECK(max_rel(got.running_mean, want.running_mean) < 1e-5);
      DOCTEST_CHECK(max_rel(got.running_var, want.running_var) < 1e-4);
      DOCTEST_CHECK(got.tracked.item<int64_t>() == 1);
      DOCTEST_CHECK(max_rel(got.dx, want.dx) < 1e-3);
      DOCTEST_CHECK(max_rel(got.dw, want.dw) < 1e-4);
      DOCTEST_CHECK(max_rel(got.db, want.db) < 1e-4);
    }
  }
}

TEST_CASE("bn_act takes an upstream gradient in any layout, and is deterministic") {
  const torch::Tensor x = channels_last(torch::randn({16, 8, 6, 6}));
  // a broadcast gradient, as a sum over height and width sends back
  const torch::Tensor g = torch::randn({16, 8, 1, 1}).expand({16, 8, 6, 6});
  const Pass want = run(x, g, 8, BnAct::relu, false), a = run(x, g, 8, BnAct::relu, true),
             b = run(x, g, 8, BnAct::relu, true);
  DOCTEST_CHECK(max_rel(a.dx, want.dx) < 1e-3);
  DOCTEST_CHECK(torch::equal(a.y, b.y));
  DOCTEST_CHECK(torch::equal(a.dx, b.dx));
  DOCTEST_CHECK(torch::equal(a.dw, b.dw));
}

TEST_CASE("bn_act applies only to training-mode float32 channels-last CPU input") {
  auto bn = make_bn(4, 1);
  const torch::Tensor x = torch::randn({2, 4, 3, 3});
  DOCTEST_CHECK(model::bn_act_applies(channels_last(x), *bn));
  DOCTEST_CHECK_FALSE(model::bn_act_applies(x, *bn));                                   // NCHW
  DOCTEST_CHECK_FALSE(model::bn_act_applies(channels_last(x).to(torch::kFloat64), *bn));
  DOCTEST_CHECK_FALSE(model::bn_act_applies(channels_last(torch::randn({1, 4, 1, 1})), *bn));   // one value a channel
  bn->eval();
  DOCTEST_CHECK_FALSE(model::bn_act_applies(channels_last(x), *bn));
  DOCTEST_CHECK_THROWS(model::bn_act(x, *bn, BnAct::relu));
}

TEST_CASE("bn_act timing beside LibTorch (printed with NAS_BN_ACT_TIMING=1)") {
  if (!std::getenv("NAS_BN_ACT_TIMING")) return;
  keep_freed_memory();   // as the trainers do
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{128, 16, 28, 28}, {128, 32, 14, 14}, {128, 64, 7, 7}}) {
    const torch::Tensor x = channels_last(torch::randn(shape)), g = channels_last(torch::randn(shape));
    const auto us = test::interleaved_medians_us(10, 200, [&](int fused, std::array<double, 2>& s) {
      auto bn = make_bn(shape[1], 5);
      torch::Tensor xi = x.clone().set_requires_grad(true);
      const auto t0 = std::chrono::steady_clock::now();
      torch::Tensor y = fused ? model::bn_act(xi, *bn, BnAct::relu) : bn->forward(xi).relu_();
      s[0] = test::seconds_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      y.backward(g);
      s[1] = test::seconds_since(t1);
    });
    for (int fused = 0; fused < 2; ++fused)
      std::printf("%s C=%lld: forward %.0f us, backward %.0f us (medians of 200, %d threads)\n",
                  fused ? "fused  " : "LibTorch", (long long)shape[1], us[fused][0], us[fused][1], at::get_num_threads());
  }
}

namespace {

// The 3-conv CNN of bench/train-epoch, twice with the same initial weights.
std::array<model::Network, 2> cnn3_pair() {
  std::ifstream in(std::string(NAS_SOURCE_DIR) + "/tests/fixtures/fmnist-cnn3.json");
  std::stringstream text;
  text << in.rdbuf();
  const auto cfg = config::parse_study_config("[study]\nseed=1\n[data]\nformat='synthetic'\nshape=[1,28,28]\nclasses=10\n"
                                              "[space]\nfamily='cnn'\n", "/tmp/t.toml");
  const space::Genome g = space::genome_from_json(text.str());
  torch::manual_seed(3);
  model::Network a(g, space::cost_context(cfg));
  torch::manual_seed(3);
  model::Network b(g, space::cost_context(cfg));
  return {a, b};
}

// Whether the autograd graph below `node` holds a node whose name contains `what`.
bool graph_has(const std::shared_ptr<torch::autograd::Node>& node, const std::string& what) {
  std::vector<std::shared_ptr<torch::autograd::Node>> todo{node};
  std::set<torch::autograd::Node*> seen;
  while (!todo.empty()) {
    auto n = todo.back();
    todo.pop_back();
    if (!n || !seen.insert(n.get()).second) continue;
    if (n->name().find(what) != std::string::npos) return true;
    for (const auto& e : n->next_edges()) todo.push_back(e.function);
  }
  return false;
}

} // namespace

TEST_CASE("a network with the fused step trains like one without") {
  auto nets = cnn3_pair();
  torch::manual_seed(8);
  const torch::Tensor x = model::to_channels_last(torch::randn({32, 1, 28, 28}));
  const torch::Tensor y = torch::randint(0, 10, {32});
  std::vector<double> losses[2];
  bool saw_fused[2] = {false, false}, saw_thin[2] = {false, false};
  for (int f = 0; f < 2; ++f) {
    nets[size_t(f)]->to_channels_last();
    nets[size_t(f)]->set_fused_batch_norm(f == 1);
    nets[size_t(f)]->train();
    torch::optim::SGD opt(nets[size_t(f)]->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(nets[size_t(f)]->forward(x), y);
      saw_fused[f] = saw_fused[f] || graph_has(loss.grad_fn(), "::BnActFunction");   // not ThinConvBnActFunction
      saw_thin[f] = saw_thin[f] || graph_has(loss.grad_fn(), "ThinConvBnActFunction");   // the stem (thin_conv.h)
      loss.backward();
      opt.step();
      losses[f].push_back(loss.item<double>());
    }
  }
  DOCTEST_CHECK_FALSE(saw_fused[0]);   // the fused step ran in the one network only
  DOCTEST_CHECK(saw_fused[1]);
  DOCTEST_CHECK_FALSE(saw_thin[0]);
  DOCTEST_CHECK(saw_thin[1]);
  for (size_t i = 0; i < losses[0].size(); ++i) DOCTEST_CHECK(losses[1][i] == doctest::Approx(losses[0][i]).epsilon(1e-4));
  DOCTEST_CHECK(losses[1].back() < losses[1].front());
  const auto p0 = nets[0]->named_parameters(), p1 = nets[1]->named_parameters();
  const auto b0 = nets[0]->named_buffers(), b1 = nets[1]->named_buffers();
  // five steps amplify the rounding differences (LibTorch's float32 sums are the less exact ones)
  for (const auto& kv : p0) DOCTEST_CHECK(max_rel(p1[kv.key()], kv.value()) < 5e-3);
  for (const auto& kv : b0) DOCTEST_CHECK(max_rel(b1[kv.key()].to(torch::kFloat32), kv.value().to(torch::kFloat32)) < 1e-4);
}

TEST_CASE("network step timing, fused or not (printed with NAS_BN_ACT_TIMING=1)") {
  if (!std::getenv("NAS_BN_ACT_TIMING")) return;
  keep_freed_memory();
  using Clock = std::chrono::steady_clock;
  auto nets = cnn3_pair();
  const torch::Tensor x = model::to_channels_last(torch::randn({128, 1, 28, 28}));
  const torch::Tensor y = torch::randint(0, 10, {128});
  double total[2] = {0, 0};
  for (int f = 0; f < 2; ++f) {
    nets[f]->to_channels_last();
    nets[f]->set_fused_batch_norm(f == 1);
    nets[f]->train();
  }
  for (int rep = 0; rep < 20; ++rep)
    for (int f = 0; f < 2; ++f) {
      const auto t0 = Clock::now();
      for (int i = 0; i < 10; ++i) {
        nets[f]->zero_grad();
        torch::nn::functional::cross_entropy(nets[f]->forward(x), y).backward();
      }
      if (rep >= 2) total[f] += std::chrono::duration<double>(Clock::now() - t0).count();
    }
  std::printf("step (forward + backward): LibTorch %.2f ms, fused %.2f ms\n", total[0] / 180 * 1e3, total[1] / 180 * 1e3);
}
