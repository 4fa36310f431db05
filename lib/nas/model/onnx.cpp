// onnx: the ONNX writer -- a minimal protobuf encoder and the Graph's operations as ONNX nodes.
// Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
#include "nas/model/onnx.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "nas/core/error.h"

namespace nas::model {

namespace {

// A protobuf message being written: fields appended in the order they are given.
class Proto {
public:
  Proto& varint(int field, uint64_t v) {
    key(field, 0);
    put_varint(v);
    return *this;
  }
  Proto& int64(int field, int64_t v) { return varint(field, uint64_t(v)); }   // two's complement
  Proto& f32(int field, float v) {
    key(field, 5);
    put_f32(v);
    return *this;
  }
  Proto& bytes(int field, std::string_view s) {
    key(field, 2);
    put_varint(s.size());
    buf_.append(s);
    return *this;
  }
  Proto& message(int field, const Proto& m) { return bytes(field, m.buf_); }
  const std::string& data() const { return buf_; }

  // Little-endian IEEE 754, whatever the host's byte order.
  static void append_f32(std::string& out, float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    for (int i = 0; i < 4; ++i) out += char((u >> (8 * i)) & 0xff);
  }

private:
  void key(int field, int wire) { put_varint(uint64_t(field) << 3 | uint64_t(wire)); }
  void put_varint(uint64_t v) {
    for (; v >= 0x80; v >>= 7) buf_ += char((v & 0x7f) | 0x80);
    buf_ += char(v);
  }
  void put_f32(float v) { append_f32(buf_, v); }
  std::string buf_;
};

// Field numbers of onnx.proto.
namespace model_f { constexpr int ir_version = 1, producer_name = 2, graph = 7, opset_import = 8, metadata_props = 14; }
namespace opset_f { constexpr int domain = 1, version = 2; }
namespace entry_f { constexpr int key = 1, value = 2; }
namespace graph_f { constexpr int node = 1, name = 2, initializer = 5, input = 11, output = 12, value_info = 13; }
namespace node_f { constexpr int input = 1, output = 2, name = 3, op_type = 4, attribute = 5; }
namespace attr_f { constexpr int name = 1, f = 2, i = 3, ints = 8, type = 20; }
namespace attr_type { constexpr int float_ = 1, int_ = 2, ints = 7; }
namespace tensor_f { constexpr int dims = 1, data_type = 2, name = 8, raw_data = 9; }
namespace value_f { constexpr int name = 1, type = 2; }
namespace type_f { constexpr int tensor_type = 1, elem_type = 1, shape = 2, dim = 1, dim_value = 1, dim_param = 2; }
constexpr int onnx_float = 1;   // TensorProto.DataType FLOAT

Proto attr_int(const std::string& name, int64_t v) {
  Proto a;
  a.bytes(attr_f::name, name).varint(attr_f::type, attr_type::int_).int64(attr_f::i, v);
  return a;
}

Proto attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  Proto a;
  a.bytes(attr_f::name, name).varint(attr_f::type, attr_type::ints);
  for (int64_t x : v) a.int64(attr_f::ints, x);
  return a;
}

Proto attr_float(const std::string& name, float v) {
  Proto a;
  a.bytes(attr_f::name, name).varint(attr_f::type, attr_type::float_).f32(attr_f::f, v);
  return a;
}

// ValueInfoProto of a float32 tensor; a negative dimension is the symbolic batch "N".
Proto value_info(const std::string& name, const std::vector<int64_t>& dims) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d < 0) dim.bytes(type_f::dim_param, "N");
    else dim.int64(type_f::dim_value, d);
    shape.message(type_f::dim, dim);
  }
  Proto tensor;
  tensor.varint(type_f::elem_type, onnx_float).message(type_f::shape, shape);
  Proto type;
  type.message(type_f::tensor_type, tensor);
  Proto v;
  v.bytes(value_f::name, name).message(value_f::type, type);
  return v;
}

std::string json_floats(const std::vector<float>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", double(v[i]));
    s += (i ? "," : "") + std::string(b);
  }
  return s + "]";
}

// The Graph's nodes as ONNX nodes and initializers, with unique value and node names.
class OnnxGraph {
public:
  OnnxGraph(const Graph& g, const OnnxOptions& opt);
  std::string model() const;

private:
  void write(const GraphNode& n);
  void conv(const GraphNode& n, const std::string& out);
  void linear(const GraphNode& n, const std::string& out);
  void avg_pool(const GraphNode& n);
  void global_avg_pool(const GraphNode& n);
  // The nodes computing y = act(x).
  void activation(const std::string& base, const std::string& x, const std::string& act, const std::string& y);
  void node(const std::string& op, const std::string& base, const std::vector<std::string>& in,
            const std::string& out, const std::vector<Proto>& attrs = {});
  std::string initializer(const std::string& base, const std::vector<int64_t>& dims, const std::vector<float>& v);
  std::string constant(float v);                 // a shared float scalar
  std::string fresh(const std::string& base);    // an unused value name
  std::vector<int64_t> batched(const std::vector<int64_t>& shape) const;
  const std::string& name_of(int t) const { return names_.at(size_t(t)); }

  const Graph& g_;
  OnnxOptions opt_;
  std::vector<std::string> names_;               // per Graph tensor
  std::set<std::string> values_, node_names_;
  std::map<uint32_t, std::string> constants_;    // by bit pattern
  Proto nodes_, initializers_;                   // GraphProto fields, in order
};

OnnxGraph::OnnxGraph(const Graph& g, const OnnxOptions& opt) : g_(g), opt_(opt) {
  const size_t n = g.tensors.size();
  if (g.input < 0 || size_t(g.input) >= n || g.output < 0 || size_t(g.output) >= n || g.input == g.output)
    throw Error("onnx: the graph's input or output is not one of its tensors");
  if (g.tensors[size_t(g.input)].shape.size() != 3 || g.tensors[size_t(g.output)].shape.size() != 1)
    throw Error("onnx: the graph must map {C, H, W} to {classes}");
  names_.resize(n);
  names_[size_t(g.input)] = fresh("input");
  names_[size_t(g.output)] = fresh("logits");
  for (size_t t = 0; t < n; ++t)
    if (names_[t].empty()) names_[t] = fresh(g.tensors[t].name);
  for (const auto& node : g.nodes) write(node);
}

std::string OnnxGraph::fresh(const std::string& base) {
  const std::string stem = base.empty() ? "t" : base;
  std::string name = stem;
  for (int i = 2; values_.count(name); ++i) name = stem + "_" + std::to_string(i);
  values_.insert(name);
  return name;
}

std::vector<int64_t> OnnxGraph::batched(const std::vector<int64_t>& shape) const {
  std::vector<int64_t> d{opt_.dynamic_batch ? -1 : 1};
  d.insert(d.end(), shape.begin(), shape.end());
  return d;
}

void OnnxGraph::node(const std::string& op, const std::string& base, const std::vector<std::string>& in,
                     const std::string& out, const std::vector<Proto>& attrs) {
  std::string name = base;
  for (int i = 2; node_names_.count(name); ++i) name = base + "_" + std::to_string(i);
  node_names_.insert(name);
  Proto p;
  for (const auto& i : in) p.bytes(node_f::input, i);
  p.bytes(node_f::output, out).bytes(node_f::name, name).bytes(node_f::op_type, op);
  for (const auto& a : attrs) p.message(node_f::attribute, a);
  nodes_.message(graph_f::node, p);
}

std::string OnnxGraph::initializer(const std::string& base, const std::vector<int64_t>& dims,
                                   const std::vector<float>& v) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  if (count != int64_t(v.size()))
    throw Error("onnx: '" + base + "' holds " + std::to_string(v.size()) + " values, its shape " +
                std::to_string(count));
  std::string raw;
  raw.reserve(v.size() * 4);
  for (float x : v) Proto::append_f32(raw, x);
  std::string name = fresh(base);
  Proto t;
  for (int64_t d : dims) t.int64(tensor_f::dims, d);
  t.varint(tensor_f::data_type, onnx_float).bytes(tensor_f::name, name).bytes(tensor_f::raw_data, raw);
  initializers_.message(graph_f::initializer, t);
  return name;
}

std::string OnnxGraph::constant(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  auto it = constants_.find(bits);
  if (it != constants_.end()) return it->second;
  char b[32];
  std::snprintf(b, sizeof b, "const_%g", double(v));
  return constants_[bits] = initializer(b, {}, {v});
}

void OnnxGraph::activation(const std::string& base, const std::string& x, const std::string& act,
                           const std::string& y) {
  if (act == "relu") {
    node("Relu", base, {x}, y);
  } else if (act == "relu6") {
    node("Clip", base, {x, constant(0), constant(6)}, y);
  } else if (act == "hswish" && opt_.opset >= 14) {
    node("HardSwish", base, {x}, y);
  } else if (act == "hswish") {   // x * relu6(x + 3) / 6, as LibTorch computes it
    std::string shifted = fresh(base + "_plus3"), gate = fresh(base + "_relu6"), prod = fresh(base + "_prod");
    node("Add", base + "_plus3", {x, constant(3)}, shifted);
    node("Clip", base + "_relu6", {shifted, constant(0), constant(6)}, gate);
    node("Mul", base + "_prod", {x, gate}, prod);
    node("Div", base, {prod, constant(6)}, y);
  } else if (act == "silu") {
    std::string gate = fresh(base + "_sigmoid");
    node("Sigmoid", base + "_sigmoid", {x}, gate);
    node("Mul", base, {x, gate}, y);
  } else {
    throw Error("onnx: unknown activation '" + act + "' at '" + base + "'");
  }
}

void OnnxGraph::conv(const GraphNode& n, const std::string& out) {
  const auto& w = n.weight_shape;
  if (w.size() != 4) throw Error("onnx: convolution '" + n.name + "' without an OIHW weight");
  std::string weight = initializer(n.name + ".weight", w, n.weight);
  std::string bias = initializer(n.name + ".bias", {w[0]}, n.bias);
  node("Conv", n.name, {name_of(n.inputs.at(0)), weight, bias}, out,
       {attr_ints("kernel_shape", {w[2], w[3]}), attr_ints("strides", {n.stride, n.stride}),
        attr_ints("pads", {n.pad, n.pad, n.pad, n.pad}), attr_ints("dilations", {1, 1}),
        attr_int("group", n.groups)});
}

void OnnxGraph::linear(const GraphNode& n, const std::string& out) {
  const auto& w = n.weight_shape;
  if (w.size() != 2 || g_.tensors.at(size_t(n.inputs.at(0))).shape.size() != 1)
    throw Error("onnx: fully-connected layer '" + n.name + "' needs a flat input and an {O, I} weight");
  std::string weight = initializer(n.name + ".weight", w, n.weight);
  std::string bias = initializer(n.name + ".bias", {w[0]}, n.bias);
  node("Gemm", n.name, {name_of(n.inputs.at(0)), weight, bias}, out,
       {attr_float("alpha", 1.f), attr_float("beta", 1.f), attr_int("transB", 1)});
}

void OnnxGraph::avg_pool(const GraphNode& n) {
  node("AveragePool", n.name, {name_of(n.inputs.at(0))}, name_of(n.output),
       {attr_ints("kernel_shape", {n.kernel, n.kernel}), attr_ints("strides", {n.stride, n.stride}),
        attr_ints("pads", {n.pad, n.pad, n.pad, n.pad}), attr_int("count_include_pad", 0),
        attr_int("ceil_mode", 0)});
}

void OnnxGraph::global_avg_pool(const GraphNode& n) {
  std::string pooled = fresh(n.name + "_nchw");
  node("GlobalAveragePool", n.name, {name_of(n.inputs.at(0))}, pooled);
  node("Flatten", n.name + "_flatten", {pooled}, name_of(n.output), {attr_int("axis", 1)});
}

void OnnxGraph::write(const GraphNode& n) {
  for (int in : n.inputs)
    if (in < 0 || size_t(in) >= names_.size() || names_[size_t(in)].empty())
      throw Error("onnx: node '" + n.name + "' reads a tensor that is not in the graph");
  const std::string& y = name_of(n.output);
  const bool fused = n.act != "none" && n.op != GraphOp::act;
  const std::string out = fused ? fresh(y + "_linear") : y;   // before the fused activation
  switch (n.op) {
    case GraphOp::conv: conv(n, out); break;
    case GraphOp::linear: linear(n, out); break;
    case GraphOp::add: node("Add", n.name, {name_of(n.inputs.at(0)), name_of(n.inputs.at(1))}, out); break;
    case GraphOp::mul: node("Mul", n.name, {name_of(n.inputs.at(0)), constant(n.scalar)}, out); break;
    case GraphOp::act: activation(n.name, name_of(n.inputs.at(0)), n.act, y); break;
    case GraphOp::avg_pool: avg_pool(n); break;
    case GraphOp::global_avg_pool: global_avg_pool(n); break;
  }
  if (fused) {
    if (n.op == GraphOp::avg_pool || n.op == GraphOp::global_avg_pool)
      throw Error("onnx: pooling '" + n.name + "' with a fused activation");
    activation(n.name + "_" + n.act, out, n.act, y);
  }
}

std::string OnnxGraph::model() const {
  Proto io;   // the GraphProto's fields after its nodes, its name and its initializers
  io.message(graph_f::input, value_info(name_of(g_.input), batched(g_.tensors[size_t(g_.input)].shape)));
  io.message(graph_f::output, value_info(name_of(g_.output), batched(g_.tensors[size_t(g_.output)].shape)));
  for (size_t t = 0; t < g_.tensors.size(); ++t)
    if (int(t) != g_.input && int(t) != g_.output)
      io.message(graph_f::value_info, value_info(names_[t], batched(g_.tensors[t].shape)));
  Proto name;
  name.bytes(graph_f::name, "minnow");
  const std::string body = nodes_.data() + name.data() + initializers_.data() + io.data();

  Proto opset;
  opset.bytes(opset_f::domain, "").int64(opset_f::version, opt_.opset);
  Proto m;
  m.int64(model_f::ir_version, opt_.opset == 13 ? 7 : 8).bytes(model_f::producer_name, opt_.producer);
  m.bytes(model_f::graph, body).message(model_f::opset_import, opset);
  const std::pair<const char*, std::string> meta[] = {{"genome", g_.genome},
                                                      {"input_mean", json_floats(g_.mean)},
                                                      {"input_std", json_floats(g_.std)},
                                                      {"input_layout", "NCHW"}};
  for (const auto& [key, value] : meta) {
    Proto e;
    e.bytes(entry_f::key, key).bytes(entry_f::value, value);
    m.message(model_f::metadata_props, e);
  }
  return m.data();
}

} // namespace

std::string write_onnx(const Graph& g, const OnnxOptions& opt) {
  if (opt.opset < onnx_min_opset || opt.opset > onnx_max_opset)
    throw UsageError("onnx: opset " + std::to_string(opt.opset) + " is not supported (" +
                     std::to_string(onnx_min_opset) + " to " + std::to_string(onnx_max_opset) + ")");
  return OnnxGraph(g, opt).model();
}

} // namespace nas::model
