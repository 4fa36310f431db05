// queue_bench: claim+finish cycles per second of the trial queue, N processes on one study file
//
//   queue_bench --db PATH --procs N --trials T [--journal wal|delete] [--lease S]
//
// Creates a fresh study file with T queued trials, forks N worker processes (each opens the file
// and registers as a worker first), releases them at once, and times them until the queue is
// empty: each loops claim_next + finish(done). Any exception a call throws is counted as a failed
// call and the loop goes on. Prints one JSON line:
//   {"tool":"minnow","procs":N,"trials":T,"completed":C,"failed_calls":E,"stuck":S,
//    "seconds":W,"per_s":C/W}
// where completed and stuck (trials not 'done') are read from the file at the end.
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/text.h"
#include "nas/store/db.h"
#include "nas/search/promotion.h"
#include "nas/store/queue.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

using namespace nas::store;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string db;
  int procs = 16;
  int trials = 800;
  std::string journal;   // "" = chosen by file system
  double lease_s = 300;
};

void create_study(const Options& o) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(o.db + suffix, ec);
  }
  Db db = Db::open(o.db, OpenMode::create);
  db.write([&] {
    Statement ins = db.prepare(
        "INSERT INTO trial (genome, hash, arch, origin, state, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, 'sample', 'queued', ?4, ?4)");
    double now = nas::now_unix();
    for (int i = 1; i <= o.trials; ++i) {
      ins.reset();
      ins.bind(1, "{\"bench\":" + std::to_string(i) + "}").bind(2, "bench-" + std::to_string(i))
          .bind(3, "bench " + std::to_string(i)).bind(4, now).run();
    }
  });
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

// One worker process: set up, signal ready, wait for the start, claim+finish until empty.
[[noreturn]] void worker(const Options& o, int ready_fd, int go_fd, int result_fd) {
  long completed = 0, errors = 0;
  std::optional<Db> db;
  int64_t me = 0;
  try {
    db.emplace(Db::open(o.db, OpenMode::existing));
    me = register_worker(*db, this_worker("cpu"));
  } catch (const std::exception& e) {
    nas::log::error(e.what());
    ++errors;
  }
  write_all(ready_fd, "r");
  char c;
  while (::read(go_fd, &c, 1) < 0 && errno == EINTR) {
  }
  nas::search::Policy policy;
  policy.lease_s = o.lease_s;
  int consecutive = 0;
  while (db && consecutive < 100) {
    try {
      auto claim = nas::search::claim_next(*db, me, policy);
      if (!claim) break;
      try {
        finish(*db, claim->trial_id, me, TrialState::done);
        ++completed;
        consecutive = 0;
      } catch (const std::exception& e) {
        nas::log::error(e.what());
        ++errors;
        ++consecutive;
      }
    } catch (const std::exception& e) {
      nas::log::error(e.what());
      ++errors;
      ++consecutive;
    }
  }
  write_all(result_fd, std::to_string(completed) + " " + std::to_string(errors) + "\n");
  std::fflush(nullptr);
  ::_exit(0);
}

int run(const Options& o) {
  if (!o.journal.empty()) ::setenv("NAS_DB_JOURNAL", o.journal.c_str(), 1);
  create_study(o);

  int ready[2], go[2], result[2];
  if (::pipe(ready) || ::pipe(go) || ::pipe(result)) throw nas::Error("cannot create pipes");
  std::vector<pid_t> pids;
  for (int i = 0; i < o.procs; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) throw nas::Error("fork failed after " + std::to_string(i) + " processes");
    if (pid == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      ::close(result[0]);
      worker(o, ready[1], go[0], result[1]);
    }
    pids.push_back(pid);
  }
  ::close(ready[1]);
  ::close(go[0]);
  ::close(result[1]);
  // Wait until every worker has opened the file and registered, then start them all at once.
  for (int n = 0; n < o.procs;) {
    char buf[64];
    ssize_t got = ::read(ready[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += int(got);
  }
  auto t0 = std::chrono::steady_clock::now();
  ::close(go[1]);
  std::string results = read_all(result[0]);
  int crashed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++crashed;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  long errors = 0;
  std::istringstream in(results);
  long c, e;
  while (in >> c >> e) errors += e;
  if (crashed) nas::log::error(std::to_string(crashed) + " worker processes did not exit cleanly");

  Db db = Db::open(o.db, OpenMode::existing);
  int64_t completed = 0, stuck = 0;
  {
    Statement s = db.prepare(
        "SELECT count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state <> 'done') FROM trial");
    s.step();
    completed = s.int64(0);
    stuck = s.int64(1);
  }
  nlohmann::ordered_json out = {{"tool", "minnow"},
                        {"procs", o.procs},
                        {"trials", o.trials},
                        {"completed", completed},
                        {"failed_calls", errors + crashed},
                        {"stuck", stuck},
                        {"seconds", std::round(seconds * 1000) / 1000},
                        {"per_s", std::round(double(completed) / seconds * 10) / 10},
                        {"journal", db.journal_mode()}};
  std::cout << out.dump() << std::endl;
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  nas::log::init("queue_bench", nas::log::Level::normal);
  CLI::App app{"queue_bench: claim+finish cycles per second with N processes on one study file"};
  Options o;
  app.add_option("--db", o.db, "study file to create (replaced if it exists)")->required();
  app.add_option("--procs", o.procs, "worker processes [16]")->check(CLI::Range(1, 4096));
  app.add_option("--trials", o.trials, "queued trials [800]")->check(CLI::Range(1, 10000000));
  app.add_option("--journal", o.journal, "journal mode: wal or delete [by file system]")
      ->check(CLI::IsMember({"wal", "delete", "truncate", "persist"}));
  app.add_option("--lease", o.lease_s, "lease in seconds [300]");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(o);
  } catch (const nas::Error& e) {
    nas::log::error(e.what());
    return int(e.code());
  } catch (const std::exception& e) {
    nas::log::error(e.what());
    return 1;
  }
}
