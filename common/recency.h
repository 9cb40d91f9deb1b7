// Recency weighting of implicit feedback: interests drift, and what a user
// touched last says most about what they touch next. A device fits its
// user vector with each interaction's strength scaled by
//   2^(-r / h),  r = the number of the user's interactions newer than it
// (by timestamp; equal timestamps share a weight), h = the half-life in
// interactions. Counting interactions rather than seconds needs no time
// scale per data set, and a history without timestamps (all equal) keeps
// every weight at 1. Only the user side is weighted: the item statistics
// a device reports carry the unweighted strengths, so the item factors
// still learn from whole histories (measured: docs/BENCHMARKS.md,
// "Recency").
#ifndef FR_COMMON_RECENCY_H
#define FR_COMMON_RECENCY_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

// Half-life of the device default, chosen on ML-100K's leave-last-out
// validation item (docs/BENCHMARKS.md).
#define FRI_RECENCY_DEFAULT 3.0f
// Largest half-life accepted (larger is "off" in all but name).
#define FRI_RECENCY_MAX 1e6f

// out[j] = values[j] * 2^(-r_j / h) for the n entries (ts[j] their
// timestamps; out may alias values). h == 0: out = values. scratch holds
// n int64_t (may be NULL when n <= 1). FR_EINVAL: h negative, not finite
// or above FRI_RECENCY_MAX, or NULL arrays with n > 0.
FR_NODISCARD fr_err fri_recency_weigh(float *out, const float *values,
    const int64_t *ts, size_t n, float h, int64_t *scratch);

#endif
