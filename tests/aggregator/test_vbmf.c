// Federated VBMF aggregation (vbmf.c) against direct calls of the bayes.h
// steps on the same per-user statistics: item step, user prior, and the
// noise precision from the expected squared error, read back from the
// served MODEL frame.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg_int.h"
#include "snap.h"
#include "bayes.h"
#include "linalg.h"
#include "msg.h"
#include "rng.h"
#include "state_dir.h"
#include "vbmf.h"

enum { NU = 5, NIT = 6, KK = 2, DD = KK + 1, PP = DD * (DD + 1) / 2 };

static void
key(uint8_t pk[FRI_AGG_KEYBYTES], uint32_t i)
{
    for (int b = 0; b < FRI_AGG_KEYBYTES; b++) {
        pk[b] = (uint8_t)((i * 2654435761u) >> ((b % 4) * 8)) ^ (uint8_t)b;
    }
    pk[31] = (uint8_t)i;
}

typedef struct user {
    float    p[KK], bu, S[PP]; // posterior mean and covariance
    uint32_t items[NIT];
    float    r[NIT];
    size_t   n;
} user;

static double
packed(const float *S, size_t a, size_t b)
{
    return a <= b ? S[fri_packed_index(DD, a, b)]
                  : S[fri_packed_index(DD, b, a)];
}

// E[(r - mu - b_u - b_i - p.q)^2] under independent Gaussians (user
// covariance S_u full, item covariance diagonal var).
static double
esq(double r, float mu, const user *u, const float *q, float b,
    const float *var)
{
    double pred = mu + u->bu + b;
    for (int f = 0; f < KK; f++) {
        pred += u->p[f] * q[f];
    }
    double v = 0.0;
    for (size_t a = 0; a < DD; a++) {
        double qa = a < KK ? q[a] : 1.0, pa = a < KK ? u->p[a] : 1.0;
        v += pa * pa * var[a];
        for (size_t c = 0; c < DD; c++) {
            double qc = c < KK ? q[c] : 1.0;
            v += qa * qc * packed(u->S, a, c);
        }
        if (a < KK) {
            v += packed(u->S, a, a) * var[a];
        }
    }
    return (r - pred) * (r - pred) + v;
}

static void
submit(fri_agg *a, const user *u, uint32_t id, float mu_served)
{
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    key(pk, id);
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    cr_assert(t.has_task);
    float gram[PP], h[NIT * DD], glob[DD + PP + 2];
    cr_assert_eq(fri_bpmf_user_item_stats(gram, PP, h, NIT * DD, u->p, u->bu,
                     u->S, KK, mu_served, u->r, u->n),
        FR_OK);
    float  x[DD] = { u->p[0], u->p[1], u->bu };
    double sq = 0.0, sum = 0.0;
    for (size_t j = 0; j < u->n; j++) {
        double e = u->r[j] - mu_served - u->bu;
        sq += e * e + u->S[fri_packed_index(DD, KK, KK)];
        sum += u->r[j];
    }
    memcpy(glob, x, sizeof x);
    for (size_t i = 0; i < DD; i++) {
        for (size_t j = i; j < DD; j++) {
            size_t e     = fri_packed_index(DD, i, j);
            glob[DD + e] = x[i] * x[j] + u->S[e];
        }
    }
    glob[DD + PP]     = (float)sq;
    glob[DD + PP + 1] = 1.0f;
    fri_agg_update up = { .round = t.round,
        .n                       = (uint32_t)u->n,
        .items                   = u->items,
        .gram                    = gram,
        .gram_len                = PP,
        .rows                    = h,
        .rows_len                = u->n * DD,
        .sum_ratings             = sum,
        .count                   = (double)u->n,
        .weight                  = (double)u->n,
        .vb                      = glob,
        .vb_len                  = fri_vb_glob_len(KK) };
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_OK);
}

Test(agg_vbmf, equals_direct_bayes_steps)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = NIT;
    c.k                 = KK;
    c.algo              = FRI_AGG_VBMF;
    c.clients_per_round = NU;
    c.min_clients       = 1;
    fri_agg *a          = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof err), FR_OK, "%s", err);

    fri_rng r;
    fri_rng_seed(&r, 5);
    user   us[NU];
    double sum = 0.0, cnt = 0.0;
    for (int u = 0; u < NU; u++) {
        user *x = &us[u];
        memset(x, 0, sizeof *x);
        x->p[0] = (float)fri_rng_normal(&r) * 0.3f;
        x->p[1] = (float)fri_rng_normal(&r) * 0.3f;
        x->bu   = (float)fri_rng_normal(&r) * 0.2f;
        // A positive-definite covariance: 0.05 I + small coupling.
        for (size_t i = 0; i < DD; i++) {
            for (size_t j = i; j < DD; j++) {
                x->S[fri_packed_index(DD, i, j)]
                    = i == j ? 0.05f + 0.01f * (float)u : 0.004f;
            }
        }
        // Item NIT - 1 is never rated (it gets the prior).
        for (uint32_t i = 0; i + 1 < NIT; i++) {
            if (fri_rng_uniform(&r) < 0.6 || i == (uint32_t)u) {
                x->items[x->n] = i;
                x->r[x->n]     = 1.0f + (float)fri_rng_below(&r, 5);
                sum += x->r[x->n];
                cnt += 1.0;
                x->n++;
            }
        }
    }
    float mu = (float)(sum / cnt);
    // Census round, then one variational sweep.
    for (int u = 0; u < NU; u++) {
        submit(a, &us[u], 100 + (uint32_t)u, 0.0f);
    }
    for (int u = 0; u < NU; u++) {
        submit(a, &us[u], 100 + (uint32_t)u, mu);
    }
    float    mu_got, bi[NIT], Q[NIT * KK];
    uint64_t ver = 0;
    fri_agg_model_copy(a, &mu_got, bi, NIT, Q, NIT * KK, &ver);
    cr_assert_eq(ver, 2);
    cr_assert(fabsf(mu_got - mu) < 1e-6f);

    // The served MODEL (kind VB) of the new round.
    fri_snap *s = fri_agg_snap_get(a);
    cr_assert_not_null(s->frame);
    fri_model m;
    cr_assert_eq(fri_model_decode(&m, s->frame, s->frame_len), FR_OK);
    cr_assert_eq(m.kind, FRI_MODEL_VB);
    float umean[DD], uprec[PP], var[NIT * DD];
    cr_assert_eq(fri_model_get_vb(&m, umean, uprec, var), FR_OK);
    float beta_served = m.beta;
    fri_snap_unref(s);

    // Direct: summed statistics per item, item step under the initial
    // prior N(0, I) and beta = 2.
    float m0[DD] = { 0 }, L0[DD * DD] = { 0 };
    for (int i = 0; i < DD; i++) {
        L0[i * DD + i] = 1.0f;
    }
    fri_bpmf_prior prior = { DD, m0, L0 };
    float          q_want[NIT * KK], b_want[NIT], var_want[NIT * DD];
    for (uint32_t i = 0; i < NIT; i++) {
        float G[PP] = { 0 }, H[DD] = { 0 }, S[PP];
        for (int u = 0; u < NU; u++) {
            for (size_t j = 0; j < us[u].n; j++) {
                if (us[u].items[j] != i) {
                    continue;
                }
                float g1[PP], h1[DD];
                cr_assert_eq(fri_bpmf_user_item_stats(g1, PP, h1, DD, us[u].p,
                                 us[u].bu, us[u].S, KK, mu, &us[u].r[j], 1),
                    FR_OK);
                for (int e = 0; e < PP; e++) {
                    G[e] += g1[e];
                }
                for (int e = 0; e < DD; e++) {
                    H[e] += h1[e];
                }
            }
        }
        cr_assert_eq(fri_bpmf_item_step(q_want + i * KK, &b_want[i], S, G, H,
                         KK, &prior, 2.0f, NULL, NULL, 0),
            FR_OK);
        for (int d = 0; d < DD; d++) {
            var_want[i * DD + d] = S[fri_packed_index(DD, d, d)];
        }
        for (int f = 0; f < KK; f++) {
            cr_assert(fabsf(q_want[i * KK + f] - Q[i * KK + f]) < 1e-5f,
                "item %u factor %d: %f vs %f", i, f,
                (double)q_want[i * KK + f], (double)Q[i * KK + f]);
        }
        cr_assert(fabsf(b_want[i] - bi[i]) < 1e-5f, "item %u bias", i);
        for (int d = 0; d < DD; d++) {
            cr_assert(fabsf(var_want[i * DD + d] - var[i * DD + d]) < 1e-6f,
                "item %u variance %d", i, d);
        }
    }
    cr_assert(fabsf(q_want[(NIT - 1) * KK]) < 1e-7f); // prior mean 0
    cr_assert(var[(NIT - 1) * DD] > 0.99f); // prior variance 1

    // User prior: Normal-Wishart posterior mean from the sums with the
    // covariances added.
    double sx[DD] = { 0 }, sxx[PP] = { 0 };
    for (int u = 0; u < NU; u++) {
        float x[DD] = { us[u].p[0], us[u].p[1], us[u].bu };
        fri_bpmf_hyper_stats(sx, sxx, x, DD);
        for (int e = 0; e < PP; e++) {
            sxx[e] += us[u].S[e];
        }
    }
    float um[DD], up[DD * DD];
    cr_assert_eq(
        fri_bpmf_hyper_sample(um, up, sx, sxx, NU, DD, 2.0, 1.0, NULL), FR_OK);
    for (int i = 0; i < DD; i++) {
        cr_assert(fabsf(um[i] - umean[i]) < 1e-5f);
        for (int j = i; j < DD; j++) {
            float want = up[i * DD + j];
            float got  = uprec[fri_packed_index(DD, i, j)];
            cr_assert(fabsf(want - got) < 1e-4f * (1.0f + fabsf(want)),
                "prec %d %d: %f vs %f", i, j, (double)want, (double)got);
        }
    }

    // beta = n / E[SSE] with the new items seen diagonally, summed rating
    // by rating (what the aggregator gets from sums alone).
    double esse = 0.0;
    for (int u = 0; u < NU; u++) {
        for (size_t j = 0; j < us[u].n; j++) {
            uint32_t i = us[u].items[j];
            esse += esq(us[u].r[j], mu, &us[u], q_want + i * KK, b_want[i],
                var_want + i * DD);
        }
    }
    double beta_want = cnt / esse;
    cr_assert(fabs(beta_served - beta_want) < 1e-4 * beta_want,
        "beta %f want %f", (double)beta_served, beta_want);
    fri_agg_destroy(a);
}

Test(agg_vbmf, refuses_bad_global_block)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items  = NIT;
    c.k        = KK;
    c.algo     = FRI_AGG_VBMF;
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof err), FR_OK, "%s", err);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    key(pk, 7);
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    uint32_t item     = 1;
    float    gram[PP] = { 1, 0, 0, 1, 0, 1 }, h[DD] = { 0.1f, 0.2f, 0.3f };
    float    glob[DD + PP + 2];
    memset(glob, 0, sizeof glob);
    // E[u u^T]'s factor block matches the Gram's (p = 0, covariance I).
    glob[DD + fri_packed_index(DD, 0, 0)] = 1.0f;
    glob[DD + fri_packed_index(DD, 1, 1)] = 1.0f;
    glob[DD + PP + 1] = 1.0f;
    fri_agg_update up = { .round = t.round,
        .n                       = 1,
        .items                   = &item,
        .gram                    = gram,
        .gram_len                = PP,
        .rows                    = h,
        .rows_len                = DD,
        .count                   = 1,
        .vb                      = glob,
        .vb_len                  = DD + PP + 2 };
    glob[DD + PP]     = -1.0f; // negative squared error
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_EPROTO);
    glob[DD + PP] = NAN;
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_EPROTO);
    glob[DD + PP] = 1.0f;
    up.vb_len     = DD + PP + 1; // wrong length
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_EPROTO);
    up.vb     = NULL;
    up.vb_len = 0;
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_EPROTO);
    up.vb     = glob;
    up.vb_len = DD + PP + 2;
    // The refusals ended pk's part in the round; another member's
    // well-formed block is accepted.
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_EDUP);
    key(pk, 8);
    cr_assert_eq(fri_agg_checkin(a, 1, pk, &t), FR_OK);
    cr_assert(t.has_task);
    cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_OK);
    fri_agg_destroy(a);
}

// The VBMF state (beta, priors, item covariances) survives a restart from
// the checkpoint: the served variational block is the same.
Test(agg_vbmf, checkpoint_keeps_variational_state)
{
    char dir[] = "/tmp/frvbckptXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = NIT;
    c.k                 = KK;
    c.algo              = FRI_AGG_VBMF;
    c.clients_per_round = 2;
    c.min_clients       = 1;
    c.state_dir         = dir;
    fri_agg *a          = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof err), FR_OK, "%s", err);
    user us[2];
    memset(us, 0, sizeof us);
    for (int u = 0; u < 2; u++) {
        us[u].p[0] = 0.1f * (float)(u + 1);
        us[u].bu   = -0.05f;
        for (size_t i = 0; i < DD; i++) {
            us[u].S[fri_packed_index(DD, i, i)] = 0.05f;
        }
        us[u].n = 3;
        for (uint32_t j = 0; j < 3; j++) {
            us[u].items[j] = j + (uint32_t)u;
            us[u].r[j]     = 2.0f + (float)j;
        }
    }
    for (int rnd = 0; rnd < 2; rnd++) {
        for (int u = 0; u < 2; u++) {
            submit(a, &us[u], 40 + (uint32_t)u, rnd == 0 ? 0.0f : 3.0f);
        }
    }
    float     before[1 + DD + PP + NIT * DD], after[1 + DD + PP + NIT * DD];
    fri_snap *s = fri_agg_snap_get(a);
    fri_model m;
    cr_assert_eq(fri_model_decode(&m, s->frame, s->frame_len), FR_OK);
    before[0] = m.beta;
    cr_assert_eq(fri_model_get_vb(
                     &m, before + 1, before + 1 + DD, before + 1 + DD + PP),
        FR_OK);
    fri_snap_unref(s);
    fri_agg_destroy(a);

    a = NULL;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof err), FR_OK, "%s", err);
    s = fri_agg_snap_get(a);
    cr_assert_eq(fri_model_decode(&m, s->frame, s->frame_len), FR_OK);
    cr_assert_eq(m.version, 2);
    after[0] = m.beta;
    cr_assert_eq(
        fri_model_get_vb(&m, after + 1, after + 1 + DD, after + 1 + DD + PP),
        FR_OK);
    fri_snap_unref(s);
    cr_assert_eq(memcmp(before, after, sizeof before), 0);
    cr_assert_neq(before[0], 2.0f); // beta was re-estimated
    fri_agg_destroy(a);

    // The same directory under an ALS configuration is refused.
    c.algo = FRI_AGG_ALS;
    a      = NULL;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof err), FR_ESTATE);
    state_dir_remove(dir);
}
