// network: genome -> torch::nn module. Layer names and conventions mirror cost.cpp exactly
// (conv without bias before every batch norm, "same" padding, where residual additions
// happen), so that parameters and MACs of the built network equal the analytic ones.
#include "nas/model/network.h"
#include "nas/core/error.h"
#include "nas/model/bn_act.h"
#include "nas/model/lower.h"
#include "nas/model/thin_conv.h"

#include <optional>

namespace nas::model {

torch::Tensor activate(const torch::Tensor& x, const std::string& act) {
  if (act == "relu") return torch::relu(x);
  if (act == "relu6") return torch::clamp(x, 0, 6);
  if (act == "hswish") return torch::hardswish(x);
  if (act == "silu") return torch::silu(x);
  throw UsageError("unknown activation '" + act + "'");
}

static torch::Tensor act_observed(const torch::Tensor& x, const std::string& act, const std::string& name,
                                  const LayerObserver* obs) {
  torch::Tensor y = activate(x, act);
  if (obs && *obs) (*obs)(LayerEvent{name, "act", x, y, 0});
  return y;
}

// The activation of a fresh tensor that nothing else reads (the output of a convolution, a batch
// norm, a linear layer or a residual sum): ReLU and ReLU6 then overwrite it. That saves a tensor
// of the layer's size and a pass over memory each way; autograd is unaffected, as their backward
// reads the result, not the input. Other activations, and any layer an observer watches (the
// proxies read both sides), run out of place.
static torch::Tensor act_fresh(torch::Tensor x, const std::string& act, const std::string& name, const LayerObserver* obs) {
  if (!(obs && *obs)) {
    if (act == "relu") return x.relu_();
    if (act == "relu6") return torch::hardtanh_(x, 0, 6);
  }
  return act_observed(x, act, name, obs);
}

ConvBnImpl::ConvBnImpl(std::string name, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                       bool with_bn)
    : conv_name_(with_bn ? name + ".conv" : name), macs_per_pixel_(out * (in / groups) * kernel * kernel),
      stride_(stride), groups_(groups) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                       .stride(stride).padding(kernel / 2).groups(groups).bias(false)));
  if (with_bn) bn = register_module("bn", torch::nn::BatchNorm2d(out));
}

torch::Tensor ConvBnImpl::forward(const torch::Tensor& x, const LayerObserver* obs) { return forward_act(x, "", "", obs); }

// The fused step's activation for a named one, or nothing when it has none of its own.
static std::optional<BnAct> fusable(const std::string& act) {
  if (act.empty()) return BnAct::none;
  if (act == "relu") return BnAct::relu;
  if (act == "relu6") return BnAct::relu6;
  return std::nullopt;
}

// Batch norm and `act` on x: fused where bn_act covers them, else one after the other.
static torch::Tensor norm_act(const torch::Tensor& x, torch::nn::BatchNorm2d& bn, bool fused, const std::string& act,
                              const std::string& act_name, const LayerObserver* obs) {
  const std::optional<BnAct> kind = fusable(act);
  if (fused && kind && !(obs && *obs) && bn_act_applies(x, *bn)) return bn_act(x, *bn, *kind);
  torch::Tensor y = bn->forward(x);
  return act.empty() ? y : act_fresh(y, act, act_name, obs);
}

torch::Tensor ConvBnImpl::forward_act(const torch::Tensor& x, const std::string& act, const std::string& act_name,
                                      const LayerObserver* obs) {
  // A network's stem on its data: one fused step. thin_conv assumes what this module builds:
  // padding kernel / 2, no bias, no dilation.
  if (bn && fused && !(obs && *obs) && groups_ == 1) {
    const std::optional<BnAct> kind = fusable(act);
    if (kind && thin_conv_applies(x, conv->weight, stride_, *bn))
      return thin_conv_bn_act(x, conv->weight, stride_, *bn, *kind);
  }
  torch::Tensor y = conv->forward(x);
  if (obs && *obs) (*obs)(LayerEvent{conv_name_, "conv", x, y, macs_per_pixel_ * y.size(2) * y.size(3)});
  if (bn) return norm_act(y, bn, fused, act, act_name, obs);
  return act.empty() ? y : act_fresh(y, act, act_name, obs);
}

int ConvBnImpl::lower(GraphBuilder& b, int in) { return b.conv(conv_name_, in, conv->weight, bn, stride_, groups_); }

namespace {

using Block = NetworkImpl::Block;

// One block of a `cnn` stage.
class CnnBlock : public Block {
public:
  CnnBlock(const std::string& name, const space::CnnStage& st, int64_t in, int64_t stride, const bool* plain)
      : name_(name), st_(st), stride_(stride), in_(in), plain_(plain) {
    const int64_t k = st.kernel, out = st.width;
    if (st.block == "conv") {
      a_ = add(ConvBn(name, in, out, k, stride), "a");
    } else if (st.block == "dwsep") {
      a_ = add(ConvBn(name + ".dw", in, in, k, stride, in), "dw");
      b_ = add(ConvBn(name + ".pw", in, out, 1, 1), "pw");
    } else if (st.block == "mbconv") {
      int64_t hidden = in * st.expansion;
      if (st.expansion > 1) e_ = add(ConvBn(name + ".expand", in, hidden, 1, 1), "expand");
      a_ = add(ConvBn(name + ".dw", hidden, hidden, k, stride, hidden), "dw");
      b_ = add(ConvBn(name + ".project", hidden, out, 1, 1), "project");
      residual_ = stride == 1 && in == out;
    } else {  // residual
      a_ = add(ConvBn(name + ".conv1", in, out, k, stride), "conv1");
      b_ = add(ConvBn(name + ".conv2", out, out, k, 1), "conv2");
      if (stride != 1 || in != out) sc_ = add(ConvBn(name + ".shortcut", in, out, 1, stride), "shortcut");
      residual_ = true;
    }
  }

  torch::Tensor run(const torch::Tensor& x, const LayerObserver* obs) override {
    const std::string& act = st_.activation;
    if (st_.block == "conv") return a_->forward_act(x, act, name_ + ".act", obs);
    if (st_.block == "dwsep") {
      torch::Tensor y = a_->forward_act(x, act, name_ + ".dw.act", obs);
      return b_->forward_act(y, act, name_ + ".pw.act", obs);
    }
    if (st_.block == "mbconv") {
      torch::Tensor y = x;
      if (e_) y = e_->forward_act(y, act, name_ + ".expand.act", obs);
      y = a_->forward_act(y, act, name_ + ".dw.act", obs);
      y = b_->forward(y, obs);  // linear bottleneck: no activation
      return residual_ && !*plain_ ? y + x : y;
    }
    torch::Tensor y = a_->forward_act(x, act, name_ + ".conv1.act", obs);
    y = b_->forward(y, obs);
    if (!*plain_) y = y + (sc_ ? sc_->forward(x, obs) : x);
    return act_fresh(y, act, name_ + ".act", obs);
  }

  int lower(GraphBuilder& g, int x) override {
    const std::string& act = st_.activation;
    if (st_.block == "conv") return g.activate(name_ + ".act", a_->lower(g, x), act);
    if (st_.block == "dwsep") {
      int y = g.activate(name_ + ".dw.act", a_->lower(g, x), act);
      return g.activate(name_ + ".pw.act", b_->lower(g, y), act);
    }
    if (st_.block == "mbconv") {
      int y = x;
      if (e_) y = g.activate(name_ + ".expand.act", e_->lower(g, y), act);
      y = g.activate(name_ + ".dw.act", a_->lower(g, y), act);
      y = b_->lower(g, y);
      return residual_ && !*plain_ ? g.add(name_ + ".add", y, x) : y;
    }
    int y = g.activate(name_ + ".conv1.act", a_->lower(g, x), act);
    y = b_->lower(g, y);
    if (!*plain_) {
      int shortcut = sc_ ? sc_->lower(g, x) : x;
      y = g.add(name_ + ".add", y, shortcut);
    }
    return g.activate(name_ + ".act", y, act);
  }

private:
  ConvBn add(ConvBn m, const std::string& n) { return register_module(n, m); }
  std::string name_;
  space::CnnStage st_;
  int64_t stride_, in_;
  const bool* plain_;
  ConvBn a_{nullptr}, b_{nullptr}, e_{nullptr}, sc_{nullptr};
  bool residual_ = false;
};

// NAS-Bench-201 cell (InferCell): node i = sum over j < i of op_ji(node j).
class Nb201Cell : public Block {
public:
  Nb201Cell(const std::string& name, const space::Nb201Genome& g, int64_t c) : name_(name), ops_(g.ops) {
    static const int src[6] = {0, 0, 1, 0, 1, 2}, dst[6] = {1, 2, 2, 3, 3, 3};
    for (int e = 0; e < 6; ++e) {
      std::string en = name + ".edge" + std::to_string(src[e]) + std::to_string(dst[e]);
      names_[size_t(e)] = en;
      const std::string& op = ops_[size_t(e)];
      if (op == "nor_conv_3x3" || op == "nor_conv_1x1")
        convs_[size_t(e)] = register_module("edge" + std::to_string(e),
                                            ConvBn(en, c, c, op == "nor_conv_3x3" ? 3 : 1, 1));
    }
  }

  torch::Tensor run(const torch::Tensor& x, const LayerObserver* obs) override {
    static const int src[6] = {0, 0, 1, 0, 1, 2}, dst[6] = {1, 2, 2, 3, 3, 3};
    std::vector<torch::Tensor> nodes = {x};
    for (int node = 1; node <= 3; ++node) {
      torch::Tensor sum;
      for (int e = 0; e < 6; ++e) {
        if (dst[e] != node) continue;
        torch::Tensor y = edge(e, nodes[size_t(src[e])], obs);
        sum = sum.defined() ? sum + y : y;
      }
      nodes.push_back(sum);
    }
    return nodes.back();
  }

  int lower(GraphBuilder& g, int x) override {
    static const int src[6] = {0, 0, 1, 0, 1, 2}, dst[6] = {1, 2, 2, 3, 3, 3};
    std::vector<int> nodes = {x};
    for (int node = 1; node <= 3; ++node) {
      int sum = -1;
      for (int e = 0; e < 6; ++e) {
        if (dst[e] != node) continue;
        int y = lower_edge(g, e, nodes[size_t(src[e])]);
        sum = sum < 0 ? y : g.add(name_ + ".node" + std::to_string(node), sum, y);
      }
      nodes.push_back(sum);
    }
    return nodes.back();
  }

private:
  int lower_edge(GraphBuilder& g, int e, int x) {
    const std::string& op = ops_[size_t(e)];
    const std::string& en = names_[size_t(e)];
    if (op == "none") return g.mul(en + ".zero", x, 0.f);
    if (op == "skip_connect") return x;
    if (op == "avg_pool_3x3") return g.avg_pool(en + ".pool", x, 3, 1, 1);
    return convs_[size_t(e)]->lower(g, g.activate_shared(en + ".act", x, "relu"));
  }

  torch::Tensor edge(int e, const torch::Tensor& x, const LayerObserver* obs) {
    const std::string& op = ops_[size_t(e)];
    if (op == "none") return x.mul(0.0);
    if (op == "skip_connect") return x;
    if (op == "avg_pool_3x3") return torch::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, false);
    // ReLU -> conv -> BN, as the benchmark's ReLUConvBN
    return convs_[size_t(e)]->forward(act_observed(x, "relu", names_[size_t(e)] + ".act", obs), obs);
  }
  std::string name_;
  std::array<std::string, 6> ops_;
  std::array<std::string, 6> names_;
  std::array<ConvBn, 6> convs_ = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
};

// NAS-Bench-201 reduction: ResNet basic block with stride 2 and an avgpool + 1x1 conv shortcut.
class Nb201Reduction : public Block {
public:
  Nb201Reduction(const std::string& name, int64_t in, int64_t out, const bool* plain) : name_(name), plain_(plain) {
    a_ = register_module("conv_a", ConvBn(name + ".conv_a", in, out, 3, 2));
    b_ = register_module("conv_b", ConvBn(name + ".conv_b", out, out, 3, 1));
    down_ = register_module("downsample", ConvBn(name + ".downsample.conv", in, out, 1, 1, 1, false));
  }
  torch::Tensor run(const torch::Tensor& x, const LayerObserver* obs) override {
    torch::Tensor y = a_->forward(act_observed(x, "relu", name_ + ".conv_a.act", obs), obs);
    y = b_->forward(act_fresh(y, "relu", name_ + ".conv_b.act", obs), obs);
    return *plain_ ? y : y + down_->forward(torch::avg_pool2d(x, {2, 2}, {2, 2}), obs);
  }
  int lower(GraphBuilder& g, int x) override {
    int y = a_->lower(g, g.activate_shared(name_ + ".conv_a.act", x, "relu"));
    y = b_->lower(g, g.activate(name_ + ".conv_b.act", y, "relu"));
    if (*plain_) return y;
    int shortcut = down_->lower(g, g.avg_pool(name_ + ".downsample.pool", x, 2, 2, 0));
    return g.add(name_ + ".add", y, shortcut);
  }
private:
  std::string name_;
  const bool* plain_;
  ConvBn a_{nullptr}, b_{nullptr}, down_{nullptr};
};

} // namespace

NetworkImpl::NetworkImpl(const space::Genome& g, const space::CostContext& ctx) : genome_(g), ctx_(ctx) {
  if (ctx.input.size() != 3) throw UsageError("the network needs an input shape [C, H, W]");
  const int64_t in_c = ctx.input[0];
  auto add_block = [&](std::shared_ptr<Block> b) {
    register_module("block" + std::to_string(blocks_.size()), b);
    blocks_.push_back(std::move(b));
  };
  int64_t features = 0;
  if (g.family == "nb201") {
    int64_t c = ctx.nb201_channels;
    stem_ = register_module("stem", ConvBn("stem", in_c, c, 3, 1));
    for (int stage = 0; stage < 3; ++stage) {
      std::string sn = "stage" + std::to_string(stage);
      if (stage > 0) {
        add_block(std::make_shared<Nb201Reduction>(sn + ".reduce", c, c * 2, &plain_));
        c *= 2;
      }
      for (int64_t cell = 0; cell < ctx.nb201_cells; ++cell)
        add_block(std::make_shared<Nb201Cell>(sn + ".cell" + std::to_string(cell), g.nb201, c));
    }
    lastact_ = register_module("lastact", torch::nn::BatchNorm2d(c));
    features = c;
  } else {
    const auto& x = g.cnn;
    stem_ = register_module("stem", ConvBn("stem", in_c, x.stem_width, x.stem_kernel, x.stem_stride));
    stem_act_ = x.stem_activation;
    int64_t c = x.stem_width;
    for (size_t i = 0; i < x.stages.size(); ++i) {
      const auto& st = x.stages[i];
      for (int64_t d = 0; d < st.depth; ++d) {
        add_block(std::make_shared<CnnBlock>("stage" + std::to_string(i) + ".block" + std::to_string(d), st, c,
                                             d == 0 ? st.stride : 1, &plain_));
        c = st.width;
      }
    }
    features = c;
    if (x.head_width > 0) {
      hidden_ = register_module("hidden", torch::nn::Linear(features, x.head_width));
      head_act_ = x.stages.back().activation;
      features = x.head_width;
    }
  }
  classifier_ = register_module("classifier", torch::nn::Linear(features, ctx.classes));
}

// The mean over height and width as a sum times 1 / (H x W): the sum's backward is a broadcast
// view, which the last activation's backward reads in the features' own (channels-last) layout.
// adaptive_avg_pool2d and mean() instead materialise the gradient in NCHW order, and the
// backward of every layer before then mixes the two layouts: 1.3 ms of a 15 ms step of the 3-conv
// CNN on 2 CPU cores (bench/train-epoch).
static torch::Tensor global_avg_pool(const torch::Tensor& x) {
  return x.sum({2, 3}) * (1.0 / double(x.size(2) * x.size(3)));
}

torch::Tensor NetworkImpl::forward(const torch::Tensor& input) {
  const LayerObserver* obs = observer_ ? &observer_ : nullptr;
  torch::Tensor x = stem_->forward_act(input, stem_act_, "stem.act", obs);
  for (auto& b : blocks_) x = b->run(x, obs);
  if (lastact_) x = norm_act(x, lastact_, fused_, "relu", "lastact.act", obs);
  if (obs) (*obs)(LayerEvent{"features", "features", x, x, 0});
  x = global_avg_pool(x);
  auto linear = [&](torch::nn::Linear& l, const std::string& name, const torch::Tensor& in) {
    torch::Tensor y = l->forward(in);
    if (obs) (*obs)(LayerEvent{name, "linear", in, y, l->weight.size(0) * l->weight.size(1)});
    return y;
  };
  if (hidden_) x = act_fresh(linear(hidden_, "head.hidden", x), head_act_, "head.act", obs);
  return linear(classifier_, "head.classifier", x);
}

void NetworkImpl::lower(GraphBuilder& b) {
  int x = stem_->lower(b, b.input({ctx_.input.at(0), ctx_.input.at(1), ctx_.input.at(2)}));
  if (!stem_act_.empty()) x = b.activate("stem.act", x, stem_act_);
  for (auto& block : blocks_) x = block->lower(b, x);
  if (lastact_) x = b.activate("lastact.act", b.batch_norm("lastact", x, lastact_), "relu");
  x = b.global_avg_pool("pool", x);
  if (hidden_) x = b.activate("head.act", b.linear("head.hidden", x, hidden_), head_act_);
  b.set_output(b.linear("head.classifier", x, classifier_));
}

torch::Tensor to_channels_last(const torch::Tensor& t) {
  // Not contiguous(ChannelsLast): for one channel that returns an NCHW tensor unchanged (its
  // strides pass as channels-last), which the convolutions then treat as NCHW, and every later
  // layer converts. to() restrides it, as PyTorch's Module.to(memory_format=) does.
  return t.to(t.options(), /*non_blocking=*/false, /*copy=*/false, torch::MemoryFormat::ChannelsLast);
}

void NetworkImpl::set_fused_batch_norm(bool on) {
  fused_ = on;
  for (const auto& m : modules(false))
    if (auto cb = std::dynamic_pointer_cast<ConvBnImpl>(m)) cb->fused = on;
}

void NetworkImpl::to_channels_last() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() == 4) p.set_data(model::to_channels_last(p.data()));
}

int64_t NetworkImpl::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

} // namespace nas::model
