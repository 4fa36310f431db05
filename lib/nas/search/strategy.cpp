// strategy: see strategy.h
#include "nas/search/strategy.h"

namespace nas::search {

std::unique_ptr<Strategy> make_strategy(const config::StudyConfig& cfg, const space::Sampler& sampler) {
  (void)cfg;   // the [search] section that chooses among strategies comes with the evolutionary ones
  return std::make_unique<RandomStrategy>(sampler);
}

} // namespace nas::search
