// compute: the zero-cost proxies. Each follows the reference definition in ../shared/REFERENCES.md
// (Abdelfattah et al. 2021's shared setup: one batch, default initialisation, mean cross-entropy,
// BN in train mode, Conv and Linear weights only, per-layer values summed).
#include "nas/proxy/compute.h"

#include <cmath>

namespace nas::proxy {

namespace F = torch::nn::functional;

Score checked(double v) {
  Score s;
  s.value = v;
  if (std::isnan(v)) s.flag = "nan";
  else if (std::isinf(v)) s.flag = v > 0 ? "inf" : "neg_inf";
  return s;
}

std::vector<torch::Tensor> Target::weights() const {
  std::vector<torch::Tensor> w;
  for (auto& p : module->parameters())
    if (p.dim() >= 2) w.push_back(p);
  return w;
}

Target target_of(model::Network& net) {
  Target t;
  auto* impl = net.get();
  t.forward = [impl](const torch::Tensor& x) { return impl->forward(x); };
  t.observe = [impl](model::LayerObserver o) { impl->set_observer(std::move(o)); };
  t.plain = [impl](bool p) { impl->set_plain(p); };
  t.module = impl;
  return t;
}

namespace {

void zero_grads(Target& t) {
  for (auto& p : t.module->parameters())
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

// Clears the observer when it goes out of scope, also on an exception.
struct Observing {
  Target& t;
  Observing(Target& target, model::LayerObserver o) : t(target) { t.observe(std::move(o)); }
  ~Observing() { t.observe(nullptr); }
};

// Where the network's parameters are (the CPU for one without any).
torch::Device device_of(const Target& t) {
  for (const auto& p : t.module->parameters()) return p.device();
  return torch::Device(torch::kCPU);
}

template <class Fn> void for_each_bn(Target& t, Fn fn) {
  for (auto& m : t.module->modules(/*include_self=*/false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) fn(*bn);
}

} // namespace

void gradient_proxies(Target& t, const torch::Tensor& x, const torch::Tensor& y, Score* grad_norm, Score* snip,
                      Score* fisher) {
  t.module->train();
  zero_grads(t);
  struct Seen {
    torch::Tensor out;
    double per_channel_weights;   // weight elements of one output channel
  };
  std::vector<Seen> seen;
  torch::Tensor loss;
  {
    Observing obs(t, fisher ? model::LayerObserver([&](const model::LayerEvent& e) {
      const std::string kind = e.kind;
      if (kind != "conv" && kind != "linear") return;
      e.output.retain_grad();
      const double channels = double(e.output.size(1));
      const double space = kind == "conv" ? double(e.output.size(2) * e.output.size(3)) : 1.0;
      seen.push_back({e.output, double(e.macs) / (channels * space)});
    }) : model::LayerObserver());
    loss = F::cross_entropy(t.forward(x), y);
  }
  loss.backward();
  const auto w = t.weights();
  if (grad_norm) {
    double s = 0;
    for (const auto& p : w)
      if (p.grad().defined()) s += p.grad().norm().item<double>();
    *grad_norm = checked(s);
  }
  if (snip) {
    double s = 0;
    for (const auto& p : w)
      if (p.grad().defined()) s += (p.detach() * p.grad()).abs().sum().item<double>();
    *snip = checked(s);
  }
  if (fisher) {
    double s = 0;
    for (const auto& z : seen) {
      if (!z.out.grad().defined()) continue;
      torch::Tensor prod = (z.out.detach() * z.out.grad()).to(torch::kFloat64);
      if (prod.dim() == 4) prod = prod.sum({2, 3});
      torch::Tensor per_channel = 0.5 * prod.pow(2).mean(0);
      s += per_channel.sum().item<double>() * z.per_channel_weights;
    }
    *fisher = checked(s);
  }
  zero_grads(t);
}

Score grasp(Target& t, const torch::Tensor& x, const torch::Tensor& y) {
  t.module->train();
  zero_grads(t);
  const auto w = t.weights();
  // One forward pass: g = dL/dw with its graph kept; z = g . stop_gradient(g), whose gradient is
  // H g (the constant factor does not differentiate). The same as a second pass for g on the
  // same batch, at one forward and backward less.
  auto g = torch::autograd::grad({F::cross_entropy(t.forward(x), y)}, w, {}, true, true, true);
  torch::Tensor z = torch::zeros({}, x.options().dtype(torch::kFloat32));
  for (size_t i = 0; i < w.size(); ++i)
    if (g[i].defined()) z = z + (g[i] * g[i].detach()).sum();
  if (!z.requires_grad()) return checked(0.0);
  auto hg = torch::autograd::grad({z}, w, {}, false, false, true);
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i)
    if (hg[i].defined()) s += (-w[i].detach() * hg[i]).sum().item<double>();
  zero_grads(t);
  return checked(s);
}

Score jacob_cov(Target& t, const torch::Tensor& x) {
  t.module->train();
  zero_grads(t);
  torch::Tensor in = x.detach().clone().requires_grad_(true);
  torch::Tensor out = t.forward(in);
  out.backward(torch::ones_like(out));
  torch::Tensor j = in.grad().reshape({in.size(0), -1}).to(torch::kFloat64);
  zero_grads(t);
  torch::Tensor corr = torch::corrcoef(j);
  if (!torch::isfinite(corr).all().item<bool>()) return checked(std::nan(""));
  torch::Tensor l = torch::linalg_eigvalsh(corr);
  const double k = 1e-5;
  return checked(-(torch::log(l + k) + 1.0 / (l + k)).sum().item<double>());
}

torch::Tensor agreement_kernel(const torch::Tensor& codes) {
  const int64_t n = codes.size(0), units = codes.size(1);
  if (!codes.is_cpu()) {
    // c c^T + (1-c)(1-c)^T = 2 c c^T - s 1^T - 1 s^T + U (s: ones per sample); float32 counts are
    // exact up to 2^24 units a layer.
    torch::Tensor c = codes.to(torch::kFloat32);
    torch::Tensor ones = c.sum(1, /*keepdim=*/true).to(torch::kFloat64);
    return 2 * c.matmul(c.t()).to(torch::kFloat64) - ones - ones.t() + double(units);
  }
  // 64 units a word; agreement = units - popcount(a xor b). A layer of 50,000 units and 128
  // samples: ~6 M popcounts instead of a 1.6 GFLOP matmul.
  const torch::Tensor c = codes.to(torch::kBool).contiguous();
  const int64_t words = (units + 63) / 64;
  std::vector<uint64_t> bits(size_t(n * words), 0);
  const bool* p = c.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i) {
    const bool* row = p + i * units;
    uint64_t* w = bits.data() + i * words;
    for (int64_t j = 0; j < units; ++j) w[j >> 6] |= uint64_t(row[j]) << (j & 63);
  }
  torch::Tensor k = torch::empty({n, n}, torch::kFloat64);
  auto a = k.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t* wi = bits.data() + i * words;
    a[i][i] = double(units);
    for (int64_t j = i + 1; j < n; ++j) {
      const uint64_t* wj = bits.data() + j * words;
      int64_t differ = 0;
      for (int64_t q = 0; q < words; ++q) differ += __builtin_popcountll(wi[q] ^ wj[q]);
      a[i][j] = a[j][i] = double(units - differ);
    }
  }
  return k;
}

Score nwot(Target& t, const torch::Tensor& x) {
  t.module->train();
  const int64_t n = x.size(0);
  torch::Tensor k = torch::zeros({n, n}, x.options().dtype(torch::kFloat64));
  {
    torch::NoGradGuard no_grad;
    Observing obs(t, [&](const model::LayerEvent& e) {
      if (std::string(e.kind) != "act") return;
      k += agreement_kernel((e.input > 0).reshape({n, -1}));
    });
    t.forward(x);
  }
  auto [sign, logabsdet] = torch::linalg_slogdet(k);
  if (sign.item<double>() == 0) return checked(-std::numeric_limits<double>::infinity());
  return checked(logabsdet.item<double>());
}

Score zico(Target& t, const torch::Tensor& x1, const torch::Tensor& y1, const torch::Tensor& x2,
           const torch::Tensor& y2) {
  t.module->train();
  const auto w = t.weights();
  std::vector<std::vector<torch::Tensor>> grads(w.size());
  for (const auto& [x, y] : {std::make_pair(x1, y1), std::make_pair(x2, y2)}) {
    zero_grads(t);
    F::cross_entropy(t.forward(x), y).backward();
    for (size_t i = 0; i < w.size(); ++i)
      grads[i].push_back(w[i].grad().defined() ? w[i].grad().detach().to(torch::kFloat64).clone()
                                               : torch::zeros_like(w[i], torch::kFloat64));
  }
  zero_grads(t);
  double s = 0;
  for (auto& g : grads) {
    torch::Tensor st = torch::stack(g);
    torch::Tensor sd = st.std(0, /*unbiased=*/false);
    torch::Tensor mean_abs = st.abs().mean(0);
    torch::Tensor nz = sd != 0;
    const double layer = (mean_abs.masked_select(nz) / sd.masked_select(nz)).sum().item<double>();
    if (layer != 0) s += std::log(layer);
  }
  return checked(s);
}

Score synflow(Target& t, const std::vector<int64_t>& shape) {
  t.module->to(torch::kFloat64);
  t.module->eval();
  {
    torch::NoGradGuard no_grad;
    for_each_bn(t, [](torch::nn::BatchNorm2dImpl& bn) {   // BN as the identity
      bn.running_mean.zero_();
      bn.running_var.fill_(1.0);
      bn.options.eps(0.0);
    });
    for (auto& p : t.module->parameters()) p.abs_();
  }
  zero_grads(t);
  std::vector<int64_t> dims = {1};
  dims.insert(dims.end(), shape.begin(), shape.end());
  torch::Tensor out = t.forward(torch::ones(dims, torch::TensorOptions().dtype(torch::kFloat64).device(device_of(t))));
  out.sum().backward();
  double s = 0;
  for (const auto& p : t.weights())
    if (p.grad().defined()) s += (p.detach() * p.grad()).abs().sum().item<double>();
  zero_grads(t);
  if (s == 0) {
    Score z;
    z.value = -std::numeric_limits<double>::infinity();
    z.flag = "zero";
    return z;
  }
  // A sum past the largest double is the largest score, not a degenerate one.
  if (std::isinf(s)) return checked(std::log(std::numeric_limits<double>::max()));
  return checked(std::log(s));
}

Score zen(Target& t, const std::vector<int64_t>& shape, int64_t batch, uint64_t seed) {
  // Drawn on the CPU from the seed and copied: the same values on every device.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Device device = device_of(t);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.module->named_parameters()) {
      if (p.value().dim() >= 2) p.value().copy_(torch::randn(p.value().sizes(), gen, torch::TensorOptions().dtype(p.value().dtype())));
      else if (p.key().size() >= 4 && p.key().compare(p.key().size() - 4, 4, "bias") == 0) p.value().zero_();
    }
    for_each_bn(t, [](torch::nn::BatchNorm2dImpl& bn) {
      bn.weight.fill_(1.0);
      bn.bias.zero_();
      bn.options.momentum(1.0);   // running_var = the variance of the last batch
    });
  }
  t.module->train();
  if (t.plain) t.plain(true);
  std::vector<int64_t> dims = {batch};
  dims.insert(dims.end(), shape.begin(), shape.end());
  torch::Tensor x = torch::randn(dims, gen).to(device), eps = torch::randn(dims, gen).to(device);
  torch::Tensor f1, f2;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor* into = &f1;
    Observing obs(t, [&](const model::LayerEvent& e) {
      if (std::string(e.kind) == "features") *into = e.output.detach().clone();
    });
    t.forward(x);
    into = &f2;
    t.forward(x + 0.01 * eps);
  }
  if (t.plain) t.plain(false);
  if (!f1.defined() || !f2.defined()) return checked(std::nan(""));
  const double diff = (f1 - f2).abs().reshape({batch, -1}).sum(1).mean().item<double>();
  double bn_log = 0;
  // A BN layer whose input is all zeros (a branch fed only by 'none' edges in an NB201 cell)
  // has variance 0 and adds nothing to the output: it is left out instead of making the sum -inf.
  for_each_bn(t, [&](torch::nn::BatchNorm2dImpl& bn) {
    const double var = bn.running_var.mean().item<double>();
    if (var != 0) bn_log += std::log(std::sqrt(var));   // a NaN still makes the score NaN (flagged)
  });
  if (diff <= 0) {
    Score z;
    z.value = -std::numeric_limits<double>::infinity();
    z.flag = "zero";
    return z;
  }
  return checked(std::log(diff) + bn_log);
}

} // namespace nas::proxy
