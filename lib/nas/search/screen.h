// screen: proxy-guided moves -- what a breeding event asks of zero-cost proxies. The search
// module knows no proxy (it sits below LibTorch and lib/nas/proxy): the tools inject a Screen
// (proxy::ProxyScreen), and breed.h calls it outside every transaction, between a read of the
// island and the short write that queues the best candidate.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/space/genome.h"

namespace nas::search {

// The scores of a screen's candidates, parallel to them. Higher is better; NaN where a
// candidate could not be scored or its score is degenerate (it ranks last).
struct ScreenScores {
  std::vector<double> value;                           // what ranks: the one proxy, or the ensemble of several
  std::map<std::string, std::vector<double>> proxies;  // each proxy's own value (recorded with the child)
};

// Scores candidate genomes without training them. Implementations must be safe to call from
// several threads at once (one Screen serves a worker's slots) and must not touch the study
// file: they run while no transaction is open.
class Screen {
public:
  virtual ~Screen() = default;
  // What ranks, as recorded: a proxy's name, or "ensemble(a,b)".
  virtual std::string name() const = 0;
  // One score per candidate, in order. Throws only for failures of the environment; a candidate
  // that cannot be scored gets NaN.
  virtual ScreenScores score(const std::vector<space::Genome>& candidates) const = 0;
};

// Makes the study's screen, or null when [search] screen is 0. `rng_lock` is held while the
// screen draws from LibTorch's global generator (building a network), the same lock under
// which the process's trainers seed it, so that screening never perturbs a trial's weights.
using MakeScreen = std::function<std::shared_ptr<const Screen>(const config::StudyConfig& cfg, std::mutex& rng_lock)>;

// Candidate indices best first: by score (higher first), NaN last, equals in proposal order.
// Pure.
std::vector<size_t> screen_order(const std::vector<double>& scores);

} // namespace nas::search
