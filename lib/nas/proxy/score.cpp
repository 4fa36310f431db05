// score: parallel scoring of a study's candidates and the selection after it
#include "nas/proxy/score.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/heap.h"
#include "nas/core/log.h"
#include "nas/core/random.h"
#include "nas/core/text.h"
#include "nas/data/dataset.h"
#include "nas/data/probe.h"
#include "nas/model/device.h"
#include "nas/model/network.h"
#include "nas/proxy/compute.h"
#include "nas/proxy/rank.h"
#include "nas/search/policy.h"
#include "nas/search/select.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/metrics.h"
#include "nas/store/open.h"
#include "nas/store/proxies.h"
#include "nas/store/queue.h"
#include "nas/store/study.h"

#ifdef NAS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <thread>

namespace nas::proxy {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool needs_data(const std::string& p) {
  return p != "synflow" && p != "zen" && p != "params" && p != "flops";
}

// The batches every candidate is scored on: the same for all, drawn from the study seed.
struct Batches {
  torch::Tensor x64, y64;             // the shared batch
  torch::Tensor x128, y128;           // nwot, and zico's first
  torch::Tensor x128b, y128b;         // zico's second
};

Batches draw_batches(const data::StudyData& d, uint64_t seed, int64_t shared) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x70726f7879ULL);
  const int64_t n = d.train.labels.size(0);
  torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  auto take = [&](int64_t from, int64_t count, torch::Tensor& x, torch::Tensor& y) {
    count = std::min(count, n - from);
    if (count < 2) throw UsageError("the training split has " + std::to_string(n) + " samples: too few for the proxies");
    torch::Tensor idx = perm.narrow(0, from, count);
    x = data::gather_batch(d, d.train, idx, false, gen);
    y = d.train.labels.index_select(0, idx);
  };
  Batches b;
  take(0, shared, b.x64, b.y64);
  take(0, 128, b.x128, b.y128);
  take(std::min<int64_t>(128, n / 2), 128, b.x128b, b.y128b);
  return b;
}

// The proxies to score and what ranks the candidates: the ensemble of two or more (unless
// [proxy] ensemble is none), or one proxy ([proxy] rank_by). Throws UsageError for an unknown
// proxy, or a rank_by the selection cannot use.
std::pair<std::vector<std::string>, std::string> choose_proxies(const ScoreOptions& o, const config::StudyConfig& cfg) {
  std::vector<std::string> proxies = o.proxies.empty() ? cfg.proxy.proxies : o.proxies;
  const auto& known = config::proxy_names();
  for (const auto& p : proxies)
    if (std::find(known.begin(), known.end(), p) == known.end())
      throw UsageError("--proxies: unknown proxy '" + p + "'" + suggestion_suffix(p, known) + " (expected one of " +
                       quoted_list(known) + ")");
  const std::string rank_by = !cfg.proxy.rank_by.empty() ? cfg.proxy.rank_by
                              : (proxies.size() > 1 && cfg.proxy.ensemble != config::Ensemble::none) ? "ensemble"
                                                                                                      : proxies.front();
  if (o.select && rank_by != "ensemble" && std::find(proxies.begin(), proxies.end(), rank_by) == proxies.end())
    throw UsageError("--proxies: the study ranks by '" + rank_by + "' ([proxy] rank_by), which is not among " +
                     quoted_list(proxies) + " (add it, or use --no-select)");
  return {proxies, rank_by};
}

// Parallel scoring: threads take candidates in turn, one network each, and write their rows
// in batches on their own connection.
class Scorer {
public:
  Scorer(const ScoreOptions& o, const config::StudyConfig& cfg, const std::vector<std::string>& proxies,
         std::vector<store::Candidate> todo, ScoreSummary& sum);
  void run();

private:
  void work();
  void score(const store::Candidate& c, std::vector<store::ProxyRow>& rows);
  // One candidate's network, shared by its proxies (built on first use), and the three scores
  // one backward gives.
  struct CandidateNet {
    model::Network net{nullptr};
    Target t;
    Score gn, sn, fi;                 // grad_norm, snip, fisher
    bool gradients = false;
  };
  Score score_proxy(const std::string& p, const store::Candidate& c, const space::Genome& g, CandidateNet& sh,
                    int64_t& batch);
  model::Network fresh(const space::Genome& g, int64_t id);

  const ScoreOptions& o_;
  const config::StudyConfig& cfg_;
  const std::vector<std::string>& proxies_;
  const std::vector<store::Candidate> todo_;
  ScoreSummary& sum_;
  const space::CostContext ctx_;
  torch::Device device_;
  Batches batches_;
  std::mutex mu_;   // guards sum_, total_s_, network construction (the global RNG) and the progress log
  std::atomic<size_t> next_{0};
  std::map<std::string, double> total_s_;
};

Scorer::Scorer(const ScoreOptions& o, const config::StudyConfig& cfg, const std::vector<std::string>& proxies,
               std::vector<store::Candidate> todo, ScoreSummary& sum)
    : o_(o), cfg_(cfg), proxies_(proxies), todo_(std::move(todo)), sum_(sum), ctx_(space::cost_context(cfg)),
      device_(model::parse_device(o.device)) {
  if (todo_.empty() || !std::any_of(proxies_.begin(), proxies_.end(), needs_data)) return;
  // drawn on the CPU (the same batches on every device), then moved to the device
  const data::StudyData d = data::load_study_data(cfg.data, cfg.seed, torch::Device(torch::kCPU));
  batches_ = draw_batches(d, cfg.seed, cfg.proxy.batch_size);
  for (torch::Tensor* b : {&batches_.x64, &batches_.y64, &batches_.x128, &batches_.y128, &batches_.x128b, &batches_.y128b})
    *b = b->to(device_);
}

model::Network Scorer::fresh(const space::Genome& g, int64_t id) {
  model::Network made{nullptr};
  {
    std::lock_guard<std::mutex> lock(mu_);
    torch::manual_seed(splitmix64_at(cfg_.seed, uint64_t(id)));
    made = model::Network(g, ctx_);   // initialised on the CPU: the same weights on every device
  }
  made->to(device_);
  return made;
}

// One proxy of one candidate, on its shared network; synflow and zen build their own (they
// change the weights). `batch`: the samples used.
Score Scorer::score_proxy(const std::string& p, const store::Candidate& c, const space::Genome& g, CandidateNet& sh,
                          int64_t& batch) {
  if (p == "params") return checked(double(c.params));
  if (p == "flops") return checked(2.0 * double(c.macs));
  if (p == "synflow" || p == "zen") {
    model::Network own = fresh(g, c.id);
    Target ft = target_of(own);
    if (p == "synflow") return synflow(ft, ctx_.input);
    batch = cfg_.proxy.batch_size;
    return zen(ft, ctx_.input, cfg_.proxy.batch_size, splitmix64_at(cfg_.seed, uint64_t(c.id)));
  }
  if (!sh.net) {
    sh.net = fresh(g, c.id);
    sh.t = target_of(sh.net);
  }
  Target& t = sh.t;
  const auto& b = batches_;
  batch = b.x64.size(0);
  if (p == "grad_norm" || p == "snip" || p == "fisher") {
    if (!sh.gradients) gradient_proxies(t, b.x64, b.y64, &sh.gn, &sh.sn, &sh.fi);
    sh.gradients = true;
    return p == "grad_norm" ? sh.gn : p == "snip" ? sh.sn : sh.fi;
  }
  if (p == "grasp") return grasp(t, b.x64, b.y64);
  if (p == "jacob_cov") return jacob_cov(t, b.x64);
  batch = b.x128.size(0);
  if (p == "nwot") return nwot(t, b.x128);
  batch += b.x128b.size(0);
  return zico(t, b.x128, b.y128, b.x128b, b.y128b);
}

void Scorer::score(const store::Candidate& c, std::vector<store::ProxyRow>& rows) {
  const auto g = space::genome_from_json(c.genome);
  CandidateNet sh;
  bool failed = false;
  for (const auto& p : proxies_) {
    const auto t0 = Clock::now();
    Score s;
    int64_t batch = 0;
    try {
      s = score_proxy(p, c, g, sh, batch);
    } catch (const std::exception& e) {
      s = Score{};
      s.flag = "error";
      batch = 0;
      failed = true;
      log::warning("trial " + std::to_string(c.id) + ": " + p + " failed: " + e.what());
    }
    store::ProxyRow r;
    r.trial_id = c.id;
    r.proxy = p;
    if (!s.degenerate()) r.value = s.value;
    r.flag = s.flag;
    r.batch_size = batch;
    r.wall_s = since(t0);
    rows.push_back(r);
    std::lock_guard<std::mutex> lock(mu_);
    total_s_[p] += r.wall_s;
    if (s.degenerate()) ++sum_.degenerate[p];
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++sum_.scored;
  if (failed) ++sum_.failed;
  if (sum_.scored % 100 == 0) log::info("scored " + std::to_string(sum_.scored) + " of " + std::to_string(todo_.size()));
}

void Scorer::work() {
#ifdef NAS_WITH_CUDA
  // each thread on its own stream, as the packed trainers: candidates overlap on one GPU
  std::optional<c10::cuda::CUDAStreamGuard> stream;
  if (device_.is_cuda()) stream.emplace(c10::cuda::getStreamFromPool(false, device_.index()));
#endif
  store::Db own = store::Db::open(o_.db, store::OpenMode::existing);
  std::vector<store::ProxyRow> rows;
  for (size_t i; (i = next_.fetch_add(1)) < todo_.size();) {
    score(todo_[i], rows);
    if (rows.size() >= 64) {
      store::record_proxy_scores(own, rows);
      rows.clear();
    }
  }
  if (!rows.empty()) store::record_proxy_scores(own, rows);
}

void Scorer::run() {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int want = o_.threads > 0 ? o_.threads : cfg_.proxy.threads > 0 ? cfg_.proxy.threads : cores;
  const int threads = std::max(1, std::min<int>(want, int(std::max<size_t>(1, todo_.size()))));
  at::set_num_threads(std::max(1, cores / threads));
  keep_freed_memory();
  log::verbose("scoring " + std::to_string(todo_.size()) + " candidates with " + join(proxies_, ", ") + " in " +
               std::to_string(threads) + " threads");
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mu;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      try {
        work();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next_ = todo_.size();   // the others stop after their candidate
      }
    });
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  for (const auto& [p, secs] : total_s_) sum_.mean_s[p] = sum_.scored ? secs / double(sum_.scored) : 0;
}

// The candidates with every chosen score and no error of a chosen proxy (an error of a proxy
// not chosen now does not count), and each chosen proxy's values of them.
std::vector<int64_t> complete_candidates(store::Db& db, bool every_state, const std::vector<std::string>& proxies,
                                         const std::map<std::string, std::map<int64_t, double>>& values) {
  std::vector<int64_t> cands = store::trial_ids(db, every_state);
  const auto errored = store::trials_with_proxy_error(db, proxies);
  const std::set<int64_t> bad(errored.begin(), errored.end());
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [&](int64_t id) {
                               if (bad.count(id)) return true;
                               for (const auto& p : proxies) {
                                 auto it = values.find(p);
                                 if (it == values.end() || !it->second.count(id)) return true;
                               }
                               return false;
                             }),
              cands.end());
  return cands;
}

// Stores the ensemble's value of each candidate as proxy 'ensemble'; returns the values.
std::vector<double> store_ensemble(store::Db& db, const config::StudyConfig& cfg, const std::vector<int64_t>& cands,
                                   const std::map<std::string, std::vector<double>>& by_proxy) {
  const std::vector<double> v = cfg.proxy.ensemble == config::Ensemble::vote ? ensemble_vote(by_proxy, cfg.proxy.weights)
                                                                             : ensemble_sum(by_proxy, cfg.proxy.weights);
  std::vector<store::ProxyRow> rows;
  for (size_t i = 0; i < cands.size(); ++i) {
    store::ProxyRow r;
    r.trial_id = cands[i];
    r.proxy = "ensemble";
    r.value = v[i];
    rows.push_back(r);
  }
  store::record_proxy_scores(db, rows);
  return v;
}

// The values of `metric` every candidate has before training (cost model, proxy score,
// measurement), or nothing when one lacks it.
std::optional<std::vector<double>> known_values(store::Db& db, const std::string& metric, const std::vector<int64_t>& cands) {
  const auto v = store::rung_metric_values(db, metric, 0);
  std::vector<double> out;
  for (int64_t id : cands) {
    const auto it = v.find({id, -1});
    if (it == v.end()) return std::nullopt;
    out.push_back(it->second);
  }
  return out;
}

// The screen's ranks: by `score` alone, or -- several [search] objectives, some known before
// training, and no [budget] proxy_start -- by the trade-off between them and the score (search::trade_off_ranks); `beside`
// gets the known objectives.
std::vector<double> screen_ranks(store::Db& db, const config::StudyConfig& cfg, const std::vector<int64_t>& cands,
                                 const std::vector<double>& score, std::vector<std::string>& beside) {
  // proxy_start starts the best by the score at later rungs: the trade-off's order (extremes
  // first) would start the smallest network there
  if (cfg.search.objectives.size() < 2 || cfg.budget.proxy_start) return ranks(score);
  std::vector<config::Objective> known;
  std::vector<config::SearchConstraint> constraints;
  std::vector<std::vector<std::optional<double>>> values(cands.size());
  const auto add = [&](const std::string& metric) {
    const auto col = known_values(db, metric, cands);
    if (col)
      for (size_t i = 0; i < cands.size(); ++i) values[i].push_back((*col)[i]);
    return col.has_value();
  };
  for (const auto& o : cfg.search.objectives)
    if (add(o.metric)) {
      known.push_back(o);
      beside.push_back(o.metric + (o.maximize ? ":max" : ":min"));
    }
  if (known.empty()) return ranks(score);
  for (const auto& c : cfg.search.constraints)
    if (add(c.metric)) constraints.push_back(c);
  return search::trade_off_ranks(score, known, constraints, values);
}

// After scoring: the ensemble, and with select the search's keep/prune (search::select_by_rank)
// written in one transaction. Without select the ensemble is stored for every trial with all
// chosen scores, whatever its state (for --report on a trained study).
void rank_and_select(store::Db& db, const ScoreOptions& o, const config::StudyConfig& cfg,
                     const std::vector<std::string>& proxies, const std::string& rank_by, ScoreSummary& sum) {
  const bool ensemble = o.select ? rank_by == "ensemble" : proxies.size() > 1 && cfg.proxy.ensemble != config::Ensemble::none;
  if (!o.select && !ensemble) return;
  const auto values = store::proxy_values(db);
  const std::vector<int64_t> cands = complete_candidates(db, !o.select, proxies, values);
  sum.candidates = int64_t(cands.size());
  if (cands.empty()) return;
  std::map<std::string, std::vector<double>> by_proxy;
  for (const auto& p : proxies)
    for (int64_t id : cands) by_proxy[p].push_back(values.at(p).at(id));
  const std::vector<double> score = ensemble ? store_ensemble(db, cfg, cands, by_proxy) : by_proxy.at(rank_by);
  if (!o.select) return;
  const std::vector<double> rank = screen_ranks(db, cfg, cands, score, sum.beside);
  const std::string by = sum.beside.empty() ? rank_by : rank_by + " with " + join(sum.beside, ", ");
  const search::Selection sel = search::select_by_rank(cands, rank, cfg, by);
  sum.budget = sel.budget;
  std::tie(sum.queued, sum.pruned) = store::select_trials(db, sel.queue, sel.prune);
}

} // namespace

ScoreSummary score_study(const ScoreOptions& o) {
  const auto start = Clock::now();
  store::OpenStudy opened = store::open_study(o.db, store::Access::read_write);
  store::Db& db = opened.db;
  const config::StudyConfig& cfg = opened.cfg;
  const auto [proxies, rank_by] = choose_proxies(o, cfg);
  ScoreSummary sum;
  sum.rank_by = rank_by;
  const auto ids = store::trials_to_score(db, proxies, o.rescore, !o.select);
  // the data files are checked where they are loaded: only for proxies that need data
  if (!ids.empty() && std::any_of(proxies.begin(), proxies.end(), needs_data))
    if (auto recorded = store::load_data_probe(db)) data::check_data_unchanged(cfg, *recorded);
  Scorer(o, cfg, proxies, store::load_candidates(db, ids), sum).run();
  // Selection over every sampled candidate with all chosen scores; one whose proxy threw stays
  // sampled until a later run scores it.
  rank_and_select(db, o, cfg, proxies, rank_by, sum);
  sum.wall_s = since(start);
  return sum;
}

} // namespace nas::proxy
