// distill: see distill.h
#include "nas/app/distill.h"
#include "nas/core/error.h"
#include "nas/proxy/rank.h"
#include "nas/store/db.h"
#include "nas/store/open.h"
#include "nas/store/teacher.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace nas::app {
namespace {

struct Pair {
  const store::RungAccuracy* alone;
  const store::RungAccuracy* distilled;
};

std::vector<Pair> pair_up(const std::vector<store::RungAccuracy>& kd, const std::vector<store::RungAccuracy>& base) {
  std::map<std::pair<std::string, double>, const store::RungAccuracy*> plain;
  for (const auto& r : base)
    if (!r.distilled.value_or(false)) plain[{r.hash, r.epochs}] = &r;
  std::vector<Pair> out;
  for (const auto& r : kd) {
    if (!r.distilled.value_or(false)) continue;
    auto it = plain.find({r.hash, r.epochs});
    if (it != plain.end()) out.push_back({it->second, &r});
  }
  return out;
}

// Student's t for a two-sided 95% interval with `df` degrees of freedom.
double t95(size_t df) {
  static const double t[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  return df >= 1 && df <= 30 ? t[df - 1] : 1.96;
}

Table summary_of(const std::vector<Pair>& pairs) {
  std::vector<double> gain, a, k;
  for (const auto& p : pairs) {
    gain.push_back(p.distilled->val_acc - p.alone->val_acc);
    a.push_back(p.alone->val_acc);
    k.push_back(p.distilled->val_acc);
  }
  const double n = double(gain.size());
  const double mean = std::accumulate(gain.begin(), gain.end(), 0.0) / n;
  double ss = 0;
  for (double g : gain) ss += (g - mean) * (g - mean);
  const double sd = gain.size() > 1 ? std::sqrt(ss / (n - 1)) : NAN;
  const double half = gain.size() > 1 ? t95(gain.size() - 1) * sd / std::sqrt(n) : NAN;
  const double gained = double(std::count_if(gain.begin(), gain.end(), [](double g) { return g > 0; })) / n;
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  Table t({"pairs", "mean_gain", "ci95_low", "ci95_high", "sd", "gained", "spearman"});
  t.add({int64_t(gain.size()), mean, num(mean - half), num(mean + half), num(sd), gained, num(proxy::spearman(a, k))});
  return t;
}

} // namespace

int run_distill_report(const DistillReportOptions& o, std::ostream& out) {
  if (o.baseline.empty()) throw UsageError("--report needs --baseline FILE: a study of the same genomes trained without distillation");
  store::OpenStudy kd = store::open_study(o.db, store::Access::read_only);
  store::OpenStudy base = store::open_study(o.baseline, store::Access::read_only);
  const auto kd_rows = store::rung_accuracies(kd.db), base_rows = store::rung_accuracies(base.db);
  const std::vector<Pair> pairs = pair_up(kd_rows, base_rows);
  if (pairs.empty())
    throw UsageError("no genome of '" + o.db + "' was trained both with distillation (there) and without it in '" +
                     o.baseline + "' to the same epochs");
  Table rows({"trial", "baseline_trial", "arch", "epochs", "val_acc_alone", "val_acc_distilled", "gain"});
  for (const auto& p : pairs)
    rows.add({p.distilled->trial_id, p.alone->trial_id, p.distilled->arch, p.distilled->epochs, p.alone->val_acc,
              p.distilled->val_acc, p.distilled->val_acc - p.alone->val_acc});
  const Table summary = summary_of(pairs);
  if (o.format == Format::json) {
    out << nlohmann::json{{"pairs", rows.to_json()}, {"summary", summary.to_json()[0]}}.dump(2) << "\n";
    return 0;
  }
  rows.write(out, o.format);
  out << "\n";
  summary.write(out, o.format);
  return 0;
}

} // namespace nas::app
