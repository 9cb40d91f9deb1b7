// Explicit-ALS statistics under secure aggregation (secagg_als.h).
#include "secagg_als.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

int
fri_sa_als_bounds_ok(const fri_sa_als_bounds *b)
{
    return b != NULL && isfinite(b->user_norm) && b->user_norm > 0.0f
        && isfinite(b->residual) && b->residual > 0.0f
        && isfinite(b->rating_abs) && b->rating_abs > 0.0f;
}

size_t
fri_sa_als_width(uint32_t k)
{
    if (k == 0) {
        return 0;
    }
    size_t d = (size_t)k + 1;
    return fri_packed_len(d) + d;
}

size_t
fri_sa_als_dim(uint32_t n_items, uint32_t k)
{
    size_t w = fri_sa_als_width(k), n = 0;
    if (w == 0 || n_items == 0 || !fri_mul_ok(w, n_items, &n)
        || n > SIZE_MAX - 2) {
        return 0;
    }
    return n + 2;
}

// Scales of one item block (W values) into s.
static void
row_scales(double *s, uint32_t k, const fri_sa_als_bounds *b)
{
    size_t d = (size_t)k + 1;
    double U = b->user_norm, R = b->residual;
    for (size_t a = 0; a < d; a++) {
        double sa = a < k ? U : 1.0;
        for (size_t c = a; c < d; c++) {
            s[fri_packed_index(d, a, c)] = sa * (c < k ? U : 1.0);
        }
        s[fri_packed_len(d) + a] = sa * R;
    }
}

double
fri_sa_als_scale(uint32_t k, const fri_sa_als_bounds *b, size_t j)
{
    size_t d = (size_t)k + 1, P = fri_packed_len(d);
    double U = b->user_norm;
    if (j >= P) {
        return (j - P < k ? U : 1.0) * b->residual;
    }
    for (size_t a = 0; a < d; a++) {
        size_t end = fri_packed_index(d, a, d - 1);
        if (j <= end) {
            size_t c = a + (j - fri_packed_index(d, a, a));
            return (a < k ? U : 1.0) * (c < k ? U : 1.0);
        }
    }
    return 1.0;
}

fr_err
fri_sa_als_encode(float *x, size_t dim, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b, const float *p, const uint32_t *items,
    const float *res, size_t n, double rating_sum, size_t *clipped)
{
    size_t w = fri_sa_als_width(k);
    if (x == NULL || !fri_sa_als_bounds_ok(b) || p == NULL
        || (n > 0 && (items == NULL || res == NULL)) || w == 0
        || k > FRI_LINALG_MAX_N || dim != fri_sa_als_dim(n_items, k)
        || n > n_items || !isfinite(rating_sum)) {
        return FR_EINVAL;
    }
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= n_items || (j > 0 && items[j] <= items[j - 1])
            || !isfinite(res[j])) {
            return FR_EINVAL;
        }
    }
    size_t d = (size_t)k + 1, P = fri_packed_len(d), nclip = 0;
    double xs[FRI_LINALG_MAX_N + 1], sc[FRI_LINALG_MAX_N + 1];
    double norm = 0.0;
    for (size_t a = 0; a < k; a++) {
        if (!isfinite(p[a])) {
            return FR_EINVAL;
        }
        norm += (double)p[a] * p[a];
    }
    norm     = sqrt(norm);
    double U = b->user_norm, R = b->residual;
    // Just inside U, so that float rounding cannot push |x_a x_b| / U^2
    // past 1 (the quantizer would clamp it, not wrap, but stay exact).
    double f = norm > U * (1.0 - 1e-6) ? U * (1.0 - 1e-6) / norm : 1.0;
    nclip += f < 1.0;
    for (size_t a = 0; a < k; a++) {
        xs[a] = (double)p[a] * f;
        sc[a] = U;
    }
    xs[k] = 1.0;
    sc[k] = 1.0;
    memset(x, 0, dim * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        float *row = x + (size_t)items[j] * w;
        double r   = res[j];
        if (r > R || r < -R) {
            r = r > R ? R : -R;
            nclip++;
        }
        for (size_t a = 0; a < d; a++) {
            for (size_t c = a; c < d; c++) {
                row[fri_packed_index(d, a, c)]
                    = (float)(xs[a] * xs[c] / (sc[a] * sc[c]));
            }
            row[P + a] = (float)(xs[a] * r / (sc[a] * R));
        }
    }
    double smax = (double)n_items * b->rating_abs;
    if (rating_sum > smax || rating_sum < -smax) {
        rating_sum = rating_sum > smax ? smax : -smax;
        nclip++;
    }
    x[dim - 2] = (float)(rating_sum / smax);
    x[dim - 1] = (float)((double)n / (double)n_items);
    if (clipped != NULL) {
        *clipped = nclip;
    }
    return FR_OK;
}

void
fri_sa_decode_blocks(float *v, const uint32_t *sum, size_t n_blocks, size_t w,
    const double *scale, unsigned frac_bits)
{
    // In double from the exact integer sum: a float intermediate would
    // round large sums to 24 bits first.
    double step = ldexp(1.0, -(int)frac_bits);
    for (size_t i = 0; i < n_blocks; i++) {
        for (size_t j = 0; j < w; j++) {
            size_t t = i * w + j;
            v[t]     = (float)((double)(int32_t)sum[t] * step * scale[j]);
        }
    }
}

fr_err
fri_sa_als_decode(float *v, const uint32_t *sum, size_t dim,
    unsigned frac_bits, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b)
{
    size_t w = fri_sa_als_width(k);
    if (v == NULL || sum == NULL || !fri_sa_als_bounds_ok(b) || w == 0
        || k > FRI_LINALG_MAX_N || frac_bits > 30
        || dim != fri_sa_als_dim(n_items, k)) {
        return FR_EINVAL;
    }
    double *s = malloc(w * sizeof(double));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    row_scales(s, k, b);
    fri_sa_decode_blocks(v, sum, n_items, w, s, frac_bits);
    free(s);
    double step = ldexp(1.0, -(int)frac_bits);
    v[dim - 2] = (float)((double)(int32_t)sum[dim - 2] * step * (double)n_items
        * b->rating_abs);
    v[dim - 1]
        = (float)((double)(int32_t)sum[dim - 1] * step * (double)n_items);
    return FR_OK;
}

fr_err
fri_sa_als_encode_stats(float *x, size_t dim, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b, const float *gram, const float *rows,
    const uint32_t *items, size_t n, double rating_sum, size_t *clipped)
{
    if (gram == NULL || (n > 0 && rows == NULL) || k == 0
        || k > FRI_LINALG_MAX_N) {
        return FR_EINVAL;
    }
    size_t d = (size_t)k + 1;
    float  p[FRI_LINALG_MAX_N];
    float *res = malloc((n > 0 ? n : 1) * sizeof(float));
    if (res == NULL) {
        return FR_ENOMEM;
    }
    // x = [p; 1]: p is the Gram's last column, each residual the last
    // entry of its row h = x res.
    for (size_t a = 0; a < k; a++) {
        p[a] = gram[fri_packed_index(d, a, k)];
    }
    for (size_t j = 0; j < n; j++) {
        res[j] = rows[j * d + k];
    }
    fr_err rv = fri_sa_als_encode(
        x, dim, n_items, k, b, p, items, res, n, rating_sum, clipped);
    free(res);
    return rv;
}
