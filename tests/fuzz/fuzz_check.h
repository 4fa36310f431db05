// fuzz_check: the fuzz targets' invariant check, which aborts: libFuzzer then saves the input as
// a crash, as it does for a sanitizer report or an uncaught exception
#pragma once
#include <cstdio>
#include <cstdlib>

// A broken invariant of a parser's result is a finding like a crash: print it and abort.
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)
