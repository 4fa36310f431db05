// local: see local.h
#include "nas/measure/local.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/model/network.h"
#include "nas/model/parallel.h"
#include "nas/space/genome.h"
#include "nas/train/device.h"

#ifdef NAS_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>

namespace nas::measure {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void bad_option(const std::string& key, const std::string& what) {
  throw UsageError("local meter: '" + key + "' " + what);
}

void check_options(const LocalOptions& o) {
  if (o.batch < 1) bad_option("batch", "must be at least 1, got " + std::to_string(o.batch));
  if (o.warmup < 0) bad_option("warmup", "must not be negative, got " + std::to_string(o.warmup));
  if (o.runs < 1) bad_option("runs", "must be at least 1, got " + std::to_string(o.runs));
  if (o.threads < 1) bad_option("threads", "must be at least 1, got " + std::to_string(o.threads));
  if (o.attempts < 1) bad_option("attempts", "must be at least 1, got " + std::to_string(o.attempts));
  if (!(o.steady_ratio >= 1) || !std::isfinite(o.steady_ratio))
    bad_option("steady_ratio", "must be a finite number >= 1, got " + format_number(o.steady_ratio));
  if (!(o.min_energy_s >= 0) || !std::isfinite(o.min_energy_s))
    bad_option("min_energy_s", "must be a finite number of seconds >= 0, got " + format_number(o.min_energy_s));
}

std::vector<int> cpus_of(const cpu_set_t& set) {
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

std::string cpu_list(const std::vector<int>& cpus) {
  std::vector<std::string> parts;
  for (int c : cpus) parts.push_back(std::to_string(c));
  return join(parts, ",");
}

cpu_set_t current_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0)
    throw Error(std::string("local meter: cannot read this thread's CPU affinity: ") + std::strerror(errno));
  return set;
}

// The CPUs to pin to: o.cpus checked against this thread's affinity, or its first o.threads.
std::vector<int> choose_cpus(const LocalOptions& o) {
  const cpu_set_t now = current_affinity();
  const std::vector<int> allowed = cpus_of(now);
  if (o.cpus.empty()) {
    if (size_t(o.threads) > allowed.size())
      bad_option("threads", "is " + std::to_string(o.threads) + " but this process may run on " +
                                std::to_string(allowed.size()) + " CPUs (" + cpu_list(allowed) + ")");
    return {allowed.begin(), allowed.begin() + o.threads};
  }
  std::set<int> seen;
  for (int c : o.cpus) {
    if (c < 0 || c >= CPU_SETSIZE || !CPU_ISSET(c, &now))
      bad_option("cpus", "names CPU " + std::to_string(c) + ", not one this process may run on (" + cpu_list(allowed) + ")");
    if (!seen.insert(c).second) bad_option("cpus", "names CPU " + std::to_string(c) + " twice");
  }
  if (o.cpus.size() < size_t(o.threads))
    bad_option("threads", "is " + std::to_string(o.threads) + ", more than the " + std::to_string(o.cpus.size()) +
                              " CPUs of 'cpus' (" + cpu_list(o.cpus) + ")");
  return o.cpus;
}

// Gives `set` to every thread of torch's intra-op pool and the caller; returns how many distinct
// threads took it (model/parallel.h reaches the pool of every backend, OpenMP's too).
int pin_pool(const cpu_set_t& set) {
  std::mutex mutex;
  std::set<long> tids;
  model::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    if (::sched_setaffinity(0, sizeof set, &set) != 0) return;
    std::lock_guard<std::mutex> lock(mutex);
    tids.insert(long(::syscall(SYS_gettid)));
  });
  return int(tids.size());
}

// Pins the calling thread and torch's intra-op threads to a CPU set, with a thread count; the
// destructor puts back the affinity and count found.
class Pinning {
public:
  Pinning(const std::vector<int>& cpus, int threads) : old_(current_affinity()), old_threads_(at::get_num_threads()) {
    cpu_set_t want;
    CPU_ZERO(&want);
    for (int c : cpus) CPU_SET(c, &want);
    if (::sched_setaffinity(0, sizeof want, &want) != 0)
      throw Error("local meter: cannot pin to CPUs " + cpu_list(cpus) + ": " + std::strerror(errno));
    at::set_num_threads(threads);
    pinned_ = pin_pool(want);
  }
  ~Pinning() {
    pin_pool(old_);
    at::set_num_threads(old_threads_);
    ::sched_setaffinity(0, sizeof old_, &old_);
  }
  Pinning(const Pinning&) = delete;
  Pinning& operator=(const Pinning&) = delete;
  // Distinct threads (the caller included) that took the CPU set.
  int pinned() const { return pinned_; }

private:
  cpu_set_t old_;
  int old_threads_;
  int pinned_ = 0;
};

// The network on the measuring device in eval mode, channels-last; the destructor moves it back
// and restores its mode.
class Placement {
public:
  Placement(model::NetworkImpl& net, torch::Device device) : net_(net), training_(net.is_training()) {
    c10::InferenceMode off(false);   // parameters moved here must stay normal tensors
    const auto params = net.parameters();
    if (!params.empty()) home_ = params.front().device();
    net.to(device);
    net.to_channels_last();
    net.eval();
  }
  ~Placement() {
    try {
      c10::InferenceMode off(false);
      net_.to(home_);
      net_.train(training_);
    } catch (...) {
      // a destructor must not throw; the network then stays where it was measured
    }
  }
  Placement(const Placement&) = delete;
  Placement& operator=(const Placement&) = delete;

private:
  model::NetworkImpl& net_;
  bool training_;
  torch::Device home_{torch::kCPU};
};

// The network and its device: one forward, synchronised.
struct Target {
  model::NetworkImpl& net;
  torch::Device device;
  std::vector<int64_t> sample;   // C, H, W

  torch::Tensor input(int64_t batch) const {
    std::vector<int64_t> shape{batch};
    shape.insert(shape.end(), sample.begin(), sample.end());
    torch::Tensor x = torch::randn(shape, at::make_generator<at::CPUGeneratorImpl>(7), torch::kFloat32);
    return model::to_channels_last(x.to(device));
  }
  void forward(const torch::Tensor& x) const {
    torch::Tensor y = net.forward(x);
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  }
};

// Timed forwards after untimed ones, in milliseconds.
std::vector<double> time_runs(const Target& t, const torch::Tensor& x, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) t.forward(x);
  std::vector<double> ms;
  ms.reserve(size_t(runs));
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    t.forward(x);
    ms.push_back(1e3 * seconds_since(t0));
  }
  return ms;
}

json time_summary(const std::vector<double>& ms) {
  double sum = 0;
  for (double v : ms) sum += v;
  return {{"runs", ms.size()},
          {"median_ms", quantile(ms, 0.5)},
          {"p10_ms", quantile(ms, 0.1)},
          {"p90_ms", quantile(ms, 0.9)},
          {"min_ms", *std::min_element(ms.begin(), ms.end())},
          {"max_ms", *std::max_element(ms.begin(), ms.end())},
          {"mean_ms", sum / double(ms.size())}};
}

// A `VmXXX:  123 kB` line of /proc/self/status, in bytes.
std::optional<int64_t> status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return int64_t(std::stoll(line.substr(key.size() + 1))) * 1024;
  return std::nullopt;
}

// The process's peak RSS over a stretch of work: the peak is reset first (clear_refs 5, Linux
// 4.0+); without that the growth is known only when the earlier peak is the current RSS.
class RssWatch {
public:
  RssWatch() {
    const int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      reset_ = ::write(fd, "5", 1) == 1;
      ::close(fd);
    }
    before_ = status_bytes("VmRSS");
    peak_before_ = status_bytes("VmHWM");
  }
  // Growth of the peak over the RSS at the start, with the readings in `raw`.
  std::optional<int64_t> finish(json& raw) const {
    const std::optional<int64_t> peak = status_bytes("VmHWM");
    raw = {{"peak_reset", reset_}, {"rss_before_bytes", before_ ? json(*before_) : json()},
           {"rss_peak_bytes", peak ? json(*peak) : json()}};
    if (!before_ || !peak || !peak_before_) {
      raw["why_not"] = "/proc/self/status has no VmRSS/VmHWM";
      return std::nullopt;
    }
    if (!reset_ && *peak_before_ > *before_) {
      raw["why_not"] = "the peak RSS cannot be reset (/proc/self/clear_refs) and an earlier, higher peak hides the runs'";
      return std::nullopt;
    }
    return std::max<int64_t>(0, *peak - *before_);
  }

private:
  bool reset_ = false;
  std::optional<int64_t> before_, peak_before_;
};

#ifdef NAS_WITH_CUDA
// Full fp32 on CUDA for the measurement: TF32 off, as found afterwards.
class Fp32Only {
public:
  Fp32Only() : cudnn_(at::globalContext().allowTF32CuDNN()), cublas_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~Fp32Only() {
    at::globalContext().setAllowTF32CuDNN(cudnn_);
    at::globalContext().setAllowTF32CuBLAS(cublas_);
  }
private:
  bool cudnn_, cublas_;
};
#endif

// One batch size: warm-up and timed runs with the memory they took.
struct Phase {
  SteadySeries timed;
  std::optional<int64_t> bytes;   // CUDA: the allocator's peak; CPU: the peak RSS growth
  json memory;
};

// Warm-up and series of timed runs until one is steady (each series after the first warms up
// again: whatever disturbed the last one may have evicted the caches).
SteadySeries steady_runs(const Target& t, const torch::Tensor& x, const LocalOptions& o) {
  return until_steady([&] { return time_runs(t, x, o.warmup, o.runs); }, o.attempts, o.steady_ratio);
}

Phase run_phase(const Target& t, int64_t batch, const LocalOptions& o) {
  Phase p;
  const torch::Tensor x = t.input(batch);
  if (t.device.is_cuda()) {
#ifdef NAS_WITH_CUDA
    const int index = t.device.index();
    c10::cuda::CUDACachingAllocator::resetPeakStats(index);
    p.timed = steady_runs(t, x, o);
    p.bytes = int64_t(c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak);
    p.memory = {{"cuda_peak_allocated_bytes", *p.bytes}};
#endif
    return p;
  }
  RssWatch watch;
  p.timed = steady_runs(t, x, o);
  p.bytes = watch.finish(p.memory);
  return p;
}

// The summary of a phase's kept series, with the series taken and whether it is steady.
json phase_summary(const Phase& p, double max_ratio) {
  json j = time_summary(p.timed.ms);
  j["memory"] = p.memory;
  j["attempts"] = p.timed.ratios;
  j["kept_attempt"] = p.timed.kept;
  j["steady"] = p.timed.steady;
  j["steady_ratio"] = max_ratio;
  return j;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) return trim(line.substr(line.find(':') + 1));
  return "unknown";
}

// The energy of batch-1 inferences, or why it is unknown, into raw["energy"].
std::optional<double> measure_energy(const Target& t, const train::DeviceInfo& dev, const LocalOptions& o, json& raw) {
  std::string why;
  std::unique_ptr<worker::EnergyMeter> meter;
  if (o.min_energy_s <= 0) why = "not measured: 'min_energy_s' is 0";
  else if (dev.device.is_cuda()) meter = worker::open_nvml(dev.pci_bus_id, why);
  else meter = worker::open_rapl(why, o.rapl_root);
  if (!meter) {
    raw = {{"why_not", why}};
    return std::nullopt;
  }
  const torch::Tensor x = t.input(1);
  const EnergyWindow w = energy_per_inference(*meter, [&] { t.forward(x); }, o.min_energy_s);
  raw = {{"meter", meter->name()}, {"inferences", w.inferences}, {"seconds", w.seconds}, {"joules", w.joules},
         {"scope", dev.device.is_cuda() ? "the whole GPU board, idle power included"
                                        : "the CPU packages, idle power and other processes on them included"}};
  if (!w.uj_per_inference) raw["why_not"] = w.why_not;
  return w.uj_per_inference;
}

std::optional<double> opt(const std::optional<int64_t>& v) {
  return v ? std::optional<double>(double(*v)) : std::nullopt;
}

json settings(const train::DeviceInfo& dev, const LocalOptions& o, const std::vector<int>& cpus, int pinned) {
  const std::string cpu = cpu_model();
  return {{"meter", "local"},
          {"device", dev.name},
          {"device_name", dev.device.is_cuda() ? dev.model : cpu},
          {"cpu_model", cpu},
          {"torch", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                        std::to_string(TORCH_VERSION_PATCH)},
          {"precision", "fp32"},
          {"memory_format", "channels_last"},
          {"mode", "inference (eval, batch norm with its running statistics)"},
          {"warmup", o.warmup},
          {"runs", o.runs},
          {"attempts", o.attempts},
          {"threads", {{"requested", o.threads}, {"torch_intra_op", at::get_num_threads()}, {"pinned_threads", pinned},
                       {"cpus", cpus}}},
          {"min_energy_s", o.min_energy_s}};
}

} // namespace

SteadySeries until_steady(const std::function<std::vector<double>()>& series, int attempts, double max_ratio) {
  SteadySeries s;
  for (int i = 0; i < std::max(1, attempts); ++i) {
    std::vector<double> ms = series();
    const double median = quantile(ms, 0.5);
    s.ratios.push_back(median > 0 ? quantile(ms, 0.9) / median : 1.0);
    if (i == 0 || s.ratios.back() < s.ratios[s.kept]) {
      s.kept = size_t(i);
      s.ms = std::move(ms);
    }
    if (s.ratios.back() <= max_ratio) break;
  }
  s.steady = s.ratios[s.kept] <= max_ratio;
  return s;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) throw std::invalid_argument("quantile of no values");
  std::sort(v.begin(), v.end());
  const double pos = std::clamp(q, 0.0, 1.0) * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

EnergyWindow energy_per_inference(worker::EnergyMeter& meter, const std::function<void()>& infer, double min_s) {
  EnergyWindow w;
  const std::optional<double> start = meter.joules();
  if (!start) {
    w.why_not = "the counter " + meter.name() + " could not be read";
    return w;
  }
  const auto t0 = Clock::now();
  do {
    infer();
    ++w.inferences;
    w.seconds = seconds_since(t0);
  } while (w.seconds < min_s);
  const std::optional<double> end = meter.joules();
  if (!end) {
    w.why_not = "the counter " + meter.name() + " could not be read at the end of the window";
    return w;
  }
  w.joules = *end - *start;
  if (!(w.joules > 0)) {
    w.why_not = "the counter " + meter.name() + " did not advance in " + format_number(w.seconds) + " s";
    return w;
  }
  w.uj_per_inference = w.joules * 1e6 / double(w.inferences);
  return w;
}

LocalResult measure_local(model::NetworkImpl& net, const space::CostContext& ctx, const LocalOptions& o) {
  check_options(o);
  const train::DeviceInfo dev = train::resolve_device(o.device);
  const std::vector<int> cpus = choose_cpus(o);
  space::CostContext fp32 = ctx;
  fp32.bytes_per_element = 4;
  const space::Cost cost = space::estimate_cost(net.genome(), fp32);

  Placement placed(net, dev.device);
  Pinning pin(cpus, o.threads);
#ifdef NAS_WITH_CUDA
  Fp32Only fp32_only;
#endif
  torch::InferenceMode inference;
  const Target target{net, dev.device, ctx.input};
  LocalResult r;
  r.raw = settings(dev, o, cpus, pin.pinned());
  r.raw["genome"] = space::canonical(net.genome());
  r.raw["input"] = ctx.input;

  const Phase one = run_phase(target, 1, o);
  const Phase many = run_phase(target, o.batch, o);
  r.raw["batch1"] = phase_summary(one, o.steady_ratio);
  r.raw["batch"] = phase_summary(many, o.steady_ratio);
  r.raw["batch"]["size"] = o.batch;
  const double batch_ms = quantile(many.timed.ms, 0.5);
  r.raw["batch"]["throughput_ips"] = double(o.batch) * 1e3 / batch_ms;
  const int64_t analytic = cost.weight_bytes + cost.peak_activation_bytes;
  r.raw["analytic"] = {{"bytes", analytic}, {"weight_bytes", cost.weight_bytes},
                       {"peak_activation_bytes", cost.peak_activation_bytes}, {"bytes_per_element", 4}};
  json energy;
  const std::optional<double> uj = measure_energy(target, dev, o, energy);
  r.raw["energy"] = energy;

  r.metrics = {{"latency_ms", quantile(one.timed.ms, 0.5), "ms"},
               {"latency_p10_ms", quantile(one.timed.ms, 0.1), "ms"},
               {"latency_p90_ms", quantile(one.timed.ms, 0.9), "ms"},
               {"latency_batch_ms", batch_ms, "ms"},
               {"throughput_ips", double(o.batch) * 1e3 / batch_ms, "images/s"},
               {"peak_mem_bytes", dev.device.is_cuda() ? opt(one.bytes) : std::optional<double>(double(analytic)), "bytes"}};
  if (!dev.device.is_cuda()) r.metrics.push_back({"rss_growth_bytes", opt(one.bytes), "bytes"});
  r.metrics.push_back({"energy_uj", uj, "uJ"});
  return r;
}

} // namespace nas::measure
