// hypervolume: exact hypervolume in any dimension with the WFG algorithm (While, Bradstreet
// and Barone, IEEE TEC 2012): the volume of a set is the sum of the exclusive contributions
// of its points taken in order, each contribution being the point's box minus the hypervolume
// of the remaining points "limited" (clipped) to that box. Two objectives use an O(n log n)
// sweep, which is also the base case of the recursion.
#include "nas/pareto/front.h"

#include <algorithm>
#include <cmath>

namespace nas::pareto {
namespace {

// Keeps the non-dominated points, without duplicates.
std::vector<Point> nondominated(std::vector<Point> pts) {
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  std::vector<Point> out;
  for (size_t i = 0; i < pts.size(); ++i) {
    bool dom = false;
    for (size_t j = 0; j < pts.size() && !dom; ++j)
      if (j != i && dominates(pts[j], pts[i])) dom = true;
    if (!dom) out.push_back(pts[i]);
  }
  return out;
}

double box(const Point& p, const Point& ref) {
  double v = 1;
  for (size_t k = 0; k < p.size(); ++k) v *= ref[k] - p[k];
  return v;
}

double hv2(std::vector<Point> pts, const Point& ref) {
  std::sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]); });
  double v = 0, y = ref[1];
  for (const auto& p : pts) {
    if (p[1] < y) {
      v += (ref[0] - p[0]) * (y - p[1]);
      y = p[1];
    }
  }
  return v;
}

double wfg(std::vector<Point> pts, const Point& ref);

// Exclusive hypervolume of pts[i] relative to pts[i+1..].
double exclusive(const std::vector<Point>& pts, size_t i, const Point& ref) {
  std::vector<Point> limited;
  limited.reserve(pts.size() - i - 1);
  for (size_t j = i + 1; j < pts.size(); ++j) {
    Point q(pts[j].size());
    for (size_t k = 0; k < q.size(); ++k) q[k] = std::max(pts[i][k], pts[j][k]);
    limited.push_back(std::move(q));
  }
  return box(pts[i], ref) - wfg(nondominated(std::move(limited)), ref);
}

double wfg(std::vector<Point> pts, const Point& ref) {
  if (pts.empty()) return 0;
  const size_t m = ref.size();
  if (m == 1) {
    double best = ref[0];
    for (const auto& p : pts) best = std::min(best, p[0]);
    return ref[0] - best;
  }
  if (m == 2) return hv2(std::move(pts), ref);
  // Sorting by the last objective, worst first, keeps the limited sets small.
  std::sort(pts.begin(), pts.end(), [m](const Point& a, const Point& b) { return a[m - 1] > b[m - 1]; });
  double v = 0;
  for (size_t i = 0; i < pts.size(); ++i) v += exclusive(pts, i, ref);
  return v;
}

} // namespace

double hypervolume(const std::vector<Point>& points, const Point& reference) {
  std::vector<Point> inside;
  for (const auto& p : points) {
    bool ok = p.size() == reference.size();
    for (size_t k = 0; ok && k < p.size(); ++k) ok = std::isfinite(p[k]) && p[k] < reference[k];
    if (ok) inside.push_back(p);
  }
  return wfg(nondominated(std::move(inside)), reference);
}

} // namespace nas::pareto
