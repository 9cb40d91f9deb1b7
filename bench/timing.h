// Timing helpers shared by the benchmark programs.
#ifndef FR_BENCH_TIMING_H
#define FR_BENCH_TIMING_H

#include <time.h>

// Monotonic wall clock, seconds.
static inline double
wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// qsort comparator for doubles, ascending.
static inline int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
