// iALS statistics under secure aggregation (secagg_ials.h).
#include "secagg_ials.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

size_t
fri_sa_ials_width(uint32_t k)
{
    if (k == 0 || k > FRI_LINALG_MAX_N) {
        return 0;
    }
    return fri_packed_len(k) + (size_t)k + 1;
}

size_t
fri_sa_ials_dim(uint32_t n_items, uint32_t k)
{
    size_t w = fri_sa_ials_width(k), n = 0;
    if (w == 0 || n_items == 0 || !fri_mul_ok(w, n_items, &n)
        || n > SIZE_MAX - fri_packed_len(k) - 2) {
        return 0;
    }
    return n + fri_packed_len(k) + 2;
}

// Bounds of one item block (W values) into s: w p_a p_b <= C U^2,
// c p_a <= (C + 1) U, c <= C + 1.
static void
block_scales(double *s, uint32_t k, const fri_sa_als_bounds *b)
{
    double U = b->user_norm, C = b->residual;
    size_t P = fri_packed_len(k);
    for (size_t t = 0; t < P; t++) {
        s[t] = C * U * U;
    }
    for (size_t a = 0; a < k; a++) {
        s[P + a] = (C + 1.0) * U;
    }
    s[P + k] = C + 1.0;
}

fr_err
fri_sa_ials_encode_stats(float *x, size_t dim, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b, const float *gram, const float *rows,
    const uint32_t *items, size_t n, double value_sum, size_t *clipped)
{
    size_t w = fri_sa_ials_width(k);
    if (x == NULL || gram == NULL || !fri_sa_als_bounds_ok(b) || w == 0
        || (n > 0 && (items == NULL || rows == NULL))
        || dim != fri_sa_ials_dim(n_items, k) || n > n_items
        || !isfinite(value_sum)) {
        return FR_EINVAL;
    }
    size_t d = (size_t)k + 1, P = fri_packed_len(k), nclip = 0;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= n_items || (j > 0 && items[j] <= items[j - 1])
            || !isfinite(rows[j * d]) || rows[j * d] < 0.0f) {
            return FR_EINVAL;
        }
    }
    // p is the last column of the Gram of [p; 1].
    double p[FRI_LINALG_MAX_N], norm = 0.0;
    for (size_t a = 0; a < k; a++) {
        p[a] = gram[fri_packed_index(d, a, k)];
        if (!isfinite(p[a])) {
            return FR_EINVAL;
        }
        norm += p[a] * p[a];
    }
    norm     = sqrt(norm);
    double U = b->user_norm, C = b->residual;
    // Just inside U, so that float rounding cannot push a value past 1.
    double f = norm > U * (1.0 - 1e-6) ? U * (1.0 - 1e-6) / norm : 1.0;
    nclip += f < 1.0;
    for (size_t a = 0; a < k; a++) {
        p[a] *= f / U; // normalized: |p_a| < 1
    }
    memset(x, 0, dim * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        float *blk = x + (size_t)items[j] * w;
        double wj  = rows[j * d];
        if (wj > C) {
            wj = C;
            nclip++;
        }
        double c = 1.0 + wj;
        for (size_t a = 0; a < k; a++) {
            for (size_t e = a; e < k; e++) {
                blk[fri_packed_index(k, a, e)] = (float)(wj / C * p[a] * p[e]);
            }
            blk[P + a] = (float)(c / (C + 1.0) * p[a]);
        }
        blk[P + k] = (float)(c / (C + 1.0));
    }
    float *tail = x + (size_t)n_items * w;
    for (size_t a = 0; a < k; a++) {
        for (size_t e = a; e < k; e++) {
            tail[fri_packed_index(k, a, e)] = (float)(p[a] * p[e]);
        }
    }
    double smax = (double)n_items * b->rating_abs;
    if (value_sum > smax || value_sum < -smax) {
        value_sum = value_sum > smax ? smax : -smax;
        nclip++;
    }
    x[dim - 2] = (float)(value_sum / smax);
    x[dim - 1] = (float)((double)n / (double)n_items);
    if (clipped != NULL) {
        *clipped = nclip;
    }
    return FR_OK;
}

fr_err
fri_sa_ials_decode(float *v, const uint32_t *sum, size_t dim,
    unsigned frac_bits, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b)
{
    size_t w = fri_sa_ials_width(k);
    if (v == NULL || sum == NULL || !fri_sa_als_bounds_ok(b) || w == 0
        || frac_bits > 30 || dim != fri_sa_ials_dim(n_items, k)) {
        return FR_EINVAL;
    }
    double *s = malloc(w * sizeof(double));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    block_scales(s, k, b);
    fri_sa_decode_blocks(v, sum, n_items, w, s, frac_bits);
    free(s);
    double step = ldexp(1.0, -(int)frac_bits);
    size_t       P    = fri_packed_len(k);
    const size_t tail = (size_t)n_items * w;
    double       U2   = (double)b->user_norm * b->user_norm;
    for (size_t t = 0; t < P; t++) {
        v[tail + t] = (float)((double)(int32_t)sum[tail + t] * step * U2);
    }
    v[dim - 2] = (float)((double)(int32_t)sum[dim - 2] * step * (double)n_items
        * b->rating_abs);
    v[dim - 1]
        = (float)((double)(int32_t)sum[dim - 1] * step * (double)n_items);
    return FR_OK;
}
