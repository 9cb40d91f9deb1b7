#include "bpr.h"

#include <math.h>
#include <stdlib.h>

#include "rng.h"

static int
row_has(const fri_csr *t, uint32_t u, uint32_t i)
{
    size_t lo = t->ptr[u], hi = t->ptr[u + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->idx[mid] < i) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < t->ptr[u + 1] && t->idx[lo] == i;
}

fr_err
fri_train_bpr(fri_mf_model **out, const fri_csr *train,
    const fri_train_config *c, fri_train_epoch_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (train == NULL || c == NULL || train->ptr == NULL || train->n_rows == 0
        || train->n_cols < 2 || c->k == 0 || c->k > FRI_MF_MAX_K
        || c->epochs == 0 || !(c->lr > 0.0f) || !(c->reg >= 0.0f)
        || !(c->reg_bias >= 0.0f) || !(c->init_std >= 0.0f) || !isfinite(c->lr)
        || !isfinite(c->reg)) {
        return FR_EINVAL;
    }
    const size_t nnz = train->ptr[train->n_rows];
    if (nnz == 0) {
        return FR_EINVAL;
    }
    if (nnz > UINT32_MAX) {
        return FR_ETOOBIG; // pairs are drawn with a 32-bit index
    }
    fri_mf_model *m = NULL;
    fr_err        e = fri_mf_create(&m, train->n_rows, train->n_cols, c->k);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_init(m, 0.0f, c->init_std, c->seed);
    // Row of every stored entry, to draw observed pairs uniformly.
    uint32_t *row = malloc(nnz * sizeof(uint32_t));
    float    *pu  = malloc(c->k * sizeof(float));
    if (row == NULL || pu == NULL) {
        free(row);
        free(pu);
        fri_mf_destroy(m);
        return FR_ENOMEM;
    }
    for (uint32_t u = 0; u < train->n_rows; u++) {
        for (size_t j = train->ptr[u]; j < train->ptr[u + 1]; j++) {
            row[j] = u;
        }
    }
    fri_rng rng;
    fri_rng_seed2(&rng, c->seed, 0x627072u); // "bpr"
    const uint32_t ni = train->n_cols, k = c->k;
    for (uint32_t ep = 0; ep < c->epochs; ep++) {
        float lr = c->lr / (1.0f + c->lr_decay * (float)ep);
        for (size_t s = 0; s < nnz; s++) {
            size_t   x = fri_rng_below(&rng, (uint32_t)nnz);
            uint32_t u = row[x], i = train->idx[x];
            if (train->ptr[u + 1] - train->ptr[u] >= ni) {
                continue; // the user touched everything: no negative
            }
            uint32_t j;
            do {
                j = fri_rng_below(&rng, ni);
            } while (row_has(train, u, j));
            float *p  = m->P + (size_t)u * k;
            float *qi = m->Q + (size_t)i * k, *qj = m->Q + (size_t)j * k;
            float  d = m->bi[i] - m->bi[j];
            for (uint32_t f = 0; f < k; f++) {
                d += p[f] * (qi[f] - qj[f]);
            }
            // d/dx of log sigmoid(x) = sigmoid(-x), computed stably.
            float g = d >= 0.0f ? expf(-d) / (1.0f + expf(-d))
                                : 1.0f / (1.0f + expf(d));
            for (uint32_t f = 0; f < k; f++) {
                pu[f] = p[f];
                p[f] += lr * (g * (qi[f] - qj[f]) - c->reg * p[f]);
                qi[f] += lr * (g * pu[f] - c->reg * qi[f]);
                qj[f] += lr * (-g * pu[f] - c->reg * qj[f]);
            }
            m->bi[i] += lr * (g - c->reg_bias * m->bi[i]);
            m->bi[j] += lr * (-g - c->reg_bias * m->bi[j]);
        }
        if (cb != NULL && cb(ctx, ep + 1, m) != 0) {
            break;
        }
    }
    free(row);
    free(pu);
    *out = m;
    return FR_OK;
}
