// fit: the training loop.
//
// Reproducibility. Every random number of a step comes from a generator reseeded from (trial
// seed, epoch, step): the epoch's order of samples from (seed, epoch), a batch's crops and flips
// from (seed, global step). The weights' initial values come from the trial seed (job.cpp).
// Nothing random therefore depends on what ran before in the process, and a run resumed from a
// checkpoint at any step draws exactly what an uninterrupted run draws. With the same device
// and thread count the weights agree bit for bit on the CPU (tests/unit/train).
#include "nas/train/fit.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/random.h"
#include "nas/core/text.h"
#include "nas/train/sgd.h"

#include <ATen/CPUGeneratorImpl.h>
#ifdef NAS_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace nas::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::Network& net, const space::HParams& hp) {
  if (hp.optimizer == config::Optimizer::adamw)
    return std::make_unique<torch::optim::AdamW>(
        net->parameters(), torch::optim::AdamWOptions(hp.lr).betas({hp.momentum, 0.999}).weight_decay(hp.weight_decay));
  return std::make_unique<FusedSgd>(   // torch::optim::SGD, its update one pass a parameter (sgd.h)
      net->parameters(),
      torch::optim::SGDOptions(hp.lr).momentum(hp.momentum).nesterov(hp.nesterov && hp.momentum > 0).weight_decay(hp.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

// What a checkpoint holds besides the model and optimizer.
struct Progress {
  int64_t epoch = 0;          // epochs done
  int64_t step = 0;           // steps done in the next epoch (non-zero after a stop mid-epoch)
  double scale = 65536;       // fp16 loss scale
  int64_t good_steps = 0;     // steps since the scale last changed
  double loss_sum = 0;        // the unfinished epoch's sums
  int64_t correct = 0, seen = 0;
  double train_s = 0;         // training time of every attempt so far
  int64_t steps = 0;          // steps an epoch of the run that wrote it (0: not recorded, older files)
};

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
  ar.write("steps_per_epoch", i64(p.steps));
  // Serialised in memory and written by write_file_atomic: a full disk or a read-only folder is
  // then a FileError naming the file, with no temporary left behind (LibTorch's own file writer
  // throws from its destructor on a failed write, which aborts the process).
  std::ostringstream bytes;
  ar.save_to(bytes);
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw FileError("create the folder", dir.string(), lower(ec.message()));
  write_file_atomic(path, bytes.str());
}

// Any failure to read it back is CheckpointUnreadable; the network and optimizer may then hold
// part of it, and the job builds them afresh before it trains from scratch.
Progress load_checkpoint(const std::string& path, model::Network& net, torch::optim::Optimizer& opt,
                         const torch::Device& device) {
  torch::serialize::InputArchive ar, model_ar, opt_ar;
  auto get = [&](const char* key) {
    torch::Tensor t;
    ar.read(key, t);
    return t;
  };
  Progress p;
  try {
    ar.load_from(path, device);
    ar.read("model", model_ar);
    ar.read("optimizer", opt_ar);
    net->load(model_ar);
    opt.load(opt_ar);
    p.epoch = get("epoch").item<int64_t>();
    p.step = get("step").item<int64_t>();
    p.scale = get("scale").item<double>();
    p.good_steps = get("good_steps").item<int64_t>();
    p.loss_sum = get("loss_sum").item<double>();
    p.correct = get("correct").item<int64_t>();
    p.seen = get("seen").item<int64_t>();
    p.train_s = get("train_s").item<double>();
    if (torch::Tensor t; ar.try_read("steps_per_epoch", t)) p.steps = t.item<int64_t>();
  } catch (const c10::Error& e) {
    throw CheckpointUnreadable(path, first_line(e.what_without_backtrace()));
  } catch (const std::runtime_error& e) {   // the archive's own checks
    throw CheckpointUnreadable(path, first_line(e.what()));
  }
  if (p.epoch < 0 || p.step < 0 || p.seen < 0 || p.correct < 0 || !(p.scale > 0))
    throw CheckpointUnreadable(path, "its progress counters are out of range");
  return p;
}

bool all_finite(model::Network& net) {
  for (const auto& p : net->parameters())
    if (!torch::isfinite(p).all().item<bool>()) return false;
  return true;
}

} // namespace

void load_weights(const std::string& path, model::Network& net) {
  torch::serialize::InputArchive ar, model_ar;
  try {
    ar.load_from(path, torch::kCPU);
    ar.read("model", model_ar);
    net->load(model_ar);
  } catch (const c10::Error& e) {
    throw CheckpointUnreadable(path, first_line(e.what_without_backtrace()));
  } catch (const std::runtime_error& e) {
    throw CheckpointUnreadable(path, first_line(e.what()));
  }
}

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
  if (hp.schedule == config::Schedule::constant || total <= warmup) return hp.lr;
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

int64_t eval_batch(int64_t configured, const torch::Device& device) {
  if (configured > 0) return configured;
  return device.is_cuda() ? 1024 : 128;
}

Evaluation evaluate(model::Network& net, const data::StudyData& data, const data::Split& split,
                    int64_t batch_size, const FitPlan& plan) {
  Evaluation e;
  const int64_t n = split.size();
  if (n == 0) return {std::nan(""), std::nan("")};
  torch::NoGradGuard no_grad;
  net->eval();
  const auto device = split.images.device();
  const bool autocast = autocasts(plan.precision, device);
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

namespace {

// One fit() call: the epochs from the checkpoint's to the plan's budget.
class Fit {
public:
  Fit(model::Network& net, const data::StudyData& data, const FitPlan& plan, const FitHooks& hooks);
  FitOutcome run();

private:
  bool run_epoch(int64_t epoch);                       // false: stopped inside it (out_ says how)
  bool stopped_at(int64_t step, Clock::time_point epoch_start);
  struct Sums {
    double loss = 0;              // loss x samples
    int64_t correct = 0, seen = 0;
  };
  Sums epoch_sums();
  Sums checked_sums(int64_t epoch, int64_t step, double lr);
  EpochStats end_epoch(int64_t epoch, Clock::time_point epoch_start, int64_t epoch_samples, double lr);
  void check_steps(const Progress& p, const std::string& path) const;

  model::Network& net_;
  const data::StudyData& data_;
  const FitPlan& plan_;
  const FitHooks& hooks_;
  const torch::Device device_;
  const int64_t n_, b_, steps_, total_steps_, warmup_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::unique_ptr<TrainStep> step_;
  Progress st_;
  FitOutcome out_;
  torch::Generator gen_, order_gen_;
  double share_ = 1;                                   // this rank's share of the current batch
};

int64_t checked_size(const data::StudyData& data) {
  const int64_t n = data.train.size();
  if (n < 2) throw UsageError("the training split has " + std::to_string(n) + " samples: too few to train");
  return n;
}

// Steps of an epoch of n samples in batches of b over `world` ranks: a last batch of one sample
// would break batch norm, and one smaller than `world` would leave a rank without samples, so
// it is left out of the epoch.
int64_t steps_of(int64_t n, int64_t b, int64_t world) {
  const int64_t last = n % b;
  // each rank's share of the last batch must hold 2 samples (1 rank: the old rule, a batch of 1)
  return last != 0 && last < (world > 1 ? 2 * world : 2) ? n / b : (n + b - 1) / b;
}

int64_t checked_batch(const FitPlan& plan, int64_t n) {
  const int64_t b = std::min<int64_t>(plan.hp.batch_size, n);
  if (plan.world < 1 || plan.rank < 0 || plan.rank >= plan.world)
    throw UsageError("rank " + std::to_string(plan.rank) + " of " + std::to_string(plan.world) + " ranks");
  if (plan.world > 1 && b < 2 * plan.world)   // a rank's slice of one sample breaks batch norm
    throw UsageError("a batch of " + std::to_string(b) + " samples cannot be shared by " + std::to_string(plan.world) +
                     " ranks (each needs at least 2)");
  return b;
}

Fit::Fit(model::Network& net, const data::StudyData& data, const FitPlan& plan, const FitHooks& hooks)
    : net_(net), data_(data), plan_(plan), hooks_(hooks), device_(data.train.images.device()), n_(checked_size(data)),
      b_(checked_batch(plan, n_)), steps_(steps_of(n_, b_, plan.world)),
      total_steps_(std::max<int64_t>(plan.schedule_epochs, plan.budget_epochs) * steps_),
      warmup_(int64_t(std::llround(plan.hp.warmup_epochs * double(steps_)))), gen_(make_generator(device_, 0)),
      order_gen_(at::make_generator<at::CPUGeneratorImpl>(0)) {
  opt_ = make_optimizer(net_, plan_.hp);
  if (!plan_.checkpoint.empty() && fs::exists(plan_.checkpoint)) {
    st_ = load_checkpoint(plan_.checkpoint, net_, *opt_, device_);
    check_steps(st_, plan_.checkpoint);
  }
  st_.steps = steps_;
  if (plan_.rank > 0) st_.loss_sum = 0, st_.correct = st_.seen = 0;   // rank 0's checkpoint holds every rank's
  step_ = std::make_unique<TrainStep>(net_, *opt_, plan_.precision, device_, plan_.hp.grad_clip,
                                      plan_.loss ? plan_.loss : cross_entropy_loss(plan_.hp.label_smoothing));
  if (plan_.after_backward) step_->after_backward = [this] { plan_.after_backward(share_); };
  step_->scale = st_.scale;
  step_->good_steps = st_.good_steps;
  out_.epochs_done = int(st_.epoch);
}

// A checkpoint written inside an epoch resumes at a step of it: only with the epoch length it
// was written with, which differs when the ranks differ and the last batch is kept by one count
// and left out by the other. (At an epoch's end the schedule, a fraction of the epochs, goes on
// the same with either length.)
void Fit::check_steps(const Progress& p, const std::string& path) const {
  if (p.steps == 0 || p.steps == steps_ || p.step == 0) return;
  throw UsageError("checkpoint '" + path + "' was written by a run of " + std::to_string(p.steps) +
                   " steps an epoch; this one has " + std::to_string(steps_) + " (" + std::to_string(n_) +
                   " samples in batches of " + std::to_string(b_) + " over " + std::to_string(plan_.world) +
                   " rank(s)): resume it with the ranks it was written with");
}

FitOutcome Fit::run() {
  for (int64_t epoch = st_.epoch; epoch < plan_.budget_epochs; ++epoch) {
    if (!run_epoch(epoch)) return out_;
    if (epoch + 1 < plan_.budget_epochs && hooks_.end_early && hooks_.end_early()) {
      out_.ended_early = true;
      break;
    }
  }
  out_.train_s = st_.train_s;
  return out_;
}

// Between steps: a lost lease ends the fit without a word; a stop request checkpoints first.
bool Fit::stopped_at(int64_t step, Clock::time_point epoch_start) {
  if (hooks_.lease_lost && hooks_.lease_lost()) {   // another worker owns the trial and its checkpoint now
    out_.stopped = out_.lease_lost = true;
  } else if (hooks_.should_stop && hooks_.should_stop()) {
    const Sums sums = epoch_sums();
    st_.step = step;
    st_.loss_sum = sums.loss;
    st_.correct = sums.correct;
    st_.seen = sums.seen;
    st_.train_s += seconds_since(epoch_start);
    st_.scale = step_->scale;
    st_.good_steps = step_->good_steps;
    if (!plan_.checkpoint.empty() && plan_.write_checkpoint) save_checkpoint(plan_.checkpoint, net_, *opt_, st_);
    out_.stopped = true;
    out_.train_s = st_.train_s;
  } else {
    return false;
  }
  out_.step = step;
  out_.steps = steps_;
  return true;
}

// The epoch's sums so far (one read, which synchronises the device), over every rank.
Fit::Sums Fit::epoch_sums() {
  Sums s{st_.loss_sum + step_->loss_sum().item<double>(), st_.correct + step_->correct().item<int64_t>(), st_.seen};
  if (plan_.world > 1 && plan_.reduce_sums) {
    torch::Tensor t = torch::tensor({s.loss, double(s.correct), double(s.seen)}, torch::kFloat64);
    plan_.reduce_sums(t);
    s = {t[0].item<double>(), int64_t(std::llround(t[1].item<double>())), int64_t(std::llround(t[2].item<double>()))};
  }
  return s;
}

// Every few steps: the epoch's sums so far, after the NaN/Inf guard (every rank agrees on it).
Fit::Sums Fit::checked_sums(int64_t epoch, int64_t step, double lr) {
  const Sums s = epoch_sums();
  if (!std::isfinite(s.loss))
    throw Diverged("loss became " + std::string(std::isnan(s.loss) ? "NaN" : "Inf") + " at epoch " + std::to_string(epoch + 1) +
                   ", step " + std::to_string(step + 1) + " (lr " + std::to_string(lr) + ")");
  return s;
}

bool Fit::run_epoch(int64_t epoch) {
  const auto epoch_start = Clock::now();
  const int64_t report_every = 25;
  int64_t epoch_samples = 0;
  order_gen_.set_current_seed(mix_seed(plan_.seed, uint64_t(epoch)));
  torch::Tensor perm = torch::randperm(n_, order_gen_, torch::kInt64).to(device_);
  net_->train();
  step_->reset_sums();
  double lr = 0;
  for (int64_t step = st_.step; step < steps_; ++step) {
    if (stopped_at(step, epoch_start)) return false;
    const auto t0 = Clock::now();
    const int64_t at = step * b_, bs = std::min(b_, n_ - at);
    // this rank's slice [lo, hi) of the batch; augmented, the whole batch's random draws first
    const int64_t lo = bs * plan_.rank / plan_.world, hi = bs * (plan_.rank + 1) / plan_.world;
    torch::Tensor idx = perm.narrow(0, at, bs);
    const int64_t global = epoch * steps_ + step;
    gen_.set_current_seed(mix_seed(plan_.seed ^ 0x6175676dULL, uint64_t(global)));
    torch::Tensor x;
    if (plan_.world > 1 && (data_.flip || data_.crop)) {
      x = data::gather_batch(data_, data_.train, idx, true, gen_).narrow(0, lo, hi - lo);
      idx = idx.narrow(0, lo, hi - lo);
    } else {
      idx = idx.narrow(0, lo, hi - lo);
      x = data::gather_batch(data_, data_.train, idx, true, gen_);
    }
    share_ = double(hi - lo) / double(bs);
    if (plan_.channels_last) x = model::to_channels_last(x);
    torch::Tensor y = data_.train.labels.index_select(0, idx);
    lr = plan_.anneal_from_epoch >= 0
             ? lr_at(plan_.hp, global, total_steps_, warmup_, plan_.anneal_from_epoch * steps_, plan_.budget_epochs * steps_)
             : lr_at(plan_.hp, global, total_steps_, warmup_);
    set_lr(*opt_, lr);
    step_->run(x, y, idx, epoch);
    epoch_samples += hi - lo;
    st_.seen += hi - lo;
    if ((step + 1) % report_every == 0 || step + 1 == steps_) {
      const Sums sums = checked_sums(epoch, step, lr);
      if (hooks_.on_progress)
        hooks_.on_progress(int(epoch + 1), step + 1, steps_, sums.loss / double(sums.seen),
                           double(sums.correct) / double(sums.seen),
                           double(epoch_samples) / std::max(1e-9, seconds_since(epoch_start)));
    }
    const double busy = seconds_since(t0);
    out_.busy_s += busy;
    if (hooks_.on_busy) hooks_.on_busy(busy);
  }
  out_.samples += epoch_samples;
  if (!all_finite(net_)) throw Diverged("weights became NaN or Inf in epoch " + std::to_string(epoch + 1));
  const EpochStats es = end_epoch(epoch, epoch_start, epoch_samples, lr);
  if (hooks_.on_epoch) hooks_.on_epoch(es);
  return true;
}

// The epoch's statistics and validation, then its checkpoint (before on_epoch records it).
EpochStats Fit::end_epoch(int64_t epoch, Clock::time_point epoch_start, int64_t epoch_samples, double lr) {
  EpochStats es;
  es.epoch = int(epoch + 1);
  const Sums sums = epoch_sums();
  es.train_loss = sums.loss / double(sums.seen);
  es.train_acc = double(sums.correct) / double(sums.seen);
  const auto eval_start = Clock::now();
  const Evaluation val = evaluate(net_, data_, data_.validation, plan_.eval_batch_size, plan_);
  es.val_s = seconds_since(eval_start);
  if (hooks_.on_busy) hooks_.on_busy(es.val_s);
  out_.busy_s += es.val_s;
  es.val_loss = val.loss;
  es.val_acc = val.acc;
  es.lr = lr;
  es.wall_s = seconds_since(epoch_start);
  es.samples_per_s = double(epoch_samples) / std::max(1e-9, es.wall_s);
  st_.train_s += es.wall_s;
  st_.epoch = epoch + 1;
  st_.step = 0;
  st_.loss_sum = 0;
  st_.correct = st_.seen = 0;
  st_.scale = step_->scale;
  st_.good_steps = step_->good_steps;
  if (!plan_.checkpoint.empty() && plan_.write_checkpoint) save_checkpoint(plan_.checkpoint, net_, *opt_, st_);
  out_.epochs_done = int(st_.epoch);
  out_.last = es;
  return es;
}

} // namespace

FitOutcome fit(model::Network& net, const data::StudyData& data, const FitPlan& plan, const FitHooks& hooks) {
  return Fit(net, data, plan, hooks).run();
}

} // namespace nas::train
