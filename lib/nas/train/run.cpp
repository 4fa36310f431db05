// run: nas-train -- open the study, choose the device and the number of slots, load the data
// once, and run the training job on the generic worker (lib/nas/worker).
#include "nas/train/run.h"
#include "nas/config/study_config.h"
#include "nas/core/deadline.h"
#include "nas/core/error.h"
#include "nas/core/heap.h"
#include "nas/core/log.h"
#include "nas/core/signals.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/data/dataset.h"
#include "nas/data/probe.h"
#include "nas/search/policy.h"
#include "nas/space/hparams.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/results.h"
#include "nas/store/study.h"
#include "nas/store/trials.h"
#include "nas/train/job.h"
#include "nas/train/pack.h"
#include "nas/worker/energy.h"
#include "nas/worker/worker.h"

#include <chrono>
#include <cmath>
#include <thread>

namespace nas::train {
namespace {

// K slots: --pack N, or --pack auto from the largest queued network and the device; 1 for --trial.
std::pair<int, std::string> choose_pack(const TrainOptions& o, store::Db& db, const config::StudyConfig& cfg,
                                        const DeviceInfo& dev, int cores) {
  if (o.pack == "auto") {
    if (o.trial) return {1, "1 training"};
    int64_t largest = 0;
    if (const auto t = store::largest_queued_trial(db)) {
      const auto g = space::genome_from_json(t->genome);
      const auto h = space::trial_hparams(cfg, g, t->hparams);
      largest = training_bytes(space::estimate_cost(g, space::cost_context(cfg)), h.batch_size, h.optimizer);
    }
    PackPlan p = plan_pack(dev.device.is_cuda() ? "cuda" : "cpu", dev.free_bytes, cores, largest);
    return {p.k, p.why};
  }
  int k = 0;
  try {
    size_t used = 0;
    k = std::stoi(o.pack, &used);
    if (used != o.pack.size()) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw UsageError("--pack: expected a number of trainings or auto, got '" + o.pack + "'");
  }
  if (k < 1 || k > 64) throw UsageError("--pack: " + o.pack + " is outside 1..64");
  if (o.trial) k = 1;
  return {k, k == 1 ? "1 training" : std::to_string(k) + " trainings (--pack)"};
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The data once on the device, for every slot.
void load_data(TrainContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  ctx.data = data::load_study_data(ctx.cfg.data, ctx.cfg.seed, ctx.dev.device);
  log::verbose("data on " + ctx.dev.name + " in " + format_number(std::round(seconds_since(start) * 100) / 100) +
               " s: " + std::to_string(ctx.data.train.size()) + " training, " + std::to_string(ctx.data.validation.size()) +
               " validation, " + std::to_string(ctx.data.test.size()) + " test samples");
}

} // namespace

int run_training(const TrainOptions& o, std::ostream& out, const TrainJobFactory& make) {
  if (!o.trial && !o.worker) throw UsageError("give --trial ID or --worker");
  if (o.trial && o.worker) throw UsageError("--trial and --worker exclude each other");
  keep_freed_memory();
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  store::Db& db = opened.db;
  TrainContext ctx;
  ctx.db = o.db;
  ctx.cfg = std::move(opened.cfg);
  const config::StudyConfig& cfg = ctx.cfg;
  if (o.trial) store::load_trial(db, *o.trial);   // UsageError (exit 2) for a trial the study lacks
  // Trials were costed with the data the study was created with: files replaced since by others
  // of another shape, classes or size would silently train the wrong networks.
  if (auto recorded = store::load_data_probe(db)) data::check_data_unchanged(cfg, *recorded);
  ctx.dev = resolve_device(o.device);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const auto [k, pack_why] = choose_pack(o, db, cfg, ctx.dev, cores);

  worker::WorkerOptions wo;
  wo.db = o.db;
  wo.device = ctx.dev.name;
  wo.slots = k;
  wo.trial = o.trial;
  wo.max_trials = o.max_trials;
  wo.budget = double(cfg.train.epochs);
  wo.grace_s = o.grace_s;
  if (o.until) wo.deadline = *o.until;
  else if (auto end = slurm_job_end()) wo.deadline = *end;
  if (now_unix() + o.grace_s >= wo.deadline) {
    log::info("the deadline is less than " + format_number(o.grace_s) + " s away: nothing started");
    return 0;
  }
  ctx.precision = resolve_precision(o.precision.value_or(cfg.train.precision), ctx.dev);
  ctx.peak = peak_flops(ctx.dev, ctx.precision, ctx.peak_note);
  ctx.threads_per_slot = o.threads.value_or(std::max(1, cores / k));
  allow_tf32(ctx.dev);
  std::string why_not;
  auto meter = ctx.dev.device.is_cuda() ? worker::open_nvml(ctx.dev.pci_bus_id, why_not) : worker::open_rapl(why_not);
  const std::string energy = meter ? meter->name() : "unknown (" + why_not + ")";
  load_data(ctx);
  log::info(std::to_string(k) + (k == 1 ? " trainer" : " trainers") + " on " + ctx.dev.name + " (" + pack_why + ", " +
            std::to_string(ctx.threads_per_slot) + " CPU threads each, " + config::to_string(ctx.precision) +
            "); energy: " + energy);

  const std::unique_ptr<TrainJob> job = make(ctx);
  const auto screen = o.screen ? o.screen(cfg, ctx.init_mutex) : nullptr;   // built under the trainers' RNG lock
  const worker::WorkerSummary s = worker::run_worker(wo, search::policy_of(cfg, screen), *job, std::move(meter), why_not);
  log::live_clear();
  Table rows(s.columns);
  for (const auto& r : s.rows) rows.add(r);
  if (rows.size() || o.format != Format::table) rows.write(out, o.format);
  if (!s.environment_fault.empty())
    log::error("stopped by a fault of the environment, not of any trial: " + s.environment_fault +
               "; no attempt was counted: fix it and start the worker again");
  else if (int sig = stop_signal()) log::info("stopped by " + worker::signal_name(sig));
  else if (now_unix() + o.grace_s >= wo.deadline) log::info("stopped: the deadline is near");
  return s.failed ? 1 : 0;
}

int run_train(const TrainOptions& o, std::ostream& out) {
  return run_training(o, out, [](TrainContext& ctx) { return std::make_unique<TrainJob>(ctx); });
}

} // namespace nas::train
