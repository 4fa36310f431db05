// screen: data-free proxies (synflow, zen, params, flops) over a breeding event's candidates
#include "nas/proxy/screen.h"
#include "nas/core/error.h"
#include "nas/core/random.h"
#include "nas/core/text.h"
#include "nas/model/network.h"
#include "nas/proxy/compute.h"
#include "nas/proxy/rank.h"
#include "nas/space/sampler.h"

#include <cmath>
#include <limits>
#include <map>

namespace nas::proxy {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Scores remembered per process before the memory is cleared (a few MB).
constexpr size_t kMemoLimit = 1 << 16;

class ProxyScreen : public search::Screen {
public:
  ProxyScreen(const config::StudyConfig& cfg, std::mutex& rng_lock)
      : proxies_(cfg.search.screen_proxies), ctx_(space::cost_context(cfg)), zen_batch_(cfg.proxy.batch_size),
        rng_lock_(rng_lock) {}

  std::string name() const override {
    return proxies_.size() == 1 ? proxies_.front() : "ensemble(" + join(proxies_, ",") + ")";
  }

  search::ScreenScores score(const std::vector<space::Genome>& candidates) const override {
    search::ScreenScores out;
    for (const auto& p : proxies_) {
      auto& values = out.proxies[p];
      for (const auto& g : candidates) values.push_back(remembered(p, g));
    }
    out.value = proxies_.size() == 1 ? out.proxies.begin()->second : ensemble_sum(out.proxies, {});
    return out;
  }

private:
  double remembered(const std::string& proxy, const space::Genome& g) const {
    const std::string hash = space::genome_hash(g);
    {
      std::lock_guard<std::mutex> lock(memo_mu_);
      if (auto it = memo_.find({proxy, hash}); it != memo_.end()) return it->second;
    }
    const double v = computed(proxy, g, hash);
    std::lock_guard<std::mutex> lock(memo_mu_);
    if (memo_.size() >= kMemoLimit) memo_.clear();
    memo_[{proxy, hash}] = v;
    return v;
  }

  // One proxy of one candidate; NaN when it is degenerate (synflow's zero: no path from input
  // to output) or scoring threw.
  double computed(const std::string& proxy, const space::Genome& g, const std::string& hash) const {
    try {
      if (proxy == "params") return double(space::estimate_cost(g, ctx_).params);
      if (proxy == "flops") return 2.0 * double(space::estimate_cost(g, ctx_).macs);
      const uint64_t seed = splitmix64_at(std::stoull(hash.substr(0, 15), nullptr, 16), 0);
      model::Network net{nullptr};
      {
        std::lock_guard<std::mutex> lock(rng_lock_);
        torch::manual_seed(seed);
        net = model::Network(g, ctx_);
      }
      Target t = target_of(net);
      const Score s = proxy == "synflow" ? synflow(t, ctx_.input) : zen(t, ctx_.input, zen_batch_, seed);
      return s.degenerate() ? kNaN : s.value;
    } catch (const c10::Error&) {
      return kNaN;
    } catch (const std::invalid_argument&) {
      return kNaN;
    }
  }

  const std::vector<std::string> proxies_;
  const space::CostContext ctx_;
  const int64_t zen_batch_;
  std::mutex& rng_lock_;
  mutable std::mutex memo_mu_;
  mutable std::map<std::pair<std::string, std::string>, double> memo_;   // (proxy, genome hash) -> score
};

} // namespace

std::shared_ptr<const search::Screen> make_screen(const config::StudyConfig& cfg, std::mutex& rng_lock) {
  if (cfg.search.screen < 2) return nullptr;
  const auto& free = config::data_free_proxy_names();
  for (const auto& p : cfg.search.screen_proxies)
    if (std::find(free.begin(), free.end(), p) == free.end())
      throw UsageError("[search] screen_proxies: '" + p + "' is not a data-free proxy (expected one of " + quoted_list(free) + ")");
  return std::make_shared<const ProxyScreen>(cfg, rng_lock);
}

} // namespace nas::proxy
