// queue_stress: drives the trial queue from many processes for the CLI tests
// (tests/cli/queue_concurrency.sh, tests/cli/lease_sigkill.sh); not installed.
//
//   queue_stress init DB --trials N [--state queued|sampled]
//   queue_stress sample DB -n N
//   queue_stress work DB [--lease S] [--finish-to done|paused]
//   queue_stress hold DB [--lease S]
//   queue_stress claim DB [--lease S]
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/search/promotion.h"
#include "nas/store/queue.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

using namespace nas::store;
namespace fs = std::filesystem;

namespace {

void sleep_ms(double ms) { std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms)); }

// init: a study file with N trials in the given state, created through Db::open.
int run_init(const std::string& path, int trials, const std::string& state) {
  if (state != "queued" && state != "sampled")
    throw nas::UsageError("--state: expected queued or sampled, got '" + state + "'");
  Db db = Db::open(path, OpenMode::create);
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO trial (genome, hash, arch, origin, state, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'sample', ?4, ?5, ?5)");
    double now = nas::now_unix();
    for (int i = 1; i <= trials; ++i) {
      ins.reset();
      ins.bind(1, "{\"stress\":" + std::to_string(i) + "}").bind(2, "stress-" + std::to_string(i))
          .bind(3, "stress " + std::to_string(i)).bind(4, state).bind(5, now).run();
    }
  });
  return 0;
}

// sample: a stand-in for nas-sample in stress runs -- creates the file if missing (several
// processes may race to) and adds N 'sampled' trials, one transaction each, with hashes unique
// to this process.
int run_sample(const std::string& path, int n) {
  Db db = Db::open(path, OpenMode::create);
  const std::string me = std::to_string(::getpid());
  for (int i = 1; i <= n; ++i) {
    db.write([&] {
      Statement ins = db.prepare(
          "INSERT INTO trial (genome, hash, arch, origin, state, created_at, updated_at) "
          "VALUES (?1, ?2, ?3, 'sample', 'sampled', ?4, ?4)");
      const std::string key = me + "-" + std::to_string(i);
      ins.bind(1, "{\"sample\":\"" + key + "\"}").bind(2, "sample-" + key).bind(3, "sample " + key)
          .bind(4, nas::now_unix()).run();
    });
  }
  return 0;
}

// work: claim and finish until the samplers are done and nothing is left; when the queue is
// empty, queue a few sampled trials. `DB.samplers-done` is created by the test once every
// sampler has exited, so a worker that sees it and then finds nothing sampled or queued is done.
int run_work(const std::string& path, double lease_s, TrialState finish_to) {
  const std::string done_flag = path + ".samplers-done";
  // The samplers create the file; wait for it (or for them to have given up).
  for (auto start = std::chrono::steady_clock::now(); !fs::exists(path);) {
    if (fs::exists(done_flag))
      throw nas::DbError("'" + path + "' was never created by the samplers");
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(300))
      throw nas::DbError("'" + path + "' did not appear within 300 s");
    sleep_ms(2);
  }
  Db db = Db::open(path, OpenMode::existing);
  nas::search::Policy policy;
  policy.lease_s = lease_s;
  const int64_t me = register_worker(db, this_worker("cpu"));
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> pause_ms(1.0, 5.0);

  long claims = 0, finishes = 0, errors = 0;
  for (;;) {
    try {
      // Read the flag first: anything the samplers added was committed before it appeared.
      const bool samplers_done = fs::exists(done_flag);
      if (auto c = nas::search::claim_next(db, me, policy)) {
        ++claims;
        finish(db, c->trial_id, me, finish_to);
        ++finishes;
        continue;
      }
      std::vector<int64_t> sampled;
      db.read([&] {
        sampled.clear();
        Statement q = db.prepare("SELECT id FROM trial WHERE state = 'sampled' ORDER BY id LIMIT 8");
        while (q.step()) sampled.push_back(q.int64(0));
      });
      if (!sampled.empty()) {
        enqueue(db, sampled, 0, std::nullopt);   // ids another worker queued first are skipped
        continue;
      }
      if (samplers_done) break;
      sleep_ms(pause_ms(rng));
    } catch (const std::exception& e) {
      ++errors;
      nas::log::error(e.what());
      sleep_ms(pause_ms(rng));
    }
  }
  try {
    stop_worker(db, me);
  } catch (const std::exception& e) {
    ++errors;
    nas::log::error(e.what());
  }
  std::cout << "claims=" << claims << " finishes=" << finishes << " errors=" << errors << std::endl;
  return errors ? 1 : 0;
}

// hold: claim one trial, say which, and keep it until killed.
int run_hold(const std::string& path, double lease_s) {
  Db db = Db::open(path, OpenMode::existing);
  nas::search::Policy policy;
  policy.lease_s = lease_s;
  const int64_t me = register_worker(db, this_worker("cpu"));
  auto c = nas::search::claim_next(db, me, policy);
  if (!c) {
    std::cout << "none" << std::endl;
    return 1;
  }
  std::cout << c->trial_id << std::endl;   // endl flushes: the test reads it while we sleep
  for (;;) ::pause();
}

// claim: claim one trial, print "ID ATTEMPTS" (or "none"), and finish it as done.
int run_claim(const std::string& path, double lease_s) {
  Db db = Db::open(path, OpenMode::existing);
  nas::search::Policy policy;
  policy.lease_s = lease_s;
  const int64_t me = register_worker(db, this_worker("cpu"));
  auto c = nas::search::claim_next(db, me, policy);
  if (!c) {
    std::cout << "none" << std::endl;
  } else {
    std::cout << c->trial_id << " " << c->attempts << std::endl;
    finish(db, c->trial_id, me, TrialState::done);
  }
  stop_worker(db, me);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  nas::log::init("queue_stress", nas::log::Level::normal);
  CLI::App app{"queue_stress: drive the trial queue from many processes (a test helper)"};
  app.require_subcommand(1);
  std::string path, state = "queued", finish_to = "done";
  int trials = 0;
  double lease_s = 300;

  auto* init = app.add_subcommand("init", "create a study file with N trials");
  init->add_option("db", path, "study file")->required();
  init->add_option("--trials", trials, "how many trials")->required();
  init->add_option("--state", state, "their state: queued or sampled [queued]");

  auto* sample = app.add_subcommand("sample", "add N sampled trials, creating the file if missing");
  sample->add_option("db", path, "study file")->required();
  sample->add_option("-n", trials, "how many trials")->required();

  auto* work = app.add_subcommand("work", "claim and finish until the samplers are done");
  work->add_option("db", path, "study file")->required();
  work->add_option("--lease", lease_s, "lease in seconds [300]");
  work->add_option("--finish-to", finish_to, "state of a finished trial: done or paused [done]");

  auto* hold = app.add_subcommand("hold", "claim one trial, print its id, sleep until killed");
  hold->add_option("db", path, "study file")->required();
  hold->add_option("--lease", lease_s, "lease in seconds [300]");

  auto* claim = app.add_subcommand("claim", "claim one trial, print 'ID ATTEMPTS' or 'none', finish it");
  claim->add_option("db", path, "study file")->required();
  claim->add_option("--lease", lease_s, "lease in seconds [300]");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*init) return run_init(path, trials, state);
    if (*sample) return run_sample(path, trials);
    if (*work) {
      const auto to = parse_trial_state(finish_to);
      if (!to) throw nas::UsageError("--finish-to: unknown state '" + finish_to + "'");
      return run_work(path, lease_s, *to);
    }
    if (*hold) return run_hold(path, lease_s);
    if (*claim) return run_claim(path, lease_s);
  } catch (const nas::Error& e) {
    nas::log::error(e.what());
    return int(e.code());
  } catch (const std::exception& e) {
    nas::log::error(e.what());
    return 1;
  }
  return 2;
}
