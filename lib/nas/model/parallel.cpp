// parallel: see parallel.h.
#include "nas/model/parallel.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <mutex>

namespace nas::model {
namespace {

#if AT_PARALLEL_OPENMP
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
using OmpThreadNum = int (*)();

struct Gomp {
  GompParallel parallel = reinterpret_cast<GompParallel>(::dlsym(RTLD_DEFAULT, "GOMP_parallel"));
  OmpThreadNum thread_num = reinterpret_cast<OmpThreadNum>(::dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
  bool usable() const { return parallel && thread_num; }
};

const Gomp& gomp() {
  static const Gomp g;
  return g;
}

// What each thread of the team runs: its own chunk of the range.
struct Team {
  int64_t begin, end, chunks;
  const std::function<void(int64_t, int64_t)>* f;
  std::once_flag failed;
  std::exception_ptr error;
  void run(int64_t t) {
    const int64_t n = end - begin, b = begin + n * t / chunks, e = begin + n * (t + 1) / chunks;
    if (b >= e) return;
    try {
      (*f)(b, e);
    } catch (...) {
      std::call_once(failed, [&] { error = std::current_exception(); });
    }
  }
};
#endif

} // namespace

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const int64_t n = end - begin, per = std::max<int64_t>(1, grain);
  const int64_t chunks = std::min<int64_t>(at::get_num_threads(), (n + per - 1) / per);
  if (chunks <= 1 || at::in_parallel_region()) return f(begin, end);
#if AT_PARALLEL_OPENMP
  if (gomp().usable()) {
    Team team{begin, end, chunks, &f, {}, {}};
    gomp().parallel([](void* p) {
      Team& tm = *static_cast<Team*>(p);
      tm.run(gomp().thread_num());
    }, &team, unsigned(chunks), 0);
    if (team.error) std::rethrow_exception(team.error);
    return;
  }
#endif
  at::parallel_for(begin, end, grain, f);
}

} // namespace nas::model
