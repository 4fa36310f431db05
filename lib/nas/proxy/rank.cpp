// rank: rank statistics and ensembles
#include "nas/proxy/rank.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace nas::proxy {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / double(n);
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / double(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

void finite_pairs(const std::vector<double>& a, const std::vector<double>& b, std::vector<double>& x,
                  std::vector<double>& y) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (std::isfinite(a[i]) && std::isfinite(b[i])) {
      x.push_back(a[i]);
      y.push_back(b[i]);
    }
}

double weight_of(const std::map<std::string, double>& w, const std::string& name) {
  auto it = w.find(name);
  return it == w.end() ? 1.0 : it->second;
}
} // namespace

std::vector<double> ranks(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](size_t i) { return std::isfinite(values[i]) ? values[i] : -std::numeric_limits<double>::infinity(); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<double> r(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && key(order[j + 1]) == key(order[i])) ++j;
    const double mean = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[order[k]] = mean;
    i = j + 1;
  }
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> x, y;
  finite_pairs(a, b, x, y);
  if (x.size() < 3) return kNaN;
  return pearson(ranks(x), ranks(y));
}

double kendall(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> x, y;
  finite_pairs(a, b, x, y);
  const size_t n = x.size();
  if (n < 3) return kNaN;
  // O(n log n) would need a merge sort; the studies this reports on have at most tens of
  // thousands of trained trials, which the plain count handles in seconds.
  double concordant = 0, discordant = 0, ties_x = 0, ties_y = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      const double dx = x[i] - x[j], dy = y[i] - y[j];
      if (dx == 0 && dy == 0) continue;
      if (dx == 0) ++ties_x;
      else if (dy == 0) ++ties_y;
      else if ((dx > 0) == (dy > 0)) ++concordant;
      else ++discordant;
    }
  const double denom = std::sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y));
  return denom > 0 ? (concordant - discordant) / denom : kNaN;
}

double top_k_overlap(const std::vector<double>& score, const std::vector<double>& truth, size_t k) {
  std::vector<double> x, y;
  finite_pairs(score, truth, x, y);
  if (k < 1 || x.size() < k) return kNaN;
  auto top = [&](const std::vector<double>& v) {
    std::vector<size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] > v[b]; });
    idx.resize(k);
    std::sort(idx.begin(), idx.end());
    return idx;
  };
  auto a = top(x), b = top(y);
  std::vector<size_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return double(both.size()) / double(k);
}

std::vector<double> ensemble_sum(const std::map<std::string, std::vector<double>>& scores,
                                 const std::map<std::string, double>& weights) {
  if (scores.empty()) return {};
  const size_t n = scores.begin()->second.size();
  std::vector<double> out(n, 0.0);
  for (const auto& [name, values] : scores) {
    const double w = weight_of(weights, name);
    const auto r = ranks(values);
    for (size_t i = 0; i < n; ++i) out[i] += w * std::log(r[i] / double(n));
  }
  return out;
}

std::vector<double> ensemble_vote(const std::map<std::string, std::vector<double>>& scores,
                                  const std::map<std::string, double>& weights) {
  if (scores.empty()) return {};
  const size_t n = scores.begin()->second.size();
  std::vector<std::vector<double>> r;
  std::vector<double> w;
  double total = 0;
  for (const auto& [name, values] : scores) {
    r.push_back(ranks(values));
    w.push_back(weight_of(weights, name));
    total += w.back();
  }
  std::vector<double> wins(n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      double for_i = 0, for_j = 0;
      for (size_t p = 0; p < r.size(); ++p) {
        if (r[p][i] > r[p][j]) for_i += w[p];
        else if (r[p][j] > r[p][i]) for_j += w[p];
      }
      if (for_i > total / 2) wins[i] += 1;
      else if (for_j > total / 2) wins[j] += 1;
      else {
        wins[i] += 0.5;
        wins[j] += 0.5;
      }
    }
  for (auto& v : wins) v = n > 1 ? v / double(n - 1) : 1.0;
  return wins;
}

} // namespace nas::proxy
