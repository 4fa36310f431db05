// screen: the order in which a screen's candidates are tried
#include "nas/search/screen.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nas::search {

std::vector<size_t> screen_order(const std::vector<double>& scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), size_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const bool na = std::isnan(scores[a]), nb = std::isnan(scores[b]);
    if (na != nb) return nb;
    return !na && scores[a] > scores[b];
  });
  return idx;
}

} // namespace nas::search
