// device: see device.h
#include "nas/train/device.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/model/device.h"

#ifdef NAS_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace nas::train {

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
std::optional<double> peak_flops(const DeviceInfo& d, config::Precision precision, std::string& note) {
  if (const char* env = std::getenv("NAS_PEAK_FLOPS"); env && *env) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end == env || *end || !(v > 0) || !std::isfinite(v))
      throw UsageError("NAS_PEAK_FLOPS: expected the device's peak FLOP/s as a positive number, got '" + std::string(env) + "'");
    note = "peak from NAS_PEAK_FLOPS";
    return v;
  }
  struct Peak { const char* name; double half, tf32; };
  static const Peak peaks[] = {{"h100", 989e12, 494e12}, {"h200", 989e12, 494e12}, {"a100", 312e12, 156e12},
                               {"l40s", 362e12, 183e12}, {"a10", 125e12, 62.5e12}, {"v100", 125e12, 15.7e12}};
  const std::string m = lower(d.model);
  for (const auto& p : peaks)
    if (m.find(p.name) != std::string::npos) {
      const bool fp32 = precision == config::Precision::fp32;
      note = "peak of " + d.model + " (" + (fp32 ? "tf32" : config::to_string(precision)) + ", dense)";
      return fp32 ? p.tf32 : p.half;
    }
  note = "unknown: the peak FLOP/s of '" + d.model + "' is not known (set NAS_PEAK_FLOPS)";
  return std::nullopt;
}

config::Precision resolve_precision(config::Precision p, const DeviceInfo& d) {
  using config::Precision;
  if (!d.device.is_cuda()) {
    if (p == Precision::bf16 || p == Precision::fp16)
      log::warning("precision " + config::to_string(p) + " is for CUDA devices: training in fp32 on the CPU");
    return Precision::fp32;
  }
  if (p != Precision::automatic) return p;
#ifdef NAS_WITH_CUDA
  return at::cuda::getDeviceProperties(d.device.index())->major >= 8 ? Precision::bf16 : Precision::fp16;
#else
  return Precision::fp32;
#endif
}

void allow_tf32(const DeviceInfo& d) {
#ifdef NAS_WITH_CUDA
  if (d.device.is_cuda()) {
    at::globalContext().setAllowTF32CuBLAS(true);
    at::globalContext().setAllowTF32CuDNN(true);
  }
#else
  (void)d;
#endif
}

} // namespace nas::train
