// heap: see heap.h
#include "nas/core/heap.h"

#include <mutex>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace nas {

bool keep_freed_memory() {
  static std::once_flag once;
  static bool done = false;
  std::call_once(once, [] {
#ifdef __GLIBC__
    // mallopt returns 1 on success. M_TOP_PAD also keeps a thread's secondary heap (the
    // trainers run on worker threads, each with its own glibc arena) from being unmapped
    // whenever its top block is free.
    done = ::mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1 && ::mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 &&
           ::mallopt(M_TOP_PAD, 64 << 20) == 1;
#endif
  });
  return done;
}

} // namespace nas
