// e2e_train_rmse for the in-process end-to-end tests. Apart from
// e2e_harness.h because it needs common/mf.h, which cannot share a
// translation unit with proto/msg.h (both define FRI_ALGO_*) that
// test_secagg_e2e.c uses.
#ifndef FR_TESTS_AGGREGATOR_E2E_RMSE_H
#define FR_TESTS_AGGREGATOR_E2E_RMSE_H

#include <math.h>

#include "e2e_harness.h"
#include "mf.h"

// Training RMSE of the aggregator's item model (k factors) with every
// user of w->by_user refit centrally by the ALS user solve.
static inline double
e2e_train_rmse(e2e_world *w, uint32_t k)
{
    const uint32_t n_items = w->d.n_items;
    float          mu;
    float         *bi = malloc(n_items * sizeof(float));
    float         *Q  = malloc((size_t)n_items * k * sizeof(float));
    cr_assert(bi != NULL && Q != NULL);
    fri_agg_model_copy(w->a, &mu, bi, n_items, Q, (size_t)n_items * k, NULL);
    fri_mf_items it
        = { .n_items = n_items, .k = k, .mu = mu, .bi = bi, .Q = Q };
    const fri_csr *r  = &w->by_user;
    double         se = 0;
    size_t         n  = 0;
    for (uint32_t u = 0; u < r->n_rows; u++) {
        size_t b = r->ptr[u], e = r->ptr[u + 1];
        float  p[FRI_MF_MAX_K], bu;
        cr_assert_eq(fri_mf_user_solve(p, &bu, &it, r->idx + b, r->val + b,
                         e - b, 0.1f, 0.1f, 1, NULL, 0),
            FR_OK);
        for (size_t j = b; j < e; j++) {
            float pr = fri_mf_predict_with(&it, p, bu, r->idx[j]);
            se += (pr - r->val[j]) * (double)(pr - r->val[j]);
            n++;
        }
    }
    free(bi);
    free(Q);
    return sqrt(se / (double)n);
}
#endif
