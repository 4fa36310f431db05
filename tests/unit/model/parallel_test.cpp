// parallel_test: model::parallel_for runs its chunks on as many threads as LibTorch's setting
// allows (at::parallel_for in a file built without -fopenmp runs them all on the caller), covers
// the range once in equal chunks (also where libgomp gives a smaller team), runs serially inside a parallel region and hands a
// chunk's exception to the caller.
#include <torch/torch.h>

// LibTorch's logging defines CHECK: torch tests use doctest's DOCTEST_-prefixed macros.
#include <doctest/doctest.h>

#include "nas/model/parallel.h"

#include <ATen/Config.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using nas::model::parallel_for;

namespace {

struct Threads {
  explicit Threads(int n) : before(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before); }
  int before;
};

// The chunks a call made and the threads that ran them.
struct Record {
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::set<std::thread::id> threads;
  void add(int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    chunks.emplace_back(b, e);
    threads.insert(std::this_thread::get_id());
  }
};

} // namespace

TEST_CASE("parallel_for runs one chunk a thread and covers the range once") {
  Threads scope(3);
  Record r;
  parallel_for(10, 110, 1, [&](int64_t b, int64_t e) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));   // the chunks overlap in time
    r.add(b, e);
  });
  DOCTEST_CHECK(r.chunks.size() == 3);
  DOCTEST_CHECK(r.threads.size() == 3);
  std::sort(r.chunks.begin(), r.chunks.end());
  const std::vector<std::pair<int64_t, int64_t>> want{{10, 43}, {43, 76}, {76, 110}};
  DOCTEST_CHECK(r.chunks == want);
}

TEST_CASE("parallel_for makes no more chunks than the grain allows, and one runs on the caller") {
  Threads scope(4);
  Record two, one;
  parallel_for(0, 10, 5, [&](int64_t b, int64_t e) { two.add(b, e); });
  DOCTEST_CHECK(two.chunks.size() == 2);
  parallel_for(0, 10, 10, [&](int64_t b, int64_t e) { one.add(b, e); });
  DOCTEST_REQUIRE(one.chunks.size() == 1);
  DOCTEST_CHECK(one.chunks[0] == std::make_pair<int64_t, int64_t>(0, 10));
  DOCTEST_CHECK(*one.threads.begin() == std::this_thread::get_id());
  int calls = 0;
  parallel_for(5, 5, 1, [&](int64_t, int64_t) { ++calls; });
  DOCTEST_CHECK(calls == 0);
}

TEST_CASE("parallel_for inside a parallel region runs serially") {
  Threads scope(2);
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> inner_chunks;
  parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    Record inner;
    parallel_for(0, 100, 1, [&](int64_t b, int64_t e) { inner.add(b, e); });
    std::lock_guard<std::mutex> lock(mutex);
    DOCTEST_REQUIRE(inner.chunks.size() == 1);
    inner_chunks.push_back(inner.chunks[0]);
  });
  const std::vector<std::pair<int64_t, int64_t>> whole{{0, 100}, {0, 100}};   // each the whole range
  DOCTEST_CHECK(inner_chunks == whole);
}

TEST_CASE("parallel_for rethrows a chunk's exception after all chunks end") {
  Threads scope(2);
  std::atomic<int> ended{0};
  DOCTEST_CHECK_THROWS_WITH_AS(parallel_for(0, 2, 1,
                                            [&](int64_t b, int64_t) {
                                              if (b == 1) throw std::runtime_error("chunk 1 failed");
                                              std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                              ++ended;
                                            }),
                               "chunk 1 failed", std::runtime_error);
  DOCTEST_CHECK(ended.load() == 1);
}

TEST_CASE("parallel_for loses no chunk where libgomp gives fewer threads than asked") {
#if AT_PARALLEL_OPENMP
  // max-active-levels 0: every parallel region gets a team of one thread
  using SetLevels = void (*)(int);
  using GetLevels = int (*)();
  const auto set = reinterpret_cast<SetLevels>(::dlsym(RTLD_DEFAULT, "omp_set_max_active_levels"));
  const auto get = reinterpret_cast<GetLevels>(::dlsym(RTLD_DEFAULT, "omp_get_max_active_levels"));
  const bool found = set && get;
  DOCTEST_REQUIRE(found);
  const int before = get();
  set(0);
  Threads scope(3);
  Record r;
  parallel_for(0, 90, 1, [&](int64_t b, int64_t e) { r.add(b, e); });
  set(before);
  std::sort(r.chunks.begin(), r.chunks.end());
  const std::vector<std::pair<int64_t, int64_t>> want{{0, 30}, {30, 60}, {60, 90}};
  DOCTEST_CHECK(r.chunks == want);   // three chunks, all on the one thread
  DOCTEST_CHECK(r.threads.size() == 1);
#endif
}
