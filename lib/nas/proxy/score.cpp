// score: parallel scoring of a study's candidates and the selection after it
#include "nas/proxy/score.h"
#include "nas/config/study_config.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/data/dataset.h"
#include "nas/model/device.h"
#include "nas/model/network.h"
#include "nas/proxy/compute.h"
#include "nas/proxy/rank.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
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

struct Candidate {
  int64_t id = 0;
  std::string genome;
  int64_t params = 0, macs = 0;
};

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

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

} // namespace

ScoreSummary score_study(const ScoreOptions& o) {
  const auto start = Clock::now();
  if (!std::filesystem::exists(o.db)) throw UsageError("cannot open '" + o.db + "': no such file");
  store::Db db = store::Db::open(o.db, store::OpenMode::existing);
  auto study = store::load_study(db);
  if (!study) throw Error("'" + o.db + "' holds no study");
  const config::StudyConfig cfg = config::parse_study_config(study->config_toml, study->config_path);
  std::vector<std::string> proxies = o.proxies.empty() ? cfg.proxy.proxies : o.proxies;
  const auto& known = config::proxy_names();
  for (const auto& p : proxies)
    if (std::find(known.begin(), known.end(), p) == known.end())
      throw UsageError("--proxies: unknown proxy '" + p + "'" + suggestion_suffix(p, known) + " (expected one of " +
                       quoted_list(known) + ")");
  const std::string rank_by = !cfg.proxy.rank_by.empty() ? cfg.proxy.rank_by
                              : (proxies.size() > 1 && cfg.proxy.ensemble != "none") ? "ensemble"
                                                                                      : proxies.front();
  if (o.select && rank_by != "ensemble" && std::find(proxies.begin(), proxies.end(), rank_by) == proxies.end())
    throw UsageError("--proxies: the study ranks by '" + rank_by + "' ([proxy] rank_by), which is not among " +
                     quoted_list(proxies) + " (add it, or use --no-select)");
  ScoreSummary sum;
  const auto ids = store::trials_to_score(db, proxies, o.rescore, !o.select);
  std::vector<Candidate> todo;
  db.read([&] {
    todo.clear();
    store::Statement q = db.prepare("SELECT genome, params, macs FROM trial WHERE id = ?");
    for (int64_t id : ids) {
      q.reset();
      q.bind(1, id);
      if (q.step()) todo.push_back({id, q.text(0), q.int64(1), q.int64(2)});
    }
  });

  const torch::Device device = model::parse_device(o.device);
  const bool with_data = std::any_of(proxies.begin(), proxies.end(), needs_data);
  data::StudyData d;
  Batches batches;
  if (with_data && !todo.empty()) {
    // drawn on the CPU (the same batches on every device), then moved to the device
    d = data::load_study_data(cfg.data, cfg.seed, torch::Device(torch::kCPU));
    batches = draw_batches(d, cfg.seed, cfg.proxy.batch_size);
    for (torch::Tensor* b : {&batches.x64, &batches.y64, &batches.x128, &batches.y128, &batches.x128b, &batches.y128b})
      *b = b->to(device);
  }
  const auto ctx = space::cost_context(cfg);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, std::min<int>(o.threads > 0 ? o.threads : cfg.proxy.threads > 0 ? cfg.proxy.threads : cores,
                                                int(std::max<size_t>(1, todo.size()))));
  at::set_num_threads(std::max(1, cores / threads));
  log::verbose("scoring " + std::to_string(todo.size()) + " candidates with " + join(proxies, ", ") + " in " +
               std::to_string(threads) + " threads");

  std::mutex mu;   // guards sum, network construction (the global RNG) and the progress log
  std::atomic<size_t> next{0};
  std::map<std::string, double> total_s;
  auto work = [&] {
#ifdef NAS_WITH_CUDA
    // each thread on its own stream, as the packed trainers: candidates overlap on one GPU
    std::optional<c10::cuda::CUDAStreamGuard> stream;
    if (device.is_cuda()) stream.emplace(c10::cuda::getStreamFromPool(false, device.index()));
#endif
    store::Db own = store::Db::open(o.db, store::OpenMode::existing);
    std::vector<store::ProxyRow> rows;
    auto flush = [&] {
      if (!rows.empty()) store::record_proxy_scores(own, rows);
      rows.clear();
    };
    for (size_t i; (i = next.fetch_add(1)) < todo.size();) {
      const Candidate& c = todo[i];
      const auto g = space::genome_from_json(c.genome);
      auto fresh = [&] {
        model::Network made{nullptr};
        {
          std::lock_guard<std::mutex> lock(mu);
          torch::manual_seed(mix(cfg.seed, uint64_t(c.id)));
          made = model::Network(g, ctx);   // initialised on the CPU: the same weights on every device
        }
        made->to(device);
        return made;
      };
      model::Network net{nullptr};
      Target t;
      bool failed = false;
      Score gn, sn, fi;
      bool gradients_done = false;
      for (const auto& p : proxies) {
        const auto t0 = Clock::now();
        Score s;
        int64_t batch = 0;
        try {
          if (p == "params") {
            s = checked(double(c.params));
          } else if (p == "flops") {
            s = checked(2.0 * double(c.macs));
          } else if (p == "synflow" || p == "zen") {
            model::Network own_net = fresh();
            Target ft = target_of(own_net);
            s = p == "synflow" ? synflow(ft, ctx.input) : zen(ft, ctx.input, cfg.proxy.batch_size, mix(cfg.seed, uint64_t(c.id)));
            if (p == "zen") batch = cfg.proxy.batch_size;
          } else {
            if (!net) {
              net = fresh();
              t = target_of(net);
            }
            if (p == "grad_norm" || p == "snip" || p == "fisher") {
              if (!gradients_done) {
                gradient_proxies(t, batches.x64, batches.y64, &gn, &sn, &fi);
                gradients_done = true;
              }
              s = p == "grad_norm" ? gn : p == "snip" ? sn : fi;
              batch = batches.x64.size(0);
            } else if (p == "grasp") {
              s = grasp(t, batches.x64, batches.y64);
              batch = batches.x64.size(0);
            } else if (p == "jacob_cov") {
              s = jacob_cov(t, batches.x64);
              batch = batches.x64.size(0);
            } else if (p == "nwot") {
              s = nwot(t, batches.x128);
              batch = batches.x128.size(0);
            } else if (p == "zico") {
              s = zico(t, batches.x128, batches.y128, batches.x128b, batches.y128b);
              batch = batches.x128.size(0) + batches.x128b.size(0);
            }
          }
        } catch (const std::exception& e) {
          s = Score{};
          s.flag = "error";
          failed = true;
          log::warning("trial " + std::to_string(c.id) + ": " + p + " failed: " + e.what());
        }
        const double secs = since(t0);
        store::ProxyRow r;
        r.trial_id = c.id;
        r.proxy = p;
        if (!s.degenerate()) r.value = s.value;
        r.flag = s.flag;
        r.batch_size = batch;
        r.wall_s = secs;
        rows.push_back(r);
        std::lock_guard<std::mutex> lock(mu);
        total_s[p] += secs;
        if (s.degenerate()) ++sum.degenerate[p];
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ++sum.scored;
        if (failed) ++sum.failed;
        if (sum.scored % 100 == 0) log::info("scored " + std::to_string(sum.scored) + " of " + std::to_string(todo.size()));
      }
      if (rows.size() >= 64) flush();
    }
    flush();
  };
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
        next = todo.size();   // the others stop after their candidate
      }
    });
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  for (const auto& [p, s] : total_s) sum.mean_s[p] = sum.scored ? s / double(sum.scored) : 0;

  // Selection over every sampled candidate with all chosen scores; one whose proxy threw stays
  // sampled until a later run scores it. Without selection the ensemble is stored for every
  // trial with all chosen scores, whatever its state (for --report on a trained study).
  sum.rank_by = rank_by;
  auto finished = [&] {
    sum.wall_s = since(start);
    return sum;
  };
  const bool ensemble = o.select ? rank_by == "ensemble" : proxies.size() > 1 && cfg.proxy.ensemble != "none";
  if (!o.select && !ensemble) return finished();
  const auto values = store::proxy_values(db);
  std::vector<int64_t> cands;
  db.read([&] {
    cands.clear();
    store::Statement q = db.prepare(o.select ? "SELECT id FROM trial WHERE state = 'sampled' ORDER BY id"
                                             : "SELECT id FROM trial ORDER BY id");
    while (q.step()) cands.push_back(q.int64(0));
  });
  std::set<int64_t> errored;
  db.read([&] {
    errored.clear();
    store::Statement q = db.prepare("SELECT DISTINCT trial_id FROM proxy_score WHERE flag = 'error' AND proxy = ?1");
    for (const auto& p : proxies) {   // an error of a proxy not chosen now does not count
      q.reset();
      q.bind(1, p);
      while (q.step()) errored.insert(q.int64(0));
    }
  });
  cands.erase(std::remove_if(cands.begin(), cands.end(),
                             [&](int64_t id) {
                               if (errored.count(id)) return true;
                               for (const auto& p : proxies) {
                                 auto it = values.find(p);
                                 if (it == values.end() || !it->second.count(id)) return true;
                               }
                               return false;
                             }),
              cands.end());
  sum.candidates = int64_t(cands.size());
  if (cands.empty()) return finished();
  std::map<std::string, std::vector<double>> by_proxy;
  for (const auto& p : proxies)
    for (int64_t id : cands) by_proxy[p].push_back(values.at(p).at(id));
  std::vector<double> rank_score;
  if (ensemble) {
    rank_score = cfg.proxy.ensemble == "vote" ? ensemble_vote(by_proxy, cfg.proxy.weights)
                                              : ensemble_sum(by_proxy, cfg.proxy.weights);
    std::vector<store::ProxyRow> rows;
    for (size_t i = 0; i < cands.size(); ++i) {
      store::ProxyRow r;
      r.trial_id = cands[i];
      r.proxy = "ensemble";
      r.value = rank_score[i];
      rows.push_back(r);
    }
    store::record_proxy_scores(db, rows);
    if (!o.select) return finished();
  } else {
    rank_score = by_proxy.at(rank_by);
  }
  const auto r = ranks(rank_score);   // ascending: n is the best
  const size_t n = cands.size();
  size_t keep = cfg.budget.keep_is_count ? size_t(cfg.budget.keep) : size_t(std::ceil(cfg.budget.keep * double(n)));
  keep = std::min(std::max<size_t>(keep, 1), n);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r[a] > r[b]; });
  // Without a [budget] section the queued trials train to [train] epochs, with no promotion.
  // With one, rung 0 starts at min_epochs and the workers promote (successive halving); with
  // proxy_start the top keep/eta^k by the proxies start at rung k, as many as ASHA would
  // promote that far.
  const auto& b = cfg.budget;
  store::QueuePolicy rungs;
  rungs.eta = b.eta;
  rungs.min_epochs = b.min_epochs;
  rungs.max_epochs = b.max_epochs;
  const int last = b.given ? rungs.last_rung() : 0;
  sum.budget = b.given ? b.min_epochs : double(cfg.train.epochs);
  std::vector<store::Keep> queue;
  std::vector<std::pair<int64_t, std::string>> prune;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    if (k >= keep) {
      prune.push_back({cands[i], "proxy: rank " + std::to_string(k + 1) + " of " + std::to_string(n) + " by " + rank_by});
      continue;
    }
    int rung = 0;
    if (b.given && b.proxy_start)
      while (rung + 1 <= last && double(k) < std::floor(double(keep) / std::pow(b.eta, rung + 1))) ++rung;
    queue.push_back({cands[i], r[i] / double(n), rung, b.given ? rungs.rung_budget(rung) : sum.budget});
  }
  auto [q, p] = store::select_trials(db, queue, prune);
  sum.queued = q;
  sum.pruned = p;
  return finished();
}

} // namespace nas::proxy
