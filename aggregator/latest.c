// Latest statistics (cfg.stats_latest): the aggregator keeps the running
// sum of every device's latest contribution. Devices send the change of
// their contribution since their last acknowledged report, so adding a
// round's sums keeps the total exact, whoever reported (partial cohorts,
// dropouts), and a sum of deltas is what secure aggregation releases.
//
// Everything is expressed against the served mu: each round's deltas were
// computed with it (devices re-centre their stored contribution the same
// way, client/stats_delta.c), and when mu moves the running h moves by
// -dmu * sum_u E[x_u] (the Gram's last column, x = [p; 1]).
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include "carry.h"
#include "latest.h"
#include "linalg.h"
#include "mf.h"
#include "vbmf.h"

fr_err
fri_latest_solve(fri_agg *a, float mu_old, float *mu, float *bi, float *Q,
                 float *work, size_t wl)
{
    const uint32_t d  = a->d;
    const uint32_t k  = a->cfg.k;
    const size_t   gl = a->gram_len;
    fr_err         rv = fri_agg_carry_ensure(a);
    if (rv != FR_OK) {
        return rv;
    }
    // All-or-nothing from here: nothing below can fail before the fold.
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        const float *src = a->sums.accf[a->sums.touched[j]];
        float       *dst = a->stats.carry[a->sums.touched[j]];
        for (size_t e = 0; e < a->acc_len; e++) {
            dst[e] += src[e];
        }
    }
    a->stats.carry_sum += a->sums.sum_ratings;
    a->stats.carry_count += a->sums.count;
    if (!(a->stats.carry_count > 0.0)) {
        return FR_OK; // nobody has reported yet: keep the model
    }
    *mu              = (float) (a->stats.carry_sum / a->stats.carry_count);
    const double dmu = (double) *mu - (double) mu_old;
    double       A   = 0.0; // sum of all residuals r - mu_old - b_u
    for (uint32_t j = 0; j < a->stats.n_carried; j++) {
        float *s = a->stats.carry[a->stats.carried[j]];
        A += s[gl + d - 1];
        for (uint32_t r = 0; r < d; r++) {
            s[gl + r] = (float) ((double) s[gl + r] -
                                 dmu * s[fri_packed_index(d, r, d - 1)]);
        }
    }
    if (a->vb != NULL) {
        rv = fri_vb_latest_fold(a->vb, dmu, A, a->stats.carry_count);
        if (rv == FR_OK) {
            // Already re-centred: mu_old = mu.
            size_t skipped = 0;
            rv = fri_vb_solve(a->vb, a->stats.carry, *mu, *mu,
                              a->stats.carry_count, bi, Q, &skipped);
            atomic_fetch_add(&a->ctr.items_skipped, skipped);
        }
        return rv;
    }
    for (uint32_t j = 0; j < a->stats.n_carried && rv == FR_OK; j++) {
        uint32_t i = a->stats.carried[j];
        rv = fri_mf_item_solve(Q + (size_t) i * k, &bi[i], a->stats.carry[i],
                               a->stats.carry[i] + gl, k, a->cfg.reg,
                               a->cfg.reg_bias, a->cfg.weighted, work, wl);
    }
    return rv;
}
