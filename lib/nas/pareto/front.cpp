// front: non-dominated sorting, crowding distance, reference points and knee
#include "nas/pareto/front.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace nas::pareto {

Point orient(const Point& values, const std::vector<bool>& maximize) {
  Point p = values;
  for (size_t i = 0; i < p.size() && i < maximize.size(); ++i)
    if (maximize[i]) p[i] = -p[i];
  return p;
}

bool dominates(const Point& a, const Point& b) {
  bool better = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) better = true;
  }
  return better;
}

std::vector<std::vector<size_t>> nondominated_sort(const std::vector<Point>& points) {
  const size_t n = points.size();
  std::vector<std::vector<size_t>> dominated_by(n);   // i dominates these
  std::vector<size_t> count(n, 0);                     // how many dominate i
  std::vector<std::vector<size_t>> fronts(1);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (dominates(points[i], points[j])) { dominated_by[i].push_back(j); ++count[j]; }
      else if (dominates(points[j], points[i])) { dominated_by[j].push_back(i); ++count[i]; }
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (count[i] == 0) fronts[0].push_back(i);
  for (size_t f = 0; !fronts[f].empty(); ++f) {
    std::vector<size_t> next;
    for (size_t i : fronts[f])
      for (size_t j : dominated_by[i])
        if (--count[j] == 0) next.push_back(j);
    std::sort(next.begin(), next.end());
    fronts.push_back(std::move(next));
  }
  fronts.pop_back();  // the empty one that ended the loop
  return fronts;
}

std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<size_t>& front) {
  const double inf = std::numeric_limits<double>::infinity();
  const size_t n = front.size();
  std::vector<double> d(n, 0.0);
  if (n <= 2) return std::vector<double>(n, inf);
  const size_t m = points[front[0]].size();
  std::vector<size_t> order(n);
  for (size_t k = 0; k < m; ++k) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return points[front[a]][k] < points[front[b]][k]; });
    double lo = points[front[order.front()]][k], hi = points[front[order.back()]][k];
    d[order.front()] = d[order.back()] = inf;
    if (hi <= lo) continue;
    for (size_t r = 1; r + 1 < n; ++r)
      d[order[r]] += (points[front[order[r + 1]]][k] - points[front[order[r - 1]]][k]) / (hi - lo);
  }
  return d;
}

Point derived_reference(const std::vector<Point>& points, double margin) {
  if (points.empty()) return {};
  const size_t m = points[0].size();
  Point lo(m, std::numeric_limits<double>::infinity()), hi(m, -std::numeric_limits<double>::infinity());
  for (const auto& p : points)
    for (size_t k = 0; k < m; ++k) {
      if (!std::isfinite(p[k])) continue;
      lo[k] = std::min(lo[k], p[k]);
      hi[k] = std::max(hi[k], p[k]);
    }
  Point ref(m);
  for (size_t k = 0; k < m; ++k) {
    double range = hi[k] - lo[k];
    double step = range > 0 ? range : (hi[k] != 0 ? std::fabs(hi[k]) : 1.0);
    ref[k] = hi[k] + margin * step;
  }
  return ref;
}

// Solves A x = b by Gaussian elimination with partial pivoting; false when singular.
static bool solve(std::vector<std::vector<double>> a, std::vector<double> b, std::vector<double>& x) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
    if (std::fabs(a[p][c]) < 1e-12) return false;
    std::swap(a[p], a[c]);
    std::swap(b[p], b[c]);
    for (size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  x.resize(n);
  for (size_t i = 0; i < n; ++i) x[i] = b[i] / a[i][i];
  return true;
}

size_t knee_point(const std::vector<Point>& points, const std::vector<size_t>& front) {
  const size_t n = front.size(), m = points[front[0]].size();
  if (n <= 2 || m < 2) return 0;
  // normalise over the front
  Point lo(m, std::numeric_limits<double>::infinity()), hi(m, -std::numeric_limits<double>::infinity());
  for (size_t i : front)
    for (size_t k = 0; k < m; ++k) { lo[k] = std::min(lo[k], points[i][k]); hi[k] = std::max(hi[k], points[i][k]); }
  std::vector<Point> z(n, Point(m));
  for (size_t r = 0; r < n; ++r)
    for (size_t k = 0; k < m; ++k) z[r][k] = hi[k] > lo[k] ? (points[front[r]][k] - lo[k]) / (hi[k] - lo[k]) : 0.0;
  // extreme point of each objective: the member with the smallest value there (ties: smallest sum)
  std::vector<std::vector<double>> extremes;
  for (size_t k = 0; k < m; ++k) {
    size_t best = 0;
    for (size_t r = 1; r < n; ++r) {
      double sr = std::accumulate(z[r].begin(), z[r].end(), 0.0), sb = std::accumulate(z[best].begin(), z[best].end(), 0.0);
      if (z[r][k] < z[best][k] || (z[r][k] == z[best][k] && sr < sb)) best = r;
    }
    extremes.push_back(z[best]);
  }
  // hyperplane w . x = 1 through the extremes; a point far below it bulges toward the ideal
  std::vector<double> w;
  if (solve(extremes, std::vector<double>(m, 1.0), w)) {
    double norm = std::sqrt(std::inner_product(w.begin(), w.end(), w.begin(), 0.0));
    size_t best = 0;
    double best_d = -std::numeric_limits<double>::infinity();
    for (size_t r = 0; r < n; ++r) {
      double d = (1.0 - std::inner_product(w.begin(), w.end(), z[r].begin(), 0.0)) / norm;
      if (d > best_d) { best_d = d; best = r; }
    }
    if (best_d > 1e-12) return best;
  }
  size_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (size_t r = 0; r < n; ++r) {
    double d = std::inner_product(z[r].begin(), z[r].end(), z[r].begin(), 0.0);
    if (d < best_d) { best_d = d; best = r; }
  }
  return best;
}

} // namespace nas::pareto
