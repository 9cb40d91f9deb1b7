#include "tbias.h"

#include <stdlib.h>
#include <string.h>

void
fri_tbias_config_init(fri_tbias_config *c)
{
    c->item_bins    = 0;
    c->reg_item_bin = 200.0f;
    c->user_day     = 1;
    c->reg_user_day = FRI_TBIAS_REG_USER_DAY;
    c->iters        = 2;
}

uint32_t
fri_tbias_bin(int64_t t, int64_t t0, int64_t t1, uint32_t bins)
{
    if (bins == 0 || t <= t0 || t1 <= t0) {
        return 0;
    }
    if (t >= t1) {
        return bins - 1;
    }
    // (t - t0) * bins may overflow int64 for absurd spans: use double.
    double   f = (double)(t - t0) / ((double)(t1 - t0) + 1.0);
    uint32_t b = (uint32_t)(f * bins);
    return b < bins ? b : bins - 1;
}

static uint64_t
ud_key(uint32_t u, int64_t ts)
{
    return ((uint64_t)u << 32) | fri_tbias_day(ts);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static size_t
ud_find(const fri_tbias *t, uint64_t key)
{
    size_t lo = 0, hi = t->n_ud;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->ud_key[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < t->n_ud && t->ud_key[lo] == key ? lo : SIZE_MAX;
}

void
fri_tbias_free(fri_tbias *t)
{
    if (t == NULL) {
        return;
    }
    free(t->bib);
    free(t->ud_key);
    free(t->ud_val);
    memset(t, 0, sizeof(*t));
}

fr_err
fri_tbias_fit(fri_tbias *out, const fri_triplet *r, const float *resid,
    size_t n, uint32_t n_items, const fri_tbias_config *c)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if ((n > 0 && (r == NULL || resid == NULL)) || c == NULL || n_items == 0
        || c->iters == 0 || c->item_bins > 1024 || !(c->reg_item_bin > 0.0f)
        || !(c->reg_user_day > 0.0f)) {
        return FR_EINVAL;
    }
    int64_t t0 = 0, t1 = 0;
    int     have_ts = 0;
    for (size_t j = 0; j < n; j++) {
        if (r[j].item >= n_items) {
            return FR_EINVAL;
        }
        if (r[j].ts != 0) {
            t0      = have_ts && t0 < r[j].ts ? t0 : r[j].ts;
            t1      = have_ts && t1 > r[j].ts ? t1 : r[j].ts;
            have_ts = 1;
        }
    }
    out->n_items = n_items;
    out->t0      = t0;
    out->t1      = t1;
    if (!have_ts) {
        return FR_OK; // nothing to model: all offsets stay 0
    }
    fr_err   e    = FR_OK;
    uint32_t bins = c->item_bins;
    double  *num = NULL, *cnt = NULL;
    size_t  *ud_of = NULL;
    if (bins > 0) {
        out->bib = calloc((size_t)n_items * bins, sizeof(float));
        num      = calloc((size_t)n_items * bins, sizeof(double));
        cnt      = calloc((size_t)n_items * bins, sizeof(double));
        if (out->bib == NULL || num == NULL || cnt == NULL) {
            e = FR_ENOMEM;
        }
        out->bins = bins;
    }
    double *unum = NULL, *ucnt = NULL;
    if (e == FR_OK && c->user_day && n > 0) {
        out->ud_key = malloc(n * sizeof(uint64_t));
        ud_of       = malloc(n * sizeof(size_t));
        if (out->ud_key == NULL || ud_of == NULL) {
            e = FR_ENOMEM;
        }
        for (size_t j = 0; e == FR_OK && j < n; j++) {
            out->ud_key[j] = ud_key(r[j].user, r[j].ts);
        }
        if (e == FR_OK) {
            qsort(out->ud_key, n, sizeof(uint64_t), cmp_u64);
            size_t m = 0;
            for (size_t j = 0; j < n; j++) {
                if (m == 0 || out->ud_key[m - 1] != out->ud_key[j]) {
                    out->ud_key[m++] = out->ud_key[j];
                }
            }
            out->n_ud   = m;
            out->ud_val = calloc(m, sizeof(float));
            unum        = calloc(m, sizeof(double));
            ucnt        = calloc(m, sizeof(double));
            if (out->ud_val == NULL || unum == NULL || ucnt == NULL) {
                e = FR_ENOMEM;
            }
        }
        for (size_t j = 0; e == FR_OK && j < n; j++) {
            ud_of[j] = ud_find(out, ud_key(r[j].user, r[j].ts));
        }
    }
    // Alternating ridge: each block is the exact minimiser given the other.
    for (uint32_t it = 0; e == FR_OK && it < c->iters; it++) {
        if (bins > 0) {
            memset(num, 0, (size_t)n_items * bins * sizeof(double));
            memset(cnt, 0, (size_t)n_items * bins * sizeof(double));
            for (size_t j = 0; j < n; j++) {
                size_t s = (size_t)r[j].item * bins
                    + fri_tbias_bin(r[j].ts, t0, t1, bins);
                double ud = ud_of != NULL ? out->ud_val[ud_of[j]] : 0.0;
                num[s] += resid[j] - ud;
                cnt[s] += 1.0;
            }
            for (size_t s = 0; s < (size_t)n_items * bins; s++) {
                out->bib[s] = (float)(num[s] / (cnt[s] + c->reg_item_bin));
            }
        }
        if (ud_of != NULL) {
            memset(unum, 0, out->n_ud * sizeof(double));
            memset(ucnt, 0, out->n_ud * sizeof(double));
            for (size_t j = 0; j < n; j++) {
                double ib = bins > 0 ? out->bib[(size_t)r[j].item * bins
                                + fri_tbias_bin(r[j].ts, t0, t1, bins)]
                                     : 0.0;
                unum[ud_of[j]] += resid[j] - ib;
                ucnt[ud_of[j]] += 1.0;
            }
            for (size_t s = 0; s < out->n_ud; s++) {
                out->ud_val[s]
                    = (float)(unum[s] / (ucnt[s] + c->reg_user_day));
            }
        }
    }
    free(num);
    free(cnt);
    free(unum);
    free(ucnt);
    free(ud_of);
    if (e != FR_OK) {
        fri_tbias_free(out);
    }
    return e;
}

float
fri_tbias_offset(const fri_tbias *t, uint32_t u, uint32_t i, int64_t ts)
{
    if (t == NULL || ts == 0) {
        return 0.0f;
    }
    float o = 0.0f;
    if (t->bins > 0 && i < t->n_items) {
        o += t->bib[(size_t)i * t->bins
            + fri_tbias_bin(ts, t->t0, t->t1, t->bins)];
    }
    if (t->n_ud > 0) {
        size_t s = ud_find(t, ud_key(u, ts));
        if (s != SIZE_MAX) {
            o += t->ud_val[s];
        }
    }
    return o;
}
