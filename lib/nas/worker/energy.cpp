// energy: RAPL through powercap, NVML through dlopen, and the busy-time ledger
#include "nas/worker/energy.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <regex>

namespace fs = std::filesystem;

namespace nas::worker {
namespace {

std::optional<long double> read_number(const fs::path& p) {
  std::ifstream in(p);
  long double v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

std::string read_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

// RAPL: each package domain's energy_uj counts microjoules and wraps at max_energy_range_uj.
class RaplMeter : public EnergyMeter {
public:
  struct Domain {
    fs::path energy;
    long double range = 0, last = 0, total = 0;
    std::string name;
  };
  explicit RaplMeter(std::vector<Domain> d) : domains_(std::move(d)) {}
  std::optional<double> joules() override {
    long double sum = 0;
    for (auto& d : domains_) {
      auto v = read_number(d.energy);
      if (!v) return std::nullopt;
      long double delta = *v - d.last;
      if (delta < 0) delta = d.range > 0 ? delta + d.range : 0;   // wrapped (range unknown: skip the interval)
      d.total += delta;
      d.last = *v;
      sum += d.total;
    }
    return double(sum / 1e6L);
  }
  std::string name() const override {
    std::string s = "rapl:";
    for (size_t i = 0; i < domains_.size(); ++i) s += (i ? "+" : "") + domains_[i].name;
    return s;
  }
private:
  std::vector<Domain> domains_;
};

// The NVML functions used, resolved by name from libnvidia-ml.so.1.
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct Nvml {
  void* lib = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*by_pci)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
};

class NvmlMeter : public EnergyMeter {
public:
  NvmlMeter(Nvml api, nvmlDevice_t dev, std::string name) : api_(api), dev_(dev), name_(std::move(name)) {}
  std::optional<double> joules() override {
    unsigned long long mj = 0;
    if (api_.energy(dev_, &mj) != 0) return std::nullopt;
    return double(mj) / 1000.0;
  }
  std::string name() const override { return "nvml:" + name_; }
private:
  Nvml api_;
  nvmlDevice_t dev_;
  std::string name_;
};

} // namespace

std::unique_ptr<EnergyMeter> open_rapl(std::string& why_not, const std::string& root) {
  std::vector<RaplMeter::Domain> domains;
  std::error_code ec;
  const std::regex package(R"(intel-rapl:\d+)");   // top-level domains only: packages
  if (!fs::is_directory(root, ec)) {
    why_not = "no RAPL counters: '" + root + "' does not exist";
    return nullptr;
  }
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string dir = e.path().filename().string();
    if (!std::regex_match(dir, package)) continue;
    RaplMeter::Domain d;
    d.energy = e.path() / "energy_uj";
    d.name = read_line(e.path() / "name");
    auto range = read_number(e.path() / "max_energy_range_uj");
    auto now = read_number(d.energy);
    if (!now) {
      why_not = "RAPL counter '" + d.energy.string() + "' is not readable (root only on this kernel)";
      return nullptr;
    }
    d.range = range.value_or(0);
    d.last = *now;
    domains.push_back(std::move(d));
  }
  if (domains.empty()) {
    why_not = "no RAPL package domain under '" + root + "'";
    return nullptr;
  }
  std::sort(domains.begin(), domains.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return std::make_unique<RaplMeter>(std::move(domains));
}

std::unique_ptr<EnergyMeter> open_nvml(const std::string& pci_bus_id, std::string& why_not) {
  static Nvml api;
  static std::string load_error;
  static std::once_flag once;
  std::call_once(once, [] {
    api.lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!api.lib) {
      load_error = "libnvidia-ml.so.1 cannot be loaded";
      return;
    }
    api.init = reinterpret_cast<decltype(api.init)>(::dlsym(api.lib, "nvmlInit_v2"));
    api.by_pci = reinterpret_cast<decltype(api.by_pci)>(::dlsym(api.lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    api.energy = reinterpret_cast<decltype(api.energy)>(::dlsym(api.lib, "nvmlDeviceGetTotalEnergyConsumption"));
    api.name = reinterpret_cast<decltype(api.name)>(::dlsym(api.lib, "nvmlDeviceGetName"));
    if (!api.init || !api.by_pci || !api.energy || !api.name)
      load_error = "libnvidia-ml.so.1 lacks the energy functions";
    else if (api.init() != 0)
      load_error = "nvmlInit failed";
  });
  if (!load_error.empty()) {
    why_not = load_error;
    return nullptr;
  }
  nvmlDevice_t dev = nullptr;
  if (api.by_pci(pci_bus_id.c_str(), &dev) != 0) {
    why_not = "NVML does not know the GPU at PCI bus id '" + pci_bus_id + "'";
    return nullptr;
  }
  unsigned long long mj = 0;
  if (api.energy(dev, &mj) != 0) {
    why_not = "the GPU at '" + pci_bus_id + "' has no total-energy counter (needs Volta or newer)";
    return nullptr;
  }
  char name[96] = {};
  api.name(dev, name, sizeof name);
  return std::make_unique<NvmlMeter>(api, dev, name);
}

EnergyLedger::EnergyLedger(std::unique_ptr<EnergyMeter> meter, std::string why_not, int slots)
    : meter_(std::move(meter)), note_(meter_ ? meter_->name() : std::move(why_not)),
      busy_(size_t(slots), 0), busy_at_tick_(size_t(slots), 0), joules_(size_t(slots), 0) {
  if (meter_) start_ = last_ = meter_->joules();
}

void EnergyLedger::add_busy(int slot, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  busy_[size_t(slot)] += seconds;
}

void EnergyLedger::tick() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!meter_) return;
  auto now = meter_->joules();
  if (!now) return;                  // try again at the next tick; the energy is not lost
  if (!last_) start_ = last_ = now;
  const double delta = *now - *last_;
  last_ = now;
  double total_busy = 0;
  std::vector<double> interval(busy_.size());
  for (size_t i = 0; i < busy_.size(); ++i) {
    interval[i] = busy_[i] - busy_at_tick_[i];
    busy_at_tick_[i] = busy_[i];
    total_busy += interval[i];
  }
  if (total_busy <= 0) return;
  for (size_t i = 0; i < busy_.size(); ++i) joules_[i] += delta * interval[i] / total_busy;
}

double EnergyLedger::slot_joules(int slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  return joules_[size_t(slot)];
}

double EnergyLedger::slot_busy(int slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_[size_t(slot)];
}

std::optional<double> EnergyLedger::total_joules() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!start_ || !last_) return std::nullopt;
  return *last_ - *start_;
}

} // namespace nas::worker
