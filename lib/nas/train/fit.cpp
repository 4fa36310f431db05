// fit: the training loop.
//
// Reproducibility. Every random number of a step comes from a generator reseeded from (trial
// seed, epoch, step): the epoch's order of samples from (seed, epoch), a batch's crops and flips
// from (seed, global step). The weights' initial values come from the trial seed (worker.cpp).
// Nothing random therefore depends on what ran before in the process, and a run resumed from a
// checkpoint at any step draws exactly what an uninterrupted run draws. With the same device
// and thread count the weights agree bit for bit on the CPU (tests/unit/train).
#include "nas/train/fit.h"
#include "nas/core/error.h"

#include <ATen/autocast_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#ifdef NAS_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <chrono>
#include <thread>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace nas::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) & 0x7fffffffffffffffULL;   // generators take the seed as int64 in places
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::Network& net, const space::HParams& hp) {
  if (hp.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        net->parameters(), torch::optim::AdamWOptions(hp.lr).betas({hp.momentum, 0.999}).weight_decay(hp.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      net->parameters(),
      torch::optim::SGDOptions(hp.lr).momentum(hp.momentum).nesterov(hp.nesterov && hp.momentum > 0).weight_decay(hp.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

// Mixed precision on CUDA: autocast for the forward pass, thread-local like LibTorch's own
// autocast state, so packed trainers do not affect each other.
class AutocastScope {
public:
  AutocastScope(bool on, torch::ScalarType dtype) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
  }
private:
  bool on_;
};

// What a checkpoint holds besides the model and optimizer.
struct Progress {
  int64_t epoch = 0;          // epochs done
  int64_t step = 0;           // steps done in the next epoch (non-zero after a stop mid-epoch)
  double scale = 65536;       // fp16 loss scale
  int64_t good_steps = 0;     // steps since the scale last changed
  double loss_sum = 0;        // the unfinished epoch's sums
  int64_t correct = 0, seen = 0;
  double train_s = 0;         // training time of every attempt so far
};

void fsync_path(const fs::path& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Written to a temporary name, fsynced and renamed: a crash leaves the old or the new file.
void save_checkpoint(const std::string& path, model::Network& net, torch::optim::Optimizer& opt, const Progress& p) {
  torch::serialize::OutputArchive ar, model_ar, opt_ar;
  net->save(model_ar);
  opt.save(opt_ar);
  ar.write("model", model_ar);
  ar.write("optimizer", opt_ar);
  auto i64 = [](int64_t v) { return torch::tensor(v, torch::kInt64); };
  auto f64 = [](double v) { return torch::tensor(v, torch::kFloat64); };
  ar.write("epoch", i64(p.epoch));
  ar.write("step", i64(p.step));
  ar.write("scale", f64(p.scale));
  ar.write("good_steps", i64(p.good_steps));
  ar.write("loss_sum", f64(p.loss_sum));
  ar.write("correct", i64(p.correct));
  ar.write("seen", i64(p.seen));
  ar.write("train_s", f64(p.train_s));
  // A name of its own: two writers of one trial (a lease lost and taken over) never share a file.
  const fs::path target(path),
      tmp = target.string() + "." + std::to_string(::getpid()) + "-" +
            std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 1000000007) + ".tmp";
  fs::create_directories(target.parent_path());
  ar.save_to(tmp.string());
  fsync_path(tmp, O_RDONLY);
  fs::rename(tmp, target);
  fsync_path(target.parent_path(), O_RDONLY | O_DIRECTORY);
}

Progress load_checkpoint(const std::string& path, model::Network& net, torch::optim::Optimizer& opt,
                         const torch::Device& device) {
  torch::serialize::InputArchive ar, model_ar, opt_ar;
  ar.load_from(path, device);
  ar.read("model", model_ar);
  ar.read("optimizer", opt_ar);
  net->load(model_ar);
  opt.load(opt_ar);
  auto get = [&](const char* key) {
    torch::Tensor t;
    ar.read(key, t);
    return t;
  };
  Progress p;
  p.epoch = get("epoch").item<int64_t>();
  p.step = get("step").item<int64_t>();
  p.scale = get("scale").item<double>();
  p.good_steps = get("good_steps").item<int64_t>();
  p.loss_sum = get("loss_sum").item<double>();
  p.correct = get("correct").item<int64_t>();
  p.seen = get("seen").item<int64_t>();
  p.train_s = get("train_s").item<double>();
  return p;
}

bool all_finite(model::Network& net) {
  for (const auto& p : net->parameters())
    if (!torch::isfinite(p).all().item<bool>()) return false;
  return true;
}

torch::ScalarType autocast_dtype(const std::string& precision) {
  return precision == "fp16" ? torch::kHalf : torch::kBFloat16;
}

} // namespace

torch::Generator make_generator(const torch::Device& device, uint64_t seed) {
#ifdef NAS_WITH_CUDA
  if (device.is_cuda()) {
    auto g = at::cuda::detail::createCUDAGenerator(device.index() < 0 ? 0 : device.index());
    g.set_current_seed(seed);
    return g;
  }
#endif
  (void)device;
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

double lr_at(const space::HParams& hp, int64_t step, int64_t total, int64_t warmup, int64_t from, int64_t to) {
  if (warmup > 0 && step < warmup) return hp.lr * double(step + 1) / double(warmup);
  if (hp.schedule == "constant" || total <= warmup) return hp.lr;
  if (from >= 0 && to > 0) {
    const int64_t start = std::max(from, warmup);
    if (to > start) {
      const double peak = lr_at(hp, start, total, warmup);
      const double t = double(step - start) / double(to - start);
      return 0.5 * peak * (1.0 + std::cos(M_PI * std::clamp(t, 0.0, 1.0)));
    }
  }
  const double t = double(step - warmup) / double(total - warmup);
  return 0.5 * hp.lr * (1.0 + std::cos(M_PI * std::min(t, 1.0)));
}

Evaluation evaluate(model::Network& net, const data::StudyData& data, const data::Split& split,
                    int64_t batch_size, const FitPlan& plan) {
  Evaluation e;
  const int64_t n = split.size();
  if (n == 0) return {std::nan(""), std::nan("")};
  torch::NoGradGuard no_grad;
  net->eval();
  const auto device = split.images.device();
  const bool autocast = device.is_cuda() && plan.precision != "fp32";
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  torch::Tensor correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto gen = make_generator(device, 0);
  for (int64_t at = 0; at < n; at += batch_size) {
    const int64_t b = std::min(batch_size, n - at);
    torch::Tensor idx = torch::arange(at, at + b, torch::TensorOptions().dtype(torch::kInt64).device(device));
    torch::Tensor x = data::gather_batch(data, split, idx, false, gen);
    if (plan.channels_last) x = model::to_channels_last(x);
    torch::Tensor y = split.labels.narrow(0, at, b);
    torch::Tensor logits;
    {
      AutocastScope ac(autocast, autocast_dtype(plan.precision));
      logits = net->forward(x);
    }
    logits = logits.to(torch::kFloat32);
    loss_sum += torch::nn::functional::cross_entropy(logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).to(torch::kFloat64);
    correct += logits.argmax(1).eq(y).sum();
  }
  e.loss = loss_sum.item<double>() / double(n);
  e.acc = double(correct.item<int64_t>()) / double(n);
  return e;
}

FitOutcome fit(model::Network& net, const data::StudyData& data, const FitPlan& plan, const FitHooks& hooks) {
  const space::HParams& hp = plan.hp;
  const auto device = data.train.images.device();
  const int64_t n = data.train.size();
  if (n < 2) throw UsageError("the training split has " + std::to_string(n) + " samples: too few to train");
  const int64_t b = std::min<int64_t>(hp.batch_size, n);
  // A last batch of one sample would break batch norm: it is left out of the epoch.
  const int64_t steps = n % b == 1 ? n / b : (n + b - 1) / b;
  const int64_t total_steps = std::max<int64_t>(plan.schedule_epochs, plan.budget_epochs) * steps;
  const int64_t warmup = int64_t(std::llround(hp.warmup_epochs * double(steps)));
  const bool autocast = device.is_cuda() && plan.precision != "fp32";
  const bool scaled = autocast && plan.precision == "fp16";
  namespace F = torch::nn::functional;
  const auto ce = F::CrossEntropyFuncOptions().label_smoothing(hp.label_smoothing);

  auto opt = make_optimizer(net, hp);
  Progress st;
  if (!plan.checkpoint.empty() && fs::exists(plan.checkpoint)) st = load_checkpoint(plan.checkpoint, net, *opt, device);
  auto params = net->parameters();

  FitOutcome out;
  out.epochs_done = int(st.epoch);
  auto gen = make_generator(device, 0);
  auto order_gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  const int64_t report_every = 25;

  for (int64_t epoch = st.epoch; epoch < plan.budget_epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    int64_t epoch_samples = 0;
    order_gen.set_current_seed(mix(plan.seed, uint64_t(epoch)));
    torch::Tensor perm = torch::randperm(n, order_gen, torch::kInt64).to(device);
    net->train();
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    torch::Tensor correct = torch::zeros({}, i64);
    double lr = 0;
    for (int64_t step = st.step; step < steps; ++step) {
      if (hooks.lease_lost && hooks.lease_lost()) {   // another worker owns the trial and its checkpoint now
        out.stopped = out.lease_lost = true;
        out.step = step;
        out.steps = steps;
        return out;
      }
      if (hooks.should_stop && hooks.should_stop()) {
        st.step = step;
        st.loss_sum += loss_sum.item<double>();
        st.correct += correct.item<int64_t>();
        st.train_s += seconds_since(epoch_start);
        if (!plan.checkpoint.empty()) save_checkpoint(plan.checkpoint, net, *opt, st);
        out.stopped = true;
        out.step = step;
        out.steps = steps;
        out.train_s = st.train_s;
        return out;
      }
      const auto t0 = Clock::now();
      const int64_t at = step * b, bs = std::min(b, n - at);
      torch::Tensor idx = perm.narrow(0, at, bs);
      const int64_t global = epoch * steps + step;
      gen.set_current_seed(mix(plan.seed ^ 0x6175676dULL, uint64_t(global)));
      torch::Tensor x = data::gather_batch(data, data.train, idx, true, gen);
      if (plan.channels_last) x = model::to_channels_last(x);
      torch::Tensor y = data.train.labels.index_select(0, idx);
      lr = plan.anneal_from_epoch >= 0
               ? lr_at(hp, global, total_steps, warmup, plan.anneal_from_epoch * steps, plan.budget_epochs * steps)
               : lr_at(hp, global, total_steps, warmup);
      set_lr(*opt, lr);
      opt->zero_grad();
      torch::Tensor logits;
      {
        AutocastScope ac(autocast, autocast_dtype(plan.precision));
        logits = net->forward(x);
      }
      logits = logits.to(torch::kFloat32);
      torch::Tensor loss = F::cross_entropy(logits, y, ce);
      bool take_step = true;
      if (scaled) {
        (loss * st.scale).backward();
        // Unscale, and skip the step when the scaled gradients overflowed (the loss scaler).
        torch::Tensor finite = torch::ones({}, torch::TensorOptions().dtype(torch::kBool).device(device));
        for (auto& p : params)
          if (p.grad().defined()) {
            p.mutable_grad().mul_(1.0 / st.scale);
            finite = finite.logical_and(torch::isfinite(p.grad()).all());
          }
        take_step = finite.item<bool>();
        if (!take_step) {
          st.scale /= 2;
          st.good_steps = 0;
        } else if (++st.good_steps % 2000 == 0) {
          st.scale *= 2;
        }
      } else {
        loss.backward();
      }
      if (take_step) {
        if (hp.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, hp.grad_clip);
        opt->step();
      }
      {
        torch::NoGradGuard no_grad;
        loss_sum += loss.detach().to(torch::kFloat64) * double(bs);
        correct += logits.argmax(1).eq(y).sum();
      }
      epoch_samples += bs;
      st.seen += bs;
      if ((step + 1) % report_every == 0 || step + 1 == steps) {
        const double ls = st.loss_sum + loss_sum.item<double>();   // synchronises the device
        if (!std::isfinite(ls))
          throw Diverged("loss became " + std::string(std::isnan(ls) ? "NaN" : "Inf") + " at epoch " +
                         std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) + " (lr " +
                         std::to_string(lr) + ")");
        if (hooks.on_progress)
          hooks.on_progress(int(epoch + 1), step + 1, steps, ls / double(st.seen),
                            double(st.correct + correct.item<int64_t>()) / double(st.seen),
                            double(epoch_samples) / std::max(1e-9, seconds_since(epoch_start)));
      }
      const double busy = seconds_since(t0);
      out.busy_s += busy;
      if (hooks.on_busy) hooks.on_busy(busy);
    }
    out.samples += epoch_samples;
    if (!all_finite(net)) throw Diverged("weights became NaN or Inf in epoch " + std::to_string(epoch + 1));
    EpochStats es;
    es.epoch = int(epoch + 1);
    es.train_loss = (st.loss_sum + loss_sum.item<double>()) / double(st.seen);
    es.train_acc = double(st.correct + correct.item<int64_t>()) / double(st.seen);
    const auto eval_start = Clock::now();
    Evaluation val = evaluate(net, data, data.validation, plan.eval_batch_size, plan);
    if (hooks.on_busy) hooks.on_busy(seconds_since(eval_start));
    out.busy_s += seconds_since(eval_start);
    es.val_loss = val.loss;
    es.val_acc = val.acc;
    es.lr = lr;
    es.wall_s = seconds_since(epoch_start);
    es.samples_per_s = double(epoch_samples) / std::max(1e-9, es.wall_s);
    st.train_s += es.wall_s;
    st.epoch = epoch + 1;
    st.step = 0;
    st.loss_sum = 0;
    st.correct = st.seen = 0;
    if (!plan.checkpoint.empty()) save_checkpoint(plan.checkpoint, net, *opt, st);
    out.epochs_done = int(st.epoch);
    out.last = es;
    if (hooks.on_epoch) hooks.on_epoch(es);
    if (epoch + 1 < plan.budget_epochs && hooks.end_early && hooks.end_early()) {
      out.ended_early = true;
      break;
    }
  }
  out.train_s = st.train_s;
  return out;
}

} // namespace nas::train
