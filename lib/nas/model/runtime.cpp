// runtime: what the linked LibTorch is and which devices it sees (for --version and logs), and
// device strings (device.h)
#include <torch/torch.h>

#include "nas/core/about.h"
#include "nas/core/error.h"
#include "nas/model/device.h"

#include <string>

namespace nas {

std::string runtime_summary() {
  std::string s = "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                  std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
  if (torch::cuda::is_available())
    s += ", CUDA devices: " + std::to_string(torch::cuda::device_count());
  else
    s += ", CPU only";
  return s;
}

namespace model {

c10::Device parse_device(const std::string& want, const std::string& option) {
  std::string w = want;
  if (w == "auto") w = torch::cuda::is_available() ? "cuda" : "cpu";
  if (w == "cpu") return c10::Device(c10::kCPU);
  if (w.rfind("cuda", 0) != 0 || (w.size() > 4 && w[4] != ':'))
    throw UsageError(option + ": unknown device '" + want + "' (expected cpu, cuda, cuda:N or auto)");
  if (!torch::cuda::is_available())
    throw UsageError(option + " " + want + ": no CUDA device is available" +
#ifdef NAS_WITH_CUDA
                     std::string(" (this minnow is built with CUDA)"));
#else
                     std::string(" (this minnow is built with a CPU-only LibTorch)"));
#endif
  int index = 0;
  if (w.size() > 5) {
    try {
      size_t used = 0;
      index = std::stoi(w.substr(5), &used);
      if (used != w.size() - 5) throw std::invalid_argument(w);
    } catch (const std::exception&) {
      throw UsageError(option + ": invalid device '" + want + "'");
    }
  }
  if (index < 0 || index >= int(torch::cuda::device_count()))
    throw UsageError(option + " " + want + ": there are " + std::to_string(torch::cuda::device_count()) + " CUDA devices");
  return c10::Device(c10::kCUDA, int8_t(index));
}

} // namespace model

namespace {
// Linked into a tool only when the tool uses LibTorch: then --version names it.
const bool registered = (version_detail = &runtime_summary, true);
} // namespace

} // namespace nas
