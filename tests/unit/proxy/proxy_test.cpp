// proxy: each zero-cost proxy on networks small enough to score by hand, rank statistics and
// ensembles, and the proxies on real networks of both families (finite, or flagged degenerate)
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "nas/space/cost.h"
#include "nas/model/network.h"
#include "nas/proxy/compute.h"
#include "nas/proxy/rank.h"
#include "nas/space/genome.h"

#include <cmath>

using namespace nas;

namespace {

// x -> W1 -> relu -> W2, no biases, reporting its layers to the observer as model::Network does.
struct MlpImpl : torch::nn::Module {
  MlpImpl(const torch::Tensor& w1, const torch::Tensor& w2) {
    l1 = register_module("l1", torch::nn::Linear(torch::nn::LinearOptions(w1.size(1), w1.size(0)).bias(false)));
    l2 = register_module("l2", torch::nn::Linear(torch::nn::LinearOptions(w2.size(1), w2.size(0)).bias(false)));
    torch::NoGradGuard no_grad;
    l1->weight.copy_(w1);
    l2->weight.copy_(w2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor z1 = l1->forward(x);
    if (obs) obs({"l1", "linear", x, z1, l1->weight.numel()});
    torch::Tensor a = torch::relu(z1);
    if (obs) obs({"act", "act", z1, a, 0});
    torch::Tensor z2 = l2->forward(a);
    if (obs) obs({"l2", "linear", a, z2, l2->weight.numel()});
    return z2;
  }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  model::LayerObserver obs;
};
TORCH_MODULE(Mlp);

// One linear layer (W2 = identity after a first layer W), to read gradients off by hand.
proxy::Target target(Mlp& m) {
  proxy::Target t;
  auto* impl = m.get();
  t.forward = [impl](const torch::Tensor& x) { return impl->forward(x); };
  t.observe = [impl](model::LayerObserver o) { impl->obs = std::move(o); };
  t.module = impl;
  return t;
}

torch::Tensor mat(std::initializer_list<std::initializer_list<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto row : rows) r.push_back(torch::tensor(std::vector<double>(row), torch::kFloat32));
  return torch::stack(r);
}


// A small mbconv CNN on 1x12x12 inputs with 3 classes, for the proxies that need a real network.
space::Genome small_cnn() {
  return space::genome_from_json(
      R"({"family":"cnn","stem":{"width":8,"kernel":3,"stride":1,"act":"relu"},)"
      R"("stages":[{"block":"mbconv","depth":2,"width":8,"kernel":3,"stride":2,"expansion":2,"act":"relu"}],"head":{"width":0}})");
}
space::CostContext small_cnn_context() {
  space::CostContext ctx;
  ctx.input = {1, 12, 12};
  ctx.classes = 3;
  return ctx;
}

} // namespace

TEST_CASE("synflow of a two-layer linear network: layers x the sum over paths of products of |weights|") {
  // paths from each input through each hidden unit to each output: R = sum_ch |w2_ch| sum_d |w1_hd|
  auto w1 = mat({{1, -2}, {3, 0.5}}), w2 = mat({{-1, 2}, {0.5, -4}});
  Mlp m(w1, w2);
  auto t = target(m);
  const double r = (1 + 0.5) * (1 + 2) + (2 + 4) * (3 + 0.5);   // |w2_0h| + |w2_1h| over h, times sum_d |w1_hd|
  auto s = proxy::synflow(t, {2});
  DOCTEST_CHECK(!s.degenerate());
  DOCTEST_CHECK(s.value == doctest::Approx(std::log(2 * r)));
  // every weight of a layer zero: no path carries anything -- degenerate, not a crash
  Mlp dead(torch::zeros({2, 2}), w2);
  auto td = target(dead);
  auto z = proxy::synflow(td, {2});
  DOCTEST_CHECK(z.degenerate());
  DOCTEST_CHECK(z.flag == "zero");
}

TEST_CASE("grad_norm, snip and fisher from one backward pass, by hand") {
  // W2 = I, logits z = relu(W1 x); with W1 = [[1, 0], [1, 0]] and x = [1, 2]: z = [1, 1], softmax
  // uniform, y = 0: dL/dz = [-0.5, 0.5], dL/dW1 = dL/dz x^T = [[-0.5, -1], [0.5, 1]], dL/dW2 = dL/dz a^T.
  Mlp m(mat({{1, 0}, {1, 0}}), mat({{1, 0}, {0, 1}}));
  auto t = target(m);
  auto x = mat({{1, 2}});
  auto y = torch::tensor({int64_t(0)});
  proxy::Score gn, sn, fi;
  proxy::gradient_proxies(t, x, y, &gn, &sn, &fi);
  // layer norms: |dL/dW1| = sqrt(0.25 + 1 + 0.25 + 1); dL/dW2 = [[-0.5, -0.5], [0.5, 0.5]] -> 1
  DOCTEST_CHECK(gn.value == doctest::Approx(std::sqrt(2.5) + 1.0));
  // snip: |W1 * dL/dW1| = 0.5 + 0.5; |W2 * dL/dW2| = 0.5 + 0.5
  DOCTEST_CHECK(sn.value == doctest::Approx(2.0));
  // fisher: layer 1 output z1 = [1, 1], dL/dz1 = [-0.5, 0.5] -> 0.5 * (z g)^2 = 0.125 per channel,
  // x 2 weights a channel; layer 2 the same -> 4 x 0.125 x 2
  DOCTEST_CHECK(fi.value == doctest::Approx(1.0));
}

TEST_CASE("grasp equals -W . (H g) with H g from finite differences of the gradient") {
  torch::manual_seed(3);
  Mlp m(torch::randn({4, 3}), torch::randn({2, 4}));
  m->to(torch::kFloat64);
  auto t = target(m);
  auto x = torch::randn({5, 3}, torch::kFloat64), y = torch::tensor({0, 1, 1, 0, 1}, torch::kInt64);
  const auto got = proxy::grasp(t, x, y);
  auto w = t.weights();
  auto shift = [&](double eps, const std::vector<torch::Tensor>& dir) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < w.size(); ++i) w[i].add_(dir[i], eps);
  };
  auto grad_at = [&](double eps, const std::vector<torch::Tensor>& dir) {
    shift(eps, dir);
    auto g = torch::autograd::grad({torch::nn::functional::cross_entropy(t.forward(x), y)}, w);
    shift(-eps, dir);
    return g;
  };
  auto g = torch::autograd::grad({torch::nn::functional::cross_entropy(t.forward(x), y)}, w);
  const double h = 1e-5;
  auto plus = grad_at(h, g), minus = grad_at(-h, g);
  double expected = 0;
  for (size_t i = 0; i < w.size(); ++i) expected += (-w[i].detach() * (plus[i] - minus[i]) / (2 * h)).sum().item<double>();
  DOCTEST_CHECK(!got.degenerate());
  DOCTEST_CHECK(got.value == doctest::Approx(expected).epsilon(1e-4));
}

TEST_CASE("nwot's agreement kernel: popcount on the CPU equals the matmul form") {
  torch::manual_seed(3);
  for (int64_t units : {1, 63, 64, 65, 1000}) {
    torch::Tensor codes = torch::rand({9, units}) > 0.5;
    torch::Tensor c = codes.to(torch::kFloat64);
    torch::Tensor want = c.matmul(c.t()) + (1 - c).matmul((1 - c).t());
    torch::Tensor got = proxy::agreement_kernel(codes);
    DOCTEST_CHECK(torch::equal(got, want));
    DOCTEST_CHECK(got[0][0].item<double>() == double(units));
  }
  // by hand: codes 1 0 1 / 1 1 0 agree on the first unit only
  torch::Tensor two = torch::tensor({1, 0, 1, 1, 1, 0}).reshape({2, 3}).to(torch::kBool);
  torch::Tensor k = proxy::agreement_kernel(two);
  DOCTEST_CHECK(k[0][1].item<double>() == 1.0);
  DOCTEST_CHECK(k[1][0].item<double>() == 1.0);
  DOCTEST_CHECK(k[1][1].item<double>() == 3.0);
}

TEST_CASE("nwot: log|det K| of the activation codes, by hand") {
  // W1 = I: the codes are the signs of x. x1 = [1, -1] -> c1 = [1, 0]; x2 = [1, 1] -> c2 = [1, 1].
  // K = [[2, 1], [1, 2]], det 3.
  Mlp m(mat({{1, 0}, {0, 1}}), mat({{1, 0}, {0, 1}}));
  auto t = target(m);
  auto s = proxy::nwot(t, mat({{1, -1}, {1, 1}}));
  DOCTEST_CHECK(s.value == doctest::Approx(std::log(3.0)));
  // two samples with the same code: K singular -> degenerate
  auto d = proxy::nwot(t, mat({{1, 1}, {2, 3}}));
  DOCTEST_CHECK(d.degenerate());
}

TEST_CASE("jacob_cov: one Jacobian for every sample (a linear map) and a dead network") {
  // y = W2 W1 x on the positive side of the relu: the input gradient is the same for every sample,
  // corrcoef is all ones, eigenvalues n, 0, ..., 0.
  Mlp m(mat({{1, 0.5}, {0.2, 1}}), mat({{1, 0}, {0, 1}}));
  m->to(torch::kFloat64);
  auto t = target(m);
  auto x = torch::rand({3, 2}, torch::kFloat64) + 1;   // all positive: every relu open
  auto s = proxy::jacob_cov(t, x);
  const double k = 1e-5;
  const double expected = -((std::log(3 + k) + 1 / (3 + k)) + 2 * (std::log(k) + 1 / k));
  DOCTEST_CHECK(s.value == doctest::Approx(expected).epsilon(1e-6));
  Mlp dead(torch::zeros({2, 2}), mat({{1, 0}, {0, 1}}));
  auto td = target(dead);
  auto d = proxy::jacob_cov(td, x.to(torch::kFloat32));
  DOCTEST_CHECK(d.degenerate());
  DOCTEST_CHECK(d.flag == "nan");
}

TEST_CASE("zico: the same batch twice has no gradient noise and scores 0; two batches score by hand") {
  Mlp m(mat({{1, 0}, {0, 1}}), mat({{1, 0}, {0, 1}}));
  auto t = target(m);
  auto x = mat({{1, 2}}), y = torch::tensor({int64_t(0)});
  DOCTEST_CHECK(proxy::zico(t, x, y, x, y).value == 0.0);
  // batch 1: dL/dW2 = dL/dz a^T with a = [1, 2], dL/dz = [-0.5, 0.5] (uniform softmax, label 0);
  // batch 2 with label 1: dL/dz = [0.5, -0.5]. Per element mean|g| = |g|, std = |g|: ratio 1 for
  // each of the 4 elements of W2 -> log 4. W1: dL/dW1 = (W2^T dL/dz) x^T with the relu open:
  // again +-g, ratio 1 for the 4 elements -> log 4.
  auto s = proxy::zico(t, x, y, x, torch::tensor({int64_t(1)}));
  DOCTEST_CHECK(s.value == doctest::Approx(2 * std::log(4.0)));
}

TEST_CASE("ranks, correlations, top-k overlap and the ensembles") {
  const double nan = std::nan(""), inf = INFINITY;
  DOCTEST_CHECK(proxy::ranks({10, 30, 20, 20}) == std::vector<double>{1, 4, 2.5, 2.5});
  DOCTEST_CHECK(proxy::ranks({1, nan, 3, -inf}) == std::vector<double>{3, 1.5, 4, 1.5});   // degenerate ranks last
  DOCTEST_CHECK(proxy::spearman({1, 2, 3, 4}, {10, 20, 30, 45}) == doctest::Approx(1));
  DOCTEST_CHECK(proxy::spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1));
  DOCTEST_CHECK(proxy::spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}) == doctest::Approx(0.8));   // 1 - 6*4/(5*24)
  DOCTEST_CHECK(proxy::kendall({1, 2, 3, 4}, {1, 3, 2, 4}) == doctest::Approx(4.0 / 6.0));    // 5 concordant, 1 discordant
  DOCTEST_CHECK(std::isnan(proxy::spearman({1, 2}, {1, 2})));
  DOCTEST_CHECK(proxy::spearman({1, 2, nan, 3, 4}, {1, 2, 100, 3, 4}) == doctest::Approx(1));  // the NaN pair is dropped
  DOCTEST_CHECK(proxy::top_k_overlap({5, 4, 3, 2, 1}, {1, 2, 3, 4, 5}, 2) == 0.0);
  DOCTEST_CHECK(proxy::top_k_overlap({5, 4, 3, 2, 1}, {5, 1, 4, 2, 3}, 2) == 0.5);
  std::map<std::string, std::vector<double>> s = {{"a", {1, 2, 3}}, {"b", {3, 1, 2}}};
  auto sum = proxy::ensemble_sum(s, {});
  DOCTEST_CHECK(sum[0] == doctest::Approx(std::log(1.0 / 3) + 0.0));
  DOCTEST_CHECK(sum[2] == doctest::Approx(std::log(1.0) + std::log(2.0 / 3)));
  auto weighted = proxy::ensemble_sum(s, {{"b", 0.0}});   // b's weight 0: a alone
  DOCTEST_CHECK(weighted[2] == doctest::Approx(0.0));
  std::map<std::string, std::vector<double>> v = {{"a", {1, 2, 3}}, {"b", {1, 3, 2}}, {"c", {3, 1, 2}}};
  auto vote = proxy::ensemble_vote(v, {});
  // 2 beats 0 (a, b), 1 beats 0 (a, b), 2 vs 1: a and c say 2, b says 1 -> 2 wins
  DOCTEST_CHECK(vote == std::vector<double>{0.0, 0.5, 1.0});
  // a degenerate candidate is the worst in every ensemble
  auto d = proxy::ensemble_sum({{"a", {nan, 1, 2}}, {"b", {5, 1, 2}}}, {});
  DOCTEST_CHECK(d[0] < d[2]);
}

TEST_CASE("every proxy on a small CNN and on NB201 cells: finite values, or degenerate with a flag") {
  const space::Genome g = small_cnn();
  const space::CostContext ctx = small_cnn_context();
  torch::manual_seed(1);
  auto x = torch::randn({16, 1, 12, 12}), y = torch::randint(0, 3, {16}, torch::kInt64);
  model::Network net(g, ctx);
  auto t = proxy::target_of(net);
  proxy::Score gn, sn, fi;
  proxy::gradient_proxies(t, x, y, &gn, &sn, &fi);
  for (const auto& s : {gn, sn, fi, proxy::grasp(t, x, y), proxy::jacob_cov(t, x), proxy::nwot(t, x),
                        proxy::zico(t, x, y, x.flip(0), y.flip(0))}) {
    DOCTEST_CHECK(!s.degenerate());
    DOCTEST_CHECK(std::isfinite(s.value));
  }
  model::Network fresh(g, ctx);
  auto tf = proxy::target_of(fresh);
  DOCTEST_CHECK(!proxy::synflow(tf, ctx.input).degenerate());
  model::Network z1(g, ctx), z2(g, ctx);
  auto t1 = proxy::target_of(z1), t2 = proxy::target_of(z2);
  auto a = proxy::zen(t1, ctx.input, 8, 42), b = proxy::zen(t2, ctx.input, 8, 42);
  DOCTEST_CHECK(!a.degenerate());
  DOCTEST_CHECK(a.value == doctest::Approx(b.value));   // data-free and seeded: the same network scores the same

  space::CostContext nb;
  nb.input = {3, 8, 8};
  nb.classes = 10;
  nb.nb201_channels = 4;
  nb.nb201_cells = 1;
  model::Network none(space::genome_from_json(R"({"family":"nb201","ops":["none","none","none","none","none","none"]})"), nb);
  auto tn = proxy::target_of(none);
  auto dead = proxy::synflow(tn, nb.input);
  DOCTEST_CHECK(dead.degenerate());     // no path from input to output: zero, flagged
  model::Network conv(space::genome_from_json(
      R"({"family":"nb201","ops":["nor_conv_3x3","nor_conv_3x3","nor_conv_3x3","skip_connect","nor_conv_3x3","nor_conv_3x3"]})"),
      nb);
  auto tc = proxy::target_of(conv);
  DOCTEST_CHECK(!proxy::synflow(tc, nb.input).degenerate());
  // zen: a conv fed only by 'none' edges (node 2 = none + none) has a zero-variance BN, left out
  // of the BN sum -- the score stays finite (with it, it would be -inf)
  model::Network dead_branch(space::genome_from_json(
      R"({"family":"nb201","ops":["nor_conv_3x3","none","none","avg_pool_3x3","nor_conv_3x3","nor_conv_3x3"]})"), nb);
  auto td = proxy::target_of(dead_branch);
  auto zd = proxy::zen(td, nb.input, 8, 7);
  DOCTEST_CHECK(!zd.degenerate());
  DOCTEST_CHECK(std::isfinite(zd.value));
  int zero_var = 0;
  for (auto& m : dead_branch->modules(false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) zero_var += bn->running_var.abs().sum().item<double>() == 0;
  DOCTEST_CHECK(zero_var == 3);   // the conv on node 2 -> node 3, in each of the 3 cells (one a stage)
  model::Network none2(space::genome_from_json(R"({"family":"nb201","ops":["none","none","none","none","none","none"]})"), nb);
  auto tn2 = proxy::target_of(none2);
  DOCTEST_CHECK(proxy::zen(tn2, nb.input, 8, 7).flag == "zero");   // no path at all: still degenerate
}

TEST_CASE("on a CUDA device every proxy gives the CPU's score (same weights, same batches)") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped (run on a GPU machine: bench/gpu-check)");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);   // full fp32 convolutions, as on the CPU
  // nwot's kernel: the GPU's matmul form equals the CPU's popcount
  torch::manual_seed(5);
  torch::Tensor codes = torch::rand({16, 777}) > 0.5;
  DOCTEST_CHECK(torch::equal(proxy::agreement_kernel(codes.to(cuda)).cpu(), proxy::agreement_kernel(codes)));

  const space::Genome g = small_cnn();
  const space::CostContext ctx = small_cnn_context();
  auto x = torch::randn({16, 1, 12, 12}), y = torch::randint(0, 3, {16}, torch::kInt64);
  // two copies of one network (the same seed), one on each device
  auto make = [&](torch::Device d) {
    torch::manual_seed(11);
    model::Network n(g, ctx);
    n->to(d);
    return n;
  };
  auto scores = [&](torch::Device d) {
    std::vector<proxy::Score> s;
    model::Network a = make(d);
    auto ta = proxy::target_of(a);
    proxy::Score gn, sn, fi;
    proxy::gradient_proxies(ta, x.to(d), y.to(d), &gn, &sn, &fi);
    s = {gn, sn, fi, proxy::jacob_cov(ta, x.to(d)), proxy::nwot(ta, x.to(d)),
         proxy::zico(ta, x.to(d), y.to(d), x.flip(0).to(d), y.flip(0).to(d))};
    model::Network b = make(d);
    auto tb = proxy::target_of(b);
    s.push_back(proxy::synflow(tb, ctx.input));
    model::Network c = make(d);
    auto tc = proxy::target_of(c);
    s.push_back(proxy::zen(tc, ctx.input, 8, 3));
    return s;
  };
  const auto on_cpu = scores(torch::kCPU), on_gpu = scores(cuda);
  at::globalContext().setAllowTF32CuDNN(tf32);
  // grad_norm, snip, fisher, jacob_cov, nwot, zico, synflow, zen. float32 kernels sum in another
  // order: 1e-3 relative; jacob_cov (1 / (eigenvalue + 1e-5)) and zico (mean / std over two
  // batches) amplify that near zero: 5e-2; synflow is float64.
  const std::vector<double> tol = {1e-3, 1e-3, 1e-3, 5e-2, 1e-3, 5e-2, 1e-9, 1e-3};
  REQUIRE(on_cpu.size() == tol.size());
  REQUIRE(on_gpu.size() == tol.size());
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    DOCTEST_CHECK_MESSAGE(!on_gpu[i].degenerate(), "proxy " << i);
    DOCTEST_CHECK_MESSAGE(on_gpu[i].value == doctest::Approx(on_cpu[i].value).epsilon(tol[i]),
                          "proxy " << i << ": cpu " << on_cpu[i].value << ", cuda " << on_gpu[i].value);
  }
}
