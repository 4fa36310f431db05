// kernel: how minnow's hand-vectorised CPU loops are compiled: clones for AVX-512 and AVX2 beside
// the baseline x86-64 one, the best the machine runs chosen when the program loads (GCC's
// target_clones), so that one binary is fast on any x86-64 without -march=native. The files that
// use it are built with -O3 and without FMA contraction (lib/CMakeLists.txt): every clone then
// rounds alike, and a value recomputed in backward equals the forward's bit for bit.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NAS_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NAS_KERNEL
#endif
