// device: the training device as the trainers see it -- name, model, PCI bus id (for NVML),
// free memory, the precision resolved for it and its peak FLOP/s (for MFU)
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

#include "nas/config/study_config.h"

namespace nas::train {

struct DeviceInfo {
  torch::Device device{torch::kCPU};
  std::string name = "cpu";      // cpu | cuda:N
  std::string model;             // the GPU's name, or "cpu"
  std::string pci_bus_id;
  int64_t free_bytes = 0;
};

// The device a --device string names (see model::parse_device), with what CUDA says of it.
// Throws UsageError for a device this process cannot see.
DeviceInfo resolve_device(const std::string& want);

// Peak FLOP/s of the device for the precision (dense tensor-core figures for GPUs), or nullopt
// with the reason in `note`. NAS_PEAK_FLOPS overrides.
std::optional<double> peak_flops(const DeviceInfo& d, config::Precision precision, std::string& note);

// fp32 on the CPU (with a warning for bf16/fp16); on CUDA `auto` is bf16 from compute
// capability 8 (Ampere) on, else fp16.
config::Precision resolve_precision(config::Precision p, const DeviceInfo& d);

// Allows TF32 in cuBLAS and cuDNN on a CUDA device (a no-op on the CPU).
void allow_tf32(const DeviceInfo& d);

} // namespace nas::train
