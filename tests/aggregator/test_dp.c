// Central DP in the aggregator (DP-FedAvg): the released sum carries
// N(0, (zC)^2) on every coordinate, the accountant grows with rounds and
// survives a checkpoint reload (also from a format-1 file), bad privacy
// configurations are refused, and real clients clip what they send.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "agg.h"
#include "args.h"
#include "ckpt.h"
#include "dataset.h"
#include "dp.h"
#include "e2e_harness.h"
#include "e2e_rmse.h"
#include "fedrec/client.h"
#include "mf.h"
#include "state_dir.h"

#define NITEMS 2000
#define K 9

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
dp_config(fri_agg_config *c)
{
    fri_agg_config_init(c);
    c->n_items           = NITEMS;
    c->k                 = K;
    c->algo              = FRI_AGG_GRAD;
    c->server_opt        = FRI_AGG_OPT_SGD;
    c->server_lr         = 1.0f;
    c->clients_per_round = 1;
    c->min_clients       = 1;
    c->clip              = 0.5f;
    c->dp                = FRI_AGG_DP_CENTRAL;
    c->noise_multiplier  = 4.0; // stddev z*C = 2
    c->population        = 1000;
    c->dp_delta          = 1e-5;
}

// Closes one round with a single all-zero update (no rows): the released
// vector is then the noise alone.
static void
zero_round(fri_agg *a, uint64_t now, uint8_t tag)
{
    uint8_t pk[FRI_AGG_KEYBYTES];
    memset(pk, tag, sizeof(pk));
    fri_agg_task t;
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(t.has_task);
    fri_agg_update u;
    memset(&u, 0, sizeof(u));
    u.round = t.round;
    cr_assert_eq(fri_agg_submit(a, now, pk, &u), FR_OK);
}

Test(agg_dp, noise_has_the_configured_scale_on_every_coordinate)
{
    fri_agg_config c;
    dp_config(&c);
    fri_agg *a = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    capture cap = {0};
    fri_agg_set_release_hook(a, capture_fn, &cap);
    const size_t nq = (size_t) NITEMS * K;
    float       *Q0 = malloc(nq * sizeof(float));
    float       *Q1 = malloc(nq * sizeof(float));
    cr_assert(Q0 != NULL && Q1 != NULL);
    fri_agg_model_copy(a, NULL, NULL, 0, Q0, nq, NULL);
    zero_round(a, 1, 1);
    cr_assert_eq(cap.calls, 1);
    cr_assert_eq(cap.n, (size_t) NITEMS * (K + 1) + 2);
    double s = 0, s2 = 0;
    size_t zeros = 0;
    for (size_t i = 0; i < cap.n; i++) {
        s += cap.v[i];
        s2 += (double) cap.v[i] * cap.v[i];
        zeros += cap.v[i] == 0.0f;
    }
    double mean = s / (double) cap.n;
    double sd   = sqrt(s2 / (double) cap.n - mean * mean);
    double want = c.noise_multiplier * c.clip;
    // 20002 samples: the stddev estimate's own error is ~0.5%.
    cr_log_info("central DP noise: stddev %.4f (want %.4f) mean %.4f over "
                "%zu coordinates",
                sd, want, mean, cap.n);
    cr_assert(fabs(sd / want - 1.0) < 0.05, "stddev %f, want %f", sd, want);
    cr_assert(fabs(mean) < 0.05, "mean %f", mean);
    cr_assert(zeros < 3, "%zu coordinates without noise", zeros);
    // Applied to the model: SGD with lr 1 over the expected cohort (1).
    fri_agg_model_copy(a, NULL, NULL, 0, Q1, nq, NULL);
    for (uint32_t i = 0; i < NITEMS; i++) {
        for (uint32_t f = 0; f < K; f++) {
            float step = Q0[(size_t) i * K + f] - Q1[(size_t) i * K + f];
            cr_assert(fabsf(step - cap.v[(size_t) i * (K + 1) + f]) < 1e-5f,
                      "item %u factor %u: step %f, noise %f", i, f,
                      (double) step,
                      (double) cap.v[(size_t) i * (K + 1) + f]);
        }
    }
    // A fresh secret seed per round: the next round's noise differs.
    float first = cap.v[0];
    zero_round(a, 2, 2);
    cr_assert_neq(first, cap.v[0]);
    fri_agg_destroy(a);
    free(cap.v);
    free(Q0);
    free(Q1);
}

Test(agg_dp, seeded_noise_is_reproducible)
{
    fri_agg_config c;
    dp_config(&c);
    c.dp_seed = 42;
    float got[2];
    for (int run = 0; run < 2; run++) {
        fri_agg *a = NULL;
        char     err[256];
        cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK,
                     "%s", err);
        capture cap = {0};
        fri_agg_set_release_hook(a, capture_fn, &cap);
        zero_round(a, 1, 1);
        got[run] = cap.v[123];
        fri_agg_destroy(a);
        free(cap.v);
    }
    cr_assert_eq(got[0], got[1]);
}

static double
metrics_eps(fri_agg *a, uint64_t *rounds)
{
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    *rounds = m.dp_rounds;
    return m.dp_epsilon;
}

Test(agg_dp, epsilon_grows_with_rounds_and_matches_the_accountant)
{
    fri_agg_config c;
    dp_config(&c);
    c.noise_multiplier = 1.0;
    c.n_items          = 50;
    fri_agg *a         = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    uint64_t r   = 99;
    double   eps = metrics_eps(a, &r);
    cr_assert_eq(r, 0);
    cr_assert_eq(eps, 0.0);
    double prev = 0;
    for (int i = 1; i <= 4; i++) {
        zero_round(a, (uint64_t) i, (uint8_t) i);
        eps = metrics_eps(a, &r);
        cr_assert_eq(r, (uint64_t) i);
        double want;
        cr_assert_eq(fri_dp_epsilon(1.0 / 1000, 1.0, (uint64_t) i, 1e-5,
                                    &want, NULL),
                     FR_OK);
        cr_assert(fabs(eps - want) < 1e-9 * want, "round %d: %g vs %g", i,
                  eps, want);
        cr_assert(eps > prev, "round %d: epsilon %g did not grow from %g", i,
                  eps, prev);
        cr_log_info("q 0.001 z 1: epsilon %.4f after %d rounds", eps, i);
        prev = eps;
    }
    // Exported in /metrics and /status.
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    char   buf[8192];
    size_t len = 0;
    cr_assert_eq(fri_agg_metrics_prometheus(&m, buf, sizeof(buf), &len),
                 FR_OK);
    cr_assert(strstr(buf, "\nfedrec_dp_epsilon ") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\nfedrec_dp_rounds_total 4\n") != NULL);
    cr_assert_eq(fri_agg_metrics_json(&m, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf, "\"mode\":\"central\"") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"epsilon\":") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"rounds\":4") != NULL, "%s", buf);
    fri_agg_destroy(a);
}

static char dir[256];

Test(agg_dp, accountant_survives_a_checkpoint_reload)
{
    state_dir_make(dir, sizeof(dir), "/tmp/fr-agg-dp-XXXXXX");
    fri_agg_config c;
    dp_config(&c);
    c.n_items          = 50;
    c.noise_multiplier = 1.2;
    c.state_dir        = dir;
    fri_agg *a         = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    zero_round(a, 1, 1);
    zero_round(a, 2, 2);
    uint64_t r;
    double   e2 = metrics_eps(a, &r);
    cr_assert_eq(r, 2);
    fri_agg_destroy(a);

    cr_assert_eq(fri_agg_create(&a, &c, 10, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(metrics_eps(a, &r), e2);
    cr_assert_eq(r, 2);
    zero_round(a, 11, 3);
    double e3 = metrics_eps(a, &r), want;
    cr_assert_eq(r, 3);
    cr_assert_eq(fri_dp_epsilon(1.0 / 1000, 1.2, 3, 1e-5, &want, NULL), FR_OK);
    cr_assert(fabs(e3 - want) < 1e-9 * want, "%g vs %g", e3, want);
    fri_agg_destroy(a);
    state_dir_remove(dir);
}

// A format-1 checkpoint (written before the accountant existed) loads.
Test(agg_dp, format1_checkpoint_still_loads)
{
    state_dir_make(dir, sizeof(dir), "/tmp/fr-agg-dp-XXXXXX");
    float    bi[4] = {1, 2, 3, 4}, Q[12] = {0};
    fri_ckpt c;
    memset(&c, 0, sizeof(c));
    c.version = 3;
    c.round   = 3;
    c.n_items = 4;
    c.k       = 3;
    c.mu      = 3.5f;
    c.bi      = bi;
    c.Q       = Q;
    char err[512], path[400];
    // A format-1 file built byte by byte (the layout before the
    // accountant): header, bi, Q, BLAKE2b-256 of everything before.
    uint8_t buf[512];
    size_t  o = 0;
#define PUT(v, n)                                                           \
    do {                                                                    \
        uint64_t x_ = (v);                                                  \
        for (int i_ = 0; i_ < (n); i_++) {                                  \
            buf[o++] = (uint8_t) (x_ >> (8 * i_));                          \
        }                                                                   \
    } while (0)
    memcpy(buf, "FRCK", 4);
    o = 4;
    PUT(1, 4);                 // format
    memset(buf + o, 0xab, 32); // fingerprint
    o += 32;
    PUT(3, 8); // version
    PUT(3, 8); // round
    PUT(4, 8); // next_round
    PUT(4, 4); // n_items
    PUT(3, 4); // k
    float    mu = 3.5f;
    uint32_t bits;
    memcpy(&bits, &mu, 4);
    PUT(bits, 4);
    PUT(0, 4); // opt
    PUT(0, 8); // opt_t
    PUT(0, 8); // opt_len
    PUT(0, 4); // n_opt
    for (int i = 0; i < 4; i++) {
        memcpy(&bits, &bi[i], 4);
        PUT(bits, 4);
    }
    for (int i = 0; i < 12; i++) {
        memcpy(&bits, &Q[i], 4);
        PUT(bits, 4);
    }
#undef PUT
    crypto_generichash(buf + o, 32, buf, o, NULL, 0);
    o += 32;
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, o, f), o);
    fclose(f);
    fri_ckpt r;
    cr_assert_eq(fri_ckpt_read_file(path, &r, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(r.version, 3);
    cr_assert_eq(r.bi[3], 4.0f);
    cr_assert_eq(r.n_rdp, 0);
    fri_ckpt_free(&r);
    // And with an accountant the format-2 file round-trips it.
    c.n_rdp     = FRI_CKPT_MAX_RDP;
    c.dp_rounds = 7;
    for (int i = 0; i < FRI_CKPT_MAX_RDP; i++) {
        c.rdp[i] = 0.001 * i;
    }
    cr_assert_eq(fri_ckpt_write(dir, &c, err, sizeof(err)), FR_OK, "%s", err);
    cr_assert_eq(fri_ckpt_read_file(path, &r, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(r.dp_rounds, 7);
    cr_assert_eq(r.n_rdp, FRI_CKPT_MAX_RDP);
    cr_assert_eq(memcmp(r.rdp, c.rdp, sizeof(c.rdp)), 0);
    fri_ckpt_free(&r);
    state_dir_remove(dir);
}

#define EXPECT_BAD(needle, ...)                                             \
    do {                                                                    \
        fri_agg_config c_;                                                  \
        dp_config(&c_);                                                     \
        __VA_ARGS__;                                                        \
        char e_[256] = "";                                                  \
        cr_assert_eq(fri_agg_config_check(&c_, e_, sizeof(e_)), FR_EINVAL,  \
                     "accepted: %s", #__VA_ARGS__);                         \
        cr_assert(strstr(e_, needle) != NULL, "'%s' lacks '%s'", e_,       \
                  needle);                                                  \
    } while (0)

Test(agg_dp, config_validation)
{
    fri_agg_config ok;
    dp_config(&ok);
    char e[256];
    cr_assert_eq(fri_agg_config_check(&ok, e, sizeof(e)), FR_OK, "%s", e);
    EXPECT_BAD("dp needs algo grad", c_.algo = FRI_AGG_ALS);
    EXPECT_BAD("dp needs clip > 0", c_.clip = 0);
    EXPECT_BAD("clip must be finite", c_.clip = -1);
    EXPECT_BAD("noise-multiplier > 0", c_.noise_multiplier = 0);
    EXPECT_BAD("dp needs population", c_.population = 0);
    EXPECT_BAD("dp-delta must be", c_.dp_delta = 1.0);
    EXPECT_BAD("sampled cohort", c_.clients_per_round = 0);
    EXPECT_BAD("exceeds population", c_.population = 0; c_.population = 1;
               c_.fraction = 0; c_.clients_per_round = 5);
    EXPECT_BAD("needs secure aggregation", c_.dp = FRI_AGG_DP_DISTRIBUTED);
    EXPECT_BAD("noise-multiplier needs dp", c_.dp = FRI_AGG_DP_OFF);
    EXPECT_BAD("dp must be", c_.dp = (fri_agg_dp) 7);
    EXPECT_BAD("clients-per-round in 2..65535",
               c_.secagg = FRI_AGG_SECAGG_FULL);
    // Clipping alone (no noise) is allowed, in ALS mode too.
    fri_agg_config cl;
    dp_config(&cl);
    cl.dp               = FRI_AGG_DP_OFF;
    cl.noise_multiplier = 0;
    cl.algo             = FRI_AGG_ALS;
    cr_assert_eq(fri_agg_config_check(&cl, e, sizeof(e)), FR_OK, "%s", e);
    // Fraction sampling: q = fraction.
    fri_agg_config fr;
    dp_config(&fr);
    fr.clients_per_round = 0;
    fr.fraction          = 0.01;
    fr.population        = 100000;
    fri_agg *a           = NULL;
    cr_assert_eq(fri_agg_create(&a, &fr, 0, e, sizeof(e)), FR_OK, "%s", e);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert(fabs(m.dp_q - 0.01) < 1e-12, "q = %g", m.dp_q);
    fri_agg_destroy(a);
}

Test(agg_dp, command_line_flags)
{
    const char *argv[] = {"fedrec-aggregator", "--listen",
                          "tcp://127.0.0.1:1", "--items", "10", "--algo",
                          "grad", "--clients-per-round", "10", "--clip",
                          "0.25", "--dp", "central", "--noise-multiplier",
                          "1.5", "--population", "943", "--dp-delta", "1e-6",
                          "--dp-seed", "9", "--secure-agg", "off"};
    fri_agg_args a;
    char         err[512] = "";
    cr_assert_eq(fri_agg_args_parse(&a, (int) (sizeof(argv) / sizeof(*argv)),
                                    (char **) argv, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(a.cfg.clip, 0.25f);
    cr_assert_eq(a.cfg.dp, FRI_AGG_DP_CENTRAL);
    cr_assert_eq(a.cfg.noise_multiplier, 1.5);
    cr_assert_eq(a.cfg.population, 943);
    cr_assert_eq(a.cfg.dp_delta, 1e-6);
    cr_assert_eq(a.cfg.dp_seed, 9);
    fri_agg_args_free(&a);
    const char *bad[] = {"fedrec-aggregator", "--listen", "tcp://h:1",
                         "--items", "10", "--dp", "local"};
    cr_assert_neq(fri_agg_args_parse(&a, 7, (char **) bad, err, sizeof(err)),
                  FR_OK);
    cr_assert(strstr(err, "--dp wants off, central or distributed") != NULL,
              "%s", err);
    fri_agg_args_free(&a);
    const char *bad2[] = {"fedrec-aggregator", "--listen", "tcp://h:1",
                          "--items", "10", "--secure-agg", "half"};
    cr_assert_neq(fri_agg_args_parse(&a, 7, (char **) bad2, err, sizeof(err)),
                  FR_OK);
    cr_assert(strstr(err, "--secure-agg wants") != NULL, "%s", err);
    fri_agg_args_free(&a);
}

// ---- real clients -------------------------------------------------------

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
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 300, 1, 0.0f);
    e2e_reply_alloc(w);
}

static double
norm(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double) v[i] * v[i];
    }
    return sqrt(s);
}

// The clip travels in TASK and the client bounds its whole update: with
// one client per round and negligible noise, the released sum is that
// client's update, so its norm shows the clip was applied.
Test(agg_dp, clients_clip_their_update_to_the_task_bound)
{
    fri_agg_config c;
    dp_config(&c);
    c.k                = 3;
    c.clip             = 0.05f;
    c.noise_multiplier = 1e-4; // noise sd 5e-6
    c.population       = NU;
    c.server_opt       = FRI_AGG_OPT_ADAM;
    c.server_lr        = 0.01f;
    world w;
    world_init(&w, &c);
    capture cap = {0};
    fri_agg_set_release_hook(w.a, capture_fn, &cap);
    for (uint32_t u = 0; u < 5; u++) {
        cr_assert_eq(e2e_world_checkin(&w, u, u), FR_CHECKIN_CONTRIBUTED, "%s",
                     fr_client_errmsg(w.c[u]));
        cr_assert_eq(cap.calls, (int) u + 1);
        size_t nr   = (size_t) NIT * 4;
        double rows = norm(cap.v, nr), extra = norm(cap.v + nr, 2);
        double half = c.clip / sqrt(2.0);
        // Noise adds at most ~sqrt(102) * 5e-6 = 5e-5 of norm.
        cr_assert(rows <= half + 1e-4, "rows norm %f > %f", rows, half);
        cr_assert(extra <= half + 1e-4, "extra norm %f > %f", extra, half);
        // Unclipped, (sum, count) of >= 5 ratings has norm > 5: clipped.
        cr_assert(extra > 0.99 * half, "extra norm %f: not clipped?", extra);
        cr_assert(rows > 0.5 * half, "rows norm %f", rows);
    }
    e2e_world_free(&w);
    free(cap.v);
}

// With modest noise, DP-FedAvg still trains: RMSE drops and mu moves
// towards the rating mean.
Test(agg_dp, training_with_central_dp_lowers_rmse)
{
    fri_agg_config c;
    dp_config(&c);
    c.k                 = 3;
    c.clip              = 2.0f;
    c.noise_multiplier  = 0.05;
    c.population        = NU;
    c.clients_per_round = NU;
    c.server_opt        = FRI_AGG_OPT_ADAM;
    c.server_lr         = 0.05f;
    c.dp_seed           = 3;
    world w;
    world_init(&w, &c);
    double r0 = e2e_train_rmse(&w, 3);
    for (int round = 0; round < 30; round++) {
        for (uint32_t u = 0; u < NU; u++) {
            cr_assert_eq(e2e_world_checkin(&w, u, (uint64_t) round * 10),
                         FR_CHECKIN_CONTRIBUTED, "%s",
                         fr_client_errmsg(w.c[u]));
        }
    }
    double          r1 = e2e_train_rmse(&w, 3);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.dp_rounds, 30);
    cr_assert(isfinite(m.dp_epsilon) && m.dp_epsilon > 0);
    cr_log_info("central DP z=%.2f C=%.1f: RMSE %.4f -> %.4f, epsilon %.3g "
                "(delta 1e-5, q 1, 30 rounds)",
                c.noise_multiplier, (double) c.clip, r0, r1, m.dp_epsilon);
    cr_assert(r1 < r0 - 0.05, "RMSE %f -> %f", r0, r1);
    e2e_world_free(&w);
}
