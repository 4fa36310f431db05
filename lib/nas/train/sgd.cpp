// sgd: see sgd.h. The update of one element, in LibTorch's order: d = g + wd x p; the momentum
// buffer b = d on the first step, else b x momentum + (1 - dampening) x d; d = d + momentum x b
// (Nesterov) or b; p = p - lr x d.
#include "nas/train/sgd.h"

// Clones for AVX-512 and AVX2 beside the baseline x86-64 one, chosen at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NAS_SGD_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NAS_SGD_KERNEL
#endif

namespace nas::train {
namespace {

struct Update {
  float lr, momentum, dampening, weight_decay;
  bool nesterov, first;   // first: the buffer is started from d
};

NAS_SGD_KERNEL void update(float* __restrict p, const float* __restrict g, float* __restrict b, int64_t n,
                           const Update& u) {
  const float lr = u.lr, m = u.momentum, keep = 1.f - u.dampening, wd = u.weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + wd * p[i];
    if (m != 0.f) {
      b[i] = u.first ? d : b[i] * m + keep * d;
      d = u.nesterov ? d + m * b[i] : b[i];
    }
    p[i] = p[i] + -lr * d;
  }
}

bool dense_float_cpu(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_non_overlapping_and_dense();
}

} // namespace

bool FusedSgd::fuses() const {
  for (const auto& group : param_groups_)
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!dense_float_cpu(p) || !dense_float_cpu(p.grad()) || p.strides() != p.grad().strides()) return false;
      auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == state_.end()) continue;
      const auto& buf = static_cast<const torch::optim::SGDParamState&>(*it->second).momentum_buffer();
      if (!dense_float_cpu(buf) || buf.strides() != p.strides()) return false;
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
      Update u{float(o.lr()), float(o.momentum()), float(o.dampening()), float(o.weight_decay()), o.nesterov(), false};
      float* b = nullptr;
      if (o.momentum() != 0) {
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
