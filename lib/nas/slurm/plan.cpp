// plan: array size, packing and GPU hours from the cost model and the epoch-time rate
#include "nas/slurm/plan.h"
#include "nas/core/error.h"
#include "nas/train/pack.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace nas::slurm {

namespace {
constexpr int kMaxArray = 1001;
constexpr int64_t kStartupS = 60;   // module loads, loading the dataset, a first claim
}

double predicted_epoch_s(const PlanTrial& t, int64_t train_samples, const config::SlurmConfig& s, bool gpu) {
  const double steps = std::ceil(double(train_samples) / double(std::max<int64_t>(1, t.batch)));
  return steps * s.step_s + 6.0 * double(t.macs) * double(train_samples) / (gpu ? s.throughput : s.cpu_throughput);
}

Plan make_plan(const PlanInput& in) {
  if (in.trials.empty()) throw UsageError("nothing to plan: the study has no queued trials (nas-sample --queue)");
  const auto& s = in.slurm;
  Plan p;
  p.trials = int64_t(in.trials.size());
  p.gpus = std::max(1, s.gpus);
  for (const auto& t : in.trials) {
    p.largest_bytes = std::max(p.largest_bytes, t.bytes);
    p.epochs += t.epochs;
  }
  if (s.pack > 0) {
    p.pack = s.pack;
    p.pack_why = "pack = " + std::to_string(s.pack) + " from [slurm] or --pack";
    const int64_t per = p.largest_bytes + (int64_t(512) << 20);
    if (in.gpu && int64_t(p.pack) * per > s.gpu_mem)
      p.notes.push_back("pack " + std::to_string(p.pack) + " x " + std::to_string(per >> 20) + " MiB exceeds gpu_mem " +
                        std::to_string(s.gpu_mem >> 20) + " MiB: trainings may run out of memory");
  } else {
    auto pp = train::plan_pack(in.gpu ? "cuda" : "cpu", s.gpu_mem, in.cores, p.largest_bytes);
    p.pack = pp.k;
    p.pack_why = pp.why;
  }
  p.processes = std::clamp(s.processes, 1, p.pack);
  p.pack_per_process = std::max(1, p.pack / p.processes);   // down: never more than fit
  p.pack = p.pack_per_process * p.processes;

  char buf[160];
  if (in.measured_epochs > 0 && in.measured_s > 0 && in.predicted_s > 0) {
    p.calibration = in.measured_s / in.predicted_s;
    std::snprintf(buf, sizeof buf, "cost model x %.3g, calibrated on %lld measured epochs", p.calibration,
                  static_cast<long long>(in.measured_epochs));
  } else {
    std::snprintf(buf, sizeof buf, "estimated: %.3g s a step + FLOPs at %.3g FLOP/s; no epoch measured yet", s.step_s,
                  in.gpu ? s.throughput : s.cpu_throughput);
  }
  p.rate_source = buf;
  for (const auto& t : in.trials) p.work_s += t.epochs * p.calibration * predicted_epoch_s(t, in.train_samples, s, in.gpu);

  p.time_s = config::parse_slurm_time(s.time);
  p.usable_s = std::max<int64_t>(p.time_s - s.signal_s - kStartupS, p.time_s / 2);
  const double per_task = double(p.pack) * double(p.usable_s);
  const int64_t by_work = int64_t(std::ceil(p.work_s / per_task));
  const int64_t by_fill = std::min<int64_t>(p.gpus, (p.trials + p.pack - 1) / p.pack);
  int64_t tasks = std::max<int64_t>({1, by_work, by_fill});
  if (tasks > kMaxArray) {
    p.notes.push_back("the array is capped at " + std::to_string(kMaxArray) + " tasks (Slurm's default MaxArraySize); " +
                      "tasks requeue themselves while trials are left");
    tasks = kMaxArray;
  }
  p.tasks = int(tasks);
  p.parallel = std::min(p.tasks, s.array_parallelism > 0 ? s.array_parallelism : p.gpus);
  p.gpu_hours = p.work_s / p.pack / 3600.0;
  p.wall_hours = p.gpu_hours / std::min(p.parallel, p.tasks);
  for (const auto& t : in.trials) {
    double trial_s = t.epochs * p.calibration * predicted_epoch_s(t, in.train_samples, s, in.gpu);
    if (trial_s > double(p.usable_s)) {
      p.notes.push_back("trial " + std::to_string(t.id) + " needs more than one task's time: it continues from its checkpoint in the next task");
      break;
    }
  }
  return p;
}

} // namespace nas::slurm
