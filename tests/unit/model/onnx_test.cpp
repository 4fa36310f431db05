// onnx_test: the ONNX writer's output decoded with a protobuf reader written here from
// onnx/onnx.proto's field numbers: header (IR version, opset, producer, metadata), node types in
// order, attributes, initializers (shape and the exact float32 values), input/output shapes with
// the symbolic batch; then the decoded model evaluated operator by operator with LibTorch must
// compute the graph's logits, for a known graph and random genomes of both families. ONNX
// Runtime itself checks the files in tests/cli/export_onnx.sh.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <set>

#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/model/lower.h"
#include "nas/model/onnx.h"
#include "nas/space/cost.h"
#include "nas/space/sampler.h"

#include "../networks.h"

using namespace nas;

namespace {

// ---- a protobuf reader: every field of a message, in order
struct Field {
  int num = 0, wire = 0;
  uint64_t v = 0;     // varint and fixed32
  std::string bytes;  // length-delimited
};

struct Msg {
  std::vector<Field> fields;
  std::vector<const Field*> all(int num) const {
    std::vector<const Field*> r;
    for (const auto& f : fields)
      if (f.num == num) r.push_back(&f);
    return r;
  }
  const Field& one(int num) const {
    auto r = all(num);
    if (r.size() != 1) throw std::runtime_error("field " + std::to_string(num) + " occurs " + std::to_string(r.size()) + " times");
    return *r[0];
  }
  bool has(int num) const { return !all(num).empty(); }
  std::string str(int num) const { return one(num).bytes; }
  int64_t i64(int num) const { return int64_t(one(num).v); }
};

uint64_t read_varint(const std::string& s, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= s.size()) throw std::runtime_error("truncated varint");
    auto b = uint8_t(s[at++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("varint longer than 10 bytes");
}

Msg parse(const std::string& s) {
  Msg m;
  for (size_t at = 0; at < s.size();) {
    Field f;
    uint64_t key = read_varint(s, at);
    f.num = int(key >> 3);
    f.wire = int(key & 7);
    if (f.wire == 0) {
      f.v = read_varint(s, at);
    } else if (f.wire == 5) {
      if (at + 4 > s.size()) throw std::runtime_error("truncated fixed32");
      for (int i = 0; i < 4; ++i) f.v |= uint64_t(uint8_t(s[at + size_t(i)])) << (8 * i);
      at += 4;
    } else if (f.wire == 2) {
      uint64_t n = read_varint(s, at);
      if (n > s.size() - at) throw std::runtime_error("length past the end");
      f.bytes = s.substr(at, size_t(n));
      at += size_t(n);
    } else {
      throw std::runtime_error("wire type " + std::to_string(f.wire));
    }
    m.fields.push_back(std::move(f));
  }
  return m;
}

// ---- the decoded ONNX model
struct Node {
  std::string op, name;
  std::vector<std::string> in, out;
  std::map<std::string, Msg> attrs;
  int64_t attr_i(const std::string& a) const { return attrs.at(a).i64(3); }
  std::vector<int64_t> attr_ints(const std::string& a) const {
    std::vector<int64_t> r;
    for (const Field* f : attrs.at(a).all(8)) r.push_back(int64_t(f->v));
    return r;
  }
};

struct Init {
  std::string name;
  std::vector<int64_t> dims;
  int64_t type = 0;
  std::string raw;
  std::vector<float> values() const {
    std::vector<float> v(raw.size() / 4);
    for (size_t i = 0; i < v.size(); ++i) {
      uint32_t u = 0;
      for (int b = 0; b < 4; ++b) u |= uint32_t(uint8_t(raw[4 * i + size_t(b)])) << (8 * b);
      std::memcpy(&v[i], &u, 4);
    }
    return v;
  }
};

struct Value {                          // a ValueInfoProto: name, elem_type, dims ("N" or a number)
  std::string name;
  int64_t elem_type = 0;
  std::vector<std::string> dims;
};

struct Onnx {
  int64_t ir = 0, opset = 0;
  std::string producer, opset_domain = "?";
  std::map<std::string, std::string> meta;
  std::vector<Node> nodes;
  std::vector<Init> inits;
  std::vector<Value> inputs, outputs, value_info;
  std::vector<std::string> ops() const {
    std::vector<std::string> r;
    for (const auto& n : nodes) r.push_back(n.op);
    return r;
  }
  const Init& init(const std::string& name) const {
    for (const auto& i : inits)
      if (i.name == name) return i;
    throw std::runtime_error("no initializer '" + name + "'");
  }
};

Value decode_value(const std::string& bytes) {
  Msg v = parse(bytes);
  Msg tensor = parse(parse(v.str(2)).str(1));      // TypeProto.tensor_type
  Value r{v.str(1), tensor.i64(1), {}};
  for (const Field* d : parse(tensor.str(2)).all(1)) {
    Msg dim = parse(d->bytes);
    r.dims.push_back(dim.has(2) ? dim.str(2) : std::to_string(dim.i64(1)));
  }
  return r;
}

Node decode_node(const std::string& bytes) {
  Msg m = parse(bytes);
  Node n;
  n.op = m.str(4);
  n.name = m.str(3);
  for (const Field* f : m.all(1)) n.in.push_back(f->bytes);
  for (const Field* f : m.all(2)) n.out.push_back(f->bytes);
  for (const Field* f : m.all(5)) {
    Msg a = parse(f->bytes);
    n.attrs[a.str(1)] = a;
  }
  return n;
}

Onnx decode(const std::string& file) {
  Msg m = parse(file);
  Onnx o;
  o.ir = m.i64(1);
  o.producer = m.str(2);
  Msg opset = parse(m.str(8));
  o.opset = opset.i64(2);
  o.opset_domain = opset.has(1) ? opset.str(1) : "";
  for (const Field* f : m.all(14)) {
    Msg e = parse(f->bytes);
    o.meta[e.str(1)] = e.str(2);
  }
  Msg g = parse(m.str(7));
  for (const Field* f : g.all(1)) o.nodes.push_back(decode_node(f->bytes));
  for (const Field* f : g.all(5)) {
    Msg t = parse(f->bytes);
    Init i{t.str(8), {}, t.i64(2), t.str(9)};
    for (const Field* d : t.all(1)) i.dims.push_back(int64_t(d->v));
    o.inits.push_back(i);
  }
  for (const Field* f : g.all(11)) o.inputs.push_back(decode_value(f->bytes));
  for (const Field* f : g.all(12)) o.outputs.push_back(decode_value(f->bytes));
  for (const Field* f : g.all(13)) o.value_info.push_back(decode_value(f->bytes));
  return o;
}

// ---- the decoded model run with LibTorch, one ONNX operator at a time
torch::Tensor run_op(const Node& n, const std::vector<torch::Tensor>& x) {
  if (n.op == "Conv") {
    auto p = n.attr_ints("pads");
    DOCTEST_REQUIRE((p.size() == 4 && p[0] == p[2] && p[1] == p[3]));
    return torch::conv2d(x[0], x[1], x[2], n.attr_ints("strides"), {p[0], p[1]}, n.attr_ints("dilations"),
                         n.attr_i("group"));
  }
  if (n.op == "Gemm") {
    DOCTEST_REQUIRE(n.attr_i("transB") == 1);
    return torch::linear(x[0], x[1], x[2]);
  }
  if (n.op == "AveragePool") {
    auto p = n.attr_ints("pads");
    DOCTEST_REQUIRE((p.size() == 4 && p[0] == p[2] && p[1] == p[3]));
    return torch::avg_pool2d(x[0], n.attr_ints("kernel_shape"), n.attr_ints("strides"), {p[0], p[1]},
                             n.attr_i("ceil_mode") != 0, n.attr_i("count_include_pad") != 0);
  }
  if (n.op == "GlobalAveragePool") return x[0].mean({2, 3}, true);
  if (n.op == "Flatten") return x[0].flatten(n.attr_i("axis"));
  if (n.op == "Relu") return torch::relu(x[0]);
  if (n.op == "Clip") return torch::clamp(x[0], x[1].item<float>(), x[2].item<float>());
  if (n.op == "Sigmoid") return torch::sigmoid(x[0]);
  if (n.op == "HardSwish") return x[0] * torch::clamp(x[0] / 6 + 0.5, 0, 1);
  if (n.op == "Add") return x[0] + x[1];
  if (n.op == "Mul") return x[0] * x[1];
  if (n.op == "Div") return x[0] / x[1];
  FAIL("operator not known to the test: ", n.op);
  return {};
}

torch::Tensor evaluate(const Onnx& o, const torch::Tensor& input) {
  std::map<std::string, torch::Tensor> v;
  for (const auto& i : o.inits) {
    auto vals = i.values();
    v[i.name] = torch::from_blob(vals.data(), i.dims, torch::kFloat32).clone();
  }
  v[o.inputs.at(0).name] = input;
  for (const auto& n : o.nodes) {
    std::vector<torch::Tensor> x;
    for (const auto& in : n.in) x.push_back(v.at(in));
    v[n.out.at(0)] = run_op(n, x);
  }
  return v.at(o.outputs.at(0).name);
}

// Every value is written once, read after it is written (or is an initializer or the input),
// every initializer holds as many float32 values as its dims say, node names are unique.
void check_well_formed(const Onnx& o) {
  std::set<std::string> defined{o.inputs.at(0).name}, node_names;
  for (const auto& i : o.inits) {
    int64_t count = 1;
    for (int64_t d : i.dims) count *= d;
    DOCTEST_CHECK(i.type == 1);
    DOCTEST_CHECK(int64_t(i.raw.size()) == 4 * count);
    DOCTEST_CHECK(defined.insert(i.name).second);
  }
  for (const auto& n : o.nodes) {
    for (const auto& in : n.in) DOCTEST_CHECK_MESSAGE(defined.count(in), n.name, " reads ", in);
    DOCTEST_CHECK(n.out.size() == 1);
    DOCTEST_CHECK_MESSAGE(defined.insert(n.out.at(0)).second, "written twice: ", n.out.at(0));
    DOCTEST_CHECK(node_names.insert(n.name).second);
  }
  DOCTEST_CHECK(defined.count(o.outputs.at(0).name));
  for (const auto& vi : o.value_info) DOCTEST_CHECK_MESSAGE(defined.count(vi.name), vi.name);
}

std::vector<float> random_values(size_t n) {
  torch::Tensor t = torch::randn({int64_t(n)});
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + n);
}

// input {2,6,6} -> conv 3x3 (relu6 fused) -> hswish -> avg_pool 3/2/1 -> depthwise conv, added to
// its input (relu fused) -> + 0 x itself -> silu -> global pooling -> fully connected {3}
model::Graph small_graph() {
  model::Graph g;
  auto tensor = [&](const std::string& name, std::vector<int64_t> s) {
    g.tensors.push_back({name, std::move(s)});
    return int(g.tensors.size()) - 1;
  };
  auto node = [&](model::GraphOp op, const std::string& name, std::vector<int> in, int out) {
    model::GraphNode n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(in);
    n.output = out;
    g.nodes.push_back(n);
    return &g.nodes.back();
  };
  int x = tensor("input", {2, 6, 6}), c1 = tensor("c1", {4, 6, 6}), a1 = tensor("a1", {4, 6, 6});
  int p1 = tensor("p1", {4, 3, 3}), dw = tensor("dw", {4, 3, 3}), sum = tensor("sum", {4, 3, 3});
  int zero = tensor("zero", {4, 3, 3}), sum2 = tensor("sum2", {4, 3, 3}), s = tensor("s", {4, 3, 3});
  int gap = tensor("gap", {4}), fc = tensor("fc", {3});
  auto* n = node(model::GraphOp::conv, "c1", {x}, c1);
  n->kernel = 3, n->pad = 1, n->act = "relu6", n->weight_shape = {4, 2, 3, 3};
  n->weight = random_values(72), n->bias = random_values(4);
  node(model::GraphOp::act, "a1", {c1}, a1)->act = "hswish";
  n = node(model::GraphOp::avg_pool, "p1", {a1}, p1);
  n->kernel = 3, n->stride = 2, n->pad = 1;
  n = node(model::GraphOp::conv, "dw", {p1}, dw);
  n->kernel = 3, n->pad = 1, n->groups = 4, n->weight_shape = {4, 1, 3, 3};
  n->weight = random_values(36), n->bias = random_values(4);
  node(model::GraphOp::add, "sum", {p1, dw}, sum)->act = "relu";
  node(model::GraphOp::mul, "zero", {sum}, zero)->scalar = 0.f;
  node(model::GraphOp::add, "sum2", {sum, zero}, sum2);
  node(model::GraphOp::act, "s", {sum2}, s)->act = "silu";
  node(model::GraphOp::global_avg_pool, "gap", {s}, gap);
  n = node(model::GraphOp::linear, "fc", {gap}, fc);
  n->weight_shape = {3, 4}, n->weight = random_values(12), n->bias = random_values(3);
  g.input = x;
  g.output = fc;
  g.mean = {0.5f, 0.25f};
  g.std = {2.f, 4.f};
  g.genome = "{\"family\":\"test\"}";
  return g;
}

// Decodes, checks the structure, evaluates on x and compares with run_graph.
Onnx check_logits(const model::Graph& g, const model::OnnxOptions& opt, const torch::Tensor& x) {
  Onnx o = decode(model::write_onnx(g, opt));
  check_well_formed(o);
  torch::Tensor want = model::run_graph(g, x).at(size_t(g.output));
  torch::Tensor got = evaluate(o, x);
  DOCTEST_REQUIRE(got.sizes() == want.sizes());
  double scale = std::max(1.0, want.abs().max().item<double>());
  DOCTEST_CHECK((got - want).abs().max().item<double>() <= 1e-5 * scale);
  return o;
}

} // namespace

TEST_CASE("onnx: a known graph decodes to the expected header, nodes, initializers and shapes") {
  torch::manual_seed(3);
  model::Graph g = small_graph();
  Onnx o = check_logits(g, model::OnnxOptions{}, torch::randn({5, 2, 6, 6}));
  CHECK(o.ir == 7);
  CHECK(o.opset == 13);
  CHECK(o.opset_domain == "");
  CHECK(o.producer == "minnow");
  CHECK(o.meta.at("genome") == g.genome);
  CHECK(o.meta.at("input_mean") == "[0.5,0.25]");
  CHECK(o.meta.at("input_std") == "[2,4]");
  CHECK(o.meta.at("input_layout") == "NCHW");
  CHECK(o.ops() == std::vector<std::string>{"Conv", "Clip", "Add", "Clip", "Mul", "Div", "AveragePool", "Conv", "Add",
                                            "Relu", "Mul", "Add", "Sigmoid", "Mul", "GlobalAveragePool", "Flatten", "Gemm"});
  // weights, then the shared scalars 0, 6 and 3 once each, in the order first used
  std::vector<std::vector<int64_t>> dims;
  for (const auto& i : o.inits) dims.push_back(i.dims);
  CHECK(dims == std::vector<std::vector<int64_t>>{{4, 2, 3, 3}, {4}, {}, {}, {}, {4, 1, 3, 3}, {4}, {3, 4}, {3}});
  CHECK(o.init(o.nodes[0].in[1]).values() == g.nodes[0].weight);
  CHECK(o.init(o.nodes[0].in[2]).values() == g.nodes[0].bias);
  CHECK(o.init(o.nodes[1].in[2]).values() == std::vector<float>{6.f});
  CHECK(o.init(o.nodes.back().in[1]).values() == g.nodes.back().weight);
  CHECK(o.nodes[7].attr_i("group") == 4);
  CHECK(o.nodes[7].attr_ints("pads") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(o.nodes[6].attr_ints("strides") == std::vector<int64_t>{2, 2});
  CHECK(o.nodes[6].attr_i("count_include_pad") == 0);
  CHECK(o.nodes[15].attr_i("axis") == 1);
  CHECK(o.nodes.back().attr_i("transB") == 1);
  REQUIRE(o.inputs.size() == 1);
  REQUIRE(o.outputs.size() == 1);
  CHECK(o.inputs[0].name == "input");
  CHECK(o.inputs[0].elem_type == 1);
  CHECK(o.inputs[0].dims == std::vector<std::string>{"N", "2", "6", "6"});
  CHECK(o.outputs[0].name == "logits");
  CHECK(o.outputs[0].dims == std::vector<std::string>{"N", "3"});
  CHECK(o.value_info.size() == g.tensors.size() - 2);
  CHECK(o.value_info.at(2).name == "p1");
  CHECK(o.value_info.at(2).dims == std::vector<std::string>{"N", "4", "3", "3"});
}

TEST_CASE("onnx: opset 14 writes HardSwish; a fixed batch, the producer; unsupported opsets and graphs throw") {
  torch::manual_seed(4);
  model::Graph g = small_graph();
  Onnx o = check_logits(g, model::OnnxOptions{14, false, "test-producer"}, torch::randn({1, 2, 6, 6}));
  CHECK(o.ir == 8);
  CHECK(o.opset == 14);
  CHECK(o.producer == "test-producer");
  CHECK(o.ops() == std::vector<std::string>{"Conv", "Clip", "HardSwish", "AveragePool", "Conv", "Add", "Relu", "Mul",
                                            "Add", "Sigmoid", "Mul", "GlobalAveragePool", "Flatten", "Gemm"});
  CHECK(o.inputs.at(0).dims == std::vector<std::string>{"1", "2", "6", "6"});
  CHECK(o.outputs.at(0).dims == std::vector<std::string>{"1", "3"});
  CHECK(o.inits.size() == 8);   // no 3 without the composed hswish
  for (int64_t opset : {int64_t(12), model::onnx_max_opset + 1})
    CHECK_THROWS_AS(model::write_onnx(g, model::OnnxOptions{opset, true, "minnow"}), UsageError);
  check_logits(g, model::OnnxOptions{model::onnx_max_opset, true, "minnow"}, torch::randn({2, 2, 6, 6}));

  model::Graph bad = g;
  bad.nodes[1].act = "gelu";
  CHECK_THROWS_WITH_AS(model::write_onnx(bad, {}), "onnx: unknown activation 'gelu' at 'a1'", Error);
  bad = g;
  bad.nodes.back().inputs = {int(bad.nodes.back().inputs[0]) - 1};   // fc over a feature map
  CHECK_THROWS_AS(model::write_onnx(bad, {}), Error);
  bad = g;
  bad.nodes[0].weight.pop_back();
  CHECK_THROWS_AS(model::write_onnx(bad, {}), Error);
}

TEST_CASE("onnx: random genomes of both families decode to models that compute the graph's logits") {
  test::CnnSpace cnn;
  cnn.shape = "[3,17,23]";
  cnn.seed = 5;
  cnn.stem_width = "[4,8]";
  cnn.width = "[4,8,16]";
  cnn.path = "/tmp/onnx.toml";
  const config::StudyConfig spaces[] = {test::wide_cnn(cnn), test::nb201_space(4, 1, "[3,16,16]", "/tmp/onnx.toml")};
  std::set<std::string> ops;
  for (const auto& cfg : spaces) {
    auto ctx = space::cost_context(cfg);
    space::Sampler s(cfg);
    Rng r(7, 0);
    for (int i = 0; i < 12; ++i) {
      space::Genome genome = s.draw(r);
      torch::manual_seed(uint64_t(i));
      model::Network net(genome, ctx);
      net->eval();
      model::Graph g = model::lower(net, {0.f, 0.f, 0.f}, {1.f, 1.f, 1.f});
      DOCTEST_INFO("genome ", space::summary(genome));
      torch::Tensor x = torch::randn({2, ctx.input[0], ctx.input[1], ctx.input[2]});
      for (int64_t opset : {13, 14}) {
        Onnx o = check_logits(g, model::OnnxOptions{opset, true, "minnow"}, x);
        for (const auto& op : o.ops()) ops.insert(op);
        CHECK(o.outputs.at(0).dims == std::vector<std::string>{"N", std::to_string(cfg.data.classes)});
      }
    }
  }
  // every operator the writer knows was exercised
  CHECK(ops == std::set<std::string>{"Add", "AveragePool", "Clip", "Conv", "Div", "Flatten", "Gemm",
                                     "GlobalAveragePool", "HardSwish", "Mul", "Relu", "Sigmoid"});
}
