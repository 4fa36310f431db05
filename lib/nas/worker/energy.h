// energy: device energy counters -- NVML's total-energy counter on NVIDIA GPUs (libnvidia-ml
// loaded with dlopen at run time, never a build dependency) and RAPL package counters through
// powercap on CPUs -- and a ledger that shares one device's energy among packed trainings by
// their busy time
#pragma once
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace nas::worker {

// A cumulative energy counter of one device. Not thread-safe: one owner calls joules().
class EnergyMeter {
public:
  virtual ~EnergyMeter() = default;
  // Joules since an arbitrary origin, never decreasing (counter wrap-around handled), or
  // nullopt when the counter could not be read this time.
  virtual std::optional<double> joules() = 0;
  // What is measured: "nvml:NVIDIA H100 80GB HBM3", "rapl:package-0+package-1".
  virtual std::string name() const = 0;
};

// RAPL package domains under `root` (default /sys/class/powercap). nullptr with the reason
// in why_not when there are none or they are not readable (kernels since 5.10 make energy_uj
// readable by root only).
std::unique_ptr<EnergyMeter> open_rapl(std::string& why_not, const std::string& root = "/sys/class/powercap");

// The NVML counter of the GPU with PCI bus id `pci_bus_id` ("00000000:65:00.0"). nullptr with
// the reason when libnvidia-ml cannot be loaded, the GPU is not found, or it has no counter
// (before Volta).
std::unique_ptr<EnergyMeter> open_nvml(const std::string& pci_bus_id, std::string& why_not);

// One device's energy shared among `slots` trainers. Trainers report busy seconds; tick()
// reads the counter and gives each slot the share of the energy used since the last tick that
// its busy time in the interval is of the slots' total (energy while no slot was busy stays
// in the device total only). Thread-safe.
class EnergyLedger {
public:
  EnergyLedger(std::unique_ptr<EnergyMeter> meter, std::string why_not, int slots);
  bool known() const { return meter_ != nullptr; }
  // The meter's name, or why energy is unknown.
  const std::string& note() const { return note_; }
  void add_busy(int slot, double seconds);
  void tick();
  // Joules assigned to the slot so far (0 when unknown).
  double slot_joules(int slot);
  double slot_busy(int slot);
  // Joules of the device since the ledger started, nullopt when unknown.
  std::optional<double> total_joules();

private:
  std::mutex mutex_;
  std::unique_ptr<EnergyMeter> meter_;
  std::string note_;
  std::optional<double> start_, last_;
  std::vector<double> busy_, busy_at_tick_, joules_;
};

} // namespace nas::worker
