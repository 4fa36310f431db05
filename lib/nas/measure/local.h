// local: the `local` meter -- latency, memory and energy of a trial's network on this node's CPU
// (intra-op threads pinned) or on a CUDA GPU, in inference mode, fp32, channels-last as trained
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nas/measure/metric.h"
#include "nas/space/cost.h"
#include "nas/worker/energy.h"

namespace nas::model {
class NetworkImpl;   // model/network.h: kept out of this header so that it needs no LibTorch
}

namespace nas::measure {

struct LocalOptions {
  std::string device = "cpu";      // cpu | cuda | cuda:N (model::parse_device)
  int64_t batch = 32;              // the second batch size measured, besides batch 1
  int warmup = 10;                 // untimed forwards before the timed ones, at each batch size
  int runs = 100;                  // timed forwards at each batch size
  int attempts = 3;                // series of `runs` at most, until one is steady
  double steady_ratio = 1.2;       // a series is steady when its p90/median is at most this
  int threads = 1;                 // torch intra-op threads
  std::vector<int> cpus;           // CPUs to pin to; empty: the first `threads` of this thread's affinity
  double min_energy_s = 3.0;       // the energy window lasts at least this long (0: no energy)
  std::string rapl_root = "/sys/class/powercap";   // where the RAPL counters are (tests use a fake tree)
};

struct LocalResult {
  Metrics metrics;       // latency_ms, latency_p10_ms, latency_p90_ms, latency_batch_ms, throughput_ips,
                         // peak_mem_bytes, rss_growth_bytes (CPU only), energy_uj
  nlohmann::json raw;    // every setting and reading, and the reason for each unknown value
};

// Measures `net` (its genome built for `ctx`) on o.device: at batch 1 and at o.batch, o.warmup
// untimed then o.runs timed forwards (steady clock, the device synchronised after each);
// median, p10 and p90 of the first steady series of up to o.attempts (until_steady). Memory
// at batch 1: on CUDA the caching allocator's peak (reset first); on the CPU the analytic fp32
// bytes (weights + peak activation of the cost model) and the measured growth of the process's
// peak RSS. Energy per inference at batch 1 from RAPL (CPU) or
// NVML (CUDA) over at least o.min_energy_s, unknown with the reason when no counter is
// readable. The calling thread and torch's intra-op threads are pinned to the CPUs during the
// measurement; affinity, thread count and the network's device and train/eval mode are
// restored afterwards (its 4-d weights stay channels-last). On the CPU the process's peak-RSS
// mark (VmHWM, getrusage's ru_maxrss) is reset, and not restored. Throws UsageError naming the
// option for bad options or a device this process cannot see.
LocalResult measure_local(model::NetworkImpl& net, const space::CostContext& ctx, const LocalOptions& o);

// Energy of repeated inferences: what one window of the energy meter gave.
struct EnergyWindow {
  std::optional<double> uj_per_inference;   // nullopt: see why_not
  int64_t inferences = 0;
  double seconds = 0;
  double joules = 0;                        // counter difference over the window
  std::string why_not;
};

// Calls `infer` (one synchronised inference) until at least min_s seconds have passed, and at
// least once, reading `meter` before and after. Unknown with the reason when a reading fails or
// the counter did not advance (a counter that stands still for the window is not counting).
EnergyWindow energy_per_inference(worker::EnergyMeter& meter, const std::function<void()>& infer, double min_s);

// Timings taken until they are steady: what until_steady kept and why.
struct SteadySeries {
  std::vector<double> ms;        // the series kept
  std::vector<double> ratios;    // p90/median of every series taken, in order
  size_t kept = 0;               // its index in `ratios`
  bool steady = false;           // its p90/median is at most the limit
};

// Takes series of timings from `series` until one has p90/median at most `max_ratio`, at most
// `attempts` of them (at least 1), and keeps that one, else the steadiest (the lowest ratio;
// the first of equals). On a shared node another process's burst makes a series bimodal; the
// series after it measures the network again instead of the neighbour.
SteadySeries until_steady(const std::function<std::vector<double>()>& series, int attempts, double max_ratio);

// The q-quantile (0..1) of `values` with linear interpolation between order statistics (as
// numpy's default). Throws std::invalid_argument for no values.
double quantile(std::vector<double> values, double q);

} // namespace nas::measure
