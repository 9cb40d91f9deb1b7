// Latest-statistics deltas under secure aggregation (secagg_stats.h).
#include "secagg_stats.h"

#include <math.h>
#include <stdlib.h>

#include "linalg.h"

size_t
fri_sa_stats_glob_len(uint32_t k)
{
    size_t d = (size_t)k + 1;
    return k == 0 ? 0 : d + fri_packed_len(d) + 2;
}

size_t
fri_sa_stats_dim(uint32_t n_items, uint32_t k, int vb)
{
    size_t n = fri_sa_als_dim(n_items, k); // n_items W + 2
    size_t g = vb ? fri_sa_stats_glob_len(k) : 0;
    return n == 0 || n > SIZE_MAX - g ? 0 : n + g;
}

size_t
fri_sa_stats_extra_len(uint32_t k, int vb)
{
    size_t d = (size_t)k + 1;
    return fri_packed_len(d) + (vb ? fri_sa_stats_glob_len(k) : 0) + 2;
}

// Bounds of one section in the compact order [item block (W) | global
// block (G) | rating sum | count]: cb the whole contribution's, ds the
// delta's (secagg_stats.h). Both hold W + G + 2 values.
static void
section_bounds(double *cb, double *ds, uint32_t n_items, uint32_t k, int vb,
    const fri_sa_als_bounds *b)
{
    size_t d = (size_t)k + 1, P = fri_packed_len(d), W = P + d;
    double U = b->user_norm, R = b->residual, A = b->rating_abs;
    double N = n_items;
    for (size_t j = 0; j < W; j++) {
        cb[j] = fri_sa_als_scale(k, b, j);
        // h is re-centred on the served mu before subtracting: |dmu| <= 2A.
        ds[j] = j < P ? 2.0 * cb[j] : cb[j] * (2.0 * R + 2.0 * A) / R;
    }
    size_t t = W;
    if (vb) {
        for (size_t a = 0; a < d; a++) {
            cb[t + a] = a < k ? U : R;
            ds[t + a] = 2.0 * cb[t + a];
        }
        for (size_t a = 0; a < d; a++) {
            for (size_t c = a; c < d; c++) {
                size_t q = t + d + fri_packed_index(d, a, c);
                cb[q]    = (a < k ? U : R) * (c < k ? U : R);
                ds[q]    = 2.0 * cb[q];
            }
        }
        t += d + P;
        cb[t]     = N * R * R; // squared residuals, re-centred like h
        ds[t]     = 2.0 * N * (R + 2.0 * A) * (R + 2.0 * A);
        cb[t + 1] = ds[t + 1] = 1.0; // user count: 1 once, then 0
        t += 2;
    }
    // Sent whole once, then 0.
    cb[t] = ds[t] = N * A;
    cb[t + 1] = ds[t + 1] = N;
}

// Index into the compact section order of vector word j.
static size_t
section_index(size_t j, uint32_t n_items, size_t W)
{
    size_t items = (size_t)n_items * W;
    return j < items ? j % W : W + (j - items);
}

static double *
section_alloc(uint32_t k, int vb)
{
    size_t d = (size_t)k + 1;
    size_t l = fri_packed_len(d) + d + fri_sa_stats_glob_len(k) + 2;
    return malloc(2 * l * sizeof(double));
}

double
fri_sa_stats_scale(
    uint32_t n_items, uint32_t k, int vb, const fri_sa_als_bounds *b, size_t j)
{
    double *s = section_alloc(k, vb);
    if (s == NULL || k == 0 || k > FRI_LINALG_MAX_N) {
        free(s);
        return 0.0;
    }
    size_t l = fri_sa_als_width(k) + fri_sa_stats_glob_len(k) + 2;
    section_bounds(s, s + l, n_items, k, vb, b);
    double r = s[l + section_index(j, n_items, fri_sa_als_width(k))];
    free(s);
    return r;
}

static size_t
clamp_to(float *v, double bound)
{
    if (*v > bound) {
        *v = (float)bound;
        return 1;
    }
    if (*v < -bound) {
        *v = (float)-bound;
        return 1;
    }
    return 0;
}

size_t
fri_sa_stats_clip(float *rows, size_t n, float *extra, uint32_t k, int vb,
    uint32_t n_items, const fri_sa_als_bounds *b)
{
    if (k == 0 || k > FRI_LINALG_MAX_N || extra == NULL
        || (n > 0 && rows == NULL) || !fri_sa_als_bounds_ok(b)) {
        return 0;
    }
    size_t  d = (size_t)k + 1, P = fri_packed_len(d), W = P + d;
    size_t  G = vb ? fri_sa_stats_glob_len(k) : 0;
    double *s = section_alloc(k, vb);
    if (s == NULL) {
        return 0;
    }
    section_bounds(s, s + W + G + 2, n_items, k, vb, b);
    size_t c = 0;
    for (size_t j = 0; j < n; j++) {
        for (size_t a = 0; a < d; a++) {
            c += clamp_to(&rows[j * d + a], s[P + a]);
        }
    }
    for (size_t t = 0; t < P; t++) {
        c += clamp_to(&extra[t], s[t]);
    }
    for (size_t t = 0; t < G + 2; t++) {
        c += clamp_to(&extra[P + t], s[W + t]);
    }
    if (vb) {
        // Squared residuals and the user count are sums of non-negative
        // terms.
        for (size_t t = P + d + P; t < P + G; t++) {
            if (extra[t] < 0.0f) {
                extra[t] = 0.0f;
                c++;
            }
        }
    }
    if (extra[P + G + 1] < 0.0f) {
        extra[P + G + 1] = 0.0f;
        c++;
    }
    free(s);
    return c;
}

// v / scale, clamped to [-1, 1].
static float
normalized(double v, double scale, size_t *clipped)
{
    double x = v / scale;
    if (x > 1.0 || x < -1.0) {
        (*clipped)++;
        x = x > 1.0 ? 1.0 : -1.0;
    }
    return (float)x;
}

fr_err
fri_sa_stats_encode(float *x, size_t dim, uint32_t n_items, uint32_t k, int vb,
    const fri_sa_als_bounds *b, const float *rows, const float *extra,
    const uint32_t *items, size_t n, size_t *clipped)
{
    if (x == NULL || extra == NULL
        || (n > 0 && (rows == NULL || items == NULL)) || k == 0
        || k > FRI_LINALG_MAX_N || !fri_sa_als_bounds_ok(b)
        || dim != fri_sa_stats_dim(n_items, k, vb) || n > n_items) {
        return FR_EINVAL;
    }
    size_t d = (size_t)k + 1, P = fri_packed_len(d), W = P + d;
    size_t G = vb ? fri_sa_stats_glob_len(k) : 0;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= n_items || (j > 0 && items[j] <= items[j - 1])
            || !fri_all_finite(rows + j * d, d)) {
            return FR_EINVAL;
        }
    }
    if (!fri_all_finite(extra, P + G + 2)) {
        return FR_EINVAL;
    }
    double *s = section_alloc(k, vb);
    if (s == NULL) {
        return FR_ENOMEM;
    }
    double *ds = s + W + G + 2;
    section_bounds(s, ds, n_items, k, vb, b);
    size_t nclip = 0;
    for (size_t t = 0; t < dim; t++) {
        x[t] = 0.0f;
    }
    for (size_t j = 0; j < n; j++) {
        float *row = x + (size_t)items[j] * W;
        for (size_t t = 0; t < P; t++) {
            row[t] = normalized(extra[t], ds[t], &nclip);
        }
        for (size_t a = 0; a < d; a++) {
            row[P + a] = normalized(rows[j * d + a], ds[P + a], &nclip);
        }
    }
    float *tail = x + (size_t)n_items * W;
    for (size_t t = 0; t < G + 2; t++) {
        tail[t] = normalized(extra[P + t], ds[W + t], &nclip);
    }
    free(s);
    if (clipped != NULL) {
        *clipped = nclip;
    }
    return FR_OK;
}

fr_err
fri_sa_stats_decode(float *v, const uint32_t *sum, size_t dim,
    unsigned frac_bits, uint32_t n_items, uint32_t k, int vb,
    const fri_sa_als_bounds *b)
{
    if (v == NULL || sum == NULL || k == 0 || k > FRI_LINALG_MAX_N
        || frac_bits > 30 || !fri_sa_als_bounds_ok(b)
        || dim != fri_sa_stats_dim(n_items, k, vb)) {
        return FR_EINVAL;
    }
    size_t  W = fri_sa_als_width(k);
    size_t  l = W + (vb ? fri_sa_stats_glob_len(k) : 0) + 2;
    double *s = section_alloc(k, vb);
    if (s == NULL) {
        return FR_ENOMEM;
    }
    section_bounds(s, s + l, n_items, k, vb, b);
    // In double from the exact integer sum (a float intermediate would
    // round the large tail sums first).
    double step = ldexp(1.0, -(int)frac_bits);
    for (size_t j = 0; j < dim; j++) {
        size_t c = section_index(j, n_items, W);
        v[j]     = (float)((double)(int32_t)sum[j] * step * s[l + c]);
    }
    free(s);
    return FR_OK;
}
