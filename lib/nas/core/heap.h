// heap: how the process's C heap treats memory that tensors give back.
#pragma once

namespace nas {

// Keeps freed memory in the process instead of handing it back to the kernel, once per process
// (later calls do nothing). A training step allocates and frees the same tens of megabytes of
// activations every few milliseconds; glibc's defaults return them to the kernel (large blocks
// are mmap'ed, a heap's free top is trimmed) and take them back at the next step, one page fault
// and one zeroed page per 4 KiB. On 2 CPU cores that cost 0.9 to 4.6 million page faults and up to
// 8 s of kernel time per epoch of bench/train-epoch's CNN, varying from run to run with the
// order of frees. Here blocks below 256 MiB come from the heap and a heap is trimmed only when
// 1 GiB at its top is free, so the resident memory stays at the run's peak, as with LibTorch's
// CUDA caching allocator. Returns false where the C library is not glibc or refused a setting.
bool keep_freed_memory();

} // namespace nas
