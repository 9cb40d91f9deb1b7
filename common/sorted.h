// Ascending uint32_t arrays (CSR rows, item and member lists): their
// qsort order and binary search.
#ifndef FR_COMMON_SORTED_H
#define FR_COMMON_SORTED_H

#include <stddef.h>
#include <stdint.h>

// qsort comparator: ascending.
static inline int
fri_cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

// The first index whose value is >= x (n if none).
static inline size_t
fri_lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Whether x is among v[0..n).
static inline int
fri_in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
    size_t i = fri_lower_bound(v, n, x);
    return i < n && v[i] == x;
}

#endif
