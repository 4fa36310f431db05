// loss: see loss.h. Logits come in float32 (the step casts them out of autocast); the teacher's
// may be half precision (cached soft targets) and are widened here.
#include "nas/distill/loss.h"

#include <algorithm>

namespace nas::distill {
namespace {

namespace F = torch::nn::functional;

// sum(p * (log p - log q)) / batch, with 0 * log 0 taken as 0
torch::Tensor kl_batchmean(const torch::Tensor& log_q, const torch::Tensor& p, const torch::Tensor& log_p) {
  return torch::where(p > 0, p * (log_p - log_q), torch::zeros_like(p)).sum() / double(p.size(0));
}

// log of a probability that may round to zero, kept finite for the backward pass
torch::Tensor safe_log(const torch::Tensor& p) { return torch::log(p.clamp_min(1e-12)); }

} // namespace

torch::Tensor kd_term(const torch::Tensor& student, const torch::Tensor& teacher, double temperature) {
  const torch::Tensor t = teacher.to(torch::kFloat32) / temperature;
  const torch::Tensor log_q = F::log_softmax(student / temperature, F::LogSoftmaxFuncOptions(1));
  const torch::Tensor log_p = F::log_softmax(t, F::LogSoftmaxFuncOptions(1));
  return kl_batchmean(log_q, log_p.exp(), log_p) * (temperature * temperature);
}

DkdTerms dkd_terms(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                   double temperature) {
  const double t2 = temperature * temperature;
  const torch::Tensor target = F::one_hot(labels, student.size(1)).to(torch::kBool);
  const torch::Tensor ps = torch::softmax(student / temperature, 1);
  const torch::Tensor pt = torch::softmax(teacher.to(torch::kFloat32) / temperature, 1);
  auto binary = [&](const torch::Tensor& p) {   // (p(target), p(all others))
    const torch::Tensor pg = (p * target).sum(1, true);
    return torch::cat({pg, (p * target.logical_not()).sum(1, true)}, 1);
  };
  const torch::Tensor bs = binary(ps), bt = binary(pt);
  DkdTerms out;
  out.tckd = kl_batchmean(safe_log(bs), bt, safe_log(bt)) * t2;
  // Among the non-target classes: the target's logit pushed far down (finite, so that no
  // infinity reaches the backward pass), then the softmax over what is left.
  const torch::Tensor away = target.to(torch::kFloat32) * 1000.0;
  const torch::Tensor log_qn = F::log_softmax(student / temperature - away, F::LogSoftmaxFuncOptions(1));
  const torch::Tensor log_pn = F::log_softmax(teacher.to(torch::kFloat32) / temperature - away, F::LogSoftmaxFuncOptions(1));
  out.nckd = kl_batchmean(log_qn, log_pn.exp(), log_pn) * t2;
  return out;
}

torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                      const KdParams& p) {
  return p.alpha * kd_term(student, teacher, p.temperature) + (1 - p.alpha) * F::cross_entropy(student, labels);
}

torch::Tensor dkd_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& labels,
                       const DkdParams& p, int64_t epoch) {
  const double warm = p.warmup_epochs > 0 ? std::min(double(epoch + 1) / double(p.warmup_epochs), 1.0) : 1.0;
  const DkdTerms d = dkd_terms(student, teacher, labels, p.temperature);
  return F::cross_entropy(student, labels) + warm * (p.alpha * d.tckd + p.beta * d.nckd);
}

} // namespace nas::distill
