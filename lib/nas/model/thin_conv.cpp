// thin_conv: see thin_conv.h. The input is zero-padded once and laid out channels innermost, so
// that an output pixel's patch is a fixed set of offsets from one base address (no bounds checks);
// the weights are laid out tap by tap, each tap a row of the output channels rounded up to a
// vector (kLanes), so that a pixel's channels are kLanes-wide sums the compiler keeps in a
// register. Built like bn_act.cpp (core/kernel.h; no FMA contraction: the backward recomputes the
// forward's z x a + b for the activation's mask bit for bit).
#include "nas/model/thin_conv.h"
#include "nas/model/bn_kernels.h"

#include <ATen/autocast_mode.h>

#include <vector>

namespace nas::model {
namespace {

constexpr int64_t kLanes = 16;   // output channels a kernel computes together: one AVX-512 vector

// The shapes of one step: the padded input (n x hp x wp x ci, channels innermost), the kernel
// (k x k) and stride, the output (n x ho x wo x co; its channels rounded up to cp).
struct Geometry {
  int64_t n, ci, hp, wp, k, stride, ho, wo, co, cp;
  int64_t taps() const { return k * k * ci; }
  int64_t rows() const { return n * ho * wo; }
};

// The output rows in order from row r, with where each one's patch starts in the padded input
// (counted up, not divided out: a division per pixel would cost as much as its arithmetic).
struct RowWalk {
  RowWalk(const Geometry& g_, int64_t r) : g(g_), ox(r % g_.wo), oy((r / g_.wo) % g_.ho), b(r / (g_.wo * g_.ho)) {}
  int64_t base() const { return ((b * g.hp + oy * g.stride) * g.wp + ox * g.stride) * g.ci; }
  void next() {
    if (++ox < g.wo) return;
    ox = 0;
    if (++oy < g.ho) return;
    oy = 0;
    ++b;
  }
  const Geometry& g;
  int64_t ox, oy, b;
};

// kLanes floats as one value (GCC's and Clang's vector extension): one AVX-512 register, two AVX2
// ones, four SSE ones, as the kernel's clone has. Moved to and from memory with memcpy (unaligned);
// never passed to or returned from a function, whose ABI would then depend on the clone.
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

constexpr int64_t kRows = 4;   // output rows a kernel computes together: independent sums in flight

// The next n (<= kRows) rows' patch bases from `at`; the slots past n repeat the first (their
// results are dropped, or multiplied by 0).
inline void next_bases(RowWalk& at, int64_t n, int64_t* base) {
  for (int64_t i = 0; i < n; ++i, at.next()) base[i] = at.base();
  for (int64_t i = n; i < kRows; ++i) base[i] = base[0];
}

// Rows [r0, r0 + rows) of the convolution z = p * w, written to z (M x co), with the sums of
// (z - shift) and (z - shift)^2 per channel added to s1 and s2 (f1, f2: cp floats of scratch).
NAS_KERNEL void conv_moments(const float* __restrict p, const Geometry& g, const int64_t* __restrict off,
                             const float* __restrict w, int64_t r0, int64_t rows, float* __restrict z,
                             const float* __restrict shift, double* __restrict s1, double* __restrict s2,
                             float* __restrict f1, float* __restrict f2) {
  const int64_t taps = g.taps(), cp = g.cp, co = g.co;
  RowWalk at(g, r0);
  for (int64_t b0 = r0; b0 < r0 + rows; b0 += bn::kBlock) {
    const int64_t b1 = std::min(r0 + rows, b0 + bn::kBlock);
    for (int64_t j = 0; j < cp; ++j) f1[j] = f2[j] = 0.f;
    for (int64_t r = b0; r < b1; r += kRows) {
      const int64_t nr = std::min(kRows, b1 - r);
      int64_t base[kRows];
      next_bases(at, nr, base);
      for (int64_t cb = 0; cb < cp; cb += kLanes) {
        Vec acc[kRows] = {}, wt, sh, a1, a2;
        for (int64_t t = 0; t < taps; ++t) {
          __builtin_memcpy(&wt, w + t * cp + cb, sizeof(Vec));
          for (int64_t i = 0; i < kRows; ++i) acc[i] += p[base[i] + off[t]] * wt;
        }
        __builtin_memcpy(&sh, shift + cb, sizeof(Vec));   // lanes past co: acc and shift are 0 there
        __builtin_memcpy(&a1, f1 + cb, sizeof(Vec));
        __builtin_memcpy(&a2, f2 + cb, sizeof(Vec));
        for (int64_t i = 0; i < nr; ++i) {
          float* __restrict zr = z + (r + i) * co + cb;
          if (co - cb >= kLanes)   // a constant size: one vector store
            __builtin_memcpy(zr, &acc[i], sizeof(Vec));
          else
            __builtin_memcpy(zr, &acc[i], size_t(co - cb) * sizeof(float));
          const Vec d = acc[i] - sh;
          a1 += d;
          a2 += d * d;
        }
        __builtin_memcpy(f1 + cb, &a1, sizeof(Vec));
        __builtin_memcpy(f2 + cb, &a2, sizeof(Vec));
      }
    }
    for (int64_t j = 0; j < cp; ++j) s1[j] += double(f1[j]), s2[j] += double(f2[j]);
  }
}

// The batch norm's per-channel factors of the backward, each cp long (0 past co): the forward's
// a and b (the mask) and the input gradient's k1, k2 (bn_kernels.h).
struct Factors {
  std::vector<float> a, b, k1, k2;
};

// Rows [r0, r0 + rows): the convolution's output gradient dz = gm x a + z x k2 + k1 per pixel
// (gm: the upstream gradient gy under the activation's mask, bn::masked's rule), added into the
// weights' gradient dw[tap][channel] (taps x cp) as dz x the pixel's patch (fw: taps x cp floats
// of scratch).
NAS_KERNEL void weight_grad(const float* __restrict p, const Geometry& g, const int64_t* __restrict off,
                            const float* __restrict gy, const float* __restrict z, const Factors& f, float lo,
                            float hi, int64_t r0, int64_t rows, double* __restrict dw, float* __restrict fw) {
  const int64_t taps = g.taps(), cp = g.cp, co = g.co;
  const float *__restrict a = f.a.data(), *__restrict b = f.b.data(), *__restrict k1 = f.k1.data(),
              *__restrict k2 = f.k2.data();
  // dz of one pixel's lanes [cb, cb + n): written as a loop over lanes, which the vectoriser turns
  // into compares into mask registers (the vector extension's own compares it would not)
  const auto dz = [&](const float* __restrict gr, const float* __restrict zr, int64_t cb, int64_t n,
                      float* __restrict d) {
    for (int64_t l = 0; l < n; ++l) {
      const int64_t j = cb + l;
      d[l] = bn::masked(gr[l], zr[l] * a[j] + b[j], lo, hi) * a[j] + zr[l] * k2[j] + k1[j];
    }
  };
  RowWalk at(g, r0);
  for (int64_t b0 = r0; b0 < r0 + rows; b0 += bn::kBlock) {
    const int64_t b1 = std::min(r0 + rows, b0 + bn::kBlock);
    for (int64_t j = 0; j < taps * cp; ++j) fw[j] = 0.f;
    for (int64_t r = b0; r < b1; r += kRows) {
      const int64_t nr = std::min(kRows, b1 - r);
      int64_t base[kRows];
      next_bases(at, nr, base);
      for (int64_t cb = 0; cb < cp; cb += kLanes) {
        float dl[kRows][kLanes] = {};   // rows past nr and lanes past co stay 0
        for (int64_t i = 0; i < nr; ++i) {
          const int64_t o = (r + i) * co + cb;
          if (co - cb >= kLanes)
            dz(gy + o, z + o, cb, kLanes, dl[i]);   // a constant count: whole vectors
          else
            dz(gy + o, z + o, cb, co - cb, dl[i]);
        }
        Vec d[kRows], ft;
        __builtin_memcpy(d, dl, sizeof d);
        static_assert(kRows == 4, "the sum below adds four rows");
        for (int64_t t = 0; t < taps; ++t) {
          __builtin_memcpy(&ft, fw + t * cp + cb, sizeof(Vec));
          const int64_t o = off[t];
          ft += (d[0] * p[base[0] + o] + d[1] * p[base[1] + o]) + (d[2] * p[base[2] + o] + d[3] * p[base[3] + o]);
          __builtin_memcpy(fw + t * cp + cb, &ft, sizeof(Vec));
        }
      }
    }
    for (int64_t j = 0; j < taps * cp; ++j) dw[j] += double(fw[j]);
  }
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

Geometry geometry(const torch::Tensor& padded, const torch::Tensor& weight, int64_t stride) {
  Geometry g{};
  g.n = padded.size(0), g.hp = padded.size(1), g.wp = padded.size(2), g.ci = padded.size(3);
  g.k = weight.size(2), g.stride = stride, g.co = weight.size(0), g.cp = round_up(g.co, kLanes);
  g.ho = (g.hp - g.k) / stride + 1, g.wo = (g.wp - g.k) / stride + 1;
  return g;
}

// Offsets of a patch's taps from its base, tap t = (ky x k + kx) x ci + c.
std::vector<int64_t> tap_offsets(const Geometry& g) {
  std::vector<int64_t> off;
  for (int64_t ky = 0; ky < g.k; ++ky)
    for (int64_t kx = 0; kx < g.k; ++kx)
      for (int64_t c = 0; c < g.ci; ++c) off.push_back((ky * g.wp + kx) * g.ci + c);
  return off;
}

// The weights co x ci x k x k as taps x cp (0 past co).
std::vector<float> taps_major(const torch::Tensor& weight, const Geometry& g) {
  const std::vector<float> w = bn::floats(weight);   // contiguous: [o][c][ky][kx]
  std::vector<float> out(size_t(g.taps() * g.cp), 0.f);
  for (int64_t o = 0; o < g.co; ++o)
    for (int64_t c = 0; c < g.ci; ++c)
      for (int64_t y = 0; y < g.k; ++y)
        for (int64_t x = 0; x < g.k; ++x)
          out[size_t((((y * g.k + x) * g.ci + c) * g.cp) + o)] = w[size_t(((o * g.ci + c) * g.k + y) * g.k + x)];
  return out;
}

// The inverse of taps_major, from the double sums: the weights' gradient, laid out as the weights
// are (so that autograd keeps it as it is and the optimizer reads both alike).
torch::Tensor from_taps(const std::vector<double>& dw, const Geometry& g, const torch::Tensor& weight) {
  torch::Tensor out = torch::empty_like(weight, torch::MemoryFormat::Preserve);
  float* o = out.data_ptr<float>();
  const auto st = out.strides();
  for (int64_t t = 0; t < g.taps(); ++t) {
    const int64_t c = t % g.ci, x = (t / g.ci) % g.k, y = t / (g.ci * g.k);
    for (int64_t j = 0; j < g.co; ++j)
      o[j * st[0] + c * st[1] + y * st[2] + x * st[3]] = float(dw[size_t(t * g.cp + j)]);
  }
  return out;
}

std::vector<float> padded_to(std::vector<float> v, int64_t n) {
  v.resize(size_t(n), 0.f);
  return v;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ThinConvBnActFunction : torch::autograd::Function<ThinConvBnActFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bn_weight, const torch::Tensor& bn_bias, torch::Tensor running_mean,
                               torch::Tensor running_var, int64_t stride, double momentum, double eps, int64_t act);
  static variable_list backward(AutogradContext* ctx, variable_list grads);
};

// The convolution into z (channels-last) and its batch statistics.
bn::Stats conv_stats(const torch::Tensor& p, const Geometry& g, const std::vector<float>& w, torch::Tensor& z,
                     const torch::Tensor& bn_weight, const torch::Tensor& bn_bias, double eps) {
  const std::vector<int64_t> off = tap_offsets(g);
  float* zp = z.data_ptr<float>();
  std::vector<float> shift(size_t(g.cp), 0.f), scratch(size_t(2 * g.cp));
  std::vector<double> ignored(size_t(2 * g.cp), 0.0);
  // the first image's middle pixel (a corner's patch is mostly padding), as the shift of the
  // sums: close to the mean, so no cancellation
  const int64_t mid = (g.ho / 2) * g.wo + g.wo / 2;
  conv_moments(p.data_ptr<float>(), g, off.data(), w.data(), mid, 1, zp, shift.data(), ignored.data(),
               ignored.data() + g.cp, scratch.data(), scratch.data() + g.cp);
  std::copy(zp + mid * g.co, zp + (mid + 1) * g.co, shift.begin());
  const int64_t cp = g.cp;
  const std::vector<double> s = bn::row_sums(g.rows(), 2 * cp, 2 * cp, [&](int64_t r0, int64_t n, double* out, float* f) {
    conv_moments(p.data_ptr<float>(), g, off.data(), w.data(), r0, n, zp, shift.data(), out, out + cp, f, f + cp);
  });
  const std::vector<double> s1(s.begin(), s.begin() + g.co), s2(s.begin() + cp, s.begin() + cp + g.co);
  return bn::batch_stats(std::vector<float>(shift.begin(), shift.begin() + g.co), s1, s2, g.rows(), bn_weight, bn_bias,
                         eps);
}

torch::Tensor ThinConvBnActFunction::forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                                             const torch::Tensor& bn_weight, const torch::Tensor& bn_bias,
                                             torch::Tensor running_mean, torch::Tensor running_var, int64_t stride,
                                             double momentum, double eps, int64_t act) {
  const int64_t pad = weight.size(2) / 2;
  // zero-padded once, channels innermost: a patch is a fixed set of offsets, with no bounds checks
  const torch::Tensor p = torch::constant_pad_nd(x.detach(), {pad, pad, pad, pad}).permute({0, 2, 3, 1}).contiguous();
  const Geometry g = geometry(p, weight, stride);
  torch::Tensor z = torch::empty({g.n, g.co, g.ho, g.wo}, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
  const bn::Stats st = conv_stats(p, g, taps_major(weight, g), z, bn_weight, bn_bias, eps);
  torch::Tensor y = torch::empty_like(z, torch::MemoryFormat::ChannelsLast);
  const auto [lo, hi] = bn::bounds(BnAct(act));
  bn::normalise_pass(bn::Layout(g.rows(), g.co), z.data_ptr<float>(), y.data_ptr<float>(), st.a, st.b, lo, hi);
  bn::update_running(running_mean, running_var, st, momentum);
  ctx->save_for_backward({p, z, weight, bn_weight, bn::tensor_of(st.a), bn::tensor_of(st.b), bn::tensor_of(st.mean),
                          bn::tensor_of(st.invstd)});
  ctx->saved_data["stride"] = stride;
  ctx->saved_data["act"] = act;
  return y;
}

variable_list ThinConvBnActFunction::backward(AutogradContext* ctx, variable_list grads) {
  const auto saved = ctx->get_saved_variables();
  const torch::Tensor &p = saved[0], &z = saved[1], &weight = saved[2], &bn_weight = saved[3];
  const Geometry g = geometry(p, weight, ctx->saved_data["stride"].toInt());
  const auto [lo, hi] = bn::bounds(BnAct(ctx->saved_data["act"].toInt()));
  const torch::Tensor gy = grads[0].contiguous(torch::MemoryFormat::ChannelsLast);
  // the forward's a and b, bit for bit: the activation's mask is recomputed from them
  const std::vector<float> a = bn::floats(saved[4]), b = bn::floats(saved[5]);
  const std::vector<float> mean = bn::floats(saved[6]), invstd = bn::floats(saved[7]);
  const float *gp = gy.data_ptr<float>(), *zp = z.data_ptr<float>();
  const auto [sg, sgx] = bn::grad_sums_pass(bn::Layout(g.rows(), g.co), gp, zp, mean, a, b, lo, hi);
  const bn::Grads gr = bn::batch_grads(sg, sgx, a, mean, invstd, g.rows());
  torch::Tensor dweight;
  if (ctx->needs_input_grad(1)) {
    const Factors f{padded_to(a, g.cp), padded_to(b, g.cp), padded_to(gr.k1, g.cp), padded_to(gr.k2, g.cp)};
    const std::vector<int64_t> off = tap_offsets(g);
    const int64_t width = g.taps() * g.cp;
    const std::vector<double> dw = bn::row_sums(g.rows(), width, width, [&](int64_t r0, int64_t n, double* out, float* fw) {
      weight_grad(p.data_ptr<float>(), g, off.data(), gp, zp, f, lo, hi, r0, n, out, fw);
    });
    dweight = from_taps(dw, g, weight);
  }
  const auto like = [&](const std::vector<float>& v) { return bn::tensor_of(v).to(bn_weight.dtype()); };
  const torch::Tensor none;
  return {none, dweight, like(gr.dweight), like(gr.dbias), none, none, none, none, none, none};
}

} // namespace

bool thin_conv_applies(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                       const torch::nn::BatchNorm2dImpl& bn) {
  const auto& o = bn.options;
  const bool norm = bn.is_training() && o.affine() && o.track_running_stats() && o.momentum().has_value() &&
                    bn.weight.scalar_type() == torch::kFloat32 && bn.running_mean.device().is_cpu();
  const bool input = x.dim() == 4 && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && !x.requires_grad() &&
                     x.size(1) >= 1 && x.size(1) <= kThinConvMaxChannels && !at::autocast::is_cpu_enabled();
  if (!norm || !input || weight.dim() != 4 || !weight.device().is_cpu() || weight.scalar_type() != torch::kFloat32)
    return false;
  const int64_t k = weight.size(2);
  const bool shape = weight.size(1) == x.size(1) && weight.size(3) == k && k % 2 == 1 && stride >= 1 &&
                     weight.size(0) == bn.weight.size(0);
  // "same" padding: each side of the output is (side - 1) / stride + 1; more than one value a channel
  const int64_t rows = x.size(0) * ((x.size(2) - 1) / stride + 1) * ((x.size(3) - 1) / stride + 1);
  return shape && rows > 1;
}

torch::Tensor thin_conv_bn_act(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                               torch::nn::BatchNorm2dImpl& bn, BnAct act) {
  TORCH_CHECK(thin_conv_applies(x, weight, stride, bn), "thin_conv_bn_act: a convolution or input it does not cover");
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
  }
  return ThinConvBnActFunction::apply(x, weight, bn.weight, bn.bias, bn.running_mean, bn.running_var, stride,
                                      *bn.options.momentum(), bn.options.eps(), int64_t(act));
}

} // namespace nas::model
