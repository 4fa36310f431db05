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

#include <map>

using namespace nas;

namespace {

config::StudyConfig wide_cnn(const std::string& shape) {
  return config::parse_study_config(
      "[study]\nseed=17\n[data]\nformat='synthetic'\nshape=" + shape +
          "\nclasses=7\n[space]\nfamily='cnn'\nstages={min=1,max=4}\nstem_width=[4,8,12]\nstem_kernel=[1,3,5]\n"
          "stem_stride=[1,2]\nhead_width=[0,24]\ndepth={min=1,max=3}\nwidth=[4,8,16,24]\nkernel=[1,3,5,7]\n"
          "stride=[1,2]\nblock=['conv','dwsep','mbconv','residual']\nexpansion=[1,2,6]\n"
          "activation=['relu','relu6','hswish','silu']\n",
      "/tmp/wide.toml");
}

config::StudyConfig nb201(int64_t channels, int64_t cells) {
  return config::parse_study_config("[study]\nseed=3\n[data]\nformat='synthetic'\nshape=[3,32,32]\nclasses=10\n"
                                    "[space]\nfamily='nb201'\nchannels=" + std::to_string(channels) +
                                        "\ncells=" + std::to_string(cells) + "\n",
                                    "/tmp/nb.toml");
}

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
  auto cfg = nb201(16, 5);
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
    auto cfg = wide_cnn(shape);
    auto ctx = space::cost_context(cfg);
    space::Sampler s(cfg);
    Rng r(cfg.seed, 0);
    for (int i = 0; i < 700; ++i) check_genome(s.draw(r), ctx, i < 150);
  }
}

TEST_CASE("nb201: parameters and MACs of built networks equal the cost model (random cells)") {
  auto cfg = nb201(8, 2);  // a slimmer skeleton keeps the test fast; the formulas are the same
  auto ctx = space::cost_context(cfg);
  space::Sampler s(cfg);
  Rng r(cfg.seed, 0);
  for (int i = 0; i < 1500; ++i) check_genome(s.draw(r), ctx, i < 200);
  auto full = nb201(16, 5);
  auto fctx = space::cost_context(full);
  for (int i = 0; i < 20; ++i) check_genome(space::Sampler(full).draw(r), fctx, true);
}
