// cost: parameters, MACs, peak activation memory and weight bytes of a genome, layer by layer.
//
// Conventions (documented in nas-study.5 and checked against built networks by the model tests):
// - params: conv weights (no bias: every conv is followed by batch norm), BN gamma and beta,
//   linear weights and biases. BN running statistics are buffers, not parameters.
// - MACs: convolutions (C_out x H_out x W_out x C_in/groups x k x k) and linear layers
//   (in x out) for one sample; BN, activations, pooling and additions are not counted.
// - peak activation bytes: executing layer by layer with a batch of one, the largest sum of
//   tensors alive at once (a layer's input and output, plus tensors held for a pending
//   residual addition or a cell's later nodes); BN and activations run in place and are fused.
// - weight bytes: params x bytes per element of the deployment precision.
#include "nas/space/cost.h"
#include "nas/core/error.h"

#include <algorithm>
#include <limits>

namespace nas::space {
namespace {

// MACs and their sums saturate at INT64_MAX instead of overflowing (undefined): the largest
// inputs and widths a configuration allows reach past 2^63 MACs, and such a network must still
// compare as larger than any constraint (at most 10^15).
constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();
int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? kSaturated : r;
}
int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? kSaturated : r;
}

struct Shape {
  int64_t c, h, w;
  int64_t elems() const { return c * h * w; }
};

class Counter {
public:
  explicit Counter(Cost& cost) : cost_(cost) {}

  // conv without bias; returns the output shape.
  Shape conv(const std::string& name, Shape in, int64_t out_c, int64_t k, int64_t stride, int64_t groups = 1) {
    Shape out{out_c, conv_out(in.h, k, stride), conv_out(in.w, k, stride)};
    cost_.layers.push_back({name, "conv", out_c * (in.c / groups) * k * k,
                            sat_mul(out.elems(), (in.c / groups) * k * k), {out.c, out.h, out.w}});
    return out;
  }
  // conv (no bias: the batch norm has the shift) + BN.
  Shape conv_bn(const std::string& name, Shape in, int64_t out_c, int64_t k, int64_t stride, int64_t groups = 1) {
    Shape out = conv(name + ".conv", in, out_c, k, stride, groups);
    bn(name + ".bn", out);
    return out;
  }
  void bn(const std::string& name, Shape s) {
    cost_.layers.push_back({name, "bn", 2 * s.c, 0, {s.c, s.h, s.w}});
  }
  void linear(const std::string& name, int64_t in, int64_t out) {
    cost_.layers.push_back({name, "linear", in * out + out, in * out, {out}});
  }
  void live(int64_t elems) { peak_ = std::max(peak_, elems); }
  int64_t peak() const { return peak_; }

private:
  Cost& cost_;
  int64_t peak_ = 0;
};

Shape cnn_block(Counter& n, const std::string& name, const space::CnnStage& st, Shape in, int64_t stride) {
  const int64_t k = st.kernel, out_c = st.width;
  if (st.block == "conv") {
    Shape out = n.conv_bn(name, in, out_c, k, stride);
    n.live(in.elems() + out.elems());
    return out;
  }
  if (st.block == "dwsep") {
    Shape mid = n.conv_bn(name + ".dw", in, in.c, k, stride, in.c);
    n.live(in.elems() + mid.elems());
    Shape out = n.conv_bn(name + ".pw", mid, out_c, 1, 1);
    n.live(mid.elems() + out.elems());
    return out;
  }
  if (st.block == "mbconv") {
    bool residual = stride == 1 && in.c == out_c;
    int64_t held = residual ? in.elems() : 0;
    Shape hidden = in;
    if (st.expansion > 1) {
      hidden = n.conv_bn(name + ".expand", in, in.c * st.expansion, 1, 1);
      n.live(in.elems() + hidden.elems());
    }
    Shape dw = n.conv_bn(name + ".dw", hidden, hidden.c, k, stride, hidden.c);
    n.live((hidden.c == in.c && st.expansion == 1 ? 0 : held) + hidden.elems() + dw.elems());
    Shape out = n.conv_bn(name + ".project", dw, out_c, 1, 1);
    n.live(held + dw.elems() + out.elems());
    return out;
  }
  // residual: ResNet basic block
  Shape a = n.conv_bn(name + ".conv1", in, out_c, k, stride);
  n.live(in.elems() + a.elems());
  Shape b = n.conv_bn(name + ".conv2", a, out_c, k, 1);
  n.live(in.elems() + a.elems() + b.elems());
  if (stride != 1 || in.c != out_c) {
    Shape sc = n.conv_bn(name + ".shortcut", in, out_c, 1, stride);
    n.live(in.elems() + b.elems() + sc.elems());
  }
  return b;
}

Shape head(Counter& n, Shape in, int64_t hidden, int64_t classes) {
  n.live(in.elems() + in.c);  // global average pooling
  int64_t features = in.c;
  if (hidden > 0) {
    n.linear("head.hidden", features, hidden);
    n.live(features + hidden);
    features = hidden;
  }
  n.linear("head.classifier", features, classes);
  n.live(features + classes);
  return {classes, 1, 1};
}

void cost_cnn(Counter& n, const space::CnnGenome& g, const CostContext& ctx) {
  Shape x{ctx.input[0], ctx.input[1], ctx.input[2]};
  Shape s = n.conv_bn("stem", x, g.stem_width, g.stem_kernel, g.stem_stride);
  n.live(x.elems() + s.elems());
  for (size_t i = 0; i < g.stages.size(); ++i) {
    const auto& st = g.stages[i];
    for (int64_t d = 0; d < st.depth; ++d)
      s = cnn_block(n, "stage" + std::to_string(i) + ".block" + std::to_string(d), st, s, d == 0 ? st.stride : 1);
  }
  head(n, s, g.head_width, ctx.classes);
}

bool op_has_output(const std::string& op) { return op == "nor_conv_1x1" || op == "nor_conv_3x3" || op == "avg_pool_3x3"; }

void cost_nb201(Counter& n, const space::Nb201Genome& g, const CostContext& ctx) {
  Shape x{ctx.input[0], ctx.input[1], ctx.input[2]};
  if (x.h < 4 || x.w < 4) throw UsageError("nb201 needs inputs of at least 4x4, got " + std::to_string(x.h) + "x" + std::to_string(x.w));
  int64_t C = ctx.nb201_channels;
  Shape s = n.conv_bn("stem", x, C, 3, 1);
  n.live(x.elems() + s.elems());
  static const int src[6] = {0, 0, 1, 0, 1, 2};
  static const int dst[6] = {1, 2, 2, 3, 3, 3};
  for (int stage = 0; stage < 3; ++stage) {
    std::string sn = "stage" + std::to_string(stage);
    if (stage > 0) {
      // ResNet basic block with stride 2 (conv_a, conv_b, downsample = avgpool 2x2 + conv 1x1).
      Shape in = s;
      Shape a = n.conv_bn(sn + ".reduce.conv_a", in, in.c * 2, 3, 2);
      n.live(in.elems() + a.elems());
      Shape b = n.conv_bn(sn + ".reduce.conv_b", a, a.c, 3, 1);
      n.live(in.elems() + a.elems() + b.elems());
      Shape p{in.c, in.h / 2, in.w / 2};
      n.live(in.elems() + b.elems() + p.elems());
      // downsample: a plain 1x1 conv after the pooling, without batch norm in the reference
      Shape d = n.conv(sn + ".reduce.downsample.conv", p, b.c, 1, 1);
      n.live(b.elems() + p.elems() + d.elems());
      s = b;
    }
    for (int64_t cell = 0; cell < ctx.nb201_cells; ++cell) {
      std::string cn = sn + ".cell" + std::to_string(cell);
      int64_t t = s.elems();
      for (int e = 0; e < 6; ++e) {
        const std::string& op = g.ops[size_t(e)];
        std::string en = cn + ".edge" + std::to_string(src[e]) + std::to_string(dst[e]);
        if (op == "nor_conv_3x3") n.conv_bn(en, s, s.c, 3, 1);
        else if (op == "nor_conv_1x1") n.conv_bn(en, s, s.c, 1, 1);
      }
      // nodes 0..node-1 alive, the node's accumulator, and one temporary for a computed op
      for (int node = 1; node <= 3; ++node) {
        bool tmp = false;
        for (int e = 0; e < 6; ++e)
          if (dst[e] == node && op_has_output(g.ops[size_t(e)])) tmp = true;
        n.live(t * (node + 1 + (tmp ? 1 : 0)));
      }
    }
  }
  n.bn("lastact.bn", s);
  head(n, s, 0, ctx.classes);
}

} // namespace

Cost estimate_cost(const space::Genome& g, const CostContext& ctx) {
  if (ctx.input.size() != 3) throw UsageError("the cost model needs an input shape [C, H, W]");
  Cost cost;
  Counter n(cost);
  if (g.family == "nb201") cost_nb201(n, g.nb201, ctx);
  else cost_cnn(n, g.cnn, ctx);
  for (const auto& l : cost.layers) {
    cost.params = sat_add(cost.params, l.params);
    cost.macs = sat_add(cost.macs, l.macs);
  }
  cost.peak_activation_bytes = sat_mul(n.peak(), ctx.bytes_per_element);
  cost.weight_bytes = sat_mul(cost.params, ctx.bytes_per_element);
  return cost;
}

} // namespace nas::space
