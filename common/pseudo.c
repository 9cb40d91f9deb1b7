// Pseudo-item sampling and fake rows; see pseudo.h for the trade-offs.
#include "pseudo.h"
#include "sorted.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void
fri_pseudo_config_init(fri_pseudo_config *c)
{
    if (c == NULL) {
        return;
    }
    memset(c, 0, sizeof(*c));
    c->rho = 1.0;
    c->fill = FRI_PSEUDO_FILL_PREDICT;
    c->noise_scale = 1.0f;
}

size_t
fri_pseudo_count(size_t n_rated, double rho, uint32_t n_items)
{
    if (!(rho >= 0.0) || !isfinite(rho) || n_rated > n_items) {
        return 0;
    }
    size_t unrated = (size_t)n_items - n_rated;
    double want = floor(rho * (double)n_rated + 0.5);
    if (want >= (double)unrated) {
        return unrated;
    }
    return (size_t)want;
}

static int
strictly_increasing(const uint32_t *v, size_t n, uint32_t bound)
{
    for (size_t j = 0; j < n; j++) {
        if (v[j] >= bound || (j > 0 && v[j] <= v[j - 1])) {
            return 0;
        }
    }
    return 1;
}

static int
config_valid(const fri_pseudo_config *c, uint32_t n_items)
{
    if (c == NULL || !(c->rho >= 0.0) || !isfinite(c->rho) ||
        !(c->noise_scale >= 0.0f) || !isfinite(c->noise_scale) ||
        (unsigned)c->fill > (unsigned)FRI_PSEUDO_FILL_USER_MEAN) {
        return 0;
    }
    if (c->popularity != NULL) {
        if (c->popularity_len != n_items) {
            return 0;
        }
        for (size_t i = 0; i < n_items; i++) {
            if (!(c->popularity[i] >= 0.0f) || !isfinite(c->popularity[i])) {
                return 0;
            }
        }
    }
    return 1;
}

// Index of the first element >= x in the sorted set s[0..n).
static size_t
lower_bound(const uint32_t *s, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void
set_insert(uint32_t *s, size_t *n, size_t pos, uint32_t x)
{
    memmove(s + pos + 1, s + pos, (*n - pos) * sizeof(uint32_t));
    s[pos] = x;
    (*n)++;
}

// Floyd's algorithm: m distinct values of [0, u), uniformly, sorted.
// O(m log m) draws/searches plus O(m^2) worst-case moves, no O(u) memory.
static void
floyd_sorted(uint32_t *s, size_t m, uint32_t u, fri_rng *rng)
{
    size_t n = 0;
    for (uint64_t j = (uint64_t)u - m; j < u; j++) {
        uint32_t t = fri_rng_below(rng, (uint32_t)(j + 1));
        size_t pos = lower_bound(s, n, t);
        if (pos < n && s[pos] == t) {
            t = (uint32_t)j; // j is larger than everything drawn so far
            pos = n;
        }
        set_insert(s, &n, pos, t);
    }
}

// Maps sorted ranks among the unrated items to item ids in place.
static void
ranks_to_items(uint32_t *v, size_t m, const uint32_t *rated, size_t n_rated)
{
    size_t ri = 0;
    uint32_t off = 0;
    for (size_t j = 0; j < m; j++) {
        uint32_t x = v[j] + off;
        while (ri < n_rated && rated[ri] <= x) {
            ri++;
            off++;
            x = v[j] + off;
        }
        v[j] = x;
    }
}

typedef struct keyed {
    double   key;
    uint32_t item;
} keyed;

static int
cmp_key_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? 1 : -1;
    }
    return x->item < y->item ? -1 : (x->item > y->item);
}

// Weighted sampling without replacement (Efraimidis & Spirakis 2006): the m
// largest keys log(U)/w among the unrated items.
static fr_err
sample_weighted(uint32_t *out, size_t m, const uint32_t *rated,
                size_t n_rated, uint32_t n_items, const float *w,
                fri_rng *rng)
{
    size_t unrated = (size_t)n_items - n_rated;
    if (unrated > SIZE_MAX / sizeof(keyed)) {
        return FR_ETOOBIG;
    }
    keyed *k = malloc((unrated > 0 ? unrated : 1) * sizeof(keyed));
    if (k == NULL) {
        return FR_ENOMEM;
    }
    size_t nk = 0, ri = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        if (ri < n_rated && rated[ri] == i) {
            ri++;
            continue;
        }
        double u = fri_rng_uniform(rng);
        k[nk].key = u > 0.0 ? log(u) / ((double)w[i] + 1.0) : -INFINITY;
        k[nk].item = i;
        nk++;
    }
    qsort(k, nk, sizeof(keyed), cmp_key_desc);
    for (size_t j = 0; j < m; j++) {
        out[j] = k[j].item;
    }
    free(k);
    qsort(out, m, sizeof(uint32_t), fri_cmp_u32);
    return FR_OK;
}

fr_err
fri_pseudo_sample(uint32_t *out, size_t cap, size_t *n_out,
                  const uint32_t *rated, size_t n_rated, uint32_t n_items,
                  const fri_pseudo_config *c, fri_rng *rng)
{
    if (n_out != NULL) {
        *n_out = 0;
    }
    if (n_out == NULL || rng == NULL || (n_rated > 0 && rated == NULL) ||
        n_rated > n_items || !config_valid(c, n_items) ||
        !strictly_increasing(rated, n_rated, n_items)) {
        return FR_EINVAL;
    }
    size_t m = fri_pseudo_count(n_rated, c->rho, n_items);
    *n_out = m;
    if (m == 0) {
        return FR_OK;
    }
    if (out == NULL || cap < m) {
        return FR_ENOSPC;
    }
    if (c->popularity != NULL) {
        return sample_weighted(out, m, rated, n_rated, n_items,
                               c->popularity, rng);
    }
    floyd_sorted(out, m, (uint32_t)(n_items - n_rated), rng);
    ranks_to_items(out, m, rated, n_rated);
    return FR_OK;
}

static int
items_ok(const fri_mf_items *it)
{
    return it != NULL && it->k > 0 && it->k <= FRI_MF_MAX_K &&
           it->n_items > 0 && it->bi != NULL && it->Q != NULL &&
           isfinite(it->mu);
}

fr_err
fri_pseudo_virtual_ratings(float *out, const uint32_t *fake, size_t n_fake,
                           const fri_mf_items *it, const float *p, float bu,
                           const uint32_t *items, const float *ratings,
                           size_t n, const fri_pseudo_config *c,
                           fri_rng *rng)
{
    if (!items_ok(it) || p == NULL || !config_valid(c, it->n_items) ||
        (n_fake > 0 && (out == NULL || fake == NULL || rng == NULL)) ||
        (n > 0 && (items == NULL || ratings == NULL)) || !isfinite(bu)) {
        return FR_EINVAL;
    }
    // Spread and mean of the user's real ratings, in double.
    double sse = 0.0, sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(ratings[j])) {
            return FR_EINVAL;
        }
        double e = (double)ratings[j] -
                   (double)fri_mf_predict_with(it, p, bu, items[j]);
        sse += e * e;
        sum += ratings[j];
    }
    double spread = n > 0 ? sqrt(sse / (double)n) : 0.0;
    double mean = n > 0 ? sum / (double)n : (double)it->mu;
    double sd = spread * (double)c->noise_scale;
    for (size_t j = 0; j < n_fake; j++) {
        if (fake[j] >= it->n_items) {
            return FR_EINVAL;
        }
        if (c->fill == FRI_PSEUDO_FILL_USER_MEAN) {
            out[j] = (float)mean;
        } else {
            out[j] = (float)((double)fri_mf_predict_with(it, p, bu, fake[j]) +
                             sd * fri_rng_normal(rng));
        }
    }
    return FR_OK;
}

// Rows for the fake items with their virtual ratings, same formulas as the
// real rows (fri_mf_user_item_grad / fri_mf_user_item_stats).
static fr_err
fake_rows(float *rows, fri_pseudo_rows kind, const fri_mf_items *it,
          const float *p, float bu, float reg, float reg_bias,
          const uint32_t *fake, const float *virt, size_t m,
          fri_pseudo_fill fill)
{
    const uint32_t k = it->k;
    const size_t d = (size_t)k + 1;
    if (kind == FRI_PSEUDO_ROWS_GRAD) {
        int keep_penalty = fill != FRI_PSEUDO_FILL_ZERO_MEAN;
        return fri_mf_user_item_grad(rows, m * d, it, p, bu, fake, virt, m,
                                     keep_penalty ? reg : 0.0f,
                                     keep_penalty ? reg_bias : 0.0f);
    }
    for (size_t j = 0; j < m; j++) {
        float res = virt[j] - it->mu - bu;
        float *h = rows + j * d;
        for (uint32_t a = 0; a < k; a++) {
            h[a] = p[a] * res;
        }
        h[k] = res;
    }
    return FR_OK;
}

fr_err
fri_pseudo_merge(uint32_t *items_out, float *rows_out, uint8_t *is_fake,
                 size_t cap_rows, size_t *n_out, double *virtual_sum,
                 fri_pseudo_rows kind, const fri_mf_items *it, const float *p,
                 float bu, float reg, float reg_bias, const uint32_t *items,
                 const float *ratings, const float *rows, size_t n,
                 const fri_pseudo_config *c, fri_rng *rng)
{
    if (n_out != NULL) {
        *n_out = 0;
    }
    if (virtual_sum != NULL) {
        *virtual_sum = 0.0;
    }
    if (n_out == NULL || !items_ok(it) || p == NULL || rng == NULL ||
        (kind != FRI_PSEUDO_ROWS_GRAD && kind != FRI_PSEUDO_ROWS_ALS) ||
        (n > 0 && (items == NULL || ratings == NULL || rows == NULL)) ||
        n > it->n_items || !config_valid(c, it->n_items) ||
        !strictly_increasing(items, n, it->n_items) || !(reg >= 0.0f) ||
        !(reg_bias >= 0.0f)) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)it->k + 1;
    size_t m = fri_pseudo_count(n, c->rho, it->n_items);
    size_t total = n + m;
    *n_out = total;
    if (total > 0 && (items_out == NULL || rows_out == NULL)) {
        return FR_ENOSPC;
    }
    if (cap_rows < total) {
        return FR_ENOSPC;
    }
    if (total > SIZE_MAX / d / sizeof(float)) {
        return FR_ETOOBIG;
    }
    size_t m_alloc = m > 0 ? m : 1;
    uint32_t *fake = malloc(m_alloc * sizeof(uint32_t));
    float *virt = malloc(m_alloc * sizeof(float));
    float *frows = malloc(m_alloc * d * sizeof(float));
    fr_err e = FR_ENOMEM;
    if (fake == NULL || virt == NULL || frows == NULL) {
        goto out;
    }
    size_t got = 0;
    e = fri_pseudo_sample(fake, m, &got, items, n, it->n_items, c, rng);
    if (e == FR_OK && got != m) {
        e = FR_EINTERNAL;
    }
    if (e == FR_OK) {
        e = fri_pseudo_virtual_ratings(virt, fake, m, it, p, bu, items,
                                       ratings, n, c, rng);
    }
    if (e == FR_OK) {
        e = fake_rows(frows, kind, it, p, bu, reg, reg_bias, fake, virt, m,
                      c->fill);
    }
    if (e != FR_OK) {
        goto out;
    }
    double vsum = 0.0;
    for (size_t j = 0; j < m; j++) {
        vsum += virt[j];
    }
    if (virtual_sum != NULL) {
        *virtual_sum = vsum;
    }
    // Merge two sorted, disjoint lists.
    size_t a = 0, b = 0;
    for (size_t r = 0; r < total; r++) {
        int take_real = b >= m || (a < n && items[a] < fake[b]);
        const float *src = take_real ? rows + a * d : frows + b * d;
        items_out[r] = take_real ? items[a] : fake[b];
        memcpy(rows_out + r * d, src, d * sizeof(float));
        if (is_fake != NULL) {
            is_fake[r] = (uint8_t)!take_real;
        }
        if (take_real) {
            a++;
        } else {
            b++;
        }
    }
out:
    // Which rows are fake is the secret the whole scheme rests on.
    if (fake != NULL) {
        sodium_memzero(fake, m_alloc * sizeof(uint32_t));
    }
    if (virt != NULL) {
        sodium_memzero(virt, m_alloc * sizeof(float));
    }
    free(fake);
    free(virt);
    free(frows);
    return e;
}
