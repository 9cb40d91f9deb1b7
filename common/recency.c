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

static inline float
fri_transition_cos_unit(const float *t, const float *q, uint32_t k,
    float inv_norm)
{
    float st = 0.0f;
    for (uint32_t a = 0; a < k; a++) {
        st += t[a] * q[a];
    }
    return st * inv_norm;
}

int
fri_transition_profile(float *t_out, const float *Q, const float *inv_norm,
    uint32_t n_items, uint32_t k, const uint32_t *items, const int64_t *ts,
    size_t n)
{
    memset(t_out, 0, k * sizeof(float));
    int64_t newest = INT64_MIN;
    size_t  in_cat = 0, at_newest = 0;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= n_items) {
            continue;
        }
        in_cat++;
        if (ts[j] > newest) {
            newest    = ts[j];
            at_newest = 0;
        }
        at_newest += ts[j] == newest;
    }
    if (in_cat == 0 || (in_cat > 1 && at_newest == in_cat)) {
        return 0;
    }
    size_t used = 0;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= n_items || ts[j] != newest) {
            continue;
        }
        const float *q   = Q + (size_t)items[j] * k;
        const float  inv = inv_norm[items[j]];
        if (inv == 0.0f) {
            continue; // a zero row
        }
        for (uint32_t a = 0; a < k; a++) {
            t_out[a] += q[a] * inv;
        }
        used++;
    }
    if (used == 0) {
        return 0;
    }
    for (uint32_t a = 0; a < k; a++) {
        t_out[a] /= (float)used;
    }
    return 1;
}

// Sums over the catalog of the two scores and their squares.
typedef struct moments {
    double s1, s2, c1, c2;
} moments;

static inline void
moments_add(moments *m, float s, float c)
{
    m->s1 += s;
    m->s2 += (double)s * s;
    m->c1 += c;
    m->c2 += (double)c * c;
}

// Standardizes cos against scores over the catalog (m: their moments) and
// adds it with weight w; returns kappa.
static float
add_standardized(float *scores, const float *cos, uint32_t n_items,
    const moments *m, float w)
{
    if (n_items < 2) {
        return 0.0f;
    }
    const double n  = (double)n_items;
    const double vs = m->s2 / n - (m->s1 / n) * (m->s1 / n);
    const double vc = m->c2 / n - (m->c1 / n) * (m->c1 / n);
    if (!(vs > 0.0) || !(vc > 1e-12)) {
        return 0.0f;
    }
    const double kappa = (double)w * sqrt(vs / vc);
    if (!isfinite(kappa)) {
        return 0.0f;
    }
    for (uint32_t i = 0; i < n_items; i++) {
        scores[i] += (float)kappa * cos[i];
    }
    return (float)kappa;
}

float
fri_transition_scores(float *scores, float *cos_scratch, const float *Q,
    const float *inv_norm, const float *bi, float offset, uint32_t n_items,
    uint32_t k, const float *p, const float *t, float w)
{
    moments m = { 0.0, 0.0, 0.0, 0.0 };
    for (uint32_t i = 0; i < n_items; i++) {
        const float *q  = Q + (size_t)i * k;
        float        sp = 0.0f, st = 0.0f;
        for (uint32_t a = 0; a < k; a++) {
            sp += p[a] * q[a];
            st += t[a] * q[a];
        }
        scores[i]      = offset + bi[i] + sp;
        cos_scratch[i] = st * inv_norm[i];
        moments_add(&m, scores[i], cos_scratch[i]);
    }
    return add_standardized(scores, cos_scratch, n_items, &m, w);
}

float
fri_transition_add(float *scores, float *cos_scratch, const float *Q,
    const float *inv_norm, uint32_t n_items, uint32_t k, const float *t,
    float w)
{
    moments m = { 0.0, 0.0, 0.0, 0.0 };
    for (uint32_t i = 0; i < n_items; i++) {
        cos_scratch[i] = fri_transition_cos_unit(t, Q + (size_t)i * k, k,
                                                 inv_norm[i]);
        moments_add(&m, scores[i], cos_scratch[i]);
    }
    return add_standardized(scores, cos_scratch, n_items, &m, w);
}

void
fri_transition_inv_norms(float *inv_norm, const float *Q, uint32_t n_items,
    uint32_t k)
{
    for (uint32_t i = 0; i < n_items; i++) {
        const float *q  = Q + (size_t)i * k;
        double       qq = 0.0;
        for (uint32_t a = 0; a < k; a++) {
            qq += (double)q[a] * q[a];
        }
        inv_norm[i] = qq > 0.0 ? (float)(1.0 / sqrt(qq)) : 0.0f;
    }
}
