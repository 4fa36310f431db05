// search_support: what the search's tests (budget, evolution, screen) share -- nb201 studies on
// synthetic data, workers by number, one-value queries, and workers claiming in threads
#pragma once
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nas::test {

// A study of NAS-Bench-201 cells on 64 synthetic CIFAR-shaped samples, as if read from
// /tmp/NAME.toml; `rest` follows the [space] family line (more [space] keys, then sections).
inline config::StudyConfig nb201_study(const std::string& name, uint64_t seed, const std::string& rest) {
  return config::parse_study_config("[study]\nname='" + name + "'\nseed=" + std::to_string(seed) +
                                        "\n[data]\nformat='synthetic'\nshape=[3,32,32]\nclasses=10\nsamples=64\n"
                                        "[space]\nfamily='nb201'\n" + rest,
                                    "/tmp/" + name + ".toml");
}

// Worker k: host "hK", pid k.
inline store::WorkerInfo worker_info(int k) {
  store::WorkerInfo w;
  w.host = "h" + std::to_string(k);
  w.pid = k;
  return w;
}

// Registers worker_info(k); returns its id.
inline int64_t new_worker(store::Db& db, int k = 1) { return store::register_worker(db, worker_info(k)); }

// The first column of the first row of `sql` (a count, an id); REQUIREs a row.
inline int64_t count(store::Db& db, const std::string& sql) {
  auto q = db.prepare(sql);
  REQUIRE(q.step());
  return q.int64(0);
}

// What claim_in_threads saw: the claims of all workers, and each failure as "worker K: what".
struct ThreadedClaims {
  int claims = 0;
  std::vector<std::string> failed;
};

// One thread a worker id in `ids`, each on its own connection to the study file `path`: claims
// until claim_next returns nothing, calls evaluate(db, claim), finishes the trial done. Asserts
// nothing (doctest's assertions belong to the main thread): the caller checks what it returns.
inline ThreadedClaims claim_in_threads(const std::string& path, const std::vector<int64_t>& ids,
                                       const search::Policy& policy,
                                       const std::function<void(store::Db&, const store::Claim&)>& evaluate) {
  std::vector<std::thread> workers;
  std::mutex failed_mutex;
  std::vector<std::string> failed;
  std::atomic<int> claims{0};
  for (size_t k = 0; k < ids.size(); ++k)
    workers.emplace_back([&, k] {
      try {
        store::Db db = store::Db::open(path, store::OpenMode::existing);
        while (auto c = search::claim_next(db, ids[k], policy)) {
          ++claims;
          evaluate(db, *c);
          store::finish(db, c->trial_id, ids[k], store::TrialState::done);
        }
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failed_mutex);
        failed.push_back("worker " + std::to_string(k) + ": " + e.what());
      }
    });
  for (auto& t : workers) t.join();
  return {claims.load(), failed};
}

} // namespace nas::test
