#include "recency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// Entries of sorted (ascending, n) greater than v.
static size_t
count_greater(const int64_t *sorted, size_t n, int64_t v)
{
    size_t lo = 0, hi = n; // first index with sorted[i] > v
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] > v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return n - lo;
}

fr_err
fri_recency_weigh(float *out, const float *values, const int64_t *ts, size_t n,
    float h, int64_t *scratch)
{
    if (!(h >= 0.0f && h <= FRI_RECENCY_MAX)
        || (n > 0 && (out == NULL || values == NULL || ts == NULL))
        || (n > 1 && h > 0.0f && scratch == NULL)) {
        return FR_EINVAL;
    }
    if (h == 0.0f || n <= 1) { // one interaction is the newest
        if (out != values && n > 0) {
            memmove(out, values, n * sizeof *out);
        }
        return FR_OK;
    }
    memcpy(scratch, ts, n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cmp_i64);
    for (size_t j = 0; j < n; j++) {
        double r = (double)count_greater(scratch, n, ts[j]);
        out[j]   = (float)((double)values[j] * exp2(-r / (double)h));
    }
    return FR_OK;
}
