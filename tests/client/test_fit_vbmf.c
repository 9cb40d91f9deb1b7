// The client's VBMF half (fit_vbmf.c) against direct calls of the bayes.h
// steps: the user step with the served item covariance diagonals, the
// covariance-augmented statistics and the global block of the update, and
// on-device prediction from the posterior mean.
#include <criterion/criterion.h>
#include <math.h>

#include "bayes.h"
#include "client_fit.h"
#include "linalg.h"
#include "tbias.h"
#include "testutil.h"

#define NI 9
#define KK 3
#define DD (KK + 1)
#define PP (DD * (DD + 1) / 2)

static fr_client *
vb_client(fr_model_cache *mc)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.seed        = 7;
    cfg.model_cache = mc;
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t)(i + 1);
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    return c;
}

// A VB model: random items, a user prior, item variances.
static fri_cmodel *
vb_model(const uint8_t signer[32])
{
    fri_cmodel *m = tu_model(NI, KK, 3, 11, signer, 0);
    cr_assert_not_null(m);
    cr_assert_eq(fri_cmodel_vb_alloc(m), FR_OK);
    m->beta = 1.7f;
    for (size_t a = 0; a < DD; a++) {
        m->umean[a] = 0.05f * (float)a - 0.1f;
        for (size_t b = a; b < DD; b++) {
            m->uprec_packed[fri_packed_index(DD, a, b)]
                = a == b ? 1.5f + 0.25f * (float)a : 0.1f;
        }
    }
    for (size_t t = 0; t < (size_t)NI * DD; t++) {
        m->item_var[t] = 0.02f + 0.01f * (float)(t % 7);
    }
    cr_assert_eq(fri_cmodel_finish(m), FR_OK);
    return m;
}

Test(client_vbmf, update_equals_direct_bayes_steps)
{
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    fr_client  *c = vb_client(mc);
    fri_cmodel *m = vb_model(c->server_pk + 32);
    tu_install(c, m);
    const uint32_t items[5]   = { 0, 2, 3, 6, 8 };
    const float    ratings[5] = { 4.0f, 3.0f, 5.0f, 2.0f, 4.0f };
    for (int j = 0; j < 5; j++) {
        cr_assert_eq(fr_client_add(c, items[j], ratings[j], j), FR_OK);
    }
    // An item beyond the catalog is kept but not used.
    cr_assert_eq(fr_client_add(c, NI + 4, 1.0f, 9), FR_OK);

    fri_fit_task t;
    memset(&t, 0, sizeof t);
    t.algo = FRI_FIT_VBMF;
    t.k    = KK;
    fri_update_buf u;
    cr_assert_eq(fri_client_compute_update(c, &t, &u), FR_OK, "%s",
        fr_client_errmsg(c));

    // Direct: the item covariances as the full packed array bayes.h takes.
    float cov_items[NI * PP];
    memset(cov_items, 0, sizeof cov_items);
    for (size_t i = 0; i < NI; i++) {
        for (size_t a = 0; a < DD; a++) {
            cov_items[i * PP + fri_packed_index(DD, a, a)]
                = m->item_var[i * DD + a];
        }
    }
    fri_mf_items   it = { NI, KK, m->mu, m->bi, m->Q };
    // The prior mean moves towards the rated items (the default SVD++
    // weight; items beyond the catalog are not in the set).
    fri_bpmf_prior pr0 = { DD, m->umean, m->uprec };
    float          pm[DD];
    fri_vbmf_rated_set_mean(pm, &pr0, m->Q, items, 5, KK, FRI_SVDPP_DEFAULT);
    cr_assert(fabsf(pm[0] - m->umean[0]) > 1e-4f, "the shift is on");
    fri_bpmf_prior pr = { DD, pm, m->uprec };
    float          p[KK], bu, S[PP];
    cr_assert_eq(fri_bpmf_user_step(p, &bu, S, cov_items, &it, items, ratings,
                     5, &pr, m->beta, NULL, NULL, 0),
        FR_OK);
    for (int f = 0; f < KK; f++) {
        cr_assert(fabsf(p[f] - c->p[f]) < 1e-5f, "p[%d] %f vs %f", f,
            (double)p[f], (double)c->p[f]);
    }
    cr_assert(fabsf(bu - c->bu) < 1e-5f);

    float gram[PP], h[5 * DD];
    cr_assert_eq(fri_bpmf_user_item_stats(
                     gram, PP, h, 5 * DD, p, bu, S, KK, m->mu, ratings, 5),
        FR_OK);
    cr_assert_eq(u.n_rows, 5);
    cr_assert_eq(u.width, DD);
    cr_assert_eq(u.n_extra, 2 * PP + DD + 4);
    for (size_t e = 0; e < PP; e++) {
        cr_assert(fabsf(gram[e] - u.extra[e]) < 1e-4f, "gram %zu", e);
    }
    for (size_t e = 0; e < 5 * DD; e++) {
        cr_assert(fabsf(h[e] - u.rows[e]) < 1e-4f, "row value %zu", e);
    }
    for (int j = 0; j < 5; j++) {
        cr_assert_eq(u.items[j], items[j]);
    }
    // Global block: E[u], E[u u^T], expected squared residual, one user.
    const float *g     = u.extra + PP;
    float        x[DD] = { p[0], p[1], p[2], bu };
    double       sq = 0.0, sum = 0.0;
    for (size_t a = 0; a < DD; a++) {
        cr_assert(fabsf(g[a] - x[a]) < 1e-5f);
        for (size_t b = a; b < DD; b++) {
            size_t e = fri_packed_index(DD, a, b);
            cr_assert(fabsf(g[DD + e] - (x[a] * x[b] + S[e])) < 1e-5f);
        }
    }
    for (int j = 0; j < 5; j++) {
        double r = ratings[j] - m->mu - bu;
        sq += r * r + S[fri_packed_index(DD, KK, KK)];
        sum += ratings[j];
    }
    cr_assert(fabs(g[DD + PP] - sq) < 1e-3 * (1.0 + sq));
    cr_assert_eq(g[DD + PP + 1], 1.0f);
    cr_assert_eq(u.extra[u.n_extra - 2], (float)sum);
    cr_assert_eq(u.extra[u.n_extra - 1], 5.0f);
    fri_update_buf_free(c, &u);

    // On-device prediction uses the same posterior mean.
    float score = 0.0f;
    cr_assert_eq(fr_client_predict(c, 5, &score), FR_OK);
    float want = m->mu + bu + m->bi[5];
    for (int f = 0; f < KK; f++) {
        want += p[f] * m->Q[5 * KK + f];
    }
    cr_assert(fabsf(score - want) < 1e-4f, "score %f want %f", (double)score,
        (double)want);

    fri_cmodel_unref(m);
    fr_client_destroy(c);
    fr_model_cache_destroy(mc);
}

// fr_client_predict_at: the prediction plus the ridge mean of the residuals
// of the user's own ratings on the query's day (hand count), nothing for
// ts 0, a day without ratings or ratings without timestamps.
Test(client_vbmf, predict_at_adds_user_day_bias)
{
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    fr_client  *c = vb_client(mc);
    fri_cmodel *m = vb_model(c->server_pk + 32);
    tu_install(c, m);
    const int64_t  d0 = 20000 * (int64_t)86400;
    const uint32_t items[5] = {0, 2, 3, 6, 8};
    const float    ratings[5] = {4.0f, 3.0f, 5.0f, 2.0f, 4.0f};
    const int64_t  ts[5] = {d0 + 10, d0 + 5000, d0 + 86400 + 1, d0 + 20, 0};
    for (int j = 0; j < 5; j++) {
        cr_assert_eq(fr_client_add(c, items[j], ratings[j], ts[j]), FR_OK);
    }
    float plain = 0.0f, at = 0.0f;
    cr_assert_eq(fr_client_predict(c, 5, &plain), FR_OK);
    // Day d0 holds items 0, 2 and 6.
    double sum = 0.0;
    for (int j = 0; j < 5; j++) {
        if (j == 0 || j == 1 || j == 3) {
            float s = 0.0f;
            cr_assert_eq(fr_client_predict(c, items[j], &s), FR_OK);
            sum += ratings[j] - s;
        }
    }
    cr_assert_eq(fr_client_predict_at(c, 5, d0 + 86399, &at), FR_OK);
    float want = plain + (float)(sum / (3.0 + FRI_TBIAS_REG_USER_DAY));
    cr_assert(fabsf(at - want) < 1e-5f, "at %f want %f", (double)at,
              (double)want);
    cr_assert(fabsf(at - plain) > 1e-3f);
    cr_assert_eq(fr_client_predict_at(c, 5, 0, &at), FR_OK);
    cr_assert_eq(at, plain);
    cr_assert_eq(fr_client_predict_at(c, 5, d0 + 5 * 86400, &at), FR_OK);
    cr_assert_eq(at, plain);
    cr_assert_eq(fr_client_predict_at(c, NI + 1, d0, &at), FR_ENOENT);
    cr_assert_eq(fr_client_predict_at(c, 5, d0, NULL), FR_EINVAL);
    fri_cmodel_unref(m);
    fr_client_destroy(c);
    fr_model_cache_destroy(mc);
}

Test(client_vbmf, vb_task_needs_vb_model)
{
    fr_model_cache *mc = NULL;
    cr_assert_eq(fr_model_cache_create(&mc), FR_OK);
    fr_client  *c = vb_client(mc);
    fri_cmodel *m = tu_model(NI, KK, 3, 11, c->server_pk + 32, 0);
    tu_install(c, m);
    cr_assert_eq(fr_client_add(c, 1, 4.0f, 0), FR_OK);
    fri_fit_task t;
    memset(&t, 0, sizeof t);
    t.algo = FRI_FIT_VBMF;
    t.k    = KK;
    fri_update_buf u;
    cr_assert_eq(fri_client_compute_update(c, &t, &u), FR_EPROTO);
    cr_assert_null(u.extra);
    fri_cmodel_unref(m);
    fr_client_destroy(c);
    fr_model_cache_destroy(mc);
}

// With the weight 0 the device's step is the plain one; a positive weight
// pulls the user vector towards the rated items' factors when the ratings
// themselves say nothing (every rating at the model's prediction).
Test(client_vbmf, rated_set_weight_pulls_towards_the_rated_items)
{
    float p[2][KK];
    for (int w = 0; w < 2; w++) {
        fr_client_config cfg;
        fr_client_config_init(&cfg);
        cr_assert_float_eq(cfg.svdpp_weight, FRI_SVDPP_DEFAULT, 0);
        cfg.seed         = 7;
        cfg.svdpp_weight = w ? 1.0 : 0.0;
        for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
            cfg.server_pk[i] = (uint8_t)(i + 1);
        }
        fr_client *c = NULL;
        cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
        fri_cmodel *m = vb_model(c->server_pk + 32);
        memset(m->umean, 0, DD * sizeof(float));
        tu_install(c, m);
        const uint32_t items[3] = { 1, 4, 7 };
        for (int j = 0; j < 3; j++) {
            float r = m->mu + m->bi[items[j]];
            cr_assert_eq(fr_client_add(c, items[j], r, j), FR_OK);
        }
        fri_cmodel_unref(m);
        cr_assert_eq(fr_client_fold_in(c), FR_OK, "%s", fr_client_errmsg(c));
        memcpy(p[w], c->p, sizeof p[w]);
        // Projection of the user vector on the rated items' factor sum.
        double proj = 0.0;
        for (int j = 0; j < 3; j++) {
            for (int f = 0; f < KK; f++) {
                proj += (double)c->p[f] * c->model->Q[items[j] * KK + f];
            }
        }
        if (w == 0) {
            cr_assert(fabs(proj) < 1e-3, "no shift, no evidence: %g", proj);
        } else {
            cr_assert(proj > 0.05, "the rated set pulls: %g", proj);
        }
        fr_client_destroy(c);
    }
    cr_assert(memcmp(p[0], p[1], sizeof p[0]) != 0);
}

Test(client_vbmf, rated_set_weight_out_of_range_is_refused)
{
    const double bad[] = { -0.5, NAN, 10.5, INFINITY };
    const size_t n     = sizeof bad / sizeof bad[0];
    size_t t = tu_first_accepted(offsetof(fr_client_config, svdpp_weight), bad, n);
    cr_assert_eq(t, n, "%g accepted", t < n ? bad[t] : 0.0);
}
