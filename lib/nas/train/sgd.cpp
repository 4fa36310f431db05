// sgd: see sgd.h. The update of one element, in LibTorch's order: d = g + wd x p (where wd is not
// 0); the momentum buffer b = d on the first step, else b x momentum + (1 - dampening) x d;
// d = d + momentum x b (Nesterov) or b; p = p - lr x d. Built with -O3 and no FMA contraction
// (core/kernel.h): the loop's invariant branches are taken out of it and every clone rounds alike.
#include "nas/train/sgd.h"
#include "nas/core/kernel.h"

namespace nas::train {
namespace {

struct Update {
  float lr, momentum, dampening, weight_decay;
  bool decay, with_momentum, nesterov, first;   // first: the buffer is started from d
};

NAS_KERNEL void update(float* __restrict p, const float* __restrict g, float* __restrict b, int64_t n,
                       const Update& u) {
  const float lr = u.lr, m = u.momentum, keep = 1.f - u.dampening, wd = u.weight_decay;
  const bool decay = u.decay, with_momentum = u.with_momentum, nesterov = u.nesterov, first = u.first;
  for (int64_t i = 0; i < n; ++i) {
    float d = decay ? g[i] + wd * p[i] : g[i];
    if (with_momentum) {
      b[i] = first ? d : b[i] * m + keep * d;
      d = nesterov ? d + m * b[i] : b[i];
    }
    p[i] = p[i] + -lr * d;
  }
}

bool dense_float_cpu(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_non_overlapping_and_dense();
}

// Whether a and b hold their elements in the same order: the same sizes, and the same strides
// wherever a size exceeds 1. A size-1 dimension's stride is arbitrary, and autograd hands over a
// gradient whose strides differ from its parameter's there (a 1-channel convolution's weight).
bool same_layout(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  return true;
}

} // namespace

bool FusedSgd::fuses() const {
  for (const auto& group : param_groups_)
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!dense_float_cpu(p) || !dense_float_cpu(p.grad()) || !same_layout(p, p.grad())) return false;
      auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == state_.end()) continue;
      const auto& buf = static_cast<const torch::optim::SGDParamState&>(*it->second).momentum_buffer();
      if (!dense_float_cpu(buf) || !same_layout(buf, p)) return false;
    }
  return true;
}

torch::Tensor FusedSgd::step(LossClosure closure) {
  if (closure || !fuses()) return torch::optim::SGD::step(std::move(closure));
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      Update u{float(o.lr()),        float(o.momentum()), float(o.dampening()), float(o.weight_decay()),
               o.weight_decay() != 0, o.momentum() != 0,  o.nesterov(),         false};
      float* b = nullptr;
      if (u.with_momentum) {
        const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
        auto it = state_.find(key);
        if (it == state_.end()) {
          auto st = std::make_unique<torch::optim::SGDParamState>();
          st->momentum_buffer(torch::empty_like(p));   // the parameter's layout, as clone(d) has it
          it = state_.emplace(key, std::move(st)).first;
          u.first = true;
        }
        b = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer().data_ptr<float>();
      }
      update(p.data_ptr<float>(), p.grad().data_ptr<float>(), b, p.numel(), u);
    }
  }
  return {};
}

} // namespace nas::train
