// promotion_bench: what the promotion decision inside a claim costs, the search module's way
// (read the rung results, rank in C++: search::promotable) beside the SQL window query the
// store ran before the search module existed (aafb1b0's kPromotable), on the same study file
//
//   promotion_bench --db PATH --trials N [--eta E] [--repeat R] [--synchronous]
//
// Creates a fresh study file with N trials, each paused at rung 0 with a val_acc result (and,
// for the top third, paused at rung 1 with another), then times R decisions each way in a read
// transaction and checks that both choose the same trial. Prints one JSON line:
//   {"trials":N,"results":M,"eta":E,"ms_search":A,"ms_sql":B,"same_choice":true}
#include "nas/core/error.h"
#include "nas/core/random.h"
#include "nas/search/promotion.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>

using namespace nas;

namespace {

struct Options {
  std::string db;
  int64_t trials = 5000;
  double eta = 3;
  int repeat = 50;
  bool synchronous = false;
};

// The query the claim ran before the search module (aafb1b0, lib/nas/store/queue.cpp), kept
// here only as the baseline of this benchmark.
std::string old_sql(bool synchronous) {
  std::string sql = std::string(
      "WITH ranked AS ("
      "  SELECT r.trial_id, r.rung, r.value,"
      "         row_number() OVER (PARTITION BY r.rung ORDER BY (") + store::kStoppedEarly + " AND t.rung = r.rung), "
      "                            r.value DESC, r.trial_id) AS pos,"
      "         count(*) OVER (PARTITION BY r.rung) AS n"
      "  FROM result r JOIN trial t ON t.id = r.trial_id WHERE r.metric = 'val_acc' AND r.value IS NOT NULL) "
      "SELECT t.id FROM ranked k JOIN trial t ON t.id = k.trial_id AND t.rung = k.rung "
      "WHERE t.state = 'paused' AND t.rung < ?1 AND k.pos <= CAST(k.n / ?2 AS INTEGER) ";
  if (synchronous)
    sql += "AND NOT EXISTS (SELECT 1 FROM trial w WHERE w.state IN ('queued', 'running') AND w.rung <= t.rung) ";
  return sql + (synchronous ? "ORDER BY t.rung, k.value DESC, t.id LIMIT 1" : "ORDER BY t.rung DESC, k.value DESC, t.id LIMIT 1");
}

// N paused trials with a val_acc at rung 0; the best third also paused at rung 1 with another.
int64_t fill(store::Db& db, int64_t n) {
  int64_t results = 0;
  Rng rng(7, 1);
  db.write([&] {
    store::Statement t = db.prepare(
        "INSERT INTO trial (genome, hash, arch, origin, state, rung, priority, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'sample', 'paused', ?4, 0, 0, 0)");
    store::Statement r = db.prepare(
        "INSERT INTO result (trial_id, rung, metric, value, created_at) VALUES (?1, ?2, 'val_acc', ?3, 0)");
    for (int64_t i = 0; i < n; ++i) {
      const double v = rng.uniform();
      const bool second = v > 2.0 / 3;
      t.reset();
      t.bind(1, "{\"n\":" + std::to_string(i) + "}").bind(2, "h" + std::to_string(i)).bind(3, "a" + std::to_string(i))
          .bind(4, second ? 1 : 0).run();
      const int64_t id = db.last_insert_id();
      for (int rung = 0; rung <= (second ? 1 : 0); ++rung) {
        r.reset();
        r.bind(1, id).bind(2, rung).bind(3, rung ? rng.uniform() : v).run();
        ++results;
      }
    }
  });
  return results;
}

template <class F>
double ms_per(int repeat, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeat; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / repeat;
}

int run(const Options& o) {
  std::filesystem::remove(o.db);
  store::Db db = store::Db::open(o.db, store::OpenMode::create);
  const int64_t results = fill(db, o.trials);
  search::Policy p;
  p.eta = o.eta;
  p.min_epochs = 1;
  p.max_epochs = o.eta * o.eta;   // rungs 0, 1, 2
  p.synchronous = o.synchronous;
  std::optional<int64_t> by_search, by_sql;
  const double ms_search = ms_per(o.repeat, [&] {
    db.read([&] {
      const auto up = search::promotable(store::rung_results(db, "val_acc", p.last_rung()),
                                         p.synchronous ? store::lowest_active_rung(db) : std::nullopt, p);
      by_search = up.empty() ? std::nullopt : std::optional<int64_t>(up.front().trial_id);
    });
  });
  const std::string sql = old_sql(o.synchronous);
  const double ms_sql = ms_per(o.repeat, [&] {
    db.read([&] {
      store::Statement q = db.prepare(sql);
      q.bind(1, p.last_rung()).bind(2, p.eta);
      by_sql = q.step() ? std::optional<int64_t>(q.int64(0)) : std::nullopt;
    });
  });
  std::cout << nlohmann::json{{"trials", o.trials}, {"results", results}, {"eta", o.eta},
                              {"synchronous", o.synchronous}, {"ms_search", ms_search}, {"ms_sql", ms_sql},
                              {"same_choice", by_search == by_sql}}
                   .dump()
            << "\n";
  return by_search == by_sql ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"promotion_bench: the promotion decision, search module vs the old SQL"};
  Options o;
  app.add_option("--db", o.db, "study file to create")->required();
  app.add_option("--trials", o.trials, "paused trials [5000]");
  app.add_option("--eta", o.eta, "reduction factor [3]");
  app.add_option("--repeat", o.repeat, "decisions timed each way [50]");
  app.add_flag("--synchronous", o.synchronous, "synchronous promotion");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "promotion_bench: error: " << e.what() << "\n";
    return 1;
  }
}
