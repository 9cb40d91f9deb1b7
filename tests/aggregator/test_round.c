// Round state machine (fake clock), refusals, and the exactness of the
// federated item solve against a direct centralized solve.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "linalg.h"
#include "mf.h"
#include "rng.h"
#include "state_dir.h"

#define K 2
#define D (K + 1)
#define NI 5

static void
key(uint8_t pk[FRI_AGG_KEYBYTES], uint32_t i)
{
    memset(pk, 0, FRI_AGG_KEYBYTES);
    // Spread the bytes so the cohort hash sees distinct keys.
    for (int b = 0; b < FRI_AGG_KEYBYTES; b++) {
        pk[b] = (uint8_t)((i * 2654435761u) >> ((b % 4) * 8)) ^ (uint8_t)b;
    }
    pk[31] = (uint8_t)i;
    pk[30] = (uint8_t)(i >> 8);
}

static void
base_cfg(fri_agg_config *c)
{
    fri_agg_config_init(c);
    c->n_items           = NI;
    c->k                 = K;
    c->clients_per_round = 3;
    c->min_clients       = 2;
    c->round_deadline_ms = 1000;
}

static fri_agg *
make(const fri_agg_config *c, uint64_t now)
{
    fri_agg *a = NULL;
    char     err[256];
    fr_err   rv = fri_agg_create(&a, c, now, err, sizeof(err));
    cr_assert_eq(rv, FR_OK, "create: %s: %s", fr_errname(rv), err);
    return a;
}

// A plausible ALS update for items {0, 2} built from fixed numbers.
typedef struct upd {
    uint32_t       items[NI];
    float          gram[21];
    float          rows[NI * D];
    fri_agg_update u;
} upd;

static void
make_upd(upd *x, uint64_t round, float p0)
{
    memset(x, 0, sizeof(*x));
    float xu[D] = { p0, 0.5f, 1.0f };
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            x->gram[fri_packed_index(D, a, b)] = xu[a] * xu[b];
        }
    }
    x->items[0] = 0;
    x->items[1] = 2;
    for (int j = 0; j < 2; j++) {
        for (int r = 0; r < D; r++) {
            x->rows[j * D + r] = xu[r] * (float)(j + 1);
        }
    }
    x->u.round       = round;
    x->u.n           = 2;
    x->u.items       = x->items;
    x->u.gram        = x->gram;
    x->u.gram_len    = fri_packed_len(D);
    x->u.rows        = x->rows;
    x->u.rows_len    = 2 * D;
    x->u.sum_ratings = 7.0;
    x->u.count       = 2;
}

static uint64_t
version_of(fri_agg *a)
{
    uint64_t v = 0;
    fri_agg_model_copy(a, NULL, NULL, 0, NULL, 0, &v);
    return v;
}

Test(agg_config, rejects_bad_values)
{
    fri_agg_config c;
    char           err[256];
#define BAD(stmt, needle)                                                     \
    do {                                                                      \
        base_cfg(&c);                                                         \
        stmt;                                                                 \
        err[0] = 0;                                                           \
        cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL,   \
            "accepted: " #stmt);                                              \
        cr_assert(strstr(err, needle) != NULL, "message '%s' lacks '%s'",     \
            err, needle);                                                     \
    } while (0)
    base_cfg(&c);
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_OK, "%s", err);
    BAD(c.n_items = 0, "items");
    BAD(c.k = 0, "k must");
    BAD(c.k = 100000, "k must");
    BAD(c.reg = -1.0f, "reg");
    BAD(c.reg = NAN, "reg");
    BAD(c.fraction = 1.5, "fraction");
    BAD(c.fraction = -0.1, "fraction");
    BAD(c.min_clients = 0, "min-clients");
    BAD(c.min_clients = 4, "exceeds clients-per-round");
    BAD(c.round_deadline_ms = 10, "round-deadline");
    BAD(c.server_lr = 0.0f, "server-lr");
    BAD(c.momentum = 1.0f, "momentum");
    BAD(c.algo = (fri_agg_algo)7, "algo");
    BAD((c.implicit = 1, c.algo = FRI_AGG_GRAD), "implicit");
    BAD(c.server_opt = (fri_agg_opt)9, "server-opt");
    BAD(c.max_sessions = 0, "max-sessions");
    BAD((c.n_allow = 2, c.allow = NULL), "allow");
#undef BAD
    fri_agg *a = (fri_agg *)1;
    base_cfg(&c);
    c.k = 0;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_EINVAL);
    cr_assert_null(a);
}

Test(agg_round, cohort_fill_closes_round)
{
    fri_agg_config c;
    base_cfg(&c);
    fri_agg *a = make(&c, 1000);
    uint8_t  pk[5][FRI_AGG_KEYBYTES];
    for (int i = 0; i < 5; i++) {
        key(pk[i], (uint32_t)i);
    }
    fri_agg_task t;
    uint64_t     round = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(fri_agg_checkin(a, 1000, pk[i], &t), FR_OK);
        cr_assert(t.has_task, "client %d not selected", i);
        round = t.round;
        cr_assert_eq(t.model_version, 0);
        cr_assert_eq(t.ms_left, 1000);
    }
    // Cohort full: the fourth gets no task and a retry hint.
    cr_assert_eq(fri_agg_checkin(a, 1100, pk[3], &t), FR_OK);
    cr_assert(!t.has_task);
    cr_assert(t.retry_after_ms >= 900);
    // Checking in again is idempotent for a member.
    cr_assert_eq(fri_agg_checkin(a, 1100, pk[0], &t), FR_OK);
    cr_assert(t.has_task);
    cr_assert_eq(t.ms_left, 900);
    upd x;
    for (int i = 0; i < 3; i++) {
        make_upd(&x, round, 0.1f * (float)i);
        cr_assert_eq(version_of(a), 0);
        cr_assert_eq(fri_agg_submit(a, 1200, pk[i], &x.u), FR_OK);
    }
    // The third report completed the cohort: solved, next round open.
    cr_assert_eq(version_of(a), 1);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.round, round + 1);
    cr_assert_eq(m.rounds_completed, 1);
    cr_assert_eq(m.updates_accepted, 3);
    cr_assert(m.round_open);
    cr_assert_eq(m.cohort, 0);
    cr_assert(fabsf(m.mu - 3.5f) < 1e-6f, "mu %f", (double)m.mu);
    // The new round has room again.
    cr_assert_eq(fri_agg_checkin(a, 1300, pk[4], &t), FR_OK);
    cr_assert(t.has_task);
    cr_assert_eq(t.round, round + 1);
    cr_assert_eq(t.model_version, 1);
    fri_agg_destroy(a);
}

Test(agg_round, deadline_closes_with_min_clients)
{
    fri_agg_config c;
    base_cfg(&c);
    fri_agg     *a = make(&c, 0);
    uint8_t      pk[3][FRI_AGG_KEYBYTES];
    fri_agg_task t;
    upd          x;
    for (int i = 0; i < 3; i++) {
        key(pk[i], (uint32_t)i + 10);
        cr_assert_eq(fri_agg_checkin(a, 10, pk[i], &t), FR_OK);
        cr_assert(t.has_task);
    }
    for (int i = 0; i < 2; i++) { // the third member vanishes
        make_upd(&x, t.round, 0.3f);
        cr_assert_eq(fri_agg_submit(a, 20, pk[i], &x.u), FR_OK);
    }
    fri_agg_tick(a, 999);
    cr_assert_eq(version_of(a), 0, "closed before the deadline");
    fri_agg_tick(a, 1000);
    cr_assert_eq(version_of(a), 1, "not closed at the deadline");
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_completed, 1);
    cr_assert_eq(m.rounds_abandoned, 0);
    cr_assert_eq(m.round, t.round + 1);
    // The straggler's update is now late.
    make_upd(&x, t.round, 0.3f);
    cr_assert_eq(fri_agg_submit(a, 1001, pk[2], &x.u), FR_ELATE);
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rejected[FRI_REJ_LATE], 1);
    fri_agg_destroy(a);
}

Test(agg_round, abandons_below_min_clients)
{
    fri_agg_config c;
    base_cfg(&c);
    fri_agg *a = make(&c, 0);
    float    Q0[NI * K], Q1[NI * K];
    fri_agg_model_copy(a, NULL, NULL, 0, Q0, NI * K, NULL);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    upd          x;
    key(pk, 77);
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    make_upd(&x, t.round, 0.3f);
    cr_assert_eq(fri_agg_submit(a, 5, pk, &x.u), FR_OK);
    fri_agg_tick(a, 1000);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rounds_abandoned, 1);
    cr_assert_eq(m.rounds_completed, 0);
    cr_assert_eq(m.model_version, 0);
    cr_assert_eq(m.round, t.round + 1, "reopened with a new id");
    fri_agg_model_copy(a, NULL, NULL, 0, Q1, NI * K, NULL);
    cr_assert_eq(memcmp(Q0, Q1, sizeof(Q0)), 0, "model changed");
    // The abandoned round's partial sums are gone: a full new round gives
    // the same model as on a fresh aggregator.
    fri_agg_task t2;
    cr_assert_eq(fri_agg_checkin(a, 1000, pk, &t2), FR_OK);
    cr_assert(t2.has_task);
    cr_assert_eq(t2.round, t.round + 1);
    // The old round id is late now.
    cr_assert_eq(fri_agg_submit(a, 1001, pk, &x.u), FR_ELATE);
    fri_agg_destroy(a);
}

Test(agg_round, refusals_have_the_right_codes)
{
    fri_agg_config c;
    base_cfg(&c);
    fri_agg *a = make(&c, 0);
    uint8_t  pk[4][FRI_AGG_KEYBYTES];
    for (int i = 0; i < 4; i++) {
        key(pk[i], 100 + (uint32_t)i);
    }
    fri_agg_task t;
    cr_assert_eq(fri_agg_checkin(a, 0, pk[0], &t), FR_OK);
    cr_assert_eq(fri_agg_checkin(a, 0, pk[1], &t), FR_OK);
    upd x;
    make_upd(&x, t.round, 0.2f);
    cr_assert_eq(fri_agg_submit(a, 1, pk[0], &x.u), FR_OK);
    cr_assert_eq(fri_agg_submit(a, 2, pk[0], &x.u), FR_EDUP);
    // A reported member gets no second task this round.
    fri_agg_task t2;
    cr_assert_eq(fri_agg_checkin(a, 3, pk[0], &t2), FR_OK);
    cr_assert(!t2.has_task);
    // Never checked in: not a member.
    cr_assert_eq(fri_agg_submit(a, 3, pk[2], &x.u), FR_EDENIED);
    // Malformed: item out of range, duplicate item, NaN, wrong lengths.
    upd bad;
    make_upd(&bad, t.round, 0.2f);
    bad.items[1] = NI;
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_EPROTO);
    make_upd(&bad, t.round, 0.2f);
    bad.items[1] = 0;
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_EPROTO);
    make_upd(&bad, t.round, 0.2f);
    bad.rows[1] = NAN;
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_EPROTO);
    make_upd(&bad, t.round, 0.2f);
    bad.u.rows_len--;
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_EPROTO);
    make_upd(&bad, t.round, 0.2f);
    bad.u.gram_len = 4;
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_EPROTO);
    // A round id never issued.
    make_upd(&bad, t.round + 5, 0.2f);
    cr_assert_eq(fri_agg_submit(a, 4, pk[1], &bad.u), FR_ESTATE);
    // The first refused update ended pk[1]'s part in the round (a member
    // sending garbage must not hold the round open; test_influence.c).
    make_upd(&x, t.round, 0.4f);
    cr_assert_eq(fri_agg_submit(a, 5, pk[1], &x.u), FR_EDUP);

    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.rejected[FRI_REJ_DUP], 2);
    cr_assert_eq(m.rejected[FRI_REJ_NOT_MEMBER], 1);
    cr_assert_eq(m.rejected[FRI_REJ_MALFORMED], 5);
    cr_assert_eq(m.rejected[FRI_REJ_STATE], 1);
    cr_assert_eq(m.updates_accepted, 1);
    char   buf[8192];
    size_t len = 0;
    cr_assert_eq(
        fri_agg_metrics_prometheus(&m, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf,
                  "fedrec_updates_rejected_total{reason=\"duplicate\"}"
                  " 2\n")
        != NULL);
    cr_assert(strstr(buf, "fedrec_updates_accepted_total 1\n") != NULL);
    cr_assert(strstr(buf, "fedrec_round 1\n") != NULL, "%s", buf);
    cr_assert_eq(fri_agg_metrics_prometheus(&m, buf, 100, &len), FR_ENOSPC);
    cr_assert_eq(fri_agg_metrics_json(&m, buf, sizeof(buf), &len), FR_OK);
    cr_assert(strstr(buf, "\"duplicate\":2") != NULL, "%s", buf);
    fri_agg_destroy(a);
}

// A catalog that grows (fri_agg_grow_items): while the growth is pending
// an item of the new range is still out of range (no device has a model
// with it), after the next completed round it is in range, and an item
// beyond the new size is refused. Each refusal costs only its device's
// part: both rounds complete.
Test(agg_round, items_beyond_the_catalog_before_and_after_growth)
{
    fri_agg_config c;
    base_cfg(&c);
    c.min_clients = 1; // round 1 keeps one good report of three
    fri_agg *a = make(&c, 0);
    uint8_t  pk[3][FRI_AGG_KEYBYTES];
    for (int i = 0; i < 3; i++) {
        key(pk[i], 300 + (uint32_t)i);
    }
    char err[256];
    cr_assert_eq(fri_agg_grow_items(a, NI + 2, err, sizeof(err)), FR_OK, "%s",
        err);
    uint64_t now = 0;
    for (int r = 0; r < 2; r++) {
        fri_agg_task t;
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(fri_agg_checkin(a, now, pk[i], &t), FR_OK);
            cr_assert(t.has_task);
        }
        upd x;
        make_upd(&x, t.round, 0.2f);
        x.items[1] = r == 0 ? NI : NI + 1; // pending range, then grown
        cr_assert_eq(fri_agg_submit(a, now + 1, pk[0], &x.u),
            r == 0 ? FR_EPROTO : FR_OK, "round %d", r + 1);
        make_upd(&x, t.round, 0.3f);
        x.items[1] = NI + 2; // beyond even the grown catalog
        cr_assert_eq(fri_agg_submit(a, now + 1, pk[1], &x.u), FR_EPROTO);
        make_upd(&x, t.round, 0.4f);
        cr_assert_eq(fri_agg_submit(a, now + 1, pk[2], &x.u), FR_OK);
        fri_agg_tick(a, now + c.round_deadline_ms + 1);
        fri_agg_metrics m;
        fri_agg_metrics_get(a, &m);
        cr_assert_eq(m.n_items, NI + 2, "grown after the first round");
        cr_assert_eq(m.rounds_completed, (uint64_t)r + 1);
        now += 10 * c.round_deadline_ms;
    }
    fri_agg_destroy(a);
}

Test(agg_round, fraction_sampling_is_seeded_and_stable)
{
    fri_agg_config c;
    base_cfg(&c);
    c.clients_per_round = 0;
    c.fraction          = 0.3;
    fri_agg *a          = make(&c, 0);
    int      selected   = 0;
    for (uint32_t i = 0; i < 400; i++) {
        uint8_t      pk[FRI_AGG_KEYBYTES];
        fri_agg_task t, t2;
        key(pk, i);
        cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
        cr_assert_eq(fri_agg_checkin(a, 1, pk, &t2), FR_OK);
        cr_assert_eq(t.has_task, t2.has_task, "decision changed");
        selected += t.has_task;
    }
    cr_assert(selected > 80 && selected < 160, "selected %d of 400", selected);
    fri_agg_metrics m;
    fri_agg_metrics_get(a, &m);
    cr_assert_eq(m.cohort, (uint32_t)selected);
    fri_agg_destroy(a);
}

Test(agg_round, everyone_mode_and_rounds_limit)
{
    fri_agg_config c;
    base_cfg(&c);
    c.clients_per_round = 0;
    c.min_clients       = 1;
    c.rounds            = 2;
    fri_agg *a          = make(&c, 0);
    uint64_t now        = 0;
    for (int r = 0; r < 2; r++) {
        for (uint32_t i = 0; i < 50; i++) {
            uint8_t      pk[FRI_AGG_KEYBYTES];
            fri_agg_task t;
            key(pk, i);
            cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
            cr_assert(t.has_task, "round %d client %u", r, i);
            upd x;
            make_upd(&x, t.round, 0.01f * (float)i);
            cr_assert_eq(fri_agg_submit(a, now, pk, &x.u), FR_OK);
        }
        cr_assert(!fri_agg_done(a));
        now += 1000;
        fri_agg_tick(a, now);
    }
    cr_assert(fri_agg_done(a));
    cr_assert_eq(version_of(a), 2);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    key(pk, 1);
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(!t.has_task);
    fri_agg_destroy(a);
}

// Federated ALS == centralized item solve on the same users.
Test(agg_solve, als_equals_centralized_item_solve)
{
    enum { NU = 6, NIT = 7, KK = 3, DD = KK + 1 };
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = NIT;
    c.k                 = KK;
    c.clients_per_round = NU;
    c.min_clients       = 1;
    fri_agg *a          = make(&c, 0);
    float    Q0[NIT * KK];
    fri_agg_model_copy(a, NULL, NULL, 0, Q0, NIT * KK, NULL);

    fri_rng r;
    fri_rng_seed(&r, 9);
    float    P[NU][KK], BU[NU];
    uint32_t items[NU][NIT];
    float    ratings[NU][NIT];
    size_t   n[NU];
    double   sum = 0;
    size_t   cnt = 0;
    for (int u = 0; u < NU; u++) {
        for (int f = 0; f < KK; f++) {
            P[u][f] = (float)fri_rng_normal(&r) * 0.5f;
        }
        BU[u] = (float)fri_rng_normal(&r) * 0.2f;
        n[u]  = 0;
        for (uint32_t i = 0; i < NIT; i++) {
            if (fri_rng_uniform(&r) < 0.6 || i == (uint32_t)u) {
                items[u][n[u]]   = i;
                ratings[u][n[u]] = 1.0f + (float)fri_rng_below(&r, 5);
                sum += ratings[u][n[u]];
                cnt++;
                n[u]++;
            }
        }
    }
    float mu_new = (float)(sum / (double)cnt);

    // Federated: every user sends stats computed with the served mu. The
    // first round is a census (only mu is taken), the second a full solve.
    float mu, bi[NIT], Q[NIT * KK];
    for (int rnd = 0; rnd < 2; rnd++) {
        float        served = rnd == 0 ? 0.0f : mu_new;
        fri_agg_task t;
        for (int u = 0; u < NU; u++) {
            uint8_t pk[FRI_AGG_KEYBYTES];
            key(pk, (uint32_t)u + 500);
            cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
            cr_assert(t.has_task);
            float gram[fri_packed_len(DD)];
            float h[NIT * DD];
            cr_assert_eq(
                fri_mf_user_item_stats(gram, fri_packed_len(DD), h, n[u] * DD,
                    P[u], BU[u], KK, served, ratings[u], n[u]),
                FR_OK);
            double s = 0;
            for (size_t j = 0; j < n[u]; j++) {
                s += ratings[u][j];
            }
            fri_agg_update up = { .round = t.round,
                .n                       = (uint32_t)n[u],
                .items                   = items[u],
                .gram                    = gram,
                .gram_len                = fri_packed_len(DD),
                .rows                    = h,
                .rows_len                = n[u] * DD,
                .sum_ratings             = s,
                .count                   = (double)n[u] };
            cr_assert_eq(fri_agg_submit(a, 1 + (uint64_t)rnd, pk, &up), FR_OK);
        }
        cr_assert_eq(version_of(a), (uint64_t)rnd + 1);
        if (rnd == 0) {
            // Census: mu is set, item factors and biases are untouched.
            fri_agg_model_copy(a, &mu, bi, NIT, Q, NIT * KK, NULL);
            cr_assert(fabsf(mu - mu_new) < 1e-6f);
            cr_assert(memcmp(Q, Q0, sizeof(Q)) == 0);
            for (uint32_t i = 0; i < NIT; i++) {
                cr_assert_eq(bi[i], 0.0f);
            }
        }
    }
    fri_agg_model_copy(a, &mu, bi, NIT, Q, NIT * KK, NULL);
    cr_assert(fabsf(mu - mu_new) < 1e-6f);

    // Centralized: sum the same statistics per item with the new mu.
    size_t gl = fri_packed_len(DD);
    for (uint32_t i = 0; i < NIT; i++) {
        float G[fri_packed_len(DD)], H[DD];
        int   any = 0;
        memset(G, 0, sizeof(G));
        memset(H, 0, sizeof(H));
        for (int u = 0; u < NU; u++) {
            for (size_t j = 0; j < n[u]; j++) {
                if (items[u][j] != i) {
                    continue;
                }
                float gram[fri_packed_len(DD)], h[DD];
                cr_assert_eq(fri_mf_user_item_stats(gram, gl, h, DD, P[u],
                                 BU[u], KK, mu_new, &ratings[u][j], 1),
                    FR_OK);
                for (size_t e = 0; e < gl; e++) {
                    G[e] += gram[e];
                }
                for (int e = 0; e < DD; e++) {
                    H[e] += h[e];
                }
                any = 1;
            }
        }
        float q[KK], b;
        if (any) {
            cr_assert_eq(fri_mf_item_solve(q, &b, G, H, KK, c.reg, c.reg_bias,
                             c.weighted, NULL, 0),
                FR_OK);
        } else {
            memcpy(q, Q0 + i * KK, sizeof(q));
            b = 0.0f;
        }
        for (int f = 0; f < KK; f++) {
            cr_assert(fabsf(q[f] - Q[i * KK + f]) < 1e-4f,
                "item %u factor %d: want %f got %f", i, f, (double)q[f],
                (double)Q[i * KK + f]);
        }
        cr_assert(fabsf(b - bi[i]) < 1e-4f, "item %u bias: want %f got %f", i,
            (double)b, (double)bi[i]);
    }
    fri_agg_destroy(a);
}

// The iALS model a test expects, item by item (Hu, Koren, Volinsky 2008):
// q_i = (gall + sum_u w_u (c_ui - 1) p_u p_u^T + reg I)^-1 sum_u w_u c_ui p_u
// with c_ui = 1 + alpha r_ui over the users who touched i (P: n_users x k,
// items and vals: n_users rows of `stride`, n[u] used; w NULL: all 1),
// checked against the aggregator's Q within 1e-3 relative.
static void
check_ials_items(const float *Q, uint32_t n_items, int k, int n_users,
                 const float *P, const uint32_t *items, const float *vals,
                 size_t stride, const size_t *n, const float *w, float alpha,
                 const float *gall, float reg)
{
    enum { MAXK = 8 };
    cr_assert(k <= MAXK);
    for (uint32_t i = 0; i < n_items; i++) {
        float gw[MAXK * (MAXK + 1) / 2] = { 0 }, h[MAXK] = { 0 };
        for (int u = 0; u < n_users; u++) {
            const float *p  = P + (size_t) u * k;
            float        wu = w != NULL ? w[u] : 1.0f;
            for (size_t j = 0; j < n[u]; j++) {
                if (items[u * stride + j] != i) {
                    continue;
                }
                float cc = 1.0f + alpha * vals[u * stride + j];
                for (int x = 0; x < k; x++) {
                    for (int y = x; y < k; y++) {
                        gw[fri_packed_index(k, x, y)] +=
                            wu * (cc - 1.0f) * p[x] * p[y];
                    }
                    h[x] += wu * cc * p[x];
                }
            }
        }
        float q[MAXK];
        cr_assert_eq(
            fri_mf_implicit_item_solve(q, gall, gw, h, k, reg, NULL, 0),
            FR_OK);
        for (int f = 0; f < k; f++) {
            cr_assert(fabsf(q[f] - Q[i * k + f]) < 1e-3f * (1 + fabsf(q[f])),
                      "item %u: want %f got %f", i, (double) q[f],
                      (double) Q[i * k + f]);
        }
    }
}

Test(agg_solve, implicit_equals_centralized_item_solve)
{
    enum { NU = 5, NIT = 6, KK = 2, DD = KK + 1 };
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = NIT;
    c.k                 = KK;
    c.implicit          = 1;
    c.clients_per_round = NU;
    fri_agg *a          = make(&c, 0);
    fri_rng  r;
    fri_rng_seed(&r, 3);
    float    P[NU][KK];
    uint32_t items[NU][NIT];
    float    vals[NU][NIT];
    size_t   n[NU];
    size_t   gk = fri_packed_len(KK);
    float    gall[fri_packed_len(KK)];
    memset(gall, 0, sizeof(gall));
    fri_agg_task t;
    for (int u = 0; u < NU; u++) {
        for (int f = 0; f < KK; f++) {
            P[u][f] = (float)fri_rng_normal(&r) * 0.5f;
        }
        n[u] = 0;
        for (uint32_t i = 0; i < NIT; i++) {
            if (fri_rng_uniform(&r) < 0.5 || i == (uint32_t)u) {
                items[u][n[u]] = i;
                vals[u][n[u]]  = 1.0f + (float)fri_rng_below(&r, 3);
                n[u]++;
            }
        }
        float gram[fri_packed_len(KK)], rows[NIT * DD];
        cr_assert_eq(fri_mf_implicit_user_item_stats(gram, gk, rows, n[u] * DD,
                         P[u], KK, vals[u], n[u], c.alpha),
            FR_OK);
        for (size_t e = 0; e < gk; e++) {
            gall[e] += gram[e];
        }
        uint8_t pk[FRI_AGG_KEYBYTES];
        key(pk, (uint32_t)u + 900);
        cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
        fri_agg_update up = { .round = t.round,
            .n                       = (uint32_t)n[u],
            .items                   = items[u],
            .gram                    = gram,
            .gram_len                = gk,
            .rows                    = rows,
            .rows_len                = n[u] * DD,
            .count                   = (double)n[u] };
        cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_OK);
    }
    cr_assert_eq(version_of(a), 1);
    float Q[NIT * KK];
    fri_agg_model_copy(a, NULL, NULL, 0, Q, NIT * KK, NULL);
    check_ials_items(Q, NIT, KK, NU, &P[0][0], &items[0][0], &vals[0][0], NIT,
                     n, NULL, c.alpha, gall, c.reg);
    fri_agg_destroy(a);
}

Test(agg_solve, grad_sgd_and_adam_steps)
{
    for (int opt = 0; opt < 3; opt++) {
        fri_agg_config c;
        base_cfg(&c);
        c.algo              = FRI_AGG_GRAD;
        c.server_opt        = (fri_agg_opt)opt;
        c.server_lr         = 0.5f;
        c.clients_per_round = 2;
        // Exact optimizer arithmetic with weights beyond the row counts:
        // no robust bounds.
        c.robust            = 0;
        fri_agg *a          = make(&c, 0);
        float    Q0[NI * K], b0[NI], Q1[NI * K], b1[NI];
        fri_agg_model_copy(a, NULL, b0, NI, Q0, NI * K, NULL);
        float    g[2][2 * D] = { { 1, 2, 3, 4, 5, 6 }, { -1, 0, 1, 2, 2, 2 } };
        uint32_t it[2][2]    = { { 0, 3 }, { 3, 4 } };
        // Weights are interaction counts: at most the rows sent.
        double   w[2]        = { 2, 1 };
        fri_agg_task t;
        for (int u = 0; u < 2; u++) {
            uint8_t pk[FRI_AGG_KEYBYTES];
            key(pk, (uint32_t)u + 40);
            cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
            fri_agg_update up = { .round = t.round,
                .n                       = 2,
                .items                   = it[u],
                .rows                    = g[u],
                .rows_len                = 2 * D,
                .weight                  = w[u] };
            cr_assert_eq(fri_agg_submit(a, 1, pk, &up), FR_OK);
        }
        fri_agg_model_copy(a, NULL, b1, NI, Q1, NI * K, NULL);
        // Averaged gradient per item: sum of rows / (2 + 1).
        float avg[NI][D];
        memset(avg, 0, sizeof(avg));
        for (int u = 0; u < 2; u++) {
            for (int j = 0; j < 2; j++) {
                for (int e = 0; e < D; e++) {
                    avg[it[u][j]][e] += g[u][j * D + e] / 3.0f;
                }
            }
        }
        for (int i = 0; i < NI; i++) {
            for (int e = 0; e < D; e++) {
                float before = e < K ? Q0[i * K + e] : b0[i];
                float after  = e < K ? Q1[i * K + e] : b1[i];
                float want;
                if (opt == FRI_AGG_OPT_ADAM) {
                    // First Adam step: lr * sign(g) (bias-corrected).
                    want = avg[i][e] == 0.0f
                        ? before
                        : before - 0.5f * (avg[i][e] > 0 ? 1.0f : -1.0f);
                } else {
                    // Momentum's first step equals plain SGD's.
                    want = before - 0.5f * avg[i][e];
                }
                cr_assert(fabsf(after - want) < 1e-4f,
                    "opt %d item %d e %d: want %f got %f", opt, i, e,
                    (double)want, (double)after);
            }
        }
        fri_agg_destroy(a);
    }
}

// A client that already reported polls at the normal interval, not at the
// round's deadline: the round may close as soon as everyone reported, and
// waiting out the deadline would make it miss most of the next round.
Test(agg_round, contributed_client_polls_at_the_normal_interval)
{
    fri_agg_config c;
    base_cfg(&c);
    c.round_deadline_ms = 60000;
    c.retry_after_ms    = 250;
    fri_agg     *a = make(&c, 0);
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    upd          x;
    key(pk, 1);
    cr_assert_eq(fri_agg_checkin(a, 0, pk, &t), FR_OK);
    cr_assert(t.has_task);
    make_upd(&x, t.round, 0.3f);
    cr_assert_eq(fri_agg_submit(a, 1, pk, &x.u), FR_OK);
    cr_assert_eq(fri_agg_checkin(a, 2, pk, &t), FR_OK);
    cr_assert(!t.has_task);
    cr_assert_eq(t.retry_after_ms, 250u);
    fri_agg_destroy(a);
}

// One user's explicit-ALS statistics for the items it lists, against the
// served mu, submitted to round `round`.
static void
submit_stats(fri_agg *a, uint32_t who, uint64_t now, float mu,
             const uint32_t *items, const float *ratings, size_t n,
             const float p[K], float bu)
{
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    float        gram[21], h[NI * D];
    double       s = 0;
    key(pk, who);
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(t.has_task);
    cr_assert_eq(fri_mf_user_item_stats(gram, fri_packed_len(D), h, n * D, p,
                                        bu, K, mu, ratings, n),
                 FR_OK);
    for (size_t j = 0; j < n; j++) {
        s += ratings[j];
    }
    fri_agg_update up = { .round       = t.round,
                          .n           = (uint32_t) n,
                          .items       = items,
                          .gram        = gram,
                          .gram_len    = fri_packed_len(D),
                          .rows        = h,
                          .rows_len    = n * D,
                          .sum_ratings = s,
                          .count       = (double) n };
    cr_assert_eq(fri_agg_submit(a, now, pk, &up), FR_OK);
}

// Partial participation: with stats_forget f the item solve uses
// (1 - f) * carried sums + this round's sums (mu held fixed here, so no
// re-centring), items seen only in an earlier round keep being solved from
// their carried statistics.
Test(agg_solve, carried_statistics_with_forgetting)
{
    fri_agg_config c;
    base_cfg(&c);
    c.n_items           = 3;
    c.clients_per_round = 2;
    c.min_clients       = 1;
    c.stats_forget      = 0.5f;
    fri_agg *a          = make(&c, 0);
    // Every user's ratings average 3, so mu stays 3 after the census.
    const uint32_t i01[2] = { 0, 1 }, i12[2] = { 1, 2 };
    const float    r24[2] = { 2.0f, 4.0f }, r51[2] = { 5.0f, 1.0f };
    const float    pa[K] = { 0.3f, -0.2f }, pb[K] = { -0.1f, 0.4f };
    const float    pc[K] = { 0.5f, 0.1f }, pd[K] = { 0.2f, 0.2f };
    submit_stats(a, 1, 1, 0.0f, i01, r24, 2, pa, 0.1f); // census round
    submit_stats(a, 2, 1, 0.0f, i12, r51, 2, pb, 0.0f);
    cr_assert_eq(version_of(a), 1);
    submit_stats(a, 3, 2, 3.0f, i01, r24, 2, pa, 0.1f); // round A: 0, 1
    submit_stats(a, 4, 2, 3.0f, i01, r51, 2, pb, -0.2f);
    cr_assert_eq(version_of(a), 2);
    submit_stats(a, 5, 3, 3.0f, i12, r24, 2, pc, 0.3f); // round B: 1, 2
    submit_stats(a, 6, 3, 3.0f, i12, r51, 2, pd, 0.0f);
    cr_assert_eq(version_of(a), 3);

    // Expected: G_i = 0.5 * G_A,i + G_B,i (same for h), solved directly.
    struct {
        const float    *p;
        float           bu;
        const uint32_t *items;
        const float    *r;
        float           w;
    } users[4] = { { pa, 0.1f, i01, r24, 0.5f }, { pb, -0.2f, i01, r51, 0.5f },
                   { pc, 0.3f, i12, r24, 1.0f }, { pd, 0.0f, i12, r51, 1.0f } };
    float mu, bi[3], Q[3 * K];
    fri_agg_model_copy(a, &mu, bi, 3, Q, 3 * K, NULL);
    cr_assert(fabsf(mu - 3.0f) < 1e-6f, "mu %f", (double) mu);
    for (uint32_t i = 0; i < 3; i++) {
        float G[21] = { 0 }, H[D] = { 0 };
        for (int u = 0; u < 4; u++) {
            for (int j = 0; j < 2; j++) {
                if (users[u].items[j] != i) {
                    continue;
                }
                float g[21], h[D];
                cr_assert_eq(fri_mf_user_item_stats(
                                 g, fri_packed_len(D), h, D, users[u].p,
                                 users[u].bu, K, 3.0f, &users[u].r[j], 1),
                             FR_OK);
                for (size_t e = 0; e < fri_packed_len(D); e++) {
                    G[e] += users[u].w * g[e];
                }
                for (int e = 0; e < D; e++) {
                    H[e] += users[u].w * h[e];
                }
            }
        }
        float q[K], b;
        cr_assert_eq(fri_mf_item_solve(q, &b, G, H, K, c.reg, c.reg_bias,
                                       c.weighted, NULL, 0),
                     FR_OK);
        for (int f = 0; f < K; f++) {
            cr_assert(fabsf(q[f] - Q[i * K + f]) < 1e-5f,
                      "item %u factor %d: want %f got %f", i, f,
                      (double) q[f], (double) Q[i * K + f]);
        }
        cr_assert(fabsf(b - bi[i]) < 1e-5f, "item %u bias: want %f got %f",
                  i, (double) b, (double) bi[i]);
    }
    fri_agg_destroy(a);
}

Test(agg_config, stats_forget_range_and_algorithm)
{
    fri_agg_config c;
    char           err[256];
    base_cfg(&c);
    c.stats_forget = 0.0f;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "stats-forget") != NULL, "%s", err);
    c.stats_forget = 1.5f;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    c.stats_forget = 0.1f;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_OK, "%s",
                 err);
    c.implicit = 1; // iALS carries too
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_OK, "%s",
                 err);
    c.implicit = 0;
    c.algo     = FRI_AGG_GRAD;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "ALS") != NULL, "%s", err);
}

// iALS with partial cohorts: the item solve reads the carried sums,
// S = (1 - f) S + round sums, for every item's statistics and for the
// Gram of every device (Y^T Y), and the carried state survives a restart
// from the checkpoint.
enum { ICU = 6, ICI = 5, ICK = 2, ICP = ICK * (ICK + 1) / 2 };

static void
implicit_round(fri_agg *a, uint64_t now, int first, float P[ICU][ICK],
               uint32_t items[ICU][ICI], float vals[ICU][ICI], size_t n[ICU])
{
    const size_t gk = fri_packed_len(ICK);
    for (int u = first; u < first + 3; u++) {
        float gram[ICP], rows[ICI * (ICK + 1)];
        cr_assert_eq(fri_mf_implicit_user_item_stats(
                         gram, gk, rows, n[u] * (ICK + 1), P[u], ICK, vals[u],
                         n[u], 5.0f),
                     FR_OK);
        uint8_t      pk[FRI_AGG_KEYBYTES];
        fri_agg_task t;
        key(pk, (uint32_t) u + 700);
        cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
        cr_assert(t.has_task);
        fri_agg_update up = { .round    = t.round,
                              .n        = (uint32_t) n[u],
                              .items    = items[u],
                              .gram     = gram,
                              .gram_len = gk,
                              .rows     = rows,
                              .rows_len = n[u] * (ICK + 1),
                              .count    = (double) n[u] };
        cr_assert_eq(fri_agg_submit(a, now, pk, &up), FR_OK);
    }
}

Test(agg_solve, implicit_carried_statistics_with_forgetting)
{
    char dir[64];
    state_dir_make(dir, sizeof(dir), "/tmp/fr-agg-icarry-XXXXXX");
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = ICI;
    c.k                 = ICK;
    c.implicit          = 1;
    c.alpha             = 5.0f;
    c.clients_per_round = 3;
    c.stats_forget      = 0.5f;
    c.state_dir         = dir;
    fri_rng r;
    fri_rng_seed(&r, 11);
    float    P[ICU][ICK], vals[ICU][ICI];
    uint32_t items[ICU][ICI];
    size_t   n[ICU];
    for (int u = 0; u < ICU; u++) {
        for (int f = 0; f < ICK; f++) {
            P[u][f] = (float) fri_rng_normal(&r) * 0.5f;
        }
        n[u] = 0;
        // Users 0..2 (round 1) never touch item 4; users 3..5 (round 2)
        // never touch item 0: both are solved from carried sums alone.
        for (uint32_t i = 0; i < ICI; i++) {
            if ((u < 3 && i == 4) || (u >= 3 && i == 0)) {
                continue;
            }
            if (fri_rng_uniform(&r) < 0.6 || i == (uint32_t) (u % 4) + 1) {
                items[u][n[u]] = i;
                vals[u][n[u]]  = 1.0f + (float) fri_rng_below(&r, 4);
                n[u]++;
            }
        }
    }
    fri_agg *a = make(&c, 0);
    implicit_round(a, 1, 0, P, items, vals, n);
    cr_assert_eq(version_of(a), 1);
    implicit_round(a, 2, 3, P, items, vals, n);
    cr_assert_eq(version_of(a), 2);
    float Q[ICI * ICK];
    fri_agg_model_copy(a, NULL, NULL, 0, Q, ICI * ICK, NULL);
    // Expected: 0.5 * (round 1) + (round 2), solved directly.
    const float w[ICU]    = { 0.5f, 0.5f, 0.5f, 1.0f, 1.0f, 1.0f };
    float       gall[ICP] = { 0 };
    for (int u = 0; u < ICU; u++) {
        for (int x = 0; x < ICK; x++) {
            for (int y = x; y < ICK; y++) {
                gall[fri_packed_index(ICK, x, y)] += w[u] * P[u][x] * P[u][y];
            }
        }
    }
    check_ials_items(Q, ICI, ICK, ICU, &P[0][0], &items[0][0], &vals[0][0],
                     ICI, n, w, c.alpha, gall, c.reg);
    // A restart from the checkpoint continues as if nothing happened: the
    // same round 3 on the uninterrupted and on the restarted aggregator.
    fri_agg *b = make(&c, 3);
    cr_assert_eq(version_of(b), 2);
    implicit_round(a, 4, 0, P, items, vals, n);
    implicit_round(b, 4, 0, P, items, vals, n);
    float Qa[ICI * ICK], Qb[ICI * ICK];
    fri_agg_model_copy(a, NULL, NULL, 0, Qa, ICI * ICK, NULL);
    fri_agg_model_copy(b, NULL, NULL, 0, Qb, ICI * ICK, NULL);
    cr_assert_eq(version_of(b), 3);
    for (int t = 0; t < ICI * ICK; t++) {
        cr_assert(fabsf(Qa[t] - Qb[t]) < 1e-5f, "entry %d: %f vs %f", t,
                  (double) Qa[t], (double) Qb[t]);
    }
    fri_agg_destroy(a);
    fri_agg_destroy(b);
    state_dir_remove(dir);
}

// Latest statistics: a device's report is the change of its contribution
// since its last one (what the client sends, computed here at the served
// mu; h is affine in mu, so re-centring the old one is recomputing it).
static void
submit_delta(fri_agg *a, uint32_t who, uint64_t now, float mu,
             const uint32_t *items, const float *ratings, size_t n,
             const float p[K], float bu, const float *p_old, float bu_old)
{
    uint8_t      pk[FRI_AGG_KEYBYTES];
    fri_agg_task t;
    float        gram[21], h[NI * D], g0[21], h0[NI * D];
    double       s = 0;
    key(pk, who);
    cr_assert_eq(fri_agg_checkin(a, now, pk, &t), FR_OK);
    cr_assert(t.has_task);
    cr_assert_eq(fri_mf_user_item_stats(gram, fri_packed_len(D), h, n * D, p,
                                        bu, K, mu, ratings, n),
                 FR_OK);
    if (p_old != NULL) {
        cr_assert_eq(fri_mf_user_item_stats(g0, fri_packed_len(D), h0, n * D,
                                            p_old, bu_old, K, mu, ratings, n),
                     FR_OK);
        for (size_t e = 0; e < fri_packed_len(D); e++) {
            gram[e] -= g0[e];
        }
        for (size_t e = 0; e < n * D; e++) {
            h[e] -= h0[e];
        }
    } else {
        for (size_t j = 0; j < n; j++) {
            s += ratings[j];
        }
    }
    fri_agg_update up = { .round       = t.round,
                          .n           = (uint32_t) n,
                          .items       = items,
                          .gram        = gram,
                          .gram_len    = fri_packed_len(D),
                          .rows        = h,
                          .rows_len    = n * D,
                          .sum_ratings = s,
                          .count       = p_old != NULL ? 0.0 : (double) n };
    cr_assert_eq(fri_agg_submit(a, now, pk, &up), FR_OK);
}

// The aggregator solves from the sum of every device's LATEST statistics,
// re-centred on the current mu: a device absent from a round still counts
// with its last report, a returning one replaces its own, a new one adds
// its ratings to mu (which moves, so the running h must be re-centred).
Test(agg_solve, latest_statistics_sum_of_latest)
{
    fri_agg_config c;
    base_cfg(&c);
    c.n_items           = 3;
    c.clients_per_round = 2;
    c.min_clients       = 1;
    c.stats_latest      = 1;
    fri_agg *a          = make(&c, 0);
    const uint32_t i01[2] = { 0, 1 }, i12[2] = { 1, 2 };
    const float    r24[2] = { 2.0f, 4.0f }, r51[2] = { 5.0f, 1.0f };
    const float    r55[2] = { 5.0f, 5.0f };
    const float    pa[K] = { 0.3f, -0.2f }, pb[K] = { -0.1f, 0.4f };
    const float    pa2[K] = { 0.5f, 0.1f }, pc[K] = { 0.2f, 0.2f };
    // Census (not recorded by devices, only mu taken): mu = 3.
    submit_delta(a, 1, 1, 0.0f, i01, r24, 2, pa, 0.1f, NULL, 0.0f);
    submit_delta(a, 2, 1, 0.0f, i12, r51, 2, pb, 0.0f, NULL, 0.0f);
    cr_assert_eq(version_of(a), 1);
    // Round 2: both report their first (whole) contribution at mu = 3.
    submit_delta(a, 1, 2, 3.0f, i01, r24, 2, pa, 0.1f, NULL, 0.0f);
    submit_delta(a, 2, 2, 3.0f, i12, r51, 2, pb, 0.0f, NULL, 0.0f);
    cr_assert_eq(version_of(a), 2);
    // Round 3: device 1 changes its vector (delta), device 3 is new (mean
    // 5: mu moves to 11/3), device 2 is absent.
    submit_delta(a, 1, 3, 3.0f, i01, r24, 2, pa2, -0.1f, pa, 0.1f);
    submit_delta(a, 3, 3, 3.0f, i12, r55, 2, pc, 0.2f, NULL, 0.0f);
    cr_assert_eq(version_of(a), 3);

    const float mu_want = 22.0f / 6.0f;
    struct {
        const float    *p;
        float           bu;
        const uint32_t *items;
        const float    *r;
    } users[3] = { { pa2, -0.1f, i01, r24 }, { pb, 0.0f, i12, r51 },
                   { pc, 0.2f, i12, r55 } };
    float mu, bi[3], Q[3 * K];
    fri_agg_model_copy(a, &mu, bi, 3, Q, 3 * K, NULL);
    cr_assert(fabsf(mu - mu_want) < 1e-5f, "mu %f", (double) mu);
    for (uint32_t i = 0; i < 3; i++) {
        float G[21] = { 0 }, H[D] = { 0 };
        for (int u = 0; u < 3; u++) {
            for (int j = 0; j < 2; j++) {
                if (users[u].items[j] != i) {
                    continue;
                }
                float g[21], h[D];
                cr_assert_eq(fri_mf_user_item_stats(
                                 g, fri_packed_len(D), h, D, users[u].p,
                                 users[u].bu, K, mu_want, &users[u].r[j], 1),
                             FR_OK);
                for (size_t e = 0; e < fri_packed_len(D); e++) {
                    G[e] += g[e];
                }
                for (int e = 0; e < D; e++) {
                    H[e] += h[e];
                }
            }
        }
        float q[K], b;
        cr_assert_eq(fri_mf_item_solve(q, &b, G, H, K, c.reg, c.reg_bias,
                                       c.weighted, NULL, 0),
                     FR_OK);
        for (int f = 0; f < K; f++) {
            cr_assert(fabsf(q[f] - Q[i * K + f]) < 1e-5f,
                      "item %u factor %d: want %f got %f", i, f,
                      (double) q[f], (double) Q[i * K + f]);
        }
        cr_assert(fabsf(b - bi[i]) < 1e-5f, "item %u bias: want %f got %f",
                  i, (double) b, (double) bi[i]);
    }
    fri_agg_destroy(a);
}

Test(agg_config, stats_latest_needs_plain_statistics)
{
    fri_agg_config c;
    char           err[256];
    base_cfg(&c);
    c.stats_latest = 1;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_OK, "%s",
                 err);
    c.stats_forget = 0.5f;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "stats-latest") != NULL, "%s", err);
    c.stats_forget = 1.0f;
    c.algo         = FRI_AGG_GRAD;
    cr_assert_eq(fri_agg_config_check(&c, err, sizeof(err)), FR_EINVAL);
}
