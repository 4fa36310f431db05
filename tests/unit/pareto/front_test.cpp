// front_test: sorting, crowding, hypervolume against analytic and brute-force values, knee
#include <doctest/doctest.h>

#include "nas/core/random.h"
#include "nas/pareto/front.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace nas;
using namespace nas::pareto;

static std::vector<Point> random_points(Rng& r, size_t n, size_t m) {
  std::vector<Point> pts(n, Point(m));
  for (auto& p : pts)
    for (auto& v : p) v = r.uniform();
  return pts;
}

// Exact hypervolume by inclusion-exclusion over all subsets: slow, obviously right.
static double brute_hv(const std::vector<Point>& pts, const Point& ref) {
  const size_t n = pts.size(), m = ref.size();
  double total = 0;
  for (size_t mask = 1; mask < (size_t(1) << n); ++mask) {
    Point corner(m, -std::numeric_limits<double>::infinity());
    int bits = 0;
    for (size_t i = 0; i < n; ++i)
      if (mask >> i & 1) {
        ++bits;
        for (size_t k = 0; k < m; ++k) corner[k] = std::max(corner[k], pts[i][k]);
      }
    double v = 1;
    for (size_t k = 0; k < m; ++k) v *= std::max(0.0, ref[k] - corner[k]);
    total += (bits % 2 ? 1 : -1) * v;
  }
  return total;
}

TEST_CASE("non-dominated sorting agrees with the definition") {
  Rng r(1);
  auto pts = random_points(r, 200, 3);
  auto fronts = nondominated_sort(pts);
  std::vector<int> rank(pts.size(), -1);
  size_t seen = 0;
  for (size_t f = 0; f < fronts.size(); ++f)
    for (size_t i : fronts[f]) { CHECK(rank[i] == -1); rank[i] = int(f); ++seen; }
  CHECK(seen == pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < pts.size(); ++j) {
      if (dominates(pts[j], pts[i])) {
        dominated = true;
        CHECK(rank[j] < rank[i]);  // a dominator sits in an earlier front
      }
    }
    CHECK(dominated == (rank[i] > 0));
  }
}

TEST_CASE("equal points share a front; maximisation by orientation") {
  std::vector<Point> pts = {{1, 2}, {1, 2}, {2, 1}, {3, 3}};
  auto fronts = nondominated_sort(pts);
  REQUIRE(fronts.size() == 2);
  CHECK(fronts[0] == std::vector<size_t>{0, 1, 2});
  CHECK(fronts[1] == std::vector<size_t>{3});
  // maximise the first objective (accuracy), minimise the second (params)
  std::vector<bool> maximize = {true, false};
  std::vector<Point> acc_params = {orient({0.9, 100}, maximize), orient({0.8, 50}, maximize), orient({0.7, 80}, maximize)};
  auto f2 = nondominated_sort(acc_params);
  CHECK(f2[0] == std::vector<size_t>{0, 1});
  CHECK(f2[1] == std::vector<size_t>{2});
}

TEST_CASE("crowding distance: extremes infinite, interior by neighbour gaps") {
  std::vector<Point> pts = {{0, 4}, {1, 3}, {2, 1}, {4, 0}};
  std::vector<size_t> front = {0, 1, 2, 3};
  auto d = crowding_distance(pts, front);
  CHECK(std::isinf(d[0]));
  CHECK(std::isinf(d[3]));
  CHECK(d[1] == doctest::Approx(2.0 / 4 + 3.0 / 4));
  CHECK(d[2] == doctest::Approx(3.0 / 4 + 3.0 / 4));
}

TEST_CASE("hypervolume of the linear front x + y = 1 matches its closed form") {
  for (size_t n : {2u, 11u, 1001u}) {
    std::vector<Point> pts;
    for (size_t i = 0; i < n; ++i) {
      double x = double(i) / double(n - 1);
      pts.push_back({x, 1 - x});
    }
    // staircase under the line: 1/2 - 1/(2(n-1))
    CHECK(hypervolume(pts, {1, 1}) == doctest::Approx(0.5 - 0.5 / double(n - 1)).epsilon(1e-12));
  }
}

TEST_CASE("hypervolume of the spherical DTLZ2 front approaches 1 - pi/6") {
  // dense grid on the positive octant of the unit sphere
  std::vector<Point> pts;
  const int k = 40;
  for (int i = 0; i <= k; ++i)
    for (int j = 0; j <= k; ++j) {
      double th = M_PI / 2 * i / k, ph = M_PI / 2 * j / k;
      pts.push_back({std::cos(th) * std::cos(ph), std::cos(th) * std::sin(ph), std::sin(th)});
    }
  double hv = hypervolume(pts, {1, 1, 1});
  CHECK(hv < 1 - M_PI / 6);                 // a finite sample dominates less than the surface
  CHECK(hv == doctest::Approx(1 - M_PI / 6).epsilon(0.03));
}

TEST_CASE("hypervolume equals inclusion-exclusion in 2 to 5 dimensions") {
  Rng r(7);
  for (size_t m = 2; m <= 5; ++m)
    for (int trial = 0; trial < 20; ++trial) {
      auto pts = random_points(r, 9, m);
      Point ref(m, 1.1);
      CHECK(hypervolume(pts, ref) == doctest::Approx(brute_hv(pts, ref)).epsilon(1e-9));
    }
}

TEST_CASE("hypervolume ignores order, dominated, duplicate and outside points") {
  Rng r(3);
  auto pts = random_points(r, 40, 3);
  Point ref = {1, 1, 1};
  double hv = hypervolume(pts, ref);
  auto shuffled = pts;
  std::reverse(shuffled.begin(), shuffled.end());
  std::swap(shuffled[0], shuffled[17]);
  CHECK(hypervolume(shuffled, ref) == doctest::Approx(hv).epsilon(1e-12));
  auto more = pts;
  more.push_back(pts[5]);                 // duplicate
  more.push_back({0.99, 0.99, 0.99});     // dominated by almost everything
  more.push_back({0.1, 0.1, 1.5});        // outside the reference box
  more.push_back({0.2, std::nan(""), 0.1}); // not a number
  CHECK(hypervolume(more, ref) == doctest::Approx(hv).epsilon(1e-12));
  CHECK(hypervolume({}, ref) == 0);
}

TEST_CASE("derived reference: nadir plus a margin of the range") {
  std::vector<Point> pts = {{0, 10}, {2, 4}, {1, 6}};
  auto ref = derived_reference(pts, 0.1);
  CHECK(ref[0] == doctest::Approx(2.2));
  CHECK(ref[1] == doctest::Approx(10.6));
  auto flat = derived_reference({{3, 5}, {3, 7}}, 0.1);
  CHECK(flat[0] == doctest::Approx(3.3));
}

TEST_CASE("the knee is the point that bulges most toward the ideal") {
  std::vector<Point> pts = {{0, 1}, {0.1, 0.5}, {0.2, 0.2}, {0.5, 0.1}, {1, 0}};
  std::vector<size_t> front = {0, 1, 2, 3, 4};
  CHECK(knee_point(pts, front) == 2);
  // scale does not matter: objectives are normalised over the front
  for (auto& p : pts) p[1] *= 1e6;
  CHECK(knee_point(pts, front) == 2);
  std::vector<Point> pts3 = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.2, 0.2, 0.2}, {0.5, 0.4, 0.3}};
  std::vector<size_t> f3 = {0, 1, 2, 3, 4};
  CHECK(knee_point(pts3, f3) == 3);
}
