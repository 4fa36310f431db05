// plot_test: SVG scatters and line plots: element counts, axes, ticks, escaping, edge cases
#include <doctest/doctest.h>

#include "nas/pareto/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace nas::pareto;

namespace {

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t i = s.find(needle); i != std::string::npos; i = s.find(needle, i + 1)) ++n;
  return n;
}

// "" when every element is closed, in order; else what is wrong.
std::string unbalanced(const std::string& svg) {
  std::vector<std::string> open;
  for (size_t i = svg.find('<'); i != std::string::npos; i = svg.find('<', i + 1)) {
    const size_t end = svg.find('>', i);
    if (end == std::string::npos) return "unterminated tag";
    const std::string tag = svg.substr(i + 1, end - i - 1);
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "unexpected <" + tag + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

std::string attribute(const std::string& element, const std::string& name) {
  const size_t a = element.find(" " + name + "=\"") + name.size() + 3;
  return element.substr(a, element.find('"', a) - a);
}

// The elements carrying `cls` (start tag through content), in document order, between from and to.
struct Element {
  std::string tag, text;  // the start tag, the text up to the next '<'
};
std::vector<Element> elements(const std::string& svg, const std::string& cls, size_t from = 0,
                              size_t to = std::string::npos) {
  std::vector<Element> out;
  const std::string needle = "class=\"" + cls + "\"";
  for (size_t i = svg.find(needle, from); i < to && i != std::string::npos; i = svg.find(needle, i + 1)) {
    const size_t start = svg.rfind('<', i), close = svg.find('>', i);
    out.push_back({svg.substr(start, close - start + 1), svg.substr(close + 1, svg.find('<', close) - close - 1)});
  }
  return out;
}

// Tick labels of the n-th axis group of the document (each panel has its x axis, then its y axis).
std::vector<std::string> tick_labels(const std::string& svg, size_t n) {
  size_t at = std::string::npos;
  for (size_t k = 0; k <= n; ++k) at = svg.find("<g class=\"axis\"", at + 1);
  REQUIRE(at != std::string::npos);
  std::vector<std::string> out;
  for (const auto& e : elements(svg, "tick", at, svg.find("</g>", at))) out.push_back(e.text);
  return out;
}

const std::vector<PlotAxis> kTwo = {{"params", "count", false, false}, {"accuracy", "%", true, false}};

// Four trials on the front (ids 101..104, 102 the knee), six behind it.
std::vector<PlotPoint> sample_points() {
  return {{101, {1000, 50}, 0, false}, {102, {2000, 70}, 0, true},  {103, {3000, 80}, 0, false},
          {104, {4000, 85}, 0, false}, {1, {2500, 60}, 1, false},    {2, {3500, 70}, 1, false},
          {3, {4500, 80}, 1, false},   {4, {1500, 40}, 1, false},    {5, {3000, 55}, 2, false},
          {6, {4000, 60}, 2, false}};
}

std::vector<PlotPoint> grid(const std::vector<double>& xs, const std::vector<double>& ys) {
  std::vector<PlotPoint> pts;
  for (size_t k = 0; k < xs.size(); ++k) pts.push_back({int64_t(k), {xs[k], ys[k]}, 0, false});
  return pts;
}

void check_document(const std::string& svg) {
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("viewBox=\"0 0 ") != std::string::npos);
  CHECK(svg.find("font-family=\"sans-serif\"") != std::string::npos);
  CHECK(svg.size() >= 7);
  CHECK(svg.compare(svg.size() - 7, 7, "</svg>\n") == 0);
  CHECK(count(svg, "<g") == count(svg, "</g>"));
  CHECK(unbalanced(svg) == "");
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("=\"inf") == std::string::npos);
  CHECK(svg.find("=\"-inf") == std::string::npos);
}

} // namespace

TEST_CASE("a two-objective scatter draws every trial, the front, its labels and the knee once") {
  const auto svg = scatter_svg("accuracy vs. params", kTwo, sample_points());
  check_document(svg);
  CHECK(count(svg, "class=\"panel\"") == 1);
  CHECK(count(svg, "class=\"axis\"") == 2);
  CHECK(count(svg, "class=\"point\"") == 10);
  CHECK(count(svg, "class=\"front\"") == 4);
  CHECK(count(svg, "class=\"knee\"") == 1);
  std::vector<std::string> labels;
  for (const auto& e : elements(svg, "label")) labels.push_back(e.text);
  CHECK(labels == std::vector<std::string>{"101", "102", "103", "104"});
  CHECK(svg.find("<title>trial 102: params=2000, accuracy=70</title>") != std::string::npos);
  CHECK(svg.find("accuracy vs. params</text>") != std::string::npos);
  CHECK(svg.find("knee: trial 102") != std::string::npos);
}

TEST_CASE("axis titles carry name, unit and which way is better") {
  const auto svg = scatter_svg("t", kTwo, sample_points());
  CHECK(svg.find(">params [count] (min)</text>") != std::string::npos);
  CHECK(svg.find(">accuracy [%] (max)</text>") != std::string::npos);
  const auto bare = scatter_svg("t", {{"a", ""}, {"b", "", true}}, sample_points());
  CHECK(bare.find(">a (min)</text>") != std::string::npos);
  CHECK(bare.find(">b (max)</text>") != std::string::npos);
}

TEST_CASE("the two-objective front is joined by a staircase along the dominated side") {
  const auto svg = scatter_svg("t", kTwo, sample_points());
  const auto lines = elements(svg, "front-line");
  REQUIRE(lines.size() == 1);
  std::vector<double> v;  // x0 y0 x1 y1 ... from "Mx yLx y..."
  const std::string d = attribute(lines[0].tag, "d");
  for (const char* s = d.c_str(); *s;) {
    char* end;
    const double x = std::strtod(s + (*s == 'M' || *s == 'L' || *s == ' '), &end);
    v.push_back(x);
    s = end;
  }
  REQUIRE(v.size() == 2 * 7);  // four points and three corners
  const auto first = elements(svg, "front")[0];  // front markers are drawn in order of x
  CHECK(v[0] == std::stod(attribute(first.tag, "cx")));
  CHECK(v[1] == std::stod(attribute(first.tag, "cy")));
  for (size_t k = 0; k + 1 < v.size() / 2; ++k) {
    const double dx = v[2 * k + 2] - v[2 * k], dy = v[2 * k + 3] - v[2 * k + 1];
    // params is minimised and accuracy maximised: from each front point the line runs right
    // (to more params) and then up (to more accuracy), leaving the dominated trials below it
    if (k % 2 == 0) {
      CHECK(dy == 0);
      CHECK(dx > 0);
    } else {
      CHECK(dx == 0);
      CHECK(dy < 0);  // up on screen
    }
  }
  const auto grid3 = scatter_svg("t", {{"a", ""}, {"b", ""}, {"c", ""}},
                                 {{1, {1, 3, 2}, 0, false}, {2, {2, 2, 1}, 0, false}, {3, {3, 1, 3}, 0, false}});
  CHECK(count(grid3, "front-line") == 0);
}

TEST_CASE("three objectives give a grid of three pairwise panels, each with its own axes") {
  std::vector<PlotPoint> pts;
  for (const auto& p : sample_points()) pts.push_back({p.id, {p.values[0], p.values[1], p.values[0] / 100 + p.values[1]}, p.rank, p.knee});
  const auto svg = scatter_svg("three", {{"params", "count"}, {"accuracy", "%", true}, {"latency", "s"}}, pts);
  check_document(svg);
  CHECK(count(svg, "class=\"panel\"") == 3);
  CHECK(count(svg, "class=\"axis\"") == 6);
  CHECK(count(svg, "class=\"point\"") == 3 * 10);
  CHECK(count(svg, "class=\"front\"") == 3 * 4);
  CHECK(count(svg, "class=\"knee\"") == 3);
  CHECK(count(svg, ">latency [s] (min)</text>") == 2);  // the y axis of the last row, the x axis of the last column
  for (const char* id : {">101<", ">102<", ">103<", ">104<"}) CHECK(count(svg, id) >= 1);
}

TEST_CASE("names are escaped in titles, axes and hover text") {
  CHECK(xml_escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
  CHECK(xml_escape(std::string("a\x01" "b\tc")) == "ab\tc");
  CHECK(xml_escape("µs") == "µs");
  const auto svg = scatter_svg("x & y's \"plot\"", {{"a<b&c", "s"}, {"d", ""}}, sample_points());
  check_document(svg);
  CHECK(svg.find("a<b&c") == std::string::npos);
  CHECK(svg.find(">a&lt;b&amp;c [s] (min)</text>") != std::string::npos);
  CHECK(svg.find("a&lt;b&amp;c=1000") != std::string::npos);
  CHECK(svg.find("x &amp; y&apos;s &quot;plot&quot;") != std::string::npos);
}

TEST_CASE("trials with NaN or infinite values are left out and counted") {
  auto pts = sample_points();
  pts.push_back({7, {std::nan(""), 10}, 3, false});
  pts.push_back({8, {100, std::numeric_limits<double>::infinity()}, 3, false});
  pts.push_back({9, {-std::numeric_limits<double>::infinity(), 10}, 0, false});
  const auto svg = scatter_svg("t", kTwo, pts);
  check_document(svg);
  CHECK(count(svg, "class=\"point\"") == 10);
  CHECK(count(svg, "class=\"front\"") == 4);
  CHECK(svg.find("3 trials with NaN or infinite values not shown") != std::string::npos);
}

TEST_CASE("linear ticks are round 1-2-5 steps with compact labels") {
  const std::vector<std::string> tenths = {"0", "0.2", "0.4", "0.6", "0.8", "1"};
  const auto unit = scatter_svg("t", kTwo, grid({0, 0.5, 1}, {0, 0.5, 1}));
  CHECK(tick_labels(unit, 0) == tenths);
  CHECK(tick_labels(unit, 1) == tenths);
  const auto thousands = scatter_svg("t", kTwo, grid({0, 2000}, {0, 1}));
  CHECK(tick_labels(thousands, 0) == std::vector<std::string>{"0", "500", "1k", "1.5k", "2k"});
  const auto millions = scatter_svg("t", kTwo, grid({0, 2e6}, {0, 1}));
  CHECK(tick_labels(millions, 0) == std::vector<std::string>{"0", "500k", "1M", "1.5M", "2M"});
  const auto small = scatter_svg("t", kTwo, grid({0, 2e-4}, {0, 1}));
  CHECK(tick_labels(small, 0) == std::vector<std::string>{"0", "5e-5", "1e-4", "1.5e-4", "2e-4"});
  const auto negative = scatter_svg("t", kTwo, grid({-1, 1}, {0, 1}));
  CHECK(tick_labels(negative, 0) == std::vector<std::string>{"-1", "-0.5", "0", "0.5", "1"});
}

TEST_CASE("log axes tick decades, or 1-2-5 within few decades, and fall back to linear") {
  auto axes = kTwo;
  axes[0].log = true;
  const auto decades = scatter_svg("t", axes, grid({10, 1e3, 1e5}, {0, 0.5, 1}));
  CHECK(tick_labels(decades, 0) == std::vector<std::string>{"10", "100", "1k", "10k", "100k"});
  const auto narrow = scatter_svg("t", axes, grid({0.02, 0.9}, {0, 1}));
  CHECK(tick_labels(narrow, 0) == std::vector<std::string>{"0.02", "0.05", "0.1", "0.2", "0.5", "1"});
  const auto nonpositive = scatter_svg("t", axes, grid({-1, 0, 1}, {0, 0.5, 1}));
  check_document(nonpositive);
  CHECK(tick_labels(nonpositive, 0) == std::vector<std::string>{"-1", "-0.5", "0", "0.5", "1"});
}

TEST_CASE("auto_log_scale asks for more than two decades of positive values") {
  CHECK(auto_log_scale({1, 10, 1000}));
  CHECK(auto_log_scale({2e3, 5e6, std::nan("")}));
  CHECK_FALSE(auto_log_scale({1, 100}));
  CHECK_FALSE(auto_log_scale({0, 1, 1000}));
  CHECK_FALSE(auto_log_scale({-5, 1, 1000}));
  CHECK_FALSE(auto_log_scale({}));
}

TEST_CASE("a single trial and an axis of equal values get a padded range") {
  const auto one = scatter_svg("one", kTwo, {{42, {1000, 0.5}, 0, true}});
  check_document(one);
  CHECK(count(one, "class=\"point\"") == 1);
  CHECK(count(one, "class=\"knee\"") == 1);
  CHECK(count(one, ">42</text>") == 1);
  CHECK(tick_labels(one, 0).size() >= 2);
  CHECK(tick_labels(one, 1).size() >= 2);
  const auto flat = scatter_svg("flat", kTwo, grid({5, 5, 5}, {0, 0.5, 1}));
  check_document(flat);
  const auto ticks = tick_labels(flat, 0);
  CHECK(ticks.size() >= 2);
  CHECK(std::find(ticks.begin(), ticks.end(), "5") != ticks.end());
  const auto zero = scatter_svg("zero", kTwo, grid({0, 0}, {0, 1}));
  CHECK(tick_labels(zero, 0).front() == "-1");
  CHECK(tick_labels(zero, 0).back() == "1");
  check_document(scatter_svg("empty", kTwo, {}));
}

TEST_CASE("crowded labels are left out rather than drawn over each other") {
  std::vector<PlotPoint> pts;
  for (int k = 0; k < 40; ++k) pts.push_back({1000 + k, {k * 0.001, 1 - k * 0.001}, 0, false});
  pts.push_back({1, {10, -10}, 0, false});  // far away: squeezes the others into a corner
  const auto svg = scatter_svg("t", {{"a", ""}, {"b", ""}}, pts);
  check_document(svg);
  const auto labels = elements(svg, "label");
  CHECK(labels.size() >= 2);
  CHECK(labels.size() < pts.size());
  struct Box { double x0, y0, x1, y1; };
  std::vector<Box> boxes;
  for (const auto& l : labels) {
    const double x = std::stod(attribute(l.tag, "x")), y = std::stod(attribute(l.tag, "y"));
    boxes.push_back({x, y - 8, x + 6 * l.text.size(), y + 2});
  }
  for (size_t i = 0; i < boxes.size(); ++i)
    for (size_t j = i + 1; j < boxes.size(); ++j) {
      const Box &a = boxes[i], &b = boxes[j];
      CHECK_FALSE((a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1));
    }
}

TEST_CASE("scatter_svg rejects fewer than two axes and points of the wrong size") {
  CHECK_THROWS_AS(scatter_svg("t", {{"a", ""}}, {}), std::invalid_argument);
  CHECK_THROWS_AS(scatter_svg("t", kTwo, {{1, {1, 2, 3}, 0, false}}), std::invalid_argument);
}

TEST_CASE("a line plot draws a marker per finite pair on the same axes") {
  const auto svg = line_svg("hypervolume <history>", {"finished trials", ""}, {"hypervolume", ""},
                            {1, 2, 3, 4, 5, 6}, {0, 0.2, 0.2, 0.5, std::nan(""), 1});
  check_document(svg);
  CHECK(count(svg, "class=\"panel\"") == 1);
  CHECK(count(svg, "class=\"axis\"") == 2);
  CHECK(count(svg, "class=\"point\"") == 5);
  CHECK(svg.find(">finished trials</text>") != std::string::npos);
  CHECK(svg.find(">hypervolume</text>") != std::string::npos);
  CHECK(svg.find("hypervolume &lt;history&gt;") != std::string::npos);
  CHECK(svg.find("<title>finished trials=4, hypervolume=0.5</title>") != std::string::npos);
  CHECK(tick_labels(svg, 1) == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"});
  CHECK_THROWS_AS(line_svg("t", {"x", ""}, {"y", ""}, {1, 2}, {1}), std::invalid_argument);
  check_document(line_svg("empty", {"x", ""}, {"y", ""}, {}, {}));
}
