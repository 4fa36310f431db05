// worker: trainer threads over the trial queue.
//
// One process holds the study's data once on its device. Each of its K trainer threads is a
// worker of its own in the study file (its own connection, lease owner and RNG; on CUDA its own
// stream), claims a trial, trains it with checkpoints, writes the trial's results and its
// state change in one transaction, and claims the next. A heartbeat thread renews every
// trainer's leases, notices a lease lost to another worker (the trainer then drops its trial),
// and reads the device's energy counter, which the ledger shares among the trainers by busy time.
//
// Stopping. A signal (SIGTERM, SIGUSR1, SIGINT) or the deadline minus the grace period makes
// every trainer checkpoint at its current step and release its trial to 'queued' without
// counting the attempt; the process then exits 0. SIGKILL leaves the lease to expire; the next
// claim resumes from the last checkpoint.
#include "nas/train/worker.h"
#include "nas/config/study_config.h"
#include "nas/core/deadline.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/random.h"
#include "nas/core/sha256.h"
#include "nas/core/signals.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/data/dataset.h"
#include "nas/measure/energy.h"
#include "nas/model/device.h"
#include "nas/model/network.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"
#include "nas/store/results.h"
#include "nas/store/study.h"
#include "nas/train/fit.h"
#include "nas/train/pack.h"
#include "nas/train/policy.h"

#ifdef NAS_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <csignal>
#include <thread>

namespace fs = std::filesystem;

namespace nas::train {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct DeviceInfo {
  torch::Device device{torch::kCPU};
  std::string name = "cpu";      // cpu | cuda:N
  std::string model;             // the GPU's name, or "cpu"
  std::string pci_bus_id;
  int64_t free_bytes = 0;
};

DeviceInfo resolve_device(const std::string& want) {
  DeviceInfo d;
  d.device = model::parse_device(want);
  if (d.device.is_cpu()) {
    d.model = "cpu";
    return d;
  }
  const int index = d.device.index();
  d.name = "cuda:" + std::to_string(index);
#ifdef NAS_WITH_CUDA
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(index);
  d.model = p->name;
  char bus[32];
  std::snprintf(bus, sizeof bus, "%08x:%02x:%02x.0", p->pciDomainID, p->pciBusID, p->pciDeviceID);
  d.pci_bus_id = bus;
  size_t free = 0, total = 0;
  c10::cuda::CUDAGuard guard(int8_t(index));
  if (cudaMemGetInfo(&free, &total) == cudaSuccess) d.free_bytes = int64_t(free);
#endif
  return d;
}

// Peak FLOP/s of the device for the precision (dense tensor-core figures for GPUs), or nullopt
// with the reason. NAS_PEAK_FLOPS overrides.
std::optional<double> peak_flops(const DeviceInfo& d, const std::string& precision, std::string& note) {
  if (const char* env = std::getenv("NAS_PEAK_FLOPS")) {
    char* end = nullptr;
    double v = std::strtod(env, &end);
    if (end != env && v > 0) {
      note = "peak from NAS_PEAK_FLOPS";
      return v;
    }
  }
  struct Peak { const char* name; double half, tf32; };
  static const Peak peaks[] = {{"h100", 989e12, 494e12}, {"h200", 989e12, 494e12}, {"a100", 312e12, 156e12},
                               {"l40s", 362e12, 183e12}, {"a10", 125e12, 62.5e12}, {"v100", 125e12, 15.7e12}};
  const std::string m = lower(d.model);
  for (const auto& p : peaks)
    if (m.find(p.name) != std::string::npos) {
      note = "peak of " + d.model + " (" + (precision == "fp32" ? "tf32" : precision) + ", dense)";
      return precision == "fp32" ? p.tf32 : p.half;
    }
  note = "unknown: the peak FLOP/s of '" + d.model + "' is not known (set NAS_PEAK_FLOPS)";
  return std::nullopt;
}

std::string resolve_precision(const std::string& p, const DeviceInfo& d) {
  if (!d.device.is_cuda()) {
    if (p == "bf16" || p == "fp16") log::warning("precision " + p + " is for CUDA devices: training in fp32 on the CPU");
    return "fp32";
  }
  if (p != "auto") return p;
#ifdef NAS_WITH_CUDA
  return at::cuda::getDeviceProperties(d.device.index())->major >= 8 ? "bf16" : "fp16";
#else
  return "fp32";
#endif
}

std::string file_sha256(const std::string& path, int64_t& bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes = int64_t(data.size());
  return sha256_hex(data);
}

// What every trainer of the process shares.
struct Shared {
  TrainOptions opts;
  config::StudyConfig cfg;
  DeviceInfo dev;
  std::string precision;
  data::StudyData data;
  std::unique_ptr<measure::EnergyLedger> ledger;
  store::QueuePolicy policy;
  double deadline = std::numeric_limits<double>::infinity();
  std::optional<double> peak;
  std::string peak_note;
  int threads_per_trainer = 1;
  std::mutex init_mutex;               // the global RNG while a network is built
  std::vector<std::atomic<int64_t>> worker_ids, current_trial;
  std::vector<std::atomic<int64_t>> lost_trial;   // per trainer: the trial whose lease it lost

  std::atomic<bool> failed{false};     // a --trial run failed, or a trainer hit a database error
  std::mutex rows_mutex;
  Table rows{{"trial", "state", "epochs", "val_acc", "test_acc", "wall_s", "energy_j", "reason"}};

  explicit Shared(int k) : worker_ids(size_t(k)), current_trial(size_t(k)), lost_trial(size_t(k)) {}
  bool lost(int slot, int64_t trial) const { return lost_trial[size_t(slot)] == trial; }

  bool deadline_near() const { return now_unix() + opts.grace_s >= deadline; }
  void add_row(std::vector<nlohmann::json> row) {
    std::lock_guard<std::mutex> lock(rows_mutex);
    rows.add(std::move(row));
  }
};

std::string signal_name(int sig) {   // strsignal() is not thread-safe
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "signal " + std::to_string(sig);
  }
}

std::string stop_reason(const Shared& s, int slot, int64_t trial) {
  if (s.lost(slot, trial)) return "lease lost";
  if (int sig = stop_signal()) return signal_name(sig);
  return "deadline";
}

class Trainer {
public:
  Trainer(Shared& s, int slot) : s_(s), slot_(slot) {}
  void run();
private:
  // Trains one claimed trial to its budget and records it. Throws LeaseLost, DbError, and any
  // other error of the attempt (run() fails the attempt).
  void train(store::Db& db, int64_t wid, const store::Claim& claim);
  void fail_attempt(store::Db& db, int64_t wid, int64_t id, std::string what);
  Shared& s_;
  int slot_;
};

void Trainer::run() {
  torch::InferenceMode off(false);
  at::set_num_threads(s_.threads_per_trainer);
#ifdef NAS_WITH_CUDA
  std::optional<c10::cuda::CUDAStreamGuard> stream;
  if (s_.dev.device.is_cuda())
    stream.emplace(c10::cuda::getStreamFromPool(false, s_.dev.device.index()));
#endif
  std::optional<store::Db> db;
  int64_t wid = 0;
  int64_t trained = 0;
  bool first = true;
  bool waiting = false, rechecked = false;
  try {
    db.emplace(store::Db::open(s_.opts.db, store::OpenMode::existing));
    wid = store::register_worker(*db, store::this_worker(s_.dev.name));
    s_.worker_ids[size_t(slot_)] = wid;
    while (!stop_requested() && !s_.deadline_near()) {
      if (s_.opts.max_trials && trained >= *s_.opts.max_trials) break;
      std::optional<store::Claim> claim;
      if (s_.opts.trial) {
        if (!first) break;
        std::string state;
        claim = store::claim_trial(*db, wid, *s_.opts.trial, double(s_.cfg.train.epochs), s_.policy, state);
        if (!claim) {
          const bool nothing_to_do = state == "done" || state == "paused";
          log::info("trial " + std::to_string(*s_.opts.trial) + " is " + state +
                    (nothing_to_do ? ": nothing to train" : ": not trained"));
          if (!nothing_to_do) s_.failed = true;
        }
      } else {
        claim = store::claim_next(*db, wid, s_.policy);
      }
      first = false;
      if (!claim && !s_.opts.trial && s_.policy.synchronous) {
        // Synchronous successive halving: a rung promotes once every trial of it has finished.
        // Wait for the ones still running below the last rung (another worker's or another
        // trainer's of this pack); when none is, look once more (the last may have finished
        // since the claim) and stop.
        if (store::count_running_below(*db, s_.policy.last_rung()) > 0) {
          if (!waiting) log::info("trainer " + std::to_string(slot_) + ": waiting for the running trials to complete their rung");
          waiting = true;
          for (int i = 0; i < 20 && !stop_requested() && !s_.deadline_near(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        if (!rechecked) {
          rechecked = true;
          continue;
        }
      }
      waiting = rechecked = false;
      if (!claim) break;
      s_.current_trial[size_t(slot_)] = claim->trial_id;
      try {
        train(*db, wid, *claim);
      } catch (const LeaseLost& e) {
        log::warning("trial " + std::to_string(claim->trial_id) + ": " + e.what() + ": dropped");
      } catch (const DbError&) {
        throw;
      } catch (const std::exception& e) {
        fail_attempt(*db, wid, claim->trial_id, e.what());
      }
      s_.current_trial[size_t(slot_)] = 0;
      ++trained;
    }
  } catch (const std::exception& e) {
    log::error("trainer " + std::to_string(slot_) + ": " + e.what());
    s_.failed = true;
  }
  try {
    if (db && wid) store::stop_worker(*db, wid);
  } catch (const std::exception& e) {
    log::error("trainer " + std::to_string(slot_) + ": " + e.what());
    s_.failed = true;
  }
}

// An attempt that failed with an error other than divergence: back to the queue while attempts
// are left (out of memory may pass on a less crowded device), else failed.
void Trainer::fail_attempt(store::Db& db, int64_t wid, int64_t id, std::string what) {
  const std::string tag = "trial " + std::to_string(id);
  what = what.substr(0, what.find('\n'));
  const bool oom = lower(what).find("out of memory") != std::string::npos;
  const std::string reason = oom ? "out of memory" : "error";
  try {
    store::fail(db, id, wid, reason, what, true, s_.policy);
  } catch (const LeaseLost&) {
    log::warning(tag + ": failed (" + reason + ") after its lease was lost: " + what);
    return;
  }
  log::warning(tag + ": failed (" + reason + "): " + what);
  s_.add_row({id, "failed", nullptr, nullptr, nullptr, nullptr, nullptr, reason});
  if (s_.opts.trial) s_.failed = true;
}

void Trainer::train(store::Db& db, int64_t wid, const store::Claim& claim) {
  const int64_t id = claim.trial_id;
  const std::string tag = "trial " + std::to_string(id);
  store::TrialRecord rec = store::load_trial(db, id);
  const auto& tc = s_.cfg.train;
  space::HParams hp = space::draw_hparams(tc, s_.cfg.seed, rec.hash);
  if (rec.hparams.empty()) rec.hparams = store::ensure_hparams(db, id, space::hparams_json(hp));
  hp = space::parse_hparams(rec.hparams, hp);
  const double budget = claim.budget.value_or(double(tc.epochs));
  const space::Genome genome = space::genome_from_json(rec.genome);
  const model::CostContext ctx = space::cost_context(s_.cfg);
  const model::Cost cost = model::estimate_cost(genome, ctx);
  const uint64_t trial_seed = Rng(s_.cfg.seed, std::stoull(rec.hash.substr(0, 15), nullptr, 16)).next() >> 1;

  model::Network net{nullptr};
  {
    // LibTorch initialises weights from its global generator: seeded per trial under a lock,
    // so the initial weights depend only on the trial.
    std::lock_guard<std::mutex> lock(s_.init_mutex);
    torch::manual_seed(trial_seed);
    net = model::Network(genome, ctx);
  }
  net->to(s_.dev.device);
  // Channels-last on every device: cuDNN's tensor-core kernels want it, and on the CPU oneDNN's
  // depthwise convolutions run up to 3x faster in it (an mbconv candidate of the example went
  // from 460 to 1,100 samples/s on 2 cores; the 3-conv CNN of bench/train-epoch 12.3 -> 9 s).
  net->to_channels_last();

  FitPlan plan;
  plan.hp = hp;
  plan.schedule_epochs = tc.epochs;
  plan.budget_epochs = int64_t(std::ceil(budget));
  if (s_.cfg.budget.anneal)
    plan.anneal_from_epoch = store::rung_start_epoch(db, id, claim.rung);
  plan.precision = s_.precision;
  plan.channels_last = true;
  plan.seed = trial_seed;
  plan.eval_batch_size = tc.eval_batch_size;
  const std::string ckpt_rel = "checkpoints/trial-" + std::to_string(id) + ".pt";
  plan.checkpoint = (fs::path(store::artifact_dir(s_.opts.db)) / ckpt_rel).string();
  const bool resumed = fs::exists(plan.checkpoint);
  log::info(tag + (resumed ? ": resuming " : ": training ") + rec.arch + " to epoch " +
            std::to_string(plan.budget_epochs) + " on " + s_.dev.name + " (" + s_.precision + ", attempt " +
            std::to_string(claim.attempts) + ")");

  auto last_line = std::chrono::steady_clock::now();
  std::string early;   // why the trial stopped before its budget ([budget] early_stop)
  FitHooks hooks;
  hooks.should_stop = [&] { return stop_requested() || s_.deadline_near(); };
  hooks.lease_lost = [&] { return s_.lost(slot_, id); };
  hooks.on_busy = [&](double sec) { s_.ledger->add_busy(slot_, sec); };
  hooks.on_progress = [&](int epoch, int64_t step, int64_t steps, double loss, double acc, double sps) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s epoch %d/%lld step %lld/%lld loss %.4f acc %.2f%% %.0f samples/s", tag.c_str(),
                  epoch, (long long)plan.budget_epochs, (long long)step, (long long)steps, loss, 100 * acc, sps);
    if (log::live_enabled()) {
      log::live(slot_, buf);
    } else if (std::chrono::steady_clock::now() - last_line > std::chrono::seconds(30)) {
      log::info(buf);
      last_line = std::chrono::steady_clock::now();
    }
  };
  hooks.on_epoch = [&](const EpochStats& e) {
    store::record_epoch(db, id, wid, claim.rung, e.epoch,
                        {{"train_loss", e.train_loss, "", ""}, {"train_acc", e.train_acc, "", ""},
                         {"val_loss", e.val_loss, "", ""}, {"val_acc", e.val_acc, "", ""}, {"lr", e.lr, "", ""},
                         {"wall_s", e.wall_s, "s", ""}, {"samples_per_s", e.samples_per_s, "1/s", ""}});
    int64_t bytes = 0;
    const std::string sha = file_sha256(plan.checkpoint, bytes);
    store::record_artifact(db, id, "checkpoint", ckpt_rel, sha, bytes);
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s epoch %d/%lld: train loss %.4f acc %.2f%%, val loss %.4f acc %.2f%%, %.1f s, %.0f samples/s",
                  tag.c_str(), e.epoch, (long long)plan.budget_epochs, e.train_loss, 100 * e.train_acc, e.val_loss,
                  100 * e.val_acc, e.wall_s, e.samples_per_s);
    log::info(buf);
    last_line = std::chrono::steady_clock::now();
    // Early stopping: inside the rung -- after the previous rung's budget (a trial that started
    // at a later rung by its proxy rank is not judged on the rungs it skipped) and before the
    // rung's last epoch (the promotion's to judge) -- a trial out of the top 1/eta of the trials
    // that reached this epoch ends here.
    if (s_.policy.early_stop && s_.policy.eta > 0 && e.epoch < plan.budget_epochs &&
        (claim.rung == 0 || e.epoch > s_.policy.rung_budget(claim.rung - 1))) {
      const store::EpochStanding st = store::standing_at_epoch(db, id, e.epoch, s_.policy.eta);
      if (st.below()) {
        std::snprintf(buf, sizeof buf, "early stop: val acc %.2f%% at epoch %d is number %lld of %lld, below the top %lld (%.2f%%)",
                      100 * st.value.value_or(0), e.epoch, (long long)st.position, (long long)st.n, (long long)st.keep,
                      100 * st.cutoff.value_or(0));
        early = buf;
      }
    }
  };
  hooks.end_early = [&] { return !early.empty(); };

  s_.ledger->tick();
  const double joules_before = s_.ledger->slot_joules(slot_);
  FitOutcome out;
  try {
    out = fit(net, s_.data, plan, hooks);
  } catch (const Diverged& e) {
    store::fail(db, id, wid, "diverged", e.what(), false, s_.policy);
    log::warning(tag + ": failed: diverged: " + e.what());
    s_.add_row({id, "failed", nullptr, nullptr, nullptr, nullptr, nullptr, "diverged"});
    if (s_.opts.trial) s_.failed = true;
    return;
  }
  if (out.stopped) {
    const std::string why = stop_reason(s_, slot_, id);
    if (out.lease_lost) {
      log::warning(tag + ": lease lost to another worker: dropped without a checkpoint");
      return;
    }
    store::release(db, id, wid, why);
    log::info(tag + ": checkpointed in epoch " + std::to_string(out.epochs_done + 1) + " at step " + std::to_string(out.step) +
              "/" + std::to_string(out.steps) + " and released to the queue (" + why + ")");
    s_.add_row({id, "queued", out.epochs_done, nullptr, nullptr, nullptr, nullptr, why});
    return;
  }

  const auto eval_start = std::chrono::steady_clock::now();
  const Evaluation val = evaluate(net, s_.data, s_.data.validation, tc.eval_batch_size, plan);
  const Evaluation test = evaluate(net, s_.data, s_.data.test, tc.eval_batch_size, plan);
  s_.ledger->add_busy(slot_, std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count());
  s_.ledger->tick();
  std::optional<double> energy;
  std::string energy_note = s_.ledger->note();
  if (s_.ledger->known()) {
    energy = s_.ledger->slot_joules(slot_) - joules_before;
    if (s_.worker_ids.size() > 1) energy_note = "busy-time share of " + energy_note;
    if (resumed) energy_note += "; this attempt only";
  } else {
    energy_note = "unknown: " + energy_note;
  }
  const double sps = out.busy_s > 0 ? double(out.samples) / out.busy_s : 0;
  std::optional<double> mfu;
  std::string mfu_note = s_.peak_note;
  if (s_.peak && out.busy_s > 0) mfu = double(cost.macs) * 6.0 * sps / *s_.peak;
  if (out.samples == 0) mfu_note = "nothing trained in this attempt";
  // The last budget: [budget] max_epochs under successive halving, else [train] epochs.
  const double last = s_.cfg.budget.given ? s_.cfg.budget.max_epochs : double(tc.epochs);
  // A trial stopped early is done: it will not be promoted, and its results stay in its rung.
  const std::string to = budget >= last || out.ended_early ? "done" : "paused";
  const std::vector<store::ResultValue> results = {
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
      {"device", std::nullopt, "", s_.dev.name + (s_.dev.model == "cpu" ? "" : " (" + s_.dev.model + ")") +
                                       ", " + s_.precision},
  };
  db.write([&] {
    store::record_results(db, id, claim.rung, results);
    store::finish(db, id, wid, to, out.ended_early ? early : "");
  });
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s %s: val acc %.2f%%, test acc %.2f%%, %d epochs, %.1f s", tag.c_str(), to.c_str(),
                100 * val.acc, 100 * test.acc, out.epochs_done, out.train_s);
  log::info(buf + (out.ended_early ? " (" + early + ")" : std::string()));
  s_.add_row({id, to, out.epochs_done, val.acc, test.acc, out.train_s, energy ? nlohmann::json(*energy) : nlohmann::json(),
              out.ended_early ? nlohmann::json("early stop") : nlohmann::json()});
}

// Renews leases, notices lost ones, ticks the energy ledger and records worker energy.
void heartbeat_loop(Shared& s, std::atomic<bool>& done) {
  std::optional<store::Db> opened;
  try {
    opened.emplace(store::Db::open(s.opts.db, store::OpenMode::existing));
  } catch (const std::exception& e) {
    // without renewals the leases would run out under the trainers: stop them cleanly instead
    log::error("heartbeat: " + std::string(e.what()) + ": stopping the trainers");
    s.failed = true;
    request_stop(SIGTERM);
    return;
  }
  store::Db& db = *opened;
  const double every = std::clamp(s.policy.lease_s / 4, 0.5, 30.0);
  auto last = std::chrono::steady_clock::now();
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() - last < std::chrono::duration<double>(every)) continue;
    last = std::chrono::steady_clock::now();
    s.ledger->tick();
    for (size_t i = 0; i < s.worker_ids.size(); ++i) {
      try {
        const int64_t wid = s.worker_ids[i];
        if (!wid) continue;
        // The trial is read before the renewal: one a trainer claims meanwhile is not in `held`
        // yet, and must not be taken for lost.
        const int64_t t = s.current_trial[i];
        auto held = store::heartbeat(db, wid, s.policy);
        if (t && s.current_trial[i] == t && std::find(held.begin(), held.end(), t) == held.end()) s.lost_trial[i] = t;
        store::record_worker_energy(db, wid, s.ledger->slot_busy(int(i)), s.ledger->total_joules(),
                                    s.ledger->known() ? "device total of " + std::to_string(s.worker_ids.size()) +
                                                            " trainers in this process; " + s.ledger->note()
                                                      : "unknown: " + s.ledger->note());
      } catch (const std::exception& e) {
        log::warning("heartbeat: " + std::string(e.what()));
      }
    }
  }
}

// The data files are probed again each time (the configuration names them); trials were costed
// with the shape and classes they had when the study was created. Files replaced since by
// others of another shape or number of classes would silently train the wrong networks.
void check_data_matches(store::Db& db, const config::StudyConfig& cfg) {
  std::optional<std::pair<std::string, int64_t>> trial;
  db.read([&] {
    store::Statement q = db.prepare("SELECT genome, params FROM trial WHERE params IS NOT NULL ORDER BY id LIMIT 1");
    if (q.step()) trial = std::make_pair(q.text(0), q.int64(1));
  });
  if (!trial) return;
  const int64_t now = model::estimate_cost(space::genome_from_json(trial->first), space::cost_context(cfg)).params;
  if (now != trial->second) {
    std::string shape;
    for (int64_t d : cfg.data.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    throw UsageError("the data files of study '" + cfg.name + "' no longer match its trials: they now hold " +
                     std::to_string(cfg.data.classes) + " classes of " + shape +
                     " samples, which changes the networks' parameter counts (" + std::to_string(trial->second) +
                     " -> " + std::to_string(now) + "); restore the files or create a new study");
  }
}

} // namespace

int run_train(const TrainOptions& o, std::ostream& out) {
  if (!o.trial && !o.worker) throw UsageError("give --trial ID or --worker");
  if (o.trial && o.worker) throw UsageError("--trial and --worker exclude each other");
  store::Db db = store::Db::open(o.db, store::OpenMode::existing);
  auto study = store::load_study(db);
  if (!study) throw UsageError("'" + o.db + "' holds no study: create it with nas-sample --config FILE");
  config::StudyConfig cfg = config::parse_study_config(study->config_toml, study->config_path);

  if (o.trial) store::load_trial(db, *o.trial);   // UsageError (exit 2) for a trial the study lacks
  check_data_matches(db, cfg);
  DeviceInfo dev = resolve_device(o.device);
  int k = 1;
  std::string pack_why = "1 training";
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.pack == "auto") {
    int64_t largest = 0;
    db.read([&] {
      store::Statement q = db.prepare("SELECT genome, hparams FROM trial WHERE state = 'queued' ORDER BY macs DESC LIMIT 1");
      if (q.step()) {
        const auto g = space::genome_from_json(q.text(0));
        const auto h = q.is_null(1) ? space::draw_hparams(cfg.train, cfg.seed, space::genome_hash(g))
                                    : space::parse_hparams(q.text(1), space::HParams{});
        largest = training_bytes(model::estimate_cost(g, space::cost_context(cfg)), h.batch_size, h.optimizer);
      }
    });
    PackPlan p = plan_pack(dev.device.is_cuda() ? "cuda" : "cpu", dev.free_bytes, cores, largest);
    k = p.k;
    pack_why = p.why;
  } else {
    try {
      size_t used = 0;
      k = std::stoi(o.pack, &used);
      if (used != o.pack.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw UsageError("--pack: expected a number of trainings or auto, got '" + o.pack + "'");
    }
    if (k < 1 || k > 64) throw UsageError("--pack: " + o.pack + " is outside 1..64");
  }
  if (o.trial) k = 1;

  auto shared = std::make_unique<Shared>(k);
  Shared& s = *shared;
  s.opts = o;
  s.cfg = cfg;
  s.dev = dev;
  s.precision = resolve_precision(o.precision.empty() ? cfg.train.precision : o.precision, dev);
  s.policy = queue_policy(cfg);   // with [budget]: claims promote paused trials first (ASHA)
  if (o.until) s.deadline = *o.until;
  else if (auto end = slurm_job_end()) s.deadline = *end;
  s.peak = peak_flops(dev, s.precision, s.peak_note);
  s.threads_per_trainer = o.threads.value_or(std::max(1, cores / k));
  if (s.deadline_near()) {
    log::info("the deadline is less than " + format_number(o.grace_s) + " s away: nothing started");
    return 0;
  }
#ifdef NAS_WITH_CUDA
  if (dev.device.is_cuda()) {
    at::globalContext().setAllowTF32CuBLAS(true);
    at::globalContext().setAllowTF32CuDNN(true);
  }
#endif
  std::string why_not;
  std::unique_ptr<measure::EnergyMeter> meter =
      dev.device.is_cuda() ? measure::open_nvml(dev.pci_bus_id, why_not) : measure::open_rapl(why_not);
  s.ledger = std::make_unique<measure::EnergyLedger>(std::move(meter), why_not, k);

  const auto load_start = std::chrono::steady_clock::now();
  s.data = data::load_study_data(cfg.data, cfg.seed, dev.device);
  log::verbose("data on " + dev.name + " in " +
               format_number(std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count() * 100) / 100) +
               " s: " + std::to_string(s.data.train.size()) + " training, " + std::to_string(s.data.validation.size()) +
               " validation, " + std::to_string(s.data.test.size()) + " test samples");
  log::info(std::to_string(k) + (k == 1 ? " trainer" : " trainers") + " on " + dev.name + " (" + pack_why + ", " +
            std::to_string(s.threads_per_trainer) + " CPU threads each, " + s.precision + "); energy: " +
            (s.ledger->known() ? s.ledger->note() : "unknown (" + s.ledger->note() + ")"));

  install_stop_handlers();
  std::atomic<bool> done{false};
  std::thread beat(heartbeat_loop, std::ref(s), std::ref(done));
  std::vector<std::thread> trainers;
  for (int i = 0; i < k; ++i) trainers.emplace_back([&s, i] { Trainer(s, i).run(); });
  for (auto& t : trainers) t.join();
  done = true;
  beat.join();
  log::live_clear();
  s.ledger->tick();
  try {
    for (size_t i = 0; i < s.worker_ids.size(); ++i)
      if (s.worker_ids[i])
        store::record_worker_energy(db, s.worker_ids[i], s.ledger->slot_busy(int(i)), s.ledger->total_joules(),
                                    s.ledger->known() ? "device total of " + std::to_string(k) + " trainers in this process; " + s.ledger->note()
                                                      : "unknown: " + s.ledger->note());
  } catch (const std::exception& e) {
    log::warning(e.what());
  }
  if (s.rows.size() || o.format != "table") s.rows.write(out, parse_format(o.format));
  if (int sig = stop_signal()) log::info("stopped by " + signal_name(sig));
  else if (s.deadline_near()) log::info("stopped: the deadline is near");
  return s.failed ? 1 : 0;
}

} // namespace nas::train
