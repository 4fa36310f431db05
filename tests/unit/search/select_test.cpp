// select_test: the search's pure decisions -- keep counts, proxy selection with proxy_start, and
// which paused trials a rung promotes in which order
#include <doctest/doctest.h>

#include "nas/config/study_config.h"
#include "nas/search/policy.h"
#include "nas/search/promotion.h"
#include "nas/search/select.h"

#include <cmath>
#include <string>
#include <vector>

using namespace nas;

namespace {

config::StudyConfig study(const std::string& budget) {
  return config::parse_study_config(std::string(R"(
[study]
name = "t"
seed = 3
[data]
format = "synthetic"
shape = [1, 28, 28]
classes = 10
[space]
family = "cnn"
[train]
epochs = 9
)") + budget, "/tmp/t.toml");
}

store::RungResult result(int64_t id, int rung, double value, const std::string& state, int trial_rung,
                         bool stopped = false) {
  return {id, rung, value, store::trial_state_of_row(state), trial_rung, stopped};
}

} // namespace

TEST_CASE("keep_count: a count or a fraction rounded up, at least 1, at most n") {
  config::BudgetConfig b;
  b.keep = 0.25;
  CHECK(search::keep_count(b, 10) == 3);
  CHECK(search::keep_count(b, 1) == 1);
  CHECK(search::keep_count(b, 0) == 0);
  b.keep = 4;
  b.keep_is_count = true;
  CHECK(search::keep_count(b, 10) == 4);
  CHECK(search::keep_count(b, 3) == 3);
}

TEST_CASE("select_by_rank queues the best keep, starts the proxies' best at later rungs, prunes the rest") {
  const auto cfg = study("[budget]\nmin_epochs = 1\nmax_epochs = 9\neta = 3\nkeep = 9\nproxy_start = true\n");
  std::vector<int64_t> ids;
  std::vector<double> rank;
  for (int i = 0; i < 12; ++i) {
    ids.push_back(100 + i);
    rank.push_back(double(i + 1));   // 111 is the best
  }
  const search::Selection s = search::select_by_rank(ids, rank, cfg, "snip");
  REQUIRE(s.queue.size() == 9);
  REQUIRE(s.prune.size() == 3);
  CHECK(s.budget == 1);
  CHECK(s.queue[0].trial_id == 111);
  CHECK(s.queue[0].rung == 2);          // the top floor(9 / 9) = 1 starts at rung 2 (9 epochs)
  CHECK(s.queue[0].budget == 9);
  CHECK(s.queue[1].rung == 1);          // the top floor(9 / 3) = 3 at rung 1 (3 epochs)
  CHECK(s.queue[2].rung == 1);
  CHECK(s.queue[2].budget == 3);
  CHECK(s.queue[3].rung == 0);
  CHECK(s.queue[3].budget == 1);
  CHECK(s.queue[0].priority == doctest::Approx(12.0 / 12));
  CHECK(s.prune[0].first == 102);
  CHECK(s.prune[0].second == "proxy: rank 10 of 12 by snip");
  CHECK(s.prune[2].first == 100);
}

TEST_CASE("without [budget], the selection queues at rung 0 for [train] epochs") {
  const auto cfg = study("");
  const search::Selection s = search::select_by_rank({1, 2, 3}, {3, 1, 2}, cfg, "ensemble");
  REQUIRE(s.queue.size() == 3);
  CHECK(s.queue[0].trial_id == 1);
  CHECK(s.queue[0].budget == 9);
  CHECK(s.queue[2].trial_id == 2);
  CHECK(s.prune.empty());
}

TEST_CASE("promotable: the top floor(n / eta) of each rung, highest rung first (ASHA) or complete rungs lowest first") {
  search::Policy p;
  p.eta = 2;
  p.min_epochs = 1;
  p.max_epochs = 4;   // rungs 0, 1, 2 (1, 2, 4 epochs)
  const std::vector<store::RungResult> rows = {
      result(1, 0, 0.9, "queued", 1),  result(2, 0, 0.8, "paused", 0), result(3, 0, 0.7, "paused", 0),
      result(4, 0, 0.6, "paused", 0),  result(1, 1, 0.5, "paused", 1), result(5, 1, 0.4, "paused", 1),
      result(6, 2, 0.99, "done", 2),   result(7, 0, 0.95, "done", 0, true)};
  // rung 0: 5 results, keep 2: 7 was stopped early (ranks last), so 1 (already promoted) and 2
  // rung 1: 2 results, keep 1: trial 1
  const auto async = search::promotable(rows, std::nullopt, p);
  REQUIRE(async.size() == 2);
  CHECK(async[0].trial_id == 1);
  CHECK(async[0].rung == 1);
  CHECK(async[1].trial_id == 2);
  p.synchronous = true;
  const auto sync = search::promotable(rows, 1, p);   // rung 1 still has a trial queued or running
  REQUIRE(sync.size() == 1);
  CHECK(sync[0].trial_id == 2);
  CHECK(search::promotable(rows, 0, p).empty());     // rung 0 is not complete either
  const auto all = search::promotable(rows, std::nullopt, p);
  REQUIRE(all.size() == 2);
  CHECK(all[0].trial_id == 2);                        // lowest rung first
  p.eta = 0;
  CHECK(search::promotable(rows, std::nullopt, p).empty());
}

TEST_CASE("a synchronous rung that completes again promotes only what its larger n adds: floor(n / eta) in all") {
  search::Policy p;
  p.eta = 2;
  p.min_epochs = 1;
  p.max_epochs = 4;
  // rung 0 completed with 2 results and promoted trial 1; children 2..4 finished since (serially)
  const std::vector<store::RungResult> rows{result(1, 0, 0.5, "running", 1), result(2, 0, 0.9, "paused", 0),
                                           result(3, 0, 0.8, "paused", 0), result(4, 0, 0.7, "paused", 0)};
  // asynchronous (ASHA): the top floor(4 / 2) = 2 not yet promoted, whatever was promoted before
  const auto async = search::promotable(rows, std::nullopt, p);
  REQUIRE(async.size() == 2);
  CHECK(async[0].trial_id == 2);
  CHECK(async[1].trial_id == 3);
  // synchronous: 2 in all, trial 1 is one of them
  p.synchronous = true;
  const auto sync = search::promotable(rows, std::nullopt, p);
  REQUIRE(sync.size() == 1);
  CHECK(sync[0].trial_id == 2);
  // with trial 2 promoted too, the rung has given its 2
  auto after = rows;
  after[1].trial_rung = 1;
  after[1].state = store::TrialState::queued;
  CHECK(search::promotable(after, std::nullopt, p).empty());
  // a trial promoted and failed since still counts
  after[1].state = store::TrialState::failed;
  CHECK(search::promotable(after, std::nullopt, p).empty());
}

TEST_CASE("trade_off_ranks: the screen of a study with several objectives keeps the trade-off") {
  // scores (higher is better) and params (params:min): 0 is the best by score, 3 the smallest,
  // 2 is dominated by 1 (lower score, more params)
  const std::vector<double> score = {4, 3, 2, 1};
  const std::vector<config::Objective> known = {{"params", false}};
  std::vector<std::vector<std::optional<double>>> values = {{100.0}, {10.0}, {50.0}, {5.0}};
  const auto r = search::trade_off_ranks(score, known, {}, values);
  // front {0, 1, 3}: the extremes 0 and 3 first (infinite crowding, then by position), then 1;
  // the dominated 2 last
  CHECK(r == std::vector<double>{4, 2, 1, 3});
  const auto cfg = study("[budget]\nkeep = 2\n");
  const search::Selection s = search::select_by_rank({10, 11, 12, 13}, r, cfg, "snip with params:min");
  REQUIRE(s.queue.size() == 2);
  CHECK(s.queue[0].trial_id == 10);
  CHECK(s.queue[1].trial_id == 13);   // by the score alone it would rank last and be pruned
  CHECK(s.prune[0] == std::pair<int64_t, std::string>{11, "proxy: rank 3 of 4 by snip with params:min"});

  // a constraint on another metric (macs <= 60; its values after the objectives'): the
  // infeasible 1 ranks after the feasible, whose front is {0, 2, 3}
  const std::vector<config::SearchConstraint> macs_60 = {{"macs", true, 60}};
  values = {{100.0, 10.0}, {10.0, 100.0}, {50.0, 20.0}, {5.0, 30.0}};
  CHECK(search::trade_off_ranks(score, known, macs_60, values) == std::vector<double>{4, 1, 2, 3});

  // a degenerate score (NaN) ranks last, however small the network
  values = {{100.0}, {10.0}, {50.0}, {1.0}};
  const std::vector<double> with_nan = {4, 3, 2, std::nan("")};
  CHECK(search::trade_off_ranks(with_nan, known, {}, values) == std::vector<double>{4, 3, 2, 0});
}
