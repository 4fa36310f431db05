// job: training one claimed trial (see job.h). The worker around it (lib/nas/worker) claims,
// renews the lease, releases on a stop and fails an attempt that throws.
#include "nas/train/job.h"
#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/random.h"
#include "nas/core/sha256.h"
#include "nas/core/text.h"
#include "nas/model/network.h"
#include "nas/search/early_stop.h"
#include "nas/search/policy.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"
#include "nas/store/results.h"

#ifdef NAS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace nas::train {

// One claimed trial while it trains.
struct TrainJob::Trial {
  store::Claim claim;
  std::string tag;                   // "trial N"
  store::TrialRecord rec;
  space::Cost cost;
  model::Network net{nullptr};
  FitPlan plan;
  std::string ckpt_rel;              // the checkpoint, relative to the artifact folder
  bool resumed = false;              // a checkpoint existed when the attempt started
  std::string early;                 // why it stopped before its budget ([budget] early_stop)
  std::chrono::steady_clock::time_point last_line = std::chrono::steady_clock::now();
};

void TrainJob::in_thread(int slot, const std::function<void()>& loop) {
  (void)slot;
  torch::InferenceMode off(false);
  at::set_num_threads(ctx_.threads_per_slot);
#ifdef NAS_WITH_CUDA
  // each slot on its own stream: packed trainings overlap on one GPU
  std::optional<c10::cuda::CUDAStreamGuard> stream;
  if (ctx_.dev.device.is_cuda()) stream.emplace(c10::cuda::getStreamFromPool(false, ctx_.dev.device.index()));
#endif
  loop();
}

// The trial's hyperparameters (drawn once, stored), network (initial weights from the trial's
// seed) and plan (budget, schedule, checkpoint path).
TrainJob::Trial TrainJob::prepare(worker::Slot& slot, const store::Claim& claim) {
  Trial t;
  t.claim = claim;
  t.tag = "trial " + std::to_string(claim.trial_id);
  store::Db& db = slot.db();
  t.rec = store::load_trial(db, claim.trial_id);
  const auto& tc = ctx_.cfg.train;
  space::HParams hp = space::draw_hparams(ctx_.cfg, t.rec.hash);
  if (t.rec.hparams.empty()) t.rec.hparams = store::ensure_hparams(db, claim.trial_id, space::hparams_json(hp));
  hp = space::parse_hparams(t.rec.hparams, hp);
  const space::Genome genome = space::genome_from_json(t.rec.genome);
  const space::CostContext cc = space::cost_context(ctx_.cfg);
  t.cost = space::estimate_cost(genome, cc);
  const uint64_t seed = Rng(ctx_.cfg.seed, std::stoull(t.rec.hash.substr(0, 15), nullptr, 16)).next() >> 1;
  {
    // LibTorch initialises weights from its global generator: seeded per trial under a lock,
    // so the initial weights depend only on the trial.
    std::lock_guard<std::mutex> lock(ctx_.init_mutex);
    torch::manual_seed(seed);
    t.net = model::Network(genome, cc);
  }
  t.net->to(ctx_.dev.device);
  // Channels-last on every device: cuDNN's tensor-core kernels want it, and on the CPU oneDNN's
  // depthwise convolutions run up to 3x faster in it (an mbconv candidate of the example went
  // from 460 to 1,100 samples/s on 2 cores; the 3-conv CNN of bench/train-epoch 12.3 -> 9 s).
  t.net->to_channels_last();
  // Batch norm and its activation as one step on the CPU: 2 of the 5 passes over memory they
  // took apart (bench/train-epoch).
  t.net->set_fused_batch_norm(true);
  FitPlan& plan = t.plan;
  plan.hp = hp;
  plan.schedule_epochs = tc.epochs;
  plan.budget_epochs = int64_t(std::ceil(claim.budget.value_or(double(tc.epochs))));
  if (ctx_.cfg.budget.anneal) plan.anneal_from_epoch = store::rung_start_epoch(db, claim.trial_id, claim.rung);
  plan.precision = ctx_.precision;
  plan.channels_last = true;
  plan.seed = seed;
  plan.eval_batch_size = eval_batch(tc.eval_batch_size, ctx_.dev.device);
  t.ckpt_rel = "checkpoints/trial-" + std::to_string(claim.trial_id) + ".pt";
  plan.checkpoint = (fs::path(store::artifact_dir(ctx_.db)) / t.ckpt_rel).string();
  if (int n = remove_stale_temps(plan.checkpoint, slot.policy().lease_s))
    log::info(t.tag + ": removed " + std::to_string(n) + " unfinished checkpoint " + (n == 1 ? "file" : "files") +
              " of a writer that stopped");
  t.resumed = fs::exists(plan.checkpoint);
  plan.loss = loss(slot, claim);
  return t;
}

// A line every few steps: live on a terminal, else every 30 s.
static void progress_line(worker::Slot& slot, const std::string& tag, int64_t budget, int epoch,
                          int64_t step, int64_t steps, double loss, double acc, double sps,
                          std::chrono::steady_clock::time_point& last_line) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s epoch %d/%lld step %lld/%lld loss %.4f acc %.2f%% %.0f samples/s", tag.c_str(),
                epoch, (long long)budget, (long long)step, (long long)steps, loss, 100 * acc, sps);
  if (log::live_enabled()) {
    log::live(slot.index(), buf);
  } else if (std::chrono::steady_clock::now() - last_line > std::chrono::seconds(30)) {
    log::info(buf);
    last_line = std::chrono::steady_clock::now();
  }
}

FitHooks TrainJob::hooks(worker::Slot& slot, Trial& t) {
  FitHooks h;
  const int64_t id = t.claim.trial_id;
  h.should_stop = [&slot] { return slot.should_stop(); };
  h.lease_lost = [&slot, id] { return slot.lease_lost(id); };
  h.on_busy = [&slot](double sec) { slot.ledger().add_busy(slot.index(), sec); };
  h.on_progress = [&slot, &t](int epoch, int64_t step, int64_t steps, double loss, double acc, double sps) {
    progress_line(slot, t.tag, t.plan.budget_epochs, epoch, step, steps, loss, acc, sps, t.last_line);
  };
  // after each epoch: its curve and checkpoint in the study file, a line, the early-stop verdict
  h.on_epoch = [&slot, &t](const EpochStats& e) {
    store::Db& db = slot.db();
    const int64_t trial = t.claim.trial_id;
    store::record_epoch(db, trial, slot.worker_id(), t.claim.rung, e.epoch,
                        {{"train_loss", e.train_loss, "", ""}, {"train_acc", e.train_acc, "", ""},
                         {"val_loss", e.val_loss, "", ""}, {"val_acc", e.val_acc, "", ""}, {"lr", e.lr, "", ""},
                         {"wall_s", e.wall_s, "s", ""}, {"val_s", e.val_s, "s", ""},
                         {"samples_per_s", e.samples_per_s, "1/s", ""}});
    int64_t bytes = 0;
    const std::string sha = sha256_file(t.plan.checkpoint, &bytes);
    store::record_artifact(db, trial, "checkpoint", t.ckpt_rel, sha, bytes);
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s epoch %d/%lld: train loss %.4f acc %.2f%%, val loss %.4f acc %.2f%%, %.1f s, %.0f samples/s",
                  t.tag.c_str(), e.epoch, (long long)t.plan.budget_epochs, e.train_loss, 100 * e.train_acc, e.val_loss,
                  100 * e.val_acc, e.wall_s, e.samples_per_s);
    log::info(buf);
    t.last_line = std::chrono::steady_clock::now();
    t.early = search::early_stop_reason(db, slot.policy(), trial, t.claim.rung, e.epoch, t.plan.budget_epochs);
  };
  h.end_early = [&t] { return !t.early.empty(); };
  return h;
}

// LibTorch's errors as the worker's: out of memory and other failures of the attempt, and the
// faults of the device (a CUDA or cuDNN error leaves the process's context unusable).
worker::JobResult TrainJob::run(worker::Slot& slot, const store::Claim& claim) {
  try {
    return train(slot, claim);
  } catch (const c10::OutOfMemoryError& e) {
    throw worker::TrialFailed("out of memory", first_line(e.what_without_backtrace()), true);
  } catch (const c10::Error& e) {
    const std::string what = first_line(e.what_without_backtrace());
    if (what.find("CUDA error") != std::string::npos || what.find("CUDNN_STATUS") != std::string::npos)
      throw worker::EnvironmentFault("the device failed: " + what);
    throw worker::TrialFailed("error", "LibTorch: " + what, true);
  }
}

worker::JobResult TrainJob::train(worker::Slot& slot, const store::Claim& claim) {
  Trial t = prepare(slot, claim);
  log::info(t.tag + (t.resumed ? ": resuming " : ": training ") + t.rec.arch + " to epoch " +
            std::to_string(t.plan.budget_epochs) + " on " + ctx_.dev.name + " (" + config::to_string(ctx_.precision) +
            ", attempt " + std::to_string(claim.attempts) + ")");
  slot.ledger().tick();
  const double joules_before = slot.ledger().slot_joules(slot.index());
  const FitOutcome out = fit_trial(slot, t);
  worker::JobResult r;
  if (out.lease_lost) {
    r.end = worker::JobResult::End::lease_lost;
    return r;
  }
  if (out.stopped) {
    log::info(t.tag + ": checkpointed in epoch " + std::to_string(out.epochs_done + 1) + " at step " +
              std::to_string(out.step) + "/" + std::to_string(out.steps));
    r.end = worker::JobResult::End::stopped;
    r.values = {out.epochs_done};
    return r;
  }
  return record(slot, t, out, joules_before);
}

// fit(), and once more from scratch when the checkpoint cannot be read back (a disk filled or a
// node died while it was written elsewhere, or someone truncated it): the file is removed, the
// network rebuilt from the trial's seed, and the log says so. Divergence ends the trial.
FitOutcome TrainJob::fit_trial(worker::Slot& slot, Trial& t) {
  try {
    try {
      return fit(t.net, ctx_.data, t.plan, hooks(slot, t));
    } catch (const CheckpointUnreadable& e) {
      std::error_code ec;
      fs::remove(e.path(), ec);
      if (ec) throw FileError("remove", e.path(), lower(ec.message()));
      log::warning(t.tag + ": " + e.what() + ": removed; training from scratch");
      t = prepare(slot, t.claim);
      return fit(t.net, ctx_.data, t.plan, hooks(slot, t));
    }
  } catch (const Diverged& e) {
    throw worker::TrialFailed("diverged", e.what(), false);
  }
}

// The trial's energy in this attempt: its busy-time share of the device counter.
static std::pair<std::optional<double>, std::string> attempt_energy(worker::Slot& slot, double joules_before,
                                                                     bool resumed) {
  worker::EnergyLedger& ledger = slot.ledger();
  ledger.tick();
  if (!ledger.known()) return {std::nullopt, "unknown: " + ledger.note()};
  std::string note = ledger.note();
  if (slot.slots() > 1) note = "busy-time share of " + note;
  if (resumed) note += "; this attempt only";
  return {ledger.slot_joules(slot.index()) - joules_before, note};
}

worker::JobResult TrainJob::record(worker::Slot& slot, Trial& t, const FitOutcome& out, double joules_before) {
  const auto eval_start = std::chrono::steady_clock::now();
  const int64_t eb = t.plan.eval_batch_size;
  const Evaluation val = evaluate(t.net, ctx_.data, ctx_.data.validation, eb, t.plan);
  const Evaluation test = evaluate(t.net, ctx_.data, ctx_.data.test, eb, t.plan);
  slot.ledger().add_busy(slot.index(), std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count());
  const auto [energy, energy_note] = attempt_energy(slot, joules_before, t.resumed);
  const double sps = out.busy_s > 0 ? double(out.samples) / out.busy_s : 0;
  std::optional<double> mfu;
  std::string mfu_note = ctx_.peak_note;
  if (ctx_.peak && out.busy_s > 0) mfu = double(t.cost.macs) * 6.0 * sps / *ctx_.peak;
  if (out.samples == 0) mfu_note = "nothing trained in this attempt";
  // A trial stopped early is done: it will not be promoted, and its results stay in its rung.
  const double budget = t.claim.budget.value_or(double(ctx_.cfg.train.epochs));
  const store::TrialState to =
      budget >= search::last_budget(ctx_.cfg) || out.ended_early ? store::TrialState::done : store::TrialState::paused;
  std::vector<store::ResultValue> results = {
      {"val_acc", val.acc, "", ""},
      {"val_loss", val.loss, "", ""},
      {"test_acc", test.acc, "", "reported only; never used for a decision"},
      {"test_loss", test.loss, "", ""},
      {"train_loss", out.epochs_done > 0 && out.last.epoch ? std::optional<double>(out.last.train_loss) : std::nullopt, "", ""},
      {"epochs", double(out.epochs_done), "epoch", ""},
      {"wall_s", out.train_s, "s", "training time over every attempt"},
      {"samples_per_s", out.samples ? std::optional<double>(sps) : std::nullopt, "1/s", "busy time of this attempt"},
      {"mfu", mfu, "", mfu_note},
      {"energy_j", energy, "J", energy_note},
      {"device", std::nullopt, "", ctx_.dev.name + (ctx_.dev.model == "cpu" ? "" : " (" + ctx_.dev.model + ")") +
                                       ", " + config::to_string(ctx_.precision)},
  };
  for (auto& v : extra_results(slot, t.claim)) results.push_back(std::move(v));
  store::Db& db = slot.db();
  db.write([&] {
    store::record_results(db, t.claim.trial_id, t.claim.rung, results);
    store::finish(db, t.claim.trial_id, slot.worker_id(), to, out.ended_early ? t.early : "");
  });
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s %s: val acc %.2f%%, test acc %.2f%%, %d epochs, %.1f s", t.tag.c_str(),
                store::to_string(to).c_str(),
                100 * val.acc, 100 * test.acc, out.epochs_done, out.train_s);
  log::info(buf + (out.ended_early ? " (" + t.early + ")" : std::string()));
  worker::JobResult r;
  r.state = to;
  r.values = {out.epochs_done, val.acc, test.acc, out.train_s, energy ? nlohmann::json(*energy) : nlohmann::json()};
  r.note = out.ended_early ? "early stop" : "";
  return r;
}

} // namespace nas::train
