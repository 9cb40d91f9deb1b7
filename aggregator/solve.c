// Aggregator model step at the end of a round: the ALS / VBMF item solves
// (with carried or latest statistics), the gradient optimizer step and
// DP noise (agg_int.h).
#include "agg_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "carry.h"
#include "dp.h"
#include "latest.h"
#include "linalg.h"
#include "log.h"
#include "mf.h"
#include "rng.h"
#include "solve.h"
#include "vbmf.h"

#ifdef FR_WITH_BLAS
#include <cblas.h>
#endif

// y += alpha * x
static void
axpy(size_t n, float alpha, const float *x, float *y)
{
#ifdef FR_WITH_BLAS
    if (n >= 64) {
        cblas_saxpy((int) n, alpha, x, 1, y, 1);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        y[i] += alpha * x[i];
    }
}

// ---- the end-of-round model step -------------------------------------------

// Server optimizer step of item i with the gradient g[0..d) * scale
// (t: the step count, for Adam's bias correction). Closer only.
static void
opt_step(fri_agg *a, uint32_t i, const float *g_row, float scale, uint64_t t,
         float *bi, float *Q)
{
    const uint32_t k  = a->cfg.k;
    const uint32_t d  = a->d;
    float          lr = a->cfg.server_lr;
    float          b1 = a->cfg.momentum, b2 = a->cfg.beta2;
    double         c1 = 1.0 - pow(b1, (double) t);
    double         c2 = 1.0 - pow(b2, (double) t);
    for (uint32_t r = 0; r < d; r++) {
        float  g   = g_row[r] * scale;
        float *par = r < k ? &Q[(size_t) i * k + r] : &bi[i];
        size_t o   = (size_t) i * d + r;
        float  step;
        switch (a->cfg.server_opt) {
        case FRI_AGG_OPT_MOMENTUM:
            a->opt.opt_m[o] = b1 * a->opt.opt_m[o] + g;
            step        = a->opt.opt_m[o];
            break;
        case FRI_AGG_OPT_ADAM:
            a->opt.opt_m[o] = b1 * a->opt.opt_m[o] + (1.0f - b1) * g;
            a->opt.opt_v[o] = b2 * a->opt.opt_v[o] + (1.0f - b2) * g * g;
            step        = (float) ((a->opt.opt_m[o] / c1) /
                                   (sqrt(a->opt.opt_v[o] / c2) +
                                    a->cfg.adam_eps));
            break;
        default:
            step = g;
            break;
        }
        *par -= lr * step;
    }
}

// Adds the central DP noise N(0, (z C)^2) to v[0..n). The seed is fresh
// and secret per round unless a simulation seed is configured.
static fr_err
dp_noise(const fri_agg *a, uint64_t round, float *v, size_t n)
{
    double sd = a->cfg.noise_multiplier * (double) a->cfg.clip;
    if (a->cfg.dp_seed != 0) {
        fri_rng r;
        fri_rng_seed2(&r, a->cfg.dp_seed, 0x44500000u ^ round);
        return fri_dp_add_gaussian(v, n, sd, &r);
    }
    uint8_t seed[FRI_DP_SEEDBYTES];
    fr_err  rv = fri_dp_noise_seed_random(seed);
    if (rv == FR_OK) {
        rv = fri_dp_add_gaussian_secret(v, n, sd, seed);
    }
    sodium_memzero(seed, sizeof(seed));
    return rv;
}

// DP-FedAvg step: the released vector is the DENSE sum over all items
// plus the rating sum and count, noised on every coordinate (untouched
// items too, so that the noisy set does not reveal which items the cohort
// rated), divided by the expected cohort size (a data-independent
// denominator; the realised count would itself depend on who took part).
static fr_err
dp_grad_step(fri_agg *a, uint64_t round, float *mu, float *bi, float *Q)
{
    const uint32_t d  = a->d;
    const size_t   nr = (size_t) a->cfg.n_items * d;
    float         *v  = calloc(nr + 2, sizeof(float));
    if (v == NULL) {
        return FR_ENOMEM;
    }
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        uint32_t i = a->sums.touched[j];
        memcpy(v + (size_t) i * d, a->sums.accf[i], (size_t) d * sizeof(float));
    }
    v[nr]     = (float) a->sums.sum_ratings;
    v[nr + 1] = (float) a->sums.count;
    fr_err rv = FR_OK;
    if (a->cfg.dp == FRI_AGG_DP_CENTRAL) {
        rv = dp_noise(a, round, v, nr + 2);
    }
    if (rv == FR_OK) {
        float    inv = (float) (1.0 / a->dp.dp_cohort);
        uint64_t t   = ++a->opt.opt_t;
        for (uint32_t i = 0; i < a->cfg.n_items; i++) {
            opt_step(a, i, v + (size_t) i * d, inv, t, bi, Q);
        }
        // Post-processing of the noisy (sum, count): move mu only when the
        // count clearly exceeds its noise (3 stddev), else keep it.
        double sd = a->cfg.dp == FRI_AGG_DP_CENTRAL
                        ? a->cfg.noise_multiplier * (double) a->cfg.clip
                        : 0.0;
        double cnt = v[nr + 1];
        if (cnt > 3.0 * sd && cnt > 0.0) {
            double m = v[nr] / cnt;
            if (isfinite(m)) {
                // Post-processing too: the mean of ratings lies in the
                // rating range, a noisy ratio may not.
                m   = m < a->cfg.rating_min ? a->cfg.rating_min : m;
                m   = m > a->cfg.rating_max ? a->cfg.rating_max : m;
                *mu = (float) m;
            }
        }
    }
    if (a->dp.dp_hook != NULL && rv == FR_OK) {
        a->dp.dp_hook(a->dp.dp_hook_ctx, v, nr + 2);
    }
    free(v);
    return rv;
}

// DP on the latest statistics (central): the round's released sums are
// every item's [Gram | h] (all n_items rows, so the noisy set does not
// reveal which items the cohort rated), the VBMF global block and the
// rating sum and count, each with N(0, (z C)^2) added; the tail values
// (squared residuals, user count, sum, count) are noised in units of
// FRI_DP_STATS_TAIL_SCALE, as the contribution bound measures them
// (docs/DP.md, section 6). The noisy sums replace the round's, so the
// running sums are a post-processing of the noisy releases.
static fr_err
dp_latest_noise(fri_agg *a, uint64_t round)
{
    const size_t w   = a->acc_len;
    const size_t ni  = a->cfg.n_items;
    const size_t nvb = a->vb != NULL ? fri_vb_glob_len(a->cfg.k) : 0;
    const size_t n   = ni * w + nvb + 2;
    const size_t ne  = nvb + 2; // the ext block of fri_dp_stats_norm2
    float       *v   = calloc(n, sizeof(float));
    double      *g   = malloc((nvb > 0 ? nvb : 1) * sizeof(double));
    if (v == NULL || g == NULL) {
        free(v);
        free(g);
        return FR_ENOMEM;
    }
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        uint32_t i = a->sums.touched[j];
        memcpy(v + (size_t) i * w, a->sums.accf[i], w * sizeof(float));
    }
    if (nvb > 0) {
        fri_vb_acc_get(a->vb, g);
        for (size_t t = 0; t < nvb; t++) {
            v[ni * w + t] = (float) g[t];
        }
    }
    v[n - 2] = (float) a->sums.sum_ratings;
    v[n - 1] = (float) a->sums.count;
    // The scale is a power of two: exact both ways.
    const float ts = (float) FRI_DP_STATS_TAIL_SCALE;
    for (size_t t = 0; t < ne; t++) {
        if (fri_dp_stats_tail(t, ne, nvb > 0)) {
            v[n - ne + t] *= ts;
        }
    }
    fr_err rv = dp_noise(a, round, v, n);
    for (size_t t = 0; t < ne; t++) {
        if (fri_dp_stats_tail(t, ne, nvb > 0)) {
            v[n - ne + t] /= ts;
        }
    }
    if (rv == FR_OK && a->dp.dp_hook != NULL) {
        a->dp.dp_hook(a->dp.dp_hook_ctx, v, n);
    }
    for (size_t i = 0; i < ni && rv == FR_OK; i++) {
        if (a->sums.accf[i] == NULL) {
            a->sums.accf[i] = malloc(w * sizeof(float));
            if (a->sums.accf[i] == NULL) {
                rv = FR_ENOMEM;
                break;
            }
            if (a->sums.acc[i] == NULL) {
                a->sums.touched[a->sums.n_touched++] = (uint32_t) i;
            }
        }
        memcpy(a->sums.accf[i], v + i * w, w * sizeof(float));
    }
    if (rv == FR_OK) {
        if (nvb > 0) {
            for (size_t t = 0; t < nvb; t++) {
                g[t] = v[ni * w + t];
            }
            fri_vb_acc_reset(a->vb);
            fri_vb_acc_add_d(a->vb, g);
        }
        a->sums.sum_ratings = v[n - 2];
        a->sums.count       = v[n - 1];
    }
    sodium_memzero(v, n * sizeof(float));
    free(v);
    free(g);
    return rv;
}

// Partial participation (cfg.stats_forget = f < 1): folds this round's
// item sums into the carried ones, S = (1 - f) S + round sums, sets mu from
// the carried rating sum and count, and re-centres every carried h on it
// (h -= dmu * sum_u x_u, the Gram's last column), so that the carry stays
// expressed against the served mu as each round's fresh sums are.
static fr_err
carry_merge(fri_agg *a, float mu_old, float *mu)
{
    const uint32_t d    = a->d;
    const size_t   gl   = a->gram_len;
    const float    keep = 1.0f - a->cfg.stats_forget;
    fr_err rv = fri_agg_carry_ensure(a);
    if (rv != FR_OK) {
        return rv;
    }
    a->stats.carry_sum   = keep * a->stats.carry_sum + a->sums.sum_ratings;
    a->stats.carry_count = keep * a->stats.carry_count + a->sums.count;
    if (a->stats.carry_count > 0.0 && !a->cfg.implicit) {
        *mu = (float) (a->stats.carry_sum / a->stats.carry_count);
    }
    float dmu = *mu - mu_old;
    for (uint32_t j = 0; j < a->stats.n_carried; j++) {
        float *s = a->stats.carry[a->stats.carried[j]];
        for (size_t e = 0; e < a->acc_len; e++) {
            s[e] *= keep;
        }
    }
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        axpy(a->acc_len, 1.0f, a->sums.accf[a->sums.touched[j]],
             a->stats.carry[a->sums.touched[j]]);
    }
    if (a->cfg.implicit) {
        // iALS: the Gram of every device (Y^T Y) is carried alike; no mu.
        if (a->stats.carry_gram == NULL) {
            a->stats.carry_gram = calloc(gl, sizeof(float));
            if (a->stats.carry_gram == NULL) {
                return FR_ENOMEM;
            }
        }
        for (size_t e = 0; e < gl; e++) {
            a->stats.carry_gram[e] =
                keep * a->stats.carry_gram[e] + a->sums.gram_allf[e];
        }
        return FR_OK;
    }
    for (uint32_t j = 0; j < a->stats.n_carried; j++) {
        float *s = a->stats.carry[a->stats.carried[j]];
        for (uint32_t r = 0; r < d; r++) {
            s[gl + r] -= dmu * s[fri_packed_index(d, r, d - 1)];
        }
    }
    return FR_OK;
}

// Float copies of the double accumulators for the solvers (closer only).
// FR_ETOOBIG if a sum does not fit a float (impossible within the bounds).
static fr_err
acc_to_float(fri_agg *a)
{
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        uint32_t i = a->sums.touched[j];
        if (a->sums.accf[i] == NULL) {
            a->sums.accf[i] = malloc(a->acc_len * sizeof(float));
            if (a->sums.accf[i] == NULL) {
                return FR_ENOMEM;
            }
        }
        for (size_t e = 0; e < a->acc_len; e++) {
            double v = a->sums.acc[i][e];
            if (!(fabs(v) <= FLT_MAX)) {
                return FR_ETOOBIG;
            }
            a->sums.accf[i][e] = (float) v;
        }
    }
    if (a->sums.gram_all != NULL) {
        for (size_t e = 0; e < a->gram_len; e++) {
            if (!(fabs(a->sums.gram_all[e]) <= FLT_MAX)) {
                return FR_ETOOBIG;
            }
            a->sums.gram_allf[e] = (float) a->sums.gram_all[e];
        }
    }
    return FR_OK;
}

// An item whose solve failed keeps its previous row (one bad item must not
// cost the whole round); counted and logged.
static void
item_skip(fri_agg *a, uint32_t i, fr_err why, float *bi, float *Q)
{
    const uint32_t k = a->cfg.k;
    memcpy(Q + (size_t) i * k, a->model.Q + (size_t) i * k, k * sizeof(float));
    bi[i] = a->model.bi[i];
    atomic_fetch_add(&a->ctr.items_skipped, 1);
    fri_agg_log(a, FR_LOG_ERROR,
                "msg=\"item solve failed, item kept\" item=%u err=%s", i,
                fr_errname(why));
}

// Computes the next model into (mu, bi, Q) (already a copy of the current
// one) from the accumulators. Exclusive closer, no lock needed.
fr_err
fri_agg_solve(fri_agg *a, uint64_t round, float *mu, float *bi, float *Q)
{
    const uint32_t k  = a->cfg.k;
    const uint32_t d  = a->d;
    const size_t   gl = a->gram_len;
    fr_err         rv = acc_to_float(a);
    if (rv != FR_OK) {
        return rv;
    }
    if (a->dp.sum_hook != NULL) {
        // The float copies are what the step reads, so a change made by
        // the hook is the step's input (the double accumulators are reset).
        fri_agg_sum_view v = {
            .round = round, .n = a->sums.n_touched,
            .items = a->sums.touched,
            .rows = (float *const *) a->sums.accf, .width = a->acc_len,
            .sum_ratings = &a->sums.sum_ratings, .count = &a->sums.count,
            .mu = *mu, .bi = a->model.bi, .Q = a->model.Q,
            .n_items = a->cfg.n_items, .k = k};
        pthread_mutex_lock(&a->rs.mtx);
        v.n_updates = a->rs.n_reported;
        pthread_mutex_unlock(&a->rs.mtx);
        a->dp.sum_hook(a->dp.sum_hook_ctx, &v);
    }
    size_t         wl = fri_mf_work_len(k);
    float         *work = malloc((wl > 0 ? wl : 1) * sizeof(float));
    float         *h    = malloc((size_t) d * sizeof(float));
    if (work == NULL || h == NULL) {
        free(work);
        free(h);
        return FR_ENOMEM;
    }
    float     mu_old    = *mu;
    const int dp_latest = a->cfg.dp != FRI_AGG_DP_OFF && a->cfg.stats_latest;
    if (dp_latest) {
        rv = dp_latest_noise(a, round);
        if (rv != FR_OK) {
            free(work);
            free(h);
            return rv;
        }
    }
    if (!a->cfg.implicit && a->sums.count > 0 &&
        (a->cfg.dp == FRI_AGG_DP_OFF || dp_latest)) {
        // (Under DP-FedAvg, mu comes from the noised sum and count in the
        // gradient step; on the latest statistics the sums are noised.)
        double m = a->sums.sum_ratings / a->sums.count;
        if (dp_latest) {
            // A noisy ratio may leave the rating range.
            m = m < a->cfg.rating_min ? a->cfg.rating_min : m;
            m = m > a->cfg.rating_max ? a->cfg.rating_max : m;
        }
        *mu = (float) m;
    }
    // The first explicit-ALS round is a census: the initial model has no
    // global mean, so the users' biases absorbed it and item biases solved
    // from those statistics would sit offset by -mu, an offset the ridge
    // penalties undo only over many rounds. Taking just mu from it starts
    // round 2 exactly where centralized ALS starts (mu set, biases zero).
    int census = (a->cfg.algo == FRI_AGG_ALS || a->vb != NULL) &&
                 !a->cfg.implicit && a->model.version == 0 && a->sums.count > 0;
    int latest = a->cfg.stats_latest && !census;
    if (latest) {
        rv = fri_latest_solve(a, mu_old, mu, bi, Q, work, wl);
    }
    if (a->vb != NULL && !census && !latest && a->sums.count > 0) {
        // VBMF steps every item (also unrated ones, from the prior).
        size_t skipped = 0;
        rv = fri_vb_solve(a->vb, a->sums.accf, *mu, mu_old, a->sums.count, bi,
                          Q, &skipped);
        if (skipped > 0) {
            atomic_fetch_add(&a->ctr.items_skipped, skipped);
            fri_agg_log(a, FR_LOG_ERROR,
                        "msg=\"item steps failed, items kept\" items=%zu",
                        skipped);
        }
    }
    // fri_agg_config_check allows stats_forget < 1 only for explicit ALS
    // (which DP refuses).
    int carrying = a->cfg.stats_forget < 1.0f && !census;
    if (carrying) {
        rv = carry_merge(a, mu_old, mu);
        for (uint32_t j = 0; j < a->stats.n_carried && rv == FR_OK; j++) {
            uint32_t i = a->stats.carried[j];
            fr_err   e = a->cfg.implicit
                             ? fri_mf_implicit_item_solve(
                                   Q + (size_t) i * k, a->stats.carry_gram,
                                   a->stats.carry[i], a->stats.carry[i] + gl,
                                   k, a->cfg.reg, work, wl)
                             : fri_mf_item_solve(Q + (size_t) i * k, &bi[i],
                                                 a->stats.carry[i],
                                                 a->stats.carry[i] + gl, k,
                                                 a->cfg.reg, a->cfg.reg_bias,
                                                 a->cfg.weighted, work, wl);
            if (e == FR_ENOMEM) {
                rv = e;
            } else if (e != FR_OK) {
                item_skip(a, i, e, bi, Q);
            }
        }
    }
    for (uint32_t j = 0; j < a->sums.n_touched && rv == FR_OK && !census &&
                         !carrying && !latest && a->cfg.algo == FRI_AGG_ALS;
         j++) {
        uint32_t i   = a->sums.touched[j];
        float   *acc = a->sums.accf[i];
        float   *q   = Q + (size_t) i * k;
        fr_err   e;
        if (!a->cfg.implicit) {
            // Clients computed h with the round's mu; re-centre on the new
            // one: h -= (mu_new - mu_old) * sum_u x_u, and sum_u x_u is the
            // last column of the summed Gram (x = [p; 1]).
            float dmu = *mu - mu_old;
            for (uint32_t r = 0; r < d; r++) {
                h[r] = acc[gl + r] -
                       dmu * acc[fri_packed_index(d, r, d - 1)];
            }
            e = fri_mf_item_solve(q, &bi[i], acc, h, k, a->cfg.reg,
                                  a->cfg.reg_bias, a->cfg.weighted, work,
                                  wl);
        } else {
            e = fri_mf_implicit_item_solve(q, a->sums.gram_allf, acc,
                                           acc + gl, k, a->cfg.reg, work, wl);
        }
        if (e == FR_ENOMEM) {
            rv = e;
        } else if (e != FR_OK) {
            item_skip(a, i, e, bi, Q);
        }
    }
    if (rv == FR_OK && a->cfg.algo == FRI_AGG_GRAD &&
        a->cfg.dp != FRI_AGG_DP_OFF) {
        rv = dp_grad_step(a, round, mu, bi, Q);
    } else if (rv == FR_OK && a->cfg.algo == FRI_AGG_GRAD &&
               (a->cfg.clip > 0.0f ? a->sums.count : a->sums.weight) > 0) {
        // FedAvg: the cohort's summed gradients over its summed interaction
        // counts is the weighted mean of the per-interaction gradients.
        // Under clipping the denominator is the summed clipped counts (the
        // last extra), the one secure aggregation can release: plain and
        // masked rounds then take the same step (docs/SECAGG.md §5).
        double   w   = a->cfg.clip > 0.0f ? a->sums.count : a->sums.weight;
        float    inv = (float) (1.0 / w);
        uint64_t t   = ++a->opt.opt_t;
        for (uint32_t j = 0; j < a->sums.n_touched; j++) {
            uint32_t i = a->sums.touched[j];
            opt_step(a, i, a->sums.accf[i], inv, t, bi, Q);
        }
    }
    free(work);
    free(h);
    return rv;
}

