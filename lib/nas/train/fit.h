// fit: training one network on a study's device-resident data -- SGD (momentum, Nesterov) or
// AdamW, warm-up and cosine schedule, label smoothing, weight decay, gradient clipping, mixed
// precision with a loss scaler for fp16, a NaN/Inf guard, and a checkpoint at the end of every
// epoch (and when asked to stop) from which training resumes bit for bit on the CPU
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "nas/data/dataset.h"
#include "nas/model/network.h"
#include "nas/space/hparams.h"
#include "nas/train/step.h"

namespace nas::train {

// Loss or weights became NaN or Inf: the trial failed with reason "diverged".
class Diverged : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The trial's checkpoint exists but cannot be read back (truncated, corrupt, another network's):
// nothing of it was applied to the network. The job removes it and trains from scratch.
class CheckpointUnreadable : public std::runtime_error {
public:
  CheckpointUnreadable(const std::string& path, const std::string& why)
      : std::runtime_error("checkpoint '" + path + "' is unreadable: " + why), path_(path) {}
  const std::string& path() const { return path_; }
private:
  std::string path_;
};

struct FitPlan {
  space::HParams hp;
  int64_t schedule_epochs = 1;     // the length of the learning-rate schedule (the final budget)
  int64_t budget_epochs = 1;       // train until this many epochs are done (this rung)
  // [budget] anneal: the epoch this rung started from (>= 0), and the cosine ends at
  // budget_epochs instead of schedule_epochs: from the full schedule's rate at that epoch down
  // to zero. -1: one schedule over schedule_epochs.
  int64_t anneal_from_epoch = -1;
  config::Precision precision = config::Precision::fp32;  // resolved: fp32 | bf16 | fp16 (autocast on CUDA only)
  bool channels_last = false;      // inputs restrided channels-last (the network converted too)
  uint64_t seed = 0;               // the trial's: data order and augmentation
  int64_t eval_batch_size = 128;   // eval_batch() of the study's setting
  std::string checkpoint;          // file path; "" for no checkpoints
  LossFn loss;                     // the training loss; unset: cross-entropy with hp.label_smoothing
  // Data-parallel training (lib/nas/distill/ddp.h fills these; train/ knows no process group).
  // This process is rank `rank` of `world` and trains its contiguous slice of every batch of
  // hp.batch_size: all ranks draw the same order and augmentation, so `world` ranks see exactly
  // the samples one rank sees. An epoch's last batch smaller than `world` is left out of it.
  int rank = 0, world = 1;
  bool write_checkpoint = true;    // false: resume from `checkpoint` but never write it (ranks > 0)
  // After backward, before the optimizer step, with this rank's share of the batch (its
  // samples / the batch's): all-reduces the gradients to the whole batch's.
  std::function<void(double share)> after_backward;
  // Sums a float64 vector over the ranks, in place (the loss and accuracy sums); every rank
  // calls it at the same points.
  std::function<void(torch::Tensor& sums)> reduce_sums;
};

struct EpochStats {
  int epoch = 0;                   // 1-based: epochs done
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
  double lr = 0;                   // at the end of the epoch
  double wall_s = 0;               // this epoch (the part run in this process)
  double val_s = 0;                // its validation pass (part of wall_s)
  double samples_per_s = 0;
};

struct Evaluation {
  double loss = 0, acc = 0;
};

struct FitHooks {
  std::function<bool()> should_stop;                           // polled between steps
  std::function<bool()> lease_lost;       // polled between steps: stop without a checkpoint
  std::function<void(const EpochStats&)> on_epoch;             // after the epoch's checkpoint
  std::function<bool()> end_early;        // asked after on_epoch: true ends the training there
  std::function<void(double seconds)> on_busy;                // time spent in steps
  // every few steps: epoch (1-based, in progress), step, steps per epoch, loss, acc, samples/s
  std::function<void(int, int64_t, int64_t, double, double, double)> on_progress;
};

struct FitOutcome {
  bool stopped = false;            // should_stop() (a checkpoint was written) or lease_lost() ended it early
  bool lease_lost = false;         // lease_lost() ended it: nothing was written
  bool ended_early = false;        // end_early() ended it after epoch epochs_done (checkpointed)
  int epochs_done = 0;
  int64_t step = 0, steps = 0;     // when stopped: steps done of the `steps` of epoch epochs_done + 1
  double train_s = 0;              // training time over every attempt (from the checkpoint)
  int64_t samples = 0;             // samples trained in this process
  double busy_s = 0;               // this process
  EpochStats last;                 // the last full epoch
};

// Trains `net` (already on the data's device) to plan.budget_epochs, resuming from
// plan.checkpoint when it exists. Throws Diverged on NaN/Inf, std::exception for the rest.
FitOutcome fit(model::Network& net, const data::StudyData& data, const FitPlan& plan, const FitHooks& hooks);

// The trained weights (and batch-norm statistics) of a checkpoint `fit` wrote, into `net` (the
// same genome), on the CPU. Throws CheckpointUnreadable naming the file.
void load_weights(const std::string& path, model::Network& net);

// The batch of validation and test passes: [train] eval_batch_size when given (> 0), else 1024
// on a GPU and 128 on the CPU, where larger batches spill the layers' activations out of the
// caches: the 3-conv CNN's validation pass over 6,000 images took 0.55 s at 1024, 0.30 s at
// 512, 0.13 s at 128 and 0.17 s at 32 on 2 AMD EPYC cores (bench/results/train-epoch-amd.md).
int64_t eval_batch(int64_t configured, const torch::Device& device);

// Loss (plain cross-entropy) and accuracy of `net` on a split, in batches, without gradients.
Evaluation evaluate(model::Network& net, const data::StudyData& data, const data::Split& split,
                    int64_t batch_size, const FitPlan& plan);

// The learning rate at step `step` of `total` with `warmup` warm-up steps (linear from
// lr/warmup up to lr), then cosine to zero (or constant). With a segment [from, to) of steps
// (to > 0; [budget] anneal), a cosine schedule anneals inside it instead: from the full
// schedule's rate at max(from, warmup) down to zero at `to`.
double lr_at(const space::HParams& hp, int64_t step, int64_t total, int64_t warmup, int64_t from = -1,
             int64_t to = 0);

// A generator of the device's type seeded with `seed`.
torch::Generator make_generator(const torch::Device& device, uint64_t seed);

} // namespace nas::train
