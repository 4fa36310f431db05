// tflite_test: the TFLite writer's flatbuffers verify against the schema, name their operators
// with both operator-code fields, lay tensors out NHWC with PyTorch's padding reproduced, and
// quantise int8 as TFLite's specification asks (per-channel convolution scales max|w| / 127, bias
// scale input x weight scale, pooling keeping its input's parameters, a table on every int8 and
// int32 tensor). That the numbers come out right is checked by Arm NN in tests/cli/export_tflite.sh.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/random.h"
#include "nas/model/lower.h"
#include "nas/model/tflite.h"
#include "nas/model/tflite_schema_generated.h"
#include "nas/space/cost.h"
#include "nas/space/sampler.h"

#include "../networks.h"

using namespace nas;
namespace tfl = nas::tflite;

namespace {

// A graph with one node of every kind the writer handles: a SAME convolution, a stride-2
// convolution on an even size (PAD + VALID), a depthwise one, hswish, silu, add, mul by 0, both
// average poolings, global pooling and a fully-connected layer.
struct Tiny {
  model::Graph g;
  int tensor(const std::string& name, std::vector<int64_t> shape) {
    g.tensors.push_back({name, std::move(shape)});
    return int(g.tensors.size()) - 1;
  }
  int node(model::GraphNode n, std::vector<int64_t> shape) {
    n.output = tensor(n.name, std::move(shape));
    g.nodes.push_back(n);
    return n.output;
  }
  int conv(const std::string& name, int in, int64_t out_c, int64_t k, int64_t s, int64_t groups,
           const std::string& act) {
    model::GraphNode n;
    n.op = model::GraphOp::conv;
    n.name = name;
    n.inputs = {in};
    const auto& is = g.tensors[size_t(in)].shape;
    n.kernel = k, n.stride = s, n.pad = k / 2, n.groups = groups, n.act = act;
    n.weight_shape = {out_c, is[0] / groups, k, k};
    for (int64_t i = 0; i < out_c * (is[0] / groups) * k * k; ++i)
      n.weight.push_back(float(std::sin(0.7 * double(i) + double(out_c))));
    for (int64_t o = 0; o < out_c; ++o) n.bias.push_back(0.1f * float(o) - 0.2f);
    return node(n, {out_c, model::conv_out(is[1], k, s, k / 2), model::conv_out(is[2], k, s, k / 2)});
  }
  int simple(model::GraphOp op, const std::string& name, std::vector<int> in, const std::string& act = "none") {
    model::GraphNode n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.act = act;
    return node(n, g.tensors[size_t(n.inputs[0])].shape);
  }
  int pool(const std::string& name, int in, int64_t k, int64_t s, int64_t p) {
    model::GraphNode n;
    n.op = model::GraphOp::avg_pool;
    n.name = name;
    n.inputs = {in};
    n.kernel = k, n.stride = s, n.pad = p;
    const auto& is = g.tensors[size_t(in)].shape;
    return node(n, {is[0], model::conv_out(is[1], k, s, p), model::conv_out(is[2], k, s, p)});
  }
  Tiny() {
    g.input = tensor("input", {3, 8, 8});
    int c1 = conv("c1", g.input, 4, 3, 1, 1, "relu");
    int c2 = conv("c2", c1, 6, 3, 2, 1, "none");
    int dw = conv("dw", c2, 6, 3, 1, 6, "relu6");
    int hs = simple(model::GraphOp::act, "hs", {dw}, "hswish");
    int si = simple(model::GraphOp::act, "si", {hs}, "silu");
    int a1 = simple(model::GraphOp::add, "a1", {si, c2}, "relu");
    int z = simple(model::GraphOp::mul, "zero", {a1});
    int a2 = simple(model::GraphOp::add, "a2", {a1, z});
    int p3 = pool("p3", a2, 3, 1, 1);
    int p2 = pool("p2", p3, 2, 2, 0);
    model::GraphNode gap;
    gap.op = model::GraphOp::global_avg_pool;
    gap.name = "gap";
    gap.inputs = {p2};
    int v = node(gap, {6});
    model::GraphNode fc;
    fc.op = model::GraphOp::linear;
    fc.name = "fc";
    fc.inputs = {v};
    fc.weight_shape = {5, 6};
    for (int i = 0; i < 30; ++i) fc.weight.push_back(float(std::cos(1.3 * i)) * (i == 7 ? 3.f : 1.f));
    fc.bias = {0.5f, -0.25f, 0.f, 1.f, 2.f};
    g.output = node(fc, {5});
  }
  std::vector<model::TensorRange> ranges() const {
    std::vector<model::TensorRange> r;
    for (size_t i = 0; i < g.tensors.size(); ++i) r.push_back({-1.f - 0.1f * float(i), 2.f + 0.2f * float(i)});
    return r;
  }
};

const tfl::Model* parse(const std::string& bytes) {
  DOCTEST_REQUIRE(model::verify_tflite(bytes));
  DOCTEST_REQUIRE(bytes.size() > 8);
  DOCTEST_REQUIRE(bytes.substr(4, 4) == "TFL3");
  return tfl::GetModel(bytes.data());
}

const tfl::Tensor* find(const tfl::SubGraph* sg, const std::string& name) {
  for (const auto* t : *sg->tensors())
    if (t->name()->str() == name) return t;
  DOCTEST_FAIL("no tensor '" << name << "'");
  return nullptr;
}

int index_of(const tfl::SubGraph* sg, const std::string& name) {
  for (size_t i = 0; i < sg->tensors()->size(); ++i)
    if (sg->tensors()->Get(unsigned(i))->name()->str() == name) return int(i);
  DOCTEST_FAIL("no tensor '" << name << "'");
  return -1;
}

std::vector<int> shape(const tfl::Tensor* t) { return std::vector<int>(t->shape()->begin(), t->shape()->end()); }

template <class T> std::vector<T> data(const tfl::Model* m, const tfl::Tensor* t) {
  const auto* d = m->buffers()->Get(t->buffer())->data();
  DOCTEST_REQUIRE(d != nullptr);
  DOCTEST_REQUIRE(d->size() % sizeof(T) == 0);
  std::vector<T> out(d->size() / sizeof(T));
  std::memcpy(out.data(), d->data(), d->size());
  return out;
}

std::vector<std::string> op_names(const tfl::Model* m) {
  std::vector<std::string> names;
  for (const auto* op : *m->subgraphs()->Get(0)->operators())
    names.push_back(tfl::EnumNameBuiltinOperator(m->operator_codes()->Get(op->opcode_index())->builtin_code()));
  return names;
}

// The operator that writes tensor `name`.
const tfl::Operator* producer(const tfl::SubGraph* sg, const std::string& name) {
  const int t = index_of(sg, name);
  for (const auto* op : *sg->operators())
    if (op->outputs()->Get(0) == t) return op;
  DOCTEST_FAIL("nothing writes '" << name << "'");
  return nullptr;
}

float qscale(const tfl::Tensor* t, unsigned i = 0) { return t->quantization()->scale()->Get(i); }
int64_t qzero(const tfl::Tensor* t, unsigned i = 0) { return t->quantization()->zero_point()->Get(i); }

} // namespace

TEST_CASE("tflite: a float32 file has the schema's structure, NHWC tensors and PyTorch's padding") {
  Tiny t;
  const std::string bytes = model::write_tflite(t.g, model::TfliteOptions{});
  const tfl::Model* m = parse(bytes);
  CHECK(m->version() == 3);
  CHECK(m->description()->str() == "minnow");
  REQUIRE(m->subgraphs()->size() == 1);
  REQUIRE(m->buffers()->size() > 1);
  CHECK((m->buffers()->Get(0)->data() == nullptr || m->buffers()->Get(0)->data()->size() == 0));
  for (const auto* c : *m->operator_codes()) {
    CHECK(int(c->deprecated_builtin_code()) == int(c->builtin_code()));
    CHECK(c->version() == 1);
  }
  CHECK(op_names(m) == std::vector<std::string>{"CONV_2D", "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH",
                                                "LOGISTIC", "MUL", "ADD", "MUL", "ADD", "AVERAGE_POOL_2D",
                                                "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED"});
  const auto* sg = m->subgraphs()->Get(0);
  CHECK(shape(find(sg, "input")) == std::vector<int>{1, 8, 8, 3});
  CHECK(shape(find(sg, "c1")) == std::vector<int>{1, 8, 8, 4});
  CHECK(shape(find(sg, "c2.pad")) == std::vector<int>{1, 10, 10, 4});
  CHECK(shape(find(sg, "c2")) == std::vector<int>{1, 4, 4, 6});
  CHECK(shape(find(sg, "p2")) == std::vector<int>{1, 2, 2, 6});
  CHECK(shape(find(sg, "gap")) == std::vector<int>{1, 6});
  CHECK(shape(find(sg, "fc")) == std::vector<int>{1, 5});
  CHECK(sg->inputs()->size() == 1);
  CHECK(sg->inputs()->Get(0) == index_of(sg, "input"));
  CHECK(sg->outputs()->Get(0) == index_of(sg, "fc"));
  for (const auto* tensor : *sg->tensors()) {
    CHECK(tensor->quantization() == nullptr);
    const std::string name = tensor->name()->str();
    const std::string suffix = name.substr(std::min(name.size(), name.rfind('.')));
    const bool constant = suffix == ".weight" || suffix == ".bias" || suffix == ".paddings" || suffix == ".scalar" ||
                          suffix == ".axes";
    DOCTEST_INFO("tensor ", name);
    CHECK((tensor->buffer() != 0) == constant);
  }

  // stride 1: SAME; stride 2 on an even size: PAD by 1 on each side, then VALID
  CHECK(producer(sg, "c1")->builtin_options_as_Conv2DOptions()->padding() == tfl::Padding_SAME);
  const auto* c1 = producer(sg, "c1")->builtin_options_as_Conv2DOptions();
  CHECK(c1->fused_activation_function() == tfl::ActivationFunctionType_RELU);
  const auto* c2 = producer(sg, "c2")->builtin_options_as_Conv2DOptions();
  CHECK(c2->padding() == tfl::Padding_VALID);
  CHECK(c2->stride_w() == 2);
  CHECK(c2->stride_h() == 2);
  CHECK(data<int32_t>(m, find(sg, "c2.paddings")) == std::vector<int32_t>{0, 0, 1, 1, 1, 1, 0, 0});
  const auto* dw = producer(sg, "dw")->builtin_options_as_DepthwiseConv2DOptions();
  CHECK(dw->depth_multiplier() == 1);
  CHECK(dw->fused_activation_function() == tfl::ActivationFunctionType_RELU6);
  CHECK(producer(sg, "p3")->builtin_options_as_Pool2DOptions()->padding() == tfl::Padding_SAME);
  CHECK(producer(sg, "p2")->builtin_options_as_Pool2DOptions()->padding() == tfl::Padding_VALID);
  // global pooling: MEAN over H and W (axes 1, 2) without keeping them
  CHECK(producer(sg, "gap")->builtin_options_as_ReducerOptions()->keep_dims() == false);
  CHECK(data<int32_t>(m, find(sg, "gap.axes")) == std::vector<int32_t>{1, 2});
  const auto* a1 = producer(sg, "a1")->builtin_options_as_AddOptions();
  CHECK(a1->fused_activation_function() == tfl::ActivationFunctionType_RELU);

  // weights: OIHW -> OHWI; depthwise {C, 1, k, k} -> [1, k, k, C]; fully-connected as is
  const auto& c2n = t.g.nodes[1];
  CHECK(shape(find(sg, "c2.weight")) == std::vector<int>{6, 3, 3, 4});
  auto w = data<float>(m, find(sg, "c2.weight"));
  for (int o : {0, 5})
    for (int i : {0, 3})
      CHECK(w[size_t(((o * 3 + 2) * 3 + 1) * 4 + i)] == c2n.weight[size_t(((o * 4 + i) * 3 + 2) * 3 + 1)]);
  const auto& dwn = t.g.nodes[2];
  CHECK(shape(find(sg, "dw.weight")) == std::vector<int>{1, 3, 3, 6});
  auto wd = data<float>(m, find(sg, "dw.weight"));
  CHECK(wd[size_t((1 * 3 + 2) * 6 + 4)] == dwn.weight[size_t((4 * 3 + 1) * 3 + 2)]);
  CHECK(data<float>(m, find(sg, "fc.weight")) == t.g.nodes.back().weight);
  CHECK(data<float>(m, find(sg, "fc.bias")) == t.g.nodes.back().bias);
  CHECK(data<float>(m, find(sg, "zero.scalar")) == std::vector<float>{0.f});
}

TEST_CASE("tflite: int8 follows TFLite's quantisation specification") {
  Tiny t;
  const auto ranges = t.ranges();
  model::TfliteOptions opt;
  opt.int8 = true;
  opt.ranges = &ranges;
  opt.description = "int8 test";
  const std::string bytes = model::write_tflite(t.g, opt);
  const tfl::Model* m = parse(bytes);
  CHECK(m->description()->str() == "int8 test");
  const auto* sg = m->subgraphs()->Get(0);
  for (const auto* tensor : *sg->tensors()) {
    DOCTEST_INFO("tensor ", tensor->name()->str());
    CHECK((tensor->type() == tfl::TensorType_INT8 || tensor->type() == tfl::TensorType_INT32));
    REQUIRE(tensor->quantization() != nullptr);
    REQUIRE(tensor->quantization()->scale() != nullptr);
    REQUIRE(tensor->quantization()->zero_point() != nullptr);
    CHECK(tensor->quantization()->scale()->size() == tensor->quantization()->zero_point()->size());
    CHECK(tensor->quantization()->scale()->size() >= 1);
  }
  // activations: per tensor, asymmetric over the range
  const auto* in = find(sg, "input");
  CHECK(in->type() == tfl::TensorType_INT8);
  CHECK(qscale(in) == doctest::Approx(3.0 / 255).epsilon(1e-6));
  CHECK(qzero(in) == std::lround(-128 + 1.0 / (3.0 / 255)));
  CHECK(find(sg, "fc")->type() == tfl::TensorType_INT8);
  CHECK(qscale(find(sg, "fc")) == doctest::Approx((ranges.back().max - ranges.back().min) / 255.0).epsilon(1e-6));

  // convolution weights: per output channel, symmetric, max|w| / 127, on dim 0 (dim 3 depthwise)
  const auto& c2n = t.g.nodes[1];
  const auto* w = find(sg, "c2.weight");
  CHECK(w->type() == tfl::TensorType_INT8);
  CHECK(w->quantization()->quantized_dimension() == 0);
  REQUIRE(w->quantization()->scale()->size() == 6);
  auto wq = data<int8_t>(m, w);
  const size_t per = 4 * 3 * 3;
  for (unsigned o = 0; o < 6; ++o) {
    float maxabs = 0;
    for (size_t i = 0; i < per; ++i) maxabs = std::max(maxabs, std::fabs(c2n.weight[o * per + i]));
    CHECK(qscale(w, o) == doctest::Approx(maxabs / 127).epsilon(1e-6));
    CHECK(qzero(w, o) == 0);
    // OHWI element (o, y=2, x=1, i=3) is OIHW (o, 3, 2, 1)
    const float v = c2n.weight[o * per + (3 * 3 + 2) * 3 + 1];
    CHECK(int(wq[o * per + (2 * 3 + 1) * 4 + 3]) == std::lround(v / qscale(w, o)));
  }
  CHECK(*std::max_element(wq.begin(), wq.end()) <= 127);
  CHECK(*std::min_element(wq.begin(), wq.end()) >= -127);
  const auto* wd = find(sg, "dw.weight");
  CHECK(wd->quantization()->quantized_dimension() == 3);
  CHECK(wd->quantization()->scale()->size() == 6);

  // bias: int32, scale = input scale x weight scale per channel (the input of c2 is its PAD)
  const auto* b = find(sg, "c2.bias");
  CHECK(b->type() == tfl::TensorType_INT32);
  const auto* pad = find(sg, "c2.pad");
  CHECK(qscale(pad) == qscale(find(sg, "c1")));
  CHECK(qzero(pad) == qzero(find(sg, "c1")));
  auto bq = data<int32_t>(m, b);
  for (unsigned o = 0; o < 6; ++o) {
    CHECK(qscale(b, o) == doctest::Approx(double(qscale(pad)) * qscale(w, o)).epsilon(1e-6));
    CHECK(bq[o] == std::lround(c2n.bias[o] / qscale(b, o)));
  }

  // fully connected: per tensor
  const auto* fw = find(sg, "fc.weight");
  REQUIRE(fw->quantization()->scale()->size() == 1);
  float fmax = 0;
  for (float v : t.g.nodes.back().weight) fmax = std::max(fmax, std::fabs(v));
  CHECK(qscale(fw) == doctest::Approx(fmax / 127).epsilon(1e-6));
  CHECK(qscale(find(sg, "fc.bias")) == doctest::Approx(double(qscale(find(sg, "gap"))) * qscale(fw)).epsilon(1e-6));

  // pooling keeps its input's parameters, MEAN has its own (the pooled values' range, far below
  // the map's); LOGISTIC's output is (1/256, -128)
  const std::map<std::string, std::string> keeps{{"p3", "a2"}, {"p2", "p3"}};
  for (const auto& [out, from] : keeps) {
    CHECK(qscale(find(sg, out)) == qscale(find(sg, from)));
    CHECK(qzero(find(sg, out)) == qzero(find(sg, from)));
  }
  CHECK(qscale(find(sg, "si.sigmoid")) == doctest::Approx(1.0 / 256));
  CHECK(qzero(find(sg, "si.sigmoid")) == -128);

  // the int8 operator versions of TFLite's op_version.cc
  std::map<std::string, int> versions;
  for (const auto* c : *m->operator_codes()) {
    CHECK(int(c->deprecated_builtin_code()) == int(c->builtin_code()));
    versions[tfl::EnumNameBuiltinOperator(c->builtin_code())] = c->version();
  }
  CHECK(versions["CONV_2D"] == 3);
  CHECK(versions["DEPTHWISE_CONV_2D"] == 3);
  CHECK(versions["FULLY_CONNECTED"] == 4);
  CHECK(versions["ADD"] == 2);
  CHECK(versions["AVERAGE_POOL_2D"] == 2);
}

TEST_CASE("tflite: misuse and graphs TFLite cannot express are refused with typed errors") {
  Tiny t;
  model::TfliteOptions opt;
  opt.int8 = true;
  CHECK_THROWS_AS(model::write_tflite(t.g, opt), UsageError);
  std::vector<model::TensorRange> short_ranges(3);
  opt.ranges = &short_ranges;
  CHECK_THROWS_AS(model::write_tflite(t.g, opt), UsageError);
  auto ranges = t.ranges();
  ranges[4].max = std::nanf("");
  opt.ranges = &ranges;
  CHECK_THROWS_AS(model::write_tflite(t.g, opt), UsageError);

  Tiny grouped;
  grouped.g.nodes[1].groups = 2;   // 4 input channels in 2 groups: neither plain nor depthwise
  grouped.g.nodes[1].weight_shape[1] = 2;
  grouped.g.nodes[1].weight.resize(6 * 2 * 3 * 3);
  CHECK_THROWS_AS(model::write_tflite(grouped.g, {}), Error);
  Tiny pool;
  pool.g.nodes[9].kernel = 3;   // p2: 3 x 3, stride 2, pad 1 on 4 x 4: SAME pads 0 before, not 1
  pool.g.nodes[9].pad = 1;
  CHECK_THROWS_WITH_AS(model::write_tflite(pool.g, {}), doctest::Contains("average pooling 'p2'"), Error);
  Tiny act;
  act.g.nodes[3].act = "gelu";
  CHECK_THROWS_WITH_AS(model::write_tflite(act.g, {}), doctest::Contains("gelu"), Error);
  CHECK_FALSE(model::verify_tflite(std::string("TFL3 is not enough")));
  std::string bytes = model::write_tflite(Tiny().g, {});
  CHECK(model::verify_tflite(bytes));
  bytes.resize(bytes.size() / 2);
  CHECK_FALSE(model::verify_tflite(bytes));
}

TEST_CASE("tflite: lowered random genomes of both families verify, float32 and int8, with NHWC shapes") {
  test::CnnSpace cnn;
  cnn.seed = 7;
  cnn.classes = 10;
  cnn.stem_width = "[4,8]";
  cnn.stem_kernel = "[3,5]";
  cnn.width = "[4,8,16]";
  cnn.path = "/tmp/tflite.toml";
  const std::map<std::string, config::StudyConfig> spaces{
      {"cnn", test::wide_cnn(cnn)}, {"nb201", test::nb201_space(8, 1, "[3,32,32]", "/tmp/tflite.toml")}};
  for (const auto& [family, cfg] : spaces) {
    auto ctx = space::cost_context(cfg);
    space::Sampler sampler(cfg);
    Rng rng(cfg.seed, 2);
    for (int k = 0; k < 8; ++k) {
      space::Genome genome = sampler.draw(rng);
      DOCTEST_INFO(family, " genome ", space::summary(genome));
      model::Network net(genome, ctx);
      net->eval();
      model::Graph g = model::lower(net, std::vector<float>(size_t(ctx.input[0]), 0.f),
                                    std::vector<float>(size_t(ctx.input[0]), 1.f));
      auto ranges = model::calibrate(g, torch::randn({8, ctx.input[0], ctx.input[1], ctx.input[2]}));
      for (bool int8 : {false, true}) {
        model::TfliteOptions opt;
        opt.int8 = int8;
        opt.ranges = &ranges;
        const std::string bytes = model::write_tflite(g, opt);
        const auto* sg = parse(bytes)->subgraphs()->Get(0);
        for (const auto& gt : g.tensors) {
          const auto& s = gt.shape;
          const auto expect = s.size() == 3 ? std::vector<int>{1, int(s[1]), int(s[2]), int(s[0])}
                                            : std::vector<int>{1, int(s[0])};
          CHECK(shape(find(sg, gt.name)) == expect);
          CHECK(find(sg, gt.name)->type() == (int8 ? tfl::TensorType_INT8 : tfl::TensorType_FLOAT32));
        }
        CHECK(shape(sg->tensors()->Get(unsigned(sg->outputs()->Get(0)))) == std::vector<int>{1, 10});
      }
    }
  }
}
