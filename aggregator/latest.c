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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carry.h"
#include "dp.h"
#include "latest.h"
#include "linalg.h"
#include "log.h"
#include "mf.h"
#include "vbmf.h"

static void
psd_view_free(const fri_agg *a, float **v)
{
    if (v == NULL) {
        return;
    }
    for (uint32_t i = 0; i < a->cfg.n_items; i++) {
        free(v[i]);
    }
    free(v);
}

// Copies of the carried [Gram | h] rows for the solves under DP. First each
// item's noisy Gram is shrunk toward its rater weight times the pooled
// Gram shape (fri_dp_gram_shrink: empirical Bayes, the noise stddev is
// known): most items' raters look like everyone's, and the pooled shape is
// nearly free of noise. Then its eigenvalues are raised to at least d times
// the accumulated noise stddev (d z C sqrt(rounds)): a PSD projection alone
// leaves positive eigenvalues made of noise (up to ~2 sqrt(d) stddev), and
// an item's h (noise too) divided by them fits the noise. The floor is a
// ridge of the size of the noise (as in AdaSSP, Wang 2018). Both were
// chosen on synthetic validation populations (docs/BENCHMARKS.md, DP on
// the latest statistics).
static fr_err
psd_view(const fri_agg *a, float ***out)
{
    const size_t d     = a->d;
    const size_t gl    = a->gram_len;
    const double sd    = a->cfg.noise_multiplier * (double) a->cfg.clip *
                         sqrt((double) a->dp.dp_rounds + 1.0);
    const double floor = sd * (double) d;
    float      **v    = calloc(a->cfg.n_items, sizeof(float *));
    double      *work = malloc((2 * d * d + d) * sizeof(double));
    double      *gbar = calloc(gl, sizeof(double));
    if (v == NULL || work == NULL || gbar == NULL) {
        free(v);
        free(work);
        free(gbar);
        return FR_ENOMEM;
    }
    // The pooled Gram per unit of rater weight: the sum over every item
    // carries the noise of one item times sqrt(items), against the signal
    // of all of them.
    for (uint32_t j = 0; j < a->stats.n_carried; j++) {
        const float *g = a->stats.carry[a->stats.carried[j]];
        for (size_t e = 0; e < gl; e++) {
            gbar[e] += g[e];
        }
    }
    const double ctot = gbar[fri_packed_index(d, d - 1, d - 1)];
    for (size_t e = 0; ctot > 0.0 && e < gl; e++) {
        gbar[e] /= ctot;
    }
    size_t raised = 0, shrunk = 0;
    for (uint32_t j = 0; j < a->stats.n_carried; j++) {
        uint32_t i = a->stats.carried[j];
        v[i]       = malloc(a->acc_len * sizeof(float));
        if (v[i] == NULL) {
            free(work);
            free(gbar);
            psd_view_free(a, v);
            return FR_ENOMEM;
        }
        memcpy(v[i], a->stats.carry[i], a->acc_len * sizeof(float));
        if (ctot > 0.0) {
            shrunk += fri_dp_gram_shrink(v[i], d, gbar, sd) < 1.0;
        }
        raised += fri_psd_project_packed(v[i], d, floor, work) > 0;
    }
    free(work);
    free(gbar);
    fri_agg_log(a, FR_LOG_DEBUG,
                "msg=\"DP: noisy Grams projected to PSD\" items=%zu "
                "shrunk=%zu", raised, shrunk);
    *out = v;
    return FR_OK;
}

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
    double m = a->stats.carry_sum / a->stats.carry_count;
    if (a->cfg.dp != FRI_AGG_DP_OFF) {
        // Post-processing of noisy sums: a mean of ratings is in range.
        m = m < a->cfg.rating_min ? a->cfg.rating_min : m;
        m = m > a->cfg.rating_max ? a->cfg.rating_max : m;
    }
    *mu              = (float) m;
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
    // Under DP the running sums carry the noise of every round: the
    // solves read a copy whose Grams are projected onto the PSD cone
    // (post-processing; the running sums stay exact sums of the noisy
    // releases, which the devices' deltas rely on).
    float *const *view  = a->stats.carry;
    float       **noisy = NULL;
    if (a->cfg.dp != FRI_AGG_DP_OFF) {
        rv = psd_view(a, &noisy);
        if (rv != FR_OK) {
            return rv;
        }
        view = noisy;
    }
    if (a->vb != NULL) {
        rv = fri_vb_latest_fold(a->vb, dmu, A, a->stats.carry_count);
        if (rv == FR_OK) {
            // Already re-centred: mu_old = mu.
            size_t skipped = 0;
            rv = fri_vb_solve(a->vb, view, *mu, *mu, a->stats.carry_count,
                              bi, Q, &skipped);
            atomic_fetch_add(&a->ctr.items_skipped, skipped);
        }
        psd_view_free(a, noisy);
        return rv;
    }
    for (uint32_t j = 0; j < a->stats.n_carried && rv == FR_OK; j++) {
        uint32_t i = a->stats.carried[j];
        rv = fri_mf_item_solve(Q + (size_t) i * k, &bi[i], view[i],
                               view[i] + gl, k, a->cfg.reg, a->cfg.reg_bias,
                               a->cfg.weighted, work, wl);
    }
    psd_view_free(a, noisy);
    return rv;
}
