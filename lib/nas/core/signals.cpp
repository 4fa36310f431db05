// signals: handlers that record the first stop signal in a lock-free atomic
#include "nas/core/signals.h"

#include <atomic>
#include <csignal>
#include <initializer_list>
#include <unistd.h>

namespace nas {
namespace {

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs a lock-free atomic");

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig) && sig == SIGINT && expected == SIGINT)
    ::_exit(130);   // Ctrl-C twice: the user wants out now
}

} // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) ::sigaction(sig, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }

void request_stop(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
}

void clear_stop() { g_signal.store(0); }

} // namespace nas
