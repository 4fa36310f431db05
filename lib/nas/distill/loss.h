// loss: the distillation losses over a student's and a teacher's logits -- KD (Hinton et al.
// 2015) and DKD (Zhao et al., CVPR 2022), the Kullback-Leibler terms averaged over the batch
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace nas::distill {

// KD: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels).
struct KdParams {
  double temperature = 4;
  double alpha = 0.9;
};

// DKD: CE + w * (alpha * TCKD + beta * NCKD), each KL term times T^2, with w rising linearly
// over the first warmup_epochs (epoch e, 0-based, has w = min((e + 1) / warmup, 1)).
struct DkdParams {
  double temperature = 4;
  double alpha = 1;
  double beta = 8;
  int64_t warmup_epochs = 20;
};

// KL(softmax(teacher/T) || softmax(student/T)) summed over classes, averaged over the batch,
// times T^2 (the gradients then keep their size as T changes).
torch::Tensor kd_term(const torch::Tensor& student, const torch::Tensor& teacher, double temperature);

// DKD's two parts of that KL, each times T^2 and averaged over the batch: TCKD, the KL of the
// binary (target, all others) distributions; NCKD, the KL among the non-target classes alone.
// Per sample, KL = TCKD + (1 - p_teacher(target)) * NCKD (before the T^2).
struct DkdTerms {
  torch::Tensor tckd, nckd;
};
DkdTerms dkd_terms(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                   double temperature);

torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                      const KdParams& p);
torch::Tensor dkd_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                       const DkdParams& p, int64_t epoch);

} // namespace nas::distill
