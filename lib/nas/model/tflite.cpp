// tflite: a Graph as a TFLite flatbuffer, float32 or full-integer int8, written through the header
// flatc generates from tflite_schema.fbs (the public schema's subset minnow uses). No LibTorch.
//
// Layouts: feature maps NHWC with batch 1, convolution weights OHWI, depthwise weights [1, kH, kW,
// C * multiplier], fully-connected weights [out, in]. Every graph tensor becomes one TFLite tensor;
// a few operations add their own (PAD's output, silu's sigmoid).
// int8 follows TFLite's quantisation specification: activations per-tensor asymmetric from the
// calibrated ranges, weights symmetric (convolutions per output channel, fully-connected per
// tensor), int32 biases at input scale x weight scale, pooling and reshaping keep their input's
// scale and zero point, LOGISTIC's output at (1/256, -128).
#include "nas/model/tflite.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "nas/core/error.h"
#include "nas/model/tflite_schema_generated.h"

namespace nas::model {
namespace {

namespace tfl = nas::tflite;
using flatbuffers::Offset;

// The quantisation of one tensor: one scale and zero point, or one per slice along `dim`.
struct Quant {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  int32_t dim = 0;
  bool empty() const { return scale.empty(); }
};

// Per-tensor asymmetric int8 parameters covering [min, max] (widened to include 0, so that zero
// is exact, as padding and ReLU need).
Quant asymmetric(TensorRange r) {
  double lo = std::min(0.0, double(r.min)), hi = std::max(0.0, double(r.max));
  if (!(hi > lo)) hi = lo + 1.0;   // a tensor that is always 0 (NAS-Bench-201's "none"): any scale
  const double scale = (hi - lo) / 255.0;
  const int64_t zp = std::clamp<int64_t>(std::llround(-128.0 - lo / scale), -128, 127);
  return Quant{{float(scale)}, {zp}, 0};
}

// Symmetric int8 quantisation of `w` (shape `shape`), one scale per index of axis `axis`, or
// one for the whole tensor when axis < 0: scale = max |w| / 127 (1 where all are 0).
std::pair<std::vector<int8_t>, Quant> symmetric(const std::vector<float>& w, const std::vector<int32_t>& shape,
                                                int axis) {
  int64_t inner = 1, channels = 1;
  if (axis >= 0) {
    channels = shape.at(size_t(axis));
    for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  auto channel = [&](size_t i) { return size_t((int64_t(i) / inner) % channels); };
  std::vector<float> maxabs(size_t(channels), 0.f);
  for (size_t i = 0; i < w.size(); ++i) maxabs[channel(i)] = std::max(maxabs[channel(i)], std::fabs(w[i]));
  Quant q;
  q.dim = std::max(axis, 0);
  for (float m : maxabs) {
    q.scale.push_back(m > 0 ? m / 127.f : 1.f);
    q.zero_point.push_back(0);
  }
  std::vector<int8_t> out(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    out[i] = int8_t(std::clamp<long>(std::lround(w[i] / q.scale[channel(i)]), -127, 127));
  return {std::move(out), std::move(q)};
}

tfl::ActivationFunctionType fused(const GraphNode& n) {
  if (n.act == "none") return tfl::ActivationFunctionType_NONE;
  if (n.act == "relu") return tfl::ActivationFunctionType_RELU;
  if (n.act == "relu6") return tfl::ActivationFunctionType_RELU6;
  throw Error("tflite: activation '" + n.act + "' cannot be fused into '" + n.name + "'");
}

// PyTorch pads `pad` on both sides; TFLite's SAME pads (out - 1) * stride + kernel - in in all,
// the smaller half first. Both see the same windows when they agree on the output size and on
// the first side's padding (whatever SAME adds at the far end is never reached then).
bool same_is_symmetric(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
  return out == conv_out(in, kernel, stride, pad) && total / 2 == pad;
}

// Along both axes of a {C, H, W} input of a convolution or pooling node.
bool same_is_symmetric(const std::vector<int64_t>& in, const GraphNode& n) {
  return same_is_symmetric(in.at(1), n.kernel, n.stride, n.pad) &&
         same_is_symmetric(in.at(2), n.kernel, n.stride, n.pad);
}

class Writer {
public:
  Writer(const Graph& g, const TfliteOptions& opt) : g_(g), opt_(opt), ids_(g.tensors.size(), -1) {
    fb_.ForceDefaults(true);   // every field written, OperatorCode's two codes included
    buffers_.push_back(tfl::CreateBuffer(fb_));   // buffers[0]: the empty sentinel
  }
  std::string write();

private:
  bool int8() const { return opt_.int8; }
  int id(int graph_tensor) const;
  const std::vector<int64_t>& graph_shape(int t) const { return g_.tensors.at(size_t(t)).shape; }
  std::vector<int32_t> nhwc(int graph_tensor) const;
  Quant range_quant(int graph_tensor) const { return asymmetric(opt_.ranges->at(size_t(graph_tensor))); }

  template <class T> uint32_t buffer(const std::vector<T>& values);
  int tensor(const std::string& name, std::vector<int32_t> shape, tfl::TensorType type, uint32_t buffer, Quant q);
  int activation(const std::string& name, std::vector<int32_t> shape, Quant q);
  int output(int graph_tensor, Quant q);
  int weights(const std::string& name, const std::vector<float>& w, std::vector<int32_t> shape, int axis);
  int bias(const std::string& name, const std::vector<float>& b, int input, int weight);
  int int32_constant(const std::string& name, const std::vector<int32_t>& values, std::vector<int32_t> shape);
  void op(tfl::BuiltinOperator code, int version, std::vector<int32_t> in, std::vector<int32_t> out,
          tfl::BuiltinOptions type = tfl::BuiltinOptions_NONE, Offset<void> options = 0);
  int mul_version(int a, int b, int out) const;

  void node(const GraphNode& n);
  void conv(const GraphNode& n);
  int pad(const GraphNode& n, int x);
  void linear(const GraphNode& n);
  void add(const GraphNode& n);
  void mul(const GraphNode& n);
  void act(const GraphNode& n);
  void avg_pool(const GraphNode& n);
  void global_avg_pool(const GraphNode& n);

  const Graph& g_;
  const TfliteOptions& opt_;
  flatbuffers::FlatBufferBuilder fb_;
  std::vector<int> ids_;                          // graph tensor -> TFLite tensor (-1: not yet)
  std::vector<Offset<tfl::Tensor>> tensors_;
  std::vector<Quant> quant_;                      // per TFLite tensor (empty: float32)
  std::vector<Offset<tfl::Buffer>> buffers_;
  std::vector<Offset<tfl::Operator>> operators_;
  std::vector<std::pair<tfl::BuiltinOperator, int>> codes_;   // (operator, version) per opcode index
};

int Writer::id(int graph_tensor) const {
  const int t = ids_.at(size_t(graph_tensor));
  if (t < 0)
    throw Error("tflite: tensor '" + g_.tensors.at(size_t(graph_tensor)).name + "' is read before it is computed");
  return t;
}

std::vector<int32_t> Writer::nhwc(int graph_tensor) const {
  const auto& s = graph_shape(graph_tensor);
  if (s.size() == 3) return {1, int32_t(s[1]), int32_t(s[2]), int32_t(s[0])};
  if (s.size() == 1) return {1, int32_t(s[0])};
  throw Error("tflite: tensor '" + g_.tensors.at(size_t(graph_tensor)).name + "' is neither {C, H, W} nor {F}");
}

// A buffer holding `values` little-endian (the TFLite convention), 16-byte aligned as the schema asks.
template <class T> uint32_t Writer::buffer(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  for (size_t i = 0; i < values.size(); ++i) {
    T v = flatbuffers::EndianScalar(values[i]);
    std::memcpy(bytes.data() + i * sizeof(T), &v, sizeof(T));
  }
  buffers_.push_back(tfl::CreateBufferDirect(fb_, &bytes));
  return uint32_t(buffers_.size() - 1);
}

int Writer::tensor(const std::string& name, std::vector<int32_t> shape, tfl::TensorType type, uint32_t buf, Quant q) {
  Offset<tfl::QuantizationParameters> qp = 0;
  if (!q.empty())
    qp = tfl::CreateQuantizationParametersDirect(fb_, nullptr, nullptr, &q.scale, &q.zero_point,
                                                 tfl::QuantizationDetails_NONE, 0, q.dim);
  tensors_.push_back(tfl::CreateTensorDirect(fb_, &shape, type, buf, name.c_str(), qp));
  quant_.push_back(std::move(q));
  return int(tensors_.size()) - 1;
}

// A computed tensor: float32, or int8 with the given parameters.
int Writer::activation(const std::string& name, std::vector<int32_t> shape, Quant q) {
  if (!int8()) return tensor(name, std::move(shape), tfl::TensorType_FLOAT32, 0, Quant{});
  return tensor(name, std::move(shape), tfl::TensorType_INT8, 0, std::move(q));
}

// The TFLite tensor of a graph tensor, computed by the operation being written.
int Writer::output(int graph_tensor, Quant q) {
  const std::string& name = g_.tensors.at(size_t(graph_tensor)).name;
  return ids_.at(size_t(graph_tensor)) = activation(name, nhwc(graph_tensor), std::move(q));
}

// Constant weights: float32, or int8 symmetric per index of `axis` (per tensor when axis < 0).
int Writer::weights(const std::string& name, const std::vector<float>& w, std::vector<int32_t> shape, int axis) {
  if (!int8()) return tensor(name, std::move(shape), tfl::TensorType_FLOAT32, buffer(w), Quant{});
  auto [q, params] = symmetric(w, shape, axis);
  return tensor(name, std::move(shape), tfl::TensorType_INT8, buffer(q), std::move(params));
}

// A bias: float32, or int32 with scale input scale x weight scale, per output channel where the
// weights are (convolutions), per tensor where they are (fully connected).
int Writer::bias(const std::string& name, const std::vector<float>& b, int input, int weight) {
  const std::vector<int32_t> shape{int32_t(b.size())};
  if (!int8()) return tensor(name, shape, tfl::TensorType_FLOAT32, buffer(b), Quant{});
  const Quant& wq = quant_.at(size_t(weight));
  const double in_scale = quant_.at(size_t(input)).scale.at(0);
  Quant q;
  for (float ws : wq.scale) {
    q.scale.push_back(float(in_scale * ws));
    q.zero_point.push_back(0);
  }
  std::vector<int32_t> values(b.size());
  for (size_t o = 0; o < b.size(); ++o) {
    const double v = std::nearbyint(double(b[o]) / double(q.scale.at(q.scale.size() == 1 ? 0 : o)));
    values[o] = int32_t(std::clamp<double>(v, INT32_MIN, INT32_MAX));
  }
  return tensor(name, shape, tfl::TensorType_INT32, buffer(values), std::move(q));
}

// An int32 constant (PAD's paddings, RESHAPE's shape); int8 models give it a trivial
// quantisation table, as they give every tensor one.
int Writer::int32_constant(const std::string& name, const std::vector<int32_t>& values, std::vector<int32_t> shape) {
  return tensor(name, std::move(shape), tfl::TensorType_INT32, buffer(values), int8() ? Quant{{1.f}, {0}, 0} : Quant{});
}

void Writer::op(tfl::BuiltinOperator code, int version, std::vector<int32_t> in, std::vector<int32_t> out,
                tfl::BuiltinOptions type, Offset<void> options) {
  const auto key = std::make_pair(code, version);
  auto it = std::find(codes_.begin(), codes_.end(), key);
  if (it == codes_.end()) it = codes_.insert(codes_.end(), key);
  const auto index = uint32_t(it - codes_.begin());
  operators_.push_back(tfl::CreateOperatorDirect(fb_, index, &in, &out, type, options));
}

// MUL's int8 version: 3 when input1 x input2 / output scale >= 1 (a multiplier above one), else 2.
int Writer::mul_version(int a, int b, int out) const {
  if (!int8()) return 1;
  auto scale = [&](int t) { return double(quant_.at(size_t(t)).scale.at(0)); };
  return scale(a) * scale(b) / scale(out) >= 1.0 ? 3 : 2;
}

void Writer::node(const GraphNode& n) {
  switch (n.op) {
    case GraphOp::conv: return conv(n);
    case GraphOp::linear: return linear(n);
    case GraphOp::add: return add(n);
    case GraphOp::mul: return mul(n);
    case GraphOp::act: return act(n);
    case GraphOp::avg_pool: return avg_pool(n);
    case GraphOp::global_avg_pool: return global_avg_pool(n);
  }
}

// CONV_2D (weights OHWI, quantised per output channel on dim 0) or, when every input channel is
// its own group, DEPTHWISE_CONV_2D (weights [1, kH, kW, O], per channel on dim 3).
void Writer::conv(const GraphNode& n) {
  const auto& in = graph_shape(n.inputs.at(0));
  const auto& ws = n.weight_shape;
  if (ws.size() != 4 || n.weight.size() != size_t(ws[0] * ws[1] * ws[2] * ws[3]) || n.bias.size() != size_t(ws[0]) ||
      n.groups < 1 || ws[1] * n.groups != in.at(0))
    throw Error("tflite: convolution '" + n.name + "' has weights that do not match its shape");
  const bool depthwise = n.groups > 1 && n.groups == in.at(0);
  if (n.groups != 1 && !depthwise)
    throw Error("tflite: grouped convolution '" + n.name + "' (" + std::to_string(n.groups) +
                " groups) is neither plain nor depthwise");
  const int64_t O = ws[0], I = ws[1], kh = ws[2], kw = ws[3];
  std::vector<float> w(n.weight.size());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x) {
          const float v = n.weight[size_t(((o * I + i) * kh + y) * kw + x)];
          // depthwise: I == 1, the output channel is the last axis
          w[size_t(depthwise ? (y * kw + x) * O + o : ((o * kh + y) * kw + x) * I + i)] = v;
        }
  const auto [o0, o3] = depthwise ? std::pair<int64_t, int64_t>{1, O} : std::pair<int64_t, int64_t>{O, I};
  const std::vector<int32_t> wshape{int32_t(o0), int32_t(kh), int32_t(kw), int32_t(o3)};
  const int x = pad(n, id(n.inputs[0]));
  const bool valid = n.pad == 0 || x != id(n.inputs[0]);
  const int wt = weights(n.name + ".weight", w, wshape, depthwise ? 3 : 0);
  const int bt = bias(n.name + ".bias", n.bias, x, wt);
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  const auto padding = valid ? tfl::Padding_VALID : tfl::Padding_SAME;
  const int s = int(n.stride);
  if (depthwise) {
    auto o = tfl::CreateDepthwiseConv2DOptions(fb_, padding, s, s, int32_t(O / in[0]), fused(n));
    op(tfl::BuiltinOperator_DEPTHWISE_CONV_2D, int8() ? 3 : 1, {x, wt, bt}, {y},
       tfl::BuiltinOptions_DepthwiseConv2DOptions, o.Union());
  } else {
    auto o = tfl::CreateConv2DOptions(fb_, padding, s, s, fused(n));
    op(tfl::BuiltinOperator_CONV_2D, int8() ? 3 : 1, {x, wt, bt}, {y}, tfl::BuiltinOptions_Conv2DOptions, o.Union());
  }
}

// `x` itself when TFLite's SAME (or VALID, without padding) reproduces the convolution's padding,
// else `x` padded with zeros by `pad` on every side by a PAD operation (then the convolution is VALID).
int Writer::pad(const GraphNode& n, int x) {
  const auto& in = graph_shape(n.inputs.at(0));
  if (n.pad == 0 || same_is_symmetric(in, n)) return x;
  const auto p = int32_t(n.pad);
  const int paddings = int32_constant(n.name + ".paddings", {0, 0, p, p, p, p, 0, 0}, {4, 2});
  const int y = activation(n.name + ".pad", {1, int32_t(in[1]) + 2 * p, int32_t(in[2]) + 2 * p, int32_t(in[0])},
                           quant_.at(size_t(x)));
  op(tfl::BuiltinOperator_PAD, int8() ? 2 : 1, {x, paddings}, {y}, tfl::BuiltinOptions_PadOptions,
     tfl::CreatePadOptions(fb_).Union());
  return y;
}

// FULLY_CONNECTED: weights [out, in] as PyTorch's, int8 per tensor.
void Writer::linear(const GraphNode& n) {
  const auto& ws = n.weight_shape;
  if (graph_shape(n.inputs.at(0)).size() != 1 || ws.size() != 2 || n.weight.size() != size_t(ws[0] * ws[1]) ||
      n.bias.size() != size_t(ws[0]))
    throw Error("tflite: fully-connected '" + n.name + "' must read a vector, with weights matching its shape");
  const int x = id(n.inputs[0]);
  const int wt = weights(n.name + ".weight", n.weight, {int32_t(ws[0]), int32_t(ws[1])}, -1);
  const int bt = bias(n.name + ".bias", n.bias, x, wt);
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  auto o = tfl::CreateFullyConnectedOptions(fb_, fused(n));
  op(tfl::BuiltinOperator_FULLY_CONNECTED, int8() ? 4 : 1, {x, wt, bt}, {y}, tfl::BuiltinOptions_FullyConnectedOptions,
     o.Union());
}

void Writer::add(const GraphNode& n) {
  const int a = id(n.inputs.at(0)), b = id(n.inputs.at(1));
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  op(tfl::BuiltinOperator_ADD, int8() ? 2 : 1, {a, b}, {y}, tfl::BuiltinOptions_AddOptions,
     tfl::CreateAddOptions(fb_, fused(n)).Union());
}

// MUL by a constant of shape [1, ..., 1] (broadcast); int8: the scalar at scale |scalar| / 127.
void Writer::mul(const GraphNode& n) {
  const int x = id(n.inputs.at(0));
  std::vector<int32_t> ones(nhwc(n.output).size(), 1);
  int c;
  if (!int8()) {
    c = tensor(n.name + ".scalar", ones, tfl::TensorType_FLOAT32, buffer(std::vector<float>{n.scalar}), Quant{});
  } else {
    const float s = n.scalar == 0 ? 1.f : std::fabs(n.scalar) / 127.f;
    const int8_t q = n.scalar == 0 ? 0 : (n.scalar > 0 ? 127 : -127);
    c = tensor(n.name + ".scalar", ones, tfl::TensorType_INT8, buffer(std::vector<int8_t>{q}), Quant{{s}, {0}, 0});
  }
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  op(tfl::BuiltinOperator_MUL, mul_version(x, c, y), {x, c}, {y}, tfl::BuiltinOptions_MulOptions,
     tfl::CreateMulOptions(fb_, fused(n)).Union());
}

// RELU, RELU6, HARD_SWISH (all three parsed by Arm NN 20.08); silu as LOGISTIC then MUL with its
// input (TFLite has no silu operator).
void Writer::act(const GraphNode& n) {
  const int x = id(n.inputs.at(0));
  if (n.act == "silu") {
    const int sig = activation(n.name + ".sigmoid", nhwc(n.output), Quant{{1.f / 256}, {-128}, 0});
    op(tfl::BuiltinOperator_LOGISTIC, int8() ? 2 : 1, {x}, {sig});
    const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
    op(tfl::BuiltinOperator_MUL, mul_version(x, sig, y), {x, sig}, {y}, tfl::BuiltinOptions_MulOptions,
       tfl::CreateMulOptions(fb_).Union());
    return;
  }
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  if (n.act == "relu")
    op(tfl::BuiltinOperator_RELU, int8() ? 2 : 1, {x}, {y});
  else if (n.act == "relu6")
    op(tfl::BuiltinOperator_RELU6, int8() ? 2 : 1, {x}, {y});
  else if (n.act == "hswish")
    op(tfl::BuiltinOperator_HARD_SWISH, 1, {x}, {y}, tfl::BuiltinOptions_HardSwishOptions,
       tfl::CreateHardSwishOptions(fb_).Union());
  else
    throw Error("tflite: unknown activation '" + n.act + "' at '" + n.name + "'");
}

// AVERAGE_POOL_2D; TFLite never counts padding in the average, as the graph asks. The output
// keeps the input's quantisation.
void Writer::avg_pool(const GraphNode& n) {
  const auto& in = graph_shape(n.inputs.at(0));
  const bool same = n.pad > 0;
  if (same && !same_is_symmetric(in, n))
    throw Error("tflite: average pooling '" + n.name + "' has padding that TFLite's SAME does not reproduce");
  const int x = id(n.inputs[0]);
  const int y = output(n.output, quant_.at(size_t(x)));
  const int k = int(n.kernel), s = int(n.stride);
  auto o = tfl::CreatePool2DOptions(fb_, same ? tfl::Padding_SAME : tfl::Padding_VALID, s, s, k, k);
  op(tfl::BuiltinOperator_AVERAGE_POOL_2D, int8() ? 2 : 1, {x}, {y}, tfl::BuiltinOptions_Pool2DOptions, o.Union());
}

// MEAN over H and W to [1, C]. Unlike AVERAGE_POOL_2D (whose int8 output must keep its input's
// scale), MEAN requantises to its own calibrated range: the mean of a feature map is far
// smaller than the map's maximum, and at the map's scale it would keep only a few levels.
void Writer::global_avg_pool(const GraphNode& n) {
  const auto& in = graph_shape(n.inputs.at(0));
  if (in.size() != 3) throw Error("tflite: global pooling '" + n.name + "' must read a {C, H, W} map");
  const int x = id(n.inputs[0]);
  const int axes = int32_constant(n.name + ".axes", {1, 2}, {2});
  const int y = output(n.output, int8() ? range_quant(n.output) : Quant{});
  op(tfl::BuiltinOperator_MEAN, int8() ? 2 : 1, {x, axes}, {y}, tfl::BuiltinOptions_ReducerOptions,
     tfl::CreateReducerOptions(fb_, false).Union());
}

std::string Writer::write() {
  output(g_.input, int8() ? range_quant(g_.input) : Quant{});
  for (const auto& n : g_.nodes) node(n);
  const std::vector<int32_t> inputs{id(g_.input)}, outputs{id(g_.output)};
  auto subgraph = tfl::CreateSubGraphDirect(fb_, &tensors_, &inputs, &outputs, &operators_, "main");
  std::vector<Offset<tfl::OperatorCode>> codes;
  for (const auto& [code, version] : codes_) {
    // the byte field holds codes below 127; later ones read 127 there (PLACEHOLDER_FOR_GREATER_OP_CODES)
    codes.push_back(tfl::CreateOperatorCode(fb_, int8_t(std::min<int32_t>(code, 127)), 0, version, code));
  }
  const std::vector<Offset<tfl::SubGraph>> subgraphs{subgraph};
  auto model = tfl::CreateModelDirect(fb_, 3, &codes, &subgraphs, opt_.description.c_str(), &buffers_);
  tfl::FinishModelBuffer(fb_, model);
  return std::string(reinterpret_cast<const char*>(fb_.GetBufferPointer()), fb_.GetSize());
}

void check_ranges(const Graph& g, const TfliteOptions& opt) {
  if (!opt.int8) return;
  if (!opt.ranges || opt.ranges->size() != g.tensors.size())
    throw UsageError("int8 TFLite export needs the calibrated range of every tensor (" +
                     std::to_string(g.tensors.size()) + "), got " +
                     (opt.ranges ? std::to_string(opt.ranges->size()) : std::string("none")));
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const auto& r = (*opt.ranges)[t];
    if (!std::isfinite(r.min) || !std::isfinite(r.max) || r.min > r.max)
      throw UsageError("int8 TFLite export: the calibrated range of tensor '" + g.tensors[t].name +
                       "' is not a finite interval");
  }
}

} // namespace

std::string write_tflite(const Graph& g, const TfliteOptions& opt) {
  check_ranges(g, opt);
  return Writer(g, opt).write();
}

bool verify_tflite(const std::string& bytes) {
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return tfl::VerifyModelBuffer(v);
}

} // namespace nas::model
