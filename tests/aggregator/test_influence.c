// Bounded influence of one device (docs/ROBUSTNESS.md): absurd but finite
// values of every kind are refused and the round goes on to the very model
// it would have reached without them; the double accumulators survive
// +-3e38; a model that fails the sanity check is not committed; a poisoned
// checkpoint is refused on load; a failed checkpoint is counted and, under
// DP, holds the new model back.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg.h"
#include "agg_int.h"
#include "snap.h"
#include "bayes.h"
#include "bounds.h"
#include "ckpt.h"
#include "linalg.h"
#include "mf.h"
#include "rng.h"
#include "state_dir.h"

#define K 2
#define D (K + 1)
#define P ((D * (D + 1)) / 2)
#define NI 8
#define NU 12

static void
key(uint8_t pk[FRI_AGG_KEYBYTES], uint32_t i)
{
    memset(pk, 0, FRI_AGG_KEYBYTES);
    for (int b = 0; b < FRI_AGG_KEYBYTES; b++) {
        pk[b] = (uint8_t) ((i * 2654435761u) >> ((b % 4) * 8)) ^ (uint8_t) b;
    }
    pk[31] = (uint8_t) i;
    pk[30] = (uint8_t) (i >> 8);
}

// One device's update, with room for every algorithm's parts.
typedef struct dev {
    uint32_t       items[NI];
    float          rat[NI];
    float          gram[P];
    float          rows[NI * D];
    float          glob[D + P + 2];
    fri_agg_update u;
} dev;

// Honest users: p ~ N(0, 0.3^2), ratings 1..5 on about half the items.
typedef struct user {
    float    p[K], bu;
    uint32_t n;
    uint32_t items[NI];
    float    r[NI];
} user;

static void
users_make(user *us, uint64_t seed)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    for (int u = 0; u < NU; u++) {
        user *x = &us[u];
        memset(x, 0, sizeof(*x));
        for (int f = 0; f < K; f++) {
            x->p[f] = (float) (fri_rng_normal(&r) * 0.3);
        }
        x->bu = (float) (fri_rng_normal(&r) * 0.1);
        for (uint32_t i = 0; i < NI; i++) {
            if (fri_rng_uniform(&r) < 0.5 || i == (uint32_t) u % NI) {
                x->items[x->n] = i;
                x->r[x->n]     = 1.0f + (float) fri_rng_below(&r, 5);
                x->n++;
            }
        }
    }
}

// ALS statistics of user x against a model with global mean mu.
static void
als_update(dev *v, const user *x, uint64_t round, float mu)
{
    memset(v, 0, sizeof(*v));
    cr_assert_eq(fri_mf_user_item_stats(v->gram, P, v->rows, NI * D, x->p,
                                        x->bu, K, mu, x->r, x->n),
                 FR_OK);
    double sum = 0;
    for (uint32_t j = 0; j < x->n; j++) {
        sum += x->r[j];
    }
    memcpy(v->items, x->items, sizeof(v->items));
    v->u.round       = round;
    v->u.n           = x->n;
    v->u.items       = v->items;
    v->u.gram        = v->gram;
    v->u.gram_len    = P;
    v->u.rows        = v->rows;
    v->u.rows_len    = (size_t) x->n * D;
    v->u.sum_ratings = sum;
    v->u.count       = x->n;
    v->u.weight      = x->n;
}

// VBMF statistics with covariance 0.05 I (as the client builds them).
static void
vb_update(dev *v, const user *x, uint64_t round, float mu)
{
    float S[P] = {0};
    for (int a = 0; a < D; a++) {
        S[fri_packed_index(D, a, a)] = 0.05f;
    }
    memset(v, 0, sizeof(*v));
    cr_assert_eq(fri_bpmf_user_item_stats(v->gram, P, v->rows, NI * D, x->p,
                                          x->bu, S, K, mu, x->r, x->n),
                 FR_OK);
    float  u[D] = {x->p[0], x->p[1], x->bu};
    double sq = 0, sum = 0;
    for (uint32_t j = 0; j < x->n; j++) {
        double e = x->r[j] - mu - x->bu;
        sq += e * e + S[fri_packed_index(D, K, K)];
        sum += x->r[j];
    }
    memcpy(v->glob, u, sizeof(u));
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            size_t e       = fri_packed_index(D, a, b);
            v->glob[D + e] = u[a] * u[b] + S[e];
        }
    }
    v->glob[D + P]     = (float) sq;
    v->glob[D + P + 1] = 1.0f;
    memcpy(v->items, x->items, sizeof(v->items));
    v->u.round       = round;
    v->u.n           = x->n;
    v->u.items       = v->items;
    v->u.gram        = v->gram;
    v->u.gram_len    = P;
    v->u.rows        = v->rows;
    v->u.rows_len    = (size_t) x->n * D;
    v->u.sum_ratings = sum;
    v->u.count       = x->n;
    v->u.weight      = x->n;
    v->u.vb          = v->glob;
    v->u.vb_len      = D + P + 2;
}

// Gradient rows of user x against the model (mu, bi, Q).
static void
grad_update(dev *v, const user *x, uint64_t round, float mu, const float *bi,
            const float *Q)
{
    memset(v, 0, sizeof(*v));
    fri_mf_items it = {NI, K, mu, bi, Q};
    cr_assert_eq(fri_mf_user_item_grad(v->rows, NI * D, &it, x->p, x->bu,
                                       x->items, x->r, x->n, 0.1f, 0.1f),
                 FR_OK);
    double sum = 0;
    for (uint32_t j = 0; j < x->n; j++) {
        sum += x->r[j];
    }
    memcpy(v->items, x->items, sizeof(v->items));
    v->u.round       = round;
    v->u.n           = x->n;
    v->u.items       = v->items;
    v->u.rows        = v->rows;
    v->u.rows_len    = (size_t) x->n * D;
    v->u.sum_ratings = sum;
    v->u.count       = x->n;
    v->u.weight      = x->n;
}

static void
cfg_of(fri_agg_config *c, fri_agg_algo algo)
{
    fri_agg_config_init(c);
    c->n_items           = NI;
    c->k                 = K;
    c->algo              = algo;
    c->clients_per_round = 0; // rounds close at the deadline
    c->min_clients       = 1;
    c->round_deadline_ms = 1000;
    c->server_opt        = FRI_AGG_OPT_SGD;
    c->server_lr         = 0.5f;
}

static fri_agg *
make(const fri_agg_config *c)
{
    fri_agg *a = NULL;
    char     err[256];
    fr_err   rv = fri_agg_create(&a, c, 0, err, sizeof(err));
    cr_assert_eq(rv, FR_OK, "create: %s: %s", fr_errname(rv), err);
    return a;
}

typedef void (*poison_fn)(dev *v);

// Runs `rounds` rounds of the honest users (and, if bad != NULL, one more
// device whose honest update bad() poisons) on a; returns its refusals.
static uint64_t
run(fri_agg *a, const fri_agg_config *c, const user *us, int rounds,
    poison_fn bad, uint64_t *now)
{
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    uint64_t     refused = 0;
    for (int rnd = 0; rnd < rounds; rnd++) {
        float    mu, bi[NI], Q[NI * K];
        uint64_t ver;
        fri_agg_model_copy(a, &mu, bi, NI, Q, NI * K, &ver);
        for (int u = 0; u <= NU; u++) {
            if (u == NU && bad == NULL) {
                break;
            }
            key(pk, 100 + (uint32_t) u);
            cr_assert_eq(fri_agg_checkin(a, *now, pk, &t), FR_OK);
            cr_assert(t.has_task);
            const user *x = &us[u < NU ? u : 0];
            dev         v;
            if (c->algo == FRI_AGG_VBMF) {
                vb_update(&v, x, t.round, mu);
            } else if (c->algo == FRI_AGG_GRAD) {
                grad_update(&v, x, t.round, mu, bi, Q);
            } else {
                als_update(&v, x, t.round, mu);
            }
            if (u == NU) {
                bad(&v);
                if (fri_agg_submit(a, *now, pk, &v.u) != FR_OK) {
                    refused++;
                }
            } else {
                cr_assert_eq(fri_agg_submit(a, *now, pk, &v.u), FR_OK,
                             "honest user %d refused", u);
            }
        }
        *now += 1001;
        fri_agg_tick(a, *now);
        uint64_t ver2;
        fri_agg_model_copy(a, NULL, NULL, 0, NULL, 0, &ver2);
        cr_assert_eq(ver2, ver + 1, "round %d did not complete", rnd);
    }
    return refused;
}

static void
assert_same_model(fri_agg *x, fri_agg *y, const char *what)
{
    float    m1, m2, b1[NI], b2[NI], Q1[NI * K], Q2[NI * K];
    uint64_t v1, v2;
    fri_agg_model_copy(x, &m1, b1, NI, Q1, NI * K, &v1);
    fri_agg_model_copy(y, &m2, b2, NI, Q2, NI * K, &v2);
    cr_assert_eq(v1, v2, "%s: versions", what);
    cr_assert(m1 == m2, "%s: mu %g vs %g", what, (double) m1, (double) m2);
    cr_assert(memcmp(b1, b2, sizeof(b1)) == 0, "%s: biases differ", what);
    cr_assert(memcmp(Q1, Q2, sizeof(Q1)) == 0, "%s: factors differ", what);
    cr_assert(m1 >= 1.0f && m1 <= 5.0f, "%s: mu %g", what, (double) m1);
}

// Every kind of poison: refused, counted as out of bounds, and the model
// after the rounds is bit for bit the one without the device.
static void
each_poison(fri_agg_algo algo, const poison_fn *kinds, const char **names,
            size_t n, int rounds)
{
    user us[NU];
    users_make(us, 7);
    fri_agg_config c;
    cfg_of(&c, algo);
    fri_agg *ref = make(&c);
    uint64_t now = 0;
    cr_assert_eq(run(ref, &c, us, rounds, NULL, &now), 0);
    for (size_t kind = 0; kind < n; kind++) {
        fri_agg *a  = make(&c);
        uint64_t t2 = 0;
        uint64_t r  = run(a, &c, us, rounds, kinds[kind], &t2);
        cr_assert_eq(r, (uint64_t) rounds, "%s: accepted", names[kind]);
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.rejected[FRI_REJ_BOUNDS], (uint64_t) rounds,
                     "%s: not counted as out of bounds", names[kind]);
        cr_assert_eq(m.rounds_abandoned, 0);
        assert_same_model(a, ref, names[kind]);
        fri_agg_destroy(a);
    }
    fri_agg_destroy(ref);
}

// ---- ALS poisons ----------------------------------------------------------

static void
p_mean(dev *v) // the reported defect: sum 1e30 with count 1
{
    v->u.sum_ratings = 1e30;
    v->u.count       = 1;
}
static void
p_count(dev *v) // more ratings than rows
{
    v->u.count       = 1e6;
    v->u.sum_ratings = 3e6;
}
static void
p_weight(dev *v)
{
    v->u.weight = 1e9;
}
static void
p_gram_not_psd(dev *v)
{
    v->gram[fri_packed_index(D, 0, 0)] = -4.0f;
}
static void
p_gram_not_rank_one(dev *v) // PSD, but not x x^T
{
    v->gram[fri_packed_index(D, 0, 0)] += 50.0f;
}
static void
p_gram_bias(dev *v) // x x^T scaled: the bias coordinate is not 1
{
    for (int e = 0; e < P; e++) {
        v->gram[e] *= 1e6f;
    }
    for (size_t e = 0; e < v->u.rows_len; e++) {
        v->rows[e] *= 1e6f;
    }
}
static void
p_user_norm(dev *v) // a consistent x x^T with |p| = 1000
{
    float x[D] = {1000.0f, -3.0f, 1.0f};
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            v->gram[fri_packed_index(D, a, b)] = x[a] * x[b];
        }
    }
    for (uint32_t j = 0; j < v->u.n; j++) {
        for (int a = 0; a < D; a++) {
            v->rows[j * D + a] = x[a] * 1.0f;
        }
    }
}
static void
p_rows_residual(dev *v) // h = x * 1e6: consistent, residual absurd
{
    for (size_t e = 0; e < v->u.rows_len; e++) {
        v->rows[e] *= 1e6f;
    }
}
static void
p_rows_shape(dev *v) // h not parallel to x
{
    v->rows[0] = 50.0f;
}

Test(influence, als_absurd_values_refused_model_unchanged)
{
    static const poison_fn kinds[] = {p_mean,         p_count,
                                      p_weight,       p_gram_not_psd,
                                      p_gram_not_rank_one, p_gram_bias,
                                      p_user_norm,    p_rows_residual,
                                      p_rows_shape};
    static const char *names[] = {"global mean", "count",      "weight",
                                  "gram not psd", "gram rank", "gram bias",
                                  "user norm",   "residual",   "row shape"};
    each_poison(FRI_AGG_ALS, kinds, names, sizeof(kinds) / sizeof(kinds[0]),
                3);
}

// ---- VBMF global block ------------------------------------------------------

static void
v_users(dev *v)
{
    v->glob[D + P + 1] = 1e6f;
}
static void
v_sse(dev *v)
{
    v->glob[D + P] = 1e30f;
}
static void
v_mean(dev *v) // global block mean disagrees with the Gram's
{
    v->glob[0] += 100.0f;
}
static void
v_bias(dev *v) // a user bias of 1e6 (consistent second moment)
{
    v->glob[K]                                  = 1e6f;
    v->glob[D + fri_packed_index(D, K, K)]       = 1e12f;
}
static void
v_cov(dev *v) // E[b^2] < E[b]^2: E[u u^T] - E[u]E[u]^T not PSD
{
    v->glob[K]                             = 2.0f;
    v->glob[D + fri_packed_index(D, K, K)] = 0.5f;
}
static void
v_gram(dev *v) // not PSD
{
    v->gram[fri_packed_index(D, 0, 1)] = 40.0f;
}

Test(influence, vbmf_absurd_values_refused_model_unchanged)
{
    static const poison_fn kinds[] = {p_mean, v_users, v_sse, v_mean,
                                      v_bias, v_cov,   v_gram, p_rows_residual};
    static const char *names[] = {"global mean", "user count", "sse",
                                  "glob mean",   "user bias",  "covariance",
                                  "gram",        "residual"};
    each_poison(FRI_AGG_VBMF, kinds, names, sizeof(kinds) / sizeof(kinds[0]),
                2);
}

// ---- gradient FedAvg ----------------------------------------------------------

static void
g_rows(dev *v)
{
    for (size_t e = 0; e < v->u.rows_len; e++) {
        v->rows[e] = 1e9f;
    }
}

Test(influence, grad_absurd_values_refused_model_unchanged)
{
    static const poison_fn kinds[] = {p_mean, p_count, p_weight, g_rows};
    static const char *names[] = {"global mean", "count", "weight", "rows"};
    each_poison(FRI_AGG_GRAD, kinds, names, sizeof(kinds) / sizeof(kinds[0]),
                2);
}

// Two devices each sending 3e38 on the same coordinate: a float sum
// overflows to infinity. Refused (row bound), and the sums are doubles.
Test(influence, two_devices_3e38_leave_the_model_finite)
{
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_GRAD);
    fri_agg *a = make(&c);
    uint8_t  pk[FRI_AGG_KEYBYTES];
    uint32_t item = 1;
    float    big[2][D];
    for (int s = 0; s < 2; s++) {
        for (int e = 0; e < D; e++) {
            big[s][e] = (s == 0 || e == 0) ? 3e38f : -3e38f;
        }
    }
    fri_agg_task t;
    for (int s = 0; s < 3; s++) {
        key(pk, 7 + (uint32_t) s);
        cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
        float          honest[D] = {0.1f, -0.2f, 0.3f};
        fri_agg_update u         = {.round       = t.round,
                                    .n           = 1,
                                    .items       = &item,
                                    .rows        = s < 2 ? big[s] : honest,
                                    .rows_len    = D,
                                    .sum_ratings = 4,
                                    .count       = 1,
                                    .weight      = 1};
        fr_err rv = fri_agg_submit(a, 0, pk, &u);
        cr_assert_eq(rv, s < 2 ? FR_EPROTO : FR_OK);
    }
    fri_agg_tick(a, 2000);
    float    mu, bi[NI], Q[NI * K];
    uint64_t ver;
    fri_agg_model_copy(a, &mu, bi, NI, Q, NI * K, &ver);
    cr_assert_eq(ver, 1);
    cr_assert(mu == 4.0f);
    for (int i = 0; i < NI; i++) {
        cr_assert(isfinite(bi[i]));
    }
    for (int i = 0; i < NI * K; i++) {
        cr_assert(isfinite(Q[i]) && fabsf(Q[i]) < 10.0f);
    }
    fri_agg_destroy(a);
}

// With --clip the server clips each plain update itself: a device that
// sends rows of 1e30 moves the model exactly as one that clipped honestly.
Test(influence, grad_server_side_clip)
{
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_GRAD);
    c.clip = 1.0f;
    float rows_big[2 * D], rows_clip[2 * D];
    for (int e = 0; e < 2 * D; e++) {
        rows_big[e] = (e % 2 ? -1e30f : 1e30f);
    }
    // The same direction at norm C / sqrt(2).
    double n = sqrt(2.0 * D) * 1e30;
    for (int e = 0; e < 2 * D; e++) {
        rows_clip[e] = (float) (rows_big[e] / n * (1.0 / sqrt(2.0)));
    }
    uint32_t items[2] = {2, 5};
    float    Qs[2][NI * K], bs[2][NI], mus[2];
    for (int run_i = 0; run_i < 2; run_i++) {
        fri_agg     *a = make(&c);
        uint8_t      pk[FRI_AGG_KEYBYTES];
        fri_agg_task t;
        key(pk, 3);
        cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
        fri_agg_update u = {.round       = t.round,
                            .n           = 2,
                            .items       = items,
                            .rows        = run_i ? rows_clip : rows_big,
                            .rows_len    = 2 * D,
                            .sum_ratings = 0.6,
                            .count       = 0.2,
                            .weight      = 2};
        cr_assert_eq(fri_agg_submit(a, 0, pk, &u), FR_OK);
        fri_agg_tick(a, 2000);
        fri_agg_model_copy(a, &mus[run_i], bs[run_i], NI, Qs[run_i], NI * K,
                           NULL);
        fri_agg_destroy(a);
    }
    for (int i = 0; i < NI * K; i++) {
        cr_assert(fabsf(Qs[0][i] - Qs[1][i]) < 1e-6f, "Q[%d] %g vs %g", i,
                  (double) Qs[0][i], (double) Qs[1][i]);
    }
    for (int i = 0; i < NI; i++) {
        cr_assert(fabsf(bs[0][i] - bs[1][i]) < 1e-6f);
    }
}

// ---- what one device can do (docs/ROBUSTNESS.md) -----------------------------

// Explicit ALS, fixed mu: a device within the bounds (|p| <= U, |res| <=
// R) changes each item it rated by at most
//   (R + |x| |y_i|) / (2 sqrt(lambda)),  |x| = sqrt(1 + |p|^2),
// y_i = [q_i; b_i] solved without it, lambda = min(reg, reg_bias) (the
// smallest eigenvalue of the item's system is at least that); items it did
// not rate do not move. Checked against devices with random |p| in [0, U]
// and residuals +-R.
Test(influence, als_one_device_change_within_the_bound)
{
    user us[NU];
    users_make(us, 11);
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_ALS);
    fri_agg *ref = make(&c);
    uint64_t now = 0;
    run(ref, &c, us, 2, NULL, &now); // census, then one solve
    float mu, bi[NI], Q[NI * K];
    fri_agg_model_copy(ref, &mu, bi, NI, Q, NI * K, NULL);
    // The honest round 3 once, as the baseline.
    double total = 0, cnt = 0;
    for (int u = 0; u < NU; u++) {
        for (uint32_t j = 0; j < us[u].n; j++) {
            total += us[u].r[j];
            cnt += 1;
        }
    }
    const double U = c.max_user_norm, R = 3.0 * (c.rating_max - c.rating_min);
    const double lam = c.reg < c.reg_bias ? c.reg : c.reg_bias;
    fri_rng      rng;
    fri_rng_seed(&rng, 3);
    double worst_ratio = 0.0;
    for (int trial = 0; trial < 40; trial++) {
        fri_agg *b  = make(&c);
        fri_agg *h  = make(&c);
        uint64_t t1 = 0, t2 = 0;
        run(b, &c, us, 2, NULL, &t1);
        run(h, &c, us, 2, NULL, &t2);
        // A device at the bounds: |p| = U in a random direction, residual
        // +-R on every item, its mean equal to the honest mean (so mu, and
        // with it every item's re-centring, stays put).
        double ang = fri_rng_uniform(&rng) * 6.283185307179586;
        double pn  = U * 0.99999 * pow(fri_rng_uniform(&rng), 3.0);
        float  x[D] = {(float) (pn * cos(ang)), (float) (pn * sin(ang)),
                       1.0f};
        double xn  = sqrt(1.0 + (double) x[0] * x[0] + (double) x[1] * x[1]);
        dev    v;
        memset(&v, 0, sizeof(v));
        uint32_t n = 1 + (uint32_t) fri_rng_below(&rng, NI);
        for (uint32_t j = 0; j < n; j++) {
            v.items[j] = j;
            float res  = (float) ((fri_rng_uniform(&rng) < 0.5 ? -R : R) *
                                 0.99999);
            for (int a = 0; a < D; a++) {
                v.rows[j * D + a] = x[a] * res;
            }
        }
        for (int a = 0; a < D; a++) {
            for (int e = a; e < D; e++) {
                v.gram[fri_packed_index(D, a, e)] = x[a] * x[e];
            }
        }
        uint8_t      pk[FRI_AGG_KEYBYTES];
        fri_agg_task t;
        float        mu_b;
        fri_agg_model_copy(b, &mu_b, NULL, 0, NULL, 0, NULL);
        for (int u = 0; u < NU; u++) {
            dev hv;
            key(pk, 100 + (uint32_t) u);
            cr_assert_eq(fri_agg_checkin(b, t1, pk, &t), FR_OK);
            als_update(&hv, &us[u], t.round, mu_b);
            cr_assert_eq(fri_agg_submit(b, t1, pk, &hv.u), FR_OK);
            cr_assert_eq(fri_agg_checkin(h, t2, pk, &t), FR_OK);
            hv.u.round = t.round;
            cr_assert_eq(fri_agg_submit(h, t2, pk, &hv.u), FR_OK);
        }
        key(pk, 999);
        cr_assert_eq(fri_agg_checkin(b, t1, pk, &t), FR_OK);
        v.u = (fri_agg_update){.round       = t.round,
                               .n           = n,
                               .items       = v.items,
                               .gram        = v.gram,
                               .gram_len    = P,
                               .rows        = v.rows,
                               .rows_len    = (size_t) n * D,
                               .sum_ratings = n * (total / cnt),
                               .count       = n,
                               .weight      = n};
        cr_assert_eq(fri_agg_submit(b, t1, pk, &v.u), FR_OK);
        fri_agg_tick(b, t1 + 1001);
        fri_agg_tick(h, t2 + 1001);
        float mb, mh, bb[NI], bh[NI], Qb[NI * K], Qh[NI * K];
        fri_agg_model_copy(b, &mb, bb, NI, Qb, NI * K, NULL);
        fri_agg_model_copy(h, &mh, bh, NI, Qh, NI * K, NULL);
        cr_assert(fabsf(mb - mh) < 1e-5f, "mu moved %g -> %g", (double) mh,
                  (double) mb);
        for (uint32_t i = 0; i < NI; i++) {
            double dy = 0, yn = 0;
            for (int f = 0; f < K; f++) {
                double dq = Qb[i * K + f] - Qh[i * K + f];
                dy += dq * dq;
                yn += (double) Qh[i * K + f] * Qh[i * K + f];
            }
            dy += (double) (bb[i] - bh[i]) * (bb[i] - bh[i]);
            yn += (double) bh[i] * bh[i];
            double bound = (R + xn * sqrt(yn)) / (2.0 * sqrt(lam));
            if (i >= n) {
                cr_assert(dy < 1e-10, "unrated item %u moved", i);
                continue;
            }
            cr_assert(sqrt(dy) <= bound * (1 + 1e-4), "item %u: %g > %g", i,
                      sqrt(dy), bound);
            worst_ratio = fmax(worst_ratio, sqrt(dy) / bound);
        }
        fri_agg_destroy(b);
        fri_agg_destroy(h);
    }
    cr_log_info("largest change / bound = %.3f", worst_ratio);
    // The bound is not vacuous.
    cr_assert(worst_ratio > 0.2, "bound loose: %g", worst_ratio);
    fri_agg_destroy(ref);
}

// ---- the model sanity check ----------------------------------------------------

Test(influence, insane_model_refused_previous_kept)
{
    user us[NU];
    users_make(us, 5);
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_GRAD);
    c.server_opt    = FRI_AGG_OPT_ADAM;
    c.max_item_norm = 0.3f; // honest steps of lr 0.5 exceed it
    fri_agg *a      = make(&c);
    float    mu0, b0[NI], Q0[NI * K];
    fri_agg_model_copy(a, &mu0, b0, NI, Q0, NI * K, NULL);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    for (int u = 0; u < NU; u++) {
        dev v;
        key(pk, 100 + (uint32_t) u);
        cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
        grad_update(&v, &us[u], t.round, mu0, b0, Q0);
        cr_assert_eq(fri_agg_submit(a, 0, pk, &v.u), FR_OK);
    }
    fri_agg_tick(a, 1001);
    float    mu, bi[NI], Q[NI * K];
    uint64_t ver;
    fri_agg_model_copy(a, &mu, bi, NI, Q, NI * K, &ver);
    cr_assert_eq(ver, 0);
    cr_assert(mu == mu0);
    cr_assert(memcmp(Q, Q0, sizeof(Q)) == 0);
    cr_assert(memcmp(bi, b0, sizeof(bi)) == 0);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.models_refused, 1);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert(m.round_open); // the next round is open
    char   buf[8192];
    size_t len = 0;
    cr_assert_eq(fri_agg_metrics_prometheus(&m, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf, "fedrec_models_refused_total 1\n") != NULL);
    cr_assert_eq(fri_agg_metrics_json(&m, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf, "\"models_refused_total\":1") != NULL);
    fri_agg_destroy(a);
}

// ---- checkpoints ------------------------------------------------------------------

// Two completed rounds in dir (checkpoint + checkpoint.prev).
static void
two_rounds(const char *dir, fri_agg_config *c)
{
    user us[NU];
    users_make(us, 9);
    cfg_of(c, FRI_AGG_ALS);
    c->state_dir = dir;
    fri_agg *a   = make(c);
    uint64_t now = 0;
    run(a, c, us, 2, NULL, &now);
    fri_agg_destroy(a);
}

// Rewrites the current checkpoint with poison applied (a valid checksum:
// what a poisoned run of an older version would have saved).
static void
poison_ckpt(const char *dir, const char *src, int kind, int times)
{
    char     p[400], err[512];
    fri_ckpt k;
    snprintf(p, sizeof(p), "%s/%s", dir, src);
    cr_assert_eq(fri_ckpt_read_file(p, &k, err, sizeof(err)), FR_OK, "%s",
                 err);
    if (kind == 0) {
        k.mu = 6e26f; // the reported outcome
    } else if (kind == 1) {
        k.Q[3] = 1e30f;
    } else {
        k.bi[1] = NAN;
    }
    for (int t = 0; t < times; t++) {
        cr_assert_eq(fri_ckpt_write(dir, &k, err, sizeof(err)), FR_OK, "%s",
                     err);
    }
    fri_ckpt_free(&k);
}

Test(influence, poisoned_checkpoint_refused_on_load)
{
    for (int kind = 0; kind < 3; kind++) {
        char dir[64];
        state_dir_make(dir, sizeof(dir), "/tmp/frinflXXXXXX");
        fri_agg_config c;
        two_rounds(dir, &c);
        // One poisoned file: the previous (round 2) checkpoint is used.
        poison_ckpt(dir, "checkpoint", kind, 1);
        fri_agg *a = make(&c);
        float    mu;
        uint64_t ver;
        fri_agg_model_copy(a, &mu, NULL, 0, NULL, 0, &ver);
        cr_assert_eq(ver, 2, "kind %d: version %llu", kind,
                     (unsigned long long) ver);
        cr_assert(mu >= 1.0f && mu <= 5.0f);
        fri_agg_destroy(a);
        // Both poisoned (the good one becomes .prev, then is poisoned too):
        // refuse to start, naming the files.
        poison_ckpt(dir, "checkpoint.prev", kind, 2);
        a = NULL;
        char   err[1024];
        fr_err rv = fri_agg_create(&a, &c, 0, err, sizeof(err));
        cr_assert_eq(rv, FR_EFORMAT, "kind %d: %s", kind, fr_errname(rv));
        cr_assert_null(a);
        cr_assert(strstr(err, "checkpoint") != NULL, "%s", err);
        cr_log_info("%s", err);
        state_dir_remove(dir);
    }
}

// Disk full on checkpoint: DIR/checkpoint.tmp is a symlink to /dev/full,
// so the write fails with ENOSPC on the real write path. The failure is
// counted; the rounds go on; under DP the new model is not released until
// a checkpoint holding its accounting succeeds.
static void
disk_full_round(int dp)
{
    char dir[64];
    state_dir_make(dir, sizeof(dir), "/tmp/frinflXXXXXX");
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_GRAD);
    c.state_dir = dir;
    if (dp) {
        c.clip              = 1.0f;
        c.dp                = FRI_AGG_DP_CENTRAL;
        c.noise_multiplier  = 0.5;
        c.population        = NU;
        c.clients_per_round = NU;
        c.dp_seed           = 77;
    }
    user us[NU];
    users_make(us, 4);
    fri_agg *a = make(&c);
    char     tmp[400];
    snprintf(tmp, sizeof(tmp), "%s/checkpoint.tmp", dir);
    cr_assert_eq(symlink("/dev/full", tmp), 0);
    uint64_t now = 0;
    for (int rnd = 0; rnd < 2; rnd++) {
        float    mu, bi[NI], Q[NI * K];
        uint64_t v0;
        fri_agg_model_copy(a, &mu, bi, NI, Q, NI * K, &v0);
        uint8_t      pk[FRI_AGG_KEYBYTES];
        fri_agg_task t;
        for (int u = 0; u < NU; u++) {
            dev v;
            key(pk, 100 + (uint32_t) u);
            cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
            cr_assert(t.has_task);
            cr_assert_eq(t.model_version, rnd == 0 ? 0u : (dp ? 0u : 1u));
            grad_update(&v, &us[u], t.round, mu, bi, Q);
            cr_assert_eq(fri_agg_submit(a, now, pk, &v.u), FR_OK);
        }
        if (!dp) { // (under DP the full cohort closed the round)
            now += 1001;
            fri_agg_tick(a, now);
        }
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        uint64_t ver;
        fri_agg_model_copy(a, NULL, NULL, 0, NULL, 0, &ver);
        fri_snap *s = fri_agg_snap_get(a);
        cr_assert_eq(s->version, ver, "served frame and model copy agree");
        fri_snap_unref(s);
        cr_assert_eq(m.rounds_completed, (uint64_t) rnd + 1);
        cr_assert(m.round_open);
        if (rnd == 0) {
            // The write failed (and removed the symlink: the next works).
            cr_assert_eq(m.checkpoint_failures, 1);
            cr_assert_eq(ver, dp ? 0u : 1u, "dp %d: released version %llu",
                         dp, (unsigned long long) ver);
            cr_assert_eq(m.model_held, dp);
            cr_assert_eq(m.model_version, ver);
            struct stat st;
            char        cur[400];
            snprintf(cur, sizeof(cur), "%s/checkpoint", dir);
            cr_assert_neq(stat(cur, &st), 0, "no checkpoint was written");
        } else {
            cr_assert_eq(m.checkpoint_failures, 1);
            cr_assert_eq(ver, 2u);
            cr_assert_eq(m.model_held, 0);
        }
    }
    fri_agg_destroy(a);
    // What was released is what a restart resumes from, epsilon included.
    a = make(&c);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.model_version, 2);
    cr_assert_eq(m.dp_rounds, dp ? 2u : 0u);
    fri_agg_destroy(a);
    state_dir_remove(dir);
}

Test(influence, disk_full_checkpoint_counted)
{
    disk_full_round(0);
}

Test(influence, disk_full_checkpoint_holds_dp_model)
{
    disk_full_round(1);
}

// Latest statistics: an update is new - old of one device's contribution.
// A real change of user vector and residuals passes; each part above twice
// one bounded contribution is refused.
Test(influence, latest_statistics_deltas_bounded)
{
    enum { KD = 3, DD = KD + 1, NR = 4 };
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items      = 50;
    c.k            = KD;
    c.algo         = FRI_AGG_ALS;
    c.stats_latest = 1;
    const float xo[DD] = {0.5f, -1.0f, 2.0f, 1.0f};
    const float xn[DD] = {-2.0f, 1.5f, 0.3f, 1.0f};
    const float ro[NR] = {1.5f, -2.0f, 0.5f, 3.0f};
    const float rn[NR] = {-3.0f, 2.5f, 1.0f, -0.5f};
    float       gram[DD * (DD + 1) / 2], rows[NR * DD];
    uint32_t    items[NR] = {1, 7, 9, 30};
    for (int a = 0; a < DD; a++) {
        for (int b = a; b < DD; b++) {
            gram[fri_packed_index(DD, a, b)] = xn[a] * xn[b] - xo[a] * xo[b];
        }
        for (int j = 0; j < NR; j++) {
            rows[j * DD + a] = xn[a] * rn[j] - xo[a] * ro[j];
        }
    }
    fri_agg_update u;
    memset(&u, 0, sizeof(u));
    u.n           = NR;
    u.items       = items;
    u.gram        = gram;
    u.gram_len    = fri_packed_len(DD);
    u.rows        = rows;
    u.rows_len    = NR * DD;
    u.sum_ratings = -3.5;
    u.count       = 0.0;
    u.weight      = 0.0;
    const char *why = NULL;
    cr_assert_eq(fri_bounds_update(&c, &u, &why), 0, "%s", why);
    // Plain validation would refuse the same delta (not x x^T).
    c.stats_latest = 0;
    cr_assert_neq(fri_bounds_update(&c, &u, &why), 0);
    c.stats_latest = 1;
    struct {
        float *at;
        float  v;
    } bad[] = {{&gram[0], 1e4f}, {&rows[5], 1e4f}};
    for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
        float keep = *bad[t].at;
        *bad[t].at = bad[t].v;
        cr_assert_neq(fri_bounds_update(&c, &u, &why), 0, "case %zu", t);
        *bad[t].at = keep;
    }
    u.count = 3 * NR;
    cr_assert_neq(fri_bounds_update(&c, &u, &why), 0);
    u.count       = 0.0;
    u.sum_ratings = 1e6;
    cr_assert_neq(fri_bounds_update(&c, &u, &why), 0);
}

// A member whose update is refused is done for the round: with a fixed
// cohort the round closes as soon as the others have reported, instead of
// waiting for its deadline (one bad device would otherwise slow every
// round it is picked for to the deadline). A cohort of only refused
// members is abandoned at once.
Test(influence, refused_member_does_not_hold_the_round_open)
{
    user us[NU];
    users_make(us, 9);
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_ALS);
    c.clients_per_round = NU + 1;
    c.round_deadline_ms = 1000000;
    fri_agg     *a = make(&c);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    uint64_t     now = 0;
    for (int rnd = 0; rnd < 3; rnd++) {
        float mu, bi[NI], Q[NI * K];
        fri_agg_model_copy(a, &mu, bi, NI, Q, NI * K, NULL);
        // The bad device first, so the honest ones complete the cohort.
        for (int u = NU; u >= 0; u--) {
            key(pk, 300 + (uint32_t) u);
            cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
            cr_assert(t.has_task, "round %d user %d", rnd, u);
            dev v;
            als_update(&v, &us[u < NU ? u : 0], t.round, mu);
            if (u == NU) {
                p_mean(&v);
                cr_assert_neq(fri_agg_submit(a, now, pk, &v.u), FR_OK);
                // Done for the round: a second try is not a new chance.
                cr_assert_neq(fri_agg_submit(a, now, pk, &v.u), FR_OK);
            } else {
                cr_assert_eq(fri_agg_submit(a, now, pk, &v.u), FR_OK);
            }
        }
        now += 10; // far before the deadline; no tick
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.rounds_completed, (uint64_t) rnd + 1,
                     "round %d waited for its deadline", rnd);
    }
    fri_agg_destroy(a);

    // Every member refused: abandoned without waiting.
    c.clients_per_round = 2;
    a                   = make(&c);
    for (int u = 0; u < 2; u++) {
        key(pk, 400 + (uint32_t) u);
        cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
        cr_assert(t.has_task);
        dev v;
        als_update(&v, &us[u], t.round, 3.5f);
        p_mean(&v);
        cr_assert_neq(fri_agg_submit(a, now, pk, &v.u), FR_OK);
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert_eq(m.rounds_completed, 0);
    fri_agg_destroy(a);
}

// Latest statistics without masking: a device's reports add up to its
// standing contribution, which the aggregator keeps (ledger.h) and holds
// to one whole bounded contribution. A device that keeps sending negative
// counts (which would drive the running rating count to 0 and stop the
// model) or keeps adding to its contribution is taken out and asked to
// resend it whole (FR_ERESYNC): the running sum never holds more than one
// contribution of it, and the honest devices' part stays exact.
static void
latest_attack(int inflate)
{
    user us[NU];
    users_make(us, 21);
    fri_agg_config c;
    cfg_of(&c, FRI_AGG_ALS);
    c.stats_latest   = 1;
    fri_agg     *a   = make(&c);
    uint64_t     now = 0;
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    double       honest = 0.0;
    for (int u = 0; u < NU - 1; u++) {
        honest += us[u].n;
    }
    const user *bad    = &us[NU - 1];
    uint64_t    resync = 0;
    for (int rnd = 0; rnd < 12; rnd++) {
        float mu;
        fri_agg_model_copy(a, &mu, NULL, 0, NULL, 0, NULL);
        for (int u = 0; u < NU; u++) {
            // Honest devices report whole in the census round and their
            // first recorded one (rounds 0 and 1), then hold still.
            if (u < NU - 1 && rnd > 1) {
                continue;
            }
            key(pk, 700 + (uint32_t)u);
            cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
            cr_assert(t.has_task);
            dev v;
            als_update(&v, &us[u], t.round, mu);
            if (u == NU - 1 && rnd > 1) {
                // Within the per-report bounds (check_delta): minus twice
                // its count and rating sum, or its whole Gram and rows once
                // more, every round.
                v.u.sum_ratings = inflate ? 0.0 : -2.0 * v.u.sum_ratings;
                v.u.count       = inflate ? 0.0 : -2.0 * bad->n;
                v.u.weight      = 0.0;
                if (!inflate) {
                    memset(v.gram, 0, sizeof(v.gram));
                    memset(v.rows, 0, sizeof(v.rows));
                }
                fr_err rv = fri_agg_submit(a, now, pk, &v.u);
                cr_assert(rv == FR_ERESYNC || rv == FR_OK, "round %d: %s", rnd,
                    fr_errname(rv));
                resync += rv == FR_ERESYNC;
            } else {
                cr_assert_eq(fri_agg_submit(a, now, pk, &v.u), FR_OK,
                    "round %d user %d", rnd, u);
            }
        }
        now += 1001;
        fri_agg_tick(a, now);
        // Never more than one whole contribution of the attacker, never
        // less than none.
        double cnt = a->stats.carry_count;
        if (rnd > 0) {
            cr_assert(cnt >= honest - 1e-6 && cnt <= honest + bad->n + 1e-6,
                "round %d: running count %g, honest %g, attacker %u", rnd, cnt,
                honest, bad->n);
            // Each item's running bias-bias Gram entry counts its raters.
            for (uint32_t i = 0; i < NI; i++) {
                int raters = 0;
                for (int u = 0; u < NU; u++) {
                    for (uint32_t j = 0; j < us[u].n; j++) {
                        raters += us[u].items[j] == i;
                    }
                }
                double g = a->stats.carry != NULL && a->stats.carry[i] != NULL
                    ? a->stats.carry[i][fri_packed_index(D, K, K)]
                    : 0.0;
                cr_assert(g <= raters + 1e-3,
                    "round %d item %u: %g raters "
                    "in the sum, %d exist",
                    rnd, i, g, raters);
            }
        }
    }
    cr_assert_geq(resync, 5, "the attacker was put back in step %llu times",
        (unsigned long long)resync);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rejected[FRI_REJ_RESYNC], resync);
    fri_agg_destroy(a);
}

Test(influence, latest_plain_negative_counts_cannot_stop_the_model)
{
    latest_attack(0);
}

Test(influence, latest_plain_reports_cannot_add_up) { latest_attack(1); }
