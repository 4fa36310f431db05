// test_server: tests/helpers/mimaas_server.py as a child process on loopback, with its control
// endpoints (faults, counters), for the measure module's tests
#pragma once
#include "nas/measure/http.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace nas::test {

class TestServer {
public:
  // Starts the server with `args` (besides --port) and waits for its port.
  explicit TestServer(std::vector<std::string> args) : args_(std::move(args)) { start(0); }
  ~TestServer() { stop(SIGTERM); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Kills the process at once (SIGKILL): the server "dies".
  void kill_now() { stop(SIGKILL); }
  // Starts it again on the same port (its --state file, if any, keeps what it knew). Call it from
  // the thread that owns the TestServer: the child dies with the thread that started it.
  void restart() {
    stop(SIGKILL);                    // reaps a process that ended by itself (a "die" fault)
    start(port_);
  }
  // Waits up to `timeout_s` for the process to end by itself; true when it did.
  bool wait_exit(double timeout_s) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < end) {
      if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Fast, single-try options for the control calls and a base for the tests' clients.
  measure::HttpOptions options(double timeout_s = 3) const {
    measure::HttpOptions o;
    o.base_url = url();
    o.timeout_s = timeout_s;
    o.connect_timeout_s = 1;
    o.max_attempts = 4;
    o.backoff_s = 0.05;
    o.backoff_max_s = 0.2;
    return o;
  }

  nlohmann::json stats() const { return control().get("/_control/stats").json; }
  void faults(const nlohmann::json& spec) const { control().post_json("/_control/faults", spec.dump()); }
  void clear_faults() const { control().del("/_control/faults"); }
  void reset_counters() const { control().post_json("/_control/reset", "{}"); }
  nlohmann::json record(const std::string& id) const { return control().get("/_control/requests/" + id).json; }
  // How often the server saw "METHOD /path" (ids as {id}, artifact names as {name}).
  int seen(const std::string& endpoint) const {
    const auto s = stats();
    return s["by_endpoint"].contains(endpoint) ? s["by_endpoint"][endpoint].get<int>() : 0;
  }

private:
  measure::HttpClient control() const {
    measure::HttpOptions o = options();
    o.max_attempts = 1;
    return measure::HttpClient(o);
  }

  void start(int port) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv = {"/usr/bin/python3", NAS_SOURCE_DIR "/tests/helpers/mimaas_server.py", "--port",
                                     std::to_string(port)};
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[1], 1);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[64];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, size_t(n));
    }
    ::close(fds[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) {
      stop(SIGKILL);
      throw std::runtime_error("mimaas_server.py did not start (port line '" + line + "')");
    }
  }

  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::vector<std::string> args_;
  pid_t pid_ = -1;
  int port_ = 0;
};

} // namespace nas::test
