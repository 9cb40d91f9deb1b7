// Central DP on the latest statistics (docs/DP.md, section 6): each
// device's report (contribution or delta) is bounded by the clip in the
// statistics norm, the aggregator refuses anything above it, every round's
// released sums carry N(0, (zC)^2) on every coordinate (the tail values at
// their scale), the solve survives the noise, and epsilon is the
// accountant's.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dp.h"
#include "e2e_harness.h"
#include "e2e_rmse.h"
#include "fedrec/client.h"
#include "linalg.h"
#include "mf.h"
#include "vbmf.h"

typedef struct capture {
    float *v;
    size_t n;
    int    calls;
} capture;

static void
capture_fn(void *ctx, const float *v, size_t n)
{
    capture *c = ctx;
    free(c->v);
    c->v = malloc(n * sizeof(float));
    cr_assert_not_null(c->v);
    memcpy(c->v, v, n * sizeof(float));
    c->n = n;
    c->calls++;
}

static void
stats_config(fri_agg_config *c, uint32_t n_items, uint32_t k)
{
    fri_agg_config_init(c);
    c->n_items           = n_items;
    c->k                 = k;
    c->algo              = FRI_AGG_VBMF;
    c->stats_latest      = 1;
    c->clients_per_round = 1;
    c->min_clients       = 1;
    c->clip              = 0.5f;
    c->dp                = FRI_AGG_DP_CENTRAL;
    c->noise_multiplier  = 4.0; // stddev z*C = 2
    c->population        = 1000;
    c->dp_delta          = 1e-5;
    c->dp_seed           = 11;
}

// The statistics norm of a released vector [n_items x (P + d) | global
// block | sum | count] (fri_dp_stats_norm2's measure of a sum).
static double
released_norm(const float *v, size_t n, uint32_t k)
{
    const size_t ne = fri_vb_glob_len(k) + 2;
    double       s  = 0.0;
    for (size_t t = 0; t < n; t++) {
        double x = v[t];
        if (t >= n - ne && fri_dp_stats_tail(t - (n - ne), ne, 1)) {
            x *= FRI_DP_STATS_TAIL_SCALE;
        }
        s += x * x;
    }
    return sqrt(s);
}

Test(agg_dp_stats, config_accepts_central_and_refuses_the_rest)
{
    fri_agg_config c;
    char           e[256];
    stats_config(&c, 50, 3);
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_OK, "%s", e);
    c.algo = FRI_AGG_ALS;
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_OK, "%s", e);
    stats_config(&c, 50, 3);
    c.stats_latest = 0;
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "stats-latest") != NULL, "%s", e);
    stats_config(&c, 50, 3);
    c.secagg            = FRI_AGG_SECAGG_FULL;
    c.clients_per_round = 10;
    c.clip              = 0.0f; // masked statistics take no clip
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_EINVAL);
    stats_config(&c, 50, 3);
    c.secagg            = FRI_AGG_SECAGG_FULL;
    c.clients_per_round = 10;
    c.dp                = FRI_AGG_DP_DISTRIBUTED;
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_EINVAL);
    cr_assert(strstr(e, "stats-latest") != NULL, "%s", e);
    stats_config(&c, 50, 3);
    c.clip = 0.0f;
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_EINVAL);
    // Clip without DP stays refused on the latest statistics.
    stats_config(&c, 50, 3);
    c.dp               = FRI_AGG_DP_OFF;
    c.noise_multiplier = 0.0;
    cr_assert_eq(fri_agg_config_check(&c, e, sizeof(e)), FR_EINVAL);
}

// One plain VBMF update: n rows, every value `val` (gram, rows, block).
static void
vb_update(fri_agg_update *u, uint64_t round, uint32_t k, uint32_t n,
    const uint32_t *items, float val, float **bufs)
{
    const size_t d = k + 1, P = fri_packed_len(d);
    const size_t gl = fri_vb_glob_len(k);
    bufs[0]         = malloc(P * sizeof(float));
    bufs[1]         = malloc((n * d + 1) * sizeof(float));
    bufs[2]         = malloc(gl * sizeof(float));
    cr_assert(bufs[0] != NULL && bufs[1] != NULL && bufs[2] != NULL);
    for (size_t t = 0; t < P; t++) {
        bufs[0][t] = val;
    }
    for (size_t t = 0; t < n * d; t++) {
        bufs[1][t] = val;
    }
    for (size_t t = 0; t < gl; t++) {
        bufs[2][t] = val;
    }
    memset(u, 0, sizeof(*u));
    u->round    = round;
    u->n        = n;
    u->items    = items;
    u->gram     = bufs[0];
    u->gram_len = P;
    u->rows     = bufs[1];
    u->rows_len = n * d;
    u->vb       = bufs[2];
    u->vb_len   = gl;
}

static void
free3(float **b)
{
    for (int i = 0; i < 3; i++) {
        free(b[i]);
        b[i] = NULL;
    }
}

// Worst case input: a report far above the bound is refused, not summed;
// one within it is taken.
Test(agg_dp_stats, aggregator_refuses_a_report_above_the_bound)
{
    fri_agg_config c;
    stats_config(&c, 50, 3);
    c.clients_per_round = 2;
    c.min_clients       = 2;
    fri_agg *a          = NULL;
    char     err[256];
    cr_assert_eq(
        fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    uint8_t pk1[FRI_AGG_KEYBYTES], pk2[FRI_AGG_KEYBYTES];
    memset(pk1, 1, sizeof(pk1));
    memset(pk2, 2, sizeof(pk2));
    fri_agg_task t1, t2;
    cr_assert_eq(fri_agg_checkin(a, 1, pk1, &t1), FR_OK);
    cr_assert_eq(fri_agg_checkin(a, 1, pk2, &t2), FR_OK);
    cr_assert(t1.has_task && t2.has_task);
    uint32_t       items[3] = { 1, 7, 30 };
    float         *b[3]     = { 0 };
    fri_agg_update u;
    // Gram 0.1 on 3 items alone: sqrt(3 * 10 * 0.01) = 0.55 > 0.5.
    vb_update(&u, t1.round, 3, 3, items, 0.1f, b);
    cr_assert_eq(fri_agg_submit(a, 1, pk1, &u), FR_EPROTO);
    free3(b);
    vb_update(&u, t2.round, 3, 3, items, 0.02f, b);
    cr_assert_eq(fri_agg_submit(a, 1, pk2, &u), FR_OK);
    free3(b);
    fri_agg_destroy(a);
}

// Every coordinate of every round's release is noised: the item rows and
// the global block at stddev z*C, the tail values (squared residuals, sum,
// count) at z*C / FRI_DP_STATS_TAIL_SCALE, as they are measured.
Test(agg_dp_stats, noise_has_the_configured_scale_on_every_coordinate)
{
    const uint32_t k = 9, ni = 2000;
    fri_agg_config c;
    stats_config(&c, ni, k);
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(
        fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    capture cap = { 0 };
    fri_agg_set_release_hook(a, capture_fn, &cap);
    const double sd = c.noise_multiplier * c.clip;
    const size_t d = k + 1, P = fri_packed_len(d);
    const size_t gl    = fri_vb_glob_len(k);
    const size_t nrow  = (size_t)ni * (P + d);
    double       tail2 = 0.0, one2 = 0.0;
    size_t       ntail = 0, none = 0;
    const int    rounds = 12;
    for (int r = 0; r < rounds; r++) {
        uint8_t pk[FRI_AGG_KEYBYTES];
        memset(pk, 10 + r, sizeof(pk));
        fri_agg_task t;
        cr_assert_eq(fri_agg_checkin(a, (uint64_t)r + 1, pk, &t), FR_OK);
        cr_assert(t.has_task);
        float         *b[3] = { 0 };
        fri_agg_update u;
        vb_update(&u, t.round, k, 0, NULL, 0.0f, b);
        // Taken (the solve of a noise-only round may keep the model).
        cr_assert_eq(fri_agg_submit(a, (uint64_t)r + 1, pk, &u), FR_OK);
        free3(b);
        cr_assert_eq(cap.calls, r + 1, "round %d released nothing", r);
        cr_assert_eq(cap.n, nrow + gl + 2);
        if (r == 0) {
            double s = 0, s2 = 0;
            size_t zeros = 0;
            for (size_t i = 0; i < nrow + gl - 2; i++) {
                s += cap.v[i];
                s2 += (double)cap.v[i] * cap.v[i];
                zeros += cap.v[i] == 0.0f;
            }
            double m  = s / (double)(nrow + gl - 2);
            double sr = sqrt(s2 / (double)(nrow + gl - 2) - m * m);
            cr_log_info(
                "DP statistics noise: stddev %.4f (want %.4f)", sr, sd);
            cr_assert(fabs(sr / sd - 1.0) < 0.03, "stddev %f want %f", sr, sd);
            cr_assert(fabs(m) < 0.05, "mean %f", m);
            // The grid noise is exactly 0 with probability ~6e-6 here
            // (about 1.6 of 260,000 coordinates).
            cr_assert(zeros < 12, "%zu coordinates without noise", zeros);
        }
        // Global block tail: [sq | 1] then sum, count.
        const float *e = cap.v + nrow + gl - 2;
        tail2
            += (double)e[0] * e[0] + (double)e[2] * e[2] + (double)e[3] * e[3];
        ntail += 3;
        one2 += (double)e[1] * e[1];
        none++;
    }
    double st = sqrt(tail2 / (double)ntail), so = sqrt(one2 / (double)none);
    double want_t = sd / FRI_DP_STATS_TAIL_SCALE;
    cr_log_info("tail stddev %.2f (want %.2f), user count %.2f (want %.2f)",
        st, want_t, so, sd);
    cr_assert(st > 0.7 * want_t && st < 1.3 * want_t, "tail stddev %f", st);
    cr_assert(so > 0.5 * sd && so < 1.6 * sd, "user-count stddev %f", so);
    fri_agg_destroy(a);
    free(cap.v);
}

#define NU 30
#define NIT 25

typedef e2e_world world;

static void
world_init(world *w, const fri_agg_config *ac)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.5, 5);
    fri_agg_config c = *ac;
    c.n_items        = w->d.n_items;
    char err[256];
    cr_assert_eq(
        fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    e2e_clients_create(w, NU, 300, 1, 0.0f);
    e2e_reply_alloc(w);
}

// Real devices, one per round and almost no noise: each release is one
// device's report (its first whole contribution, later its deltas), and
// its statistics norm never exceeds the clip, though unbounded the
// contributions are several times larger.
Test(agg_dp_stats, every_device_report_is_within_the_clip)
{
    fri_agg_config c;
    stats_config(&c, NIT, 3);
    c.clip             = 1.0f;
    c.noise_multiplier = 1e-5; // noise norm ~ 1e-5 * sqrt(400)
    c.population       = NU;
    world w;
    world_init(&w, &c);
    capture cap = { 0 };
    fri_agg_set_release_hook(w.a, capture_fn, &cap);
    int    at_bound = 0, moved = 0;
    double maxn = 0.0;
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t u = 0; u < NU; u++) {
            uint64_t now = (uint64_t)pass * 1000 + u + 1;
            cr_assert_eq(e2e_world_checkin(&w, u, now), FR_CHECKIN_CONTRIBUTED,
                "%s", fr_client_errmsg(w.c[u]));
            double n = released_norm(cap.v, cap.n, c.k);
            maxn     = n > maxn ? n : maxn;
            cr_assert(n <= c.clip * (1.0 + 1e-3), "pass %d user %u: norm %f",
                pass, u, n);
            at_bound += n > 0.99 * c.clip;
            moved += pass > 0 && n > 1e-3;
        }
    }
    cr_log_info("max report norm %.4f (clip %.1f), %d at the bound, %d later "
                "reports moved",
        maxn, (double)c.clip, at_bound, moved);
    cr_assert(at_bound >= NU, "only %d reports reached the bound", at_bound);
    cr_assert(moved > 0, "later reports sent nothing");
    e2e_world_free(&w);
    free(cap.v);
}

// With modest noise the default algorithm still trains under DP, and the
// reported epsilon is the accountant's for (q, z, rounds).
Test(agg_dp_stats, training_with_central_dp_lowers_rmse)
{
    fri_agg_config c;
    stats_config(&c, NIT, 3);
    c.clip              = 20.0f;
    c.noise_multiplier  = 0.02; // noise stddev 0.4 per coordinate
    c.population        = NU;
    c.clients_per_round = NU / 2;
    c.min_clients       = NU / 2;
    c.dp_seed           = 5;
    world w;
    world_init(&w, &c);
    double r0     = e2e_train_rmse(&w, 3);
    int    rounds = 0;
    for (int round = 0; round < 16; round++) {
        for (uint32_t j = 0; j < NU / 2; j++) {
            uint32_t u = (uint32_t)((round * (NU / 2) + (int)j) % NU);
            cr_assert_eq(e2e_world_checkin(&w, u, (uint64_t)round * 10 + 1),
                FR_CHECKIN_CONTRIBUTED, "%s", fr_client_errmsg(w.c[u]));
        }
        rounds++;
    }
    double          r1 = e2e_train_rmse(&w, 3);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.dp_rounds, (uint64_t)rounds);
    double eps = 0.0;
    cr_assert_eq(fri_dp_epsilon(0.5, c.noise_multiplier, (uint64_t)rounds,
                     c.dp_delta, &eps, NULL),
        FR_OK);
    cr_log_info("DP on the latest statistics z=%.2f C=%.0f: RMSE %.4f -> "
                "%.4f, epsilon %.4g (accountant %.4g)",
        c.noise_multiplier, (double)c.clip, r0, r1, m.dp_epsilon, eps);
    cr_assert(fabs(m.dp_epsilon - eps) <= 1e-9 * eps, "epsilon %g vs %g",
        m.dp_epsilon, eps);
    cr_assert(r1 < r0 - 0.05, "RMSE %f -> %f", r0, r1);
    e2e_world_free(&w);
}
