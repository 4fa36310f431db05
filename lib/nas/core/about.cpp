// about: the --version hook
#include "nas/core/about.h"

namespace nas {

std::string (*version_detail)() = nullptr;

} // namespace nas
