// bn_act: see bn_act.h; the passes it shares with thin_conv.cpp are declared in bn_kernels.h.
// The kernels walk the M x C matrix in groups of rows (bn::Layout) with the values of a group
// innermost, so that the compiler vectorises them (core/kernel.h). Measured beside LibTorch's
// operators: NAS_BN_ACT_TIMING=1 build/tests/unit_model -tc='*timing*' (forward 1.5-2.2x,
// backward 1.6-2.2x faster on 2 Xeon cores; a training step of the 3-conv CNN about 15% faster).
#include "nas/model/bn_act.h"
#include "nas/model/bn_kernels.h"

#include <cmath>
#include <limits>


namespace nas::model {
namespace bn {
namespace {

// Sums of (x - shift) and (x - shift)^2 per channel over `rows` rows, added to s1 and s2.
NAS_KERNEL void moments(const float* __restrict x, int64_t rows, int64_t c, const float* __restrict shift,
                        double* __restrict s1, double* __restrict s2, float* __restrict f1, float* __restrict f2) {
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    for (int64_t j = 0; j < c; ++j) f1[j] = f2[j] = 0.f;
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict row = x + r * c;
      for (int64_t j = 0; j < c; ++j) {
        const float d = row[j] - shift[j];
        f1[j] += d;
        f2[j] += d * d;
      }
    }
    for (int64_t j = 0; j < c; ++j) {
      s1[j] += double(f1[j]);
      s2[j] += double(f2[j]);
    }
  }
}

// y = clamp(x * a + b, lo, hi) per channel.
NAS_KERNEL void normalise(const float* __restrict x, float* __restrict y, int64_t rows, int64_t c,
                          const float* __restrict a, const float* __restrict b, float lo, float hi) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict xr = x + r * c;
    float* __restrict yr = y + r * c;
    for (int64_t j = 0; j < c; ++j) yr[j] = std::min(std::max(xr[j] * a[j] + b[j], lo), hi);
  }
}

// Sums of the masked gradient gm and of gm x (x - mean) per channel, added to sg and sgx.
NAS_KERNEL void grad_sums(const float* __restrict g, const float* __restrict x, int64_t rows, int64_t c,
                          const float* __restrict mean, const float* __restrict a, const float* __restrict b, float lo,
                          float hi, double* __restrict sg, double* __restrict sgx, float* __restrict f1,
                          float* __restrict f2) {
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    for (int64_t j = 0; j < c; ++j) f1[j] = f2[j] = 0.f;
    for (int64_t r = r0; r < r1; ++r) {
      const float *__restrict gr = g + r * c, *__restrict xr = x + r * c;
      for (int64_t j = 0; j < c; ++j) {
        const float gm = masked(gr[j], xr[j] * a[j] + b[j], lo, hi);
        f1[j] += gm;
        f2[j] += gm * (xr[j] - mean[j]);
      }
    }
    for (int64_t j = 0; j < c; ++j) {
      sg[j] += double(f1[j]);
      sgx[j] += double(f2[j]);
    }
  }
}

// dx = gm x a + x x k2 + k1 per channel (batch norm's input gradient, rearranged).
NAS_KERNEL void grad_input(const float* __restrict g, const float* __restrict x, float* __restrict dx, int64_t rows,
                           int64_t c, float lo, float hi, const float* __restrict a, const float* __restrict b,
                           const float* __restrict k1, const float* __restrict k2) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *__restrict gr = g + r * c, *__restrict xr = x + r * c;
    float* __restrict dr = dx + r * c;
    for (int64_t j = 0; j < c; ++j) dr[j] = masked(gr[j], xr[j] * a[j] + b[j], lo, hi) * a[j] + xr[j] * k2[j] + k1[j];
  }
}

} // namespace

std::pair<float, float> bounds(BnAct act) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (act == BnAct::relu) return {0.f, inf};
  if (act == BnAct::relu6) return {0.f, 6.f};
  return {-inf, inf};
}

std::vector<float> floats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor tensor_of(const std::vector<float>& v) {
  return torch::from_blob(const_cast<float*>(v.data()), {int64_t(v.size())}, torch::kFloat32).clone();
}

Stats batch_stats(const std::vector<float>& shift, const std::vector<double>& s1, const std::vector<double>& s2,
                  int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
  const std::vector<float> wt = floats(weight), bi = floats(bias);
  const size_t nc = shift.size();
  const double m = double(rows);
  Stats st{std::vector<float>(nc), std::vector<float>(nc), std::vector<float>(nc), std::vector<float>(nc),
           std::vector<float>(nc)};
  for (size_t k = 0; k < nc; ++k) {
    const double m1 = s1[k] / m, var = std::max(0.0, s2[k] / m - m1 * m1);
    st.mean[k] = float(double(shift[k]) + m1);
    st.invstd[k] = float(1.0 / std::sqrt(var + eps));
    st.var_unbiased[k] = float(rows > 1 ? var * m / (m - 1) : var);
    st.a[k] = wt[k] * st.invstd[k];
    st.b[k] = bi[k] - st.mean[k] * st.a[k];
  }
  return st;
}

void update_running(torch::Tensor running_mean, torch::Tensor running_var, const Stats& st, double momentum) {
  running_mean.mul_(1.0 - momentum).add_(tensor_of(st.mean).to(running_mean.dtype()), momentum);
  running_var.mul_(1.0 - momentum).add_(tensor_of(st.var_unbiased).to(running_var.dtype()), momentum);
}

void normalise_pass(const Layout& l, const float* x, float* y, const std::vector<float>& a, const std::vector<float>& b,
                    float lo, float hi) {
  const std::vector<float> a_r = l.repeat(a), b_r = l.repeat(b);
  const int64_t c = l.c;
  chunk_map(l, [&](int64_t row, int64_t n, int64_t w) {
    normalise(x + row * c, y + row * c, n, w, a_r.data(), b_r.data(), lo, hi);
  });
}

std::pair<std::vector<double>, std::vector<double>> grad_sums_pass(const Layout& l, const float* g, const float* x,
                                                                   const std::vector<float>& mean,
                                                                   const std::vector<float>& a,
                                                                   const std::vector<float>& b, float lo, float hi) {
  const std::vector<float> mean_r = l.repeat(mean), a_r = l.repeat(a), b_r = l.repeat(b);
  const int64_t c = l.c;
  return chunk_sums(l, [&](int64_t row, int64_t n, int64_t width, double* s1, double* s2, float* f1, float* f2) {
    const int64_t o = row * c;
    grad_sums(g + o, x + o, n, width, mean_r.data(), a_r.data(), b_r.data(), lo, hi, s1, s2, f1, f2);
  });
}

Grads batch_grads(const std::vector<double>& sg, const std::vector<double>& sgx, const std::vector<float>& a,
                  const std::vector<float>& mean, const std::vector<float>& invstd, int64_t rows) {
  const size_t nc = sg.size();
  const double m = double(rows);
  Grads gr{std::vector<float>(nc), std::vector<float>(nc), std::vector<float>(nc), std::vector<float>(nc)};
  for (size_t j = 0; j < nc; ++j) {   // a = weight x invstd
    gr.dbias[j] = float(sg[j]);
    gr.dweight[j] = float(sgx[j] * double(invstd[j]));
    gr.k2[j] = float(-double(a[j]) * double(invstd[j]) * double(invstd[j]) * sgx[j] / m);
    gr.k1[j] = float(-double(a[j]) * sg[j] / m - double(mean[j]) * double(gr.k2[j]));
  }
  return gr;
}

} // namespace bn

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct BnActFunction : torch::autograd::Function<BnActFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, torch::Tensor running_mean, torch::Tensor running_var,
                               double momentum, double eps, int64_t act);
  static variable_list backward(AutogradContext* ctx, variable_list grads);
};

torch::Tensor BnActFunction::forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                                     const torch::Tensor& bias, torch::Tensor running_mean, torch::Tensor running_var,
                                     double momentum, double eps, int64_t act) {
  const int64_t c = x.size(1);
  const bn::Layout l(x.numel() / c, c);
  const float* xp = x.data_ptr<float>();
  const std::vector<float> shift(xp, xp + c);   // the first row: close to the mean, so no cancellation
  const std::vector<float> shift_r = l.repeat(shift);
  auto [s1, s2] = bn::chunk_sums(l, [&](int64_t row, int64_t n, int64_t w, double* a, double* b, float* f1, float* f2) {
    bn::moments(xp + row * c, n, w, shift_r.data(), a, b, f1, f2);
  });
  const bn::Stats st = bn::batch_stats(shift, s1, s2, l.rows, weight, bias, eps);
  torch::Tensor y = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
  const auto [lo, hi] = bn::bounds(BnAct(act));
  bn::normalise_pass(l, xp, y.data_ptr<float>(), st.a, st.b, lo, hi);
  bn::update_running(running_mean, running_var, st, momentum);
  ctx->save_for_backward({x, weight, bn::tensor_of(st.a), bn::tensor_of(st.b), bn::tensor_of(st.mean),
                          bn::tensor_of(st.invstd)});
  ctx->saved_data["act"] = act;
  return y;
}

variable_list BnActFunction::backward(AutogradContext* ctx, variable_list grads) {
  const auto saved = ctx->get_saved_variables();
  const torch::Tensor &x = saved[0], &weight = saved[1];
  const auto [lo, hi] = bn::bounds(BnAct(ctx->saved_data["act"].toInt()));
  const torch::Tensor g = grads[0].contiguous(torch::MemoryFormat::ChannelsLast);
  const int64_t c = x.size(1);
  const bn::Layout l(x.numel() / c, c);
  // the forward's a and b, bit for bit: the activation's mask is recomputed from them
  const std::vector<float> fa = bn::floats(saved[2]), fb = bn::floats(saved[3]);
  const std::vector<float> mean = bn::floats(saved[4]), invstd = bn::floats(saved[5]);
  const float *gp = g.data_ptr<float>(), *xp = x.data_ptr<float>();
  const auto [sg, sgx] = bn::grad_sums_pass(l, gp, xp, mean, fa, fb, lo, hi);
  const bn::Grads gr = bn::batch_grads(sg, sgx, fa, mean, invstd, l.rows);
  torch::Tensor dx;
  if (ctx->needs_input_grad(0)) {
    dx = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
    float* dp = dx.data_ptr<float>();
    const std::vector<float> fa_r = l.repeat(fa), fb_r = l.repeat(fb), k1_r = l.repeat(gr.k1), k2_r = l.repeat(gr.k2);
    bn::chunk_map(l, [&](int64_t row, int64_t n, int64_t width) {
      const int64_t o = row * c;
      bn::grad_input(gp + o, xp + o, dp + o, n, width, lo, hi, fa_r.data(), fb_r.data(), k1_r.data(), k2_r.data());
    });
  }
  const auto like = [&](const std::vector<float>& v) { return bn::tensor_of(v).to(weight.dtype()); };
  return {dx, like(gr.dweight), like(gr.dbias), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
          torch::Tensor()};
}

} // namespace

bool bn_act_applies(const torch::Tensor& x, const torch::nn::BatchNorm2dImpl& bn) {
  const auto& o = bn.options;
  return bn.is_training() && o.affine() && o.track_running_stats() && o.momentum().has_value() && x.dim() == 4 &&
         x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.numel() > x.size(1) &&
         x.is_contiguous(torch::MemoryFormat::ChannelsLast) && bn.weight.scalar_type() == torch::kFloat32 &&
         bn.running_mean.device().is_cpu();
}

torch::Tensor bn_act(const torch::Tensor& x, torch::nn::BatchNorm2dImpl& bn, BnAct act) {
  TORCH_CHECK(bn_act_applies(x, bn), "bn_act: a batch norm or input it does not cover");
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
  }
  return BnActFunction::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, *bn.options.momentum(),
                              bn.options.eps(), int64_t(act));
}

} // namespace nas::model
