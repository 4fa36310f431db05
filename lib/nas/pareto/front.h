// front: non-dominated sorting, crowding distance, hypervolume and knee point.
// Every function works on points in "minimize" orientation: the caller negates objectives
// to be maximized (see orient()). Library code shared by nas-pareto and the multi-objective
// search strategies.
#pragma once
#include <cstddef>
#include <vector>

namespace nas::pareto {

using Point = std::vector<double>;

// Copies `values` with every objective i where maximize[i] is true negated.
Point orient(const Point& values, const std::vector<bool>& maximize);

// a dominates b: no worse in every objective and better in at least one (minimization).
bool dominates(const Point& a, const Point& b);

// Fast non-dominated sort (Deb et al. 2002), O(M N^2): fronts of indices into `points`, the
// first front non-dominated. Equal points share a front. Every index appears exactly once.
std::vector<std::vector<size_t>> nondominated_sort(const std::vector<Point>& points);

// Crowding distance of each member of `front` (indices into points), in the order of `front`:
// per objective the normalised gap between a point's neighbours, summed; the extremes of every
// objective get +infinity. Fronts of one or two points are all +infinity.
std::vector<double> crowding_distance(const std::vector<Point>& points, const std::vector<size_t>& front);

// Hypervolume dominated by `points` and bounded by `reference` (exact, any dimension: a sweep
// for 1 and 2 objectives, the WFG algorithm of While, Bradstreet and Barone (2012) above).
// Points that do not strictly dominate the reference contribute nothing; dominated and
// duplicate points are ignored; the result does not depend on the order of the points.
double hypervolume(const std::vector<Point>& points, const Point& reference);

// A reference point derived from the points: the nadir (worst value per objective) plus
// `margin` times the range of that objective (or times |nadir|, or 1, when the range is zero).
Point derived_reference(const std::vector<Point>& points, double margin = 0.1);

// The knee of a front (indices into points): in objectives normalised to [0, 1] over the front,
// the point farthest below the hyperplane through the front's extreme points (the line between
// the two extremes in 2D); when that plane is degenerate, the point closest to the ideal point.
// Returns an index into `front`; front must not be empty.
size_t knee_point(const std::vector<Point>& points, const std::vector<size_t>& front);

} // namespace nas::pareto
