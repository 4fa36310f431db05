// bn_kernels: the pieces that the fused batch-norm steps share (bn_act.cpp, the batch norm after
// any convolution; thin_conv.cpp, a convolution of few input channels with its batch norm): how a
// channels-last activation is split among the intra-op threads, the batch statistics and the
// gradient algebra, and the two passes over memory both run unchanged (normalise and activate;
// the gradient sums). Internal to the model module.
//
// A channels-last N x C x H x W tensor is an M x C row-major matrix (M = N x H x W). The rows are
// split into one chunk per thread; each chunk's sums are kept apart and added in chunk order, so
// that a run is deterministic for a given thread count.
#pragma once
#include <torch/torch.h>

#include "nas/core/kernel.h"
#include "nas/model/bn_act.h"
#include "nas/model/parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace nas::model::bn {

constexpr int64_t kBlock = 64;   // rows summed in float before the sums move to double

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
inline Span chunk(int64_t rows, int64_t chunks, int64_t t) {
  const int64_t b = rows * t / chunks, e = rows * (t + 1) / chunks;
  return {b, e - b};
}

// One chunk per intra-op thread, each of at least `min_rows` rows.
inline int64_t chunk_count(int64_t rows, int64_t min_rows) {
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows / min_rows));
}
inline int64_t chunk_count(const Layout& l) { return chunk_count(l.rows, kBlock * l.reps); }

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
  model::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
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

// Partial sums of `width` doubles per chunk of the rows, kernel(first row, rows, sums, scratch)
// filling a chunk's; added in chunk order.
template <class Kernel>
std::vector<double> row_sums(int64_t rows, int64_t width, int64_t scratch, const Kernel& kernel) {
  const int64_t chunks = chunk_count(rows, kBlock);
  std::vector<double> parts(size_t(chunks * width), 0.0);
  model::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> f(static_cast<size_t>(scratch));
    for (int64_t t = b; t < e; ++t) {
      const Span s = chunk(rows, chunks, t);
      kernel(s.begin, s.size, parts.data() + t * width, f.data());
    }
  });
  std::vector<double> sum(size_t(width), 0.0);
  for (int64_t i = 0; i < chunks * width; ++i) sum[size_t(i % width)] += parts[size_t(i)];
  return sum;
}

// An elementwise pass: kernel(first row, n, w), split and walked like chunk_sums.
template <class Kernel>
void chunk_map(const Layout& l, const Kernel& kernel) {
  const int64_t chunks = chunk_count(l);
  model::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) walk(l, chunk(l.rows, chunks, t), kernel);
  });
}

// The activation's clamp: [lo, hi] (infinite for none).
std::pair<float, float> bounds(BnAct act);

// The activation's gradient mask: where the output lies strictly inside (lo, hi) (for no
// activation lo and hi are infinite: everywhere but at an infinite or NaN value). `v` is the
// value before the clamp, x x a + b computed as normalise_pass computes it (the files that
// recompute it are built without FMA contraction, so bit for bit), so that the mask is the
// forward's without its output being read back.
inline float masked(float g, float v, float lo, float hi) { return v > lo && v < hi ? g : 0.f; }

std::vector<float> floats(const torch::Tensor& t);
torch::Tensor tensor_of(const std::vector<float>& v);

// A batch's statistics and the affine map y = x x a + b they make with the layer's weight and bias.
struct Stats {
  std::vector<float> mean, invstd, var_unbiased, a, b;
};
// From the sums s1, s2 of (x - shift) and (x - shift)^2 over `rows` rows per channel.
Stats batch_stats(const std::vector<float>& shift, const std::vector<double>& s1, const std::vector<double>& s2,
                  int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias, double eps);
// running = (1 - momentum) x running + momentum x the batch's, as BatchNorm2d's forward does.
void update_running(torch::Tensor running_mean, torch::Tensor running_var, const Stats& st, double momentum);

// y = clamp(x x a + b, lo, hi) over the M x C matrix x.
void normalise_pass(const Layout& l, const float* x, float* y, const std::vector<float>& a, const std::vector<float>& b,
                    float lo, float hi);

// Sums per channel of the masked gradient gm and of gm x (x - mean).
std::pair<std::vector<double>, std::vector<double>> grad_sums_pass(const Layout& l, const float* g, const float* x,
                                                                   const std::vector<float>& mean,
                                                                   const std::vector<float>& a,
                                                                   const std::vector<float>& b, float lo, float hi);

// Batch norm's backward from the gradient sums: the weight's and bias's gradients, and k1, k2 of
// the input's gradient dx = gm x a + x x k2 + k1 per channel.
struct Grads {
  std::vector<float> dweight, dbias, k1, k2;
};
Grads batch_grads(const std::vector<double>& sg, const std::vector<double>& sgx, const std::vector<float>& a,
                  const std::vector<float>& mean, const std::vector<float>& invstd, int64_t rows);

} // namespace nas::model::bn
