// Secure aggregation over the wire: real client handles (poll/receive)
// against fri_agg_handle. The secure round's model equals the plain
// round's (same clipped updates, same seeded DP noise, SGD) within
// quantization error, also when 30% of the cohort vanishes right after
// its masked UPDATE was acknowledged.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dataset.h"
#include "e2e_harness.h"
#include "model_diff.h"
#include "fedrec/client.h"
#include "msg.h"

#define NU 12
#define NIT 30
#define KK 3

typedef e2e_world world;

static void
world_init_dp(world *w, int secagg, fri_agg_dp dp, double z)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 17);
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->d.n_items;
    c.k                 = KK;
    c.algo              = FRI_AGG_GRAD;
    c.server_opt        = FRI_AGG_OPT_SGD;
    c.server_lr         = 0.5f;
    c.clients_per_round = NU;
    c.min_clients       = 2;
    c.round_deadline_ms = 2000;
    c.clip              = 1.0f;
    // Seeded, negligible DP noise: both runs then divide by the same
    // expected cohort and add the same noise, so they are comparable.
    c.dp               = dp;
    c.noise_multiplier = z;
    if (dp == FRI_AGG_DP_DISTRIBUTED) {
        c.min_clients = NU; // members' noise shares add up to z*clip
    }
    c.population       = NU;
    c.dp_seed          = 7;
    c.secagg           = secagg ? FRI_AGG_SECAGG_FULL : FRI_AGG_SECAGG_OFF;
    c.has_identity     = 1;
    memset(c.identity_seed, 5, sizeof(c.identity_seed));
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 900, 11, 0.0f);
    e2e_reply_alloc(w);
}

static void
world_init(world *w, int secagg)
{
    world_init_dp(w, secagg, FRI_AGG_DP_CENTRAL, 1e-6);
}

// Every client in one secure round (e2e_secure_round); each one not in
// vanish must contribute. Returns the number of CONTRIBUTED clients.
static int
run_at(world *w, const uint8_t *vanish, uint64_t t0, size_t *upd_len)
{
    uint32_t          users[NU];
    fr_checkin_status st[NU];
    for (uint32_t u = 0; u < NU; u++) {
        users[u] = u;
    }
    int n = e2e_secure_round(w, users, NU, NULL, vanish, t0, upd_len, st);
    for (uint32_t u = 0; u < NU; u++) {
        cr_assert((vanish != NULL && vanish[u]) ||
                      st[u] == FR_CHECKIN_CONTRIBUTED,
                  "user %u: %s", u, fr_client_errmsg(w->c[u]));
    }
    return n;
}

static int
run(world *w, const uint8_t *vanish)
{
    return run_at(w, vanish, 10, NULL);
}

// The plain round of every client not in skip (NULL: all).
static int
plain_run(world *w, const uint8_t *skip)
{
    int n = 0;
    for (uint32_t u = 0; u < NU; u++) {
        fr_client *c = w->c[u];
        if (skip != NULL && skip[u]) {
            continue;
        }
        cr_assert_eq(fr_client_checkin_begin(c, 10), FR_OK);
        size_t   cap = fr_client_request_bound(c);
        uint8_t *buf = malloc(cap);
        for (int step = 0; step < 10; step++) {
            size_t len = 0;
            if (fr_client_poll(c, buf, cap, &len) != FR_OK || len == 0) {
                break;
            }
            size_t rl = 0;
            cr_assert_eq(fri_agg_handle(w->a, 10, buf, len, w->reply,
                                        w->reply_cap, &rl),
                         FR_OK);
            if (fr_client_receive(c, w->reply, rl) != FR_OK) {
                break;
            }
        }
        free(buf);
        fr_checkin_info info;
        fr_client_checkin_info_get(c, &info);
        n += info.status == FR_CHECKIN_CONTRIBUTED;
    }
    return n;
}

// drop: members that vanish before their masked input (the plain round
// runs without them); vanish: members that vanish after it.
static void
secure_vs_plain(const uint8_t *drop, const uint8_t *vanish)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    world_init(s, 1);
    world_init(p, 0);
    uint32_t          users[NU];
    fr_checkin_status st[NU];
    for (uint32_t u = 0; u < NU; u++) {
        users[u] = u;
    }
    int ns = e2e_secure_round(s, users, NU, drop, vanish, 10, NULL, st);
    int np = plain_run(p, drop);
    if (drop != NULL) {
        fri_agg_tick(p->a, 10 + 3600000); // a smaller cohort: the deadline
    }
    int nv = 0, nd = 0;
    for (int u = 0; u < NU; u++) {
        nv += vanish != NULL && vanish[u];
        nd += drop != NULL && drop[u];
        cr_assert((vanish != NULL && vanish[u]) || (drop != NULL && drop[u]) ||
                      st[u] == FR_CHECKIN_CONTRIBUTED,
                  "user %u: %s", u, fr_client_errmsg(s->c[u]));
    }
    cr_assert_eq(ns, NU - nv - nd);
    cr_assert_eq(np, NU - nd);
    float    mu1, mu2, b1[NIT], b2[NIT], Q1[NIT * KK], Q2[NIT * KK];
    uint64_t v1, v2;
    fri_agg_model_copy(s->a, &mu1, b1, NIT, Q1, NIT * KK, &v1);
    fri_agg_model_copy(p->a, &mu2, b2, NIT, Q2, NIT * KK, &v2);
    cr_assert_eq(v1, 1, "secure round did not complete");
    cr_assert_eq(v2, 1);
    double worst = fabs((double) mu1 - mu2);
    for (int i = 0; i < NIT * KK; i++) {
        worst = fmax(worst, fabs((double) Q1[i] - Q2[i]));
    }
    for (int i = 0; i < NIT; i++) {
        worst = fmax(worst, fabs((double) b1[i] - b2[i]));
    }
    fri_agg_metrics m;
    fri_agg_metrics_get(s->a, &m);
    // Every masked input came authenticated, not re-encrypted (R38; the
    // vanishing members vanish after theirs); no plain update did.
    cr_assert_eq(m.clear_frames, (uint64_t) (NU - nd), "clear frames %llu",
                 (unsigned long long) m.clear_frames);
    // With a third of the cohort gone before masking, every member that
    // answers the unmask request sends its dropout correction (SPEC S4a).
    cr_assert_eq(m.sa_corrections, nd > 0 ? (uint64_t) (NU - nd - nv) : 0,
                 "corrections %llu", (unsigned long long) m.sa_corrections);
    fri_agg_metrics mp;
    fri_agg_metrics_get(p->a, &mp);
    cr_assert_eq(mp.clear_frames, 0);
    cr_log_info("secure vs plain over the wire (%d vanished): max diff %.3g, "
                "bytes in %llu out %llu",
                nv, worst, (unsigned long long) m.bytes_in,
                (unsigned long long) m.bytes_out);
    // Quantization error <= 2^-(f+1) per word and member, f >= 20 here,
    // times lr 0.5 / expected cohort 12; mu is a ratio of sums (1e-4).
    cr_assert(worst < 1e-4, "secure and plain models differ by %g", worst);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}

Test(agg_secagg_e2e, masked_round_equals_plain_round)
{
    secure_vs_plain(NULL, NULL);
}

Test(agg_secagg_e2e, thirty_percent_vanish_after_masked_input)
{
    uint8_t vanish[NU] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1}; // 4 of 12
    secure_vs_plain(NULL, vanish);
}

// Real clients: a third vanish before masking, one more after; the
// survivors that answer correct their pair masks with the vanished, and
// the model is the plain round's over the members whose input counted.
Test(agg_secagg_e2e, vanished_before_masking_are_corrected_by_survivors)
{
    uint8_t drop[NU]   = {0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0}; // 4 of 12
    uint8_t vanish[NU] = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    secure_vs_plain(drop, vanish);
}

typedef struct released {
    float *v;
    size_t n;
} released;

static void
on_release(void *ctx, const float *v, size_t n)
{
    released *r = ctx;
    r->v        = malloc(n * sizeof(float));
    cr_assert_not_null(r->v);
    memcpy(r->v, v, n * sizeof(float));
    r->n = n;
}

// Distributed DP: each member adds N(0, (z C)^2 / m) before masking, the
// aggregator adds nothing; the unmasked sum carries N(0, (z C)^2).
Test(agg_secagg_e2e, distributed_dp_noise_comes_from_the_members)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    const double z = 0.5;
    world_init_dp(s, 1, FRI_AGG_DP_DISTRIBUTED, z);
    world_init(p, 0);
    released rs = {0}, rp = {0};
    fri_agg_set_release_hook(s->a, on_release, &rs);
    fri_agg_set_release_hook(p->a, on_release, &rp);
    cr_assert_eq(run(s, NULL), NU);
    cr_assert_eq(plain_run(p, NULL), NU);
    cr_assert(rs.n > 0 && rs.n == rp.n);
    double s2 = 0;
    for (size_t i = 0; i < rs.n; i++) {
        double d = (double) rs.v[i] - rp.v[i];
        s2 += d * d;
    }
    double sd = sqrt(s2 / (double) rs.n), want = z * 1.0;
    fri_agg_metrics m;
    fri_agg_metrics_get(s->a, &m);
    cr_log_info("distributed DP: noise sd in the sum %.4f (want %.4f over "
                "%zu coordinates), epsilon %.3g after 1 round",
                sd, want, rs.n, m.dp_epsilon);
    cr_assert(fabs(sd / want - 1.0) < 0.25, "noise sd %f, want %f", sd, want);
    cr_assert_eq(m.dp_rounds, 1);
    free(rs.v);
    free(rp.v);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}

// ---- explicit ALS statistics (docs/SECAGG.md §10) ------------------------

static void
world_init_als(world *w, int secagg)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 17);
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->d.n_items;
    c.k                 = KK;
    c.algo              = FRI_AGG_ALS;
    c.clients_per_round = NU;
    c.min_clients       = 2;
    c.round_deadline_ms = 2000;
    c.robust            = 0; // the masked path has no per-device view
    c.secagg            = secagg ? FRI_AGG_SECAGG_PLUS : FRI_AGG_SECAGG_OFF;
    c.has_identity      = 1;
    memset(c.identity_seed, 5, sizeof(c.identity_seed));
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 900, 11, 0.0f);
    e2e_reply_alloc(w);
}

// Real clients, two rounds (the census, then the item solves): the masked
// ALS statistics give the plain rounds' model within quantization error,
// with a third of the cohort vanishing after its masked input in the
// second round; and every member's masked UPDATE has the same size
// although the users rated different numbers of items.
Test(agg_secagg_e2e, als_statistics_masked_round_equals_plain_round)
{
    world *s = malloc(sizeof(*s)), *p = malloc(sizeof(*p));
    cr_assert(s != NULL && p != NULL);
    world_init_als(s, 1);
    world_init_als(p, 0);
    size_t   len[NU] = {0};
    uint32_t nmin = NIT, nmax = 0;
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t n = (uint32_t) (s->by_user.ptr[u + 1] - s->by_user.ptr[u]);
        nmin       = n < nmin ? n : nmin;
        nmax       = n > nmax ? n : nmax;
    }
    cr_assert(nmin < nmax, "users rate different numbers of items");
    cr_assert_eq(run_at(s, NULL, 10, len), NU);
    cr_assert_eq(plain_run(p, NULL), NU);
    for (uint32_t u = 0; u < NU; u++) {
        cr_assert(len[u] > 0);
        cr_assert_eq(len[u], len[0],
                     "user %u sent %zu bytes, user 0 %zu: the size "
                     "depends on the rated items",
                     u, len[u], len[0]);
    }
    // Dense over every item: n_items rows of (k+1)(k+2)/2 + k + 1 words.
    size_t w = (KK + 1) * (KK + 2) / 2 + KK + 1;
    cr_assert_geq(len[0], 4 * (size_t) NIT * w + 8);
    // Round 2 on the same users: they refit against the census model.
    uint8_t vanish[NU] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1}; // 4 of 12
    cr_assert_eq(run_at(s, vanish, 20000, NULL), NU - 4);
    cr_assert_eq(plain_run(p, NULL), NU);
    model_diff_out d = model_diff_of(s->a, p->a, NIT, KK);
    cr_assert_eq(d.va, 2, "secure rounds did not complete");
    cr_assert_eq(d.vb, 2);
    double worst = d.worst, moved = fmax(d.q_max, d.b_max);
    cr_log_info("ALS secure vs plain over the wire: max diff %.3g (model "
                "scale %.3g), masked UPDATE %zu bytes",
                worst, moved, len[0]);
    cr_assert(moved > 0.05, "the plain solve did nothing");
    // f = 24 for 12 members: 2^-25 per word and member, times U^2 = 100
    // on the Gram sums; the ridge solves amplify it a little.
    cr_assert(worst < 1e-4, "secure and plain models differ by %g", worst);
    e2e_world_free(s);
    e2e_world_free(p);
    free(s);
    free(p);
}
