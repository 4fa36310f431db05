// teacher: the network students learn from -- a TorchScript module trained elsewhere, or a
// network of the study's family that nas-distill trained -- checked against the task before
// any student uses it, and run on batches exactly as the student sees them
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "nas/config/augment.h"
#include "nas/config/study_config.h"
#include "nas/data/dataset.h"
#include "nas/model/network.h"

namespace nas::distill {

class Teacher {
public:
  virtual ~Teacher() = default;
  // Float32 logits (B x classes) of a batch normalised as the study normalises it (data's mean
  // and std, on the data's device), without gradients. Safe to call from several threads.
  virtual torch::Tensor logits(const torch::Tensor& x) = 0;
  // "torchscript 'PATH'" or "minnow ARCH": for messages and the study file.
  virtual std::string describe() const = 0;
};

// A TorchScript teacher from `path` (torch::jit::load), on the data's device, in eval mode. Its
// input is renormalised from the study's to `mean`/`std` (per channel, on [0, 1] pixels) when
// they are given. Throws UsageError naming the file when it cannot be loaded.
std::unique_ptr<Teacher> load_torchscript_teacher(const std::string& path, const std::vector<double>& mean,
                                                  const std::vector<double>& std, const data::StudyData& data);

// A teacher of the study's family: `net` (trained, on the data's device) in eval mode.
std::unique_ptr<Teacher> minnow_teacher(model::Network net, const std::string& arch);

// Runs the teacher on a few training samples: throws UsageError (exit 2) naming `what` (the
// file) when its output is not B x classes float logits for the study's input shape -- a
// teacher of another task is never used.
void check_teacher(Teacher& t, const data::StudyData& data, const std::string& what);

// The data a teacher trains on with nas-distill teacher --augment: `data` (its tensors shared,
// not copied) with the augmentations of `a` switched on besides the study's own.
data::StudyData teacher_training_data(const data::StudyData& data, const config::Augmentations& a);

// Accuracy of the teacher's argmax on a split.
double teacher_accuracy(Teacher& t, const data::StudyData& data, const data::Split& split, int64_t batch);

} // namespace nas::distill
