// parallel: LibTorch's intra-op threads for minnow's own CPU kernels. With LibTorch's OpenMP
// backend (Debian's, and PyTorch's wheels) at::parallel_for is inline code, a `#pragma omp
// parallel` that runs serially in a translation unit built without -fopenmp, as minnow's are:
// its kernels would use one core whatever the thread setting. parallel_for here reaches the same
// team through GOMP_parallel, what that pragma compiles to, looked up at run time in the libgomp
// LibTorch loaded (so no second OpenMP runtime); with another backend it is at::parallel_for.
#pragma once
#include <cstdint>
#include <functional>

namespace nas::model {

// f(b, e) over [begin, end) in min(at::get_num_threads(), ceil((end - begin) / grain)) chunks of
// nearly equal size (chunk t: [begin + n t / chunks, begin + n (t + 1) / chunks); at::parallel_for
// rounds its chunks up instead), one a thread of the team (a thread takes several where libgomp
// gives fewer threads than asked); at::get_thread_num() is the thread's number; serially inside
// a parallel region or for one chunk. The first exception a chunk throws is rethrown here after
// all chunks end.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

} // namespace nas::model
