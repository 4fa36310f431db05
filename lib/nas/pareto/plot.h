// plot: SVG pictures of fronts and of hypervolume histories, written by minnow itself
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nas::pareto {

// One axis of a scatter: what it shows and which way is better.
struct PlotAxis {
  std::string name;             // objective name, e.g. "params" or "local:cpu:latency_s"
  std::string unit;             // e.g. "count", "MAC", "B", "s", "" when unknown
  bool maximize = false;        // better is larger
  bool log = false;             // logarithmic scale (callers may set it; see auto_log_scale)
};

// One trial in a scatter.
struct PlotPoint {
  int64_t id = 0;               // trial id, used as the label of front points
  std::vector<double> values;   // one per axis, in the objective's own units and direction
  int rank = 0;                 // 0 = the non-dominated front, 1 = the next front, ...
  bool knee = false;
};

// True when a positive range spans more than two decades (then a log axis reads better): every
// finite value is > 0 and max/min > 100. Non-finite values are ignored, as the plots skip them.
bool auto_log_scale(const std::vector<double>& values);

// A scatter of every point with the front (rank 0) highlighted, connected in order and
// labelled with trial ids, the knee marked, axes with ticks, names and units, and a legend.
// Two axes: one panel. More: a grid of pairwise panels (every pair once). Returns the SVG
// document (UTF-8, with width/height and viewBox, so that browsers render it at a readable size).
// In each panel every trial has one element of class "point" (a grey dot), every front trial
// also one of class "front" (drawn over its dot), every knee one of class "knee" (a ring), and
// front trials a "label" with their id unless no free place is left for it; axes are groups of
// class "axis", panels of class "panel". Each marker's <title> reads "trial ID: NAME=VALUE, ...".
// A point with a NaN or infinite value (or beyond +-1e300) is left out and counted in the
// legend; a log axis holding a value <= 0 is drawn linear.
// Throws std::invalid_argument for fewer than two axes or a point without one value per axis.
std::string scatter_svg(const std::string& title, const std::vector<PlotAxis>& axes,
                        const std::vector<PlotPoint>& points);

// A line plot (e.g. hypervolume after each finished trial) with markers, axes and labels,
// joining the points in the order given. Axis titles show name and unit, not the direction.
// Pairs with a NaN or infinite value (or beyond +-1e300) are skipped; the others are markers
// of class "point".
// Throws std::invalid_argument when xs and ys differ in length.
std::string line_svg(const std::string& title, const PlotAxis& x, const PlotAxis& y,
                     const std::vector<double>& xs, const std::vector<double>& ys);

// Text escaped for SVG/XML content and attributes (& < > " '); control characters that XML 1.0
// cannot carry (all below 0x20 but tab, newline, return) are dropped.
std::string xml_escape(const std::string& s);

} // namespace nas::pareto
