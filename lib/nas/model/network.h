// network: a genome of either family as a torch::nn module, built to the same conventions as the
// analytic cost model (space/cost.h), with an observer that sees every layer during forward -- what the
// MACs check, and later the proxies, need, since C++ modules have no forward hooks
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

#include "nas/space/cost.h"
#include "nas/space/genome.h"

namespace nas::model {

class GraphBuilder;   // lower.h

// One layer seen during forward: conv and linear layers (with their MACs for one sample) and
// activations. `output` may be modified by the observer (e.g. retain_grad) but not replaced.
struct LayerEvent {
  const std::string& name;    // as in the cost model: "stage0.block1.dw.conv", "head.classifier"
  const char* kind;           // conv | linear | act | features (the map before global pooling)
  const torch::Tensor& input;
  const torch::Tensor& output;
  int64_t macs;               // per sample (0 for activations)
};
using LayerObserver = std::function<void(const LayerEvent&)>;

// Conv (no bias) followed by batch norm, or a plain conv when bn is false.
class ConvBnImpl : public torch::nn::Module {
public:
  ConvBnImpl(std::string name, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups = 1,
             bool bn = true);
  torch::Tensor forward(const torch::Tensor& x, const LayerObserver* obs);
  // forward, then the activation `act` ("" for none) on its fresh result. With `fused` set, in
  // training on the CPU, batch norm and activation run as one step (bn_act.h), and with the
  // convolution too where its input has few channels and needs no gradient (thin_conv.h),
  // unless an observer watches.
  torch::Tensor forward_act(const torch::Tensor& x, const std::string& act, const std::string& act_name,
                            const LayerObserver* obs);
  bool fused = false;          // NetworkImpl::set_fused_batch_norm
  // Appends the folded convolution reading graph tensor `in`; returns its output tensor.
  int lower(GraphBuilder& b, int in);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
private:
  std::string conv_name_;
  int64_t macs_per_pixel_, stride_, groups_;
};
TORCH_MODULE(ConvBn);

// t (4-d) in channels-last memory format, also when it has one channel.
torch::Tensor to_channels_last(const torch::Tensor& t);

// The network of a genome: input N x C x H x W (the context's shape), output N x classes logits.
class NetworkImpl : public torch::nn::Module {
public:
  NetworkImpl(const space::Genome& g, const space::CostContext& ctx);
  torch::Tensor forward(const torch::Tensor& x);
  // Called for every layer during forward while set; nullptr turns it off.
  void set_observer(LayerObserver obs) { observer_ = std::move(obs); }
  // Weights and activations in channels-last memory format (the faster layout for cuDNN and
  // oneDNN); the input should be channels-last too.
  void to_channels_last();
  // Batch norm and the activation after it as one fused step in training on the CPU (bn_act.h,
  // and thin_conv.h for a stem on few channels): for the trainers. Off by default: the fused
  // backward cannot be differentiated again, as proxies such as GraSP need.
  void set_fused_batch_norm(bool on);
  const space::Genome& genome() const { return genome_; }
  // Without residual additions (the shortcut of residual and inverted-residual blocks and of
  // NB201's reduction block), as Zen-NAS scores a network; NB201's skip_connect edges stay.
  void set_plain(bool plain) { plain_ = plain; }
  // Number of trainable parameter elements.
  int64_t parameter_count();
  // Appends the inference graph of the network (eval semantics) to b: see lower.h.
  void lower(GraphBuilder& b);

  // A stage block, an NB201 cell or reduction block (network.cpp).
  class Block : public torch::nn::Module {
  public:
    virtual torch::Tensor run(const torch::Tensor& x, const LayerObserver* obs) = 0;
    // The same computation as graph operations on tensor `in`; returns the output tensor.
    virtual int lower(GraphBuilder& b, int in) = 0;
  };

private:
  space::Genome genome_;
  space::CostContext ctx_;
  LayerObserver observer_;
  bool plain_ = false;
  bool fused_ = false;
  ConvBn stem_{nullptr};
  std::string stem_act_;                       // "" for none (nb201)
  std::vector<std::shared_ptr<Block>> blocks_;
  torch::nn::BatchNorm2d lastact_{nullptr};   // nb201 only
  torch::nn::Linear hidden_{nullptr}, classifier_{nullptr};
  std::string head_act_;
};
TORCH_MODULE(Network);

// Applies a named activation (relu, relu6, hswish, silu).
torch::Tensor activate(const torch::Tensor& x, const std::string& act);

} // namespace nas::model
