// step: one training step -- a batch in; forward under autocast, the loss (a hook:
// cross-entropy with label smoothing by default, a distillation loss next), backward with the
// fp16 loss scaler, clipping, the optimizer step; loss and correct predictions accumulated on
// the device without a synchronisation. A CUDA-graph version of the same step can stand beside
// this eager one behind the same interface.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "nas/config/study_config.h"
#include "nas/model/network.h"

namespace nas::train {

// What a loss sees of the batch besides the network's logits: the input as the network saw it
// (augmented, normalised: an online teacher runs on the same view), the labels, the samples'
// indices into the training split (cached soft targets are found by them) and the epoch
// (0-based: a distillation loss warms up over the first epochs).
struct LossBatch {
  const torch::Tensor& x;
  const torch::Tensor& labels;
  const torch::Tensor& indices;
  int64_t epoch;
};

// The loss of a batch from the network's float32 logits.
using LossFn = std::function<torch::Tensor(const torch::Tensor& logits, const LossBatch& batch)>;

// Cross-entropy with label smoothing: the default loss.
LossFn cross_entropy_loss(double label_smoothing);

// Mixed precision on CUDA: autocast to `dtype` while in scope, thread-local like LibTorch's own
// autocast state, so packed trainers do not affect each other. Off: nothing.
class AutocastScope {
public:
  AutocastScope(bool on, torch::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;
private:
  bool on_;
};

// Whether `precision` (resolved) autocasts on `device`, and to which type.
bool autocasts(config::Precision precision, const torch::Device& device);
torch::ScalarType autocast_dtype(config::Precision precision);

class TrainStep {
public:
  // The network and optimizer must outlive the step.
  TrainStep(model::Network& net, torch::optim::Optimizer& opt, config::Precision precision,
            const torch::Device& device, double grad_clip, LossFn loss);

  // One step on the batch (x, y; `indices` into the training split; in `epoch`): zero_grad, forward, loss,
  // backward, clip, optimizer step -- skipped when fp16 gradients overflowed (the scale then
  // halves; it doubles after 2000 good steps). Adds loss x batch and the correct predictions to
  // the sums. Returns whether the optimizer stepped.
  bool run(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& indices, int64_t epoch);

  // Sums since the last reset, on the device (reading them synchronises).
  const torch::Tensor& loss_sum() const { return loss_sum_; }
  const torch::Tensor& correct() const { return correct_; }
  void reset_sums();

  double scale = 65536;              // the fp16 loss scale (checkpointed)
  int64_t good_steps = 0;            // steps since the scale last changed
  // Runs after backward (fp16 gradients unscaled, before their overflow check) and before
  // clipping and the optimizer step: data-parallel training all-reduces the gradients here, so
  // every rank agrees on an overflow. Unset: nothing.
  std::function<void()> after_backward;

private:
  bool scaled_backward(const torch::Tensor& loss);
  model::Network& net_;
  torch::optim::Optimizer& opt_;
  std::vector<torch::Tensor> params_;
  bool autocast_, scaled_;
  torch::ScalarType dtype_;
  double grad_clip_;
  LossFn loss_;
  torch::Tensor loss_sum_, correct_;
};

} // namespace nas::train
