// network_test: the built torch networks agree with the analytic cost model -- parameter counts
// exactly, and every conv/linear layer's MACs as seen by the forward observer -- for random
// genomes of both families (a property test)
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/space/cost.h"
#include "nas/model/network.h"
#include "nas/space/sampler.h"

#include "../networks.h"

#include <map>

using namespace nas;

namespace {

// Checks one genome; with_forward also runs it and compares the per-layer MACs.
void check_genome(const space::Genome& g, const space::CostContext& ctx, bool with_forward) {
  space::Cost cost = space::estimate_cost(g, ctx);
  model::Network net(g, ctx);
  DOCTEST_INFO("genome ", space::summary(g));
  DOCTEST_CHECK(net->parameter_count() == cost.params);
  if (!with_forward) return;
  std::map<std::string, int64_t> seen;
  net->set_observer([&](const model::LayerEvent& e) {
    if (std::string(e.kind) == "conv" || std::string(e.kind) == "linear") seen[e.name] += e.macs;
  });
  net->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor y = net->forward(torch::randn({1, ctx.input[0], ctx.input[1], ctx.input[2]}));
  DOCTEST_CHECK(y.sizes() == torch::IntArrayRef({1, ctx.classes}));
  std::map<std::string, int64_t> expected;
  int64_t total = 0;
  for (const auto& l : cost.layers)
    if (l.kind != "bn") expected[l.name] += l.macs;
  for (const auto& [name, macs] : seen) total += macs;
  DOCTEST_CHECK(total == cost.macs);
  DOCTEST_CHECK(seen == expected);
}

} // namespace

TEST_CASE("nb201: the all-3x3 and all-none cells have the published parameter counts as networks") {
  auto cfg = test::nb201_space(16, 5);
  auto ctx = space::cost_context(cfg);
  space::Genome g;
  g.family = "nb201";
  g.nb201 = space::parse_nb201_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|");
  DOCTEST_CHECK(model::Network(g, ctx)->parameter_count() == 1531546);
  g.nb201 = space::parse_nb201_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  DOCTEST_CHECK(model::Network(g, ctx)->parameter_count() == 73306);
}

TEST_CASE("cnn: parameters and MACs of built networks equal the cost model (random genomes)") {
  for (const char* shape : {"[1,28,28]", "[3,32,32]", "[2,17,23]"}) {
    test::CnnSpace spec;
    spec.shape = shape;
    auto cfg = test::wide_cnn(spec);
    auto ctx = space::cost_context(cfg);
    space::Sampler s(cfg);
    Rng r(cfg.seed, 0);
    for (int i = 0; i < 700; ++i) check_genome(s.draw(r), ctx, i < 150);
  }
}

TEST_CASE("nb201: parameters and MACs of built networks equal the cost model (random cells)") {
  auto cfg = test::nb201_space(8, 2);  // a slimmer skeleton keeps the test fast; the formulas are the same
  auto ctx = space::cost_context(cfg);
  space::Sampler s(cfg);
  Rng r(cfg.seed, 0);
  for (int i = 0; i < 1500; ++i) check_genome(s.draw(r), ctx, i < 200);
  auto full = test::nb201_space(16, 5);
  auto fctx = space::cost_context(full);
  for (int i = 0; i < 20; ++i) check_genome(space::Sampler(full).draw(r), fctx, true);
}
