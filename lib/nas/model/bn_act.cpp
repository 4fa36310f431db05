// bn_act: see bn_act.h. A channels-last N x C x H x W tensor is an M x C row-major matrix
// (M = N x H x W). The kernels walk it in groups of rows (Layout) with the values of a group
// innermost, so that the compiler vectorises them (-O3 for this file, clones for AVX-512 and
// AVX2 chosen at load time). The rows are split into one chunk per intra-op thread; each chunk's
// sums are kept apart and added in chunk order, so that a run is deterministic for a given
// thread count. Measured beside LibTorch's operators: NAS_BN_ACT_TIMING=1 build/tests/unit_model
// -tc='*timing*' (forward 1.5-2.2x, backward 1.6-2.2x faster on 2 Xeon cores; a training step of
// the 3-conv CNN about 15% faster).
#include "nas/model/bn_act.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

// Clones of the kernels for AVX-512 and AVX2 beside the baseline x86-64 one.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NAS_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NAS_KERNEL
#endif

namespace nas::model {
namespace {

constexpr int64_t kBlock = 64;   // rows summed in float before the sums move to double

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

// The activation's gradient mask: where the output lies strictly inside (lo, hi) (for no
// activation lo and hi are infinite: everywhere but at an infinite or NaN value, as before the
// output was no longer read). `v` is the value before the clamp, x x a + b computed as
// normalise() computes it (this file is built without FMA contraction, so bit for bit), so
// that the mask is the forward's without its output being read back: the backward passes then
// stream x and the gradient only.
inline float masked(float g, float v, float lo, float hi) { return v > lo && v < hi ? g : 0.f; }

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

// How a pass walks the M x C matrix: in groups of `reps` rows, `width` = reps x C values each,
// so that the kernels' inner loops are long enough to vectorise well also when C is small (with
// C = 16 a row is a single AVX-512 vector, and the loop overhead would cost more than the work);
// the rows left over after the last whole group run one row at a time. Parameters per channel
// are repeated `reps` times to match, and sums come back per position of a group.
struct Layout {
  Layout(int64_t rows_, int64_t c_) : rows(rows_), c(c_), reps(std::max<int64_t>(1, 256 / c_)), width(reps * c_) {}
  std::vector<float> repeat(const std::vector<float>& v) const {
    std::vector<float> out(static_cast<size_t>(width), 0.f);
    for (int64_t i = 0; i < width; ++i) out[size_t(i)] = v[size_t(i % c)];
    return out;
  }
  int64_t rows, c, reps, width;
};

// The rows of chunk t of `chunks`.
struct Span {
  int64_t begin, size;
};
Span chunk(int64_t rows, int64_t chunks, int64_t t) {
  const int64_t b = rows * t / chunks, e = rows * (t + 1) / chunks;
  return {b, e - b};
}

int64_t chunk_count(const Layout& l) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), l.rows / (kBlock * l.reps)));
}

// Calls kernel(first row, n, w) for the whole groups of span s (w = width) and its last rows (w = C).
template <class Kernel>
void walk(const Layout& l, Span s, const Kernel& kernel) {
  const int64_t groups = s.size / l.reps, tail = s.size - groups * l.reps;
  if (groups > 0) kernel(s.begin, groups, l.width);
  if (tail > 0) kernel(s.begin + groups * l.reps, tail, l.c);
}

// Per-channel double sums over the chunks of a pass: kernel(first row, n, w, s1, s2, f1, f2) adds
// into s1/s2 (its chunk's own partial arrays, `width` long); returned folded to C channels, in
// chunk and position order.
template <class Kernel>
std::pair<std::vector<double>, std::vector<double>> chunk_sums(const Layout& l, const Kernel& kernel) {
  const int64_t chunks = chunk_count(l), w = l.width;
  std::vector<double> p1(size_t(chunks * w), 0.0), p2(size_t(chunks * w), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> f(size_t(2 * w));
    for (int64_t t = b; t < e; ++t)
      walk(l, chunk(l.rows, chunks, t), [&](int64_t row, int64_t n, int64_t width) {
        kernel(row, n, width, p1.data() + t * w, p2.data() + t * w, f.data(), f.data() + w);
      });
  });
  std::vector<double> s1(size_t(l.c), 0.0), s2(size_t(l.c), 0.0);
  for (int64_t i = 0; i < chunks * w; ++i) s1[size_t(i % l.c)] += p1[size_t(i)], s2[size_t(i % l.c)] += p2[size_t(i)];
  return {std::move(s1), std::move(s2)};
}

// An elementwise pass: kernel(first row, n, w), split and walked like chunk_sums.
template <class Kernel>
void chunk_map(const Layout& l, const Kernel& kernel) {
  const int64_t chunks = chunk_count(l);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) walk(l, chunk(l.rows, chunks, t), kernel);
  });
}

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
  const Layout l(x.numel() / c, c);
  const float* xp = x.data_ptr<float>();
  const std::vector<float> shift(xp, xp + c);   // the first row: close to the mean, so no cancellation
  const std::vector<float> shift_r = l.repeat(shift);
  auto [s1, s2] = chunk_sums(l, [&](int64_t row, int64_t n, int64_t w, double* a, double* b, float* f1, float* f2) {
    moments(xp + row * c, n, w, shift_r.data(), a, b, f1, f2);
  });
  const std::vector<float> wt = floats(weight), bi = floats(bias);
  const size_t nc = size_t(c);
  const double rows = double(l.rows);
  std::vector<float> mean(nc), invstd(nc), a(nc), b(nc), var_unbiased(nc);
  for (size_t k = 0; k < nc; ++k) {
    const double m1 = s1[k] / rows, var = std::max(0.0, s2[k] / rows - m1 * m1);
    mean[k] = float(double(shift[k]) + m1);
    invstd[k] = float(1.0 / std::sqrt(var + eps));
    var_unbiased[k] = float(l.rows > 1 ? var * rows / (rows - 1) : var);
    a[k] = wt[k] * invstd[k];
    b[k] = bi[k] - mean[k] * a[k];
  }
  torch::Tensor y = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
  const auto [lo, hi] = bounds(BnAct(act));
  const std::vector<float> a_r = l.repeat(a), b_r = l.repeat(b);
  float* yp = y.data_ptr<float>();
  chunk_map(l, [&](int64_t row, int64_t n, int64_t w) {
    normalise(xp + row * c, yp + row * c, n, w, a_r.data(), b_r.data(), lo, hi);
  });
  running_mean.mul_(1.0 - momentum).add_(tensor_of(mean).to(running_mean.dtype()), momentum);
  running_var.mul_(1.0 - momentum).add_(tensor_of(var_unbiased).to(running_var.dtype()), momentum);
  ctx->save_for_backward({x, weight, tensor_of(a), tensor_of(b), tensor_of(mean), tensor_of(invstd)});
  ctx->saved_data["act"] = act;
  return y;
}

variable_list BnActFunction::backward(AutogradContext* ctx, variable_list grads) {
  const auto saved = ctx->get_saved_variables();
  const torch::Tensor &x = saved[0], &weight = saved[1];
  const BnAct act = BnAct(ctx->saved_data["act"].toInt());
  const auto [lo, hi] = bounds(act);
  const torch::Tensor g = grads[0].contiguous(torch::MemoryFormat::ChannelsLast);
  const int64_t c = x.size(1);
  const Layout l(x.numel() / c, c);
  // the forward's a and b, bit for bit: the activation's mask is recomputed from them
  const std::vector<float> fa = floats(saved[2]), fb = floats(saved[3]);
  const std::vector<float> mean = floats(saved[4]), invstd = floats(saved[5]);
  const std::vector<float> mean_r = l.repeat(mean), fa_r = l.repeat(fa), fb_r = l.repeat(fb);
  const float *gp = g.data_ptr<float>(), *xp = x.data_ptr<float>();
  auto [sg, sgx] = chunk_sums(l, [&](int64_t row, int64_t n, int64_t width, double* s1, double* s2, float* f1, float* f2) {
    const int64_t o = row * c;
    grad_sums(gp + o, xp + o, n, width, mean_r.data(), fa_r.data(), fb_r.data(), lo, hi, s1, s2, f1, f2);
  });
  const size_t nc = size_t(c);
  const double rows = double(l.rows);
  std::vector<float> dweight(nc), dbias(nc), k1(nc), k2(nc);
  for (size_t j = 0; j < nc; ++j) {   // fa = weight x invstd
    dbias[j] = float(sg[j]);
    dweight[j] = float(sgx[j] * double(invstd[j]));
    k2[j] = float(-double(fa[j]) * double(invstd[j]) * double(invstd[j]) * sgx[j] / rows);
    k1[j] = float(-double(fa[j]) * sg[j] / rows - double(mean[j]) * double(k2[j]));
  }
  torch::Tensor dx;
  if (ctx->needs_input_grad(0)) {
    dx = torch::empty_like(x, torch::MemoryFormat::ChannelsLast);
    float* dp = dx.data_ptr<float>();
    const std::vector<float> k1_r = l.repeat(k1), k2_r = l.repeat(k2);
    chunk_map(l, [&](int64_t row, int64_t n, int64_t width) {
      const int64_t o = row * c;
      grad_input(gp + o, xp + o, dp + o, n, width, lo, hi, fa_r.data(), fb_r.data(), k1_r.data(), k2_r.data());
    });
  }
  const auto like = [&](const std::vector<float>& v) { return tensor_of(v).to(weight.dtype()); };
  return {dx, like(dweight), like(dbias), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
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
