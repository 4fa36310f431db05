// about: what --version says beyond minnow's own version
#pragma once
#include <string>

namespace nas {

// Extra text for --version (the LibTorch version and devices), set by the torch runtime
// (lib/nas/model/runtime.cpp) when a tool links it; nullptr otherwise, so that tools that do
// not use LibTorch never load it.
extern std::string (*version_detail)();

} // namespace nas
