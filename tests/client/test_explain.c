// On-device explanations (fr_client_explain) and evidence-aware ranking:
// an explanation's weights are the real leave-one-out effects (checked by
// removing each interaction and predicting again), and a variational model
// does not rank an item with prior-sized uncertainty above known ones;
// re-ranking for variety (fr_client_recommend_diverse) trades relevance
// for less similar items as its lambda says.
#include <criterion/criterion.h>
#include <math.h>

#include "linalg.h"
#include "testutil.h"

#define NI 120
#define KK 6
#define DD (KK + 1)

static fr_client *
new_client(void)
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    cfg.seed = 3;
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = (uint8_t) (i + 1);
    }
    fr_client *c = NULL;
    cr_assert_eq(fr_client_create(&c, &cfg), FR_OK);
    return c;
}

// A VB model over tu_model's random items: a user prior and small item
// variances, except the items listed in `unsure` (prior-sized variance).
static fri_cmodel *
vb_model(const uint8_t signer[32], const uint32_t *unsure, size_t n_unsure)
{
    fri_cmodel *m = tu_model(NI, KK, 3, 11, signer, 0);
    cr_assert_not_null(m);
    cr_assert_eq(fri_cmodel_vb_alloc(m), FR_OK);
    m->beta = 1.5f;
    for (size_t a = 0; a < DD; a++) {
        for (size_t b = a; b < DD; b++) {
            m->uprec_packed[fri_packed_index(DD, a, b)] = a == b ? 2.0f : 0.0f;
        }
    }
    for (size_t t = 0; t < (size_t) NI * DD; t++) {
        m->item_var[t] = 0.01f;
    }
    for (size_t j = 0; j < n_unsure; j++) {
        for (size_t a = 0; a < DD; a++) {
            m->item_var[(size_t) unsure[j] * DD + a] = 1.0f;
        }
    }
    cr_assert_eq(fri_cmodel_finish(m), FR_OK);
    return m;
}

// Rates 15 items with values that depend on the item, so effects differ.
static void
rate_some(fr_client *c)
{
    for (uint32_t j = 0; j < 15; j++) {
        uint32_t it = 3 + 7 * j;
        cr_assert_eq(fr_client_add(c, it, (float) (1 + (j * 7) % 5), 0),
                     FR_OK);
    }
}

// For every interaction: predicted score of item minus the score after
// removing that interaction (and putting it back).
static void
true_effects(fr_client *c, uint32_t item, uint32_t *ids, float *eff,
             size_t *n)
{
    float full;
    cr_assert_eq(fr_client_predict(c, item, &full), FR_OK);
    size_t   cnt = fr_client_count(c);
    uint32_t all[64];
    float    val[64];
    int64_t  ts[64];
    cr_assert(cnt <= 64);
    for (size_t j = 0; j < cnt; j++) {
        all[j] = c->items[j];
        val[j] = c->values[j];
        ts[j]  = c->ts[j];
    }
    for (size_t j = 0; j < cnt; j++) {
        cr_assert_eq(fr_client_remove(c, all[j]), FR_OK);
        float s;
        cr_assert_eq(fr_client_predict(c, item, &s), FR_OK);
        cr_assert_eq(fr_client_add(c, all[j], val[j], ts[j]), FR_OK);
        ids[j] = all[j];
        eff[j] = full - s;
    }
    *n = cnt;
}

static void
check_fidelity(fr_client *c, uint32_t item)
{
    uint32_t ids[64];
    float    eff[64];
    size_t   n = 0;
    true_effects(c, item, ids, eff, &n);
    uint32_t why[64];
    float    w[64];
    size_t   got = 0;
    cr_assert_eq(fr_client_explain(c, item, why, w, 64, &got), FR_OK);
    cr_assert_eq(got, n, "explained %zu of %zu interactions", got, n);
    // Best first, each weight the measured effect of removing it.
    for (size_t j = 0; j < got; j++) {
        if (j > 0) {
            cr_assert(w[j - 1] >= w[j], "not sorted at %zu", j);
        }
        size_t t = 0;
        while (t < n && ids[t] != why[j]) {
            t++;
        }
        cr_assert(t < n, "explained item %u is not an interaction", why[j]);
        cr_assert_float_eq(w[j], eff[t], 1e-4f, "item %u: %g vs %g", why[j],
                           (double) w[j], (double) eff[t]);
    }
    // Fidelity: removing the top explaining interaction lowers the score
    // more than removing any other.
    for (size_t t = 0; t < n; t++) {
        if (ids[t] != why[0]) {
            cr_assert(eff[t] <= w[0] + 1e-6f, "item %u lowers more (%g > %g)",
                      ids[t], (double) eff[t], (double) w[0]);
        }
    }
    // A shorter list is the prefix of the full one.
    uint32_t top[3];
    float    tw[3];
    cr_assert_eq(fr_client_explain(c, item, top, tw, 3, &got), FR_OK);
    cr_assert_eq(got, 3);
    for (size_t j = 0; j < 3; j++) {
        cr_assert_float_eq(tw[j], w[j], 1e-6f);
    }
}

Test(client_explain, als_weights_are_leave_one_out_effects)
{
    fr_client  *c = new_client();
    fri_cmodel *m = tu_model(NI, KK, 1, 5, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    rate_some(c);
    // Every regularization weighting the ridge fold-in has (1, n, sqrt n):
    // the closed form must match refitting without each rating.
    for (uint32_t wt = 0; wt <= 2; wt++) {
        c->fit.weighted = wt;
        c->fit.reg      = 0.1f;
        c->fit.reg_bias = 0.05f;
        c->fitted       = 0;
        check_fidelity(c, 1);
        check_fidelity(c, 50);
    }
    fr_client_destroy(c);
}

Test(client_explain, vb_weights_are_leave_one_out_effects)
{
    fr_client  *c = new_client();
    fri_cmodel *m = vb_model(c->server_pk + 32, NULL, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    rate_some(c);
    check_fidelity(c, 2);
    check_fidelity(c, 77);
    fr_client_destroy(c);
}

// An implicit model with recency and the last-item term (the device's
// defaults): the weights are the changes of the score fr_client_predict
// reports, term included (removing the newest interaction moves it).
Test(client_explain, implicit_weights_include_the_last_item_term)
{
    fr_client  *c = new_client();
    fri_cmodel *m = tu_model(NI, KK, 1, 5, c->server_pk + 32, 1);
    tu_install(c, m);
    fri_cmodel_unref(m);
    c->fit.implicit = 1;
    cr_assert(c->trans_w > 0.0f, "the term is on by default");
    for (uint32_t j = 0; j < 12; j++) {
        cr_assert_eq(fr_client_add(c, 5 + 9 * j, 1.0f + (float) (j % 3),
                                   1000 + 60 * (int64_t) j),
                     FR_OK);
    }
    check_fidelity(c, 4);
    check_fidelity(c, 104);
    fr_client_destroy(c);
}

Test(client_explain, bad_input)
{
    fr_client *c = new_client();
    uint32_t   ids[4];
    float      w[4];
    size_t     n = 9;
    // No model yet.
    cr_assert_eq(fr_client_explain(c, 1, ids, w, 4, &n), FR_ESTATE);
    cr_assert_eq(n, 0);
    fri_cmodel *m = tu_model(NI, KK, 1, 5, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    // Empty history: nothing to explain, not an error.
    n = 9;
    cr_assert_eq(fr_client_explain(c, 1, ids, w, 4, &n), FR_OK);
    cr_assert_eq(n, 0);
    rate_some(c);
    cr_assert_eq(fr_client_explain(c, NI, ids, w, 4, &n), FR_ENOENT);
    cr_assert(strstr(fr_client_errmsg(c), "outside the catalog") != NULL);
    cr_assert_eq(fr_client_explain(c, 1, NULL, w, 4, &n), FR_EINVAL);
    cr_assert_eq(fr_client_explain(c, 1, ids, w, 4, NULL), FR_EINVAL);
    cr_assert_eq(fr_client_explain(NULL, 1, ids, w, 4, &n), FR_EINVAL);
    n = 9;
    cr_assert_eq(fr_client_explain(c, 1, NULL, NULL, 0, &n), FR_OK);
    cr_assert_eq(n, 0);
    // One interaction: its effect is the whole data term.
    fr_client *one = new_client();
    m              = tu_model(NI, KK, 1, 5, one->server_pk + 32, 0);
    tu_install(one, m);
    fri_cmodel_unref(m);
    cr_assert_eq(fr_client_add(one, 4, 5.0f, 0), FR_OK);
    cr_assert_eq(fr_client_explain(one, 9, ids, w, 4, &n), FR_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 4);
    fr_client_destroy(one);
    fr_client_destroy(c);
}

Test(client_explain, vb_unsure_items_never_top_the_list)
{
    fr_client *c = new_client();
    // The items that would top the list by posterior mean, made unsure.
    fri_cmodel *m0 = vb_model(c->server_pk + 32, NULL, 0);
    tu_install(c, m0);
    fri_cmodel_unref(m0);
    rate_some(c);
    uint32_t top[5];
    float    sc[5];
    size_t   n = 0;
    cr_assert_eq(fr_client_recommend(c, top, sc, 5, &n), FR_OK);
    cr_assert_eq(n, 5);

    fr_client  *u = new_client();
    fri_cmodel *m = vb_model(u->server_pk + 32, top, 5);
    tu_install(u, m);
    fri_cmodel_unref(m);
    rate_some(u);
    uint32_t got[10];
    float    gs[10];
    cr_assert_eq(fr_client_recommend(u, got, gs, 10, &n), FR_OK);
    cr_assert_eq(n, 10);
    for (size_t j = 0; j < n; j++) {
        for (size_t t = 0; t < 5; t++) {
            cr_assert_neq(got[j], top[t],
                          "item %u with prior-sized variance ranked %zu",
                          top[t], j + 1);
        }
        if (j > 0) {
            cr_assert(gs[j - 1] >= gs[j]);
        }
        // The score is the lower bound: below the posterior mean.
        float mean;
        cr_assert_eq(fr_client_predict(u, got[j], &mean), FR_OK);
        cr_assert(gs[j] < mean, "score %g not below mean %g", (double) gs[j],
                  (double) mean);
    }
    fr_client_destroy(u);
    fr_client_destroy(c);
}

// A ridge model whose best item for the user of rate_some has four exact
// copies: plain ranking lists all five first, re-ranking for variety keeps
// one and spreads the rest.
Test(client_recommend_diverse, trades_relevance_for_variety)
{
    fr_client  *c  = new_client();
    fri_cmodel *m0 = tu_model(NI, KK, 1, 5, c->server_pk + 32, 0);
    tu_install(c, m0);
    rate_some(c);
    uint32_t best[1];
    float    bs[1];
    size_t   n = 0;
    cr_assert_eq(fr_client_recommend(c, best, bs, 1, &n), FR_OK);
    cr_assert_eq(n, 1);
    fr_client_destroy(c);

    // Copies on items rate_some leaves alone (3 + 7j, j < 15, is rated).
    uint32_t dup[4], nd = 0;
    for (uint32_t i = NI - 1; nd < 4; i--) {
        if (i != best[0] && (i < 3 || (i - 3) % 7 != 0 || i > 101)) {
            dup[nd++] = i;
        }
    }
    for (uint32_t j = 0; j < 4; j++) {
        memcpy(m0->Q + (size_t)dup[j] * KK, m0->Q + (size_t)best[0] * KK,
            KK * sizeof(float));
        m0->bi[dup[j]] = m0->bi[best[0]];
    }
    cr_assert_eq(fri_cmodel_finish(m0), FR_OK);
    c = new_client();
    tu_install(c, m0);
    rate_some(c);

    uint32_t plain[10], div[10];
    float    ps[10], ds[10];
    size_t   np = 0, nv = 0;
    cr_assert_eq(fr_client_recommend(c, plain, ps, 10, &np), FR_OK);
    cr_assert_eq(np, 10);
    // Lambda 1 is the plain ranking, scores included.
    cr_assert_eq(
        fr_client_recommend_diverse(c, 1.0f, div, ds, 10, &nv), FR_OK);
    cr_assert_eq(nv, np);
    cr_assert_arr_eq(div, plain, sizeof plain);
    cr_assert_arr_eq(ds, ps, sizeof ps);

    // The five copies tie at the top of the plain list.
    size_t copies = 0;
    for (size_t j = 0; j < 5; j++) {
        copies += plain[j] == best[0] || plain[j] == dup[0]
            || plain[j] == dup[1] || plain[j] == dup[2] || plain[j] == dup[3];
    }
    cr_assert_eq(copies, 5);

    double plain_sum = 0.0;
    for (size_t j = 0; j < np; j++) {
        plain_sum += ps[j];
    }
    size_t      prev_held = 5;
    const float lambdas[] = { 0.7f, 0.3f, 0.0f };
    for (size_t t = 0; t < 3; t++) {
        cr_assert_eq(
            fr_client_recommend_diverse(c, lambdas[t], div, ds, 10, &nv),
            FR_OK);
        cr_assert_eq(nv, 10);
        // The first pick is always the most relevant item.
        cr_assert_eq(div[0], plain[0]);
        size_t held = 0;
        double sum  = 0.0;
        for (size_t j = 0; j < nv; j++) {
            sum += ds[j];
            float want;
            cr_assert_eq(fr_client_predict(c, div[j], &want), FR_OK);
            cr_assert_float_eq(ds[j], want, 1e-5f, "score of %u", div[j]);
            for (size_t r = 0; r < 15; r++) {
                cr_assert_neq(div[j], 3 + 7 * r, "rated item listed");
            }
            for (size_t i = j + 1; i < nv; i++) {
                cr_assert_neq(div[j], div[i], "item listed twice");
            }
            held += div[j] == best[0] || div[j] == dup[0] || div[j] == dup[1]
                || div[j] == dup[2] || div[j] == dup[3];
        }
        // A copy of a listed item adds nothing new: no more copies as
        // lambda falls, and with lambda 0.3 or less (redundancy outweighs the
        // relevance gaps) only the first.
        cr_assert(held <= prev_held, "lambda %g kept %zu copies",
            (double)lambdas[t], held);
        if (lambdas[t] <= 0.3f) {
            cr_assert_eq(held, 1, "lambda %g kept %zu copies",
                (double)lambdas[t], held);
        }
        prev_held = held;
        // The plain list has the largest total score; variety costs some.
        cr_assert(sum <= plain_sum + 1e-4
                && (lambdas[t] > 0.3f || sum < plain_sum - 1e-4),
            "lambda %g: total score %g vs %g", (double)lambdas[t], sum,
            plain_sum);
    }
    fri_cmodel_unref(m0);
    fr_client_destroy(c);
}

Test(client_recommend_diverse, bad_input)
{
    fr_client *c = new_client();
    uint32_t   ids[4];
    float      sc[4];
    size_t     n = 9;
    cr_assert_eq(
        fr_client_recommend_diverse(c, 0.5f, ids, sc, 4, &n), FR_ESTATE);
    cr_assert_eq(n, 0);
    fri_cmodel *m = tu_model(NI, KK, 1, 5, c->server_pk + 32, 0);
    tu_install(c, m);
    fri_cmodel_unref(m);
    const float bad[] = { -0.01f, 1.01f, NAN, INFINITY };
    for (size_t t = 0; t < 4; t++) {
        cr_assert_eq(
            fr_client_recommend_diverse(c, bad[t], ids, sc, 4, &n), FR_EINVAL);
        cr_assert(strstr(fr_client_errmsg(c), "lambda") != NULL);
    }
    cr_assert_eq(
        fr_client_recommend_diverse(c, 0.5f, NULL, sc, 4, &n), FR_EINVAL);
    cr_assert_eq(
        fr_client_recommend_diverse(c, 0.5f, ids, sc, 4, NULL), FR_EINVAL);
    cr_assert_eq(
        fr_client_recommend_diverse(NULL, 0.5f, ids, sc, 4, &n), FR_EINVAL);
    n = 9;
    cr_assert_eq(
        fr_client_recommend_diverse(c, 0.5f, NULL, NULL, 0, &n), FR_OK);
    cr_assert_eq(n, 0);
    // A list longer than the catalog: every unrated item once.
    uint32_t all[NI + 5];
    float    as[NI + 5];
    cr_assert_eq(
        fr_client_recommend_diverse(c, 0.5f, all, as, NI + 5, &n), FR_OK);
    cr_assert_eq(n, NI);
    fr_client_destroy(c);
}
