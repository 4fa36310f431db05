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
using OmpInt = int (*)();

struct Gomp {
  GompParallel parallel = reinterpret_cast<GompParallel>(::dlsym(RTLD_DEFAULT, "GOMP_parallel"));
  OmpInt thread_num = reinterpret_cast<OmpInt>(::dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
  OmpInt num_threads = reinterpret_cast<OmpInt>(::dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
  bool usable() const { return parallel && thread_num && num_threads; }
};

const Gomp& gomp() {
  static const Gomp g;
  return g;
}

// What each thread of the team runs: its chunks of the range, every team-size-th from its number
// (one each, or none, where the team has at::get_num_threads() threads; libgomp may give fewer,
// under OMP_THREAD_LIMIT, OMP_DYNAMIC or in a nested region, and then no chunk is lost).
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
    // the team of the default size, as LibTorch's own regions ask (0: no num_threads clause), so
    // that libgomp keeps its pool instead of ending the threads a smaller team leaves out
    gomp().parallel([](void* p) {
      Team& tm = *static_cast<Team*>(p);
      const int id = gomp().thread_num();
      const at::internal::ThreadIdGuard guard(id);   // at::get_thread_num() as in LibTorch's regions
      const int64_t size = std::max(1, gomp().num_threads());
      for (int64_t t = id; t < tm.chunks; t += size) tm.run(t);
    }, &team, 0, 0);
    if (team.error) std::rethrow_exception(team.error);
    return;
  }
#endif
  at::parallel_for(begin, end, grain, f);
}

} // namespace nas::model
