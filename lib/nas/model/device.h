// device: a --device string (cpu | cuda | cuda:N | auto) -> the LibTorch device, checked against
// the devices this process sees. Shared by the trainers and nas-proxy.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace nas::model {

// auto: the first CUDA device when there is one, else the CPU. Throws UsageError naming
// `option` (e.g. "--device") for an unknown string, no CUDA, or an index past the devices.
c10::Device parse_device(const std::string& want, const std::string& option = "--device");

} // namespace nas::model
