// plot: SVG scatter plots of fronts and line plots of histories, standard library only
#include "nas/pareto/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace nas::pareto {
namespace {

const char* const kInk = "#333";
const char* const kFrontColour = "#1f77b4";
const char* const kKneeColour = "#d62728";
const char* const kLabelColour = "#0d3a5c";

constexpr double kHeader = 64;          // px above the panels: title and legend
constexpr double kLineHeader = 44;      // px above the panel of a line plot: title only
constexpr double kCell = 300;           // px, one panel of a pairwise grid
constexpr double kTickCharWidth = 6.5;  // px per character of an 11 px tick label (generous)
constexpr double kLabelCharWidth = 6;   // px per character of a 10 px trial-id label
constexpr double kLabelHeight = 10;     // px
constexpr double kLegendCharWidth = 6.5;  // px per character of 12 px legend text

// Drops the trailing zeros (and a bare point) of a fixed-point number.
std::string trim_zeros(std::string s) {
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return trim_zeros(buf);
}

// A coordinate or length in the document: two decimals keep files small and are finer than a pixel.
std::string num(double v) { return fixed(v, 2); }

// A value as hover text shows it: eight significant digits, counts below 10^8 in full.
std::string value_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

// A compact tick label (0.25, 500, 1.5k, 2M, 3e-5, 2e18) with as many decimals as `step` resolves.
std::string tick_label(double v, double step) {
  const double a = std::fabs(v);
  if (a < step * 1e-6) return "0";
  auto decimals = [](double resolution) {
    return std::clamp(int(std::ceil(-std::log10(resolution) - 1e-9)), 0, 9);
  };
  if (a < 1e-3 || a >= 1e15) {
    const int e = int(std::floor(std::log10(a) + 1e-9));
    const double scale = std::pow(10.0, e);
    return fixed(v / scale, decimals(step / scale)) + "e" + std::to_string(e);
  }
  static const struct { double factor; const char* suffix; } units[] = {
      {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
  for (const auto& u : units)
    if (a >= u.factor * (1 - 1e-9)) return fixed(v / u.factor, decimals(step / u.factor)) + u.suffix;
  return fixed(v, decimals(step));
}

struct Tick {
  double value;
  std::string label;
};

// Maps data values to pixels along one axis. On a log scale the domain is in log10 units.
struct Scale {
  bool log = false;
  double lo = 0, hi = 1;  // domain
  double p0 = 0, p1 = 1;  // pixels of lo and hi (p1 < p0 on a vertical axis)

  double pixel(double v) const {
    const double u = log ? std::log10(v) : v;
    return p0 + (u - lo) / (hi - lo) * (p1 - p0);
  }
};

// A scale over finite `values`: logarithmic when asked for and every value is positive (else
// linear); the domain is the data range padded by 5% each side, a zero range widened around
// its value, no values at all [0, 1].
Scale make_scale(const std::vector<double>& values, bool want_log) {
  Scale s;
  if (values.empty()) return s;
  s.log = want_log && std::all_of(values.begin(), values.end(), [](double v) { return v > 0; });
  const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  double lo = s.log ? std::log10(*mn) : *mn, hi = s.log ? std::log10(*mx) : *mx;
  const double pad = hi > lo ? 0.05 * (hi - lo) : s.log ? 0.5 : lo != 0 ? 0.1 * std::fabs(lo) : 1;
  s.lo = lo - pad;
  s.hi = hi + pad;
  return s;
}

// 1, 2 or 5 times a power of ten, the nearest such to `raw` on a log scale.
double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < std::sqrt(2.0) ? 1 : r < std::sqrt(10.0) ? 2 : r < std::sqrt(50.0) ? 5 : 10) * mag;
}

// Ticks at round numbers inside the domain. Linear: multiples of a 1-2-5 step, about `target`
// of them. Log: decades, every k-th when there are more than twice `target` (decade labels are
// short); when fewer than three decades are in view, 1, 2 and 5 times each decade, or every
// digit when that is still fewer than three.
std::vector<Tick> make_ticks(const Scale& s, double target) {
  std::vector<Tick> out;
  target = std::max(target, 2.0);
  if (!s.log) {
    const double step = nice_step((s.hi - s.lo) / target);
    const double first = std::ceil(s.lo / step - 1e-9), last = std::floor(s.hi / step + 1e-9);
    // Counted, not stepped: past 2^53 adding 1 to a double no longer changes it.
    for (int i = 0; i <= std::min(last - first, 100.0); ++i)
      out.push_back({(first + i) * step, tick_label((first + i) * step, step)});
    return out;
  }
  const double eps = 1e-9 * (s.hi - s.lo);
  const int e0 = int(std::floor(s.lo)), e1 = int(std::ceil(s.hi));
  auto collect = [&](std::initializer_list<int> digits) {
    std::vector<double> v;
    for (int e = e0; e <= e1; ++e)
      for (int d : digits) {
        const double lt = std::log10(d) + e;
        const double t = d * std::pow(10.0, e);
        if (lt >= s.lo - eps && lt <= s.hi + eps && t > 0 && std::isfinite(t)) v.push_back(t);
      }
    return v;
  };
  std::vector<double> values = collect({1});
  if (values.size() >= 3) {
    const int stride = int(std::ceil(double(values.size()) / (2 * target)));
    std::vector<double> kept;
    for (double t : values) {
      const int e = int(std::lround(std::log10(t)));
      if ((e % stride + stride) % stride == 0) kept.push_back(t);
    }
    values = kept;
  } else {
    values = collect({1, 2, 5});
    if (values.size() < 3) values = collect({1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
  for (double t : values) out.push_back({t, tick_label(t, std::pow(10.0, std::floor(std::log10(t) + 1e-9)))});
  return out;
}

// One plot area inside a panel (panel coordinates), its scales with pixel ranges, its ticks.
struct Plot {
  Scale x, y;
  std::vector<Tick> xt, yt;
  double left = 0, top = 0, right = 0, bottom = 0;
  double ytitle_x = 0;  // baseline of the rotated y title, left of the widest y tick label
};

// Lays out the plot area of a `w` x `h` panel: room below for x tick labels and title, on the
// left as much as the widest y tick label needs plus the y title.
Plot layout(const Scale& x, const Scale& y, double w, double h) {
  Plot p;
  p.top = 10;
  p.bottom = h - 48;
  p.y = y;
  p.y.p0 = p.bottom;
  p.y.p1 = p.top;
  p.yt = make_ticks(p.y, (p.bottom - p.top) / 60);
  size_t widest = 1;
  for (const auto& t : p.yt) widest = std::max(widest, t.label.size());
  p.ytitle_x = 18;
  p.left = p.ytitle_x + 10 + widest * kTickCharWidth + 8;
  p.right = w - 24;
  p.x = x;
  p.x.p0 = p.left;
  p.x.p1 = p.right;
  p.xt = make_ticks(p.x, (p.right - p.left) / 100);
  return p;
}

// "NAME [UNIT] (min)": the unit only when known, the direction only for objectives.
std::string axis_title(const PlotAxis& a, bool direction) {
  std::string t = a.name;
  if (!a.unit.empty()) t += " [" + a.unit + "]";
  if (direction) t += a.maximize ? " (max)" : " (min)";
  return xml_escape(t);
}

// The grid, the frame and both axes (ticks, tick labels, titles) of a plot area.
void draw_axes(std::string& o, const Plot& p, const std::string& xtitle, const std::string& ytitle) {
  o += "<path stroke=\"#ececec\" d=\"";
  for (const auto& t : p.xt) o += "M" + num(p.x.pixel(t.value)) + " " + num(p.top) + "V" + num(p.bottom);
  for (const auto& t : p.yt) o += "M" + num(p.left) + " " + num(p.y.pixel(t.value)) + "H" + num(p.right);
  o += "\"/>\n<rect x=\"" + num(p.left) + "\" y=\"" + num(p.top) + "\" width=\"" + num(p.right - p.left) +
       "\" height=\"" + num(p.bottom - p.top) + "\" fill=\"none\" stroke=\"#bbb\"/>\n";

  o += "<g class=\"axis\" text-anchor=\"middle\" fill=\"" + std::string(kInk) + "\">\n<path stroke=\"" + kInk +
       "\" d=\"M" + num(p.left) + " " + num(p.bottom) + "H" + num(p.right);
  for (const auto& t : p.xt) o += "M" + num(p.x.pixel(t.value)) + " " + num(p.bottom) + "v5";
  o += "\"/>\n";
  for (const auto& t : p.xt)
    o += "<text class=\"tick\" x=\"" + num(p.x.pixel(t.value)) + "\" y=\"" + num(p.bottom + 17) + "\">" +
         t.label + "</text>\n";
  o += "<text class=\"title\" x=\"" + num((p.left + p.right) / 2) + "\" y=\"" + num(p.bottom + 38) +
       "\" font-size=\"12\">" + xtitle + "</text>\n</g>\n";

  const double title_x = p.ytitle_x;
  const double title_y = (p.top + p.bottom) / 2;
  o += "<g class=\"axis\" text-anchor=\"end\" fill=\"" + std::string(kInk) + "\">\n<path stroke=\"" + kInk +
       "\" d=\"M" + num(p.left) + " " + num(p.top) + "V" + num(p.bottom);
  for (const auto& t : p.yt) o += "M" + num(p.left) + " " + num(p.y.pixel(t.value)) + "h-5";
  o += "\"/>\n";
  for (const auto& t : p.yt)
    o += "<text class=\"tick\" x=\"" + num(p.left - 8) + "\" y=\"" + num(p.y.pixel(t.value) + 4) + "\">" +
         t.label + "</text>\n";
  o += "<text class=\"title\" x=\"" + num(title_x) + "\" y=\"" + num(title_y) + "\" text-anchor=\"middle\" " +
       "font-size=\"12\" transform=\"rotate(-90 " + num(title_x) + " " + num(title_y) + ")\">" + ytitle +
       "</text>\n</g>\n";
}

std::string open_svg(double w, double h, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) +
         "\" viewBox=\"0 0 " + num(w) + " " + num(h) + "\" font-family=\"sans-serif\" font-size=\"11\">\n" +
         "<title>" + xml_escape(title) + "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n" +
         "<text class=\"title\" x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\" fill=\"" + kInk + "\">" +
         xml_escape(title) + "</text>\n";
}

std::string circle(const char* cls, double x, double y, double r, const std::string& style,
                   const std::string& hover) {
  return "<circle class=\"" + std::string(cls) + "\" cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) +
         "\" " + style + "><title>" + hover + "</title></circle>\n";
}

// Dominated trials are grey, lighter for later fronts.
std::string grey_fill(int rank) {
  const int level = std::min(0x8c + 12 * std::max(rank - 1, 0), 0xcf);
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", level, level, level);
  return buf;
}

// A trial placed in one panel.
struct Placed {
  const PlotPoint* p;
  const std::string* hover;
  double x, y;  // px
};

struct Box {
  double x0, y0, x1, y1;
};

bool overlaps(const Box& a, const Box& b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

// Trial-id labels of the front markers, in the order given. Each goes to the first of eight
// places around its marker, trying first the side where the better values lie (that side of a
// front is empty), that lies inside the plot area and clear of every front marker, of the
// labels placed before it and of the other trials' dots; failing that, the first place clear
// of all but the dots. A label with no such place is left out (its marker's hover text still
// names the trial).
void draw_labels(std::string& o, const Plot& p, const std::vector<Placed>& front, const std::vector<Placed>& dots,
                 bool x_max, bool y_max) {
  auto radius = [](const Placed& f) { return f.p->knee ? 10.0 : 5.5; };  // drawn extent of the marker
  auto clear = [](const Box& b, const std::vector<Box>& boxes) {
    return std::none_of(boxes.begin(), boxes.end(), [&](const Box& t) { return overlaps(b, t); });
  };
  std::vector<Box> marks, grey;
  for (const auto& f : front) marks.push_back({f.x - radius(f), f.y - radius(f), f.x + radius(f), f.y + radius(f)});
  for (const auto& d : dots)
    if (d.p->rank != 0) grey.push_back({d.x - 3, d.y - 3, d.x + 3, d.y + 3});
  const int sx = x_max ? 1 : -1, sy = y_max ? -1 : 1;  // pixel direction of better values
  const int order[8][2] = {{sx, sy}, {sx, 0}, {0, sy}, {sx, -sy}, {-sx, sy}, {-sx, 0}, {0, -sy}, {-sx, -sy}};
  for (const auto& f : front) {
    const std::string text = std::to_string(f.p->id);
    const double w = text.size() * kLabelCharWidth, h = kLabelHeight, r = radius(f) + 1;
    std::vector<Box> places;
    for (const auto& d : order) {
      const double x0 = d[0] > 0 ? f.x + r : d[0] < 0 ? f.x - r - w : f.x - w / 2;
      const double y0 = d[1] > 0 ? f.y + r : d[1] < 0 ? f.y - r - h : f.y - h / 2;
      const Box b{x0, y0, x0 + w, y0 + h};
      if (b.x0 >= p.left && b.x1 <= p.right && b.y0 >= p.top && b.y1 <= p.bottom && clear(b, marks))
        places.push_back(b);
    }
    if (places.empty()) continue;
    const auto best = std::find_if(places.begin(), places.end(), [&](const Box& b) { return clear(b, grey); });
    const Box b = best != places.end() ? *best : places.front();
    marks.push_back({b.x0 - 2, b.y0 - 2, b.x1 + 2, b.y1 + 2});  // keeps neighbouring ids apart
    o += "<text class=\"label\" x=\"" + num(b.x0) + "\" y=\"" + num(b.y0 + 8) + "\">" + text + "</text>\n";
  }
}

// One panel of a scatter: axes `ix` (horizontal) and `iy` (vertical), every trial grey, the
// front on top (with its staircase when `staircase`), the knee ringed, the front labelled.
void draw_scatter_panel(std::string& o, double ox, double oy, double w, double h, const std::vector<PlotAxis>& axes,
                        const std::vector<Scale>& scales, size_t ix, size_t iy,
                        const std::vector<const PlotPoint*>& shown, const std::vector<std::string>& hover,
                        bool staircase) {
  const Plot p = layout(scales[ix], scales[iy], w, h);
  o += "<g class=\"panel\" transform=\"translate(" + num(ox) + " " + num(oy) + ")\">\n";
  draw_axes(o, p, axis_title(axes[ix], true), axis_title(axes[iy], true));

  std::vector<Placed> placed;
  for (size_t k = 0; k < shown.size(); ++k)
    placed.push_back({shown[k], &hover[k], p.x.pixel(shown[k]->values[ix]), p.y.pixel(shown[k]->values[iy])});
  for (const auto& t : placed)
    o += circle("point", t.x, t.y, 3, "fill=\"" + grey_fill(t.p->rank) + "\"", *t.hover);

  std::vector<Placed> front;
  for (const auto& t : placed)
    if (t.p->rank == 0) front.push_back(t);
  std::stable_sort(front.begin(), front.end(), [&](const Placed& a, const Placed& b) {
    if (a.p->values[ix] != b.p->values[ix]) return a.p->values[ix] < b.p->values[ix];
    return a.p->values[iy] < b.p->values[iy];
  });
  if (staircase && front.size() > 1) {
    // Between neighbours the line turns at their componentwise worse corner: the boundary of
    // the region the front dominates.
    const bool xmax = axes[ix].maximize, ymax = axes[iy].maximize;
    o += "<path class=\"front-line\" fill=\"none\" stroke=\"" + std::string(kFrontColour) +
         "\" stroke-width=\"1.5\" d=\"M" + num(front[0].x) + " " + num(front[0].y);
    for (size_t k = 1; k < front.size(); ++k) {
      const Placed &a = front[k - 1], &b = front[k];
      const double cx = (a.p->values[ix] < b.p->values[ix]) == xmax ? a.x : b.x;
      const double cy = (a.p->values[iy] < b.p->values[iy]) == ymax ? a.y : b.y;
      o += "L" + num(cx) + " " + num(cy) + "L" + num(b.x) + " " + num(b.y);
    }
    o += "\"/>\n";
  }
  for (const auto& t : front)
    o += circle("front", t.x, t.y, 5, "fill=\"" + std::string(kFrontColour) + "\" stroke=\"#fff\"", *t.hover);
  for (const auto& t : placed)
    if (t.p->knee)
      o += circle("knee", t.x, t.y, 9,
                  "fill=\"none\" stroke=\"" + std::string(kKneeColour) + "\" stroke-width=\"2\"",
                  "knee: " + *t.hover);
  o += "<g font-size=\"10\" fill=\"" + std::string(kLabelColour) + "\">\n";
  draw_labels(o, p, front, placed, axes[ix].maximize, axes[iy].maximize);
  o += "</g>\n</g>\n";
}

// The legend row under the title: front, other trials, knee, and how many trials were left out.
void draw_legend(std::string& o, size_t front, size_t others, const std::vector<int64_t>& knees, size_t hidden,
                 bool staircase) {
  const double y = 50, cy = 46;
  double x = 16;
  auto text = [&](const std::string& s, const char* fill) {
    o += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" fill=\"" + fill + "\">" + s + "</text>\n";
    x += s.size() * kLegendCharWidth + 22;
  };
  o += "<g class=\"legend\" font-size=\"12\">\n";
  if (staircase)
    o += "<path d=\"M" + num(x) + " " + num(cy) + "h20\" stroke=\"" + kFrontColour + "\" stroke-width=\"1.5\"/>\n";
  o += "<circle cx=\"" + num(x + 10) + "\" cy=\"" + num(cy) + "\" r=\"5\" fill=\"" + kFrontColour +
       "\" stroke=\"#fff\"/>\n";
  x += 26;
  text("front: " + std::to_string(front) + (front == 1 ? " trial" : " trials"), kInk);
  o += "<circle cx=\"" + num(x + 4) + "\" cy=\"" + num(cy) + "\" r=\"3\" fill=\"" + grey_fill(1) + "\"/>\n";
  x += 12;
  text("other trials: " + std::to_string(others), kInk);
  if (!knees.empty()) {
    o += "<circle cx=\"" + num(x + 9) + "\" cy=\"" + num(cy) + "\" r=\"7\" fill=\"none\" stroke=\"" + kKneeColour +
         "\" stroke-width=\"2\"/>\n";
    x += 22;
    text(knees.size() == 1 ? "knee: trial " + std::to_string(knees[0]) : "knee", kInk);
  }
  if (hidden > 0)
    text(std::to_string(hidden) + (hidden == 1 ? " trial" : " trials") + " with NaN or infinite values not shown",
         "#888");
  o += "</g>\n";
}

// Finite and small enough that a padded range between two such values cannot overflow.
bool plottable(double v) { return std::fabs(v) <= 1e300; }

bool all_plottable(const std::vector<double>& v) { return std::all_of(v.begin(), v.end(), plottable); }

} // namespace

bool auto_log_scale(const std::vector<double>& values) {
  double mn = HUGE_VAL, mx = -HUGE_VAL;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (v <= 0) return false;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  return mn <= mx && mx / mn > 100;
}

std::string scatter_svg(const std::string& title, const std::vector<PlotAxis>& axes,
                        const std::vector<PlotPoint>& points) {
  const size_t m = axes.size();
  if (m < 2) throw std::invalid_argument("scatter_svg: needs at least two axes, got " + std::to_string(m));
  std::vector<const PlotPoint*> shown;
  for (const auto& p : points) {
    if (p.values.size() != m)
      throw std::invalid_argument("scatter_svg: trial " + std::to_string(p.id) + " has " +
                                  std::to_string(p.values.size()) + " values for " + std::to_string(m) + " axes");
    if (all_plottable(p.values)) shown.push_back(&p);
  }
  // Later fronts first, so that lighter dots lie beneath darker ones.
  std::stable_sort(shown.begin(), shown.end(), [](const PlotPoint* a, const PlotPoint* b) { return a->rank > b->rank; });

  std::vector<std::string> hover;
  size_t front = 0;
  std::vector<int64_t> knees;
  for (const PlotPoint* p : shown) {
    std::string h = "trial " + std::to_string(p->id) + ":";
    for (size_t i = 0; i < m; ++i) h += (i ? ", " : " ") + axes[i].name + "=" + value_text(p->values[i]);
    hover.push_back(xml_escape(h));
    front += p->rank == 0;
    if (p->knee) knees.push_back(p->id);
  }
  std::vector<Scale> scales;
  for (size_t i = 0; i < m; ++i) {
    std::vector<double> v;
    for (const PlotPoint* p : shown) v.push_back(p->values[i]);
    scales.push_back(make_scale(v, axes[i].log));
  }

  // Two axes: one panel. More: a lower-triangular grid, column i holding axis i horizontally,
  // row j-1 axis j vertically, so that every row and every column shares one objective.
  const bool grid = m > 2;
  const double width = grid ? 20 + (m - 1) * kCell : 720;
  const double height = grid ? kHeader + (m - 1) * kCell + 10 : 540;
  std::string o = open_svg(width, height, title);
  draw_legend(o, front, shown.size() - front, knees, points.size() - shown.size(), !grid);
  for (size_t j = 1; j < m; ++j)
    for (size_t i = 0; i < j; ++i) {
      if (grid)
        draw_scatter_panel(o, 10 + i * kCell, kHeader + (j - 1) * kCell, kCell, kCell, axes, scales, i, j, shown,
                           hover, false);
      else
        draw_scatter_panel(o, 0, kHeader, width, height - kHeader, axes, scales, i, j, shown, hover, true);
    }
  return o + "</svg>\n";
}

std::string line_svg(const std::string& title, const PlotAxis& x, const PlotAxis& y,
                     const std::vector<double>& xs, const std::vector<double>& ys) {
  if (xs.size() != ys.size())
    throw std::invalid_argument("line_svg: " + std::to_string(xs.size()) + " x values but " +
                                std::to_string(ys.size()) + " y values");
  std::vector<double> fx, fy;
  for (size_t k = 0; k < xs.size(); ++k)
    if (plottable(xs[k]) && plottable(ys[k])) {
      fx.push_back(xs[k]);
      fy.push_back(ys[k]);
    }
  const double width = 720, height = 540;
  const Plot p = layout(make_scale(fx, x.log), make_scale(fy, y.log), width, height - kLineHeader);
  std::string o = open_svg(width, height, title);
  o += "<g class=\"panel\" transform=\"translate(0 " + num(kLineHeader) + ")\">\n";
  draw_axes(o, p, axis_title(x, false), axis_title(y, false));
  if (!fx.empty()) {
    o += "<path fill=\"none\" stroke=\"" + std::string(kFrontColour) + "\" stroke-width=\"1.5\" d=\"";
    for (size_t k = 0; k < fx.size(); ++k)
      o += (k ? "L" : "M") + num(p.x.pixel(fx[k])) + " " + num(p.y.pixel(fy[k]));
    o += "\"/>\n";
  }
  const double r = fx.size() > 200 ? 1.8 : 3;
  for (size_t k = 0; k < fx.size(); ++k)
    o += circle("point", p.x.pixel(fx[k]), p.y.pixel(fy[k]), r, "fill=\"" + std::string(kFrontColour) + "\"",
                xml_escape(x.name + "=" + value_text(fx[k]) + ", " + y.name + "=" + value_text(fy[k])));
  return o + "</g>\n</svg>\n";
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default:
      // XML 1.0 cannot represent other control characters, not even as references.
      if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
    }
  }
  return out;
}

} // namespace nas::pareto
