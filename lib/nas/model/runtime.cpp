// runtime: what the linked LibTorch is and which devices it sees (for --version and logs)
#include <torch/torch.h>

#include "nas/core/about.h"

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

namespace {
// Linked into a tool only when the tool uses LibTorch: then --version names it.
const bool registered = (version_detail = &runtime_summary, true);
} // namespace

} // namespace nas
