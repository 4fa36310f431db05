// lower_test: the inference graph of a network computes what the network computes in eval mode
// (batch norm folded, activations fused), for random genomes of both families with randomised
// batch-norm statistics; calibration ranges contain every value seen and zero
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <set>

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/model/lower.h"
#include "nas/space/cost.h"
#include "nas/space/sampler.h"

#include "../networks.h"

using namespace nas;

namespace {

// The wide cnn space with narrower stems and blocks.
config::StudyConfig cnn_space(const std::string& shape) {
  test::CnnSpace spec;
  spec.shape = shape;
  spec.seed = 5;
  spec.stem_width = "[4,8]";
  spec.width = "[4,8,16]";
  spec.path = "/tmp/lower.toml";
  return test::wide_cnn(spec);
}

// Lowers, runs both and compares; returns the graph.
model::Graph check_same(const space::Genome& g, const space::CostContext& ctx) {
  model::Network net(g, ctx);
  test::randomise_batch_norms(net);
  net->eval();
  torch::Tensor x = torch::randn({3, ctx.input[0], ctx.input[1], ctx.input[2]});
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x);
  }
  model::Graph graph = model::lower(net, {0.5f}, {0.25f});
  auto values = model::run_graph(graph, x);
  DOCTEST_INFO("genome ", space::summary(g));
  DOCTEST_REQUIRE(values.at(size_t(graph.output)).sizes() == y.sizes());
  double err = (values.at(size_t(graph.output)) - y).abs().max().item<double>();
  double scale = std::max(1.0, y.abs().max().item<double>());
  DOCTEST_CHECK(err <= 2e-5 * scale);
  for (const auto& n : graph.nodes)
    for (int in : n.inputs) DOCTEST_CHECK(in < n.output);   // topological
  return graph;
}

} // namespace

TEST_CASE("lower: cnn graphs compute the network's logits (random genomes, odd shapes, batch norm folded)") {
  for (const char* shape : {"[1,28,28]", "[3,17,23]"}) {
    auto cfg = cnn_space(shape);
    auto ctx = space::cost_context(cfg);
    space::Sampler s(cfg);
    Rng r(cfg.seed, 1);
    for (int i = 0; i < 40; ++i) {
      space::Genome g = s.draw(r);
      model::Graph graph = check_same(g, ctx);
      // one conv node per conv layer of the cost model (every batch norm folded away), and a
      // fused activation wherever a relu/relu6 follows a conv, linear or add
      int64_t convs = 0, cost_convs = 0;
      for (const auto& n : graph.nodes) convs += n.op == model::GraphOp::conv;
      for (const auto& l : space::estimate_cost(g, ctx).layers) cost_convs += l.kind == "conv";
      DOCTEST_CHECK(convs == cost_convs);
      for (const auto& n : graph.nodes)
        if (n.op == model::GraphOp::act) DOCTEST_CHECK((n.act == "hswish" || n.act == "silu"));
    }
  }
}

TEST_CASE("lower: nb201 cells compute the network's logits, every operation on every edge") {
  auto cfg = test::nb201_space(4, 1, "[3,16,16]");
  auto ctx = space::cost_context(cfg);
  space::Sampler s(cfg);
  Rng r(9, 0);
  std::set<std::string> ops;
  for (int i = 0; i < 40; ++i) {
    space::Genome g = s.draw(r);
    for (const auto& op : g.nb201.ops) ops.insert(op);
    model::Graph graph = check_same(g, ctx);
    // the all-skip/none mixtures still end in the classifier fed by global pooling
    DOCTEST_CHECK(graph.nodes.back().op == model::GraphOp::linear);
  }
  DOCTEST_CHECK(ops.size() == 5);
  space::Genome none;
  none.family = "nb201";
  none.nb201 = space::parse_nb201_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  check_same(none, ctx);
}

TEST_CASE("lower: the graph records its normalisation and genome; calibration ranges hold every value and 0") {
  auto cfg = cnn_space("[1,12,12]");
  auto ctx = space::cost_context(cfg);
  space::Sampler s(cfg);
  Rng r(4, 0);
  model::Network net(s.draw(r), ctx);
  net->eval();
  model::Graph graph = model::lower(net, {0.5f}, {0.25f});
  DOCTEST_CHECK(graph.mean == std::vector<float>{0.5f});
  DOCTEST_CHECK(graph.std == std::vector<float>{0.25f});
  DOCTEST_CHECK(graph.genome == space::canonical(net->genome()));
  torch::Tensor images = torch::randn({50, 1, 12, 12}) + 1.0;
  auto ranges = model::calibrate(graph, images, 16);
  auto values = model::run_graph(graph, images);
  DOCTEST_REQUIRE(ranges.size() == graph.tensors.size());
  for (size_t t = 0; t < values.size(); ++t) {
    DOCTEST_CHECK(ranges[t].min <= 0.f);
    DOCTEST_CHECK(ranges[t].max >= 0.f);
    DOCTEST_CHECK(values[t].min().item<float>() >= ranges[t].min);
    DOCTEST_CHECK(values[t].max().item<float>() <= ranges[t].max);
  }
  DOCTEST_CHECK(ranges[size_t(graph.input)].max == doctest::Approx(images.max().item<float>()));
  DOCTEST_CHECK_THROWS_AS(model::calibrate(graph, torch::zeros({0, 1, 12, 12})), UsageError);
}
