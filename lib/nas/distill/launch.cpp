// launch: see launch.h
#include "nas/distill/launch.h"
#include "nas/core/error.h"
#include "nas/core/log.h"
#include "nas/core/signals.h"
#include "nas/distill/ddp.h"
#include "nas/train/device.h"

#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

extern char** environ;

namespace nas::distill {
namespace {

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t at = 0; at < all.size();) {
    const size_t end = all.find('\0', at);
    args.push_back(all.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  if (args.empty()) throw Error("cannot read this process's arguments from /proc/self/cmdline");
  return args;
}

// Everything the child needs is built before fork: only execve and _exit run after it.
pid_t start_rank(const std::vector<std::string>& args, int rank, int world, const std::string& store) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "NAS_DDP_", 8) != 0) env.emplace_back(*e);
  env.push_back(std::string(kRankEnv) + "=" + std::to_string(rank));
  env.push_back(std::string(kWorldEnv) + "=" + std::to_string(world));
  env.push_back(std::string(kStoreEnv) + "=" + store);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t launcher = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(errno));
  if (pid == 0) {
    // a rank never outlives its launcher (killed by the OOM killer or SIGKILL): it would go on
    // writing the teacher's files under a rerun's ranks
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != launcher) ::_exit(1);
    ::execve("/proc/self/exe", argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 1; }

} // namespace

std::optional<int> launch_local_ranks(int ranks, const std::string& folder) {
  if (ranks <= 1 || rendezvous_from_environment()) return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw FileError("create the folder", folder, ec.message());
  const std::string store = folder + "/ranks-" + std::to_string(::getpid()) + ".store";
  std::filesystem::remove(store, ec);
  const auto args = own_arguments();
  install_stop_handlers();
  std::vector<pid_t> pids;
  try {
    for (int r = 0; r < ranks; ++r) pids.push_back(start_rank(args, r, ranks, store));
  } catch (const std::exception&) {   // the ranks already started would wait for the rest in vain
    for (pid_t p : pids) ::kill(p, SIGKILL);
    for (pid_t p : pids) ::waitpid(p, nullptr, 0);
    throw;
  }
  log::verbose("started " + std::to_string(ranks) + " rank processes meeting in '" + store + "'");

  int rc = 0, left = ranks, forwarded = 0;
  bool failing = false;   // a rank failed: the rest get 10 s after TERM
  std::chrono::steady_clock::time_point failed_at;
  while (left > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (auto& p : pids)
        if (p == pid) {
          p = 0;
          --left;
          const int code = exit_code(status);
          if (code != 0 && rc == 0) {
            rc = code;
            failing = true;
            failed_at = std::chrono::steady_clock::now();
            log::warning("a rank failed (exit " + std::to_string(code) + "): stopping the others");
            for (pid_t q : pids)
              if (q > 0) ::kill(q, SIGTERM);
          }
        }
      continue;
    }
    if (stop_signal() != forwarded) {   // forward a stop request once
      forwarded = stop_signal();   // a terminal's SIGINT reached the ranks already: a second ends them at once
      for (pid_t q : pids)
        if (q > 0) ::kill(q, forwarded == SIGINT ? SIGTERM : forwarded);
    }
    if (failing && std::chrono::steady_clock::now() - failed_at > std::chrono::seconds(10)) {
      for (pid_t q : pids)
        if (q > 0) ::kill(q, SIGKILL);
      failing = false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::filesystem::remove(store, ec);
  return rc;
}

std::optional<int> start_ranks(int ranks, const std::string& folder, std::string& device,
                               std::unique_ptr<DataParallel>& dp) {
  const auto rv = rendezvous_from_environment();
  if (!rv) {
    std::string why;
    if (!data_parallel_available(train::resolve_device(device).device, why))
      throw UsageError("--ranks " + std::to_string(ranks) + ": " + why);
    return launch_local_ranks(ranks, folder);
  }
  if (ranks > 1 && ranks != rv->world)
    throw UsageError("--ranks " + std::to_string(ranks) + " but srun started " + std::to_string(rv->world) + " tasks");
  log::init(log::program() + " rank " + std::to_string(rv->rank), log::level());
  if ((device == "auto" || device == "cuda") && torch::cuda::is_available())
    device = "cuda:" + std::to_string(rv->local_rank % int(torch::cuda::device_count()));
  dp = std::make_unique<DataParallel>(*rv, train::resolve_device(device).device);
  log::verbose("rank " + std::to_string(rv->rank) + " of " + std::to_string(rv->world) + " joined");
  return std::nullopt;
}

} // namespace nas::distill
