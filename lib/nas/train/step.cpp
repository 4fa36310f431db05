// step: see step.h
#include "nas/train/step.h"

#include <ATen/autocast_mode.h>

namespace nas::train {

LossFn cross_entropy_loss(double label_smoothing) {
  const auto opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  return [opts](const torch::Tensor& logits, const LossBatch& b) {
    return torch::nn::functional::cross_entropy(logits, b.labels, opts);
  };
}

AutocastScope::AutocastScope(bool on, torch::ScalarType dtype) : on_(on) {
  if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(true);
#endif
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
  at::autocast::set_enabled(false);
#endif
}

bool autocasts(config::Precision precision, const torch::Device& device) {
  return device.is_cuda() && precision != config::Precision::fp32;
}

torch::ScalarType autocast_dtype(config::Precision precision) {
  return precision == config::Precision::fp16 ? torch::kHalf : torch::kBFloat16;
}

TrainStep::TrainStep(model::Network& net, torch::optim::Optimizer& opt, config::Precision precision,
                     const torch::Device& device, double grad_clip, LossFn loss)
    : net_(net), opt_(opt), params_(net->parameters()), autocast_(autocasts(precision, device)),
      scaled_(autocast_ && precision == config::Precision::fp16), dtype_(autocast_dtype(precision)),
      grad_clip_(grad_clip), loss_(std::move(loss)) {
  loss_sum_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  correct_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

void TrainStep::reset_sums() {
  loss_sum_.zero_();
  correct_.zero_();
}

// Backward of the scaled loss, then unscale; false (and the scale halves) when the scaled
// gradients overflowed.
bool TrainStep::scaled_backward(const torch::Tensor& loss) {
  (loss * scale).backward();
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad().mul_(1.0 / scale);
  if (after_backward) after_backward();
  torch::Tensor finite = torch::ones({}, torch::TensorOptions().dtype(torch::kBool).device(loss.device()));
  for (auto& p : params_)
    if (p.grad().defined()) finite = finite.logical_and(torch::isfinite(p.grad()).all());
  if (!finite.item<bool>()) {
    scale /= 2;
    good_steps = 0;
    return false;
  }
  if (++good_steps % 2000 == 0) scale *= 2;
  return true;
}

bool TrainStep::run(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& indices, int64_t epoch) {
  // Gradients dropped, not zeroed: backward then hands each parameter its gradient as computed
  // instead of adding it to zeros (two fewer small ops a parameter a step; same values).
  for (auto& p : params_) p.mutable_grad().reset();
  torch::Tensor logits;
  {
    AutocastScope ac(autocast_, dtype_);
    logits = net_->forward(x);
  }
  logits = logits.to(torch::kFloat32);
  torch::Tensor loss = loss_(logits, LossBatch{x, y, indices, epoch});
  bool take = true;
  if (scaled_) {
    take = scaled_backward(loss);
  } else {
    loss.backward();
    if (after_backward) after_backward();
  }
  if (take) {
    if (grad_clip_ > 0) torch::nn::utils::clip_grad_norm_(params_, grad_clip_);
    opt_.step();
  }
  torch::NoGradGuard no_grad;
  loss_sum_ += loss.detach().to(torch::kFloat64) * double(x.size(0));
  correct_ += logits.argmax(1).eq(y).sum();
  return take;
}

} // namespace nas::train
